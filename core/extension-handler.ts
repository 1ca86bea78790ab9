/**
 * crootd's side of croot's protocol extension (croot-extension.ts): answers
 * `list`, `show`, `engines` and `status` requests from the container view
 * and the server's own facts, and counts every request the server answers
 * for `status`. The server hands it each request whose type is
 * ExtensionPduType.REQUEST; who may ask was settled at accept (SO_PEERCRED).
 */
import { inject, injectable, optional } from 'inversify';
import { ContainerView, CONTAINER_FIELDS } from './container-view.js';
import {
  ExtensionPduType,
  SCHEMA_VERSION,
  decodeExtensionRequest,
  describeExtensionRequest,
  encodeExtensionError,
  encodeExtensionReply,
  type CrootDocument,
  type ExtensionRequest,
  type ServerReport,
} from './croot-extension.js';
import { CrootError, statusOf } from './errors.js';
import type { PeerCredentials } from './host-services.js';
import { Logger, SilentLogger } from './logger.js';
import { PduType } from './protocol.js';

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
}
export const ExtensionHandlerOptions = Symbol.for('croot/ExtensionHandlerOptions');

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

  constructor(
    @inject(ContainerView) private readonly view: ContainerView,
    @inject(ExtensionHandlerOptions) @optional() options: ExtensionHandlerOptions | undefined,
    @inject(Logger) @optional() logger: Logger | undefined,
  ) {
    this.startedAt = options?.startedAt ?? Date.now();
    this.version = options?.version ?? 'unknown';
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
   * The reply bytes (one or more PDUs) to one extension request. Never
   * throws: a request it cannot answer gets an error reply with its status.
   */
  async answer(request: Buffer, facts: ServerFacts, peer: PeerCredentials, signal?: AbortSignal): Promise<Buffer> {
    let parsed: ExtensionRequest | undefined;
    try {
      parsed = decodeExtensionRequest(request);
      this.logger.debug('extension request', { pid: peer.pid, uid: peer.uid, op: describeExtensionRequest(parsed) });
      return encodeExtensionReply(await this.document(parsed, facts, signal));
    } catch (err) {
      this.countFailure();
      const status = statusOf(err);
      this.logger[status === -12399 ? 'debug' : 'warn']('extension request failed', {
        pid: peer.pid,
        op: parsed === undefined ? '(undecodable)' : describeExtensionRequest(parsed),
        status,
        error: err instanceof Error ? err.message : String(err),
      });
      return encodeExtensionError(status, {
        code: err instanceof CrootError ? err.code : 'ERR_SYSTEM',
        message: err instanceof Error ? err.message : String(err),
      });
    }
  }

  private async document(request: ExtensionRequest, facts: ServerFacts, signal?: AbortSignal): Promise<CrootDocument> {
    switch (request.op) {
      case 'list':
        return { schemaVersion: SCHEMA_VERSION, engines: await this.view.engines(), containers: await this.view.containers(signal) };
      case 'engines':
        return { schemaVersion: SCHEMA_VERSION, engines: await this.view.engines() };
      case 'status':
        return { schemaVersion: SCHEMA_VERSION, server: this.server(facts), engines: await this.view.engines() };
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
      requests: { total: this.total, failed: this.failed, byKind: Object.fromEntries([...this.byKind].sort(([a], [b]) => (a < b ? -1 : 1))) },
    };
  }
}
