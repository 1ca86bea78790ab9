/**
 * The addon's ReplyCache, answered from by StreamSockets on real unix
 * sockets. The truths: what the client end reads off the wire, whether
 * JavaScript was called at all, the kernel's processes (a real child that
 * lives, then is killed and reaped), the kernel's UTS namespaces (a hostname
 * set with `unshare --uts hostname`), and /proc/self/fd for the pidfds a
 * NativeReplyCache borrows.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PduType, encodeContainer, putInt } from '../core/protocol/root-pdus.js';
import { describeWith, probes } from '../test/support/components.js';
import { fdTarget } from '../test/support/sandbox.js';
import { until } from '../test/support/uts-sleeper.js';
import { StreamSocketEvent, type CrootNative, type ReplyCache, type StreamSocket } from './croot-native.js';
import { loadNative } from './load-native.js';
import { NativeProcessAnchor, type PidfdProcessHandle } from './native-process-anchor.js';
import { NativeReplyCache } from './native-reply-cache.js';

const native: CrootNative = loadNative();

interface Pair {
  readonly socket: StreamSocket;
  readonly client: Socket;
  /** What the client has read so far. */
  readonly received: () => Buffer;
  readonly clientHas: (n: number) => Promise<void>;
  /** The chunks JavaScript was handed (each call of onEvent with DATA). */
  readonly calls: Buffer[];
}

let dir: string;
let server: Server;
let path: string;
const cleanups: (() => void)[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'croot-rc-'));
  path = join(dir, 's');
  server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
  await new Promise<void>((resolve) => server.listen(path, resolve));
});

afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});


/** A connection whose server end is a StreamSocket given `cache`; JavaScript answers DATA with `answer(chunk)` and says idle as `idle()` says. */
async function connect(cache: ReplyCache | undefined, answer: (chunk: Buffer) => Buffer, idle: () => boolean = () => true): Promise<Pair> {
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const client = createConnection({ path, allowHalfOpen: true });
  const chunks: Buffer[] = [];
  let total = 0;
  client.on('data', (c: Buffer) => {
    chunks.push(c);
    total += c.length;
  });
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  const node = await accepted;
  const calls: Buffer[] = [];
  const socket: StreamSocket = new native.StreamSocket(
    (node as unknown as { _handle: { fd: number } })._handle.fd,
    (kind, value) => {
      if (kind !== StreamSocketEvent.DATA) return false;
      const chunk = value as Buffer;
      calls.push(chunk);
      socket.write(answer(chunk));
      return idle();
    },
    cache,
  );
  node.destroy();
  cleanups.push(() => {
    socket.close();
    client.destroy();
  });
  return { socket, client, received: () => Buffer.concat(chunks), clientHas: (n) => until(`client read ${n} bytes (has ${total})`, () => total >= n), calls };
}

/** A real process that lives until killed, and its pidfd. */
function sleeper(): { child: ChildProcess; pidfd: number; exited: Promise<void> } {
  const child = spawn('sleep', ['1000'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pidfd = native.pidfdOpen(child.pid as number);
  cleanups.push(() => {
    child.kill('SIGKILL');
    native.close(pidfd);
  });
  return { child, pidfd, exited };
}

const pidRequest = (name: string): Buffer => encodeContainer(PduType.PROCESSID_REQ, name, { pid: 0 });
const hostnameRequest = (name: string): Buffer => encodeContainer(PduType.HOSTNAME_REQ, name, { pid: 0 });
const fromJs = (chunk: Buffer): Buffer => Buffer.from(`js:${chunk.length};`);

describe('ReplyCache answered from by a StreamSocket', () => {
  it('sends a remembered reply again without calling JavaScript while its process lives, and leaves it to JavaScript once the process has exited', async () => {
    const cache = new native.ReplyCache(16, 65536);
    const { child, pidfd, exited } = sleeper();
    const request = pidRequest('web1');
    expect(cache.remember(request, Buffer.from('cached;'), pidfd, -1)).toBe(true);
    const p = await connect(cache, fromJs);
    // The first request goes to JavaScript: it has not said it is idle yet.
    const js = `js:${request.length};`;
    p.client.write(request);
    await p.clientHas(js.length);
    expect(p.calls).toHaveLength(1);
    p.client.write(request);
    await p.clientHas(js.length + 7);
    expect(p.received().toString()).toBe(`${js}cached;`);
    expect(p.calls).toHaveLength(1);
    expect(p.socket.answered).toBe(1);
    expect(p.socket.lastAnswered).toBeGreaterThan(0);
    expect(p.socket.lastAnswered).toBeLessThanOrEqual(Number(process.hrtime.bigint()) / 1e6);
    expect(cache.info().hits).toEqual({ hostname: 0, processid: 1, cgroupname: 0 });
    // The kernel ends the process (the pidfd still names it, so its number cannot be another's).
    child.kill('SIGKILL');
    await exited;
    p.client.write(request);
    await p.clientHas(2 * js.length + 7);
    expect(p.calls).toHaveLength(2);
    expect(p.received().toString()).toBe(`${js}cached;${js}`);
    expect(p.socket.answered).toBe(1);
  });

  it('answers by itself only while JavaScript has said it has nothing pending (the callback returning true, or idle())', async () => {
    const cache = new native.ReplyCache(16, 65536);
    const { pidfd } = sleeper();
    const request = pidRequest('web1');
    cache.remember(request, Buffer.from('cached;'), pidfd, -1);
    let idle = false;
    const p = await connect(cache, fromJs, () => idle);
    const js = `js:${request.length};`;
    p.client.write(request);
    await p.clientHas(js.length);
    p.client.write(request);
    await p.clientHas(2 * js.length);
    expect(p.calls).toHaveLength(2);
    p.socket.idle();
    p.client.write(request);
    await p.clientHas(2 * js.length + 7);
    expect(p.calls).toHaveLength(2);
    // Data handed to JavaScript makes it busy again until it says otherwise.
    p.client.write(pidRequest('other'));
    await until('JavaScript got the other request', () => p.calls.length === 3);
    p.client.write(request);
    await until('JavaScript got the request again', () => p.calls.length === 4);
    idle = true;
    p.client.write(pidRequest('other'));
    await until('JavaScript got the other request again', () => p.calls.length === 5);
    p.client.write(request);
    await p.clientHas(p.received().length + 7);
    expect(p.calls).toHaveLength(5);
    expect(p.socket.answered).toBe(2);
  });

  it('answers a read of several requests only when it holds every one of them, and never a request read in part', async () => {
    const cache = new native.ReplyCache(16, 65536);
    const { pidfd } = sleeper();
    const a = pidRequest('web1');
    const b = encodeContainer(PduType.CGROUPNAME_REQ, 'web1', { pid: 0 });
    cache.remember(a, Buffer.from('A;'), pidfd, -1);
    cache.remember(b, Buffer.from('B;'), pidfd, -1);
    const p = await connect(cache, fromJs);
    p.client.write(a);
    await p.clientHas(`js:${a.length};`.length);
    let expected = `js:${a.length};`;
    p.client.write(Buffer.concat([a, b, a]));
    expected += 'A;B;A;';
    await p.clientHas(expected.length);
    expect(p.received().toString()).toBe(expected);
    expect(p.calls).toHaveLength(1);
    expect(p.socket.answered).toBe(3);
    expect(cache.info().hits).toEqual({ hostname: 0, processid: 2, cgroupname: 1 });
    // One not held: JavaScript gets the whole read, the held ones included.
    const unknown = pidRequest('db');
    p.client.write(Buffer.concat([a, unknown]));
    expected += `js:${a.length + unknown.length};`;
    await p.clientHas(expected.length);
    expect(p.received().toString()).toBe(expected);
    expect(p.calls).toHaveLength(2);
    // Half a request, then the rest: JavaScript gets each part (the socket never holds bytes back).
    p.client.write(a.subarray(0, 10));
    await until('JavaScript got the first part', () => p.calls.length === 3);
    p.client.write(a.subarray(10));
    await until('JavaScript got the rest', () => p.calls.length === 4);
    expect(p.socket.answered).toBe(3);
  });

  describeWith('root', probes.root, 'hostnames', () => {
    it('gives a hostname again only while no hostname has been set anywhere since it was read, and keeps none without a generation', async () => {
      const cache = new native.ReplyCache(16, 65536);
      const { pidfd } = sleeper();
      const request = hostnameRequest('web1');
      expect(cache.remember(request, Buffer.from('H;'), pidfd, -1)).toBe(false);
      const p = await connect(cache, fromJs);
      const js = `js:${request.length};`;
      p.client.write(request);
      await p.clientHas(js.length);
      // Given again while the count stays: tried a few times, since another test may set a hostname meanwhile.
      for (let tries = 0; cache.info().hits.hostname === 0 && tries < 5; tries++) {
        cache.forget();
        expect(cache.remember(request, Buffer.from('H;'), pidfd, native.utsGeneration())).toBe(true);
        const before = p.received().length;
        p.client.write(request);
        await until('a reply', () => p.received().length > before);
      }
      expect(cache.info().hits.hostname).toBe(1);
      expect(p.received().toString()).toMatch(/H;$/);
      // A hostname set in a namespace of its own: the kernel flags it, and the kept reply is not given again.
      execFileSync('unshare', ['--uts', 'hostname', 'croot-rc-other']);
      const calls = p.calls.length;
      const before = p.received().length;
      p.client.write(request);
      await p.clientHas(before + js.length);
      expect(p.calls).toHaveLength(calls + 1);
      expect(p.received().subarray(before).toString()).toBe(js);
      expect(cache.info().hits.hostname).toBe(1);
    });

    it('does not give a hostname again once its process has exited (one poll(2) checks the process and the hostname flag)', async () => {
      const cache = new native.ReplyCache(16, 65536);
      const { child, pidfd, exited } = sleeper();
      const request = hostnameRequest('web1');
      expect(cache.remember(request, Buffer.from('H;'), pidfd, native.utsGeneration())).toBe(true);
      const p = await connect(cache, fromJs);
      const js = `js:${request.length};`;
      p.client.write(request);
      await p.clientHas(js.length);
      p.client.write(request);
      await p.clientHas(js.length + 2);
      // Other tests may set hostnames meanwhile: then JavaScript answered, which this test allows.
      const hits = cache.info().hits.hostname;
      expect(p.calls.length + hits).toBe(2);
      child.kill('SIGKILL');
      await exited;
      p.client.write(request);
      await until('JavaScript got the request for the exited process', () => p.calls.length === 3 - hits);
      expect(cache.info().hits.hostname).toBe(hits);
    });
  });

  it('is bounded in entries and bytes, keeps only whole container requests, and forgets everything at once', () => {
    const { pidfd } = sleeper();
    const one = new native.ReplyCache(1, 65536);
    expect(one.remember(pidRequest('a'), Buffer.from('A'), pidfd, -1)).toBe(true);
    expect(one.remember(pidRequest('b'), Buffer.from('B'), pidfd, -1)).toBe(false);
    expect(one.info()).toMatchObject({ entries: 1, refused: 1 });
    const small = new native.ReplyCache(16, 64);
    expect(small.remember(pidRequest('a'), Buffer.alloc(64), pidfd, -1)).toBe(false);
    const cache = new native.ReplyCache(16, 65536);
    // Not a container request (STARTPMDA), and a request whose length field is not its size.
    expect(cache.remember(encodeContainer(PduType.STARTPMDA_REQ, 'x', { pid: 0 }), Buffer.from('S'), pidfd, -1)).toBe(false);
    const lying = Buffer.from(pidRequest('a'));
    putInt(lying, 4, lying.length + 4);
    expect(cache.remember(lying, Buffer.from('L'), pidfd, -1)).toBe(false);
    expect(cache.remember(pidRequest('a'), Buffer.from('A'), pidfd, -1)).toBe(true);
    expect(cache.info()).toMatchObject({ entries: 1, bytes: pidRequest('a').length + 1 });
    expect(cache.forget()).toBe(1);
    expect(cache.info()).toMatchObject({ entries: 0, bytes: 0 });
    expect(() => new native.StreamSocket(0, () => false, {} as ReplyCache)).toThrow(/replyCache must be a ReplyCache/);
  });
});

describe('NativeReplyCache', () => {
  /** A NativeReplyCache, and a real process held by a pidfd handle of a NativeProcessAnchor. */
  function held(): { replies: NativeReplyCache; handle: PidfdProcessHandle; pidfd: number; child: ChildProcess; exited: Promise<void> } {
    const { child, exited } = sleeper();
    const handle = new NativeProcessAnchor(native).open(child.pid as number, () => undefined) as PidfdProcessHandle;
    return { replies: new NativeReplyCache(native), handle, pidfd: handle.pidfd as number, child, exited };
  }

  it("borrows the pidfd of a pidfd handle, forgets everything when that handle closes, and only then lets the pidfd go", async () => {
    const { replies, handle, pidfd, child, exited } = held();
    expect(fdTarget(pidfd)).toBe('anon_inode:[pidfd]');
    expect(replies.remember(pidRequest('web1'), Buffer.from('A'), handle)).toBe(true);
    expect(replies.table.info().entries).toBe(1);
    handle.close();
    expect(replies.table.info().entries).toBe(0);
    expect(fdTarget(pidfd)).toBeUndefined();
    // A closed handle vouches for nothing.
    expect(replies.remember(pidRequest('web1'), Buffer.from('A'), handle)).toBe(false);
    child.kill('SIGKILL');
    await exited;
  });

  it('keeps the pidfd open past the handle’s other borrowers, and forget() returns it', async () => {
    const { replies, handle, pidfd, child, exited } = held();
    replies.remember(pidRequest('a'), Buffer.from('A'), handle);
    replies.remember(pidRequest('b'), Buffer.from('B'), handle);
    replies.forget();
    expect(replies.table.info().entries).toBe(0);
    // Forgotten: the handle holds its pidfd alone again, and closing it closes the fd.
    expect(fdTarget(pidfd)).toBe('anon_inode:[pidfd]');
    handle.close();
    expect(fdTarget(pidfd)).toBeUndefined();
    child.kill('SIGKILL');
    await exited;
  });

  it('does not remember through a handle without a pidfd (a /proc handle needs its start-time check each time)', () => {
    const replies = new NativeReplyCache(native);
    const procHandle = { pid: process.pid, pidfd: undefined, isAlive: () => true, close: () => undefined };
    expect(replies.remember(pidRequest('a'), Buffer.from('A'), procHandle)).toBe(false);
    expect(replies.table.info().entries).toBe(0);
  });
});
