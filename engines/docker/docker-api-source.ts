/**
 * Docker's containers from the daemon's Engine API: one list + inspect pass
 * when it connects, then `GET /events` keeps the in-memory index fresh (each
 * container event re-inspects or drops that container) without polling.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import Docker from 'dockerode';
import type { ContainerRecord } from '../../core/engine.js';
import { readStartTime } from '../../core/proc.js';
import { dockerConfigDir, dockerContextFrom } from './docker-context.js';
import { dockerPidOf, dockerRecordFrom, type DockerContainerJson } from './docker-record.js';

/**
 * Where the daemon is, as the docker CLI finds it: `DOCKER_HOST` (unix://,
 * tcp://, http(s)://), else the current docker context (see
 * docker-context.ts), else /var/run/docker.sock.
 */
export interface DockerEndpoint {
  /** Transport options for dockerode; the TLS files are added when connecting. */
  readonly options: Docker.DockerOptions;
  /** For messages: the socket path or host:port, and the context it came from. */
  readonly label: string;
  /** Set when a tcp:// daemon is reached over TLS. */
  readonly tls?: DockerTls;
  /** Why this endpoint cannot be used at all (a context that cannot be read, an ssh:// daemon); each try fails with it. */
  readonly problem?: string;
}

/**
 * TLS to a tcp:// daemon, read from the environment as the docker CLI reads
 * it: `DOCKER_TLS_VERIFY` (any non-empty value) means TLS checked against
 * `ca.pem`, `DOCKER_TLS` (non-empty) alone means TLS without checking the
 * daemon's certificate; `DOCKER_CERT_PATH` alone turns nothing on. A docker
 * context brings its own files, checked unless it says `SkipTLSVerify`.
 */
export interface DockerTls {
  /** Check the daemon's certificate against `ca.pem` and its host name or IP. */
  readonly verify: boolean;
  /** `DOCKER_CERT_PATH`, else `$DOCKER_CONFIG`, else `$HOME/.docker`; or the context's TLS folder. */
  readonly certPath: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

export function dockerEndpointFrom(env: Readonly<Record<string, string | undefined>>): DockerEndpoint {
  const host = env.DOCKER_HOST?.trim();
  if (host !== undefined && host.length > 0) return endpointForHost(host, (https) => dockerTlsFrom(env, https), '');
  const choice = dockerContextFrom(env);
  if (choice.kind === 'none') return { options: { socketPath: DEFAULT_DOCKER_SOCKET }, label: DEFAULT_DOCKER_SOCKET };
  if (choice.kind === 'broken') {
    return { options: { socketPath: DEFAULT_DOCKER_SOCKET }, label: `docker context "${choice.name}"`, problem: choice.problem };
  }
  const { context } = choice;
  const tlsDir = context.tlsDir;
  const tls = (): DockerTls | undefined => (tlsDir === undefined ? undefined : tlsIn(tlsDir, !context.skipTlsVerify));
  return endpointForHost(context.host, tls, ` (docker context "${context.name}")`);
}

/** One daemon address; `tlsFor(https)` says whether and how a tcp:// daemon is reached over TLS. */
function endpointForHost(host: string, tlsFor: (https: boolean) => DockerTls | undefined, labelSuffix: string): DockerEndpoint {
  if (host.startsWith('unix://')) {
    const path = host.slice('unix://'.length) || DEFAULT_DOCKER_SOCKET;
    return { options: { socketPath: path }, label: `${path}${labelSuffix}` };
  }
  if (host.startsWith('/')) return { options: { socketPath: host }, label: `${host}${labelSuffix}` };
  const m = /^(?:tcp|http|https):\/\/\[?([^\]/]+?)\]?(?::(\d+))?\/?$/.exec(host);
  if (m?.[1] !== undefined) {
    const tls = tlsFor(host.startsWith('https://'));
    const port = m[2] ?? (tls !== undefined ? '2376' : '2375');
    const options: Docker.DockerOptions = { host: m[1], port, protocol: tls !== undefined ? 'https' : 'http' };
    return { options, label: `${m[1]}:${port}${labelSuffix}`, ...(tls === undefined ? {} : { tls }) };
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(host)?.[1];
  if (scheme !== undefined) {
    const why =
      scheme.toLowerCase() === 'ssh'
        ? 'an ssh:// daemon runs on another host, and croot answers only for containers whose processes are on this one'
        : `croot does not speak ${scheme}:// (it reaches docker over unix://, tcp://, http:// or https://)`;
    return { options: { socketPath: DEFAULT_DOCKER_SOCKET }, label: `${host}${labelSuffix}`, problem: `${host}: ${why}` };
  }
  return { options: { socketPath: host }, label: `${host}${labelSuffix}` };
}

/** The docker CLI's TLS settings; `https` (an https:// DOCKER_HOST) counts as DOCKER_TLS_VERIFY. */
function dockerTlsFrom(env: Readonly<Record<string, string | undefined>>, https: boolean): DockerTls | undefined {
  const verify = https || (env.DOCKER_TLS_VERIFY ?? '') !== '';
  if (!verify && (env.DOCKER_TLS ?? '') === '') return undefined;
  return tlsIn(env.DOCKER_CERT_PATH || dockerConfigDir(env), verify);
}

function tlsIn(certPath: string, verify: boolean): DockerTls {
  return {
    verify,
    certPath,
    caFile: join(certPath, 'ca.pem'),
    certFile: join(certPath, 'cert.pem'),
    keyFile: join(certPath, 'key.pem'),
  };
}

/** What `loadDockerTls` read: dockerode options, and which client files were absent. */
export interface DockerTlsMaterial {
  /** `ca`, and `cert` + `key` when both were there. */
  readonly options: Docker.DockerOptions;
  /** When not verifying: an agent that skips the check of the daemon's certificate. */
  readonly agent?: Agent;
  /** `cert.pem` and/or `key.pem` when they were absent, so no client certificate is sent. */
  readonly absent: readonly string[];
}

/**
 * Reads the TLS files as the docker CLI does: `ca.pem` is required (docker
 * 28 refuses to start without it, even when not verifying); `cert.pem` and
 * `key.pem` are sent as a pair, and when either is absent no client
 * certificate is sent. Rejects with a message naming the file that is
 * missing (ca.pem), unreadable or not valid PEM.
 */
export async function loadDockerTls(tls: DockerTls): Promise<DockerTlsMaterial> {
  const ca = await readTlsFile(tls.caFile, 'the CA certificate', true);
  const cert = await readTlsFile(tls.certFile, 'the client certificate', false);
  const key = await readTlsFile(tls.keyFile, 'the client key', false);
  // Node takes a CA file holding no certificate without a word; docker does not.
  checkPem(() => new X509Certificate(ca), tls.caFile);
  const pair = cert !== undefined && key !== undefined ? { cert, key } : undefined;
  if (pair !== undefined) checkPem(() => createSecureContext(pair), `${tls.certFile} with ${tls.keyFile}`);
  const absent = [...(cert === undefined ? [tls.certFile] : []), ...(key === undefined ? [tls.keyFile] : [])];
  // docker-modem passes no rejectUnauthorized; an agent's options win over the request's.
  const agent = tls.verify ? undefined : new Agent({ rejectUnauthorized: false });
  return { options: { ca, ...pair }, absent, ...(agent === undefined ? {} : { agent }) };
}

async function readTlsFile(path: string, what: string, required: true): Promise<Buffer>;
async function readTlsFile(path: string, what: string, required: boolean): Promise<Buffer | undefined>;
async function readTlsFile(path: string, what: string, required: boolean): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (!required && code === 'ENOENT') return undefined;
    throw new Error(`TLS: cannot read ${what} ${path} (${typeof code === 'string' ? code : String(err)})`, { cause: err });
  }
}

function checkPem(make: () => unknown, what: string): void {
  try {
    make();
  } catch (err) {
    throw new Error(`TLS: ${what} unusable (${(err as Error).message})`, { cause: err });
  }
}

/** Errors that say nothing about TLS: the daemon was not reached at all, or the request timed out. */
const NOT_TLS_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ABORT_ERR']);

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
  private docker: Docker;
  /** Only for TLS without verification; destroyed on close. */
  private agent: Agent | undefined;
  /** Client files that were absent (TLS only), for the failure reason. */
  private absentClientFiles: readonly string[] = [];
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
   * daemon cannot be reached, or its TLS files cannot be read (the message
   * names the file).
   */
  async connect(): Promise<void> {
    const { problem, tls } = this.options.endpoint;
    if (problem !== undefined) {
      this.close();
      throw new Error(problem);
    }
    if (tls !== undefined) {
      // Read at each try, so fixed files are picked up by the next retry.
      const material = await loadDockerTls(tls);
      if (this.closed) {
        material.agent?.destroy();
        throw new Error('closed');
      }
      this.agent = material.agent;
      this.absentClientFiles = material.absent;
      // dockerode's types lack `agent`; docker-modem hands it to https.request.
      const options: Docker.DockerOptions & { agent?: Agent } = { ...this.options.endpoint.options, ...material.options };
      if (material.agent !== undefined) options.agent = material.agent;
      this.docker = new Docker(options);
    }
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
      throw this.tlsFailure(err);
    }
  }

  /** A TLS failure as a message saying so (and what was offered); anything else unchanged. */
  private tlsFailure(err: unknown): unknown {
    const tls = this.options.endpoint.tls;
    const e = err as { code?: unknown; statusCode?: unknown } | undefined;
    const code = e?.code;
    // An HTTP status means the handshake went through.
    if (tls === undefined || typeof code !== 'string' || NOT_TLS_CODES.has(code) || e?.statusCode !== undefined) return err;
    const absent = this.absentClientFiles;
    const offered = absent.length === 0 ? `client certificate ${tls.certFile}` : `no client certificate (${absent.join(', ')} absent)`;
    return new Error(`TLS with ${this.options.endpoint.label} failed: ${code}; sent ${offered}`, { cause: err });
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
    this.agent?.destroy();
    this.agent = undefined;
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
