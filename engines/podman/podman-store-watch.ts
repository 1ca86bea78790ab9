/**
 * One c/storage store (rootful, or one user's rootless store) kept current
 * from inotify: its container lists (`containers.json`,
 * `volatile-containers.json`, which c/storage rewrites by rename), each
 * container's run state (`pidfile`, `conmon.pid`, `hostname`, written at each
 * start) and conmon's files under the graph root (`ctl`, `winsz`, `attach`,
 * removed when the container exits). Every change is read and handed to the
 * engine as a record.
 */
import type { ContainerRecord } from '../../core/registry/engine-contribution.js';
import type { DirectoryEvent, DirectoryWatcher } from '../../core/host/host-services.js';
import { FolderWatch } from './folder-watch.js';
import {
  CONMON_FILES,
  RUN_STATE_FILES,
  STORAGE_LISTS,
  listDir,
  persistDir,
  readInitProcess,
  readParentPid,
  readRunState,
  runListDir,
  runStatus,
  scanStore,
  userdataDir,
  type InitProcess,
  type PodmanStore,
  type RunState,
  type RunStatus,
  type StorageEntry,
} from './podman-storage.js';
import type { ReadScheduler } from './read-scheduler.js';

export const PODMAN_ENGINE_ID = 'podman';

/** List entries gone through before the event loop gets a turn. */
const LIST_SLICE = 1000;

/** What a read of a store's lists found, for the engine's health. */
export interface ListSummary {
  /** The lists that were read. */
  readonly read: readonly string[];
  readonly count: number;
  /** Why no list could be read, when none could. */
  readonly absent?: string;
  /** The store is there with no container list yet (no containers). */
  readonly empty?: string;
  /** Lists that could not be used now, read as they were last time (with why). */
  readonly kept?: readonly string[];
}

/** What a store needs from the engine. */
export interface StoreHost {
  readonly watcher: DirectoryWatcher;
  readonly procRoot: string;
  readonly scheduler: ReadScheduler;
  /** Adds or updates a container's record (pushed when it changed). */
  setRecord(record: ContainerRecord): void;
  /** A container left this store's lists. */
  dropRecord(id: string): void;
  /** The store's lists were read (its part of the health may have changed). */
  listsRead(): void;
  /** A `<driver>-containers` folder appeared or went under a store whose driver is found on disk: locate the stores again. */
  driverFoldersChanged(): void;
}

/** What one container's files said when last read. */
interface ContainerState {
  readonly run: RunState;
  readonly status: RunStatus;
}

/** One container of a store: its names from the lists, its watches, its last read state. */
class StoreContainer {
  state: ContainerState | undefined;
  /** A read of it is queued and has not run yet (more signals add nothing). */
  queued = false;
  /** Its run-state folder's watch and its graph-root folder's (conmon's files); placed by `open()`. */
  runWatch: FolderWatch | undefined;
  persistWatch: FolderWatch | undefined;

  constructor(
    readonly id: string,
    public names: readonly string[],
  ) {}

  open(owner: PodmanStoreWatch): void {
    const { store } = owner;
    const { watcher } = owner.host;
    this.runWatch = new FolderWatch(watcher, userdataDir(store, this.id), (e) => this.event(owner, e, RUN_STATE_FILES), { floor: runListDir(store) }).open();
    this.persistWatch = new FolderWatch(watcher, persistDir(store, this.id), (e) => this.event(owner, e, CONMON_FILES), { floor: listDir(store) }).open();
  }

  close(): void {
    this.runWatch?.close();
    this.persistWatch?.close();
  }

  private event(owner: PodmanStoreWatch, event: DirectoryEvent, files: readonly string[]): void {
    if (event.name === '' || files.includes(event.name)) owner.readContainer(this);
  }
}

/** Every name a container answers to: its own, and for a rootless store `<user>/<name>` and the pmcd-safe `<user>_<name>`. */
export function recordNames(user: string | undefined, names: readonly string[]): string[] {
  if (user === undefined) return [...names];
  const safe = (name: string): string => name.replace(/[^A-Za-z0-9._-]/g, '_');
  return [...new Set([...names, ...names.map((n) => `${user}/${n}`), ...names.map((n) => safe(`${user}_${n}`))])];
}

export class PodmanStoreWatch {
  readonly containers = new Map<string, StoreContainer>();
  /** What the last read of the lists found (not the entries: the containers hold what is kept of them); undefined until the first. */
  scan: ListSummary | undefined;
  private watches: FolderWatch[] = [];
  private closed = false;
  /** Each list's entries as last read whole, by path: what a damaged list counts as. */
  private readonly lastGood = new Map<string, readonly StorageEntry[]>();

  constructor(
    readonly host: StoreHost,
    public store: PodmanStore,
    /** Whether a storage.conf names the driver (else it was found on disk, and may change). */
    readonly driverConfigured: boolean,
    /** Whether the engine's health mentions this store even while it has no lists (the rootful store). */
    readonly alwaysShown: boolean,
  ) {}

  /** Same place and driver: the same store. */
  sameLocation(other: PodmanStore): boolean {
    const s = this.store;
    return s.storageDir === other.storageDir && s.runDir === other.runDir && s.driver === other.driver && s.user === other.user;
  }

  /** Starts watching; then `load()` reads what is there. */
  open(): void {
    const { watcher } = this.host;
    this.watches = [
      new FolderWatch(watcher, listDir(this.store), (e) => this.listFolderEvent(e), { verifiable: true }),
      new FolderWatch(watcher, runListDir(this.store), (e) => this.runFolderEvent(e), { verifiable: true }),
    ];
    if (!this.driverConfigured) {
      const graphEvent = (e: DirectoryEvent): void => {
        if (e.name === '' || e.name.endsWith('-containers')) this.host.driverFoldersChanged();
      };
      this.watches.push(new FolderWatch(watcher, this.store.storageDir, graphEvent, { verifiable: true }));
    }
    for (const w of this.watches) w.open();
  }

  /** Reads the lists and every container's run state. */
  load(): Promise<void> {
    return this.readLists(true);
  }

  /** The safety net: watches that could not be placed are tried again, and everything is read again. */
  recheck(): Promise<void> {
    for (const w of this.watches) w.verify();
    for (const c of this.containers.values()) {
      c.runWatch?.retry();
      c.persistWatch?.retry();
    }
    return this.readLists(true);
  }

  /** Whether the engine's health mentions this store: its lists exist, its configuration has a problem, or it is always shown. */
  get shown(): boolean {
    return this.alwaysShown || this.store.note !== undefined || (this.scan !== undefined && this.scan.absent === undefined);
  }

  /** Why some folder of this store cannot be watched, if so. */
  watchProblems(): string[] {
    return this.watches.filter((w) => w.problem !== undefined).map((w) => `cannot watch ${w.target}: ${w.problem as string}`);
  }

  /** Stops watching; the engine decides what becomes of the records. */
  close(): void {
    this.closed = true;
    for (const w of this.watches) w.close();
    for (const c of this.containers.values()) c.close();
  }

  /**
   * Reads the lists: containers that appeared are watched and read, ones
   * that left are dropped, renamed ones pushed with their new names. With
   * `all`, every container's run state is read again too. Resolves when
   * all of that has been done.
   */
  readLists(all = false): Promise<void> {
    return this.host.scheduler.coalesce(`${this.store.label}\0lists`, async () => {
      const scan = await scanStore(this.store, this.lastGood);
      if (this.closed) return;
      this.scan = {
        read: scan.read,
        count: scan.entries.length,
        ...(scan.absent !== undefined ? { absent: scan.absent } : {}),
        ...(scan.empty !== undefined ? { empty: scan.empty } : {}),
        ...(scan.kept !== undefined ? { kept: scan.kept } : {}),
      };
      const seen = new Set<string>();
      let n = 0;
      for (const entry of scan.entries) {
        // A list of thousands is gone through in pieces, with turns for everything else between.
        if (++n % LIST_SLICE === 0) {
          await new Promise((resolve) => setImmediate(resolve));
          if (this.closed) return;
        }
        seen.add(entry.id);
        const known = this.containers.get(entry.id);
        if (known === undefined) {
          const c = new StoreContainer(entry.id, entry.names);
          this.containers.set(entry.id, c);
          this.openContainer(c);
          continue;
        }
        if (!sameNames(known.names, entry.names)) {
          known.names = entry.names;
          this.push(known);
        }
        if (all) this.readContainer(known);
      }
      for (const [id, c] of this.containers) {
        if (seen.has(id)) continue;
        c.close();
        this.containers.delete(id);
        this.host.dropRecord(id);
      }
      this.host.listsRead();
      await this.host.scheduler.idle();
    });
  }

  /** Places a new container's watches and reads it, in a slice (watches are system calls too). */
  private openContainer(c: StoreContainer): void {
    c.queued = true;
    this.host.scheduler.enqueue(() => {
      c.queued = false;
      if (this.closed || this.containers.get(c.id) !== c) return;
      c.open(this);
      this.readNow(c);
    });
  }

  /** Queues a read of one container's run state, unless one is queued already. */
  readContainer(c: StoreContainer): void {
    if (c.queued) return;
    c.queued = true;
    this.host.scheduler.enqueue(() => {
      c.queued = false;
      if (!this.closed && this.containers.get(c.id) === c) this.readNow(c);
    });
  }

  /**
   * Reads one container's run state and its init's parent in /proc, and
   * pushes its record. Synchronous, so records are pushed in the order the
   * files were read: the last read, after the last change, wins.
   */
  private readNow(c: StoreContainer): void {
    const run = readRunState(this.store, c.id);
    c.state = { run, status: runStatus(run, this.initOf(run)) };
    this.push(c);
  }

  /**
   * The pidfile's process, when it is conmon's child, or its grandchild
   * through the OCI runtime that has written the pidfile and not yet
   * exited (the init becomes conmon's child when it does). The runtime is
   * a Go program: its main thread may show as a zombie while another of its
   * threads, the init's parent, still runs, so its parent is read whether
   * it has exited or not; if it is gone altogether, the init has been given
   * to conmon (a subreaper) and is read again. Nothing else would make croot
   * read again: the pidfile is the last run-state file written at a start.
   */
  private initOf(run: RunState): InitProcess | undefined {
    if (run.pid === undefined) return undefined;
    const init = readInitProcess(this.host.procRoot, run.pid);
    if (init === undefined || run.conmonPid === undefined || init.ppid === run.conmonPid) return init;
    const runtimeParent = readParentPid(this.host.procRoot, init.ppid);
    if (runtimeParent === undefined) return readInitProcess(this.host.procRoot, run.pid);
    return runtimeParent === run.conmonPid ? { ...init, ppid: run.conmonPid } : init;
  }

  private push(c: StoreContainer): void {
    if (c.state === undefined || this.closed) return;
    const { run, status } = c.state;
    const record: ContainerRecord = {
      engine: PODMAN_ENGINE_ID,
      id: c.id,
      names: recordNames(this.store.user, c.names),
      running: status.running,
      state: status.state,
      source: this.store.label,
      ...(status.running ? { pid: run.pid, pidStartTime: status.startTime } : {}),
      ...(run.hostname !== undefined ? { hostname: run.hostname } : {}),
    };
    this.host.setRecord(record);
  }

  private listFolderEvent(event: DirectoryEvent): void {
    if (event.name === '') {
      // The folder appeared or was replaced: per-container folders may have come with it.
      for (const c of this.containers.values()) c.persistWatch?.retry();
      void this.readLists();
    } else if ((STORAGE_LISTS as readonly string[]).includes(event.name)) {
      void this.readLists();
    } else if (event.kind === 'changed') {
      this.containers.get(event.name)?.persistWatch?.retry();
    }
  }

  private runFolderEvent(event: DirectoryEvent): void {
    if (event.name === '') {
      for (const c of this.containers.values()) c.runWatch?.retry();
      void this.readLists();
    } else if (event.name === 'volatile-containers.json') {
      void this.readLists();
    } else if (event.kind === 'changed') {
      this.containers.get(event.name)?.runWatch?.retry();
    }
  }
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}
