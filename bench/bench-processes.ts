/**
 * The processes the benchmarks start: a `sleep` in its own UTS namespace (the
 * "container"), PCP's real pmdaroot on a private socket, and crootd. Every
 * child is tracked so `stopAllChildren` can end and reap what is left (the
 * run's watchdog and its exit path call it); nothing is left behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';

export const PMDAROOT = '/var/lib/pcp/pmdas/root/pmdaroot';

const children = new Set<ChildProcess>();

/** A started child: `stop()` ends it (SIGTERM or closing stdin, then SIGKILL) and reaps it. */
export interface StartedChild {
  readonly pid: number;
  /** What it wrote on stderr (and its log, where there is one), for error messages. */
  output(): string;
  stop(): Promise<void>;
}

function track(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
}

/** Ends `child`: `gentle` first, SIGKILL after `graceMs`; resolves once it is reaped. */
async function endChild(child: ChildProcess, gentle: () => void, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  gentle();
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** SIGKILLs every child still running and waits (at most 3 s) until they are reaped. */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...children].map((c) => endChild(c, () => c.kill('SIGKILL'), 3000)));
}

/** Live children of `ppid`, from /proc. */
function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === ppid) out.push(Number(entry));
    } catch {
      // gone
    }
  }
  return out;
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts `sleep` in a new UTS namespace whose hostname is `hostname`
 * (`unshare --uts --fork`, so the sleeper is a grandchild); its pid is the
 * container's init PID.
 */
export async function startNamespacedSleeper(hostname: string, seconds = 600): Promise<StartedChild> {
  const child = spawn('unshare', ['--uts', '--fork', 'sh', '-c', `hostname ${hostname} && exec sleep ${seconds}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  track(child);
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
      };
    }
    await delay(25);
  }
  await endChild(child, () => child.kill('SIGKILL'));
  throw new Error(`unshare --uts did not start sleep: ${stderr.trim()}`);
}

/** Waits until `path` accepts a connection, failing early if `child` exits. */
async function waitForSocket(path: string, child: ChildProcess, timeoutMs: number, explain: () => string): Promise<void> {
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

/**
 * Starts PCP's pmdaroot on `socketPath` as pmcd would (a child whose stdin and
 * stdout are its PMDA channel), with `env` (PCP_DOCKER_DIR, ...) and the
 * other engines' folders pointed at an empty folder under `workDir`.
 */
export async function startPcpRoot(socketPath: string, workDir: string, env: Readonly<Record<string, string>>): Promise<StartedChild> {
  const empty = join(workDir, 'empty');
  mkdirSync(empty, { recursive: true });
  const logPath = join(workDir, 'pmdaroot.log');
  const child = spawn(PMDAROOT, ['-d', '1', '-s', socketPath, '-l', logPath], {
    env: { ...process.env, PCP_DOCKER_DIR: empty, PCP_PODMAN_DATADIR: empty, PCP_PODMAN_RUNDIR: empty, PCP_LXC_DIR: empty, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  track(child);
  let stderr = '';
  child.stdout?.on('data', () => undefined);
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin?.on('error', () => undefined);
  child.stdin?.write(pmcdCredentials(process.pid));
  const output = (): string => `stderr: ${stderr.trim()}; log: ${safeRead(logPath).trim()}`;
  const started: StartedChild = { pid: child.pid ?? -1, output, stop: () => endChild(child, () => child.stdin?.end()) };
  try {
    await waitForSocket(socketPath, child, 10000, output);
  } catch (err) {
    await started.stop();
    throw err;
  }
  return started;
}

/** Starts crootd (`crootdScript`, the built dist/bin/crootd.js) on `socketPath` with `configPath` and `env`. */
export async function startCrootd(
  crootdScript: string,
  socketPath: string,
  configPath: string,
  env: Readonly<Record<string, string>>,
): Promise<StartedChild> {
  const child = spawn(process.execPath, [crootdScript, '--socket', socketPath, '--config', configPath, '--no-pcp-user', '--log-level', 'warn'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child);
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const started: StartedChild = { pid: child.pid ?? -1, output: () => output.trim(), stop: () => endChild(child, () => child.kill('SIGTERM')) };
  try {
    await waitForSocket(socketPath, child, 15000, started.output);
  } catch (err) {
    await started.stop();
    throw err;
  }
  return started;
}

/**
 * CPU time `pid` has used so far, every thread counted, in nanoseconds (the
 * first field of each /proc/PID/task/TID/schedstat). A thread that ends
 * between two calls takes its time with it, so compare calls made while the
 * process's threads stay up.
 */
export function cpuTimeNs(pid: number): number {
  let total = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended
    }
  }
  return total;
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
