/**
 * What the kernel says about processes, read from /proc directly (not through
 * core/host/proc-files.ts), so tests compare croot's answers with the host's own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, readdirSync } from 'node:fs';

/**
 * The fields of /proc/PID/stat after `(comm)`: [0] state, [1] parent pid,
 * [19] start time in clock ticks; undefined once the process is gone.
 */
export function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The state letter of `pid` (`S`, `R`, `Z`, ...); undefined once it is gone (reaped). */
export function processState(pid: number): string | undefined {
  return statFields(pid)?.[0];
}

/** The parent pid of `pid`; undefined once it is gone. */
export function parentPid(pid: number): number | undefined {
  const field = statFields(pid)?.[1];
  return field === undefined ? undefined : Number(field);
}

/** The start time of `pid` in clock ticks after boot; undefined once it is gone. */
export function startTimeOf(pid: number): number | undefined {
  const field = statFields(pid)?.[19];
  return field === undefined ? undefined : Number(field);
}

/** Live (or zombie) children of `ppid`, found by scanning /proc (children of every thread count). */
export function childrenOf(ppid: number): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => parentPid(pid) === ppid);
}

/** Children of `ppid` (default: this process) that have exited but are not reaped. */
export function zombieChildren(ppid: number = process.pid): number[] {
  return childrenOf(ppid).filter((pid) => processState(pid) === 'Z');
}

/** Children a test starts (`start`), each killed with SIGKILL and reaped by `reap()` (an afterEach). */
export function testChildren(): { start(file: string, args: string[]): ChildProcess & { pid: number }; reap(): Promise<void> } {
  const children: ChildProcess[] = [];
  return {
    start(file, args) {
      const child = spawn(file, args, { stdio: 'ignore' });
      children.push(child);
      return child as ChildProcess & { pid: number };
    },
    async reap() {
      for (const child of children.splice(0)) {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = once(child, 'exit');
          child.kill('SIGKILL');
          await exited;
        }
      }
    },
  };
}
