/**
 * Runs `lxc-info -n NAME -P DIR -s -p` and parses its answer: each child in
 * a process group of its own with a timeout (the whole group is killed), a
 * bounded number at a time, its output bounded too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

/** What `lxc-info -n NAME` says about one container. */
export interface LxcInfo {
  readonly state?: string;
  readonly pid?: number;
}

/** What lxc-info gave: an answer, a failure, or that the command is not there. */
export type LxcInfoAnswer = { readonly info: LxcInfo } | { readonly failed: string } | 'ENOENT';

/** Parses lxc-info's `Key: value` lines (`State:`, `PID:`); other lines are ignored. */
export function parseLxcInfo(text: string): LxcInfo {
  let state: string | undefined;
  let pid: number | undefined;
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z][A-Za-z ]*?)\s*:\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    const key = (m[1] ?? '').toLowerCase();
    const value = m[2] ?? '';
    if (key === 'state' && state === undefined) state = value.toUpperCase();
    else if (key === 'pid' && pid === undefined && /^\d+$/.test(value)) pid = Number(value);
  }
  return { ...(state !== undefined && { state }), ...(pid !== undefined && { pid }) };
}

export class LxcInfoRunner {
  /** The lxc-info found by `locate()`; undefined before, or when it was not found or went. */
  command: string | undefined;
  private stopped = false;
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly children = new Set<ChildProcess>();

  constructor(
    /** The command as configured (`PCP_LXC_INFO`): a path, or a name looked up in PATH. */
    private readonly lxcInfo: string,
    /** The folder asked about (`-P`): the one croot listed, not lxc's configured lxcpath. */
    private readonly lxcDir: string,
    private readonly timeoutMs: number,
    private readonly concurrency: number,
  ) {}

  /** Looks the command up in `pathVar`; false when it is not there. */
  async locate(pathVar: string | undefined): Promise<boolean> {
    this.command = await findCommand(this.lxcInfo, pathVar);
    return this.command !== undefined;
  }

  /** Asks about `name` once fewer than `concurrency` children are running. */
  ask(name: string): Promise<LxcInfoAnswer> {
    return this.limited(() => this.run(name));
  }

  /** Kills every child still running; nothing is asked from now on. */
  stop(): void {
    this.stopped = true;
    for (const child of this.children) killGroup(child);
  }

  /** Runs `job` once fewer than `concurrency` lxc-info children are running. */
  private limited<T>(job: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const go = (): void => {
        this.running++;
        job()
          .then(resolve, reject)
          .finally(() => {
            this.running--;
            this.waiting.shift()?.();
          });
      };
      if (this.running < this.concurrency) go();
      else this.waiting.push(go);
    });
  }

  /** One lxc-info child in a process group of its own; the whole group is killed at the timeout. */
  private run(name: string): Promise<LxcInfoAnswer> {
    const command = this.command;
    if (this.stopped || command === undefined) return Promise.resolve({ failed: 'not asked' });
    return new Promise<LxcInfoAnswer>((resolve) => {
      // -P: the folder croot listed, not lxc's configured lxcpath; -s -p: skip the IP and cgroup statistics.
      let child: ChildProcess;
      try {
        child = spawn(command, ['-n', name, '-P', this.lxcDir, '-s', '-p'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (err) {
        resolve({ failed: (err as Error).message });
        return;
      }
      this.children.add(child);
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      let settled = false;
      const timer = setTimeout(() => {
        timedOut = true;
        killGroup(child);
      }, this.timeoutMs);
      const done = (answer: LxcInfoAnswer): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.children.delete(child);
        resolve(answer);
      };
      child.stdout?.setEncoding('utf8').on('data', (d: string) => {
        if (stdout.length < 65536) stdout += d;
      });
      child.stderr?.setEncoding('utf8').on('data', (d: string) => {
        if (stderr.length < 4096) stderr += d;
      });
      child.on('error', (err: NodeJS.ErrnoException) => done(err.code === 'ENOENT' ? 'ENOENT' : { failed: err.message }));
      child.on('close', (code, signal) => {
        if (timedOut) done({ failed: `timed out after ${this.timeoutMs} ms` });
        else if (code === 0) done({ info: parseLxcInfo(stdout) });
        else done({ failed: `exited with ${code ?? signal}${stderr.trim() ? `: ${stderr.trim().split('\n')[0]}` : ''}` });
      });
    });
  }
}

/**
 * Kills a child's whole process group (a script that does not `exec` leaves
 * its own children). Called only before the child's 'close' (its pipes are
 * still held by it or its descendants), never after, when the group id could
 * in principle belong to an unrelated process.
 */
function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // the group is gone already
  }
}

/** `cmd` itself when it holds a slash, else its first executable match in `pathVar`; undefined when none. */
export async function findCommand(cmd: string, pathVar: string | undefined = process.env.PATH): Promise<string | undefined> {
  const candidates = cmd.includes('/')
    ? [cmd]
    : (pathVar ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')
        .split(delimiter)
        .filter((d) => d.length > 0)
        .map((d) => join(d, cmd));
  for (const candidate of candidates) {
    try {
      await access(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // try the next one
    }
  }
  return undefined;
}
