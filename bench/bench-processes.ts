/**
 * The processes the benchmark starts, and what it reads about them.
 *
 * Every child is tracked, and every other thing to undo (a container, a temp
 * folder) is registered with `onCleanup`, so `cleanUp` (the run's exit path,
 * its watchdog and its signal handlers call it) ends, reaps and removes all
 * of it. PCP's pmdaroot is started as pmcd starts a PMDA (its stdin/stdout
 * are the PMDA channel, pmcd's credentials PDU first); test/support uses
 * `startPcpRoot` too.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';

export const PMDAROOT = '/var/lib/pcp/pmdas/root/pmdaroot';

const children = new Set<ChildProcess>();
const cleanups: { name: string; run: () => void | Promise<void> }[] = [];

/** A started child: `stop()` ends it (its gentle way, then SIGKILL) and reaps it. */
export interface StartedChild {
  readonly pid: number;
  /** What it wrote on stderr (and its log, where there is one), for error messages. */
  output(): string;
  stop(): Promise<void>;
  /** True once it has exited. */
  readonly exited: boolean;
}

/** Spawns a tracked child (ended by `cleanUp` if nothing else ends it). */
export function spawnTracked(command: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  const child = spawn(command, [...args], options);
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.once('error', () => children.delete(child));
  return child;
}

/** Registers something to undo at the end (a container to remove, a folder to delete); returns its remover. */
export function onCleanup(name: string, run: () => void | Promise<void>): () => void {
  const entry = { name, run };
  cleanups.push(entry);
  return () => {
    const i = cleanups.indexOf(entry);
    if (i >= 0) cleanups.splice(i, 1);
  };
}

/** Ends `child`: `gentle` first, SIGKILL after `graceMs`; resolves once it is reaped. */
export async function endChild(child: ChildProcess, gentle: () => void, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  gentle();
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * SIGKILLs every child still running and waits (at most 3 s) until they are
 * reaped, then runs the registered cleanups, newest first.
 */
export async function cleanUp(): Promise<void> {
  await stopAllChildren();
  for (const entry of cleanups.splice(0).reverse()) {
    try {
      await entry.run();
    } catch (err) {
      process.stderr.write(`cleanup ${entry.name} failed: ${(err as Error).message}\n`);
    }
  }
}

/** SIGKILLs every child still running and waits (at most 3 s) until they are reaped (battery/ uses it). */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...children].map((c) => endChild(c, () => c.kill('SIGKILL'), 3000)));
}

/** Last resort on process exit: SIGKILL whatever is still running (no waiting possible there). */
export function killChildrenSync(): void {
  for (const child of children) child.kill('SIGKILL');
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Live children of `ppid`, from /proc. */
function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === ppid) out.push(Number(entry));
    } catch {
      // gone
    }
  }
  return out;
}

/**
 * Starts `sleep` in a new UTS namespace whose hostname is `hostname`
 * (`unshare --uts --fork`, so the sleeper is a grandchild); its pid is a
 * container's init PID (battery/ uses it; the benchmark starts its many
 * stand-ins with init-processes.c instead).
 */
export async function startNamespacedSleeper(hostname: string, seconds = 600): Promise<StartedChild> {
  const child = spawnTracked('unshare', ['--uts', '--fork', 'sh', '-c', `hostname ${hostname} && exec sleep ${seconds}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) break;
    const [pid] = childrenOf(child.pid ?? -1);
    if (pid !== undefined && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep') {
      return {
        pid,
        output: () => stderr,
        stop: () =>
          endChild(child, () => {
            try {
              process.kill(pid, 'SIGKILL');
            } catch {
              child.kill('SIGKILL');
            }
          }),
        get exited() {
          return child.exitCode !== null || child.signalCode !== null;
        },
      };
    }
    await delay(25);
  }
  await endChild(child, () => child.kill('SIGKILL'));
  throw new Error(`unshare --uts did not start sleep: ${stderr.trim()}`);
}

/** Waits until `path` accepts a connection, failing early if `child` exits. */
export async function waitForSocket(path: string, child: ChildProcess, timeoutMs: number, explain: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${path}: server exited early; ${explain()}`);
    if (existsSync(path)) {
      const ok = await new Promise<boolean>((resolve) => {
        const s = createConnection(path);
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      });
      if (ok) return;
    }
    if (Date.now() > deadline) throw new Error(`nothing listened on ${path} within ${timeoutMs} ms; ${explain()}`);
    await delay(25);
  }
}

/**
 * The PDU_CREDS pmcd sends a PMDA it starts (network byte order: length 20,
 * type 0x700c, from = our pid, one credential {CVERSION, version 2}).
 * pmdaroot waits for it before it serves its socket.
 */
function pmcdCredentials(pid: number): Buffer {
  const pdu = Buffer.alloc(20);
  pdu.writeInt32BE(20, 0);
  pdu.writeInt32BE(0x700c, 4);
  pdu.writeInt32BE(pid, 8);
  pdu.writeInt32BE(1, 12);
  pdu.set([1, 2, 0, 0], 16);
  return pdu;
}

function started(child: ChildProcess, output: () => string, gentle: () => void): StartedChild {
  return {
    pid: child.pid ?? -1,
    output,
    stop: () => endChild(child, gentle),
    get exited() {
      return child.exitCode !== null || child.signalCode !== null;
    },
  };
}

function launchPcpRoot(
  socketPath: string,
  workDir: string,
  env: Readonly<Record<string, string>>,
  logName: string,
  emptyEngines: boolean,
): { child: ChildProcess; pmdaroot: StartedChild } {
  const empty = join(workDir, 'empty');
  mkdirSync(empty, { recursive: true });
  const logPath = join(workDir, logName);
  const engines = emptyEngines ? { PCP_DOCKER_DIR: empty, PCP_PODMAN_DATADIR: empty, PCP_PODMAN_RUNDIR: empty, PCP_LXC_DIR: empty } : {};
  const child = spawnTracked(PMDAROOT, ['-d', '1', '-s', socketPath, '-l', logPath], {
    env: { ...process.env, ...engines, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stdout?.on('data', () => undefined);
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin?.on('error', () => undefined);
  child.stdin?.write(pmcdCredentials(process.pid));
  return { child, pmdaroot: started(child, () => `stderr: ${stderr.trim()}; log: ${safeRead(logPath).trim()}`, () => child.stdin?.end()) };
}

/**
 * Spawns PCP's pmdaroot on `socketPath` as pmcd would (a child whose stdin
 * and stdout are its PMDA channel, sent pmcd's credentials PDU), with `env`
 * (PCP_DOCKER_DIR, ...); the engines `env` does not name point at an empty
 * folder under `workDir` unless `emptyEngines` is false (then PCP's own
 * defaults: the host's real engines). Its log is `workDir/pmdaroot.log`.
 * Does not wait for the socket. (dbpmda's `open pipe pmdaroot -s SOCK`
 * starts it the same way, but never reaps it.)
 */
export function spawnPcpRoot(socketPath: string, workDir: string, env: Readonly<Record<string, string>>, emptyEngines = true): StartedChild {
  return launchPcpRoot(socketPath, workDir, env, 'pmdaroot.log', emptyEngines).pmdaroot;
}

/** Starts PCP's pmdaroot (see `spawnPcpRoot`) and waits until its socket accepts. */
export async function startPcpRoot(socketPath: string, workDir: string, env: Readonly<Record<string, string>>): Promise<StartedChild> {
  const { child, pmdaroot } = launchPcpRoot(socketPath, workDir, env, 'pmdaroot.log', true);
  try {
    await waitForSocket(socketPath, child, 10000, pmdaroot.output);
  } catch (err) {
    await pmdaroot.stop();
    throw err;
  }
  return pmdaroot;
}

/**
 * Spawns a crootd build as a user runs it: `CROOTD --socket S --config F`,
 * with `env`, its stderr (its log) into `logPath`. Does not wait for it.
 * `crootd` is an executable (bin/crootd) or a .js file run with this Node.
 */
export function spawnCrootd(crootd: string, socketPath: string, configPath: string, env: Readonly<Record<string, string>>, logPath: string): StartedChild {
  const [command, args] = crootd.endsWith('.js') ? [process.execPath, [crootd]] : [crootd, []];
  const child = spawnTracked(command, [...args, '--socket', socketPath, '--config', configPath], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (log.length < 1_000_000) log += d.toString();
  });
  child.once('exit', () => {
    try {
      writeFileSync(logPath, log);
    } catch {
      // the folder may be gone already
    }
  });
  return started(child, () => log.trim().split('\n').slice(-20).join('\n'), () => child.kill('SIGTERM'));
}

/** Start time of `pid` (field 22 of /proc/PID/stat, clock ticks since boot); undefined when it is gone. */
export function startTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  } catch {
    return undefined;
  }
}

/** The boot time, seconds since the epoch (`btime` of /proc/stat). */
export function bootTime(): number {
  const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
  if (m?.[1] === undefined) throw new Error('no btime in /proc/stat');
  return Number(m[1]);
}

/** USER_HZ, the unit of /proc/PID/stat times. */
export const CLOCK_TICKS_PER_SECOND = Number(safeExec('getconf', ['CLK_TCK'])) || 100;

/**
 * CPU time `pid` has used so far, in nanoseconds: the larger of the sum of
 * its live threads' /proc/PID/task/TID/schedstat (ns precision, but a thread
 * that has ended takes its time with it) and utime+stime of /proc/PID/stat
 * (clock ticks, ended threads included). Compare two readings.
 */
export function cpuTimeNs(pid: number): number {
  let threads = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        threads += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // the thread ended
      }
    }
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = fields.slice(fields.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[11]) + Number(rest[12]);
    return Math.max(threads, (ticks * 1e9) / CLOCK_TICKS_PER_SECOND);
  } catch {
    return Number.NaN;
  }
}

/** VmRSS of `pid` in MB (MiB), NaN when it is gone. */
export function rssMb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] === undefined ? Number.NaN : Number(m[1]) / 1024;
  } catch {
    return Number.NaN;
  }
}

export function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function safeExec(file: string, args: readonly string[]): string {
  try {
    return execFileSync(file, [...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

export { delay };
