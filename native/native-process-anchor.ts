/**
 * The core's ProcessAnchor on pidfds: each process is held by a pidfd
 * registered in one epoll set, and one FdWatcher on that epoll fd tells the
 * event loop when any of them exits. Per process: a kernel registration, a
 * Map entry and the handle; no loop handle, timer or closure of croot's own.
 * Where pidfds cannot be used, processes are held by start time through
 * /proc (ProcProcessHandle) and mode() says why: a kernel without
 * pidfd_open, or the fd budget spent. The budget keeps a tenth of the soft fd
 * limit (at least 64 fds) free for sockets and files, so holding processes
 * never starves crootd of the fds it needs to answer.
 */
import { inject, injectable } from 'inversify';
import type { ProcessAnchor, ProcessAnchorMode, ProcessHandle } from '../core/host/host-services.js';
import { ProcProcessHandle } from '../core/host/proc-process-handle.js';
import { plural } from '../core/logging/plural.js';
import { CrootNative, isNativeError } from './croot-native.js';
import type { FdWatcher } from './croot-native.js';

/** Ready pidfds taken from epoll per epollWait call. */
const BATCH = 256;

/** Errors of pidfd_open that no later call will escape: stop trying. */
const PERMANENT = new Set(['ENOSYS', 'EPERM', 'EACCES']);

/** The fds left for everything else: a tenth of the soft limit, at least this many. */
const MIN_RESERVE = 64;

function describe(err: unknown): string {
  if (isNativeError(err)) return err.message;
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : String(err);
}

/** A process held by a pidfd. */
export class PidfdProcessHandle implements ProcessHandle {
  private fd: number | undefined;
  /** Reads on the namespace thread that borrow the pidfd (NativeNamespaceHostnameReader). */
  private borrowers = 0;
  /** The pidfd of a close() that waits for its borrowers. */
  private closing: number | undefined;
  /**
   * @internal The hostname last read through this pidfd, and the
   * CrootNative.utsGeneration() taken before that read (-1: none kept).
   * NativeNamespaceHostnameReader's; a later process is a later handle.
   */
  hostname = '';
  hostnameGeneration = -1;
  /** @internal Called once when the handle closes (NativeReplyCache: its replies rest on this process). */
  whenClosed: (() => void) | undefined;

  constructor(
    private readonly anchor: NativeProcessAnchor,
    readonly pid: number,
    pidfd: number,
    /** This handle's key in the epoll set; never reused. */
    readonly key: number,
    readonly onExit: () => void,
  ) {
    this.fd = pidfd;
  }

  /** The pidfd; undefined once closed. */
  get pidfd(): number | undefined {
    return this.fd;
  }

  isAlive(): boolean {
    return this.fd !== undefined && this.anchor.pidfdIsAlive(this.fd);
  }

  close(): void {
    const fd = this.fd;
    if (fd === undefined) return;
    this.fd = undefined;
    this.anchor.forget(this, fd);
    const then = this.whenClosed;
    this.whenClosed = undefined;
    then?.();
    // A read still holding the pidfd keeps the fd (and so its number) until it settles.
    if (this.borrowers > 0) this.closing = fd;
    else this.anchor.closePidfd(fd);
  }

  /**
   * @internal The pidfd stays open until the matching returnPidfd(), even
   * when close() comes first (the handle counts as closed at once): a job on
   * the namespace thread that uses the fd's number can never meet another
   * file under it. Only while the handle is open.
   */
  borrowPidfd(): void {
    if (this.fd === undefined) throw new Error('borrowPidfd: the handle is closed');
    this.borrowers++;
  }

  /** @internal Ends one borrowPidfd(); the last one closes a pidfd whose close() waited. */
  returnPidfd(): void {
    this.borrowers--;
    const fd = this.closing;
    if (this.borrowers > 0 || fd === undefined) return;
    this.closing = undefined;
    this.anchor.closePidfd(fd);
  }
}

@injectable()
export class NativeProcessAnchor implements ProcessAnchor {
  private epollFd: number | undefined;
  private watcher: FdWatcher | undefined;
  /** Handles whose exit has not been reported yet, by key. */
  private readonly watched = new Map<number, PidfdProcessHandle>();
  private nextKey = 1;
  /** Set when pidfd_open can never work here (ENOSYS, EPERM). */
  private unavailable: string | undefined;
  /** Why the last process went to /proc. */
  private lastFallback = '';
  private procHandles = 0;
  /** Open pidfds, watched or not. */
  private pidfds = 0;
  /** How many pidfds the fd limit allows; re-read from the limit when reached. */
  private budget = 0;

  constructor(@inject(CrootNative) private readonly native: CrootNative) {}

  mode(): ProcessAnchorMode {
    if (this.unavailable !== undefined) return { kind: 'proc', reason: this.unavailable };
    if (this.procHandles > 0) {
      return { kind: 'proc', reason: `${plural(this.procHandles, 'process')} held by start time through /proc: ${this.lastFallback}` };
    }
    return { kind: 'pidfd' };
  }

  open(pid: number, onExit: () => void): ProcessHandle | undefined {
    if (!Number.isInteger(pid) || pid <= 0 || pid > 0x7fffffff) return undefined;
    if (this.unavailable !== undefined) return this.openThroughProc(pid);
    if (this.pidfds >= this.budget) {
      const full = this.refreshBudget();
      if (full !== undefined) return this.openThroughProc(pid, full);
    }
    let pidfd: number;
    try {
      pidfd = this.native.pidfdOpen(pid);
    } catch (err) {
      if (isNativeError(err) && err.code === 'ESRCH') return undefined;
      // Something else took the fds (or the limit was lowered): re-read the limit next time.
      if (isNativeError(err) && err.code === 'EMFILE') this.budget = 0;
      const reason = `pidfd_open failed: ${describe(err)}`;
      if (isNativeError(err) && PERMANENT.has(err.code)) this.unavailable = `${reason}; every process is held by start time through /proc`;
      return this.openThroughProc(pid, reason);
    }
    const key = this.nextKey++;
    try {
      this.native.epollAdd(this.ensureEpoll(), pidfd, key);
    } catch (err) {
      this.native.close(pidfd);
      return this.openThroughProc(pid, `watching a pidfd failed: ${describe(err)}`);
    }
    const handle = new PidfdProcessHandle(this, pid, pidfd, key, onExit);
    this.watched.set(key, handle);
    this.pidfds++;
    return handle;
  }

  /** How many processes are watched for their exit now. */
  watchedCount(): number {
    return this.watched.size;
  }

  /**
   * Closes every handle still watched, the epoll fd and its watcher (for
   * shutdown and tests). Handles whose exit was reported stay their owners'
   * to close. The anchor can be used again afterwards.
   */
  close(): void {
    for (const handle of [...this.watched.values()]) handle.close();
    this.watcher?.stop();
    this.watcher = undefined;
    if (this.epollFd !== undefined) this.native.close(this.epollFd);
    this.epollFd = undefined;
  }

  /** @internal One zero-timeout poll; a closed or bad fd counts as exited. */
  pidfdIsAlive(pidfd: number): boolean {
    try {
      return this.native.pidfdIsAlive(pidfd);
    } catch {
      return false;
    }
  }

  /** @internal Called by a handle's first close(): its exit is no longer watched. */
  forget(handle: PidfdProcessHandle, pidfd: number): void {
    if (this.watched.delete(handle.key) && this.epollFd !== undefined) this.removeQuietly(pidfd);
  }

  /** @internal Closes a handle's pidfd, once nothing borrows it. */
  closePidfd(pidfd: number): void {
    this.pidfds--;
    try {
      this.native.close(pidfd);
    } catch {
      // EBADF: nothing left to release.
    }
  }

  /**
   * Re-reads the fd limit into the budget; returns why no pidfd may be
   * opened now, or undefined when one may.
   */
  private refreshBudget(): string | undefined {
    let soft: number;
    try {
      soft = this.native.getFdLimit().soft;
    } catch (err) {
      return `the fd limit cannot be read: ${describe(err)}`;
    }
    const reserve = Math.max(MIN_RESERVE, Math.floor(soft / 10));
    this.budget = Number.isFinite(soft) ? Math.max(0, soft - reserve) : Number.MAX_SAFE_INTEGER;
    if (this.pidfds < this.budget) return undefined;
    return `${plural(this.pidfds, 'pidfd')} open, as many as the fd limit (${soft}) allows while keeping ${reserve} fds for sockets and files`;
  }

  /** A /proc handle; throws (ERR_SYSTEM) when /proc cannot be read either, rather than call a running process gone. */
  private openThroughProc(pid: number, reason?: string): ProcessHandle | undefined {
    if (reason !== undefined) this.lastFallback = reason;
    const handle = ProcProcessHandle.open(pid, { onClose: () => this.procHandles-- });
    if (handle !== undefined) this.procHandles++;
    return handle;
  }

  private ensureEpoll(): number {
    if (this.epollFd !== undefined) return this.epollFd;
    const epollFd = this.native.epollCreate();
    try {
      const watcher = new this.native.FdWatcher(epollFd, () => this.reportExits());
      // Watching processes is bookkeeping: it never keeps crootd (or a test) running by itself.
      watcher.unref();
      this.watcher = watcher;
    } catch (err) {
      this.native.close(epollFd);
      throw err;
    }
    this.epollFd = epollFd;
    return epollFd;
  }

  private removeQuietly(pidfd: number): void {
    try {
      this.native.epollRemove(this.epollFd as number, pidfd);
    } catch {
      // Not registered any more: nothing to remove.
    }
  }

  /** On the event loop: every exited process leaves the epoll set and gets its onExit, once. */
  private reportExits(): void {
    const epollFd = this.epollFd;
    if (epollFd === undefined) return;
    let failure: { error: unknown } | undefined;
    for (;;) {
      const keys = this.native.epollWait(epollFd, BATCH);
      for (const key of keys) {
        // A handle closed earlier in this batch is no longer here.
        const handle = this.watched.get(key);
        if (handle === undefined) continue;
        this.watched.delete(key);
        const pidfd = handle.pidfd;
        if (pidfd !== undefined) this.removeQuietly(pidfd);
        try {
          handle.onExit();
        } catch (error) {
          failure ??= { error };
        }
      }
      if (keys.length < BATCH) break;
    }
    // The other exits are reported first; then the listener's exception is uncaught, as for any listener.
    if (failure !== undefined) throw failure.error;
  }
}
