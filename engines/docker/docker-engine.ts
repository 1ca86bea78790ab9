/**
 * The Docker engine: the daemon's API (kept fresh by its event stream) when
 * the daemon answers, else the files PCP reads under `$PCP_DOCKER_DIR`. While
 * on the files it keeps trying the daemon with backoff, so a daemon that
 * starts later is picked up without restarting croot.
 */
import { inject, injectable, optional } from 'inversify';
import { CrootConfig } from '../../core/config.js';
import type { ContainerRecord, ContainerSink, EngineContribution, EngineStatus } from '../../core/engine.js';
import { InterimPoll } from '../../core/interim-poll.js';
import { DockerApiSource, dockerEndpointFrom, type DockerEndpoint } from './docker-api-source.js';
import { DockerDiskState } from './docker-disk-state.js';
import { plural } from '../../core/plural.js';

export const DOCKER_ENGINE_ID = 'docker';
export const DEFAULT_DOCKER_DIR = '/var/lib/docker';

/** Tuning knobs of the Docker engine; bind under this token to override the defaults. */
export const DockerEngineOptions = Symbol.for('croot/DockerEngineOptions');
export interface DockerEngineOptions {
  /** First wait before trying the daemon again (ms, default 1000); doubles up to `retryMaxMs`. */
  readonly retryMinMs?: number;
  /** Longest wait between two tries (ms, default 30000). */
  readonly retryMaxMs?: number;
  /** Limit for each API request but the event stream (ms, default 10000). */
  readonly requestTimeoutMs?: number;
  /** Least time between two stat passes over the files (ms, default 1000). */
  readonly diskCheckIntervalMs?: number;
}

@injectable()
export class DockerEngine implements EngineContribution {
  readonly id = DOCKER_ENGINE_ID;
  readonly endpoint: DockerEndpoint;
  readonly dockerDir: string;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly requestTimeoutMs: number;
  private readonly diskCheckIntervalMs: number;

  private api: DockerApiSource | undefined;
  private disk: DockerDiskState | undefined;
  /** Why the daemon is not in use, from the last try. */
  private apiFailure = 'not tried yet';
  private retryDelay: number;
  private retryTimer: NodeJS.Timeout | undefined;
  private connecting: Promise<boolean> | undefined;
  private stopped = false;
  private checkedAt = Date.now();

  constructor(
    @inject(CrootConfig) private readonly config: CrootConfig,
    @inject(DockerEngineOptions) @optional() options: DockerEngineOptions | undefined,
  ) {
    this.endpoint = dockerEndpointFrom(config.env);
    this.dockerDir = config.env.PCP_DOCKER_DIR || DEFAULT_DOCKER_DIR;
    this.retryMinMs = options?.retryMinMs ?? 1000;
    this.retryMaxMs = options?.retryMaxMs ?? 30000;
    this.requestTimeoutMs = options?.requestTimeoutMs ?? 10000;
    this.diskCheckIntervalMs = options?.diskCheckIntervalMs ?? 1000;
    this.retryDelay = this.retryMinMs;
  }

  /** Which source answers now: the daemon's API, the files, or none yet. */
  get source(): 'api' | 'disk' | undefined {
    return this.api !== undefined ? 'api' : this.disk !== undefined ? 'disk' : undefined;
  }

  async startLegacy(): Promise<void> {
    this.stopped = false;
    if (!(await this.connect())) {
      this.useDisk();
      await this.disk?.containers();
      this.scheduleRetry();
    }
  }

  containers(): Promise<readonly ContainerRecord[]> {
    // Not async: the disk's promise is handed on, not wrapped in another (two microtask turns fewer).
    return this.api !== undefined ? Promise.resolve(this.api.containers()) : this.useDisk().containers();
  }

  status(): EngineStatus {
    const daemon = `daemon at ${this.endpoint.label}`;
    if (this.api !== undefined) {
      return { engine: this.id, available: true, reason: `${daemon} (API and events): ${plural(this.api.size, 'container')}`, checkedAt: this.checkedAt };
    }
    const disk = this.disk;
    const unreachable = `${daemon} unreachable (${this.apiFailure})`;
    if (disk === undefined || !disk.checked) {
      return { engine: this.id, available: false, reason: `${unreachable}; ${this.dockerDir} not read yet`, checkedAt: this.checkedAt };
    }
    const absent = disk.unavailableReason();
    if (absent !== undefined) {
      return { engine: this.id, available: false, reason: `no ${daemon} (${this.apiFailure}) and ${absent}`, checkedAt: this.checkedAt };
    }
    return { engine: this.id, available: true, reason: `${unreachable}; reading ${this.dockerDir}: ${plural(disk.size, 'container')}`, checkedAt: this.checkedAt };
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
    this.stopped = true;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await this.connecting?.catch(() => false);
    this.api?.close();
    this.api = undefined;
    this.disk?.close();
    this.disk = undefined;
  }

  /** One try at the daemon; true when the API source is now in use. */
  private connect(): Promise<boolean> {
    this.connecting ??= this.tryConnect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async tryConnect(): Promise<boolean> {
    const source: DockerApiSource = new DockerApiSource({
      endpoint: this.endpoint,
      procRoot: this.config.procRoot,
      requestTimeoutMs: this.requestTimeoutMs,
      onLost: (why) => this.lost(source, why),
    });
    try {
      await source.connect();
    } catch (err) {
      this.apiFailure = describeError(err);
      this.checkedAt = Date.now();
      return false;
    }
    this.checkedAt = Date.now();
    if (this.stopped) {
      source.close();
      return false;
    }
    this.api = source;
    this.apiFailure = '';
    this.retryDelay = this.retryMinMs;
    this.disk?.close();
    this.disk = undefined;
    return true;
  }

  /** The daemon went away: answer from the files and try the daemon again. */
  private lost(source: DockerApiSource, why: string): void {
    if (this.api !== source) return;
    source.close();
    this.api = undefined;
    this.apiFailure = why;
    this.checkedAt = Date.now();
    if (this.stopped) return;
    void this.useDisk()
      .containers()
      .catch(() => undefined);
    this.retryDelay = this.retryMinMs;
    this.scheduleRetry();
  }

  private useDisk(): DockerDiskState {
    this.disk ??= new DockerDiskState({
      dockerDir: this.dockerDir,
      procRoot: this.config.procRoot,
      checkIntervalMs: this.diskCheckIntervalMs,
    });
    return this.disk;
  }

  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.connect().then((ok) => {
        if (!ok) {
          this.retryDelay = Math.min(this.retryDelay * 2, this.retryMaxMs);
          this.scheduleRetry();
        }
      });
    }, this.retryDelay);
    this.retryTimer.unref();
  }
}

/** A short reason: the errno code (ECONNREFUSED, ENOENT) when there is one. */
function describeError(err: unknown): string {
  const e = err as { code?: unknown; statusCode?: unknown; message?: unknown; name?: unknown };
  if (typeof e?.code === 'string') return e.code;
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'timed out';
  if (typeof e?.statusCode === 'number') return `HTTP ${e.statusCode}: ${String(e.message ?? '')}`.trim();
  return String(e?.message ?? err);
}
