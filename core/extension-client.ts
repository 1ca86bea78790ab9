/**
 * The client side of croot's protocol extension (croot-extension.ts): one
 * connection, INFO checked as PCP's client checks it, one request, the reply
 * chunks put back together. A server that is not crootd (PCP's pmdaroot
 * closes the connection on a type it does not know; a crootd without the
 * extension answers -ENOTSUP) is reported as ERR_NOT_SUPPORTED.
 */
import { defaultSocketPath } from './config.js';
import {
  ExtensionPduType,
  ExtensionReplyAssembler,
  encodeExtensionRequest,
  type CrootDocument,
  type ExtensionRequest,
} from './croot-extension.js';
import { CrootError } from './errors.js';
import { closeFds } from './fds.js';
import { nodeSocketTransport } from './node-socket-transport.js';
import { PDU_HEADER_SIZE, decodeHeader, decodeInfo } from './protocol.js';
import type { RootTransportFactory } from './root-client.js';

export interface ExtensionCallOptions {
  /** Bound of the whole call, connecting included (default 10 s). */
  readonly timeoutMs?: number;
  readonly transport?: RootTransportFactory;
}

/** Sends one extension request to the server at `path` and returns its document. */
export async function askCrootd(request: ExtensionRequest, path: string = defaultSocketPath(), options: ExtensionCallOptions = {}): Promise<CrootDocument> {
  const timeoutMs = options.timeoutMs ?? 10000;
  const deadline = Date.now() + timeoutMs;
  const left = (): number => Math.max(0, deadline - Date.now());
  const transport = await (options.transport ?? nodeSocketTransport)(path, timeoutMs);
  try {
    const info = await transport.receive(left());
    closeFds(info.fds);
    if (info.data.length === 0) throw new CrootError('ERR_NOT_CONNECTED', `${path} closed the connection before sending INFO`);
    decodeInfo(info.data);
    const notCrootd = (why: string): CrootError =>
      new CrootError(
        'ERR_NOT_SUPPORTED',
        `${path} ${why}: it does not speak croot's extension, so it cannot list, show or describe itself ` +
          '(PCP\'s pmdaroot answers only hostname, pid and cgroup)',
      );
    try {
      await transport.send(encodeExtensionRequest(request));
    } catch (err) {
      if (isReset(err)) throw notCrootd('closed the connection on the request');
      throw err;
    }
    const assembler = new ExtensionReplyAssembler();
    for (;;) {
      let pdu;
      try {
        pdu = await transport.receive(left());
      } catch (err) {
        if (isReset(err)) throw notCrootd('closed the connection on the request');
        throw err;
      }
      closeFds(pdu.fds);
      if (pdu.data.length === 0) throw notCrootd('closed the connection on the request');
      if (pdu.data.length === PDU_HEADER_SIZE) {
        // A server without the extension echoes the request type with -ENOTSUP.
        const h = decodeHeader(pdu.data);
        if (h.type === ExtensionPduType.REQUEST && h.status < 0) throw notCrootd(`answered status ${h.status}`);
      }
      const document = assembler.push(pdu.data);
      if (document !== undefined) return document;
    }
  } finally {
    transport.close();
  }
}

function isReset(err: unknown): boolean {
  const cause = (err as { cause?: { code?: unknown } } | null)?.cause;
  return cause?.code === 'ECONNRESET' || cause?.code === 'EPIPE';
}
