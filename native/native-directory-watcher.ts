/**
 * The core's DirectoryWatcher on inotify: one inotify fd for the process,
 * read on the event loop through one FdWatcher, and a map from watch
 * descriptor to the listeners of that directory.
 */
import { inject, injectable } from 'inversify';
import type { DirectoryEvent, DirectoryWatcher } from '../core/host/host-services.js';
import { CrootNative } from './croot-native.js';
import type { FdWatcher, InotifyEvent } from './croot-native.js';
import { translateNativeError } from './native-host-services.js';

interface Listener {
  readonly onEvent: (event: DirectoryEvent) => void;
}

@injectable()
export class NativeDirectoryWatcher implements DirectoryWatcher {
  private fd: number | undefined;
  private watcher: FdWatcher | undefined;
  /**
   * Listeners by watch descriptor; one wd per directory, however many watch
   * it. An array, not a Set: one per watched directory (one per container
   * for some engines), mostly of one listener, where a Set's hash table
   * would be most of the memory.
   */
  private readonly listeners = new Map<number, Listener[]>();
  /** inotify's IN_Q_OVERFLOW reaches every listener as `overflow` (dispatch). */
  readonly reportsLostEvents = true;
  private readonly changed: number;
  private readonly removed: number;
  private readonly gone: number;
  private readonly mask: number;

  constructor(@inject(CrootNative) private readonly native: CrootNative) {
    const IN = native.IN;
    this.changed = IN.CREATE | IN.CLOSE_WRITE | IN.MOVED_TO | IN.ATTRIB;
    this.removed = IN.DELETE | IN.MOVED_FROM;
    // IN_IGNORED and IN_UNMOUNT come without being asked for: the watch has ended.
    this.gone = IN.DELETE_SELF | IN.MOVE_SELF | IN.IGNORED | IN.UNMOUNT;
    // IN_EXCL_UNLINK: no events for entries already unlinked but still open.
    this.mask = this.changed | this.removed | IN.DELETE_SELF | IN.MOVE_SELF | IN.ONLYDIR | IN.EXCL_UNLINK;
  }

  watch(dir: string, onEvent: (event: DirectoryEvent) => void): () => void {
    let wd: number;
    try {
      wd = this.native.inotifyAddWatch(this.ensureOpen(), dir, this.mask);
    } catch (err) {
      throw translateNativeError(err, `watching ${dir}`);
    }
    // An object of its own, so one function can watch one directory twice and stop each watch alone.
    const listener: Listener = { onEvent };
    const list = this.listeners.get(wd);
    // A new list made with its one element: `[]` and a push would reserve room for 17.
    if (list === undefined) this.listeners.set(wd, [listener]);
    else list.push(listener);
    return () => this.unwatch(wd, listener);
  }

  /** How many directories are watched now. */
  watchedCount(): number {
    return this.listeners.size;
  }

  /** Ends every watch and closes the inotify fd (for shutdown and tests); usable again afterwards. */
  close(): void {
    this.listeners.clear();
    this.watcher?.stop();
    this.watcher = undefined;
    if (this.fd !== undefined) this.native.close(this.fd);
    this.fd = undefined;
  }

  private ensureOpen(): number {
    if (this.fd !== undefined) return this.fd;
    const fd = this.native.inotifyInit();
    try {
      const watcher = new this.native.FdWatcher(fd, () => this.readEvents());
      // Watching is bookkeeping: it never keeps crootd (or a test) running by itself.
      watcher.unref();
      this.watcher = watcher;
    } catch (err) {
      this.native.close(fd);
      throw err;
    }
    this.fd = fd;
    return fd;
  }

  private unwatch(wd: number, listener: Listener): void {
    const list = this.listeners.get(wd);
    const at = list?.indexOf(listener) ?? -1;
    if (list === undefined || at < 0) return;
    list.splice(at, 1);
    if (list.length > 0) return;
    this.listeners.delete(wd);
    this.removeWatch(wd);
  }

  private removeWatch(wd: number): void {
    if (this.fd === undefined) return;
    try {
      this.native.inotifyRmWatch(this.fd, wd);
    } catch {
      // EINVAL: the kernel has ended the watch already.
    }
  }

  /** On the event loop: drains the inotify fd and calls the listeners. */
  private readEvents(): void {
    const fd = this.fd;
    if (fd === undefined) return;
    let failure: { error: unknown } | undefined;
    const call = (listeners: Iterable<Listener>, event: DirectoryEvent): void => {
      // A copy: a listener may stop its own watch, or another one, while called.
      for (const listener of [...listeners]) {
        try {
          listener.onEvent(event);
        } catch (error) {
          failure ??= { error };
        }
      }
    };
    for (let events = this.native.inotifyRead(fd); events.length > 0; events = this.fd === fd ? this.native.inotifyRead(fd) : []) {
      for (const event of events) this.dispatch(event, call);
    }
    // Every event is delivered first; then a listener's exception is uncaught, as for any listener.
    if (failure !== undefined) throw failure.error;
  }

  private dispatch(event: InotifyEvent, call: (listeners: Iterable<Listener>, event: DirectoryEvent) => void): void {
    if ((event.mask & this.native.IN.Q_OVERFLOW) !== 0) {
      const everyone = [...this.listeners.values()].flat();
      call(everyone, { name: '', kind: 'overflow' });
      return;
    }
    const list = this.listeners.get(event.wd);
    if (list === undefined) return;
    if ((event.mask & this.gone) !== 0) {
      // The watch has ended (or, after a move, croot ends it: the path no longer names the directory).
      this.listeners.delete(event.wd);
      if ((event.mask & this.native.IN.IGNORED) === 0) this.removeWatch(event.wd);
      call(list, { name: '', kind: 'gone' });
    } else if ((event.mask & this.removed) !== 0) {
      call(list, { name: event.name, kind: 'removed' });
    } else if ((event.mask & this.changed) !== 0) {
      call(list, { name: event.name, kind: 'changed' });
    }
  }
}
