/**
 * The Podman engine: rootful containers from c/storage's lists under
 * `$PCP_PODMAN_DATADIR` (else the system `storage.conf`'s graphroot), plus
 * every user's rootless store, with run state from the files podman and
 * conmon write under each run root. Everything is read from disk and kept
 * current from inotify (see `PodmanStoreWatch`); podman's API is not used (it
 * would add only `paused`, and following it would keep a socket-activated
 * `podman system service` running for good).
 *
 * Where the stores are is worked out again when a `storage.conf` that
 * places them changes, when a user's runtime folder appears under
 * `/run/user`, when a `<driver>-containers` folder appears under a store
 * whose driver is found on disk, and at the registry's safety-net re-check,
 * which also asks NSS for the users again when the passwd file changed
 * or every five minutes (the owners of new runtime folders at once).
 */
import { statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { inject, injectable, optional } from 'inversify';
import { CrootConfig } from '../../core/config/croot-config.js';
import type { ContainerRecord, ContainerSink, EngineContribution } from '../../core/registry/engine-contribution.js';
import { systemClock, type Clock } from '../../core/host/clock.js';
import { DirectoryWatcher, type DirectoryEvent } from '../../core/host/host-services.js';
import { NodeDirectoryWatcher } from '../../core/host/node-directory-watcher.js';
import { plural } from '../../core/logging/plural.js';
import { fileSignature } from '../../core/host/state-file.js';
import { FolderWatch } from './folder-watch.js';
import { nssUsers, type PasswdUser } from './nss-users.js';
import { locateStores, type WantedStore } from './locate-stores.js';
import { podmanPathsFrom, type PodmanPaths } from './podman-paths.js';
import { PODMAN_ENGINE_ID, PodmanStoreWatch, type StoreHost } from './podman-store-watch.js';
import { ReadScheduler } from './read-scheduler.js';

export { PODMAN_ENGINE_ID } from './podman-store-watch.js';
export { DEFAULT_PODMAN_DATADIR, DEFAULT_PODMAN_RUNDIR } from './locate-stores.js';
export { DEFAULT_CONTAINERS_STORAGE_CONFS, podmanPathsFrom, type PodmanPaths } from './podman-paths.js';

/**
 * Looks users up: every user NSS lists when `keys` is empty, else the users
 * of those names or uids. The engine's one way to users (see nss-users.ts).
 */
export type UserLookup = (keys: readonly string[], signal: AbortSignal) => Promise<readonly PasswdUser[]>;

/** Tuning knobs of the Podman engine; bind under this token to override the defaults. */
export const PodmanEngineOptions = Symbol.for('croot/PodmanEngineOptions');
export interface PodmanEngineOptions {
  /** Longest a user look-up (getent) may take (ms, default 5000). */
  readonly userLookupTimeoutMs?: number;
  /**
   * After this long (ms, default 10000) the first load pushes what it has
   * read so far and goes on, pushing the rest as it comes (a hung file
   * system delays only this engine's first load, and only this long).
   */
  readonly firstLoadTimeoutMs?: number;
  /** Longest slice of synchronous reading before the event loop gets a turn (ms, default 4). */
  readonly sliceMs?: number;
  /** How users are looked up (default: `getent passwd` through NSS). */
  readonly lookupUsers?: UserLookup;
  /**
   * The safety net asks NSS for every user again only when the passwd file
   * changed or the users were listed longer ago than this (ms, default
   * 300000): users that only another NSS source knows (sssd, LDAP) show
   * within that, or at once when their runtime folder appears.
   */
  readonly usersMaxAgeMs?: number;
  /** The passwd file whose change makes the users be listed again (default /etc/passwd). */
  readonly passwdFile?: string;
  /** The users' age and the first load's bound are told by this clock (default: Node's). */
  readonly clock?: Clock;
}

@injectable()
export class PodmanEngine implements EngineContribution {
  readonly id = PODMAN_ENGINE_ID;
  readonly paths: PodmanPaths;
  private readonly watcher: DirectoryWatcher;
  private readonly lookup: UserLookup;
  private readonly firstLoadTimeoutMs: number;
  private readonly scheduler: ReadScheduler;
  private readonly host: StoreHost;
  private readonly clock: Clock;

  private sink: ContainerSink | undefined;
  /** The first full list has been pushed: changes are pushed one by one from now on. */
  private loaded = false;
  private stopped = false;
  private readonly abort = new AbortController();
  private cancelFirstLoadBound: (() => void) | undefined;
  /** Every container's record as pushed (or to be pushed by the first `replaceAll`), by id. */
  private readonly records = new Map<string, ContainerRecord>();
  private readonly stores = new Map<string, PodmanStoreWatch>();
  private users: readonly PasswdUser[] = [];
  /** When the users were last listed (the clock's now()), and the passwd file's signature then. */
  private usersListedAt = Number.NEGATIVE_INFINITY;
  private usersPasswd: string | undefined;
  private readonly usersMaxAgeMs: number;
  private readonly passwdFile: string;
  /** Health notes: from locating the stores, from looking users up, from the first load, from failed reads. */
  private locateNotes: readonly string[] = [];
  private usersNote: string | undefined;
  private loadNote: string | undefined;
  private readNote: string | undefined;
  /** Folders of storage.conf files (system and users'), with the file names that matter in each. */
  private readonly confWatches = new Map<string, { watch: FolderWatch; names: Set<string> }>();
  private runtimeWatch: FolderWatch | undefined;
  private lastHealth: string | undefined;

  constructor(
    @inject(CrootConfig) config: CrootConfig,
    @inject(PodmanEngineOptions) @optional() options: PodmanEngineOptions | undefined,
    @inject(DirectoryWatcher) @optional() watcher: DirectoryWatcher | undefined,
  ) {
    this.paths = podmanPathsFrom(config.env);
    this.watcher = watcher ?? new NodeDirectoryWatcher();
    const timeoutMs = options?.userLookupTimeoutMs ?? 5000;
    this.lookup = options?.lookupUsers ?? ((keys, signal) => nssUsers(keys, { timeoutMs, signal }));
    this.firstLoadTimeoutMs = options?.firstLoadTimeoutMs ?? 10000;
    this.usersMaxAgeMs = options?.usersMaxAgeMs ?? 300000;
    this.passwdFile = options?.passwdFile ?? '/etc/passwd';
    this.clock = options?.clock ?? systemClock;
    this.scheduler = new ReadScheduler(options?.sliceMs ?? 4, (err) => {
      this.readNote = `a read failed: ${(err as Error).message}`;
    });
    this.host = {
      watcher: this.watcher,
      procRoot: config.procRoot,
      scheduler: this.scheduler,
      setRecord: (record) => this.setRecord(record),
      dropRecord: (id) => this.dropUnowned(id),
      listsRead: () => this.reportHealth(),
      driverFoldersChanged: () => this.requestLocate(),
    };
  }

  /** Starts watching and reading; the first load is pushed when read (or, in part, after `firstLoadTimeoutMs`). */
  start(sink: ContainerSink): void {
    this.sink = sink;
    this.cancelFirstLoadBound = this.clock.after(this.firstLoadTimeoutMs, () => this.pushPartialLoad());
    void this.firstLoad().then(() => this.finishLoad());
  }

  /** Disk first: the rootful store is read while NSS is asked for the users, whose stores are read next. */
  private async firstLoad(): Promise<void> {
    try {
      const users = this.refreshUsers();
      await this.locate();
      await users;
      if (this.paths.rootless) await this.locate();
    } catch (err) {
      this.loadNote = `first load failed: ${(err as Error).message}`;
    }
  }

  /**
   * The safety net: users from NSS (all of them when due, else the owners of
   * new runtime folders), every storage.conf, the lists and every
   * container's run state, read again.
   */
  async recheck(): Promise<void> {
    if (this.stopped) return;
    this.readNote = undefined;
    if (this.usersDue()) await this.refreshUsers();
    else await this.lookUpRuntimeOwners(await this.runtimeUids());
    await this.locate();
    for (const { watch } of this.confWatches.values()) watch.verify();
    this.runtimeWatch?.verify();
    await Promise.all([...this.stores.values()].map((s) => s.recheck()));
    if (this.stopped || !this.loaded) return;
    this.loadNote = undefined;
    this.sink?.replaceAll([...this.records.values()]);
    this.reportHealth();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.sink = undefined;
    this.cancelFirstLoadBound?.();
    this.abort.abort();
    for (const store of this.stores.values()) store.close();
    this.stores.clear();
    for (const { watch } of this.confWatches.values()) watch.close();
    this.confWatches.clear();
    this.runtimeWatch?.close();
    this.runtimeWatch = undefined;
  }

  private finishLoad(): void {
    if (this.stopped) return;
    this.cancelFirstLoadBound?.();
    this.loadNote = this.loadNote?.startsWith('first load failed') ? this.loadNote : undefined;
    this.loaded = true;
    this.sink?.replaceAll([...this.records.values()]);
    this.reportHealth();
  }

  /** The first load's bound: push what is read; the rest follows as it is read. */
  private pushPartialLoad(): void {
    if (this.stopped || this.loaded) return;
    this.loaded = true;
    this.loadNote = `first load not finished after ${this.firstLoadTimeoutMs} ms; containers show as they are read`;
    this.sink?.replaceAll([...this.records.values()]);
    this.reportHealth();
  }

  private setRecord(record: ContainerRecord): void {
    if (this.stopped) return;
    const before = this.records.get(record.id);
    if (before !== undefined && sameRecord(before, record)) return;
    this.records.set(record.id, record);
    if (this.loaded) this.sink?.upsert(record);
  }

  /** Drops a container's record unless another store (a moved one, being loaded) lists it. */
  private dropUnowned(id: string): void {
    if (this.stopped) return;
    for (const store of this.stores.values()) if (store.containers.has(id)) return;
    if (this.records.delete(id) && this.loaded) this.sink?.remove(id);
  }

  // ---- users -------------------------------------------------------------

  /** Every user NSS lists, plus those owning a runtime folder that NSS does not enumerate. */
  /** Whether to list every user again: the last listing failed, is old, or the passwd file changed since. */
  private usersDue(): boolean {
    return this.usersNote !== undefined || this.clock.now() - this.usersListedAt >= this.usersMaxAgeMs || this.passwdSignature() !== this.usersPasswd;
  }

  /** The passwd file's `ino:size:mtime` (through links), '' when it cannot be read. */
  private passwdSignature(): string {
    try {
      return fileSignature(statSync(this.passwdFile));
    } catch {
      return '';
    }
  }

  private async refreshUsers(): Promise<void> {
    if (!this.paths.rootless || this.stopped) return;
    // Taken before the listing: a change while it runs makes the next re-check list again.
    this.usersListedAt = this.clock.now();
    this.usersPasswd = this.passwdSignature();
    try {
      const listed = await this.lookup([], this.abort.signal);
      this.users = uniqueUsers(listed);
      this.usersNote = undefined;
    } catch (err) {
      // The users known before stay; a later re-check asks again.
      this.usersNote = `users: ${(err as Error).message}; rootless stores of users not known yet are not read`;
    }
    await this.lookUpRuntimeOwners(await this.runtimeUids());
  }

  private async runtimeUids(): Promise<string[]> {
    try {
      return (await readdir(this.paths.userRunRoot)).filter((n) => /^\d+$/.test(n));
    } catch {
      return [];
    }
  }

  /** Asks NSS for the owners of runtime folders not among the known users. */
  private async lookUpRuntimeOwners(uids: readonly string[]): Promise<void> {
    const known = new Set(this.users.map((u) => String(u.uid)));
    const missing = uids.filter((uid) => !known.has(uid));
    if (missing.length === 0 || this.stopped) return;
    try {
      this.users = uniqueUsers([...this.users, ...(await this.lookup(missing, this.abort.signal))]);
    } catch (err) {
      this.usersNote = `users: ${(err as Error).message}; rootless stores of users not known yet are not read`;
    }
  }

  // ---- where the stores are ---------------------------------------------

  /** Works out where every store is and follows the moves (one pass at a time; a request during one runs one more after it). */
  private locate(): Promise<void> {
    return this.scheduler.coalesce('\0locate', () => this.locateNow());
  }

  private requestLocate(): void {
    if (!this.stopped) void this.locate();
  }

  private async locateNow(): Promise<void> {
    if (this.stopped) return;
    const found = await locateStores(this.paths, () => this.users, () => this.runtimeUids());
    if (this.stopped) return;
    this.locateNotes = found.notes;
    this.watchConfigs(found.confDirs);
    await this.applyStores(found.wanted);
    this.reportHealth();
  }

  /** Keeps stores that did not move, opens and loads new or moved ones, closes the rest. */
  private async applyStores(wanted: readonly WantedStore[]): Promise<void> {
    const byLabel = new Map(wanted.map((w) => [w.store.label, w]));
    const retired: PodmanStoreWatch[] = [];
    for (const [label, current] of this.stores) {
      const next = byLabel.get(label);
      if (next !== undefined && current.sameLocation(next.store) && current.driverConfigured === next.driverConfigured) {
        current.store = next.store;
        continue;
      }
      current.close();
      this.stores.delete(label);
      retired.push(current);
    }
    const loads: Promise<void>[] = [];
    for (const w of wanted) {
      if (this.stores.has(w.store.label)) continue;
      const store = new PodmanStoreWatch(this.host, w.store, w.driverConfigured, w.store.label === 'rootful');
      this.stores.set(w.store.label, store);
      store.open();
      loads.push(store.load());
    }
    await Promise.all(loads);
    // Containers of a store that moved stay when the new place lists them too.
    for (const store of retired) for (const id of store.containers.keys()) this.dropUnowned(id);
  }

  /** Watches the folders of every storage.conf that places a store, and `/run/user`. */
  private watchConfigs(userConfDirs: readonly string[]): void {
    const wanted = new Map<string, Set<string>>();
    const add = (dir: string, name: string): void => {
      const names = wanted.get(dir) ?? new Set<string>();
      names.add(name);
      wanted.set(dir, names);
    };
    for (const path of this.paths.storageConfPaths) add(dirname(path), basename(path));
    for (const dir of userConfDirs) add(dir, 'storage.conf');
    for (const [dir, entry] of this.confWatches) {
      if (wanted.has(dir)) continue;
      entry.watch.close();
      this.confWatches.delete(dir);
    }
    for (const [dir, names] of wanted) {
      const known = this.confWatches.get(dir);
      if (known !== undefined) {
        known.names = names;
        continue;
      }
      const entry = {
        names,
        watch: new FolderWatch(
          this.watcher,
          dir,
          (e) => {
            if (e.name === '' || entry.names.has(e.name)) this.requestLocate();
          },
          { verifiable: true },
        ),
      };
      this.confWatches.set(dir, entry);
      entry.watch.open();
    }
    if (this.paths.rootless && this.runtimeWatch === undefined) {
      this.runtimeWatch = new FolderWatch(this.watcher, this.paths.userRunRoot, (e) => this.runtimeFolderEvent(e), { verifiable: true }).open();
    }
  }

  /**
   * A user's runtime folder appeared or went: a user whose rootless podman
   * may now run, or no longer. An event with no name (`/run/user` appeared
   * whole, was replaced, or events were lost) has the folder listed, so the
   * owners of the runtime folders already in it are looked up at once.
   */
  private runtimeFolderEvent(event: DirectoryEvent): void {
    if (event.name !== '' && !/^\d+$/.test(event.name)) return;
    const uids = event.name === '' ? this.runtimeUids() : Promise.resolve(event.kind === 'changed' ? [event.name] : []);
    void uids.then((found) => this.lookUpRuntimeOwners(found)).then(() => this.requestLocate());
  }

  // ---- health --------------------------------------------------------------

  /** Pushes the engine's health when it changed: which lists are read, how many containers, what is wrong. */
  private reportHealth(): void {
    if (!this.loaded || this.stopped) return;
    const parts: string[] = [];
    if (this.loadNote !== undefined) parts.push(this.loadNote);
    let available = false;
    for (const store of this.stores.values()) {
      const label = store.store.label;
      for (const problem of store.watchProblems()) parts.push(`${label}: ${problem}`);
      if (!store.shown) continue;
      if (store.store.note !== undefined) parts.push(`${label}: ${store.store.note}`);
      const scan = store.scan;
      if (scan === undefined) parts.push(`${label}: not read yet`);
      else if (scan.absent !== undefined) parts.push(`${label}: ${scan.absent}`);
      else if (scan.empty !== undefined) {
        // As podman sees it: a store with no containers yet (`podman ps -a` lists none).
        available = true;
        parts.push(`${label}: ${scan.empty}`);
      } else {
        available = true;
        parts.push(`${label}: read ${scan.read.join(', ')} (${plural(scan.count, 'container')})`);
        for (const kept of scan.kept ?? []) parts.push(`${label}: ${kept}`);
      }
    }
    parts.push(...this.locateNotes);
    if (this.usersNote !== undefined) parts.push(this.usersNote);
    if (this.readNote !== undefined) parts.push(this.readNote);
    const reason = parts.join('; ');
    const key = `${available}\n${reason}`;
    if (key === this.lastHealth) return;
    this.lastHealth = key;
    this.sink?.health(available, reason);
  }
}

/** The first entry of each user name (NSS may list a user from two sources). */
function uniqueUsers(users: readonly PasswdUser[]): PasswdUser[] {
  const seen = new Map<string, PasswdUser>();
  for (const u of users) if (!seen.has(u.name)) seen.set(u.name, u);
  return [...seen.values()];
}

const RECORD_KEYS = ['running', 'pid', 'pidStartTime', 'hostname', 'state', 'source'] as const;

function sameRecord(a: ContainerRecord, b: ContainerRecord): boolean {
  for (const key of RECORD_KEYS) if (a[key] !== b[key]) return false;
  return a.names.length === b.names.length && a.names.every((n, i) => n === b.names[i]);
}
