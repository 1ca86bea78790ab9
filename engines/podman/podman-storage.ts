/**
 * Podman's state as it lies on disk (no daemon needed): c/storage's container
 * lists and the per-container run state conmon writes, for the rootful store
 * and every user's rootless store. Both sit in directories named after the
 * store's graph driver (`overlay-containers`, `vfs-containers`, ...).
 */
import { readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { hasExited, parseProcessStat } from '../../core/host/proc-files.js';
import { readStateFile, readStateFileSync } from '../../core/host/state-file.js';

/** One c/storage container store: rootful, or one user's rootless store. */
export interface PodmanStore {
  /** `rootful` or `rootless:<user>`; becomes the records' `source`. */
  readonly label: string;
  /** The user owning a rootless store (its names get a `<user>/` form too). */
  readonly user?: string;
  /** The graph root (`/var/lib/containers/storage`, `~/.local/share/containers/storage`). */
  readonly storageDir: string;
  /** The run root (`/run/containers/storage`, `/run/user/<uid>/containers`). */
  readonly runDir: string;
  /** The graph driver (`overlay`, `vfs`, ...): lists and run state are under `<driver>-containers`. */
  readonly driver: string;
  /** A problem with the store's configuration, shown in the engine's health (the store is still read). */
  readonly note?: string;
}

/** One entry of `containers.json` / `volatile-containers.json` (the fields croot uses). */
export interface StorageEntry {
  readonly id: string;
  readonly names: readonly string[];
}

/** What `<runDir>/<driver>-containers/<id>/userdata` says about a container. */
export interface RunState {
  readonly pid?: number;
  readonly conmonPid?: number;
  readonly hostname?: string;
}

/** What a scan of one store found, or why it found nothing. */
export interface StoreScan {
  readonly store: PodmanStore;
  readonly entries: readonly StorageEntry[];
  /** Files that were read, for the engine's health. */
  readonly read: readonly string[];
  /** Set when the store's container list could not be read at all. */
  readonly absent?: string;
  /**
   * Set when the store is there but has no container list yet: c/storage
   * writes its lists with the store's first container, so a podman that has
   * only pulled or loaded images has none. The store has no containers.
   */
  readonly empty?: string;
  /** Lists that are there but could not be read or parsed, whose last good read was used instead, with why. */
  readonly kept?: readonly string[];
}

/** Largest container list read (c/storage writes about 1 KiB per container). */
export const MAX_LIST_BYTES = 64 * 1024 * 1024;
/** Largest `pidfile`, `conmon.pid` or `hostname` read. */
export const MAX_RUN_STATE_BYTES = 4096;

export const STORAGE_LISTS = ['containers.json', 'volatile-containers.json'] as const;

/** Parses a c/storage container list; entries without an id are dropped. */
export function parseContainerList(text: string): StorageEntry[] {
  const data: unknown = JSON.parse(text);
  if (!Array.isArray(data)) throw new Error('not a JSON array');
  const out: StorageEntry[] = [];
  for (const item of data) {
    const e = item as { id?: unknown; names?: unknown };
    if (typeof e.id !== 'string' || e.id.length === 0) continue;
    const names = Array.isArray(e.names) ? e.names.filter((n): n is string => typeof n === 'string' && n.length > 0) : [];
    out.push({ id: e.id, names });
  }
  return out;
}

/**
 * c/storage's graph drivers, in the order croot tries them when nothing names
 * one: overlay first (c/storage's usual choice and the rootful default
 * here), vfs next (the rootless fallback without fuse-overlayfs).
 */
export const GRAPH_DRIVERS: readonly string[] = ['overlay', 'vfs', 'btrfs', 'zfs', 'devicemapper', 'aufs'];

/** c/storage's spelling of a configured driver (`overlay2` is an old name of `overlay`). */
export function canonicalDriver(name: string): string {
  return name === 'overlay2' ? 'overlay' : name;
}

/** Where a store's lists may be: the graph root always, the run root when podman uses a transient store. */
export function listPaths(store: Pick<PodmanStore, 'storageDir' | 'runDir' | 'driver'>): string[] {
  return listFiles(store).map((f) => `${f.root}/${f.rel}`);
}

/** `listPaths` as the tree each list lies in (the graph root or the run root) and its path inside it. */
function listFiles(store: Pick<PodmanStore, 'storageDir' | 'runDir' | 'driver'>): Array<{ root: string; rel: string }> {
  return [
    { root: store.storageDir, rel: `${store.driver}-containers/containers.json` },
    { root: store.storageDir, rel: `${store.driver}-containers/volatile-containers.json` },
    { root: store.runDir, rel: `${store.driver}-containers/volatile-containers.json` },
  ];
}

/** A driver named by a `storage.conf`, and which file named it. */
export interface ConfiguredDriver {
  readonly name: string;
  /** The file, for the engine's health. */
  readonly from: string;
}

/** The driver croot reads a store with, and what the health should say about the choice. */
export interface DriverChoice {
  readonly driver: string;
  /** Whether any of the chosen driver's lists exists. */
  readonly found: boolean;
  readonly note?: string;
}

/** Whether `path` is certainly not there (ENOENT, ENOTDIR); one croot may not read counts as there. */
async function isMissing(path: string): Promise<boolean> {
  try {
    await stat(path);
    return false;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR';
  }
}

/** The newest mtime of the lists that exist for `driver`, or undefined when none does. */
async function listsMtime(storageDir: string, runDir: string, driver: string): Promise<number | undefined> {
  const stats = await Promise.all(listPaths({ storageDir, runDir, driver }).map((p) => stat(p).then((s) => s.mtimeMs, () => undefined)));
  const seen = stats.filter((m): m is number => m !== undefined);
  return seen.length > 0 ? Math.max(...seen) : undefined;
}

/**
 * Which graph driver's lists to read: the driver podman itself uses. Podman
 * records its driver in its database (under the graph root) when it first
 * uses a store, and from then on the recorded driver wins over the one
 * `storage.conf` names (podman logs "User-selected graph driver ...
 * overwritten by graph driver ... from database"). croot does not read that
 * database; it tells the recorded driver by the `<driver>-containers` lists
 * podman left: the one driver that has any; when several have, the one
 * whose list changed last (the store podman wrote to most recently). A
 * driver named in `storage.conf` is read when it has lists, or when no
 * driver has (a new store, which podman will make with it); otherwise the
 * lists on disk win, and the note says so. With neither, overlay.
 */
export async function chooseDriver(storageDir: string, runDir: string, configured: ConfiguredDriver | undefined): Promise<DriverChoice> {
  // A store whose graph root and run root are both missing (most users' on a host) has no list: two stats, not three per driver.
  const none = (await Promise.all([storageDir, runDir].map(isMissing))).every(Boolean);
  const lists = (driver: string): Promise<number | undefined> => (none ? Promise.resolve(undefined) : listsMtime(storageDir, runDir, driver));
  const mtimes = await Promise.all(GRAPH_DRIVERS.map(async (d) => ({ driver: d, mtime: await lists(d) })));
  const present = mtimes.filter((m): m is { driver: string; mtime: number } => m.mtime !== undefined);
  // The driver podman wrote to last: the one it recorded, when lists tell.
  const newest = present.reduce<{ driver: string; mtime: number } | undefined>((a, b) => (a === undefined || b.mtime > a.mtime ? b : a), undefined);
  if (configured !== undefined) {
    const driver = canonicalDriver(configured.name);
    // Every known driver was looked at above; only one croot does not know is looked for now.
    const found = GRAPH_DRIVERS.includes(driver)
      ? present.some((p) => p.driver === driver)
      : (await lists(driver)) !== undefined;
    if (found || newest === undefined) return { driver, found };
    return {
      driver: newest.driver,
      found: true,
      note: `${configured.from} sets driver "${driver}", but only ${present.map((p) => `${p.driver}-containers`).join(', ')} under ${storageDir} hold lists, and podman keeps the driver it recorded for a store: reading ${newest.driver}'s`,
    };
  }
  if (newest === undefined) return { driver: GRAPH_DRIVERS[0] as string, found: false };
  if (present.length === 1) return { driver: newest.driver, found: true };
  const names = present.map((p) => p.driver).join(', ');
  return {
    driver: newest.driver,
    found: true,
    note: `container lists of several graph drivers (${names}) under ${storageDir} and no driver in storage.conf: reading ${newest.driver}'s, changed last`,
  };
}

/**
 * Reads every list of a store; the store is empty when none of them exists
 * but its storage folder does, absent when that folder is missing too.
 * A list that is there but cannot be used (not a regular file, a symbolic
 * link, too large, not JSON: c/storage replaces its lists by rename, so this
 * is damage, not a write caught half-way) counts with the entries of its last
 * good read in `lastGood` (kept per path, updated here), and is named in
 * `kept`; a store whose lists were never read whole is absent.
 */
export async function scanStore(store: PodmanStore, lastGood: Map<string, readonly StorageEntry[]> = new Map()): Promise<StoreScan> {
  const byId = new Map<string, StorageEntry>();
  const read: string[] = [];
  const problems: string[] = [];
  const kept: string[] = [];
  for (const { root, rel } of listFiles(store)) {
    const path = `${root}/${rel}`;
    const file = await readStateFile(root, rel, MAX_LIST_BYTES);
    if (file.kind === 'missing') {
      lastGood.delete(path);
      continue;
    }
    let entries: readonly StorageEntry[] | undefined;
    let problem: string | undefined;
    if (file.kind === 'refused') problem = file.reason;
    else {
      try {
        entries = parseContainerList(file.text);
        lastGood.set(path, entries);
      } catch (err) {
        problem = (err as Error).message;
      }
    }
    if (entries === undefined) {
      entries = lastGood.get(path);
      if (entries === undefined) {
        problems.push(`${path}: ${problem ?? 'unreadable'}`);
        continue;
      }
      kept.push(`${path}: ${problem ?? 'unreadable'}; keeping the ${entries.length === 1 ? 'container' : `${entries.length} containers`} of its last good read`);
    }
    for (const entry of entries) {
      const seen = byId.get(entry.id);
      byId.set(entry.id, seen ? { id: entry.id, names: [...new Set([...seen.names, ...entry.names])] } : entry);
    }
    read.push(path);
  }
  if (read.length === 0) {
    if (problems.length === 0 && !(await isMissing(store.storageDir))) {
      return { store, entries: [], read, empty: `no containers yet (no ${listPaths(store)[0]})` };
    }
    const why = problems.length > 0 ? problems.join('; ') : `no ${listPaths(store)[0]}`;
    return { store, entries: [], read, absent: why };
  }
  return { store, entries: [...byId.values()], read, ...(kept.length > 0 ? { kept } : {}) };
}

/** The folder of a store's container lists (c/storage rewrites them there by rename). */
export function listDir(store: Pick<PodmanStore, 'storageDir' | 'driver'>): string {
  return `${store.storageDir}/${store.driver}-containers`;
}

/** The run root's folder of per-container run state (and of the volatile list of a transient store). */
export function runListDir(store: Pick<PodmanStore, 'runDir' | 'driver'>): string {
  return `${store.runDir}/${store.driver}-containers`;
}

/** A container's run state (`pidfile`, `conmon.pid`, `hostname`), written by podman and conmon at each start. */
export function userdataDir(store: Pick<PodmanStore, 'runDir' | 'driver'>, id: string): string {
  return `${runListDir(store)}/${id}/userdata`;
}

/**
 * A container's folder under the graph root, where conmon keeps its `ctl`,
 * `winsz` and `attach` while it runs and removes them when the container
 * exits.
 */
export function persistDir(store: Pick<PodmanStore, 'storageDir' | 'driver'>, id: string): string {
  return `${listDir(store)}/${id}/userdata`;
}

/** The files of `userdataDir` croot reads. */
export const RUN_STATE_FILES: readonly string[] = ['pidfile', 'conmon.pid', 'hostname'];

/** The files of `persistDir` that exist exactly while conmon runs: their removal says the container exited. */
export const CONMON_FILES: readonly string[] = ['ctl', 'winsz', 'attach'];

/** A /proc file's text, or undefined when the process is gone (a proc file never waits on a disk or a writer). */
function readProcSmall(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * A run-state file's text, or undefined when it is missing or not a file
 * croot reads (core/host/state-file.ts: a symbolic link, a FIFO, too large, reached
 * through a link): the container then counts as not started. Synchronous:
 * run state lives on tmpfs, where a read takes microseconds and a trip
 * through the thread pool per file would cost more than the read (the
 * caller runs these reads in short slices of the event loop); a FIFO is
 * opened non-blocking and refused, so nothing here can wait.
 */
function readRunStateFile(store: Pick<PodmanStore, 'runDir' | 'driver'>, id: string, name: string): string | undefined {
  const file = readStateFileSync(store.runDir, `${store.driver}-containers/${id}/userdata/${name}`, MAX_RUN_STATE_BYTES);
  return file.kind === 'text' ? file.text : undefined;
}

function parsePid(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text.trim());
  return Number.isInteger(value) && value > 0 ? value : undefined;
}

/** Reads `pidfile`, `conmon.pid` and `hostname` of one container (synchronously: small tmpfs files); missing files are left out. */
export function readRunState(store: Pick<PodmanStore, 'runDir' | 'driver'>, id: string): RunState {
  const pidText = readRunStateFile(store, id, 'pidfile');
  const conmonText = readRunStateFile(store, id, 'conmon.pid');
  const hostText = readRunStateFile(store, id, 'hostname');
  const pid = parsePid(pidText);
  const conmonPid = parsePid(conmonText);
  const hostname = hostText?.trim();
  return {
    ...(pid !== undefined ? { pid } : {}),
    ...(conmonPid !== undefined ? { conmonPid } : {}),
    ...(hostname ? { hostname } : {}),
  };
}

/** What /proc says of a pidfile's PID, read when the run state changes. */
export interface InitProcess {
  /** Field 4: the parent PID. */
  readonly ppid: number;
  /** Field 22: start time in clock ticks since boot. */
  readonly startTime: number;
}

/** The PID's parent and start time from /proc/PID/stat; undefined when it is gone or a zombie. */
export function readInitProcess(procRoot: string, pid: number): InitProcess | undefined {
  const text = readProcSmall(`${procRoot}/${pid}/stat`);
  if (text === undefined) return undefined;
  const stat = parseProcessStat(text);
  if (stat === undefined || hasExited(stat)) return undefined;
  const ppid = Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[1]);
  return Number.isInteger(ppid) ? { ppid, startTime: stat.startTime } : undefined;
}

/** The parent PID /proc gives for `pid`, whether it runs or has exited and not been reaped yet. */
export function readParentPid(procRoot: string, pid: number): number | undefined {
  const text = readProcSmall(`${procRoot}/${pid}/stat`);
  if (text === undefined) return undefined;
  const ppid = Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[1]);
  return Number.isInteger(ppid) && ppid > 0 ? ppid : undefined;
}

/** A container's state as its run-state files and /proc tell it. */
export interface RunStatus {
  readonly running: boolean;
  /** `running`, `exited` (it ran, its init is gone) or `created` (it never ran since the run root was made). */
  readonly state: 'running' | 'exited' | 'created';
  /** The init's start time, when running. */
  readonly startTime?: number;
}

/**
 * Whether the pidfile's PID is still the container's init: it must be alive
 * and, when conmon's PID is known, be conmon's child. Podman leaves the
 * pidfile behind when a container stops, so a bare "PID exists" could be an
 * unrelated process that got the number later.
 */
export function runStatus(state: RunState, init: InitProcess | undefined): RunStatus {
  if (state.pid === undefined) return { running: false, state: 'created' };
  if (init === undefined || (state.conmonPid !== undefined && init.ppid !== state.conmonPid)) return { running: false, state: 'exited' };
  return { running: true, state: 'running', startTime: init.startTime };
}
