/**
 * One connection of croot's server under pressure, over real unix sockets
 * (requests and replies in PCP's documented bytes, test/support/root-pdu-bytes.ts):
 * replies that outgrow the socket buffers, a client that resets with
 * replies unread, answers still pending at a half-close, a reply with fds
 * behind replies the client has not read yet (and a client gone before
 * it), an `events` stream at the connection cap. The fds are checked in
 * /proc.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { describeWith, probes } from '../../test/support/components.js';
import { RawRootClient } from '../../test/support/raw-root-client.js';
import { T, containerRequest, extensionRequest, readContainer, readExtension, readHeader, readStart, readStop, startRequest, stopRequest } from '../../test/support/root-pdu-bytes.js';
import { FixtureEngine, startTestServer, type TestServer } from '../../test/support/server-fixture.js';
import { cgroupTruth, errnoTruth, hostnameTruth } from '../../test/support/truth.js';

const PM_ERR_NOCONTAINER = -12399;
/** How long a reply on a local socket may take: a broken server fails the test in this, not in Jest's minute. */
const REPLY_MS = 2000;
/**
 * Requests whose 24-byte replies fill the kernel's side of a unix socket
 * (charged per buffer, a few hundred small writes) but stay below Node's
 * 16 KiB write high-water mark, so the server keeps answering.
 */
const FILLING = 600;

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`never happened: ${what}`);
}

/** What this process's fds point at (/proc/self/fd). */
function ourFds(): string[] {
  return readdirSync('/proc/self/fd').map((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return '';
    }
  });
}

function pipeline(count: number): Buffer {
  return Buffer.concat(Array.from({ length: count }, (_, i) => containerRequest(T.PROCESSID_REQ, i + 1, 'nosuch')));
}

describeWith('root', () => probes.root() ?? probes.native(), 'RootConnection', () => {
  const servers: TestServer[] = [];
  const clients: RawRootClient[] = [];
  async function serve(options: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
    const t = await startTestServer(options);
    servers.push(t);
    return t;
  }
  async function client(t: TestServer): Promise<RawRootClient> {
    const c = await RawRootClient.open(t.socket);
    clients.push(c);
    return c;
  }
  async function pids(c: RawRootClient, count: number): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < count; i++) out.push(readContainer((await c.next(REPLY_MS)) as Buffer).pid);
    return out;
  }
  /** The started process's pid once the server has it (its log), checked as this process's child running sleep in /proc. */
  async function started(t: TestServer, label: string): Promise<number> {
    const line = (): Record<string, unknown> | undefined => t.logger.lines.find((l) => l.line === 'info started process' && l.fields?.label === label)?.fields;
    await until(() => line() !== undefined, `${label} started`);
    const pid = line()?.pid as number;
    // Name, not cmdline: the reply may come while the kernel is still setting up the new image's arguments.
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    expect([/^Name:\s+(\S+)/m.exec(status)?.[1], /^PPid:\s+(\d+)/m.exec(status)?.[1]]).toEqual(['sleep', String(process.pid)]);
    return pid;
  }

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    for (const t of servers.splice(0)) await t.stop();
  });

  it('answers a pipeline whose replies outgrow the socket buffers, in order, as the client reads them', async () => {
    const t = await serve();
    const c = await client(t);
    const count = 5000;
    void c.write(pipeline(count));
    expect(await pids(c, count)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    // The connection reads again afterwards.
    await c.write(containerRequest(T.PROCESSID_REQ, 77, 'nosuch'));
    expect(readContainer((await c.next(REPLY_MS)) as Buffer)).toMatchObject({ type: T.PROCESSID, status: PM_ERR_NOCONTAINER, pid: 77 });
  });

  it('survives a client that resets with replies unread, and serves the next', async () => {
    const t = await serve();
    const c = await client(t);
    c.socket.pause();
    void c.write(pipeline(5000)).catch(() => undefined);
    // Replies pile up unread in the client's socket; closing it then resets the server's side (ECONNRESET/EPIPE).
    await until(() => t.logger.lines.filter((l) => l.line === 'debug request failed').length >= 200, 'replies queued');
    c.close();
    await until(() => t.server.connectionCount === 0, 'connection closed');
    const next = await client(t);
    await next.write(containerRequest(T.PROCESSID_REQ, 5, 'nosuch'));
    expect(readContainer((await next.next(REPLY_MS)) as Buffer)).toMatchObject({ type: T.PROCESSID, status: PM_ERR_NOCONTAINER, pid: 5 });
  });

  it('answers requests still pending when the client half-closes, then closes', async () => {
    // A container whose engine has not stated it yet: a request for it waits until the engine does.
    const held = { engine: 'fixture', id: 'be1d00000000', names: ['held'], running: true, pending: true };
    const engine = new FixtureEngine('fixture', [held]);
    const t = await serve({ engines: [engine] });
    const c = await client(t);
    // STOPPMDA is answered through a promise (here -ENOTSUP: no process services); the requests for `held` wait.
    const forHeld = [T.PROCESSID_REQ, T.HOSTNAME_REQ, T.CGROUPNAME_REQ].map((type) => containerRequest(type, 6, 'held'));
    await c.write(Buffer.concat([stopRequest(4242, true), ...forHeld, containerRequest(T.PROCESSID_REQ, 7, 'nosuch')]));
    // Each kind also first in line on a connection of its own, so that each waits for the engine itself.
    const others = await Promise.all(forHeld.map(() => client(t)));
    for (const [i, other] of others.entries()) await other.write(forHeld[i] as Buffer);
    // Shut down (end's callback: the kernel has the FIN), then turns of the event loop for the server, in this process, to see it.
    await new Promise<void>((resolve) => c.socket.end(resolve));
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    // The engine's word: running, with this process as its init.
    engine.sink?.upsert({ ...held, pid: process.pid, pending: false });
    const replies: Buffer[] = [];
    for (let r = await c.next(REPLY_MS); r !== undefined; r = await c.next(REPLY_MS)) replies.push(r);
    expect(replies.map((r) => [readHeader(r).type, readHeader(r).status, r.readInt32LE(16)])).toEqual([
      [T.STOPPMDA, -errnoTruth('EOPNOTSUPP'), 4242],
      [T.PROCESSID, 0, process.pid],
      [T.HOSTNAME, 0, process.pid],
      [T.CGROUPNAME, 0, process.pid],
      [T.PROCESSID, PM_ERR_NOCONTAINER, 7],
    ]);
    expect(replies.slice(1, 4).map((r) => readContainer(r).name)).toEqual(['', hostnameTruth(process.pid), cgroupTruth(process.pid)]);
    for (const [i, other] of others.entries()) expect((await other.next(REPLY_MS))?.toString('hex')).toBe(replies[i + 1]?.toString('hex'));
  });

  it('sends a reply with fds only after the replies before it, however long the client takes to read them', async () => {
    const t = await serve({ processes: true });
    const c = await client(t);
    c.socket.pause();
    await c.write(Buffer.concat([pipeline(FILLING), startRequest(2, 'behind', '/bin/sleep 61'), containerRequest(T.PROCESSID_REQ, 999, 'nosuch')]));
    const pid = await started(t, 'behind');
    c.socket.resume();
    expect(await pids(c, FILLING)).toEqual(Array.from({ length: FILLING }, (_, i) => i + 1));
    expect(readStart((await c.next(REPLY_MS)) as Buffer)).toMatchObject({ type: T.STARTPMDA, bytes: 104, status: 0, pid, label: 'behind' });
    // The request after it waited for it.
    expect(readContainer((await c.next(REPLY_MS)) as Buffer)).toMatchObject({ type: T.PROCESSID, status: PM_ERR_NOCONTAINER, pid: 999 });
    const stdin = readlinkSync(`/proc/${pid}/fd/0`);
    expect(stdin).toMatch(/^pipe:/);
    expect(ourFds()).not.toContain(stdin);
    await c.write(stopRequest(pid, true));
    expect(readStop((await c.next(REPLY_MS)) as Buffer)).toMatchObject({ status: 0, pid });
  });

  it('closes the fds of a reply whose client is gone', async () => {
    const t = await serve({ processes: true });
    const c = await client(t);
    c.socket.pause();
    await c.write(Buffer.concat([pipeline(FILLING), startRequest(2, 'orphan', '/bin/sleep 61')]));
    const pid = await started(t, 'orphan');
    const stdin = readlinkSync(`/proc/${pid}/fd/0`);
    c.close();
    await until(() => t.server.connectionCount === 0, 'connection closed');
    await until(() => !ourFds().includes(stdin), `the server's end of ${stdin} closed`);
  });

  it('never displaces an events subscriber as idle, and goes on streaming to it', async () => {
    const engine = new FixtureEngine('fixture', []);
    const t = await serve({ engines: [engine], server: { maxConnections: 1 } });
    const c = await client(t);
    await c.write(extensionRequest({ v: 1, op: 'events' }));
    expect(readExtension((await c.next(REPLY_MS)) as Buffer)).toMatchObject({ type: T.EXT_REPLY, status: 0, flags: 0 });
    const late = await RawRootClient.open(t.socket, false);
    clients.push(late);
    expect(await late.next(REPLY_MS)).toBeUndefined();
    expect(t.server.stats()).toMatchObject({ connections: 1, refused: 1, evicted: 0 });
    engine.sink?.upsert({ engine: 'fixture', id: 'abc000000000', names: ['still'], running: false });
    expect(JSON.parse(readExtension((await c.next(REPLY_MS)) as Buffer).payload)).toMatchObject({ event: { action: 'added', container: { names: ['still'] } } });
  });

  it('never displaces as idle a connection whose answered requests wait for it to read', async () => {
    const t = await serve({ server: { maxConnections: 1 } });
    const c = await client(t);
    c.socket.pause();
    // Small enough to be read at once (no request left half-read), large enough that the replies fill the socket and the server stops.
    await c.write(pipeline(1500));
    await until(() => t.logger.lines.filter((l) => l.line === 'debug request failed').length >= 200, 'replies queued');
    const late = await RawRootClient.open(t.socket, false);
    clients.push(late);
    expect(await late.next(REPLY_MS)).toBeUndefined();
    expect(t.server.stats()).toMatchObject({ connections: 1, refused: 1, evicted: 0 });
    c.socket.resume();
    expect(await pids(c, 1500)).toEqual(Array.from({ length: 1500 }, (_, i) => i + 1));
  });

  it('ends an events stream asked for behind a pending request when the client half-closes', async () => {
    // A container whose engine has not stated it yet: a request for it waits until the engine does.
    const held = { engine: 'fixture', id: 'be1d00000000', names: ['held'], running: true, pending: true };
    const engine = new FixtureEngine('fixture', [held]);
    const t = await serve({ engines: [engine], server: { maxQueuedRequests: 1 } });
    const c = await client(t);
    /** Written, and two turns of the event loop later read by the server (both ends live in this process). */
    async function send(bytes: Buffer): Promise<void> {
      await c.write(bytes);
      for (let i = 0; i < 2; i++) await new Promise((r) => setImmediate(r));
    }
    await send(containerRequest(T.PROCESSID_REQ, 31, 'held'));
    // Read while that request is pending: one request queued is the most read ahead, so reading pauses.
    await send(extensionRequest({ v: 1, op: 'events' }));
    // Sent after asking for events, so never read as a request; it waits in the paused socket ahead of the half-close.
    await send(containerRequest(T.PROCESSID_REQ, 32, 'held'));
    engine.sink?.upsert({ ...held, running: false, pending: false });
    expect(readContainer((await c.next(REPLY_MS)) as Buffer)).toMatchObject({ type: T.PROCESSID, status: -errnoTruth('ESRCH'), pid: 31 });
    expect(readExtension((await c.next(REPLY_MS)) as Buffer)).toMatchObject({ type: T.EXT_REPLY, status: 0 });
    c.socket.end();
    expect(await c.next(REPLY_MS)).toBeUndefined();
    await until(() => t.server.connectionCount === 0, 'connection closed');
  });

  it('stops reading a client that does not read its replies: what it answers meanwhile fits in the socket buffers and one high-water mark', async () => {
    const t = await serve();
    const c = await client(t);
    c.socket.pause();
    const answered = (): number => t.logger.lines.filter((l) => l.line === 'debug request failed').length;
    void c.write(pipeline(20000)).catch(() => undefined);
    await until(() => answered() >= 200, 'replies queued');
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    // The kernel holds at most wmem_default bytes of a unix socket's replies (/proc/sys/net/core), Node 16 KiB more before the server stops.
    const wmem = Number(readFileSync('/proc/sys/net/core/wmem_default', 'utf8'));
    expect(answered()).toBeLessThanOrEqual(Math.ceil((wmem + 16384) / 24) + 1);
    c.socket.resume();
    expect(await pids(c, 20000)).toHaveLength(20000);
  });

  it('reads at most maxQueuedRequests (64) ahead while a request is pending: the rest waits in the client', async () => {
    const held = { engine: 'fixture', id: 'be1d00000000', names: ['held'], running: true, pending: true };
    const engine = new FixtureEngine('fixture', [held]);
    const t = await serve({ engines: [engine] });
    const c = await client(t);
    await c.write(containerRequest(T.PROCESSID_REQ, 1, 'held'));
    // More than the kernel's buffers hold (wmem_default, /proc/sys/net/core): what the server does not read stays in this process.
    const wmem = Number(readFileSync('/proc/sys/net/core/wmem_default', 'utf8'));
    const count = Math.ceil((2 * wmem) / 28);
    const written = c.write(pipeline(count));
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(c.socket.writableLength).toBeGreaterThan(0);
    engine.sink?.upsert({ ...held, running: false, pending: false });
    expect(readContainer((await c.next(REPLY_MS)) as Buffer)).toMatchObject({ pid: 1, status: -errnoTruth('ESRCH') });
    expect(await pids(c, count)).toHaveLength(count);
    await written;
  });
});
