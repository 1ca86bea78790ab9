/**
 * The Podman engine: rootful containers from c/storage's lists under
 * `$PCP_PODMAN_DATADIR` (else the system `storage.conf`'s graphroot; or
 * podman's Docker-compatible API socket when a `podman system service`
 * answers there), plus every user's rootless store.
 * Run state comes from conmon's pidfiles under the run roots. Each store's
 * graph driver (which names its `<driver>-containers` directories) comes from
 * `storage.conf`, else from the lists found on disk. The index is
 * rebuilt only when a cheap stat fingerprint of those files changes, checked
 * at most once per `checkIntervalMs`.
 */
import Docker from 'dockerode';
import { stat } from 'node:fs/promises';
import { inject, injectable, optional } from 'inversify';
import { CrootConfig } from '../../core/config.js';
import type { ContainerRecord, ContainerSink, EngineContribution, EngineStatus } from '../../core/engine.js';
import { InterimPoll } from '../../core/interim-poll.js';
import { readStartTime } from '../../core/proc.js';
import { ThrottledRefresh } from '../../core/throttled-refresh.js';
import {
  chooseDriver,
  findRootlessStores,
  listPaths,
  liveStartTime,
  readRunState,
  readSystemStorageConf,
  rootfulLocation,
  scanStore,
  systemConfNote,
  statStamp,
  userdataDir,
  type PodmanStore,
  type RootlessScan,
  type RunState,
  type StoreScan,
} from './podman-storage.js';
import { plural } from '../../core/plural.js';

export const PODMAN_ENGINE_ID = 'podman';
export { DEFAULT_PODMAN_DATADIR, DEFAULT_PODMAN_RUNDIR } from './podman-storage.js';
export const DEFAULT_PODMAN_SOCKET = '/run/podman/podman.sock';
export const DEFAULT_CONTAINERS_STORAGE_CONFS: readonly string[] = ['/etc/containers/storage.conf', '/usr/share/containers/storage.conf'];

/** Tuning knobs of the Podman engine; bind under this token to override the defaults. */
export const PodmanEngineOptions = Symbol.for('croot/PodmanEngineOptions');
export interface PodmanEngineOptions {
  /** Least time between two stat passes over the files (ms, default 1000). */
  readonly checkIntervalMs?: number;
  /** Longest time API answers are reused when no file changed (ms, default 5000). */
  readonly apiMaxAgeMs?: number;
  /** Limit for each API request (ms, default 5000). */
  readonly requestTimeoutMs?: number;
}

/** Where the engine looks, from `config.env`. */
export interface PodmanPaths {
  /**
   * Rootful graph root from `PCP_PODMAN_DATADIR`; absent when unset or empty:
   * then the system `storage.conf`'s `graphroot`, else `DEFAULT_PODMAN_DATADIR`.
   */
  readonly dataDir?: string;
  /**
   * Rootful run root from `PCP_PODMAN_RUNDIR`; absent when unset or empty:
   * then the system `storage.conf`'s `runroot`, else `DEFAULT_PODMAN_RUNDIR`.
   */
  readonly runDir?: string;
  /** API socket; empty when disabled (`CROOT_PODMAN_SOCKET=`). */
  readonly socketPath: string;
  /** passwd file listing the users whose rootless stores are read; empty disables rootless. */
  readonly passwdPath: string;
  /** Parent of the per-uid runtime dirs (`/run/user`). */
  readonly userRunRoot: string;
  /**
   * System `storage.conf` candidates, first existing one used: its
   * `graphroot`/`runroot` move the rootful store (unless set above), its
   * `rootless_storage_path` every rootless store. From
   * `CROOT_CONTAINERS_STORAGE_CONF` (empty: none), else c/storage's
   * `/etc/containers/storage.conf`, then `/usr/share/containers/storage.conf`.
   */
  readonly storageConfPaths: readonly string[];
}

export function podmanPathsFrom(env: Readonly<Record<string, string | undefined>>): PodmanPaths {
  const rootless = env.CROOT_PODMAN_ROOTLESS !== '0';
  return {
    ...(env.PCP_PODMAN_DATADIR ? { dataDir: env.PCP_PODMAN_DATADIR } : {}),
    ...(env.PCP_PODMAN_RUNDIR ? { runDir: env.PCP_PODMAN_RUNDIR } : {}),
    socketPath: env.CROOT_PODMAN_SOCKET ?? DEFAULT_PODMAN_SOCKET,
    passwdPath: rootless ? env.CROOT_PASSWD_FILE || '/etc/passwd' : '',
    userRunRoot: env.CROOT_PODMAN_USER_RUNDIR || '/run/user',
    storageConfPaths: storageConfPathsFrom(env.CROOT_CONTAINERS_STORAGE_CONF),
  };
}

function storageConfPathsFrom(value: string | undefined): readonly string[] {
  if (value === undefined) return DEFAULT_CONTAINERS_STORAGE_CONFS;
  return value === '' ? [] : [value];
}

interface ApiContainer {
  readonly id: string;
  readonly names: readonly string[];
  readonly running: boolean;
  readonly paused: boolean;
  readonly pid: number;
  readonly hostname?: string;
}

@injectable()
export class PodmanEngine implements EngineContribution {
  readonly id = PODMAN_ENGINE_ID;
  readonly paths: PodmanPaths;
  /** The rootful store, located again on every refresh (the system `storage.conf` may change). */
  private rootful: PodmanStore;
  private readonly apiMaxAgeMs: number;
  private readonly requestTimeoutMs: number;

  private records: readonly ContainerRecord[] = Object.freeze([]);
  private fingerprint: string | undefined;
  private lastApiRead = 0;
  private apiInUse = false;
  private readonly refresher: ThrottledRefresh<readonly ContainerRecord[]>;
  private statusReason = 'not read yet';
  private available = false;
  private checkedAt = Date.now();
  /** Start times of PIDs when first seen, by `store/id/pid`. */
  private readonly startTimes = new Map<string, number>();

  constructor(
    @inject(CrootConfig) private readonly config: CrootConfig,
    @inject(PodmanEngineOptions) @optional() options: PodmanEngineOptions | undefined,
  ) {
    this.paths = podmanPathsFrom(config.env);
    const { storageDir, runDir } = rootfulLocation(this.paths, { state: 'absent' });
    this.rootful = { label: 'rootful', storageDir, runDir, driver: 'overlay' };
    this.refresher = new ThrottledRefresh(options?.checkIntervalMs ?? 1000, () => this.refresh());
    this.apiMaxAgeMs = options?.apiMaxAgeMs ?? 5000;
    this.requestTimeoutMs = options?.requestTimeoutMs ?? 5000;
  }

  async startLegacy(): Promise<void> {
    await this.containers();
  }

  containers(): Promise<readonly ContainerRecord[]> {
    return this.refresher.get();
  }

  status(): EngineStatus {
    return { engine: this.id, available: this.available, reason: this.statusReason, checkedAt: this.checkedAt };
  }

  /** INTERIM: polls the old pull interface until this engine pushes from its own change signals. */
  private interim: InterimPoll | undefined;

  async start(sink: ContainerSink): Promise<void> {
    await this.startLegacy();
    this.interim = new InterimPoll(sink, this);
    await this.interim.start();
  }

  async stop(): Promise<void> {
    this.interim?.stop();
    await this.refresher.settle();
  }

  private async refresh(): Promise<readonly ContainerRecord[]> {
    const systemConf = await readSystemStorageConf(this.paths.storageConfPaths);
    const systemNotes = systemConf.state === 'bad' ? [systemConfNote(systemConf)] : [];
    const { problem, driver, ...where } = rootfulLocation(this.paths, systemConf);
    const choice = await chooseDriver(where.storageDir, where.runDir, driver);
    const note = [problem, choice.note].filter((n) => n !== undefined).join('; ');
    this.rootful = { label: 'rootful', ...where, driver: choice.driver, ...(note !== '' ? { note } : {}) };
    const rootless: RootlessScan = this.paths.passwdPath
      ? await findRootlessStores({ passwdPath: this.paths.passwdPath, userRunRoot: this.paths.userRunRoot, systemConf })
      : { stores: [], notes: [] };
    const stores = [this.rootful, ...rootless.stores];
    const notes = [...systemNotes, ...rootless.notes];
    // Where the stores are and what went wrong finding them come from config files read above.
    const located = JSON.stringify([stores, notes]);
    const fingerprint = `${located}\n${await this.computeFingerprint(stores)}`;
    const apiStale = this.apiInUse && Date.now() - this.lastApiRead >= this.apiMaxAgeMs;
    if (fingerprint === this.fingerprint && !apiStale) return this.records;
    this.fingerprint = fingerprint;
    await this.rebuild(stores, notes);
    this.checkedAt = Date.now();
    return this.records;
  }

  /** Stats of every file whose change can change an answer, plus the liveness of every running PID. */
  private async computeFingerprint(stores: readonly PodmanStore[]): Promise<string> {
    const paths: string[] = [];
    if (this.paths.passwdPath) paths.push(this.paths.passwdPath);
    if (this.paths.socketPath) paths.push(this.paths.socketPath);
    for (const s of stores) {
      paths.push(...listPaths(s), `${s.storageDir}/libpod/bolt_state.db`, `${s.storageDir}/libpod/db.sql`, `${s.runDir}/${s.driver}-containers`);
    }
    for (const r of this.records) {
      const store = r.source === 'api' ? this.rootful : stores.find((s) => s.label === r.source);
      if (store !== undefined) paths.push(`${userdataDir(store, r.id)}/pidfile`);
      if (r.running && r.pid !== undefined) paths.push(`${this.config.procRoot}/${r.pid}`);
    }
    const stamps = await Promise.all(paths.map(async (p) => `${p}=${await statStamp(p)}`));
    return stamps.join('\n');
  }

  private async rebuild(stores: readonly PodmanStore[], locationNotes: readonly string[]): Promise<void> {
    const notes: string[] = [];
    const next: ContainerRecord[] = [];
    const scans = await Promise.all(stores.map((s) => scanStore(s)));
    const rootfulScan = scans[0] as StoreScan;

    const api = await this.readApi();
    this.apiInUse = api.containers !== undefined;
    if (api.containers !== undefined) {
      this.lastApiRead = Date.now();
      const fileNames = new Map(rootfulScan.entries.map((e) => [e.id, e.names]));
      for (const c of api.containers) {
        next.push(await this.apiRecord(c, fileNames.get(c.id) ?? []));
      }
      notes.push(`rootful: API at ${this.paths.socketPath}: ${plural(api.containers.length, 'container')}`);
    } else {
      if (api.failure) notes.push(`API at ${this.paths.socketPath} not used (${api.failure})`);
    }

    let anySource = api.containers !== undefined;
    for (const scan of scans) {
      const isRootful = scan.store === this.rootful;
      if (scan.store.note !== undefined) notes.push(`${scan.store.label}: ${scan.store.note}`);
      if (isRootful && api.containers !== undefined) continue;
      if (scan.absent !== undefined) {
        notes.push(`${scan.store.label}: ${scan.absent}`);
        continue;
      }
      anySource = true;
      for (const entry of scan.entries) {
        next.push(await this.diskRecord(scan.store, entry.id, entry.names));
      }
      notes.push(`${scan.store.label}: read ${scan.read.join(', ')} (${plural(scan.entries.length, 'container')})`);
    }

    notes.push(...locationNotes);
    this.available = anySource;
    this.statusReason = notes.join('; ');
    this.forgetStartTimes(next);
    if (!sameRecords(this.records, next)) this.records = Object.freeze(next.map((r) => Object.freeze(r)));
  }

  private async diskRecord(store: PodmanStore, id: string, names: readonly string[]): Promise<ContainerRecord> {
    const state: RunState = await readRunState(store, id);
    const started = await liveStartTime(this.config.procRoot, state);
    const allNames = store.user === undefined ? [...names] : [...names, ...names.map((n) => `${store.user}/${n}`)];
    const base = { engine: this.id, id, names: allNames, source: store.label };
    const hostname = state.hostname !== undefined ? { hostname: state.hostname } : {};
    if (started === undefined || state.pid === undefined) return { ...base, running: false, ...hostname };
    return { ...base, running: true, pid: state.pid, pidStartTime: this.firstSeen(`${store.label}/${id}/${state.pid}`, started), ...hostname };
  }

  private async apiRecord(c: ApiContainer, fileNames: readonly string[]): Promise<ContainerRecord> {
    const names = [...new Set([...c.names, ...fileNames])];
    const base = { engine: this.id, id: c.id, names, source: 'api', ...(c.hostname ? { hostname: c.hostname } : {}) };
    if (!c.running || c.pid <= 0) return { ...base, running: false };
    const started = await readStartTime(this.config.procRoot, c.pid);
    if (started === undefined) return { ...base, running: false };
    return {
      ...base,
      running: true,
      ...(c.paused ? { paused: true } : {}),
      pid: c.pid,
      pidStartTime: this.firstSeen(`rootful/${c.id}/${c.pid}`, started),
    };
  }

  private firstSeen(key: string, started: number): number {
    const known = this.startTimes.get(key);
    if (known !== undefined) return known;
    this.startTimes.set(key, started);
    return started;
  }

  private forgetStartTimes(records: readonly ContainerRecord[]): void {
    const live = new Set(records.filter((r) => r.running).map((r) => `${r.source === 'api' ? 'rootful' : r.source}/${r.id}/${r.pid}`));
    for (const key of this.startTimes.keys()) if (!live.has(key)) this.startTimes.delete(key);
  }

  /** The rootful containers through the API socket, or why not. */
  private async readApi(): Promise<{ containers?: ApiContainer[]; failure?: string }> {
    const socketPath = this.paths.socketPath;
    if (!socketPath) return {};
    try {
      await stat(socketPath);
    } catch {
      return { failure: 'no socket' };
    }
    const docker = new Docker({ socketPath, timeout: this.requestTimeoutMs });
    try {
      const list = await docker.listContainers({ all: true });
      const out: ApiContainer[] = [];
      for (const item of list) {
        const running = item.State === 'running' || item.State === 'paused';
        let pid = 0;
        let hostname: string | undefined;
        let paused = item.State === 'paused';
        if (running) {
          const info = await docker.getContainer(item.Id).inspect();
          pid = info.State.Pid;
          paused = info.State.Paused;
          hostname = info.Config.Hostname || undefined;
        }
        out.push({
          id: item.Id,
          names: (item.Names ?? []).map((n) => n.replace(/^\/+/, '')).filter((n) => n.length > 0),
          running,
          paused,
          pid,
          ...(hostname !== undefined ? { hostname } : {}),
        });
      }
      return { containers: out };
    } catch (err) {
      const e = err as { code?: unknown; message?: unknown };
      return { failure: typeof e.code === 'string' ? e.code : String(e.message ?? err) };
    }
  }
}

/** Same content, so the previous frozen array can be handed out again. */
function sameRecords(a: readonly ContainerRecord[], b: readonly ContainerRecord[]): boolean {
  return a.length === b.length && JSON.stringify(a) === JSON.stringify(b);
}
