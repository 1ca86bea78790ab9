/**
 * croot's ProcessService: starts pmcd's agents as root (STARTPMDA), kills
 * and reaps them (STOPPMDA), and only ever touches processes it started
 * itself. Root may start anything; any other client (pmcd as the pcp user)
 * only the agents pmcd.conf names, with pmcd's exact command line. Children
 * are reaped automatically, so none is left a zombie whether or not anybody
 * asks; their exit statuses are kept (a bounded number) for the wait
 * requests pmcd makes later.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { inject, injectable, optional } from 'inversify';
import { splitCommandLine } from './pmcd-command-line.js';
import { CrootConfig } from '../config/croot-config.js';
import { closeFds } from '../host/close-fds.js';
import { CrootError, Errno } from '../errors/croot-error.js';
import { errnoOf, systemError } from '../errors/system-error.js';
import { ProcessSpawner, type PeerCredentials } from '../host/host-services.js';
import { Logger, SilentLogger } from '../logging/logger.js';
import { PmcdConfAgents, pmcdConfPath } from './pmcd-conf-agents.js';
import type { ProcessService, ProcessStartRequest, ProcessStopResult, StartedProcess } from './process-service.js';
import { IpcType, MAXPATHLEN, MAXPMDALEN } from '../protocol/root-pdus.js';

/** The PATH children get, and where a bare program name is looked up. */
export const SAFE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** PCP's admin binary directories (Debian: /usr/lib/pcp/bin; Fedora: /usr/libexec/pcp/bin), searched after SAFE_PATH. */
export const PCP_BINADM_DIRS = ['/usr/lib/pcp/bin', '/usr/libexec/pcp/bin'];

/** Variables passed from crootd's environment to children, besides every PCP_* one. */
const PASSED_VARIABLES = ['HOME', 'LANG', 'LC_ALL', 'TZ'];

const SIGKILL = 9;

/** Refusals remembered so each (uid, command) is logged once; the oldest forgotten first. */
const MAX_REMEMBERED_REFUSALS = 256;

export interface ProcessManagerOptions {
  /**
   * The fd children get as stderr (crootd's log), or a function asked at
   * each start (crootd's log file, reopened on SIGHUP). Default 2.
   */
  readonly childStderrFd?: number | (() => number);
  /** How often exited children are reaped while any runs. Default 200 ms. */
  readonly reapIntervalMs?: number;
  /** Exit statuses kept for later wait requests; the oldest are dropped first. Default 1024. */
  readonly maxExitStatuses?: number;
  /** How long terminate waits for the killed child to be reaped before replying. Default 500 ms. */
  readonly terminateReapMs?: number;
  /** Extra directories searched for a bare program name, after SAFE_PATH and PCP's. */
  readonly extraSearchDirs?: readonly string[];
}

export const ProcessManagerOptions = Symbol.for('croot/ProcessManagerOptions');

interface Child {
  readonly pid: number;
  readonly label: string;
  readonly startedBy: number | undefined;
}

@injectable()
export class ProcessManager implements ProcessService {
  private readonly logger: Logger;
  private readonly options: Required<Omit<ProcessManagerOptions, 'childStderrFd'>>;
  private readonly childStderrFd: () => number;
  private readonly env: Readonly<Record<string, string | undefined>>;
  /** Children started and not yet reaped. */
  private readonly running = new Map<number, Child>();
  /** Reaped children whose status nobody has asked for yet, oldest first. */
  private readonly exited = new Map<number, { status: number; label: string }>();
  private timer: NodeJS.Timeout | undefined;
  /** The agents an unprivileged client may start. */
  private readonly pmcdConf: PmcdConfAgents;
  private readonly refusalsLogged = new Set<string>();

  constructor(
    @inject(ProcessSpawner) private readonly spawner: ProcessSpawner,
    @inject(Logger) @optional() logger: Logger | undefined,
    @inject(CrootConfig) @optional() config: CrootConfig | undefined,
    @inject(ProcessManagerOptions) @optional() options: ProcessManagerOptions | undefined,
  ) {
    this.logger = logger ?? new SilentLogger();
    this.env = config?.env ?? process.env;
    const stderrFd = options?.childStderrFd ?? 2;
    this.childStderrFd = typeof stderrFd === 'number' ? () => stderrFd : stderrFd;
    this.options = {
      reapIntervalMs: options?.reapIntervalMs ?? 200,
      maxExitStatuses: options?.maxExitStatuses ?? 1024,
      terminateReapMs: options?.terminateReapMs ?? 500,
      extraSearchDirs: options?.extraSearchDirs ?? [],
    };
    this.pmcdConf = new PmcdConfAgents(() => pmcdConfPath(this.env));
  }

  /** Pids started and not yet reaped. */
  get runningPids(): number[] {
    return [...this.running.keys()];
  }

  async start(request: ProcessStartRequest, peer: PeerCredentials | undefined): Promise<StartedProcess> {
    const { ipctype, label, args } = request;
    checkLength('label', label, MAXPMDALEN);
    checkLength('command line', args, MAXPATHLEN);
    if (ipctype !== IpcType.PIPE && ipctype !== IpcType.SOCKET) {
      throw new CrootError('ERR_PROTOCOL', `unknown ipctype ${ipctype} (1 socket, 2 pipe)`, { status: -Errno.EINVAL });
    }
    const argv = splitCommandLine(args);
    const program = argv[0];
    if (program === undefined) throw new CrootError('ERR_PROTOCOL', 'empty command line', { status: -Errno.EINVAL });
    if (peer !== undefined && peer.uid !== 0) this.checkNamedByPmcdConf(ipctype, label, args, argv, peer);
    const file = this.resolveProgram(program);
    const env = this.childEnvironment();
    this.logger.info('starting agent', { label, args, file, ipc: ipctype === IpcType.PIPE ? 'pipe' : 'socket', by: peer?.pid });

    const created: number[] = [];
    try {
      let pid: number;
      let fds: number[] = [];
      if (ipctype === IpcType.PIPE) {
        const [childIn, parentIn] = this.spawner.pipe();
        created.push(childIn, parentIn);
        const [parentOut, childOut] = this.spawner.pipe();
        created.push(parentOut, childOut);
        pid = this.spawner.spawn(file, argv, env, { stdin: childIn, stdout: childOut, stderr: this.childStderrFd() });
        // The child's ends live on in the child only.
        closeFds([childIn, childOut]);
        fds = [parentIn, parentOut];
      } else {
        // As pmdaroot does: no stdin, stdout joined to stderr (the log).
        const logFd = this.childStderrFd();
        pid = this.spawner.spawn(file, argv, env, { stdin: -1, stdout: logFd, stderr: logFd });
      }
      created.length = 0;
      // The kernel hands a reaped child's pid out again: a status still kept for it belongs to a dead predecessor.
      const stale = this.exited.get(pid);
      if (stale !== undefined) {
        this.exited.delete(pid);
        this.logger.info('dropped the uncollected exit status of an earlier agent with the same pid', { pid, label: stale.label, ...describeWaitStatus(stale.status) });
      }
      this.running.set(pid, { pid, label, startedBy: peer?.pid });
      this.ensureReaping();
      return { pid, fds };
    } catch (err) {
      closeFds(created);
      throw systemError(err, `cannot start "${label}" (${file})`, { child: true });
    }
  }

  async terminate(pid: number, peer: PeerCredentials | undefined): Promise<ProcessStopResult> {
    if (pid <= 0) {
      throw new CrootError('ERR_NOT_CHILD', `terminate needs one process id, got ${pid}`, { status: -Errno.EINVAL });
    }
    // A live child first: a status kept under its pid can only be a predecessor's.
    const child = this.running.get(pid);
    if (child === undefined) {
      if (this.exited.has(pid)) return { pid, code: 0 }; // already dead; status kept for wait
      this.logger.warn('refused to terminate a process crootd did not start', { pid, by: peer?.pid });
      throw new CrootError('ERR_NOT_CHILD', `process ${pid} was not started by this server; left alone`, { details: { pid } });
    }
    // Not reaped yet, so the pid cannot have been reused: the signal reaches our child (or its zombie).
    if (this.reapOne(child) === undefined) {
      try {
        this.spawner.kill(pid, SIGKILL);
      } catch (err) {
        if (errnoOf(err) !== Errno.ESRCH) throw systemError(err, `cannot kill "${child.label}" (pid ${pid})`, { child: true });
      }
      this.logger.info('terminated agent', { label: child.label, pid, by: peer?.pid });
      await this.awaitExit(child, this.options.terminateReapMs);
    }
    return { pid, code: 0 };
  }

  async wait(pid: number, peer: PeerCredentials | undefined): Promise<ProcessStopResult> {
    this.sweep();
    if (pid <= 0) {
      const first = this.exited.entries().next();
      if (!first.done) {
        const [reaped, { status }] = first.value;
        this.exited.delete(reaped);
        return { pid: reaped, code: status };
      }
      return { pid: this.running.size > 0 ? 0 : -1, code: 0 };
    }
    // Still running (the sweep above reaped it if it had exited): never a predecessor's status.
    if (this.running.has(pid)) return { pid: 0, code: 0 };
    const done = this.exited.get(pid);
    if (done !== undefined) {
      this.exited.delete(pid);
      return { pid, code: done.status };
    }
    this.logger.warn('refused to wait for a process crootd did not start', { pid, by: peer?.pid });
    throw new CrootError('ERR_NOT_CHILD', `process ${pid} is not a child of this server`, { details: { pid } });
  }

  async shutdown(): Promise<void> {
    const children = [...this.running.values()];
    for (const child of children) {
      try {
        this.spawner.kill(child.pid, SIGKILL);
      } catch {
        // already gone; reaped below
      }
    }
    await Promise.all(children.map((child) => this.awaitExit(child, 5000)));
    for (const child of this.running.values()) {
      this.logger.error('child did not die on SIGKILL', { label: child.label, pid: child.pid });
    }
    this.stopReaping();
    if (children.length > 0) this.logger.info('stopped agents', { count: children.length });
  }

  /**
   * For a client other than root: the request must be one pmcd would send
   * for an agent of pmcd.conf (same label, IPC type and argv), else
   * ERR_NOT_PERMITTED (-EPERM), logged once per uid, command and reason.
   */
  private checkNamedByPmcdConf(ipctype: number, label: string, args: string, argv: readonly string[], peer: PeerCredentials): void {
    const conf = this.pmcdConf.current();
    const named = conf.agents.some((a) => a.label === label && a.ipctype === ipctype && sameWords(a.argv, argv));
    if (named) return;
    const why = conf.error ?? `${conf.path} names no ${ipctype === IpcType.PIPE ? 'pipe' : 'socket'} agent "${label}" with this command line`;
    const key = `${peer.uid}\0${ipctype}\0${label}\0${args}\0${why}`;
    if (!this.refusalsLogged.has(key)) {
      if (this.refusalsLogged.size >= MAX_REMEMBERED_REFUSALS) this.refusalsLogged.delete(this.refusalsLogged.values().next().value as string);
      this.refusalsLogged.add(key);
      this.logger.warn('refused to start an agent pmcd.conf does not name', { uid: peer.uid, pid: peer.pid, label, args, reason: why });
    }
    throw new CrootError('ERR_NOT_PERMITTED', `uid ${peer.uid} may start only the agents pmcd.conf names: ${why}`, {
      details: { uid: peer.uid, label, pmcdConf: conf.path },
    });
  }

  /** The file to execute: an absolute path as is; a bare name looked up in SAFE_PATH then PCP's directories. */
  private resolveProgram(program: string): string {
    if (program.startsWith('/')) return program;
    if (program.includes('/')) {
      throw new CrootError('ERR_PROTOCOL', `program "${program}" is a relative path; give an absolute one`, { status: -Errno.EINVAL });
    }
    const dirs = [...SAFE_PATH.split(':'), ...this.pcpBinDirs(), ...this.options.extraSearchDirs];
    for (const dir of dirs) {
      const candidate = `${dir}/${program}`;
      try {
        if (!statSync(candidate).isFile()) continue;
        accessSync(candidate, constants.X_OK);
        return candidate;
      } catch {
        // not here
      }
    }
    throw new CrootError('ERR_SYSTEM', `program "${program}" not found in ${dirs.join(':')}`, { status: -Errno.ENOENT });
  }

  private pcpBinDirs(): string[] {
    const fromEnv = this.env.PCP_BINADM_DIR;
    return fromEnv ? [fromEnv, ...PCP_BINADM_DIRS.filter((d) => d !== fromEnv)] : PCP_BINADM_DIRS;
  }

  /** A clean environment: the fixed PATH, HOME/LANG/LC_ALL/TZ and every PCP_* variable crootd was given. */
  private childEnvironment(): string[] {
    const env = [`PATH=${SAFE_PATH}`];
    for (const [key, value] of Object.entries(this.env)) {
      if (value === undefined || key.includes('=')) continue;
      if (key.startsWith('PCP_') || PASSED_VARIABLES.includes(key)) env.push(`${key}=${value}`);
    }
    return env;
  }

  /** Reaps `child` if it has exited; returns its raw status, else undefined. */
  private reapOne(child: Child): number | undefined {
    let reaped;
    try {
      reaped = this.spawner.reap(child.pid);
    } catch (err) {
      // ECHILD: somebody else reaped it; nothing to keep.
      this.logger.warn('cannot reap child', { label: child.label, pid: child.pid, error: (err as Error).message });
      this.running.delete(child.pid);
      this.updateTimer();
      return -1;
    }
    if (reaped.pid === 0) return undefined;
    this.running.delete(child.pid);
    this.remember(child, reaped.status);
    this.updateTimer();
    return reaped.status;
  }

  private remember(child: Child, status: number): void {
    this.exited.set(child.pid, { status, label: child.label });
    this.logger.info('agent exited', { label: child.label, pid: child.pid, ...describeWaitStatus(status) });
    while (this.exited.size > this.options.maxExitStatuses) {
      const oldest = this.exited.keys().next();
      if (oldest.done) break;
      this.exited.delete(oldest.value);
      this.logger.debug('dropped an exit status nobody asked for', { pid: oldest.value });
    }
  }

  /** Reaps every child that has exited. */
  private sweep(): void {
    for (const child of [...this.running.values()]) this.reapOne(child);
  }

  private async awaitExit(child: Child, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let delay = 1;
    while (this.running.has(child.pid) && this.reapOne(child) === undefined && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 20);
    }
  }

  private ensureReaping(): void {
    if (this.timer !== undefined || this.running.size === 0) return;
    this.timer = setInterval(() => this.sweep(), this.options.reapIntervalMs);
    this.timer.unref();
  }

  private updateTimer(): void {
    if (this.running.size === 0) this.stopReaping();
  }

  private stopReaping(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}

function sameWords(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((word, i) => word === b[i]);
}

function checkLength(what: string, value: string, limit: number): void {
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes === 0) throw new CrootError('ERR_PROTOCOL', `empty ${what}`, { status: -Errno.EINVAL });
  if (bytes >= limit) throw new CrootError('ERR_TOO_LONG', `${what} of ${bytes} bytes exceeds ${limit - 1}`);
}

/** Exit code or signal of a raw wait status (as waitpid gives it), for logs. */
export function describeWaitStatus(status: number): { exitCode?: number; signal?: number } {
  const signal = status & 0x7f;
  if (signal === 0) return { exitCode: (status >> 8) & 0xff };
  return { signal };
}
