/**
 * The Docker engine: the daemon's API (kept current by its event stream)
 * when the daemon answers, else the files PCP reads under `$PCP_DOCKER_DIR`
 * (kept current by watching them). Both push each change into the registry.
 *
 * At start the files are read at once while the daemon is pinged; the files'
 * containers are pushed as soon as they are read, and the API's replace them
 * once every container it lists has been inspected. When the event stream
 * ends the engine goes back to the files. While the daemon is away it
 * watches the folder where a unix socket would appear (and tries a tcp://
 * daemon again with backoff), so a daemon that starts later is picked up
 * without restarting croot and without polling.
 */
import { basename, dirname } from 'node:path';
import { inject, injectable, optional } from 'inversify';
import { CrootConfig } from '../../core/config/croot-config.js';
import type { ContainerRecord, ContainerSink, EngineContribution } from '../../core/registry/engine-contribution.js';
import { systemClock, type Clock } from '../../core/host/clock.js';
import { DirectoryWatcher, type DirectoryEvent } from '../../core/host/host-services.js';
import { NodeDirectoryWatcher } from '../../core/host/node-directory-watcher.js';
import { plural } from '../../core/logging/plural.js';
import type { DockerApiSource } from './docker-api-source.js';
import { DockerDiskState } from './docker-disk-state.js';
import { dockerEndpointFrom, type DockerEndpoint } from './docker-endpoint.js';
import { readBootTime } from './docker-record.js';

/**
 * The daemon's side (node:http, node:https, dockerode when it answers),
 * required on the first try at the daemon: a lookup that Docker's files
 * answer (`daemon: 'when-no-files'`) never loads it.
 */
function apiSourceModule(): typeof import('./docker-api-source.js') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('./docker-api-source.js') as typeof import('./docker-api-source.js');
}

export const DOCKER_ENGINE_ID = 'docker';
export const DEFAULT_DOCKER_DIR = '/var/lib/docker';

/** Tuning knobs of the Docker engine; bind under this token to override the defaults. */
export const DockerEngineOptions = Symbol.for('croot/DockerEngineOptions');
export interface DockerEngineOptions {
  /** First wait before trying the daemon again (ms, default 1000); doubles up to `retryMaxMs`. */
  readonly retryMinMs?: number;
  /** Longest wait between two tries (ms, default 30000). */
  readonly retryMaxMs?: number;
  /** Limit for the daemon's answer to `GET /_ping` (ms, default 3000). */
  readonly probeTimeoutMs?: number;
  /** Limit for each API request but the event stream (ms, default 10000). */
  readonly requestTimeoutMs?: number;
  /** Inspects in flight at once (default 8). */
  readonly inspectConcurrency?: number;
  /** Tries of one inspect before the daemon is given up on (default 6). */
  readonly inspectAttempts?: number;
  /** Wait before an inspect's first retry (ms, default 200; doubles up to 5 s). */
  readonly inspectRetryMs?: number;
  /** Container folders read per turn of the event loop in a full scan of the files (default 64). */
  readonly diskReadSlice?: number;
  /** Where the waits between tries at the daemon and between an inspect's tries are timed (default: Node's timers). */
  readonly clock?: Clock;
  /**
   * When to ask the daemon: `always` (default: the API once it answers, the
   * files meanwhile), or `when-no-files`: the files alone whenever Docker's
   * containers folder can be read — for a one-shot lookup (`croot pid NAME`)
   * that should not pay for loading dockerode; the daemon writes every state
   * change to those files.
   */
  readonly daemon?: 'always' | 'when-no-files';
}

@injectable()
export class DockerEngine implements EngineContribution {
  readonly id = DOCKER_ENGINE_ID;
  readonly endpoint: DockerEndpoint;
  readonly dockerDir: string;
  private readonly options: DockerEngineOptions;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly watcher: DirectoryWatcher;
  private readonly clock: Clock;

  private sink: ContainerSink | undefined;
  private bootTime: number | undefined;
  /** The files, read whenever the API is not in use. */
  private disk: DockerDiskState | undefined;
  private diskLoaded = false;
  /** The index shows the files' containers, and their changes are pushed. */
  private diskLive = false;
  /** The API in use. */
  private api: DockerApiSource | undefined;
  /** A try at the daemon in progress. */
  private attempt: { readonly source: DockerApiSource; readonly done: Promise<boolean> } | undefined;
  /** Why the daemon is not in use, from the last try; undefined before any try ended. */
  private apiFailure: string | undefined;
  /** Something was pushed with replaceAll. */
  private loaded = false;
  private retryDelay: number;
  /** Cancels the next try's timer, while one is set. */
  private cancelRetry: (() => void) | undefined;
  /** Tries after a socket event or a lost stream, until the delay reaches its maximum. */
  private retrying = false;
  private unwatchSocket: (() => void) | undefined;
  private stopped = false;

  constructor(
    @inject(CrootConfig) private readonly config: CrootConfig,
    @inject(DockerEngineOptions) @optional() options: DockerEngineOptions | undefined,
    @inject(DirectoryWatcher) @optional() watcher: DirectoryWatcher | undefined,
  ) {
    this.endpoint = dockerEndpointFrom(config.env);
    this.dockerDir = config.env.PCP_DOCKER_DIR || DEFAULT_DOCKER_DIR;
    this.options = options ?? {};
    this.retryMinMs = this.options.retryMinMs ?? 1000;
    this.retryMaxMs = this.options.retryMaxMs ?? 30000;
    this.retryDelay = this.retryMinMs;
    this.watcher = watcher ?? new NodeDirectoryWatcher();
    this.clock = this.options.clock ?? systemClock;
  }

  /** Which source the index shows now: the daemon's API, the files, or none yet. */
  get source(): 'api' | 'disk' | undefined {
    return this.api !== undefined ? 'api' : this.diskLive ? 'disk' : undefined;
  }

  async start(sink: ContainerSink): Promise<void> {
    this.sink = sink;
    this.stopped = false;
    this.bootTime = await readBootTime(this.config.procRoot);
    this.openDisk();
    if (this.options.daemon !== 'when-no-files') void this.tryDaemon();
  }

  /** With `daemon: 'when-no-files'`, whether the files answer alone. */
  private filesSuffice(): boolean {
    return this.options.daemon === 'when-no-files' && this.disk !== undefined && (!this.diskLoaded || this.disk.isPresent);
  }

  /**
   * The safety net: with the API, a listing compared with what is known;
   * with the files, a re-read of what changed. Each source pushes what it
   * finds changed as it finds it (not the whole list again: at 10 000
   * containers that cost more than the re-check). Without the daemon, also
   * one more try at it (a daemon that did not answer, a socket event missed).
   */
  async recheck(): Promise<void> {
    const api = this.api;
    if (api !== undefined) {
      await api.recheck();
      this.reportHealth();
      return;
    }
    const disk = this.disk;
    if (disk !== undefined && this.diskLoaded) {
      await disk.recheck();
      this.reportHealth();
    }
    if (this.attempt === undefined && this.cancelRetry === undefined && !this.filesSuffice()) void this.tryDaemon();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.sink = undefined;
    this.cancelRetryTimer();
    this.unwatchSocket?.();
    this.unwatchSocket = undefined;
    const attempt = this.attempt;
    attempt?.source.close();
    await attempt?.done;
    this.api?.close();
    this.api = undefined;
    this.disk?.close();
    this.disk = undefined;
    this.diskLive = false;
  }

  /** Starts reading the files; they are pushed once read, unless the API is in use by then. */
  private openDisk(): void {
    const disk: DockerDiskState = new DockerDiskState({
      dockerDir: this.dockerDir,
      watcher: this.watcher,
      bootTime: this.bootTime,
      ...(this.options.diskReadSlice === undefined ? {} : { readSlice: this.options.diskReadSlice }),
      onUpsert: (record) => this.fromDisk(disk, (sink) => sink.upsert(record)),
      onRemove: (id) => this.fromDisk(disk, (sink) => sink.remove(id)),
      onPresence: () => this.fromDisk(disk, () => undefined),
    });
    this.disk?.close();
    this.disk = disk;
    this.diskLoaded = false;
    this.diskLive = false;
    void disk.load().then(() => {
      if (this.disk !== disk || this.stopped) return;
      this.diskLoaded = true;
      if (this.options.daemon === 'when-no-files' && !disk.isPresent) void this.tryDaemon();
      this.useDiskIfDue();
    });
  }

  private fromDisk(disk: DockerDiskState, push: (sink: ContainerSink) => void): void {
    if (this.disk !== disk || !this.diskLive || this.sink === undefined) return;
    push(this.sink);
    this.reportHealth();
  }

  /**
   * Pushes the files' containers when they are read and the API is not in
   * use. Before the first push, a missing containers folder waits for the
   * daemon's try to end: pushing nothing would make lookups say "no such
   * container" while the API may still be loading them.
   */
  private useDiskIfDue(): void {
    const disk = this.disk;
    if (disk === undefined || !this.diskLoaded || this.diskLive || this.api !== undefined || this.stopped) return;
    if (!this.loaded && !disk.isPresent && this.attempt !== undefined) {
      this.reportHealth();
      return;
    }
    this.diskLive = true;
    this.pushAll(disk.containers());
    this.reportHealth();
  }

  /** One try at the daemon: ping, then a full load through the API; true when the API is now in use. */
  private tryDaemon(): Promise<boolean> {
    if (this.stopped || this.api !== undefined) return Promise.resolve(this.api !== undefined);
    if (this.attempt !== undefined) return this.attempt.done;
    const { DockerApiSource, describeDockerError } = apiSourceModule();
    const source: DockerApiSource = new DockerApiSource({
      endpoint: this.endpoint,
      bootTime: this.bootTime,
      ...pick(this.options, ['probeTimeoutMs', 'requestTimeoutMs', 'inspectConcurrency', 'inspectAttempts', 'inspectRetryMs']),
      clock: this.clock,
      onUpsert: (record) => this.fromApi(source, (sink) => sink.upsert(record)),
      onRemove: (id) => this.fromApi(source, (sink) => sink.remove(id)),
      onLost: (why) => this.lost(source, why),
      onProgress: () => this.reportHealth(),
    });
    const done = source.connect().then(
      () => {
        this.attempt = undefined;
        if (this.stopped) {
          source.close();
          return false;
        }
        this.useApi(source);
        return true;
      },
      (err: unknown) => {
        this.attempt = undefined;
        if (!this.stopped) this.daemonFailed(describeDockerError(err));
        return false;
      },
    );
    this.attempt = { source, done };
    return done;
  }

  private fromApi(source: DockerApiSource, push: (sink: ContainerSink) => void): void {
    if (this.api !== source || this.sink === undefined) return;
    push(this.sink);
    this.reportHealth();
  }

  private useApi(source: DockerApiSource): void {
    this.api = source;
    this.apiFailure = undefined;
    this.retryDelay = this.retryMinMs;
    this.retrying = false;
    this.cancelRetryTimer();
    this.unwatchSocket?.();
    this.unwatchSocket = undefined;
    this.disk?.close();
    this.disk = undefined;
    this.diskLoaded = false;
    this.diskLive = false;
    this.pushAll(source.containers());
    source.startFollowing();
    this.reportHealth();
  }

  private daemonFailed(why: string): void {
    this.apiFailure = why;
    this.useDiskIfDue();
    this.reportHealth();
    this.waitForDaemon();
  }

  /** The event stream ended (or an inspect kept failing): back to the files, and look for the daemon again. */
  private lost(source: DockerApiSource, why: string): void {
    if (this.api !== source) return;
    source.close();
    this.api = undefined;
    this.apiFailure = why;
    if (this.stopped) return;
    this.openDisk();
    this.reportHealth();
    this.retryDelay = this.retryMinMs;
    this.retrying = true;
    this.waitForDaemon();
  }

  /**
   * While the daemon is away: a unix socket's folder is watched and a try is
   * made when the socket appears there; a tcp:// daemon (or a socket whose
   * folder cannot be watched) is tried again with backoff. After a socket
   * event or a lost stream a few backed-off tries follow, for a daemon that
   * makes its socket a moment before it answers.
   */
  private waitForDaemon(): void {
    if (this.stopped || this.api !== undefined || this.endpoint.problem !== undefined) return;
    const socket = this.endpoint.options.socketPath;
    if (socket !== undefined && this.unwatchSocket === undefined) {
      try {
        this.unwatchSocket = this.watcher.watch(dirname(socket), (event) => this.socketEvent(basename(socket), event));
      } catch {
        this.unwatchSocket = undefined;
      }
    }
    if (this.unwatchSocket !== undefined) {
      if (!this.retrying) return;
      if (this.retryDelay >= this.retryMaxMs) {
        this.retrying = false;
        return;
      }
    }
    this.scheduleRetry();
  }

  private socketEvent(name: string, event: DirectoryEvent): void {
    if (this.stopped || this.api !== undefined) return;
    if (event.kind === 'gone') {
      this.unwatchSocket?.();
      this.unwatchSocket = undefined;
      this.waitForDaemon();
      return;
    }
    if (!(event.kind === 'overflow' || (event.kind === 'changed' && event.name === name))) return;
    this.cancelRetryTimer();
    this.retryDelay = this.retryMinMs;
    this.retrying = true;
    void this.tryDaemon();
  }

  /** Cancels the next try's timer, if one is set. */
  private cancelRetryTimer(): void {
    this.cancelRetry?.();
    this.cancelRetry = undefined;
  }

  private scheduleRetry(): void {
    if (this.stopped || this.cancelRetry !== undefined || this.api !== undefined) return;
    const wait = this.retryDelay;
    this.retryDelay = Math.min(wait * 2, this.retryMaxMs);
    this.cancelRetry = this.clock.after(wait, () => {
      this.cancelRetry = undefined;
      void this.tryDaemon();
    });
  }

  /** Replaces the engine's containers in the registry (which applies a long list in slices). */
  private pushAll(records: readonly ContainerRecord[]): void {
    if (this.sink === undefined) return;
    this.sink.replaceAll(records);
    this.loaded = true;
    this.reportHealth();
  }

  /** Tells the registry what the engine reads now and how many containers it has. */
  private reportHealth(): void {
    const sink = this.sink;
    if (sink === undefined || this.stopped) return;
    const daemon = `daemon at ${this.endpoint.label}`;
    const api = this.api;
    if (api !== undefined) {
      sink.health(true, `${daemon} (API and events): ${plural(api.size, 'container')}`);
      return;
    }
    const disk = this.disk;
    const files =
      disk === undefined || !this.diskLoaded
        ? `${this.dockerDir} not read yet`
        : disk.isPresent
          ? `reading ${this.dockerDir}: ${plural(disk.size, 'container')}`
          : (disk.unavailableReason() ?? `${this.dockerDir} not read yet`);
    const filesUsable = this.diskLive && disk !== undefined && disk.isPresent;
    const progress = this.attempt?.source.progress();
    if (progress?.answered === true) {
      const done =
        progress.listed === undefined ? 'listing its containers' : `${progress.inspected} of ${plural(progress.listed, 'container')} inspected`;
      const retrying = progress.retrying > 0 ? `, ${progress.retrying} inspect${progress.retrying === 1 ? '' : 's'} to retry (${progress.lastError ?? '?'})` : '';
      const meanwhile = filesUsable || this.loaded ? `; meanwhile ${files}` : '; its first load is not complete';
      sink.health(filesUsable, `${daemon} answers, loading: ${done}${retrying}${meanwhile}`);
      return;
    }
    if (this.apiFailure === undefined) {
      sink.health(filesUsable, `${daemon} not answered yet; ${files}`);
      return;
    }
    if (filesUsable) sink.health(true, `${daemon} unreachable (${this.apiFailure}); ${files}`);
    else if (disk !== undefined && this.diskLoaded) sink.health(false, `no ${daemon} (${this.apiFailure}) and ${files}`);
    else sink.health(false, `${daemon} unreachable (${this.apiFailure}); ${files}`);
  }
}

/** The keys of `from` that are set, as an object (exactOptionalPropertyTypes refuses `undefined` for optional keys). */
function pick<T extends object, K extends keyof T>(from: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (from[key] !== undefined) out[key] = from[key];
  return out;
}
