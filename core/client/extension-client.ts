/**
 * The client side of croot's protocol extension (protocol/croot-extension.ts): one
 * connection, INFO checked as PCP's client checks it, one request, the reply
 * chunks put back together — one document, or for `events` a stream of
 * them. A server that is not crootd (PCP's pmdaroot closes the connection on
 * a type it does not know; a crootd without the extension answers -ENOTSUP)
 * is reported as ERR_NOT_SUPPORTED.
 */
import { defaultSocketPath } from '../config/croot-config.js';
import {
  ExtensionPduType,
  ExtensionReplyAssembler,
  encodeExtensionRequest,
  type CrootDocument,
  type ExtensionRequest,
} from '../protocol/croot-extension.js';
import { CrootError } from '../errors/croot-error.js';
import { closeFds } from '../host/close-fds.js';
import { nodeSocketTransport } from './node-socket-transport.js';
import { PDU_HEADER_SIZE, decodeHeader } from '../protocol/root-pdus.js';
import { readInfo } from './root-channel.js';
import type { RootTransport, RootTransportFactory } from './root-transport.js';

export interface ExtensionCallOptions {
  /** Bound of the whole call, connecting included (default 10 s); for a stream, of its first document. */
  readonly timeoutMs?: number;
  readonly transport?: RootTransportFactory;
}

/** Sends one extension request to the server at `path` and returns its document. */
export async function askCrootd(request: ExtensionRequest, path: string = defaultSocketPath(), options: ExtensionCallOptions = {}): Promise<CrootDocument> {
  const timeoutMs = options.timeoutMs ?? 10000;
  const deadline = Date.now() + timeoutMs;
  const connection = await ExtensionConnection.open(request, path, options.transport ?? nodeSocketTransport, timeoutMs);
  try {
    return await connection.document(Math.max(0, deadline - Date.now()));
  } finally {
    connection.close();
  }
}

/** An `events` subscription to a running crootd (docs/protocol.md). */
export interface CrootdEventStream {
  /** The first document: anchor, engines and containers when the subscription began. */
  readonly first: CrootDocument;
  /**
   * The next document (`{ schemaVersion, event }`), as long as it takes;
   * undefined once `close()` was called. Throws ERR_NOT_CONNECTED when the
   * server ends the stream (it stopped, or dropped a subscriber that did not
   * keep up).
   */
  next(): Promise<CrootDocument | undefined>;
  /** Ends the subscription; a pending `next()` resolves undefined. */
  close(): void;
}

/** Subscribes to the changes crootd sees (`croot events --socket`). */
export async function subscribeCrootd(path: string = defaultSocketPath(), options: ExtensionCallOptions = {}): Promise<CrootdEventStream> {
  const timeoutMs = options.timeoutMs ?? 10000;
  const deadline = Date.now() + timeoutMs;
  const connection = await ExtensionConnection.open({ op: 'events' }, path, options.transport ?? nodeSocketTransport, timeoutMs);
  let first: CrootDocument;
  try {
    first = await connection.document(Math.max(0, deadline - Date.now()));
  } catch (err) {
    connection.close();
    throw err;
  }
  let closed = false;
  return {
    first,
    async next() {
      if (closed) return undefined;
      try {
        return await connection.document(Infinity, 'closed the event stream');
      } catch (err) {
        if (closed) return undefined;
        throw err;
      }
    },
    close() {
      closed = true;
      connection.close();
    },
  };
}

/** One connection that sent one extension request and reads documents back. */
class ExtensionConnection {
  private readonly assembler = new ExtensionReplyAssembler();
  /** A document has been read: the server speaks the extension. */
  private answered = false;

  private constructor(
    private readonly transport: RootTransport,
    private readonly path: string,
  ) {}

  static async open(request: ExtensionRequest, path: string, factory: RootTransportFactory, timeoutMs: number): Promise<ExtensionConnection> {
    const deadline = Date.now() + timeoutMs;
    const transport = await factory(path, timeoutMs);
    const connection = new ExtensionConnection(transport, path);
    await readInfo(transport, path, Math.max(0, deadline - Date.now()));
    try {
      await transport.send(encodeExtensionRequest(request));
    } catch (err) {
      transport.close();
      throw isReset(err) ? connection.notCrootd('closed the connection on the request') : err;
    }
    return connection;
  }

  /** Reads the next whole document; `ended` says what an end of the connection means once documents came. */
  async document(timeoutMs: number, ended = 'closed the connection'): Promise<CrootDocument> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let pdu;
      try {
        pdu = await this.transport.receive(Number.isFinite(timeoutMs) ? Math.max(0, deadline - Date.now()) : Infinity);
      } catch (err) {
        if (isReset(err)) throw this.gone(ended);
        throw err;
      }
      closeFds(pdu.fds);
      if (pdu.data.length === 0) throw this.gone(ended);
      if (!this.answered && pdu.data.length === PDU_HEADER_SIZE) {
        // A server without the extension echoes the request type with -ENOTSUP.
        const h = decodeHeader(pdu.data);
        if (h.type === ExtensionPduType.REQUEST && h.status < 0) throw this.notCrootd(`answered status ${h.status}`);
      }
      const document = this.assembler.push(pdu.data);
      if (document !== undefined) {
        this.answered = true;
        return document;
      }
    }
  }

  close(): void {
    this.transport.close();
  }

  private gone(ended: string): CrootError {
    if (!this.answered) return this.notCrootd('closed the connection on the request');
    return new CrootError('ERR_NOT_CONNECTED', `${this.path} ${ended}`);
  }

  notCrootd(why: string): CrootError {
    return new CrootError(
      'ERR_NOT_SUPPORTED',
      `${this.path} ${why}: it does not speak croot's extension, so it cannot list, show, stream events or describe itself ` +
        "(PCP's pmdaroot answers only hostname, pid and cgroup)",
    );
  }
}

function isReset(err: unknown): boolean {
  const cause = (err as { cause?: { code?: unknown } } | null)?.cause;
  return cause?.code === 'ECONNRESET' || cause?.code === 'EPIPE';
}
