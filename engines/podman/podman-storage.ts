/**
 * Podman's state as it lies on disk (no daemon needed): c/storage's container
 * lists and the per-container run state conmon writes, for the rootful store
 * and every user's rootless store.
 */
import { readFile, stat } from 'node:fs/promises';
import { readStartTime } from '../../core/proc.js';

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
}

/** One entry of `containers.json` / `volatile-containers.json` (the fields croot uses). */
export interface StorageEntry {
  readonly id: string;
  readonly names: readonly string[];
}

/** What `<runDir>/overlay-containers/<id>/userdata` says about a container. */
export interface RunState {
  readonly pid?: number;
  readonly conmonPid?: number;
  readonly hostname?: string;
}

/** What a scan of one store found, or why it found nothing. */
export interface StoreScan {
  readonly store: PodmanStore;
  readonly entries: readonly StorageEntry[];
  /** Files that were read, for `status()`. */
  readonly read: readonly string[];
  /** Set when the store's container list could not be read at all. */
  readonly absent?: string;
}

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

/** Where a store's lists may be: the graph root always, the run root when podman uses a transient store. */
export function listPaths(store: PodmanStore): string[] {
  return [
    `${store.storageDir}/overlay-containers/containers.json`,
    `${store.storageDir}/overlay-containers/volatile-containers.json`,
    `${store.runDir}/overlay-containers/volatile-containers.json`,
  ];
}

/** Reads every list of a store; the store is absent when none of them exists. */
export async function scanStore(store: PodmanStore): Promise<StoreScan> {
  const byId = new Map<string, StorageEntry>();
  const read: string[] = [];
  const problems: string[] = [];
  for (const path of listPaths(store)) {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') problems.push(`${path}: ${(err as Error).message}`);
      continue;
    }
    try {
      for (const entry of parseContainerList(text)) {
        const seen = byId.get(entry.id);
        byId.set(entry.id, seen ? { id: entry.id, names: [...new Set([...seen.names, ...entry.names])] } : entry);
      }
      read.push(path);
    } catch (err) {
      problems.push(`${path}: ${(err as Error).message}`);
    }
  }
  if (read.length === 0) {
    const why = problems.length > 0 ? problems.join('; ') : `no ${listPaths(store)[0]}`;
    return { store, entries: [], read, absent: why };
  }
  return { store, entries: [...byId.values()], read };
}

export function userdataDir(store: PodmanStore, id: string): string {
  return `${store.runDir}/overlay-containers/${id}/userdata`;
}

async function readSmall(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

function parsePid(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text.trim());
  return Number.isInteger(value) && value > 0 ? value : undefined;
}

/** Reads `pidfile`, `conmon.pid` and `hostname` of one container; missing files are left out. */
export async function readRunState(store: PodmanStore, id: string): Promise<RunState> {
  const dir = userdataDir(store, id);
  const [pidText, conmonText, hostText] = await Promise.all([
    readSmall(`${dir}/pidfile`),
    readSmall(`${dir}/conmon.pid`),
    readSmall(`${dir}/hostname`),
  ]);
  const pid = parsePid(pidText);
  const conmonPid = parsePid(conmonText);
  const hostname = hostText?.trim();
  return {
    ...(pid !== undefined ? { pid } : {}),
    ...(conmonPid !== undefined ? { conmonPid } : {}),
    ...(hostname ? { hostname } : {}),
  };
}

/** Field 4 of /proc/PID/stat (the parent PID); undefined when the PID is gone. */
export async function readParentPid(procRoot: string, pid: number): Promise<number | undefined> {
  const text = await readSmall(`${procRoot}/${pid}/stat`);
  if (text === undefined) return undefined;
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const value = Number(text.slice(close + 2).split(' ')[1]);
  return Number.isInteger(value) ? value : undefined;
}

/**
 * Whether the pidfile's PID is still the container's init: it must exist
 * and, when conmon's pid is known, be conmon's child. Podman leaves the
 * pidfile behind when a container stops, so a bare "PID exists" could be an
 * unrelated process that got the number later.
 */
export async function liveStartTime(procRoot: string, state: RunState): Promise<number | undefined> {
  if (state.pid === undefined) return undefined;
  const started = await readStartTime(procRoot, state.pid);
  if (started === undefined) return undefined;
  if (state.conmonPid !== undefined) {
    const parent = await readParentPid(procRoot, state.pid);
    if (parent !== state.conmonPid) return undefined;
  }
  return started;
}

/** One line of a passwd file. */
export interface PasswdUser {
  readonly name: string;
  readonly uid: number;
  readonly home: string;
}

export function parsePasswd(text: string): PasswdUser[] {
  const out: PasswdUser[] = [];
  for (const line of text.split('\n')) {
    if (line.length === 0 || line.startsWith('#')) continue;
    const f = line.split(':');
    const uid = Number(f[2]);
    const name = f[0];
    const home = f[5];
    if (!name || !home || !Number.isInteger(uid)) continue;
    out.push({ name, uid, home });
  }
  return out;
}

/** Rootless stores of every non-root user whose home holds a podman container list. */
export async function findRootlessStores(passwdPath: string, userRunRoot: string): Promise<PodmanStore[]> {
  const text = await readSmall(passwdPath);
  if (text === undefined) return [];
  const stores: PodmanStore[] = [];
  for (const user of parsePasswd(text)) {
    if (user.uid === 0 || user.home === '/' || user.home.length === 0) continue;
    const storageDir = `${user.home.replace(/\/+$/, '')}/.local/share/containers/storage`;
    const store: PodmanStore = {
      label: `rootless:${user.name}`,
      user: user.name,
      storageDir,
      runDir: `${userRunRoot}/${user.uid}/containers`,
    };
    const found = await Promise.all(listPaths(store).map((p) => stat(p).then(() => true, () => false)));
    if (found.some((f) => f)) stores.push(store);
  }
  return stores;
}

/** `mtime:size` of a path, or `-` when it is absent: one cheap part of a change fingerprint. */
export async function statStamp(path: string): Promise<string> {
  try {
    const s = await stat(path);
    return `${s.mtimeMs}:${s.size}:${s.ino}`;
  } catch {
    return '-';
  }
}
