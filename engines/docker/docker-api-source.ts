/**
 * Docker's containers from the daemon's Engine API. A connection starts
 * with `GET /_ping` made with node:http (cheap, bounded by its own timeout);
 * only when the daemon answers is dockerode loaded, the event stream
 * opened, and every container listed and inspected (a bounded number at a
 * time, each failed inspect retried with backoff). From then on each
 * container event re-inspects or drops that one container, and the change is
 * handed to the engine.
 */
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import type Docker from 'dockerode';
import { sleep, systemClock, type Clock } from '../../core/host/clock.js';
import type { ContainerRecord } from '../../core/registry/engine-contribution.js';
import { ContainerWorkQueue, type ContainerWork } from './container-work-queue.js';
import type { DockerEndpoint } from './docker-endpoint.js';
import type { DockerTlsAgent } from './docker-tls.js';
import { followDockerEvents } from './docker-event-stream.js';
import { dockerPidOf, dockerPidStartTime, dockerRecordFrom, type DockerContainerJson } from './docker-record.js';
import { Limiter } from './limiter.js';
import { makeDockerode } from './make-dockerode.js';

/** Errors that say nothing about TLS: the daemon was not reached at all, or the request timed out. */
const NOT_TLS_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ABORT_ERR']);

export interface DockerApiSourceOptions {
  readonly endpoint: DockerEndpoint;
  /** The host's boot time (seconds since the epoch), to turn `StartedAt` into clock ticks. */
  readonly bootTime: number | undefined;
  /** Limit for the ping (default 3000 ms). */
  readonly probeTimeoutMs?: number;
  /** Limit for each other request but the event stream (default 10000 ms). */
  readonly requestTimeoutMs?: number;
  /** Inspects in flight at once (default 8). */
  readonly inspectConcurrency?: number;
  /** Tries of one inspect before the source gives up on the daemon (default 6). */
  readonly inspectAttempts?: number;
  /** Wait before the first retry of an inspect (default 200 ms); doubles, up to 5 s. */
  readonly inspectRetryMs?: number;
  /** Where the waits between an inspect's tries are timed (default: Node's timers). */
  readonly clock?: Clock;
  /** A container added or changed, after the first load. */
  readonly onUpsert: (record: ContainerRecord) => void;
  /** A container gone, after the first load. */
  readonly onRemove: (id: string) => void;
  /** Called once when the event stream ends or an inspect keeps failing after the first load. */
  readonly onLost: (reason: string) => void;
  /** The first load moved on: listed, a tenth more inspected, an inspect to retry (for the engine's health). */
  readonly onProgress?: () => void;
}

/** How far the first load has come. */
export interface DockerApiProgress {
  /** The daemon answered the ping. */
  readonly answered: boolean;
  /** Containers the list gave; undefined before it came. */
  readonly listed: number | undefined;
  readonly inspected: number;
  /** Inspects waiting to be tried again, and why the last one failed. */
  readonly retrying: number;
  readonly lastError: string | undefined;
}

export class DockerApiSource {
  private docker: Docker | undefined;
  /** The TLS agent, for tcp:// daemons over TLS; destroyed on close. */
  private agent: DockerTlsAgent | undefined;
  /** Client files that were absent (TLS only), for the failure reason. */
  private absentClientFiles: readonly string[] = [];
  private readonly records = new Map<string, ContainerRecord>();
  /** Aborted when the source closes or is lost: ends the event stream, every request and every retry wait. */
  private readonly abort = new AbortController();
  /** The controllers of the bounded requests in flight (see `request`), aborted with `abort`. */
  private readonly requests = new Set<AbortController>();
  private stream: NodeJS.ReadableStream | undefined;
  private readonly limiter: Limiter;
  /** Events that came during the first load, applied once it is done. */
  private backlog: [string, ContainerWork][] | undefined = [];
  private readonly queue = new ContainerWorkQueue((id, work) => this.perform(id, work));
  private cgroupDriver: string | undefined;
  private answered = false;
  private listed: number | undefined;
  private inspected = 0;
  private retrying = 0;
  private lastError: string | undefined;
  /** Why the source is lost, once it is. */
  private lostReason: string | undefined;
  private closed = false;

  constructor(private readonly options: DockerApiSourceOptions) {
    this.limiter = new Limiter(Math.max(1, options.inspectConcurrency ?? 8));
  }

  /**
   * Pings the daemon, then loads dockerode, subscribes to events, and lists
   * and inspects every container. Resolves with every container once each
   * listed one has been inspected (or found gone); rejects (and releases
   * everything) when the daemon cannot be reached, does not answer in time,
   * its TLS files cannot be read (the message names the file), or an
   * inspect keeps failing.
   */
  async connect(): Promise<readonly ContainerRecord[]> {
    const { problem, tls, label } = this.options.endpoint;
    try {
      if (problem !== undefined) throw new Error(problem);
      if (tls !== undefined) {
        // Read at each try, so fixed files are picked up by the next retry. TLS (node:https, node:tls) is loaded only for a TLS endpoint.
        const { loadDockerTls } = require('./docker-tls.js') as typeof import('./docker-tls.js');
        const material = await loadDockerTls(tls, label);
        this.agent = material.agent;
        this.absentClientFiles = material.absent;
        if (this.closed) throw new Error('closed');
      }
      await this.ping();
      this.answered = true;
      this.progressed();
      const docker = makeDockerode(this.options.endpoint.options, this.agent);
      this.docker = docker;
      // dockerode's info() takes options at run time; its types do not say so.
      const info = (await this.request((abortSignal) => (docker.info as (opts: object) => Promise<unknown>).call(docker, { abortSignal }))) as {
        CgroupDriver?: unknown;
      };
      if (typeof info.CgroupDriver === 'string') this.cgroupDriver = info.CgroupDriver;
      // Events first, so nothing that happens during the listing is missed. The
      // stream lives on, so only the wait for its headers is bounded (by closing all).
      const stream = await this.bounded(
        docker.getEvents({ filters: { type: ['container'] }, abortSignal: this.abort.signal } as Docker.GetEventsOptions),
      );
      this.follow(stream);
      const list = await this.request((abortSignal) => docker.listContainers({ all: true, abortSignal } as Docker.ContainerListOptions));
      this.listed = list.length;
      this.progressed();
      await Promise.all(
        list.map((c) =>
          this.limiter.run(async () => {
            const record = await this.inspect(c.Id);
            if (record !== undefined) this.records.set(record.id, record);
            this.inspected++;
            // Health moves in tenths of the list, not per container.
            if (this.inspected % Math.max(1, Math.ceil(list.length / 10)) === 0 || this.inspected === list.length) this.progressed();
          }),
        ),
      );
      if (this.lostReason !== undefined) throw new Error(this.lostReason);
      return [...this.records.values()];
    } catch (err) {
      const reason = this.lostReason;
      this.close();
      throw reason !== undefined ? new Error(reason) : this.tlsFailure(err);
    }
  }

  /** Applies the events that came during the first load, then each one as it comes. */
  startFollowing(): void {
    const backlog = this.backlog ?? [];
    this.backlog = undefined;
    for (const [id, work] of backlog) void this.queue.enqueue(id, work);
  }

  /** Every container now, as the source knows it. */
  containers(): readonly ContainerRecord[] {
    return [...this.records.values()];
  }

  /** Number of containers known. */
  get size(): number {
    return this.records.size;
  }

  progress(): DockerApiProgress {
    return { answered: this.answered, listed: this.listed, inspected: this.inspected, retrying: this.retrying, lastError: this.lastError };
  }

  /**
   * The safety net: lists every container and re-inspects those whose state
   * or name differs from what is known, and those no longer listed (an
   * inspect that finds nothing drops them); resolves once those are done.
   */
  async recheck(): Promise<void> {
    const docker = this.docker;
    if (docker === undefined || this.closed) return;
    const list = await this.request((abortSignal) => docker.listContainers({ all: true, abortSignal } as Docker.ContainerListOptions));
    const listed = new Set<string>();
    const work: Promise<void>[] = [];
    for (const c of list) {
      listed.add(c.Id);
      const known = this.records.get(c.Id);
      const names = (c.Names ?? []).map((n) => n.replace(/^\/+/, ''));
      if (known === undefined || known.state !== c.State || !names.includes(known.names[0] ?? '')) work.push(this.queue.enqueue(c.Id, 'inspect'));
    }
    for (const id of this.records.keys()) if (!listed.has(id)) work.push(this.queue.enqueue(id, 'inspect'));
    await Promise.all(work);
  }

  /** Ends the event stream and every request; no callback fires after this. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.abortAll();
    const s = this.stream as (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
    s?.destroy?.();
    this.stream = undefined;
    this.agent?.destroy();
    this.agent = undefined;
  }

  /** GET /_ping with node:http, bounded by the probe timeout. */
  private ping(): Promise<void> {
    return this.request((signal) => this.pingWith(signal), this.options.probeTimeoutMs ?? 3000);
  }

  private pingWith(signal: AbortSignal): Promise<void> {
    const { options } = this.options.endpoint;
    return new Promise<void>((resolve, reject) => {
      // Aborted while the source is not: the probe's bound ran out.
      const fail = (err: unknown): void => reject(signal.aborted && !this.abort.signal.aborted ? new Error('timed out') : err);
      let req: ClientRequest;
      const onResponse = (res: IncomingMessage): void => {
        res.on('error', fail);
        res.on('close', () => {
          if (!res.complete) fail(new Error('the answer to /_ping was cut short'));
        });
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(Object.assign(new Error(`HTTP ${res.statusCode ?? '?'} to /_ping`), { statusCode: res.statusCode }))));
      };
      if (options.socketPath !== undefined) {
        req = httpRequest({ socketPath: options.socketPath, path: '/_ping', method: 'GET', agent: false, signal }, onResponse);
      } else if (options.protocol === 'https') {
        const { request: httpsRequest } = require('node:https') as typeof import('node:https');
        req = httpsRequest({ host: options.host, port: options.port, path: '/_ping', method: 'GET', agent: this.agent, signal }, onResponse);
      } else {
        req = httpRequest({ host: options.host, port: options.port, path: '/_ping', method: 'GET', agent: false, signal }, onResponse);
      }
      req.on('error', fail);
      req.end();
    });
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

  /** `promise`, or a rejection (`timed out`) and everything aborted when it takes longer than a request may. */
  private bounded<T>(promise: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.abortAll();
        reject(new Error('timed out'));
      }, this.options.requestTimeoutMs ?? 10000);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  /**
   * Runs one request with a signal that aborts when the source closes or is
   * lost, or after `timeoutMs`; the timer is cleared once the request settles.
   * Not `AbortSignal.any([..., AbortSignal.timeout()])`: Node 20 holds a
   * timeout signal inside such a composite only weakly, so a garbage
   * collection while the request waits takes its bound away
   * (nodejs/node#57736) and a daemon that stops answering holds the request,
   * and the engine's load, for ever. Here the timer holds the controller.
   */
  private async request<T>(run: (signal: AbortSignal) => Promise<T>, timeoutMs = this.options.requestTimeoutMs ?? 10000): Promise<T> {
    const controller = new AbortController();
    if (this.abort.signal.aborted) controller.abort(this.abort.signal.reason);
    this.requests.add(controller);
    const timer = setTimeout(() => controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), timeoutMs);
    try {
      return await run(controller.signal);
    } finally {
      clearTimeout(timer);
      this.requests.delete(controller);
    }
  }

  /** Aborts the source's signal and every request in flight. */
  private abortAll(): void {
    this.abort.abort();
    for (const controller of this.requests) controller.abort(this.abort.signal.reason);
  }

  private progressed(): void {
    if (!this.closed && this.backlog !== undefined) this.options.onProgress?.();
  }

  private follow(stream: NodeJS.ReadableStream): void {
    this.stream = stream;
    followDockerEvents(
      stream,
      (id, work) => {
        if (this.backlog !== undefined) this.backlog.push([id, work]);
        else void this.queue.enqueue(id, work);
      },
      (reason) => this.lose(reason),
    );
  }

  /** The daemon can no longer be followed: during the first load, that load fails; after it, the engine is told. */
  private lose(reason: string): void {
    if (this.closed || this.lostReason !== undefined) return;
    this.lostReason = reason;
    if (this.backlog !== undefined) this.abortAll();
    else this.options.onLost(reason);
  }

  /** One piece of a container's work (see ContainerWorkQueue); false when no more should follow: closed, or lost. */
  private async perform(id: string, work: ContainerWork): Promise<boolean> {
    if (this.closed) return false;
    if (work === 'destroy') {
      this.drop(id);
      return true;
    }
    let record: ContainerRecord | undefined;
    try {
      record = await this.limiter.run(() => this.inspect(id));
    } catch (err) {
      // Kept trying and failed: the index can no longer be trusted to follow the daemon.
      this.lose((err as Error).message);
      return false;
    }
    if (this.closed) return false;
    if (record === undefined) this.drop(id);
    else {
      this.records.set(record.id, record);
      this.options.onUpsert(record);
    }
    return true;
  }

  private drop(id: string): void {
    if (this.records.delete(id)) this.options.onRemove(id);
  }

  /**
   * Inspects one container; undefined when the daemon no longer knows it
   * (404). Any other failure is tried again after a growing wait, up to
   * `inspectAttempts` tries; then it rejects naming the container.
   */
  private async inspect(id: string): Promise<ContainerRecord | undefined> {
    const docker = this.docker as Docker;
    const attempts = Math.max(1, this.options.inspectAttempts ?? 6);
    let wait = this.options.inspectRetryMs ?? 200;
    for (let attempt = 1; ; attempt++) {
      let json: DockerContainerJson;
      try {
        json = (await this.request((abortSignal) => docker.getContainer(id).inspect({ abortSignal } as object))) as DockerContainerJson;
      } catch (err) {
        if ((err as { statusCode?: unknown }).statusCode === 404) return undefined;
        if (this.closed) throw err;
        const why = describeDockerError(err, this.abort.signal);
        if (attempt >= attempts) throw new Error(`inspect of container ${id.slice(0, 12)} failed ${attempts} times (${why})`, { cause: err });
        this.lastError = why;
        this.retrying++;
        this.progressed();
        try {
          await sleep(this.options.clock ?? systemClock, wait, this.abort.signal);
        } catch {
          throw new Error('closed');
        } finally {
          this.retrying--;
          this.progressed();
        }
        wait = Math.min(wait * 2, 5000);
        continue;
      }
      return this.recordFrom(json, id);
    }
  }

  private recordFrom(json: DockerContainerJson, id: string): ContainerRecord | undefined {
    const pid = dockerPidOf(json);
    // Read once per inspect: the registry matches it against the kernel when it holds the process.
    const pidStartTime = pid === undefined ? undefined : dockerPidStartTime(json.State?.StartedAt, this.options.bootTime);
    return dockerRecordFrom(json, 'api', {
      fallbackId: id,
      ...(this.cgroupDriver === undefined ? {} : { cgroupDriver: this.cgroupDriver }),
      ...(pidStartTime === undefined ? {} : { pidStartTime }),
    });
  }
}

/** A short reason: the errno code (ECONNREFUSED, ENOENT), `timed out`, or the HTTP status and message. */
export function describeDockerError(err: unknown, closing?: AbortSignal): string {
  const e = err as { code?: unknown; statusCode?: unknown; message?: unknown; name?: unknown };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError' || e?.code === 'ABORT_ERR') return closing?.aborted ? 'closed' : 'timed out';
  if (typeof e?.code === 'string') return e.code;
  if (typeof e?.statusCode === 'number') return `HTTP ${e.statusCode}: ${String(e.message ?? '')}`.trim();
  return String(e?.message ?? err);
}
