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
});
