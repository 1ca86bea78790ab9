/**
 * A real namespace sandbox for tests: `unshare --uts --pid --fork` running
 * `sleep` under its own hostname. The host PID of the sleep is the
 * sandbox's init PID, as an engine would report it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { childrenOf } from './processes.js';

export interface Sandbox {
  readonly hostname: string;
  /** Host PID of the sandbox's init (the sleep). */
  readonly pid: number;
  /** Ends the sandbox and waits until it is reaped; a second call does nothing. */
  stop(): Promise<void>;
}

/** Starts a sandbox whose UTS namespace holds `hostname`; resolves once its `sleep` runs. */
export async function startSandbox(hostname = `sbx-${randomBytes(4).toString('hex')}`): Promise<Sandbox> {
  const child: ChildProcess = spawn('unshare', ['--uts', '--pid', '--fork', '--kill-child', '--mount-proc', 'sh', '-c', `hostname ${hostname} && exec sleep 600`], {
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 10000;
  let pid: number | undefined;
  while (Date.now() < deadline && child.exitCode === null) {
    const [init] = childrenOf(child.pid ?? -1);
    if (init !== undefined) {
      const comm = readFileSync(`/proc/${init}/comm`, 'utf8').trim();
      if (comm === 'sleep') {
        pid = init;
        break;
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  if (pid === undefined) {
    child.kill('SIGKILL');
    await exited;
    throw new Error('sandbox did not start');
  }
  return {
    hostname,
    pid,
    /** SIGKILLs the init (only SIGKILL reaches a PID namespace's init from outside) and waits until unshare has reaped it and exited. */
    async stop(): Promise<void> {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(pid as number, 'SIGKILL');
      } catch {
        // already gone
      }
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** What /proc/self/fd/FD points at, or undefined when FD is not open. */
export function fdTarget(fd: number): string | undefined {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

/** This process's open fds, each as `fd -> target`. */
export function openFds(): Set<string> {
  const out = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      out.add(`${fd} -> ${readlinkSync(`/proc/self/fd/${fd}`)}`);
    } catch {
      // closed while listing (readdir's own fd, for one)
    }
  }
  return out;
}

/**
 * The fds open now that were not open at `before` (openFds()): what a piece
 * of work leaked. Fds other work closed meanwhile do not hide a leak, as
 * they would in a plain count.
 */
export function fdsOpenedSince(before: ReadonlySet<string>): string[] {
  return [...openFds()].filter((fd) => !before.has(fd));
}
