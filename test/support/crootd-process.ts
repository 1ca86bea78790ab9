/**
 * The built crootd and croot (`dist/bin/*.js`) as a user runs them: crootd
 * spawned in the foreground with its log in a file, croot run to completion
 * with its exit status, stdout and stderr kept apart.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { resolve } from 'node:path';
import { childrenOf } from './processes.js';

export const CROOTD = resolve(__dirname, '..', '..', 'dist', 'bin', 'crootd.js');
export const CROOT = resolve(__dirname, '..', '..', 'dist', 'bin', 'croot.js');

/** Undefined when both built entry points exist, else what is missing (a describeWith probe). */
export function builtBinaries(): string | undefined {
  const missing = [CROOTD, CROOT].filter((p) => !existsSync(p));
  return missing.length === 0 ? undefined : `${missing.join(', ')} missing: run npm run build`;
}

/** How a process ended. */
export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface CrootdProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly socketPath: string;
  readonly logPath: string;
  /** Host pid of the node process running crootd (under a forking wrapper, the wrapper's descendant). */
  serverPid(): number;
  /** Resolves when crootd has exited. */
  readonly exited: Promise<Exit>;
  /** The log file so far ('' when it does not exist yet). */
  log(): string;
  /** What crootd wrote on stderr so far. */
  stderr(): string;
  /**
   * Sends `signal` (default SIGTERM) and waits up to `timeoutMs` for the
   * exit; SIGKILLs it after that. The exit as it happened (a SIGKILL shows).
   */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
}

export interface StartCrootdOptions {
  readonly socketPath: string;
  readonly logPath: string;
  /** More arguments (`--config FILE`, `--allow-uid N`, ...). */
  readonly args?: readonly string[];
  /** Environment (default: this process's). */
  readonly env?: NodeJS.ProcessEnv;
  /** How long to wait for `INFO listening` (default 30 s). */
  readonly startTimeoutMs?: number;
  /**
   * A command crootd runs under, e.g. `['unshare', '--pid', '--fork', ...]`
   * or `['sh', '-c', 'trap "" USR2; exec "$0" "$@"']`: `node crootd.js ARGS`
   * is appended. `pid` is then the wrapper's (the same as crootd's when it
   * execs); `serverPid()` finds crootd itself.
   */
  readonly wrapper?: readonly string[];
  /** The crootd to run (default: this checkout's dist/bin/crootd.js); run directly when it is not a .js file. */
  readonly bin?: string;
}

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Spawns crootd without waiting for it. */
export function spawnCrootd(options: StartCrootdOptions): CrootdProcess {
  const bin = options.bin ?? CROOTD;
  const argv = ['--socket', options.socketPath, '--log-file', options.logPath, ...(options.args ?? [])];
  const command = [...(options.wrapper ?? []), ...(bin.endsWith('.js') ? [process.execPath, bin] : [bin]), ...argv];
  const child = spawn(command[0] as string, command.slice(1), {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: options.env ?? process.env,
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<Exit>((res) => child.once('exit', (code, signal) => res({ code, signal })));
  const stop = async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10000): Promise<Exit> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const exit = await exited;
    clearTimeout(timer);
    return exit;
  };
  return {
    child,
    pid: child.pid ?? -1,
    serverPid: () => nodeProcessUnder(child.pid ?? -1),
    socketPath: options.socketPath,
    logPath: options.logPath,
    exited,
    log: () => readOr(options.logPath),
    stderr: () => stderr,
    stop,
  };
}

/** `pid` when it runs node, else the first node process among its descendants (found through /proc). */
function nodeProcessUnder(pid: number): number {
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift() as number;
    try {
      if (readlinkSync(`/proc/${p}/exe`) === process.execPath) return p;
    } catch {
      // gone
    }
    queue.push(...childrenOf(p));
  }
  throw new Error(`no node process under ${pid}`);
}

/** Spawns crootd and resolves once its log says `INFO listening`; kills it and rejects if it does not. */
export async function startCrootd(options: StartCrootdOptions): Promise<CrootdProcess> {
  const crootd = spawnCrootd(options);
  const deadline = Date.now() + (options.startTimeoutMs ?? 30000);
  while (!/ INFO listening /.test(crootd.log())) {
    if (crootd.child.exitCode !== null || crootd.child.signalCode !== null || Date.now() > deadline) {
      await crootd.stop('SIGKILL', 1000);
      throw new Error(`crootd did not start listening on ${options.socketPath}:\nstderr: ${crootd.stderr()}\nlog: ${crootd.log()}`);
    }
    await sleep(50);
  }
  return crootd;
}

/** The result of one croot (or any command) run. */
export interface CommandResult {
  /** Exit status; null when it died of a signal. */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `node dist/bin/croot.js ARGS...` to completion. Asynchronous, so a
 * server or relay in this same process keeps answering meanwhile.
 */
export function runCroot(args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CommandResult> {
  return runCommand(process.execPath, [CROOT, ...args], options);
}

/** Runs `file ARGS...` to completion without throwing on a non-zero exit. */
export function runCommand(file: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CommandResult> {
  return new Promise((res) => {
    execFile(file, [...args], { encoding: 'utf8', timeout: options.timeoutMs ?? 30000, env: options.env ?? process.env }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null;
      res({ code, stdout, stderr });
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Calls `attempt` until `done(value)` holds or `timeoutMs` passes; returns the
 * last value (the caller's expectation then shows what it was). A throw
 * counts as a value that is not done.
 */
export async function retryUntil<T>(attempt: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await attempt();
    if (done(value) || Date.now() > deadline) return value;
    await sleep(intervalMs);
  }
}
