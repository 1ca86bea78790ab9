/**
 * NativeConnectionSocket on real unix sockets: a Node server accepts, the
 * accepted fd is adopted (and Node's socket closed at once, as crootd does),
 * and a plain Node client on the other end is the truth for what crossed the
 * wire; /proc/self/fd is the truth for the fds. What RootConnection relies
 * on is checked against Node's own net.Socket too (the ConnectionSocket
 * contract), so the two are shown to behave alike where it matters.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionSocket } from '../core/host/host-services.js';
import { fdTarget, fdsOpenedSince, openFds } from '../test/support/sandbox.js';
import type { CrootNative } from './croot-native.js';
import { loadNative } from './load-native.js';
import { NativeConnectionSocket, NativeConnectionSocketFactory } from './native-connection-socket.js';

const native: CrootNative = loadNative();

type Kind = 'native' | 'node';

interface Pair {
  /** The server's end: the adopted NativeConnectionSocket, or Node's accepted socket itself. */
  readonly adopted: ConnectionSocket;
  readonly client: Socket;
  /** Everything the client has read so far. */
  readonly received: () => Buffer;
  /** Resolves when the client has read at least `n` bytes in all. */
  readonly clientHas: (n: number) => Promise<void>;
  readonly clientEnded: Promise<void>;
  /** What the adopted socket emitted, in order ('data:<text>' for data). */
  readonly events: string[];
}

let dir: string;
let server: Server;
let path: string;
const pairs: Pair[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'croot-ncs-'));
  path = join(dir, 's');
  server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
  await new Promise<void>((resolve) => server.listen(path, resolve));
});

afterAll(async () => {
  for (const p of pairs) {
    p.adopted.destroy();
    p.client.destroy();
  }
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

function until(check: () => boolean, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let tries = 0;
    const look = (): void => {
      if (check()) resolve();
      else if (++tries > 500) reject(new Error(`never happened: ${what}`));
      else setTimeout(look, 10);
    };
    look();
  });
}

async function connect(options: { clientPaused?: boolean; kind?: Kind } = {}): Promise<Pair> {
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const client = createConnection({ path, allowHalfOpen: true });
  const chunks: Buffer[] = [];
  let total = 0;
  if (options.clientPaused !== true) {
    client.on('data', (c: Buffer) => {
      chunks.push(c);
      total += c.length;
    });
  }
  const clientEnded = new Promise<void>((resolve) => client.once('end', () => resolve()));
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  const node = await accepted;
  let adopted: ConnectionSocket;
  if (options.kind === 'node') {
    node.resume();
    adopted = node;
  } else {
    adopted = new NativeConnectionSocketFactory(native).adopt((node as unknown as { _handle: { fd: number } })._handle.fd);
    node.destroy();
  }
  const events: string[] = [];
  adopted.on('data', (chunk: Buffer) => events.push(`data:${chunk.toString()}`));
  for (const e of ['end', 'drain', 'close'] as const) adopted.on(e, () => events.push(e));
  adopted.on('error', (err: Error) => events.push(`error:${(err as NodeJS.ErrnoException).code ?? err.message}`));
  const pair: Pair = {
    adopted,
    client,
    received: () => Buffer.concat(chunks),
    clientHas: (n) => until(() => total >= n, `client read ${n} bytes (has ${total})`),
    clientEnded,
    events,
  };
  pairs.push(pair);
  return pair;
}

const fdOf = (p: Pair): number => (p.adopted as NativeConnectionSocket).fd;

describe.each<[string, Kind]>([
  ['NativeConnectionSocket', 'native'],
  ["Node's net.Socket", 'node'],
])('the ConnectionSocket contract: %s', (_name, kind) => {
  const open = (options: { clientPaused?: boolean } = {}): Promise<Pair> => connect({ ...options, kind });

  it('carries bytes both ways', async () => {
    const p = await open();
    p.client.write('ping');
    await until(() => p.events.includes('data:ping'), 'the server end read ping');
    expect(p.adopted.write(Buffer.from('pong'))).toBe(true);
    await p.clientHas(4);
    expect(p.received().toString()).toBe('pong');
    expect(p.adopted.writableLength).toBe(0);
  });

  it('queues what the kernel does not take, says so, writes it when the peer reads, then emits drain', async () => {
    const p = await open({ clientPaused: true });
    const big = Buffer.alloc(8 * 1024 * 1024, 7);
    expect(p.adopted.write(big)).toBe(false);
    expect(p.adopted.writableNeedDrain).toBe(true);
    expect(p.adopted.writableLength).toBeGreaterThan(0);
    // A second write goes behind the first, not past it.
    p.adopted.write(Buffer.from('tail'));
    let read = 0;
    const tail: Buffer[] = [];
    p.client.on('data', (c: Buffer) => {
      read += c.length;
      tail.push(c.subarray(Math.max(0, c.length - 4)));
    });
    await until(() => read === big.length + 4, `client read all ${big.length + 4} bytes (has ${read})`);
    expect(Buffer.concat(tail).subarray(-4).toString()).toBe('tail');
    await until(() => p.events.includes('drain'), 'drain');
    expect(p.adopted.writableNeedDrain).toBe(false);
    expect(p.adopted.writableLength).toBe(0);
  });

  it('stops reading while paused and reads what waited once resumed', async () => {
    const p = await open();
    p.adopted.pause();
    expect(p.adopted.isPaused()).toBe(true);
    p.client.write('held');
    // The client's bytes sit in the kernel: the peer socket's receive queue, seen through a round trip of the other direction.
    p.adopted.write(Buffer.from('x'));
    await p.clientHas(1);
    await new Promise((r) => setTimeout(r, 50));
    expect(p.events.filter((e) => e.startsWith('data:'))).toEqual([]);
    p.adopted.resume();
    await until(() => p.events.includes('data:held'), 'data after resume');
  });

  it('half-open: the peer shuts down its side, replies still go out, then end() closes', async () => {
    const p = await open();
    p.client.write('last');
    p.client.end();
    await until(() => p.events.includes('end'), 'end');
    expect(p.events).toEqual(['data:last', 'end']);
    expect(p.adopted.write(Buffer.from('answer'))).toBe(true);
    p.adopted.end();
    expect(p.adopted.writable).toBe(false);
    await p.clientEnded;
    expect(p.received().toString()).toBe('answer');
    await until(() => p.events.includes('close'), 'close');
    expect(p.adopted.destroyed).toBe(true);
  });

  it('after end() it waits for the peer to end too before closing', async () => {
    const p = await open();
    p.adopted.end();
    await p.clientEnded;
    expect(p.events).toEqual([]);
    expect(p.adopted.destroyed).toBe(false);
    p.client.end();
    await until(() => p.events.includes('close'), 'close after both ends');
    expect(p.events).toEqual(['end', 'close']);
    expect(p.received().length).toBe(0);
  });

  it('ended while paused, it closes once the peer has closed', async () => {
    const p = await open();
    p.adopted.pause();
    p.adopted.end();
    await p.clientEnded;
    p.client.destroy();
    await until(() => p.events.includes('close'), 'close after the peer closed, although paused');
    expect(p.adopted.destroyed).toBe(true);
  });

  it('destroy() closes at once and emits close once, later', async () => {
    const p = await open();
    p.adopted.destroy();
    expect(p.events).toEqual([]);
    expect(p.adopted.destroyed).toBe(true);
    p.adopted.destroy();
    await until(() => p.events.includes('close'), 'close');
    await new Promise((r) => setTimeout(r, 20));
    expect(p.events).toEqual(['close']);
    // The client sees the connection end.
    await p.clientEnded;
  });

  it('closes when written to after the peer is gone, without throwing', async () => {
    const p = await open();
    p.client.destroy();
    await until(() => p.events.includes('end'), 'end from the peer closing');
    for (let i = 0; i < 5 && !p.adopted.destroyed; i++) p.adopted.write(Buffer.from('into the void'));
    await until(() => p.events.includes('close'), 'close');
  });

  it('calls its idle callback once per quiet spell, later when traffic goes on', async () => {
    const p = await open();
    let fired = 0;
    const started = performance.now();
    p.adopted.setTimeout(150, () => fired++);
    // Traffic for 300 ms keeps it quiet.
    for (let i = 0; i < 6; i++) {
      p.client.write('.');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(fired).toBe(0);
    await until(() => fired === 1, 'idle once');
    expect(performance.now() - started).toBeGreaterThanOrEqual(300 + 150 - 60);
    await new Promise((r) => setTimeout(r, 400));
    expect(fired).toBe(1);
  });
});

/**
 * Where NativeConnectionSocket does more than Node's socket (each checked to
 * fail with Node's): it counts as queued only what the kernel has not taken
 * (Node: the whole pending write); ended while paused, it still sees a
 * half-close of the peer and closes (Node waits for a resume that never
 * comes); its idle callback fires again after new traffic (Node's fires
 * once), so RootConnection's idle check covers a connection's whole life.
 */
describe(NativeConnectionSocket, () => {
  it('counts as queued only what the kernel has not taken', async () => {
    const p = await connect({ clientPaused: true });
    const big = Buffer.alloc(8 * 1024 * 1024, 7);
    p.adopted.write(big);
    expect(p.adopted.writableLength).toBeGreaterThan(0);
    expect(p.adopted.writableLength).toBeLessThan(big.length);
    p.client.resume();
    await until(() => p.events.includes('drain'), 'drain');
  });

  it("ended while paused, it still sees the peer's half-close and closes; what the peer sends meanwhile is dropped", async () => {
    const p = await connect();
    p.adopted.pause();
    p.adopted.end();
    await p.clientEnded;
    p.client.write('ignored');
    p.client.end();
    await until(() => p.events.includes('close'), 'close after the peer ended, although paused');
    expect(p.events).toEqual(['end', 'close']);
  });

  it('calls its idle callback again after new traffic', async () => {
    const p = await connect();
    let fired = 0;
    p.adopted.setTimeout(100, () => fired++);
    await until(() => fired === 1, 'idle once');
    p.client.write('.');
    await until(() => p.events.includes('data:.'), 'the traffic');
    await until(() => fired === 2, 'idle again after new traffic');
  });

  it("owns a duplicate of the accepted fd: the connection outlives Node's socket", async () => {
    const p = await connect();
    expect(fdTarget(fdOf(p))).toMatch(/^socket:\[\d+\]$/);
    p.client.write('ping');
    await until(() => p.events.includes('data:ping'), 'the adopted socket read ping');
  });

  it('closes its fd when it closes: after both ends, and at destroy()', async () => {
    const p = await connect();
    const fd = fdOf(p);
    const socket = fdTarget(fd);
    p.client.end();
    await until(() => p.events.includes('end'), 'end');
    p.adopted.end();
    await until(() => p.events.includes('close'), 'close');
    expect(fdOf(p)).toBe(-1);
    // The kernel no longer has that socket at that fd.
    expect(fdTarget(fd)).not.toBe(socket);
    const q = await connect();
    const qfd = fdOf(q);
    const qsocket = fdTarget(qfd);
    q.adopted.destroy();
    expect(fdTarget(qfd)).not.toBe(qsocket);
  });

  it('refuses a write after end() or after the peer is gone: nothing is sent, false is returned', async () => {
    const p = await connect();
    p.adopted.end();
    await p.clientEnded;
    expect(p.adopted.write(Buffer.from('late'))).toBe(false);
    p.client.end();
    await until(() => p.events.includes('close'), 'close');
    expect(p.received().length).toBe(0);
    const q = await connect();
    q.client.destroy();
    await until(() => q.events.includes('end'), 'end from the peer closing');
    let sent = true;
    for (let i = 0; i < 5 && !q.adopted.destroyed; i++) sent = (q.adopted as NativeConnectionSocket).write(Buffer.from('into the void'));
    expect(sent).toBe(false);
  });

  it("leaves no fd behind: Node's is closed at accept, its own at close", async () => {
    const before = openFds();
    const p = await connect();
    p.client.write('x');
    await until(() => p.events.includes('data:x'), 'data');
    p.adopted.destroy();
    p.client.destroy();
    await until(() => p.events.includes('close'), 'close');
    await new Promise((r) => setImmediate(r));
    expect(fdsOpenedSince(before)).toEqual([]);
  });
});
