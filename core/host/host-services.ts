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
  /**
   * Resolves the hostname seen by a process: by `pid` alone through
   * `/proc/PID/ns/uts`, or through a {@link ProcessHandle} whose pidfd is
   * entered directly (`setns(pidfd, CLONE_NEWUTS)`), so a reused PID can never
   * be entered. Runs on a namespace thread of the native module's own, never
   * on the event loop or a libuv pool thread.
   */
  readHostname(target: number | ProcessHandle, signal?: AbortSignal): Promise<string>;
  /**
   * The same read for the request path: the hostname itself when the
   * namespace thread answers within a few tens of µs while the event loop has
   * nothing else to do (the loop waits for it, bounded), else a promise.
   * Throws (or rejects with) the same CrootErrors. `checkedAlive`: the
   * caller has just seen `target.isAlive()` true, with no JavaScript run
   * since, so a hostname kept from an earlier read through the same handle
   * is answered without checking the process again.
   */
  readHostnameNow(target: number | ProcessHandle, checkedAlive?: boolean): string | Promise<string>;
}

/**
 * A handle on one process that cannot be confused with a later process that
 * gets the same PID: a pidfd where the kernel has them, else the PID and its
 * start time (checked against /proc on every `isAlive()`).
 */
export interface ProcessHandle {
  readonly pid: number;
  /** The pidfd (close-on-exec), or undefined when the handle is the /proc fallback. */
  readonly pidfd: number | undefined;
  /**
   * False once the process has exited (a zombie counts as exited). With a
   * pidfd: one zero-timeout poll(2), nothing allocated. Never throws.
   */
  isAlive(): boolean;
  /** Stops watching for the exit and closes the pidfd. Idempotent. */
  close(): void;
}

/** How a ProcessAnchor holds processes. */
export interface ProcessAnchorMode {
  /** `pidfd`, or `proc` (start-time checks through /proc) when pidfds cannot be used. */
  readonly kind: 'pidfd' | 'proc';
  /** Why pidfds are not used (old kernel, fd limit reached), for `croot engines` and the log. */
  readonly reason?: string;
}

/**
 * Holds running processes by pidfd (pidfd_open) and reports their exit on
 * the event loop, with no request needed. The registry anchors each running
 * container's init process through it.
 */
export const ProcessAnchor = Symbol.for('croot/ProcessAnchor');
export interface ProcessAnchor {
  /** How processes are held now; changes to `proc` when pidfds run out. */
  mode(): ProcessAnchorMode;
  /**
   * Opens a handle on `pid` and arranges for `onExit` to be called once, on
   * the event loop, soon after the process exits. Returns undefined when the
   * process does not exist (ESRCH), and a handle with `pidfd` undefined when
   * pidfds cannot be used (ENOSYS, EMFILE...): then `onExit` is never called
   * and `isAlive()` is the caller's only check. Never blocks.
   */
  open(pid: number, onExit: () => void): ProcessHandle | undefined;
}

/** One change in a watched directory. `name` is '' for the directory itself. */
export interface DirectoryEvent {
  readonly name: string;
  /**
   * `changed`: the entry was created, written and closed, moved in or had its
   * attributes changed; `removed`: deleted or moved out; `gone`: the watched
   * directory itself was deleted or moved (the watch has ended);
   * `overflow`: events were lost (re-read the whole directory).
   */
  readonly kind: 'changed' | 'removed' | 'gone' | 'overflow';
}

/**
 * Change notification on directories (inotify in the native module; Node's
 * fs.watch where it is not loaded). Engines watch their on-disk state with
 * it instead of polling.
 */
export const DirectoryWatcher = Symbol.for('croot/DirectoryWatcher');
export interface DirectoryWatcher {
  /**
   * Calls `onEvent` on the event loop for each change of an entry of `dir`
   * (not recursive). Returns a function that ends the watch. Throws a
   * CrootError (with the errno's status) when `dir` cannot be watched, e.g.
   * when it does not exist.
   */
  watch(dir: string, onEvent: (event: DirectoryEvent) => void): () => void;
  /**
   * True when no event is ever lost unsaid: every loss is told to the
   * watches as `overflow` (inotify's IN_Q_OVERFLOW). A safety net may then
   * leave alone what a live watch vouches for. Absent means false.
   */
  readonly reportsLostEvents?: boolean;
}

/** SO_PEERCRED of a connected unix socket. */
export const PeerCredentialReader = Symbol.for('croot/PeerCredentialReader');
export interface PeerCredentialReader {
  /** Returns the credentials of the peer of socket `fd`; does not block. */
  peerCredentials(fd: number): PeerCredentials;
}

/**
 * A connected socket as a RootConnection reads and writes it: what Node's
 * net.Socket offers (so one is a ConnectionSocket as it is), and what the
 * native module's sockets offer without Node's stream machinery.
 */
export interface ConnectionSocket {
  /** Sends `bytes`, queueing what the kernel does not take now. */
  write(bytes: Buffer): unknown;
  /** Shuts down the writing side once everything queued is sent. */
  end(): unknown;
  /** Closes at once, dropping anything queued; 'close' follows, asynchronously. */
  destroy(): unknown;
  pause(): unknown;
  resume(): unknown;
  isPaused(): boolean;
  readonly destroyed: boolean;
  readonly writable: boolean;
  /** Bytes queued, not yet taken by the kernel. */
  readonly writableLength: number;
  /** Bytes are queued: wait for 'drain' before writing more. */
  readonly writableNeedDrain: boolean;
  /** Calls `onIdle` once the socket has seen no traffic for `ms`, again after each new spell of traffic. */
  setTimeout(ms: number, onIdle: () => void): unknown;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'end' | 'drain' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  /**
   * The connection has nothing pending (nothing queued, being answered or
   * half-read): until the next 'data', the socket may answer by itself the
   * requests its server's {@link ReplyCache} holds. Node's sockets lack it.
   */
  idle?(): void;
  /** When it last answered a request by itself, from the ReplyCache (ms of performance.now()); 0 when never. */
  readonly lastAnsweredAlone?: number;
}

/**
 * Replies the connections may send again by themselves, without asking the
 * request handler: the handler remembers an answer it gave at once from the
 * live index, with the process the answer rests on, and forgets them all at
 * every change of the index. An answer is given again only while that
 * process lives (checked on each, as the handler checks it) and, for a
 * hostname, while no hostname has been set anywhere since it was read.
 * Bound by the native module, whose sockets answer from it
 * (docs/native.md, "Replies answered again").
 */
export const ReplyCache = Symbol.for('croot/ReplyCache');
export interface ReplyCache {
  /**
   * Keeps `reply` for the exact bytes of `request` while `holder` lives.
   * False when it is not kept (the cache is full, or cannot hold this
   * process or this kind of request).
   */
  remember(request: Buffer, reply: Buffer, holder: ProcessHandle): boolean;
  /** Forgets every reply. */
  forget(): void;
  /** Requests answered from it, by request kind (`croot status`). */
  answered(): { readonly hostname: number; readonly pid: number; readonly cgroup: number };
}

/**
 * Takes over an accepted connection: the returned socket reads and writes a
 * duplicate of `fd`, and the server closes Node's socket at once. Bound by
 * the native module, whose sockets skip Node's stream machinery on the
 * request path (docs/native.md, "Connections").
 */
export const ConnectionSocketFactory = Symbol.for('croot/ConnectionSocketFactory');
export interface ConnectionSocketFactory {
  adopt(fd: number): ConnectionSocket & { readonly fd: number };
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
 * a spawn with exact fd wiring (every other fd closed, every signal at its
 * default and unblocked), pipes, and
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
