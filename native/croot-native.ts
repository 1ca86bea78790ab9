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

/** A readiness watch on one fd, on the event loop (a uv_poll_t). */
export interface FdWatcher {
  /** Ends the watch; idempotent, safe inside the callback. Stop it before closing the fd. */
  stop(): void;
  /** Makes the watch keep the event loop alive (the default). */
  ref(): void;
  /** Lets the event loop end while the watch is on, like an unref'd timer. */
  unref(): void;
}

export interface FdWatcherConstructor {
  /**
   * Starts watching `fd` at once: `onReadable` runs on the event loop each
   * time the fd is readable (level-triggered: until it is drained), with an
   * error when libuv reports one. The fd stays the caller's. An exception
   * thrown by `onReadable` is an uncaught exception, as for any listener.
   */
  new (fd: number, onReadable: (err?: NativeError) => void): FdWatcher;
}

/** What a StreamSocket tells its callback: 0 data, 1 end, 2 drain, 3 error. */
export const StreamSocketEvent = { DATA: 0, END: 1, DRAIN: 2, ERROR: 3 } as const;
export type StreamSocketEvent = (typeof StreamSocketEvent)[keyof typeof StreamSocketEvent];

/** A connected stream socket read and written on the event loop by the addon (a uv_poll_t, read(2), send(2)). */
export interface StreamSocket {
  /**
   * Sends what the kernel takes now and queues the rest, written when the
   * socket is writable again. Returns the bytes now queued (0: all sent),
   * or -errno when the socket cannot be written (EPIPE after end()).
   */
  write(bytes: Uint8Array): number;
  /** Stops reading (what is queued is still written). */
  pause(): void;
  resume(): void;
  /** Shuts down the writing side once the queue is written; reading goes on. */
  end(): void;
  /** Stops watching and closes its fd, dropping what is queued; idempotent, safe inside the callback. */
  close(): void;
  /** Bytes queued, not yet taken by the kernel. */
  readonly queued: number;
  /** Its fd (the duplicate it owns); -1 once closed. */
  readonly fd: number;
  /**
   * JavaScript has nothing pending: until the next call into JavaScript the
   * socket answers from its ReplyCache what it holds (as `onEvent`
   * returning true).
   */
  idle(): void;
  /** Requests answered from the ReplyCache. */
  readonly answered: number;
  /** When the last of them was answered, in ms of process.hrtime(); 0 when none. */
  readonly lastAnswered: number;
}

export interface StreamSocketConstructor {
  /**
   * Reads and writes a duplicate of `fd` (close the original at once; the
   * connection lives on in the duplicate), reading at once. `onEvent` runs on
   * the event loop: DATA with the bytes of one read, END when the peer shut
   * down its side, DRAIN when the queue is written, ERROR (nothing more is
   * read or written; close it). An exception thrown by `onEvent` is an
   * uncaught exception, as for any listener. `onEvent` returns true when
   * JavaScript has nothing pending after it (DATA makes it busy first).
   * With `replyCache`, bytes read while JavaScript is idle that are all
   * requests the cache holds are answered from it, without `onEvent`.
   */
  new (
    fd: number,
    onEvent: (kind: StreamSocketEvent, value: Buffer | NativeError | undefined) => boolean | void,
    replyCache?: ReplyCache,
  ): StreamSocket;
}

/** What a ReplyCache holds and has answered. */
export interface ReplyCacheInfo {
  readonly entries: number;
  /** Bytes of requests and replies held. */
  readonly bytes: number;
  /** remember() calls refused because it was full (or held the request already). */
  readonly refused: number;
  /** Requests answered from it, by kind. */
  readonly hits: { readonly hostname: number; readonly processid: number; readonly cgroupname: number };
}

/**
 * Replies given before, by the exact bytes of their request, which the
 * StreamSockets given this cache send again by themselves while the
 * reply's process lives (a zero-timeout poll of its pidfd per answer) and,
 * for a hostname, while utsGeneration() stays what it was.
 */
export interface ReplyCache {
  /**
   * Keeps `reply` for `request` (a HOSTNAME, PROCESSID or CGROUPNAME
   * request, whole). `pidfd` is used, not copied: keep it open until
   * forget(). `generation`: for a hostname, the utsGeneration() its answer
   * was read under; -1 otherwise. False when not kept (full, too long, not
   * such a request, a hostname without a generation, held already).
   */
  remember(request: Uint8Array, reply: Uint8Array, pidfd: number, generation: number): boolean;
  /** Drops every entry (their pidfds may be closed after); the number dropped. */
  forget(): number;
  info(): ReplyCacheInfo;
}

export interface ReplyCacheConstructor {
  /** Empty; holds at most `maxEntries` replies and `maxBytes` of requests and replies together. */
  new (maxEntries: number, maxBytes: number): ReplyCache;
}

/** One inotify event, decoded. */
export interface InotifyEvent {
  /** The watch it belongs to; -1 for IN_Q_OVERFLOW. */
  readonly wd: number;
  /** IN_* bits. */
  readonly mask: number;
  /** Pairs an IN_MOVED_FROM with its IN_MOVED_TO. */
  readonly cookie: number;
  /** The entry's name; '' when the event is about the watched directory itself. */
  readonly name: string;
}

/** The IN_* constants of <sys/inotify.h>. */
export interface InotifyMasks {
  readonly ACCESS: number;
  readonly MODIFY: number;
  readonly ATTRIB: number;
  readonly CLOSE_WRITE: number;
  readonly MOVED_FROM: number;
  readonly MOVED_TO: number;
  readonly CREATE: number;
  readonly DELETE: number;
  readonly DELETE_SELF: number;
  readonly MOVE_SELF: number;
  readonly UNMOUNT: number;
  readonly Q_OVERFLOW: number;
  readonly IGNORED: number;
  readonly ONLYDIR: number;
  readonly DONT_FOLLOW: number;
  readonly EXCL_UNLINK: number;
  readonly ISDIR: number;
}

/** RLIMIT_NOFILE; `Infinity` stands for RLIM_INFINITY. */
export interface FdLimit {
  readonly soft: number;
  readonly hard: number;
}

/** One passwd entry, as NSS gives it. */
export interface PasswdEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  readonly shell: string;
}

/** The namespace thread, for diagnostics and tests. */
export interface NamespaceThreadInfo {
  /** The running thread's tid (as in /proc/PID/task/TID); 0 when none runs. */
  readonly tid: number;
  /** How many namespace threads were started in this environment. */
  readonly generation: number;
  /** How many were discarded because they could not prove they were back home. */
  readonly replaced: number;
  /** Jobs waiting for the thread. */
  readonly queued: number;
  /** readHostnameNow calls answered while the JS thread waited (no Promise). */
  readonly answeredAtOnce: number;
  /** Jobs answered through a Promise (readHostname, and readHostnameNow calls that were handed over). */
  readonly handedOver: number;
}

/** Token for the loaded addon (bound by nativeModule, replaceable in tests). */
export const CrootNative = Symbol.for('croot/CrootNative');
/** The addon. Synchronous functions do not block except where noted. */
export interface CrootNative {
  /** SO_PEERCRED of the connected unix socket `fd`. */
  peerCredentials(fd: number): NativePeerCredentials;
  /**
   * The hostname in the UTS namespace of `pid`, read on the namespace thread
   * (one long-lived thread of croot's own): setns through `pidfd` when given
   * (the job keeps its own copy; ESRCH once that process has exited), else
   * through /proc/<pid>/ns/uts; gethostname; setns back home. A thread that
   * is not home afterwards fails the job (ENOTRECOVERABLE, or setns's errno)
   * and is replaced.
   */
  readHostname(pid: number, pidfd?: number): Promise<string>;
  /**
   * The same read, answered at once when it can be: when the namespace thread
   * is idle, the JS thread spins for its answer for at most `waitMicros`
   * (default 50, at most 200; 0: never), and only while the event loop has
   * no events waiting; the hostname is returned (or the error thrown) when it
   * came within that. Otherwise a Promise, as from readHostname. `pidfd` is
   * borrowed, not copied: keep it open until the call has returned a string
   * or its Promise has settled.
   */
  readHostnameNow(pid: number, pidfd?: number, waitMicros?: number): string | Promise<string>;
  /** The namespace thread now. */
  namespaceThreadInfo(): NamespaceThreadInfo;
  /**
   * A count that grows each time a hostname is set in any UTS namespace of
   * this kernel (sethostname, or a write of /proc/sys/kernel/hostname): one
   * poll(POLLPRI, timeout 0) of /proc/sys/kernel/hostname, whose sysctl poll
   * event the kernel raises for every such change. -1 when that file cannot
   * be opened: nothing may then be cached on it.
   */
  utsGeneration(): number;
  /** Test-only: the next job that enters a namespace does not setns back, so its thread must be replaced. */
  _testSkipNextReturn(): void;
  /** pidfd_open(pid, 0): a close-on-exec pidfd. ESRCH when there is no such process. */
  pidfdOpen(pid: number): number;
  /** One poll(POLLIN, timeout 0) of a pidfd: false once the process has exited (zombie or reaped). EBADF for a closed fd. */
  pidfdIsAlive(pidfd: number): boolean;
  /** epoll_create1(EPOLL_CLOEXEC). */
  epollCreate(): number;
  /** epoll_ctl(ADD) of `fd` for EPOLLIN (level-triggered); epollWait reports it as `key` (an integer up to 2^53-1). */
  epollAdd(epfd: number, fd: number, key: number): void;
  /** epoll_ctl(DEL): `fd` is never reported again, even if it was ready. */
  epollRemove(epfd: number, fd: number): void;
  /** epoll_wait with timeout 0: the keys of up to `maxEvents` (1-4096) ready fds; [] when none. */
  epollWait(epfd: number, maxEvents: number): number[];
  /** Readiness watches on the event loop. */
  readonly FdWatcher: FdWatcherConstructor;
  /** Connected sockets read and written on the event loop. */
  readonly StreamSocket: StreamSocketConstructor;
  readonly ReplyCache: ReplyCacheConstructor;
  /** inotify_init1(IN_NONBLOCK | IN_CLOEXEC). */
  inotifyInit(): number;
  /** inotify_add_watch; the same inode gives the same wd. */
  inotifyAddWatch(fd: number, path: string, mask: number): number;
  /** inotify_rm_watch; EINVAL when the watch has already ended. */
  inotifyRmWatch(fd: number, wd: number): void;
  /** One non-blocking read of the inotify fd, decoded; [] when nothing is queued. */
  inotifyRead(fd: number): InotifyEvent[];
  readonly IN: InotifyMasks;
  /** getrlimit(RLIMIT_NOFILE). */
  getFdLimit(): FdLimit;
  /** setrlimit(RLIMIT_NOFILE) with the soft limit raised to the hard one; returns the limits now in force. */
  raiseFdLimit(): FdLimit;
  /** malloc_trim(0): gives the system back the free pages of every malloc arena; true when some were. */
  releaseFreeMemory(): boolean;
  /** V8's low-memory collection on this isolate: full compacting collections, new space shrunk, free pages given back. */
  reduceHeap(): boolean;
  /** getpwnam_r through NSS; null when there is no such user. May block on a remote directory (sssd, LDAP). */
  getUserByName(name: string): PasswdEntry | null;
  /** getpwuid_r through NSS; null when there is no such user. May block like getUserByName. */
  getUserById(uid: number): PasswdEntry | null;
  /** setpwent/getpwent_r/endpwent: every user NSS enumerates (sssd/LDAP may list only some). May block. */
  listUsers(): PasswdEntry[];
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
  'readHostnameNow',
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
  'namespaceThreadInfo',
  'utsGeneration',
  '_testSkipNextReturn',
  'pidfdOpen',
  'pidfdIsAlive',
  'epollCreate',
  'epollAdd',
  'epollRemove',
  'epollWait',
  'FdWatcher',
  'StreamSocket',
  'ReplyCache',
  'inotifyInit',
  'inotifyAddWatch',
  'inotifyRmWatch',
  'inotifyRead',
  'getFdLimit',
  'raiseFdLimit',
  'releaseFreeMemory',
  'reduceHeap',
  'getUserByName',
  'getUserById',
  'listUsers',
] as const satisfies readonly (keyof CrootNative)[];
