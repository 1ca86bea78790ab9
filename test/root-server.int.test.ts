/**
 * croot's server over a real unix socket, with the real native module and a
 * real namespace sandbox declared to the static engine: framing, answers,
 * and bad input of every kind.
 */
import { spawnSync } from 'node:child_process';
import { statSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Container } from 'inversify';
import { createCrootContainer } from '../core/create-container.js';
import { EngineRegistry } from '../core/registry/engine-registry.js';
import { PduType, decodeContainer, decodeStart, decodeStop, encodeContainer, encodeInfo, encodeStart, encodeStop } from '../core/protocol/root-pdus.js';
import { RootServer } from '../core/server/root-server.js';
import { staticEngineModule } from '../engines/static/index.js';
import { nativeModule } from '../native/index.js';
import { describeWith, probes } from './support/components.js';
import { cgroupTruth } from './support/truth.js';
import { fdsOpenedSince, openFds, startSandbox, type Sandbox } from './support/sandbox.js';

/** Reads replies off a raw connection, framed by their length field. */
class RawClient {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;
  constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }
  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
  static async open(path: string): Promise<RawClient> {
    const socket = createConnection(path);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }
  /** The next PDU, or undefined once the server closed. */
  async next(timeoutMs = 5000): Promise<Buffer | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.buf.length >= 8) {
        const len = this.buf.readInt32LE(4);
        if (this.buf.length >= len) {
          const pdu = this.buf.subarray(0, len);
          this.buf = this.buf.subarray(len);
          return Buffer.from(pdu);
        }
      }
      if (this.closed) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a reply');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
  write(b: Buffer): void {
    this.socket.write(b);
  }
  close(): void {
    this.socket.destroy();
  }
}

describeWith('root', probes.root, 'RootServer over a real socket', () => {
  let dir: string;
  let sock: string;
  let sandbox: Sandbox;
  let dead: { pid: number };
  let container: Container;
  let server: RootServer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'croot-srv-'));
    sock = join(dir, 'pmcd', 'root.socket');
    sandbox = await startSandbox();
    // A pid that surely is not running: a finished child's.
    dead = { pid: spawnSync('true').pid ?? 999999 };
    container = createCrootContainer({
      config: {
        allowUids: [0],
        staticContainers: [
          { name: 'sbx', id: 'ab12cd340000', pid: sandbox.pid },
          { name: 'twin', id: 'ab12ef560000', pid: sandbox.pid },
          { name: 'gone', id: '99aa', pid: dead.pid },
        ],
      },
      modules: [nativeModule, staticEngineModule],
    });
    container.bind(RootServer).toSelf().inSingletonScope();
    await container.get<EngineRegistry>(EngineRegistry).start();
    server = container.get(RootServer);
    await server.listen(sock);
  });

  afterAll(async () => {
    await server?.close();
    await sandbox?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates the socket directory 0700 and the socket 0755', () => {
    expect(statSync(join(dir, 'pmcd')).mode & 0o777).toBe(0o700);
    expect(statSync(sock).mode & 0o777).toBe(0o755);
  });

  it('sends INFO, exactly as PCP does, on accept', async () => {
    const c = await RawClient.open(sock);
    expect(await c.next()).toEqual(encodeInfo());
    c.close();
  });

  describe('answers', () => {
    let c: RawClient;
    beforeEach(async () => {
      c = await RawClient.open(sock);
      await c.next();
    });
    afterEach(() => c.close());

    it.each([true, false])('gives the sandbox hostname and init pid (trailing NUL: %s)', async (trailingNul) => {
      c.write(encodeContainer(PduType.HOSTNAME_REQ, 'sbx', { trailingNul }));
      const reply = decodeContainer((await c.next()) as Buffer);
      expect(reply).toMatchObject({ type: PduType.HOSTNAME, status: 0, pid: sandbox.pid, name: sandbox.hostname });
      expect(reply.namelen).toBe(Buffer.byteLength(sandbox.hostname));
    });

    it('gives the pid with namelen 0 and the cgroup without its leading slash', async () => {
      c.write(encodeContainer(PduType.PROCESSID_REQ, 'ab12cd340000', { trailingNul: true }));
      expect(decodeContainer((await c.next()) as Buffer)).toMatchObject({ status: 0, pid: sandbox.pid, namelen: 0, length: 24 });
      c.write(encodeContainer(PduType.CGROUPNAME_REQ, 'sbx', { trailingNul: true }));
      const cg = decodeContainer((await c.next()) as Buffer);
      expect(cg.name).toBe(cgroupTruth(sandbox.pid));
      expect(cg.name.startsWith('/')).toBe(false);
    });

    it('answers for a pid directly when namelen is 0', async () => {
      c.write(encodeContainer(PduType.HOSTNAME_REQ, '', { pid: sandbox.pid }));
      expect(decodeContainer((await c.next()) as Buffer)).toMatchObject({ status: 0, pid: sandbox.pid, name: sandbox.hostname });
    });

    it('answers -12399 in 24 bytes for a name that matches nothing, pid echoed', async () => {
      c.write(encodeContainer(PduType.HOSTNAME_REQ, 'abzzz', { pid: 7, trailingNul: true }));
      const raw = (await c.next()) as Buffer;
      expect(raw.length).toBe(24);
      expect(decodeContainer(raw)).toMatchObject({ type: PduType.HOSTNAME, status: -12399, pid: 7, namelen: 0 });
    });

    it('refuses an ambiguous prefix with -ENOTUNIQ', async () => {
      c.write(encodeContainer(PduType.PROCESSID_REQ, 'ab12', { trailingNul: true }));
      expect(decodeContainer((await c.next()) as Buffer).status).toBe(-76);
    });

    it('answers -ESRCH for a container that is not running, never a pid of 0 or -1', async () => {
      c.write(encodeContainer(PduType.PROCESSID_REQ, 'gone'));
      const reply = decodeContainer((await c.next()) as Buffer);
      expect(reply.status).toBe(-3);
      expect(reply.pid).toBe(0);
    });

    it('answers requests split byte by byte', async () => {
      const req = encodeContainer(PduType.HOSTNAME_REQ, 'sbx', { trailingNul: true });
      for (const byte of req) {
        c.write(Buffer.from([byte]));
        await new Promise((r) => setTimeout(r, 2));
      }
      expect(decodeContainer((await c.next()) as Buffer).name).toBe(sandbox.hostname);
    });

    it('answers pipelined requests in order, one reply each', async () => {
      c.write(
        Buffer.concat([
          encodeContainer(PduType.CGROUPNAME_REQ, 'sbx'),
          encodeContainer(PduType.HOSTNAME_REQ, 'nope'),
          encodeContainer(PduType.PROCESSID_REQ, 'twin'),
          encodeContainer(PduType.HOSTNAME_REQ, 'sbx'),
        ]),
      );
      const replies = [];
      for (let i = 0; i < 4; i++) replies.push(decodeContainer((await c.next()) as Buffer));
      expect(replies.map((r) => [r.type, r.status])).toEqual([
        [PduType.CGROUPNAME, 0],
        [PduType.HOSTNAME, -12399],
        [PduType.PROCESSID, 0],
        [PduType.HOSTNAME, 0],
      ]);
      expect(replies[3]?.name).toBe(sandbox.hostname);
    });

    it('answers STARTPMDA and STOPPMDA with -ENOTSUP while process services are off', async () => {
      c.write(encodeStart(PduType.STARTPMDA_REQ, { ipctype: 2, label: 'cat', args: '/bin/cat' }));
      const start = (await c.next()) as Buffer;
      expect(start.length).toBe(104);
      expect(decodeStart(start)).toMatchObject({ type: PduType.STARTPMDA, status: -95, pid: -1 });
      c.write(encodeStop(PduType.STOPPMDA_REQ, { pid: 1, force: 1 }));
      const stop = (await c.next()) as Buffer;
      expect(stop.length).toBe(32);
      expect(decodeStop(stop)).toMatchObject({ type: PduType.STOPPMDA, status: -95 });
    });
  });

  describe('bad input', () => {
    async function fresh(): Promise<RawClient> {
      const c = await RawClient.open(sock);
      await c.next();
      return c;
    }

    async function stillServes(): Promise<void> {
      const c = await fresh();
      c.write(encodeContainer(PduType.PROCESSID_REQ, 'sbx'));
      expect(decodeContainer((await c.next()) as Buffer)).toMatchObject({ status: 0, pid: sandbox.pid });
      c.close();
    }

    it('answers an unknown type with -ENOTSUP and keeps the connection', async () => {
      const c = await fresh();
      const bogus = encodeContainer(PduType.HOSTNAME_REQ, 'sbx');
      bogus.writeInt32LE(0x9999, 0);
      c.write(bogus);
      const reply = (await c.next()) as Buffer;
      expect(reply.readInt32LE(0)).toBe(0x9999);
      expect(reply.readInt32LE(8)).toBe(-95);
      c.write(encodeContainer(PduType.PROCESSID_REQ, 'sbx'));
      expect(decodeContainer((await c.next()) as Buffer).pid).toBe(sandbox.pid);
      c.close();
    });

    it('answers a negative or inconsistent name length with an error and keeps the connection', async () => {
      const c = await fresh();
      const neg = encodeContainer(PduType.HOSTNAME_REQ, 'sbx');
      neg.writeInt32LE(-4, 20);
      c.write(neg);
      expect(decodeContainer((await c.next()) as Buffer)).toMatchObject({ type: PduType.HOSTNAME, status: -22 });
      const off = encodeContainer(PduType.CGROUPNAME_REQ, 'sbx');
      off.writeInt32LE(1000, 20);
      c.write(off);
      expect(decodeContainer((await c.next()) as Buffer)).toMatchObject({ type: PduType.CGROUPNAME, status: -22 });
      c.write(encodeContainer(PduType.PROCESSID_REQ, 'sbx'));
      expect(decodeContainer((await c.next()) as Buffer).pid).toBe(sandbox.pid);
      c.close();
    });

    it('answers a truncated request (length shorter than the body needs) with an error', async () => {
      const c = await fresh();
      const short = encodeContainer(PduType.HOSTNAME_REQ, '').subarray(0, 20);
      short.writeInt32LE(20, 4);
      c.write(short);
      expect(decodeContainer(Buffer.concat([(await c.next()) as Buffer]))).toMatchObject({ type: PduType.HOSTNAME, status: -22 });
      c.close();
    });

    it.each([
      ['a negative length', -1],
      ['a length shorter than the header', 8],
      ['an oversized length', 1 << 24],
    ])('replies and closes on %s, since the stream cannot be re-synchronised', async (_what, length) => {
      const c = await fresh();
      const bad = encodeContainer(PduType.HOSTNAME_REQ, 'sbx');
      bad.writeInt32LE(length, 4);
      c.write(bad);
      const reply = await c.next();
      expect(reply?.readInt32LE(0)).toBe(PduType.HOSTNAME);
      expect(reply?.readInt32LE(8)).toBe(-constants.errno.EINVAL);
      expect(await c.next()).toBeUndefined();
      await stillServes();
    });

    it('answers a version it does not speak with -ENOTSUP', async () => {
      const c = await fresh();
      const v9 = encodeContainer(PduType.PROCESSID_REQ, 'sbx');
      v9.writeInt32LE(9, 12);
      c.write(v9);
      expect(decodeContainer((await c.next()) as Buffer)).toMatchObject({ status: -95 });
      c.close();
    });

    it('keeps serving others while a client stalls mid-request, and after clients vanish mid-request', async () => {
      const staller = await fresh();
      staller.write(encodeContainer(PduType.HOSTNAME_REQ, 'sbx').subarray(0, 10));
      for (let i = 0; i < 10; i++) {
        const v = await fresh();
        v.write(encodeContainer(PduType.HOSTNAME_REQ, 'sbx').subarray(0, 5 + i));
        v.close();
      }
      await stillServes();
      staller.close();
    });

    it('survives random requests and leaks no fd', async () => {
      await stillServes();
      await new Promise((r) => setTimeout(r, 100));
      const before = openFds();
      let seed = 12345;
      const rand = (n: number): number => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return seed % n;
      };
      for (let i = 0; i < 150; i++) {
        const c = await fresh();
        const len = 16 + rand(200);
        const junk = Buffer.alloc(len);
        for (let j = 0; j < len; j++) junk[j] = rand(256);
        if (i % 2 === 0) {
          junk.writeInt32LE(0x9001 + 2 * rand(5), 0);
          junk.writeInt32LE(len, 4);
          junk.writeInt32LE(2, 12);
        }
        c.write(junk);
        await Promise.race([c.next(300).catch(() => undefined), new Promise((r) => setTimeout(r, 300))]);
        c.close();
      }
      await stillServes();
      for (let i = 0; i < 50 && server.connectionCount > 0; i++) await new Promise((r) => setTimeout(r, 100));
      expect(server.connectionCount).toBe(0);
      expect(fdsOpenedSince(before)).toEqual([]);
    });
  });

  describe('peer credentials', () => {
    it('closes a client whose uid is not on the allow-list without a byte', async () => {
      const strict = createCrootContainer({ config: { allowUids: [4242] }, modules: [nativeModule] });
      strict.bind(RootServer).toSelf().inSingletonScope();
      const srv = strict.get(RootServer);
      const path = join(dir, 'strict.socket');
      await srv.listen(path);
      try {
        const c = await RawClient.open(path);
        expect(await c.next()).toBeUndefined();
      } finally {
        await srv.close();
      }
    });

    it('refuses to take over a socket another server listens on', async () => {
      const other = createCrootContainer({ modules: [nativeModule] });
      other.bind(RootServer).toSelf().inSingletonScope();
      await expect(other.get(RootServer).listen(sock)).rejects.toMatchObject({ code: 'ERR_CONFIG' });
    });
  });
});
