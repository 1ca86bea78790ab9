/**
 * The privileged process services of the root protocol (STARTPMDA and
 * STOPPMDA): start an agent as root and hand its pipes back, then kill or
 * reap it. Bound by the feature module that implements it; when nothing is
 * bound the server answers those requests with -ENOTSUP.
 */
import type { PeerCredentials } from '../host/host-services.js';

export interface ProcessStartRequest {
  /** 1 = socket IPC (no fds), 2 = pipe IPC (two pipes). */
  readonly ipctype: number;
  readonly label: string;
  /** The command line as pmcd builds it (quoted words). */
  readonly args: string;
}

export interface StartedProcess {
  readonly pid: number;
  /** Pipe IPC: [write end of the child's stdin, read end of its stdout]; the caller sends then closes them. */
  readonly fds: readonly number[];
}

export interface ProcessStopResult {
  /** Reaped or signalled pid; 0 when nothing has exited yet; -1 when there are no children. */
  readonly pid: number;
  /** Raw wait status (as waitpid gives it). */
  readonly code: number;
}

export const ProcessService = Symbol.for('croot/ProcessService');
/**
 * `peer` is the client's SO_PEERCRED; `undefined` means a call from inside
 * crootd itself (no client), which counts as root.
 */
export interface ProcessService {
  /**
   * Starts a child as root. Root may start any program; another uid only the
   * agents pmcd.conf names (ERR_NOT_PERMITTED otherwise). Throws a CrootError
   * whose status is what the reply carries (e.g. -ENOENT, -EPERM).
   */
  start(request: ProcessStartRequest, peer: PeerCredentials | undefined): Promise<StartedProcess>;
  /** SIGKILL a child this service started; any other pid is refused (ERR_NOT_CHILD). */
  terminate(pid: number, peer: PeerCredentials | undefined): Promise<ProcessStopResult>;
  /** Non-blocking reap: `pid <= 0` means any child of this service. */
  wait(pid: number, peer: PeerCredentials | undefined): Promise<ProcessStopResult>;
  /** Kills and reaps every child still running (server shutdown). */
  shutdown(): Promise<void>;
}
