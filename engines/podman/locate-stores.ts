/**
 * A locate pass: where the rootful store and every user's rootless store
 * are, as c/storage would place them (the system `storage.conf`, each
 * user's own, the graph driver found on disk), and which `storage.conf`
 * folders matter for that answer.
 */
import type { PasswdUser } from './nss-users.js';
import type { PodmanPaths } from './podman-paths.js';
import { chooseDriver, readSystemStorageConf, rootfulLocation, rootlessLocation, systemConfNote, type PodmanStore } from './podman-storage.js';
import { readStorageConf, type StorageConf } from './storage-conf.js';

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
