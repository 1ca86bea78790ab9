/**
 * The native addon's surface (native/src/*.cc), typed once, here. The addon
 * is a thin layer of system calls; all policy lives in TypeScript.
 *
 * Every function throws (or its Promise rejects with) a {@link NativeError}
 * for a failed system call, and a TypeError with `code` ERR_INVALID_ARG_TYPE
 * or ERR_INVALID_ARG_VALUE for a bad argument. Every fd it creates or receives
 * is close-on-exec. See docs/native.md.
 */

/** A failed system call, as the addon reports it. */
export interface NativeError extends Error {
  /** The errno's name, e.g. 'ENOENT', 'ESRCH', 'ETIMEDOUT'. */
  readonly code: string;
  /** The errno, positive. */
  readonly errno: number;
  /** The call that failed, e.g. 'open', 'setns', 'execve'. */
  readonly syscall: string;
  /** The file the call was about, when there is one. */
  readonly path?: string;
}

/** True for an error the addon built from an errno. */
export function isNativeError(err: unknown): err is NativeError {
  // No instanceof: the addon's errors may come from another realm (e.g. under Jest).
  if (typeof err !== 'object' || err === null) return false;
  const e = err as Partial<NativeError>;
  return typeof e.message === 'string' && typeof e.code === 'string' && typeof e.errno === 'number' && typeof e.syscall === 'string';
}

export interface NativePeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

/** One message read by recvWithFds. */
export interface ReceivedMessage {
  /** The bytes read; empty when the peer closed the connection. */
  readonly data: Buffer;
  /** The fds that came with them (close-on-exec, now owned by the caller). */
  readonly fds: number[];
}

/** The fds a spawned child gets as 0, 1 and 2; absent or -1 means /dev/null. */
export interface SpawnStdio {
  readonly stdin?: number;
  readonly stdout?: number;
  readonly stderr?: number;
}

/** What waitpid reported. */
export interface WaitResult {
  /** The reaped pid, or 0 when WNOHANG found nothing to reap. */
  readonly pid: number;
  /** The raw wait status (0 when nothing was reaped). */
  readonly status: number;
  readonly exited: boolean;
  /** The exit status when `exited`, else null. */
  readonly exitCode: number | null;
  readonly signaled: boolean;
  /** The terminating signal's number when `signaled`, else null. */
  readonly signal: number | null;
}

/** Token for the loaded addon (bound by nativeModule, replaceable in tests). */
export const CrootNative = Symbol.for('croot/CrootNative');
/** The addon. Synchronous functions do not block except where noted. */
export interface CrootNative {
  /** SO_PEERCRED of the connected unix socket `fd`. */
  peerCredentials(fd: number): NativePeerCredentials;
  /**
   * The hostname in the UTS namespace of `pid`: open /proc/<pid>/ns/uts,
   * setns, gethostname, on a thread created for this call and discarded after.
   */
  readHostname(pid: number): Promise<string>;
  /**
   * One sendmsg(MSG_NOSIGNAL) of `data` with all `fds` in one SCM_RIGHTS
   * control message. On a non-blocking socket that is full, waits up to about
   * a second (poll) and then throws EAGAIN. Returns the bytes sent.
   */
  sendWithFds(fd: number, data: Uint8Array, fds: readonly number[]): number;
  /** A blocking, connected, close-on-exec SOCK_STREAM unix socket. Blocks while connecting. */
  connectUnix(path: string): number;
  /** One send(MSG_NOSIGNAL); blocks if `fd` is blocking and full. Returns the bytes sent. */
  send(fd: number, data: Uint8Array): number;
  /**
   * One poll (up to `timeoutMs`, -1 forever; ETIMEDOUT when it expires) and one
   * recvmsg(MSG_CMSG_CLOEXEC) of at most `maxBytes` on a thread of its own.
   * Do not close `fd` while this is pending.
   */
  recvWithFds(fd: number, maxBytes: number, timeoutMs: number): Promise<ReceivedMessage>;
  /** close(2). */
  close(fd: number): void;
  /** pipe2(O_CLOEXEC): [readFd, writeFd]. */
  pipe(): [number, number];
  /** fcntl(F_GETFD): FD_CLOEXEC or 0. */
  getFdFlags(fd: number): number;
  /** fcntl(F_SETFD). */
  setFdFlags(fd: number, flags: number): void;
  readonly FD_CLOEXEC: number;
  /**
   * execve of `file` (a path; no PATH search) with `argv` and `envp` in a
   * vfork-like child that gets `stdio` as 0/1/2, no other fd, an empty signal
   * mask and every disposition at SIG_DFL (glibc's internal 32 and 33 too).
   * Throws (syscall 'execve') when exec fails.
   */
  spawn(file: string, argv: readonly string[], envp: readonly string[], stdio: SpawnStdio): number;
  /** waitpid(2) on one child (`pid` > 0). Blocks unless `flags` has WNOHANG. */
  waitpid(pid: number, flags: number): WaitResult;
  readonly WNOHANG: number;
  /** kill(2) of one process (`pid` > 0; groups are refused). */
  kill(pid: number, signal: number): void;
}

/** The names the loader checks a loaded addon for. */
export const crootNativeFunctions = [
  'peerCredentials',
  'readHostname',
  'sendWithFds',
  'connectUnix',
  'send',
  'recvWithFds',
  'close',
  'pipe',
  'getFdFlags',
  'setFdFlags',
  'spawn',
  'waitpid',
  'kill',
] as const satisfies readonly (keyof CrootNative)[];
