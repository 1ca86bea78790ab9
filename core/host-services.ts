/**
 * What the core needs from the host that Node cannot do alone. The native
 * module (native/) binds implementations to these tokens; the core never
 * imports it.
 */

export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

/** Reads a container's hostname from inside its UTS namespace. */
export const NamespaceHostnameReader = Symbol.for('croot/NamespaceHostnameReader');
export interface NamespaceHostnameReader {
  /** Resolves the hostname seen by `pid`; runs on a thread of its own, never the event loop. */
  readHostname(pid: number, signal?: AbortSignal): Promise<string>;
}

/** SO_PEERCRED of a connected unix socket. */
export const PeerCredentialReader = Symbol.for('croot/PeerCredentialReader');
export interface PeerCredentialReader {
  /** Returns the credentials of the peer of socket `fd`; does not block. */
  peerCredentials(fd: number): PeerCredentials;
}

/** Writes on a unix socket with file descriptors attached (SCM_RIGHTS). */
export const FdSender = Symbol.for('croot/FdSender');
export interface FdSender {
  /** Sends `data` and `fds` in one sendmsg on the (blocking or not) socket `fd`. Returns bytes sent. */
  sendWithFds(fd: number, data: Buffer, fds: readonly number[]): number;
}

/** How a spawned child's standard fds are wired; -1 for stdin means /dev/null. */
export interface SpawnStdio {
  readonly stdin: number;
  readonly stdout: number;
  readonly stderr: number;
}

export interface ReapedProcess {
  /** The reaped pid; 0 when the child has not exited yet. */
  readonly pid: number;
  /** Raw wait status, as waitpid gives it. */
  readonly status: number;
}

/**
 * Process primitives the process service needs and Node does not give:
 * posix_spawn with exact fd wiring (every other fd closed), pipes, and
 * waitpid on children libuv does not know about.
 */
export const ProcessSpawner = Symbol.for('croot/ProcessSpawner');
export interface ProcessSpawner {
  /** A CLOEXEC pipe: [readFd, writeFd]. */
  pipe(): [number, number];
  /** Starts `file` with `argv` and `env`; throws with `errno`/`code` when it cannot be executed. */
  spawn(file: string, argv: readonly string[], env: readonly string[], stdio: SpawnStdio): number;
  /** Non-blocking reap of `pid` (a child of this process). */
  reap(pid: number): ReapedProcess;
  /** Sends `signal` to `pid`. */
  kill(pid: number, signal: number): void;
}
