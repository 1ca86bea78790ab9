/**
 * The extension client against a real unix socket whose server writes the
 * bytes docs/protocol.md ("croot's extension") documents, built here field
 * by field (not with croot's codec): INFO as PCP sends it, reply chunks with
 * MORE, error replies, and the two ways a server without the extension
 * answers (PCP's pmdaroot closes; an old crootd echoes the type with -95).
 */
import type { Socket } from 'node:net';
import { describeWith, probes } from '../../test/support/components.js';
import { FakeRootServer } from '../../test/support/fake-root-server.js';
import { fdTransport } from '../../test/support/fd-passing.js';
import { VanishingRootServer, afterEachSend } from '../../test/support/vanishing-root-server.js';
import { CrootError } from '../errors/croot-error.js';
import { askCrootd, subscribeCrootd } from './extension-client.js';
import { nodeSocketTransport } from './node-socket-transport.js';
import { crootRejectionOf } from '../../test/support/outcomes.js';

/** INFO as PCP 6.0.3 sends it, byte for byte (docs/pcp-root-protocol.md). */
const INFO = Buffer.from('009000001800000000000000020000000700000000000000', 'hex');

/** An extension PDU: type, length, status, version 2, flags, paylen, payload (host byte order). */
function extensionPdu(type: number, status: number, flags: number, payload: string | Buffer): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const head = Buffer.alloc(24);
  [type, 24 + body.length, status, 2, flags, body.length].forEach((v, i) => head.writeInt32LE(v, i * 4));
  return Buffer.concat([head, body]);
}

/** A document as reply chunks of at most `chunk` payload bytes, MORE (bit 0) on all but the last. */
function replyChunks(document: unknown, chunk = 4072): Buffer {
  const json = Buffer.from(JSON.stringify(document), 'utf8');
  const out: Buffer[] = [];
  for (let at = 0; at < json.length; at += chunk) {
    const end = Math.min(at + chunk, json.length);
    out.push(extensionPdu(0x9101, 0, end < json.length ? 1 : 0, json.subarray(at, end)));
  }
  return Buffer.concat(out);
}

async function withServer(reply: (request: Buffer, socket: Socket) => Buffer | undefined, body: (server: FakeRootServer) => Promise<void>): Promise<void> {
  const server = await FakeRootServer.start({ greeting: INFO, reply });
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

const LIST = { schemaVersion: 1, containers: [{ id: 'a'.repeat(64), names: ['web1'], engine: 'docker' }], note: 'é'.repeat(3000) };

describe('askCrootd', () => {
  it('sends one request PDU with the documented header and JSON, and puts a chunked reply back together, then hangs up', async () => {
    let closed: Promise<void> | undefined;
    await withServer(
      (_req, socket) => {
        closed = new Promise((r) => socket.once('close', () => r()));
        return replyChunks(LIST, 1000);
      },
      async (server) => {
        // Without options: the default bound (10 s) applies, connecting included.
        await expect(askCrootd({ op: 'show', name: 'web1' }, server.path)).resolves.toEqual(LIST);
        // The client closes its connection once it has the document.
        await closed;
        expect(server.requests).toHaveLength(1);
        const req = server.requests[0] as Buffer;
        const payload = req.subarray(24);
        expect([0, 4, 8, 12, 16, 20].map((at) => req.readInt32LE(at))).toEqual([0x9100, req.length, 0, 2, 0, payload.length]);
        expect(JSON.parse(payload.toString('utf8'))).toEqual({ v: 1, op: 'show', name: 'web1' });
      },
    );
  });

  it("turns an error reply into a CrootError with the server's code, status and message", async () => {
    const report = { code: 'ERR_AMBIGUOUS_NAME', status: -76, message: '"web" fits web1 and web2' };
    await withServer(
      () => extensionPdu(0x9101, -76, 0, JSON.stringify(report)),
      async (server) => {
        const err = await crootRejectionOf(askCrootd({ op: 'show', name: 'web' }, server.path, { timeoutMs: 2000 }));
        expect(err).toMatchObject({ code: 'ERR_AMBIGUOUS_NAME', status: -76 });
        expect(err.message).toContain('fits web1 and web2');
      },
    );
  });

  it("says ERR_NOT_SUPPORTED for PCP's pmdaroot, which closes the connection on the request", async () => {
    await withServer(
      (_req, socket) => {
        socket.end();
        return undefined;
      },
      async (server) => {
        const err = await crootRejectionOf(askCrootd({ op: 'list' }, server.path, { timeoutMs: 2000 }));
        expect(err.code).toBe('ERR_NOT_SUPPORTED');
        expect(err.message).toContain('closed the connection on the request');
      },
    );
  });

  it('says ERR_NOT_SUPPORTED for a crootd without the extension: a bare header of the request type with -95', async () => {
    const header = Buffer.alloc(16);
    [0x9100, 16, -95, 2].forEach((v, i) => header.writeInt32LE(v, i * 4));
    await withServer(
      () => header,
      async (server) => {
        const err = await crootRejectionOf(askCrootd({ op: 'engines' }, server.path, { timeoutMs: 2000 }));
        expect(err.code).toBe('ERR_NOT_SUPPORTED');
        expect(err.message).toContain('answered status -95');
      },
    );
  });

  it.each<[string, number, number]>([
    ['of the reply type with an error status', 0x9101, -12399],
    ['of the request type with status 0', 0x9100, 0],
  ])('takes a bare header %s as a reply too short (ERR_PROTOCOL, -EINVAL), not as a server without the extension', async (_what, type, status) => {
    const header = Buffer.alloc(16);
    [type, 16, status, 2].forEach((v, i) => header.writeInt32LE(v, i * 4));
    await withServer(
      () => header,
      async (server) => {
        await expect(crootRejectionOf(askCrootd({ op: 'list' }, server.path, { timeoutMs: 2000 }))).resolves.toMatchObject({ code: 'ERR_PROTOCOL', status: -22 });
      },
    );
  });

  it('waits for a server that answers late, within the bound', async () => {
    await withServer(
      (_req, socket) => {
        setTimeout(() => socket.write(replyChunks(LIST)), 50);
        return undefined;
      },
      async (server) => {
        await expect(askCrootd({ op: 'list' }, server.path, { timeoutMs: 5000 })).resolves.toEqual(LIST);
        const events = await subscribeCrootd(server.path, { timeoutMs: 5000 });
        expect(events.first).toEqual(LIST);
        events.close();
      },
    );
  });

  it('fails with ERR_TIMEOUT when the reply does not come within the bound, connecting included', async () => {
    await withServer(
      () => undefined,
      async (server) => {
        const err = await crootRejectionOf(askCrootd({ op: 'status' }, server.path, { timeoutMs: 100 }));
        expect(err.code).toBe('ERR_TIMEOUT');
      },
    );
  });

  it('fails with ERR_NOT_CONNECTED when nothing listens', async () => {
    const err = await crootRejectionOf(askCrootd({ op: 'list' }, '/nonexistent/croot/root.socket', { timeoutMs: 500 }));
    expect(err).toMatchObject({ code: 'ERR_NOT_CONNECTED', status: -2 });
  });
});

describe('subscribeCrootd', () => {
  it('gives the first document, then one per event as the server writes them; the end of the stream is ERR_NOT_CONNECTED', async () => {
    let stream: Socket | undefined;
    await withServer(
      (_req, socket) => {
        stream = socket;
        return replyChunks(LIST, 2000);
      },
      async (server) => {
        const events = await subscribeCrootd(server.path);
        expect(events.first).toEqual(LIST);
        expect(JSON.parse((server.requests[0] as Buffer).subarray(24).toString('utf8'))).toEqual({ v: 1, op: 'events' });
        const event = { schemaVersion: 1, event: { action: 'exited', id: 'a'.repeat(64) } };
        const next = events.next();
        stream?.write(replyChunks(event));
        await expect(next).resolves.toEqual(event);
        stream?.end();
        const err = await crootRejectionOf(events.next());
        expect(err.code).toBe('ERR_NOT_CONNECTED');
        expect(err.message).toContain('closed the event stream');
        events.close();
      },
    );
  });

  it('resolves a pending next() with undefined once closed, and every later one', async () => {
    await withServer(
      () => replyChunks(LIST),
      async (server) => {
        const events = await subscribeCrootd(server.path, { timeoutMs: 2000 });
        const pending = events.next();
        events.close();
        await expect(pending).resolves.toBeUndefined();
        await expect(events.next()).resolves.toBeUndefined();
      },
    );
  });

  it('closes the connection and rejects when the first document is an error', async () => {
    let closed: Promise<void> | undefined;
    await withServer(
      (_req, socket) => {
        closed = new Promise((r) => socket.once('close', () => r()));
        return extensionPdu(0x9101, -95, 0, JSON.stringify({ code: 'ERR_NOT_SUPPORTED', status: -95, message: 'unknown operation "events"' }));
      },
      async (server) => {
        const err = await crootRejectionOf(subscribeCrootd(server.path, { timeoutMs: 2000 }));
        expect(err).toMatchObject({ code: 'ERR_NOT_SUPPORTED', status: -95 });
        // The client hung up: the server sees the close without closing itself.
        await closed;
      },
    );
  });
});

describe('a server that goes away', () => {
  it('says ERR_NOT_SUPPORTED when the server resets the connection with the request unread (ECONNRESET), as pmdaroot does on a type it does not know', async () => {
    const server = await VanishingRootServer.start();
    try {
      const err = await crootRejectionOf(askCrootd({ op: 'list' }, server.path, { timeoutMs: 5000, transport: afterEachSend(nodeSocketTransport, () => server.vanish()) }));
      expect(err.code).toBe('ERR_NOT_SUPPORTED');
      expect(err.message).toContain('closed the connection on the request');
    } finally {
      await server.close();
    }
  });

  it('ends an event stream with ERR_NOT_CONNECTED when the server resets it after the first document', async () => {
    const server = await VanishingRootServer.start();
    try {
      const events = await subscribeCrootd(server.path, { timeoutMs: 5000, transport: afterEachSend(nodeSocketTransport, () => server.write(replyChunks(LIST))) });
      expect(events.first).toEqual(LIST);
      const next = events.next();
      server.vanish();
      const err = await crootRejectionOf(next);
      expect(err.code).toBe('ERR_NOT_CONNECTED');
      expect(err.message).toContain('closed the event stream');
      events.close();
    } finally {
      await server.close();
    }
  });
});

describeWith('croot native', probes.native, 'a server that closed before the request was written (EPIPE)', () => {
  it('says ERR_NOT_SUPPORTED: the server closed the connection on the request', async () => {
    const server = await VanishingRootServer.start({ closeAtOnce: true });
    try {
      const err = await crootRejectionOf(askCrootd({ op: 'status' }, server.path, { timeoutMs: 5000, transport: fdTransport }));
      expect(err.code).toBe('ERR_NOT_SUPPORTED');
      expect(err.message).toContain('closed the connection on the request');
    } finally {
      await server.close();
    }
  });
});
