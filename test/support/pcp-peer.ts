/**
 * PCP's own peers for interoperability tests:
 * - `startPcpRoot`: PCP 6.0.3's real pmdaroot on a private socket, started as
 *   pmcd (or dbpmda's `open pipe pmdaroot -s SOCK`) starts a PMDA: a child
 *   whose stdin/stdout are its PMDA channel, sent pmcd's credentials PDU and
 *   held open until `stop()`. It is spawned directly, not through dbpmda, so
 *   this process reaps it: dbpmda never reaps the PMDA it opened, and pid 1 on
 *   these VMs does not reap orphans. The system socket is left alone.
 * - `buildPcpCClient`/`runPcpCClient`: test/support/pcp-c-client.c, linked
 *   against PCP's libpcp_pmda, printing each pmdaRoot* call's result as JSON.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const PMDAROOT = '/var/lib/pcp/pmdas/root/pmdaroot';

export interface PcpRootPeer {
  readonly socketPath: string;
  readonly logPath: string;
  /** pid of PCP's pmdaroot. */
  readonly pid: number;
  /** Private folder holding the socket, log and empty engine dirs. */
  readonly dir: string;
  /** Stops pmdaroot (closes its PMDA pipe, then SIGKILL if needed), reaps it and removes `dir`. */
  stop(): Promise<void>;
}

export interface StartPcpRootOptions {
  /** PCP_* settings (PCP_DOCKER_DIR, ...). Engines not named point at empty folders. */
  readonly env?: Readonly<Record<string, string>>;
}

/** Starts PCP's pmdaroot on `<tmp>/root.socket` and waits until it accepts. */
export async function startPcpRoot(options: StartPcpRootOptions = {}): Promise<PcpRootPeer> {
  const dir = mkdtempSync(join(tmpdir(), 'croot-pcproot-'));
  const socketPath = join(dir, 'root.socket');
  const logPath = join(dir, 'pmdaroot.log');
  const empty = join(dir, 'empty');
  mkdirSync(empty);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PCP_DOCKER_DIR: empty,
    PCP_PODMAN_DATADIR: empty,
    PCP_PODMAN_RUNDIR: empty,
    PCP_LXC_DIR: empty,
    ...(options.env ?? {}),
  };
  const child = spawn(PMDAROOT, ['-d', '1', '-s', socketPath, '-l', logPath], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', () => undefined); // the PMDA side of the pipe: drained, unused
  // pmdaroot sends its credentials PDU and waits for pmcd's before it serves its socket.
  child.stdin?.write(pmcdCredentials(process.pid));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const stop = async (): Promise<void> => {
    await endChild(child);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForSocket(socketPath, 10000, child, () => `stderr: ${output}\nlog: ${safeRead(logPath)}`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { socketPath, logPath, pid: child.pid ?? -1, dir, stop };
}

/**
 * The PDU_CREDS pmcd (and dbpmda) sends a freshly started PMDA, as recorded
 * from dbpmda 6.0.3: network byte order; length 20, type 0x700c, from = our
 * pid, one credential {type 1 = CVERSION, version 2, 0, 0}.
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

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

async function endChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  child.stdin?.end();
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

async function waitForSocket(path: string, timeoutMs: number, child: ChildProcess, explain: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`PCP's pmdaroot exited early; ${explain()}`);
    if (existsSync(path)) {
      const ok = await new Promise<boolean>((res) => {
        const s = createConnection(path);
        s.once('connect', () => {
          s.destroy();
          res(true);
        });
        s.once('error', () => res(false));
      });
      if (ok) return;
    }
    if (Date.now() > deadline) throw new Error(`PCP's pmdaroot did not listen on ${path} within ${timeoutMs} ms; ${explain()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ------------------------------------------------------------ the C client

export const PCP_C_CLIENT_SOURCE = resolve(__dirname, 'pcp-c-client.c');

/**
 * Compiles pcp-c-client.c against PCP's libpcp_pmda into `dir` (pmapi.h is
 * not needed: the program declares the calls as pmda.h does). Returns the binary.
 */
export function buildPcpCClient(dir: string): string {
  const binary = join(dir, 'pcp-c-client');
  execFileSync('gcc', ['-Wall', '-Werror', '-O2', '-o', binary, PCP_C_CLIENT_SOURCE, '-lpcp_pmda', '-l:libpcp.so.3'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 60000,
  });
  return binary;
}

/** One result line of the C client. */
export interface CClientResult {
  readonly op: string;
  readonly sts: number;
  readonly name?: string;
  readonly value?: string;
  readonly pid?: number;
  readonly status?: number;
  readonly infd?: number;
  readonly outfd?: number;
  readonly output?: string;
  readonly raw?: string;
}

/**
 * Runs the C client on `socket` with `ops`; one result per line, `connect`
 * first. Asynchronous, so a server in this same process can answer it.
 */
export function runPcpCClient(binary: string, socket: string, ops: readonly string[], env?: NodeJS.ProcessEnv): Promise<CClientResult[]> {
  return new Promise((resolveRun, reject) => {
    execFile(binary, [socket, ...ops], { encoding: 'utf8', timeout: 30000, env: env ?? process.env }, (err, stdout, stderr) => {
      if (err && stdout.trim() === '') {
        reject(new Error(`${binary} failed: ${err.message}; ${stderr}`));
        return;
      }
      resolveRun(
        stdout
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as CClientResult),
      );
    });
  });
}

/** A private temp folder for a test file. */
export function makeTempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Unpacks a PCP QA tarball (test/fixtures/pcp-qa) into a fresh temp folder; returns the folder. */
export function unpackPcpQaFixture(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'croot-pcpqa-'));
  execFileSync('tar', ['-C', dir, '-xzf', resolve(__dirname, '..', 'fixtures', 'pcp-qa', name)], { timeout: 60000 });
  return dir;
}
