/**
 * The built crootd as the battery runs it: on a private socket in a fresh
 * folder others may traverse (its clients run as an unprivileged uid), with
 * its log in a file, watched from outside through /proc: alive or not, its
 * RSS, its open fds and its children (zombies included).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname, join, resolve } from 'node:path';

/** The checkout (or package) root: the nearest folder above this file with a package.json. */
export function repoRoot(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${__dirname}`);
    dir = up;
  }
  return dir;
}

/** A built entry point under dist/, e.g. `bin/crootd.js`. */
export function built(path: string): string {
  const file = resolve(repoRoot(), 'dist', path);
  if (!existsSync(file)) throw new Error(`${file} is missing: run npm run build`);
  return file;
}

/** What /proc says about a process at one moment. */
export interface ProcessSample {
  readonly at: number;
  readonly alive: boolean;
  readonly rssKiB: number;
  /** Targets of its open fds (`socket:[…]`, paths, `anon_inode:…`), sorted. */
  readonly fds: readonly string[];
  /** Its children and their states (`S`, `Z`, ...). */
  readonly children: ReadonlyArray<{ readonly pid: number; readonly state: string }>;
}

function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

export function sampleProcess(pid: number): ProcessSample {
  const at = Date.now();
  const fields = statFields(pid);
  if (fields === undefined || fields[0] === 'Z') return { at, alive: false, rssKiB: 0, fds: [], children: [] };
  const rss = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  const fds: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      fds.push(readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      // closed meanwhile
    }
  }
  const children: Array<{ pid: number; state: string }> = [];
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    let listed = '';
    try {
      listed = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const child of listed.trim().split(/\s+/).filter(Boolean).map(Number)) {
      children.push({ pid: child, state: statFields(child)?.[0] ?? '?' });
    }
  }
  return { at, alive: true, rssKiB: Number(rss ?? 0), fds: fds.sort(), children };
}

/** The fds of `after` that are not in `before`, and the other way round, by target (sockets by kind only). */
export function fdDifference(before: readonly string[], after: readonly string[]): { added: string[]; removed: string[] } {
  const kind = (t: string): string => t.replace(/\[\d+\]$/, '[]');
  const count = (list: readonly string[]): Map<string, number> => {
    const m = new Map<string, number>();
    for (const t of list) m.set(kind(t), (m.get(kind(t)) ?? 0) + 1);
    return m;
  };
  const a = count(before);
  const b = count(after);
  const added: string[] = [];
  const removed: string[] = [];
  for (const [k, n] of b) for (let i = a.get(k) ?? 0; i < n; i++) added.push(k);
  for (const [k, n] of a) for (let i = b.get(k) ?? 0; i < n; i++) removed.push(k);
  return { added, removed };
}

export interface CrootdUnderTest {
  readonly pid: number;
  readonly socketPath: string;
  readonly logPath: string;
  readonly child: ChildProcess;
  /** What crootd wrote on stderr (its log goes to logPath). */
  stderr(): string;
  logBytes(): number;
  log(): string;
  /** SIGTERM, then SIGKILL after `timeoutMs`; the exit as it happened. */
  stop(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StartOptions {
  readonly dir: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
}

/** Starts dist/bin/crootd.js on `<dir>/root.socket`, logging to `<dir>/crootd.log`, and waits until it accepts. */
export async function startCrootdUnderTest(options: StartOptions): Promise<CrootdUnderTest> {
  const socketPath = join(options.dir, 'root.socket');
  const logPath = join(options.dir, 'crootd.log');
  const child = spawn(process.execPath, [built('bin/crootd.js'), '--socket', socketPath, '--log-file', logPath, ...options.args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: options.env ?? process.env,
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.once('exit', (code, signal) => res({ code, signal })));
  const read = (): string => {
    try {
      return readFileSync(logPath, 'utf8');
    } catch {
      return '';
    }
  };
  const crootd: CrootdUnderTest = {
    pid: child.pid ?? -1,
    socketPath,
    logPath,
    child,
    stderr: () => stderr,
    log: read,
    logBytes: () => {
      try {
        return statSync(logPath).size;
      } catch {
        return 0;
      }
    },
    stop: async (timeoutMs = 10000) => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const exit = await exited;
      clearTimeout(timer);
      return exit;
    },
  };
  const deadline = Date.now() + 30000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`crootd exited at start: ${stderr}${read()}`);
    if (existsSync(socketPath) && (await accepts(socketPath))) return crootd;
    if (Date.now() > deadline) {
      await crootd.stop(1000);
      throw new Error(`crootd did not listen on ${socketPath}: ${stderr}${read()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function accepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** The paths of a process's /proc/PID/cgroup lines, leading `/` dropped. */
export function cgroupPaths(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .trim()
    .split('\n')
    .map((line) => line.split(':').slice(2).join(':').replace(/^\/+/, ''));
}
