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
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startPcpRoot as startPmdaroot, type StartedChild } from '../../bench/bench-processes.js';

export { PMDAROOT } from '../../bench/bench-processes.js';

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

/**
 * Starts PCP's pmdaroot on `<tmp>/root.socket` and waits until it accepts.
 * The starting itself (pmcd's credentials PDU, the PMDA pipe, the wait for
 * the socket) is shared with the benchmarks: bench/bench-processes.ts.
 */
export async function startPcpRoot(options: StartPcpRootOptions = {}): Promise<PcpRootPeer> {
  const dir = mkdtempSync(join(tmpdir(), 'croot-pcproot-'));
  const socketPath = join(dir, 'root.socket');
  let pmdaroot: StartedChild;
  try {
    pmdaroot = await startPmdaroot(socketPath, dir, options.env ?? {});
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const stop = async (): Promise<void> => {
    await pmdaroot.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  return { socketPath, logPath: join(dir, 'pmdaroot.log'), pid: pmdaroot.pid, dir, stop };
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
  /** `connect` only: what /proc/self/fd/STS links to in the C client (`socket:[INODE]`). */
  readonly fd?: string;
  /** `start` only: what the kernel said infd and outfd were in the C client (`pipe:[INODE]`). */
  readonly infdTarget?: string;
  readonly outfdTarget?: string;
}

/**
 * A matcher for a successful `connect` line: its status was an fd (the C
 * client prints `fd` only then) that the kernel says is a socket.
 */
export function connected(): { op: string; fd: unknown } {
  return { op: 'connect', fd: expect.stringMatching(/^socket:\[\d+\]$/) };
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
