/**
 * Docker's containers from the daemon's Engine API: one list + inspect pass
 * when it connects, then `GET /events` keeps the in-memory index fresh (each
 * container event re-inspects or drops that container) without polling.
 */
import Docker from 'dockerode';
import type { ContainerRecord } from '../../core/engine.js';
import { readStartTime } from '../../core/proc.js';
import { dockerPidOf, dockerRecordFrom, type DockerContainerJson } from './docker-record.js';

/** Where the daemon is, from `DOCKER_HOST` (unix:// or tcp://), else /var/run/docker.sock. */
export interface DockerEndpoint {
  readonly options: Docker.DockerOptions;
  /** For messages: the socket path or host:port. */
  readonly label: string;
}

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

export function dockerEndpointFrom(env: Readonly<Record<string, string | undefined>>): DockerEndpoint {
  const host = env.DOCKER_HOST?.trim();
  if (host === undefined || host.length === 0) {
    return { options: { socketPath: DEFAULT_DOCKER_SOCKET }, label: DEFAULT_DOCKER_SOCKET };
  }
  if (host.startsWith('unix://')) {
    const path = host.slice('unix://'.length) || DEFAULT_DOCKER_SOCKET;
    return { options: { socketPath: path }, label: path };
  }
  if (host.startsWith('/')) return { options: { socketPath: host }, label: host };
  const m = /^(?:tcp|http|https):\/\/\[?([^\]/]+?)\]?(?::(\d+))?\/?$/.exec(host);
  if (m?.[1] !== undefined) {
    const tls = host.startsWith('https://') || env.DOCKER_TLS_VERIFY === '1';
    const port = m[2] ?? (tls ? '2376' : '2375');
    return { options: { host: m[1], port, protocol: tls ? 'https' : 'http' }, label: `${m[1]}:${port}` };
  }
  return { options: { socketPath: host }, label: host };
}

/** Container events that can change what croot records; exec_*, attach, top... cannot. */
const STATE_EVENTS = new Set([
  'create',
  'start',
  'restart',
  'die',
  'stop',
  'kill',
  'oom',
  'pause',
  'unpause',
  'rename',
  'update',
  'destroy',
]);

export interface DockerApiSourceOptions {
  readonly endpoint: DockerEndpoint;
  readonly procRoot: string;
  /** Limit for each request of the initial pass and of each inspect (default 10 s). */
  readonly requestTimeoutMs?: number;
  /** Called once when the event stream ends or fails after a successful connect. */
  readonly onLost: (reason: string) => void;
  /** Called after the index changed (tests and logs). */
  readonly onChange?: () => void;
}

interface DockerEvent {
  readonly Type?: string;
  readonly Action?: string;
  readonly status?: string;
  readonly id?: string;
  readonly Actor?: { readonly ID?: string };
}

export class DockerApiSource {
  private readonly docker: Docker;
  private readonly records = new Map<string, ContainerRecord>();
  private snapshot: readonly ContainerRecord[] = Object.freeze([]);
  private dirty = false;
  private readonly abort = new AbortController();
  private stream: NodeJS.ReadableStream | undefined;
  /** Event handling runs one at a time, in the daemon's order. */
  private queue: Promise<void> = Promise.resolve();
  private cgroupDriver: string | undefined;
  private lost = false;
  private closed = false;

  constructor(private readonly options: DockerApiSourceOptions) {
    this.docker = new Docker(options.endpoint.options);
  }

  /**
   * Subscribes to events, then lists and inspects every container; resolves
   * once the index is complete. Rejects (and releases everything) when the
   * daemon cannot be reached.
   */
  async connect(): Promise<void> {
    try {
      // dockerode's info() takes options at run time; its types do not say so.
      const info = (await (this.docker.info as (opts: object) => Promise<unknown>).call(this.docker, {
        abortSignal: this.requestSignal(),
      })) as { CgroupDriver?: unknown };
      if (typeof info.CgroupDriver === 'string') this.cgroupDriver = info.CgroupDriver;
      // Events first, so nothing that happens during the listing is missed;
      // they wait in the queue until the listing is done.
      let releaseQueue!: () => void;
      this.queue = new Promise<void>((resolve) => (releaseQueue = resolve));
      const stream = await this.docker.getEvents({
        filters: { type: ['container'] },
        abortSignal: this.abort.signal,
      } as Docker.GetEventsOptions);
      this.stream = stream;
      this.follow(stream);
      try {
        const list = await this.docker.listContainers({ all: true, abortSignal: this.requestSignal() } as Docker.ContainerListOptions);
        await Promise.all(list.map((c) => this.refreshContainer(c.Id)));
      } finally {
        releaseQueue();
      }
      if (this.lost) throw new Error('the event stream ended during the first listing');
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** The index as a frozen array, the same object while nothing changed. */
  containers(): readonly ContainerRecord[] {
    if (this.dirty) {
      this.snapshot = Object.freeze([...this.records.values()]);
      this.dirty = false;
    }
    return this.snapshot;
  }

  /** Number of containers in the index. */
  get size(): number {
    return this.records.size;
  }

  /** Ends the event stream; no callback fires after this. */
  close(): void {
    this.closed = true;
    this.abort.abort();
    const s = this.stream as (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
    s?.destroy?.();
    this.stream = undefined;
  }

  private requestSignal(): AbortSignal {
    return AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.options.requestTimeoutMs ?? 10000)]);
  }

  private follow(stream: NodeJS.ReadableStream): void {
    let buffered = '';
    stream.setEncoding?.('utf8');
    stream.on('data', (chunk: string | Buffer) => {
      buffered += chunk.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line.length > 0) this.onEventLine(line);
      }
    });
    const end = (why: string) => {
      if (this.lost || this.closed) return;
      this.lost = true;
      this.options.onLost(why);
    };
    stream.on('end', () => end('event stream ended'));
    stream.on('close', () => end('event stream closed'));
    stream.on('error', (err: Error) => end(`event stream failed: ${err.message}`));
  }

  private onEventLine(line: string): void {
    let event: DockerEvent;
    try {
      event = JSON.parse(line) as DockerEvent;
    } catch {
      return;
    }
    if ((event.Type ?? 'container') !== 'container') return;
    const action = (event.Action ?? event.status ?? '').split(':')[0] ?? '';
    const id = event.Actor?.ID ?? event.id;
    if (id === undefined || !STATE_EVENTS.has(action)) return;
    this.queue = this.queue
      .then(() => (action === 'destroy' ? this.remove(id) : this.refreshContainer(id)))
      .catch(() => undefined);
  }

  private remove(id: string): void {
    if (this.records.delete(id)) this.changed();
  }

  /** Re-inspects `id`: updates its record, or drops it when the daemon no longer knows it. */
  private async refreshContainer(id: string): Promise<void> {
    if (this.closed) return;
    let json: DockerContainerJson;
    try {
      json = (await this.docker.getContainer(id).inspect({ abortSignal: this.requestSignal() } as object)) as DockerContainerJson;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) this.remove(id);
      // Anything else (daemon going away) surfaces through the event stream.
      return;
    }
    const pid = dockerPidOf(json);
    // Read right away, so a PID reused after the container dies is caught later.
    const pidStartTime = pid === undefined ? undefined : await readStartTime(this.options.procRoot, pid);
    const record = dockerRecordFrom(json, 'api', {
      fallbackId: id,
      ...(this.cgroupDriver === undefined ? {} : { cgroupDriver: this.cgroupDriver }),
      ...(pidStartTime === undefined ? {} : { pidStartTime }),
    });
    if (this.closed || record === undefined) return;
    this.records.set(record.id, record);
    this.changed();
  }

  private changed(): void {
    this.dirty = true;
    this.options.onChange?.();
  }
}
