/**
 * A locate pass: where the rootful store and every user's rootless store
 * are, as c/storage would place them (the system `storage.conf`, each
 * user's own, the graph driver found on disk), and which `storage.conf`
 * folders matter for that answer.
 */
import type { PasswdUser } from './nss-users.js';
import type { PodmanPaths } from './podman-paths.js';
import { canonicalDriver, chooseDriver, type ConfiguredDriver, type PodmanStore } from './podman-storage.js';
import { expandStoragePath, readStorageConf, type ExpansionUser, type StorageConf, type StorageConfRead } from './storage-conf.js';

/** c/storage's built-in rootful graph root. */
export const DEFAULT_PODMAN_DATADIR = '/var/lib/containers/storage';
/** c/storage's built-in rootful run root. */
export const DEFAULT_PODMAN_RUNDIR = '/run/containers/storage';

/** The drivers c/storage lets a rootless user inherit from the system `storage.conf`. */
export const ROOTLESS_DRIVERS: readonly string[] = ['overlay', 'vfs', 'btrfs'];

/** A store as a locate pass wants it. */
export interface WantedStore {
  readonly store: PodmanStore;
  /** Whether a storage.conf names the driver (else it was found on disk, and may change). */
  readonly driverConfigured: boolean;
}

/** What a locate pass found. */
export interface StoreLocations {
  /** The rootful store first, then each user's that is worth watching. */
  readonly wanted: readonly WantedStore[];
  /** Health notes: a system `storage.conf` that cannot be used, users whose store cannot be placed. */
  readonly notes: readonly string[];
  /** Folders of users' storage.conf files to watch. */
  readonly confDirs: readonly string[];
}

/** What a locate pass found for one user. */
interface UserLocation {
  readonly wanted?: WantedStore;
  readonly note?: string;
  /** The folder of the user's storage.conf, watched while the user has or may soon have a store. */
  readonly confDir?: string;
}

/** Users processed at once by a locate pass (each costs a storage.conf read and a few stats). */
const USER_CONCURRENCY = 16;

/**
 * Works out where every store is. `users` and `runtimeUids` (the uids with a
 * folder under `paths.userRunRoot`) are asked for once the rootful store is
 * placed, so a user look-up that finished meanwhile counts.
 */
export async function locateStores(
  paths: PodmanPaths,
  users: () => readonly PasswdUser[],
  runtimeUids: () => Promise<readonly string[]>,
): Promise<StoreLocations> {
  const systemRead = await readSystemStorageConf(paths.storageConfPaths);
  const notes: string[] = systemRead.state === 'bad' ? [systemConfNote(systemRead)] : [];
  const { problem, driver, ...where } = rootfulLocation(paths, systemRead);
  const choice = await chooseDriver(where.storageDir, where.runDir, driver);
  const rootfulNote = [problem, choice.note].filter((n) => n !== undefined).join('; ');
  const wanted: WantedStore[] = [
    {
      store: { label: 'rootful', ...where, driver: choice.driver, ...(rootfulNote !== '' ? { note: rootfulNote } : {}) },
      driverConfigured: driver !== undefined,
    },
  ];
  const confDirs: string[] = [];
  if (paths.rootless) {
    const system = systemRead.state === 'read' ? systemRead.conf : {};
    const runtime = new Set(await runtimeUids());
    const located = users().filter((u) => u.uid !== 0 && u.home !== '/' && u.home.length > 0);
    for (const found of await mapLimit(located, USER_CONCURRENCY, (u) => locateUser(paths, u, system, runtime.has(String(u.uid))))) {
      if (found.note !== undefined) notes.push(found.note);
      if (found.wanted !== undefined) wanted.push(found.wanted);
      if (found.confDir !== undefined) confDirs.push(found.confDir);
    }
  }
  return { wanted, notes, confDirs };
}

/**
 * Where one user's store is. It is watched when its lists exist, when its
 * configuration has a problem, or when the user has a runtime folder (a
 * session or lingering: where rootless podman runs).
 */
async function locateUser(paths: PodmanPaths, user: PasswdUser, system: StorageConf, hasRuntime: boolean): Promise<UserLocation> {
  const confDir = `${user.home.replace(/\/+$/, '')}/.config/containers`;
  const userConf = await readStorageConf(`${confDir}/storage.conf`);
  const where = rootlessLocation(user, userConf, system, paths.userRunRoot);
  const label = `rootless:${user.name}`;
  if (where.storageDir === undefined || where.runDir === undefined) {
    return { note: `${label}: ${where.problem ?? 'no store location'}`, confDir };
  }
  const choice = await chooseDriver(where.storageDir, where.runDir, where.driver);
  const note = [where.problem, choice.note].filter((n) => n !== undefined).join('; ');
  if (!choice.found && note === '' && !hasRuntime) return {};
  const store: PodmanStore = {
    label,
    user: user.name,
    storageDir: where.storageDir,
    runDir: where.runDir,
    driver: choice.driver,
    ...(note !== '' ? { note } : {}),
  };
  return { wanted: { store, driverConfigured: where.driver !== undefined }, confDir };
}

/** Where one user's store is, or why it cannot be known. */
export interface Location {
  readonly storageDir?: string;
  readonly runDir?: string;
  /** The driver the user's or the system's `storage.conf` names; absent: found on disk (`chooseDriver`). */
  readonly driver?: ConfiguredDriver;
  readonly problem?: string;
}

/**
 * Where a rootless user's store is, as c/storage 1.43 (podman 4.3) works it
 * out: the user's own `storage.conf` (`$XDG_CONFIG_HOME/containers/`, for
 * croot `<home>/.config/containers/`), when it exists, replaces the system
 * one; its `graphroot` wins, then its `rootless_storage_path`, then the
 * system file's `rootless_storage_path`, then `~/.local/share/containers/storage`.
 * The run root is the user file's `runroot` or `/run/user/<uid>/containers`
 * (the system file's `runroot` is for root only). The driver is the user
 * file's `driver`; without a user file, the system file's when it is one a
 * rootless user may use (overlay, vfs, btrfs); else it is left to
 * `chooseDriver`. A user file that cannot be parsed is a problem, and the
 * defaults apply, as they do in podman 4.3.
 */
export function rootlessLocation(user: PasswdUser, userConf: StorageConfRead, system: StorageConf, userRunRoot: string): Location {
  const problems: string[] = [];
  const expand = (path: string, what: string): string | undefined => {
    try {
      return expandStoragePath(path, user);
    } catch (err) {
      problems.push(`${what} ${(err as Error).message}`);
      return undefined;
    }
  };
  let graph: { path: string; key: string } | undefined;
  let run: { path: string; key: string } | undefined;
  let driver: ConfiguredDriver | undefined;
  if (userConf.state === 'bad') {
    problems.push(`${userConf.reason} (using the defaults, as podman 4.3 does)`);
  } else if (userConf.state === 'read') {
    const conf = userConf.conf;
    if (conf.graphroot !== undefined) graph = { path: conf.graphroot, key: `${userConf.path}: graphroot` };
    else if (conf.rootlessStoragePath !== undefined) graph = { path: conf.rootlessStoragePath, key: `${userConf.path}: rootless_storage_path` };
    if (conf.runroot !== undefined) run = { path: conf.runroot, key: `${userConf.path}: runroot` };
    if (conf.driver !== undefined) driver = { name: conf.driver, from: userConf.path };
  } else if (system.driver !== undefined && ROOTLESS_DRIVERS.includes(canonicalDriver(system.driver))) {
    driver = { name: system.driver, from: 'system storage.conf' };
  }
  if (graph === undefined && system.rootlessStoragePath !== undefined) graph = { path: system.rootlessStoragePath, key: 'system rootless_storage_path' };
  const storageDir = graph !== undefined ? expand(graph.path, graph.key) : `${user.home.replace(/\/+$/, '')}/.local/share/containers/storage`;
  const runDir = run !== undefined ? expand(run.path, run.key) : `${userRunRoot}/${user.uid}/containers`;
  return {
    ...(storageDir !== undefined ? { storageDir } : {}),
    ...(runDir !== undefined ? { runDir } : {}),
    ...(driver !== undefined ? { driver } : {}),
    ...(problems.length > 0 ? { problem: problems.join('; ') } : {}),
  };
}

/** The first system `storage.conf` of `paths` that exists (c/storage: /etc, then /usr/share), read. */
export async function readSystemStorageConf(paths: readonly string[]): Promise<StorageConfRead> {
  for (const path of paths) {
    const read = await readStorageConf(path);
    if (read.state !== 'absent') return read;
  }
  return { state: 'absent' };
}

/** The health note for a system `storage.conf` that cannot be used. */
export function systemConfNote(read: StorageConfRead & { state: 'bad' }): string {
  return `system storage.conf ${read.reason} (using the built-in paths; rootful podman 4.3 refuses such a file)`;
}

/** Whom croot expands the rootful store's paths for: podman run as root. */
const ROOT_USER: ExpansionUser = { name: 'root', uid: 0, home: '/root' };

/** Where the rootful store is; `problem` says why a configured path was not used. */
export interface RootfulLocation {
  readonly storageDir: string;
  readonly runDir: string;
  /** The system `storage.conf`'s `driver`; absent: found on disk (`chooseDriver`). */
  readonly driver?: ConfiguredDriver;
  readonly problem?: string;
}

/**
 * Where the rootful store is: an explicit directory (PCP's
 * `PCP_PODMAN_DATADIR` / `PCP_PODMAN_RUNDIR`) wins; else the system
 * `storage.conf`'s `[storage] graphroot` / `runroot`, expanded as for root
 * (`$UID` is 0, `$HOME` is /root, `$USER` is root); else c/storage's
 * built-in paths. The driver is the system file's `driver`, if any. A
 * malformed file counts as empty (the caller reports it); a path that cannot
 * be expanded is a `problem` and the default is used. So is a path a file
 * leaves unset (no `[storage]` table, say): rootful podman 4.3 refuses
 * such a file (c/storage 1.45 to 1.58: "runroot must be set"), c/storage
 * 1.59 and later use the built-in path, where the containers made before are.
 */
export function rootfulLocation(explicit: { readonly dataDir?: string; readonly runDir?: string }, system: StorageConfRead): RootfulLocation {
  const conf: StorageConf = system.state === 'read' ? system.conf : {};
  const problems: string[] = [];
  const pick = (given: string | undefined, configured: string | undefined, key: string, fallback: string): string => {
    if (given !== undefined) return given;
    if (configured === undefined) {
      if (system.state === 'read') problems.push(`${system.path}: no ${key} set (using ${fallback}; rootful podman 4.3 refuses such a file: "${key} must be set")`);
      return fallback;
    }
    try {
      return expandStoragePath(configured, ROOT_USER);
    } catch (err) {
      problems.push(`${system.state === 'read' ? system.path : 'system storage.conf'}: ${key} ${(err as Error).message} (using ${fallback})`);
      return fallback;
    }
  };
  const storageDir = pick(explicit.dataDir, conf.graphroot, 'graphroot', DEFAULT_PODMAN_DATADIR);
  const runDir = pick(explicit.runDir, conf.runroot, 'runroot', DEFAULT_PODMAN_RUNDIR);
  const driver = system.state === 'read' && conf.driver !== undefined ? { driver: { name: conf.driver, from: system.path } } : {};
  return { storageDir, runDir, ...driver, ...(problems.length > 0 ? { problem: problems.join('; ') } : {}) };
}

/** `fn` over `items`, at most `limit` at a time, results in order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
