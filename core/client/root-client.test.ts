import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeRootServer } from '../../test/support/fake-root-server.js';
import { CrootError, type ErrorCode } from '../errors/croot-error.js';
import {
  PduType,
  decodeContainer,
  decodeStart,
  decodeStop,
  encodeContainer,
  encodeInfo,
  encodeStart,
  encodeStop,
} from '../protocol/root-pdus.js';
import { RootClient } from './root-client.js';

function hostnameReply(request: Buffer): Buffer {
  const req = decodeContainer(request);
  return encodeContainer(req.type + 1, `${req.name}-host`, { pid: 4242 });
}

/** `pdu` padded with zeros to `size` bytes, its length field saying so. */
function lengthened(pdu: Buffer, size: number): Buffer {
  const out = Buffer.concat([pdu, Buffer.alloc(size - pdu.length)]);
  out.writeInt32LE(size, 4);
  return out;
}

async function withServer(
  options: Parameters<typeof FakeRootServer.start>[0],
  body: (server: FakeRootServer) => Promise<void>,
): Promise<void> {
  const server = await FakeRootServer.start(options);
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

async function expectCode(promise: Promise<unknown>, code: ErrorCode, status?: number): Promise<CrootError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CrootError);
  const e = err as CrootError;
  expect(e.code).toBe(code);
  if (status !== undefined) expect(e.status).toBe(status);
  return e;
}

describe('RootClient', () => {
  describe('.connect', () => {
    it('reads the server INFO and exposes its features and version', async () => {
      await withServer({ greeting: encodeInfo(5) }, async (server) => {
        const client = await RootClient.connect(server.path);
        expect(client.features).toBe(5);
        expect(client.version).toBe(2);
        client.close();
      });
    });

    it.each<[string, Buffer, ErrorCode, number]>([
      ['an INFO of the wrong size', lengthened(encodeInfo(), 28), 'ERR_PROTOCOL', -22],
      ['a PDU that is not INFO', encodeContainer(PduType.HOSTNAME, 'x'), 'ERR_PROTOCOL', -22],
      ['an INFO with a status', encodeInfo(7, -12345), 'ERR_REMOTE', -12345],
    ])('refuses %s', async (_what, greeting, code, status) => {
      await withServer({ greeting }, async (server) => {
        await expectCode(RootClient.connect(server.path, { timeoutMs: 500 }), code, status);
      });
    });

    it('refuses an INFO of a newer protocol version with -ENOTSUP', async () => {
      const info = encodeInfo();
      info.writeInt32LE(3, 12);
      await withServer({ greeting: info }, async (server) => {
        await expectCode(RootClient.connect(server.path), 'ERR_VERSION', -95);
      });
    });

    it('fails with ERR_NOT_CONNECTED when nothing listens', async () => {
      await expectCode(RootClient.connect('/nonexistent/croot/root.socket'), 'ERR_NOT_CONNECTED', -2);
    });

    it('fails with ERR_TIMEOUT when the server sends no INFO', async () => {
      await withServer({ greeting: null }, async (server) => {
        await expectCode(RootClient.connect(server.path, { timeoutMs: 100 }), 'ERR_TIMEOUT');
      });
    });
  });

  describe('container queries', () => {
    it('sends the name with a trailing NUL counted in namelen by default, as PCP clients do', async () => {
      await withServer({ reply: hostnameReply }, async (server) => {
        const client = await RootClient.connect(server.path);
        await expect(client.hostname('web1')).resolves.toBe('web1-host');
        client.close();
        const req = server.requests[0] as Buffer;
        expect(req.readInt32LE(0)).toBe(PduType.HOSTNAME_REQ);
        expect(req.readInt32LE(20)).toBe(5);
        expect(req.subarray(24)).toEqual(Buffer.from('web1\0'));
      });
    });

    it('sends the bare name when trailingNul is false', async () => {
      await withServer({ reply: hostnameReply }, async (server) => {
        const client = await RootClient.connect(server.path, { trailingNul: false });
        await client.cgroupName('web1');
        client.close();
        const req = server.requests[0] as Buffer;
        expect(req.readInt32LE(0)).toBe(PduType.CGROUPNAME_REQ);
        expect(req.length).toBe(28);
        expect(req.subarray(24).toString()).toBe('web1');
      });
    });

    it('answers the process id from the reply pid', async () => {
      await withServer({ reply: hostnameReply }, async (server) => {
        const client = await RootClient.connect(server.path);
        await expect(client.processId('web1')).resolves.toBe(4242);
        await expect(client.containerQuery(PduType.HOSTNAME_REQ, 'db')).resolves.toEqual({ value: 'db-host', pid: 4242 });
        client.close();
      });
    });

    it.each<[number, ErrorCode, string]>([
      [-12399, 'ERR_NO_CONTAINER', 'Container not found'],
      [-76, 'ERR_AMBIGUOUS_NAME', 'Name not unique on network'],
      [-3, 'ERR_NOT_RUNNING', 'No such process'],
      [-116, 'ERR_PID_REUSED', 'Stale file handle'],
      [-12345, 'ERR_REMOTE', 'Generic error, already reported above'],
      [-13, 'ERR_REMOTE', 'Permission denied'],
    ])('turns reply status %d into %s with its pmErrStr text', async (status, code, text) => {
      await withServer(
        { reply: (req) => encodeContainer(req.readInt32LE(0) + 1, '', { status, pid: 0 }) },
        async (server) => {
          const client = await RootClient.connect(server.path);
          const err = await expectCode(client.hostname('nosuch'), code, status);
          expect(err.message).toContain(text);
          // A status reply leaves the connection usable.
          expect(client.connected).toBe(true);
          client.close();
        },
      );
    });

    it('reports a reply of the wrong type as ERR_UNEXPECTED_PDU and drops the connection', async () => {
      await withServer({ reply: () => encodeContainer(PduType.CGROUPNAME, 'x') }, async (server) => {
        const client = await RootClient.connect(server.path);
        await expectCode(client.hostname('web1'), 'ERR_UNEXPECTED_PDU');
        expect(client.connected).toBe(false);
        await expectCode(client.hostname('web1'), 'ERR_NOT_CONNECTED');
      });
    });

    it('keeps one request in flight and answers concurrent calls in order', async () => {
      await withServer(
        {
          reply: async (req) => {
            await new Promise((resolve) => setTimeout(resolve, 20));
            return hostnameReply(req);
          },
        },
        async (server) => {
          const client = await RootClient.connect(server.path);
          const answers = await Promise.all(['a', 'b', 'c', 'd'].map((n) => client.hostname(n)));
          client.close();
          expect(answers).toEqual(['a-host', 'b-host', 'c-host', 'd-host']);
          expect(server.maxOutstanding).toBe(1);
          expect(server.requests).toHaveLength(4);
        },
      );
    });

    it('times out a call the server never answers and closes the connection', async () => {
      await withServer({ reply: () => undefined }, async (server) => {
        const client = await RootClient.connect(server.path, { timeoutMs: 2000 });
        const started = Date.now();
        await expectCode(client.hostname('web1', { timeoutMs: 100 }), 'ERR_TIMEOUT');
        expect(Date.now() - started).toBeLessThan(1500);
        expect(client.connected).toBe(false);
      });
    });

    it('rejects at once with ERR_ABORTED when the signal aborts', async () => {
      await withServer({ reply: () => undefined }, async (server) => {
        const client = await RootClient.connect(server.path);
        const controller = new AbortController();
        const call = client.hostname('web1', { signal: controller.signal });
        setTimeout(() => controller.abort(), 30);
        await expectCode(call, 'ERR_ABORTED');
        await expectCode(client.hostname('x', { signal: AbortSignal.abort() }), 'ERR_NOT_CONNECTED');
      });
    });

    it('reports a server that hangs up as ERR_NOT_CONNECTED', async () => {
      await withServer(
        {
          reply: (_req, socket) => {
            socket.end();
            return undefined;
          },
        },
        async (server) => {
          const client = await RootClient.connect(server.path);
          await expectCode(client.processId('web1'), 'ERR_NOT_CONNECTED');
        },
      );
    });
  });

  describe('process services', () => {
    it('refuses pipe IPC on a transport that cannot receive fds, without sending anything', async () => {
      await withServer({}, async (server) => {
        const client = await RootClient.connect(server.path);
        await expectCode(client.processStart(2, 'agent', '/bin/true'), 'ERR_NOT_SUPPORTED');
        client.close();
        expect(server.requests).toHaveLength(0);
      });
    });

    it('starts a socket-IPC process and returns its pid without streams', async () => {
      await withServer(
        { reply: (req) => encodeStart(PduType.STARTPMDA, { pid: 777, label: decodeStart(req).label }) },
        async (server) => {
          const client = await RootClient.connect(server.path);
          const started = await client.processStart(1, 'agent', '/usr/bin/agent -d 1');
          client.close();
          expect(started).toEqual({ pid: 777, stdin: undefined, stdout: undefined, fds: [] });
          const req = decodeStart(server.requests[0] as Buffer);
          expect(req).toMatchObject({ type: PduType.STARTPMDA_REQ, ipctype: 1, label: 'agent', args: '/usr/bin/agent -d 1' });
        },
      );
    });

    it('sends force 0 to wait and force 1 to terminate, and decodes pid and code', async () => {
      await withServer(
        {
          reply: (req) => {
            const stop = decodeStop(req);
            return encodeStop(PduType.STOPPMDA, { pid: stop.force ? stop.pid : 99, code: stop.force ? 0 : 9 });
          },
        },
        async (server) => {
          const client = await RootClient.connect(server.path);
          await expect(client.processWait(-1)).resolves.toEqual({ pid: 99, code: 9 });
          await expect(client.processTerminate(55)).resolves.toEqual({ pid: 55, code: 0 });
          client.close();
          expect(server.requests.map((r) => [r.readInt32LE(16), r.readInt32LE(24)])).toEqual([
            [-1, 0],
            [55, 1],
          ]);
        },
      );
    });

    it('reports a STOPPMDA error status with its code', async () => {
      await withServer({ reply: () => encodeStop(PduType.STOPPMDA, { pid: 5, status: -10 }) }, async (server) => {
        const client = await RootClient.connect(server.path);
        const err = await expectCode(client.processTerminate(5), 'ERR_REMOTE', -10);
        expect(err.message).toBe('terminate of pid 5: No child processes (-10)');
        await expect(expectCode(client.processWait(-1), 'ERR_REMOTE', -10)).resolves.toMatchObject({ message: 'wait of pid -1: No child processes (-10)' });
        client.close();
      });
    });
  });

  describe('against the documented bytes (docs/pcp-root-protocol.md)', () => {
    /** A root PDU built field by field: the 16-byte header (type, length, status, version 2) and 32-bit ints after it. */
    function rootPdu(type: number, status: number, ints: number[] = [], tail: Buffer = Buffer.alloc(0)): Buffer {
      const out = Buffer.alloc(16 + 4 * ints.length);
      [type, out.length + tail.length, status, 2, ...ints].forEach((v, i) => out.writeInt32LE(v, i * 4));
      return Buffer.concat([out, tail]);
    }

    it("reads the live HOSTNAME reply the protocol notes give for docker's web1", async () => {
      const live = Buffer.concat([Buffer.from('029000002100000000000000020000005819000009000000', 'hex'), Buffer.from('web1-host')]);
      await withServer({ reply: () => live }, async (server) => {
        const client = await RootClient.connect(server.path);
        await expect(client.containerQuery(PduType.HOSTNAME_REQ, 'web1')).resolves.toEqual({ value: 'web1-host', pid: 6488 });
        client.close();
      });
    });

    it('takes a bare 16-byte header of the right type with an error status as that error, keeping the connection', async () => {
      await withServer({ reply: () => rootPdu(0x9006, -12399) }, async (server) => {
        const client = await RootClient.connect(server.path);
        await expectCode(client.cgroupName('nosuch'), 'ERR_NO_CONTAINER', -12399);
        expect(client.connected).toBe(true);
        client.close();
      });
    });

    it.each<[string, Buffer]>([
      ['a bare header of the right type with status 0', rootPdu(0x9002, 0)],
      ['a bare header of another type with an error status', rootPdu(0x9004, -12399)],
    ])('refuses %s as a short reply (-EINVAL) and drops the connection', async (_what, reply) => {
      await withServer({ reply: () => reply }, async (server) => {
        const client = await RootClient.connect(server.path);
        await expectCode(client.hostname('web1'), 'ERR_PROTOCOL', -22);
        expect(client.connected).toBe(false);
      });
    });

    it('refuses a reply of a newer PDU version with -ENOTSUP, and one with a positive status as a protocol error carrying it', async () => {
      const newer = rootPdu(0x9004, 0, [77, 0]);
      newer.writeInt32LE(3, 12);
      await withServer({ reply: (req) => (req.readInt32LE(0) === 0x9003 ? newer : rootPdu(0x900a, 5, [1, 0, 0, 0])) }, async (server) => {
        const client = await RootClient.connect(server.path);
        await expectCode(client.processId('web1'), 'ERR_VERSION', -95);
        client.close();
        const again = await RootClient.connect(server.path);
        await expectCode(again.processWait(-1), 'ERR_PROTOCOL', 5);
        again.close();
      });
    });

    it('decodes a STARTPMDA reply of 104 bytes and a STOPPMDA reply of 32, sending the documented request layouts', async () => {
      const label = Buffer.alloc(64);
      label.write('agent');
      await withServer(
        { reply: (req) => (req.readInt32LE(0) === 0x9007 ? rootPdu(0x9008, 0, [4321, 0, 0, 1, 5, 0], label) : rootPdu(0x900a, 0, [4321, 9 << 8, 0, 0])) },
        async (server) => {
          const client = await RootClient.connect(server.path);
          await expect(client.processStart(1, 'agent', '/usr/bin/agent -d 1')).resolves.toMatchObject({ pid: 4321, fds: [] });
          await expect(client.processWait(4321)).resolves.toEqual({ pid: 4321, code: 9 << 8 });
          client.close();
          const [start, stop] = server.requests as [Buffer, Buffer];
          expect(start.length).toBe(104 + 19);
          expect([0, 4, 8, 12, 16, 20, 24, 28, 32, 36].map((at) => start.readInt32LE(at))).toEqual([0x9007, 123, 0, 2, 0, 0, 0, 1, 5, 19]);
          expect(start.subarray(40, 104)).toEqual(label);
          expect(start.subarray(104).toString()).toBe('/usr/bin/agent -d 1');
          expect([0, 4, 8, 12, 16, 20, 24, 28].map((at) => stop.readInt32LE(at))).toEqual([0x9009, 32, 0, 2, 4321, 0, 0, 0]);
        },
      );
    });

    it('reports a server that closes before INFO as ERR_NOT_CONNECTED', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'croot-t-hangup-'));
      const hangup = createServer((socket) => socket.end());
      await new Promise<void>((r) => hangup.listen(join(dir, 's'), r));
      try {
        const err = await expectCode(RootClient.connect(join(dir, 's'), { timeoutMs: 2000 }), 'ERR_NOT_CONNECTED');
        expect(err.message).toContain('before sending INFO');
      } finally {
        await new Promise<void>((r) => hangup.close(() => r()));
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('answers a call whose signal has already aborted with ERR_ABORTED, sending nothing and keeping the connection', async () => {
      await withServer({ reply: hostnameReply }, async (server) => {
        const client = await RootClient.connect(server.path);
        await expectCode(client.hostname('web1', { signal: AbortSignal.abort() }), 'ERR_ABORTED');
        expect(server.requests).toHaveLength(0);
        await expect(client.hostname('web1', { signal: new AbortController().signal })).resolves.toBe('web1-host');
        client.close();
      });
    });

    it('closes the connection when the server hangs up in the middle of a call', async () => {
      await withServer(
        {
          reply: (_req, socket) => {
            socket.end();
            return undefined;
          },
        },
        async (server) => {
          const client = await RootClient.connect(server.path);
          await expectCode(client.hostname('web1'), 'ERR_NOT_CONNECTED');
          expect(client.connected).toBe(false);
        },
      );
    });
  });
});
