import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CrootError } from '../errors/croot-error.js';
import { NodeSocketTransport } from './node-socket-transport.js';
import { PduType, encodeContainer, encodeInfo } from '../protocol/root-pdus.js';

/** A unix server that runs `onConnect` for its first client. */
async function withServer(onConnect: (socket: Socket) => void, body: (path: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'croot-nst-'));
  const path = join(dir, 's');
  const sockets: Socket[] = [];
  const server: Server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
    onConnect(socket);
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  try {
    await body(path);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('NodeSocketTransport', () => {
  it('reassembles a PDU split over several writes', async () => {
    const info = encodeInfo();
    await withServer(
      (socket) => {
        socket.write(info.subarray(0, 5));
        setTimeout(() => socket.write(info.subarray(5, 17)), 20);
        setTimeout(() => socket.write(info.subarray(17)), 40);
      },
      async (path) => {
        const t = await NodeSocketTransport.connect(path, 1000);
        const pdu = await t.receive(1000);
        t.close();
        expect(pdu.data).toEqual(info);
        expect(pdu.fds).toEqual([]);
      },
    );
  });

  it('splits two PDUs that arrive in one write', async () => {
    const a = encodeInfo();
    const b = encodeContainer(PduType.HOSTNAME, 'web1-host', { pid: 7 });
    await withServer(
      (socket) => socket.write(Buffer.concat([a, b])),
      async (path) => {
        const t = await NodeSocketTransport.connect(path, 1000);
        expect((await t.receive(1000)).data).toEqual(a);
        expect((await t.receive(1000)).data).toEqual(b);
        t.close();
      },
    );
  });

  it('resolves empty data when the server closes, like recv() returning 0', async () => {
    await withServer(
      (socket) => socket.end(),
      async (path) => {
        const t = await NodeSocketTransport.connect(path, 1000);
        expect((await t.receive(1000)).data.length).toBe(0);
        t.close();
      },
    );
  });

  it('rejects a receive with ERR_TIMEOUT when nothing comes', async () => {
    await withServer(
      () => undefined,
      async (path) => {
        const t = await NodeSocketTransport.connect(path, 1000);
        await expect(t.receive(50)).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
        t.close();
      },
    );
  });

  it('times out a receive with no time left (0 ms) instead of waiting, and receives again after a timeout', async () => {
    const info = encodeInfo();
    await withServer(
      (socket) => socket.on('data', () => socket.write(info)),
      async (path) => {
        const t = await NodeSocketTransport.connect(path, 1000);
        await expect(t.receive(0)).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
        await expect(t.receive(20)).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
        // The timed-out receives are gone: the next one gets what the server writes.
        const next = t.receive(5000);
        await t.send(Buffer.from('x'));
        await expect(next).resolves.toMatchObject({ data: info });
        t.close();
      },
    );
  });

  it('rejects a pending receive when closed', async () => {
    await withServer(
      () => undefined,
      async (path) => {
        const t = await NodeSocketTransport.connect(path, 1000);
        const pending = t.receive(5000);
        t.close();
        await expect(pending).rejects.toMatchObject({ code: 'ERR_NOT_CONNECTED' });
        await expect(t.send(encodeInfo())).rejects.toBeInstanceOf(CrootError);
      },
    );
  });

  it('reports a header whose length cannot be framed as ERR_PROTOCOL', async () => {
    const bad = encodeInfo();
    bad.writeInt32LE(8, 4);
    await withServer(
      (socket) => socket.write(bad),
      async (path) => {
        const t = await NodeSocketTransport.connect(path, 1000);
        await expect(t.receive(1000)).rejects.toMatchObject({ code: 'ERR_PROTOCOL' });
        t.close();
      },
    );
  });

  it('fails to connect to a missing socket with ERR_NOT_CONNECTED and -ENOENT', async () => {
    await expect(NodeSocketTransport.connect('/nonexistent/croot.sock', 1000)).rejects.toMatchObject({
      code: 'ERR_NOT_CONNECTED',
      status: -2,
    });
  });

  it('allows one receive at a time, and none once closed', async () => {
    await withServer(
      () => undefined,
      async (path) => {
        const t = await NodeSocketTransport.connect(path, 1000);
        const first = t.receive(5000);
        await expect(t.receive(5000)).rejects.toMatchObject({ code: 'ERR_PROTOCOL' });
        t.close();
        await expect(first).rejects.toMatchObject({ code: 'ERR_NOT_CONNECTED' });
        await expect(t.receive(5000)).rejects.toMatchObject({ code: 'ERR_NOT_CONNECTED' });
        await expect(t.send(encodeInfo())).rejects.toMatchObject({ code: 'ERR_NOT_CONNECTED' });
      },
    );
  });

  it('waits without a bound for receive(Infinity), until the server writes', async () => {
    const info = encodeInfo();
    await withServer(
      // The server answers whatever the client writes: the client decides when.
      (socket) => socket.on('data', () => socket.write(info)),
      async (path) => {
        const t = await NodeSocketTransport.connect(path, 1000);
        const pending = t.receive(Infinity);
        // A timer set for Infinity becomes a 1 ms one in Node; 1 ms timers fire in the order they were set,
        // so a receive that armed one has given up before this one fires.
        await new Promise((r) => setTimeout(r, 1));
        await t.send(Buffer.from('x'));
        await expect(pending).resolves.toMatchObject({ data: info });
        t.close();
      },
    );
  });

  it('hands over frames that arrived before the receive, and then the end', async () => {
    const a = encodeInfo();
    await withServer(
      (socket) => socket.end(a),
      async (path) => {
        const t = await NodeSocketTransport.connect(path, 1000);
        // Give the bytes and the end time to arrive before asking.
        await new Promise((r) => setImmediate(r));
        expect((await t.receive(1000)).data).toEqual(a);
        expect((await t.receive(1000)).data).toEqual(Buffer.alloc(0));
        t.close();
      },
    );
  });
});
