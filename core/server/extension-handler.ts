/**
 * crootd's side of croot's protocol extension (protocol/croot-extension.ts): answers
 * `list`, `show`, `engines` and `status` requests from the container view
 * and the server's own facts, streams `events` to a subscriber (with a
 * bounded backlog: a subscriber that does not read is dropped, never
 * buffered for), and counts every request the server answers for `status`.
 * The server hands it each request whose type is ExtensionPduType.REQUEST;
 * who may ask was settled at accept (SO_PEERCRED).
 */
import { inject, injectable, optional } from 'inversify';
import { ContainerView, CONTAINER_FIELDS } from '../registry/container-view.js';
import {
  EXTENSION_MAX_REPLY,
  ExtensionPduType,
  SCHEMA_VERSION,
  decodeExtensionRequest,
  describeExtensionRequest,
  encodeExtensionError,
  encodeExtensionReply,
  type CrootDocument,
  type EventReport,
  type ExtensionRequest,
  type ServerReport,
} from '../protocol/croot-extension.js';
import { CrootError, PM_ERR_NOCONTAINER, statusOf } from '../errors/croot-error.js';
import { ReplyCache, type PeerCredentials } from '../host/host-services.js';
import { Logger, SilentLogger } from '../logging/logger.js';
import { PduType } from '../protocol/root-pdus.js';

/** What the server knows of itself when a request comes in. */
export interface ServerFacts {
  readonly socket: string | undefined;
  readonly allowUids: readonly number[];
  /** Who is connected now. */
  readonly peers: readonly PeerCredentials[];
}

export interface ExtensionHandlerOptions {
  /** crootd's version, for `status`. */
  readonly version: string;
  /** When crootd started (ms since epoch; default: when the handler was made). */
  readonly startedAt?: number;
  /**
   * Bytes of events an `events` subscriber may leave unread in crootd (past
   * what the kernel's socket buffers hold, and past the first document)
   * before it is dropped (default EVENT_BACKLOG_BYTES).
   */
  readonly eventBacklogBytes?: number;
}
export const ExtensionHandlerOptions = Symbol.for('croot/ExtensionHandlerOptions');

/**
 * The default of `eventBacklogBytes`: as much as one reply may hold
 * (EXTENSION_MAX_REPLY), so a burst of changes (an engine's first load of
 * thousands of containers) does not drop a subscriber that reads.
 */
export const EVENT_BACKLOG_BYTES = EXTENSION_MAX_REPLY;

/** Where a stream's PDUs go: the connection that asked for it. */
export interface StreamOutlet {
  /** Queues bytes on the connection (never blocks). */
  write(bytes: Buffer): void;
  /** Bytes queued on the connection that the kernel has not taken yet. */
  readonly backlog: number;
  /** Closes the connection at once, discarding what is queued. */
  close(): void;
}

/**
 * A reply that goes on after its first bytes (`events`): the connection
 * calls it once, after writing the reply's bytes, and from then on answers
 * no other request; it returns what the connection calls when it closes.
 */
export type ReplyStream = (outlet: StreamOutlet) => () => void;

/** The bytes of an extension reply, and the stream that follows them (`events` only). */
export interface ExtensionReply {
  readonly bytes: Buffer;
  readonly stream?: ReplyStream;
}

const NOTHING = Buffer.alloc(0);

const KINDS: ReadonlyMap<number, string> = new Map([
  [PduType.HOSTNAME_REQ, 'hostname'],
  [PduType.PROCESSID_REQ, 'pid'],
  [PduType.CGROUPNAME_REQ, 'cgroup'],
  [PduType.STARTPMDA_REQ, 'start'],
  [PduType.STOPPMDA_REQ, 'stop'],
  [ExtensionPduType.REQUEST, 'extension'],
]);

@injectable()
export class ExtensionHandler {
  private readonly startedAt: number;
  private readonly version: string;
  private readonly logger: Logger;
  private total = 0;
  private failed = 0;
  private readonly byKind = new Map<string, number>();
  private readonly backlogLimit: number;
  /** Each event encoded once, whatever the number of subscribers. */
  private readonly encoded = new WeakMap<EventReport, Buffer>();

  constructor(
    @inject(ContainerView) private readonly view: ContainerView,
    @inject(ExtensionHandlerOptions) @optional() options: ExtensionHandlerOptions | undefined,
    @inject(Logger) @optional() logger: Logger | undefined,
    @inject(ReplyCache) @optional() private readonly replies?: ReplyCache,
  ) {
    this.startedAt = options?.startedAt ?? Date.now();
    this.version = options?.version ?? 'unknown';
    this.backlogLimit = options?.eventBacklogBytes ?? EVENT_BACKLOG_BYTES;
    this.logger = logger ?? new SilentLogger();
  }

  /** The server calls this for every framed request it answers (for `status`). */
  countRequest(type: number): void {
    const kind = KINDS.get(type) ?? 'other';
    this.total += 1;
    this.byKind.set(kind, (this.byKind.get(kind) ?? 0) + 1);
  }

  /** The server calls this for every request answered with an error status. */
  countFailure(): void {
    this.failed += 1;
  }

  /**
   * The reply (one or more PDUs) to one extension request, and for `events`
   * the stream that follows it. Never throws: a request it cannot answer
   * gets an error reply with its status.
   */
  async answer(request: Buffer, facts: ServerFacts, peer: PeerCredentials, signal?: AbortSignal): Promise<ExtensionReply> {
    let parsed: ExtensionRequest | undefined;
    try {
      parsed = decodeExtensionRequest(request);
      this.logger.debug('extension request', { pid: peer.pid, uid: peer.uid, op: describeExtensionRequest(parsed) });
      if (parsed.op === 'events') return { bytes: NOTHING, stream: (outlet) => this.stream(outlet, peer) };
      return { bytes: encodeExtensionReply(await this.document(parsed, facts, signal)) };
    } catch (err) {
      this.countFailure();
      const status = statusOf(err);
      this.logger[status === PM_ERR_NOCONTAINER ? 'debug' : 'warn']('extension request failed', {
        pid: peer.pid,
        op: parsed === undefined ? '(undecodable)' : describeExtensionRequest(parsed),
        status,
        error: err instanceof Error ? err.message : String(err),
      });
      return {
        bytes: encodeExtensionError(status, {
          code: CrootError.is(err) ? err.code : 'ERR_SYSTEM',
          message: err instanceof Error ? err.message : String(err),
        }),
      };
    }
  }

  /**
   * An `events` subscription on one connection: first what there is now
   * (anchor, engines, containers: the document `croot list --json` prints),
   * then one document per change, `{ schemaVersion, event }`. Taken and
   * subscribed in one step, so no change falls between them. A subscriber
   * whose unread events pass the backlog bound is closed, not buffered for.
   */
  private stream(outlet: StreamOutlet, peer: PeerCredentials): () => void {
    let open = true;
    let limit = this.backlogLimit;
    const watch = this.view.watch((event) => {
      if (!open) return;
      let bytes = this.encoded.get(event);
      if (bytes === undefined) {
        bytes = encodeExtensionReply({ schemaVersion: SCHEMA_VERSION, event });
        this.encoded.set(event, bytes);
      }
      if (outlet.backlog + bytes.length > limit) {
        open = false;
        watch.stop();
        this.logger.warn('events subscriber dropped: it does not read what it is sent', {
          pid: peer.pid,
          uid: peer.uid,
          unread: outlet.backlog,
          limit: this.backlogLimit,
        });
        outlet.close();
        return;
      }
      outlet.write(bytes);
    });
    const first = encodeExtensionReply({ schemaVersion: SCHEMA_VERSION, anchor: this.view.anchor(), engines: watch.engines, containers: watch.containers });
    // The first document may be large (every container); the bound is on the events after it.
    limit += first.length;
    outlet.write(first);
    return () => {
      open = false;
      watch.stop();
    };
  }

  /** The one document of a request that is not a stream (`answer` turns `events` into one). */
  private async document(request: Exclude<ExtensionRequest, { op: 'events' }>, facts: ServerFacts, signal?: AbortSignal): Promise<CrootDocument> {
    switch (request.op) {
      case 'list':
        return { schemaVersion: SCHEMA_VERSION, engines: await this.view.engines(), containers: await this.view.containers(signal) };
      case 'engines':
        return { schemaVersion: SCHEMA_VERSION, anchor: this.view.anchor(), engines: await this.view.engines() };
      case 'status':
        return { schemaVersion: SCHEMA_VERSION, server: this.server(facts), anchor: this.view.anchor(), engines: await this.view.engines() };
      case 'show':
        return { schemaVersion: SCHEMA_VERSION, containers: [await this.view.inspect(request.name, CONTAINER_FIELDS, signal)] };
    }
  }

  private server(facts: ServerFacts): ServerReport {
    const now = Date.now();
    return {
      version: this.version,
      pid: process.pid,
      socket: facts.socket ?? null,
      startedAt: new Date(this.startedAt).toISOString(),
      uptimeSeconds: Math.floor((now - this.startedAt) / 1000),
      allowUids: [...facts.allowUids].sort((a, b) => a - b),
      connections: {
        open: facts.peers.length,
        peers: facts.peers.map((p) => ({ pid: p.pid, uid: p.uid })).sort((a, b) => a.pid - b.pid),
      },
      requests: this.requests(),
    };
  }

  /** The requests counted here and those the connections answered again by themselves (ReplyCache). */
  private requests(): ServerReport['requests'] {
    const byKind = new Map(this.byKind);
    let total = this.total;
    let answeredAgain = 0;
    if (this.replies !== undefined) {
      for (const [kind, n] of Object.entries(this.replies.answered())) {
        if (n === 0) continue;
        byKind.set(kind, (byKind.get(kind) ?? 0) + n);
        total += n;
        answeredAgain += n;
      }
    }
    return { total, failed: this.failed, answeredAgain, byKind: Object.fromEntries([...byKind].sort(([a], [b]) => (a < b ? -1 : 1))) };
  }
}
