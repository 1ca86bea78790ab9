/**
 * croot's protocol extension (docs/protocol.md, "croot's extension") over a
 * real socket: requests and replies built and read by the documented bytes
 * (test/support/root-pdu-bytes.ts), the documents' facts checked against
 * the kernel (the sandbox's hostname and cgroup, this process's pid and
 * uid) and against what the test itself sent, the `events` stream with
 * its bounded backlog.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { ContainerView } from '../registry/container-view.js';
import { describeWith, probes } from '../../test/support/components.js';
import { RawRootClient } from '../../test/support/raw-root-client.js';
import { T, containerRequest, extensionRequest, headerBytes, readContainer, readExtension } from '../../test/support/root-pdu-bytes.js';
import { startSandbox, type Sandbox } from '../../test/support/sandbox.js';
import { FixtureEngine, startTestServer, type TestServer } from '../../test/support/server-fixture.js';
import { cgroupTruth, errnoTruth, hostnameTruth } from '../../test/support/truth.js';
import { ExtensionHandler, type StreamOutlet } from './extension-handler.js';

/** How long a reply on a local socket may take: a broken server fails the test in this, not in Jest's minute. */
const REPLY_MS = 2000;

interface Doc {
  status: number;
  chunks: number;
  doc: Record<string, unknown> & { containers?: { names: string[]; id: string; pid?: number }[] };
}

/** Reads one reply document: PDUs until one has MORE clear, each checked against the documented limits. */
async function readDoc(c: RawRootClient): Promise<Doc> {
  let text = '';
  let chunks = 0;
  for (;;) {
    const pdu = await c.next(REPLY_MS);
    if (pdu === undefined) throw new Error('closed in the middle of a reply');
    const p = readExtension(pdu);
    expect([p.type, p.version, p.length, pdu.length <= 4096, p.flags & ~1]).toEqual([T.EXT_REPLY, 2, 24 + p.paylen, true, 0]);
    text += p.payload;
    chunks++;
    if ((p.flags & 1) === 0) return { status: p.status, chunks, doc: JSON.parse(text) as Doc['doc'] };
  }
}

/**
 * The connection of an `events` subscriber that reads nothing: every byte
 * the handler writes stays unread. A stand-in, because over a real socket
 * the kernel's buffers (charged by buffer size, not by bytes) make the
 * bound unreachable to the byte.
 */
class UnreadOutlet implements StreamOutlet {
  readonly writes: Buffer[] = [];
  closes = 0;
  write(bytes: Buffer): void {
    this.writes.push(bytes);
  }
  get backlog(): number {
    return this.writes.reduce((n, b) => n + b.length, 0);
  }
  close(): void {
    this.closes++;
  }
  /** The documents written, each checked to be whole PDUs by the documented layout. */
  docs(): Record<string, unknown>[] {
    return this.writes.map((w) => {
      let text = '';
      for (let at = 0; at < w.length; ) {
        const p = readExtension(w.subarray(at));
        expect([p.type, p.length]).toEqual([T.EXT_REPLY, 24 + p.paylen]);
        text += p.payload;
        at += p.length;
      }
      return JSON.parse(text) as Record<string, unknown>;
    });
  }
}

/** A client in a process of its own (as `uid`): connects when told, says once it has INFO, holds the connection until killed. */
const PEER = `
import socket, sys
sys.stdin.readline()
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
data = b''
while len(data) < 24:
    chunk = s.recv(24 - len(data))
    if not chunk: break
    data += chunk
print(len(data), flush=True)
sys.stdin.read()
`;

class PeerChild {
  private readonly lines: AsyncIterator<string>;
  private constructor(readonly child: ChildProcess) {
    this.lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  }
  static start(path: string, uid: number): PeerChild {
    return new PeerChild(spawn('python3', ['-S', '-c', PEER, path], { uid, gid: uid, cwd: '/', stdio: ['pipe', 'pipe', 'inherit'] }));
  }
  get pid(): number {
    return this.child.pid as number;
  }
  /** Its uid as the kernel has it (/proc/PID/status). */
  uid(): number {
    return Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'))?.[1]);
  }
  /** Connects, and resolves once INFO (24 bytes) came. */
  async connect(): Promise<void> {
    this.child.stdin?.write('go\n');
    expect((await this.lines.next()).value).toBe('24');
  }
  stop(): void {
    this.child.kill('SIGKILL');
  }
}

describeWith('root', () => probes.root() ?? probes.native(), "croot's extension over the root socket", () => {
  let sandbox: Sandbox;
  let engine: FixtureEngine;
  let t: TestServer;
  const startedAt = Date.now() - 7000;
  const clients: RawRootClient[] = [];
  async function client(): Promise<RawRootClient> {
    const c = await RawRootClient.open(t.socket);
    clients.push(c);
    return c;
  }
  /** The server's connections once the closes in flight have reached it. */
  async function connectionsLeft(): Promise<number> {
    for (let i = 0; i < 200 && t.server.connectionCount > 0; i++) await new Promise((r) => setTimeout(r, 10));
    return t.server.connectionCount;
  }
  async function ask(payload: unknown): Promise<Doc> {
    const c = await client();
    await c.write(extensionRequest(payload));
    return readDoc(c);
  }

  beforeAll(async () => {
    sandbox = await startSandbox();
    engine = new FixtureEngine('fixture', [
      { engine: 'fixture', id: 'ab12cd340000', names: ['sbx', 'alias'], running: true, pid: sandbox.pid },
      { engine: 'fixture', id: 'ab12ef560000', names: ['twin'], running: true, pid: sandbox.pid },
      { engine: 'fixture', id: 'cd5500000000', names: ['stopped'], running: false },
    ]);
    t = await startTestServer({ engines: [engine], config: { allowUids: [65534, 0] }, extension: { startedAt, eventBacklogBytes: 2000 } });
  });

  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  afterAll(async () => {
    await t?.stop();
    await sandbox?.stop();
  });

  it('shows one container with what the kernel says of it', async () => {
    const { status, doc } = await ask({ v: 1, op: 'show', name: 'alias' });
    expect(status).toBe(0);
    expect(doc).toMatchObject({ schemaVersion: 1, containers: [{ engine: 'fixture', id: 'ab12cd340000', names: ['sbx', 'alias'], state: 'running', pid: sandbox.pid }] });
    expect(doc.containers?.[0]).toMatchObject({ hostname: hostnameTruth(sandbox.pid), cgroup: cgroupTruth(sandbox.pid) });
  });

  it('lists the containers and engines, cutting a long document into chunks of at most 4096 bytes', async () => {
    const { doc, chunks } = await ask({ v: 1, op: 'list' });
    expect(chunks).toBe(1);
    expect(doc.containers?.map((c) => c.id)).toEqual(['ab12cd340000', 'cd5500000000', 'ab12ef560000']);
    expect(doc.engines).toEqual([expect.objectContaining({ engine: 'fixture', available: true })]);
    const many = Array.from({ length: 60 }, (_, i) => ({ engine: 'fixture', id: `ee${String(i).padStart(10, '0')}`, names: [`n${i}`], running: false }));
    for (const record of many) engine.sink?.upsert(record);
    try {
      const long = await ask({ v: 1, op: 'list' });
      expect(long.chunks).toBeGreaterThan(1);
      expect(long.doc.containers).toHaveLength(63);
    } finally {
      for (const record of many) engine.sink?.remove(record.id);
    }
  });

  it('describes the engines with the anchor', async () => {
    const { doc } = await ask({ v: 1, op: 'engines' });
    expect(Object.keys(doc).sort()).toEqual(['anchor', 'engines', 'schemaVersion']);
    expect(doc.engines).toEqual([expect.objectContaining({ engine: 'fixture', available: true })]);
  });

  it('answers errors with a negative status and the code, never a wrong container', async () => {
    const cases: [unknown, number, string][] = [
      [{ v: 1, op: 'show', name: 'nosuch' }, -12399, 'ERR_NO_CONTAINER'],
      [{ v: 1, op: 'show', name: 'ab12' }, -errnoTruth('ENOTUNIQ'), 'ERR_AMBIGUOUS_NAME'],
      [{ v: 1, op: 'dance' }, -errnoTruth('EOPNOTSUPP'), 'ERR_NOT_SUPPORTED'],
      [{ v: 2, op: 'list' }, -errnoTruth('EOPNOTSUPP'), 'ERR_NOT_SUPPORTED'],
      ['{"v":1,', -errnoTruth('EINVAL'), 'ERR_PROTOCOL'],
      ['[1]', -errnoTruth('EINVAL'), 'ERR_PROTOCOL'],
    ];
    const logged = t.logger.lines.length;
    for (const [payload, status, code] of cases) {
      const reply = await ask(payload);
      expect([reply.status, reply.chunks, reply.doc.code, reply.doc.status]).toEqual([status, 1, code, status]);
      expect(typeof reply.doc.message).toBe('string');
    }
    // A name that designates no container is routine for PCP's clients: logged for debugging, not as a warning.
    const failures = t.logger.lines.slice(logged).filter((l) => l.line.endsWith(' extension request failed'));
    expect(failures.map((l) => [l.line.split(' ')[0], l.fields])).toEqual(
      cases.map(([, status]) => [status === -12399 ? 'debug' : 'warn', { pid: process.pid, op: expect.any(String), status, error: expect.any(String) }]),
    );
    const ambiguous = await ask({ v: 1, op: 'show', name: 'ab12' });
    expect(ambiguous.doc.message).toEqual(expect.stringContaining('ab12cd340000'));
    expect(ambiguous.doc.message).toEqual(expect.stringContaining('ab12ef560000'));
  });

  it('reports the server: version, pid, socket, start, allowed uids, peers, and the requests it answered by kind', async () => {
    const fresh = await startTestServer({ engines: [], dirMode: 0o755, config: { allowUids: [65534, 0], socketMode: 0o777 }, extension: { startedAt } });
    const children = [PeerChild.start(fresh.socket, 65534), PeerChild.start(fresh.socket, 0)];
    try {
      // Connected highest pid first: the report sorts the peers by pid, whatever the order they came in.
      for (const child of [...children].sort((a, b) => b.pid - a.pid)) await child.connect();
      const c = await RawRootClient.open(fresh.socket);
      const other = await RawRootClient.open(fresh.socket);
      clients.push(c, other);
      await c.write(
        Buffer.concat([containerRequest(T.PROCESSID_REQ, 0, 'nosuch'), containerRequest(T.HOSTNAME_REQ, 3, 'nosuch'), containerRequest(T.PROCESSID_REQ, process.pid, ''), headerBytes(0x9055, 16)]),
      );
      for (let i = 0; i < 4; i++) await c.next(REPLY_MS);
      await c.write(extensionRequest({ v: 1, op: 'dance' }));
      expect((await readDoc(c)).status).toBe(-errnoTruth('EOPNOTSUPP'));
      await c.write(extensionRequest({ v: 1, op: 'status' }));
      const { doc } = await readDoc(c);
      expect(doc.server).toEqual({
        version: '0.0.0-test',
        pid: process.pid,
        socket: fresh.socket,
        startedAt: new Date(startedAt).toISOString(),
        uptimeSeconds: expect.any(Number),
        allowUids: [0, 65534],
        connections: {
          open: 4,
          peers: [...children.map((p) => ({ pid: p.pid, uid: p.uid() })), { pid: process.pid, uid: 0 }, { pid: process.pid, uid: 0 }].sort((a, b) => a.pid - b.pid),
        },
        requests: { total: 6, failed: 3, answeredAgain: 0, byKind: { extension: 2, hostname: 1, other: 1, pid: 2 } },
      });
      const uptime = (doc.server as { uptimeSeconds: number }).uptimeSeconds;
      expect(uptime).toBeGreaterThanOrEqual(7);
      expect(uptime).toBeLessThanOrEqual(Math.ceil((Date.now() - startedAt) / 1000));
      expect(Object.keys(doc).sort()).toEqual(['anchor', 'engines', 'schemaVersion', 'server']);
      // The kinds in alphabetical order, as `croot status --json` prints them.
      expect(Object.keys((doc.server as { requests: { byKind: object } }).requests.byKind)).toEqual(['extension', 'hostname', 'other', 'pid']);
    } finally {
      for (const child of children) child.stop();
      await fresh.stop();
    }
  });

  it('streams events: what there is, then each change, until the client half-closes', async () => {
    const c = await client();
    await c.write(extensionRequest({ v: 1, op: 'events' }));
    const first = await readDoc(c);
    expect(first.doc.containers?.map((x) => x.id)).toEqual(['ab12cd340000', 'cd5500000000', 'ab12ef560000']);
    expect(Object.keys(first.doc).sort()).toEqual(['anchor', 'containers', 'engines', 'schemaVersion']);
    // What the client sends now is not read as a request.
    await c.write(containerRequest(T.PROCESSID_REQ, 0, 'sbx'));
    engine.sink?.upsert({ engine: 'fixture', id: 'f00d00000000', names: ['newcomer'], running: false });
    engine.sink?.remove('f00d00000000');
    const added = await readDoc(c);
    expect(added.doc).toMatchObject({ schemaVersion: 1, event: { type: 'container', action: 'added', container: { id: 'f00d00000000', names: ['newcomer'] } } });
    expect((await readDoc(c)).doc).toMatchObject({ event: { type: 'container', action: 'removed' } });
    c.socket.end();
    expect(await c.next(REPLY_MS)).toBeUndefined();
    expect(await connectionsLeft()).toBe(0);
  });

  it('drops a subscriber that does not read once its unread events pass the bound', async () => {
    const c = await client();
    await c.write(extensionRequest({ v: 1, op: 'events' }));
    await readDoc(c);
    c.socket.pause();
    const name = 'x'.repeat(200);
    const dropped = (): Record<string, unknown> | undefined => t.logger.lines.find((l) => l.line === 'warn events subscriber dropped: it does not read what it is sent')?.fields;
    let pushed = 0;
    while (dropped() === undefined && pushed < 20000) {
      engine.sink?.upsert({ engine: 'fixture', id: 'beef00000000', names: [`${name}${pushed++}`], running: false });
    }
    expect(dropped()).toEqual({ pid: process.pid, uid: 0, unread: expect.any(Number), limit: 2000 });
    expect(dropped()?.unread).toBeGreaterThan(0);
    // Past the drop nothing more is queued for it.
    for (let i = 0; i < 50; i++) engine.sink?.upsert({ engine: 'fixture', id: 'beef00000000', names: [`after${i}`], running: false });
    engine.sink?.remove('beef00000000');
    c.socket.resume();
    let text = '';
    for (let pdu = await c.next(REPLY_MS); pdu !== undefined; pdu = await c.next(REPLY_MS)) text += readExtension(pdu).payload;
    expect(text).not.toContain('after');
    expect(text).not.toContain(`${name}${pushed - 1}"`);
    expect(await connectionsLeft()).toBe(0);
    // Another client is served as before.
    const other = await client();
    await other.write(containerRequest(T.PROCESSID_REQ, 0, 'sbx'));
    expect(readContainer((await other.next(REPLY_MS)) as Buffer).pid).toBe(sandbox.pid);
  });

  it('keeps a subscriber whose unread events reach the bound exactly, drops it one byte past, and writes nothing after a close', async () => {
    const view = t.container.get<ContainerView>(ContainerView);
    const peer = { pid: process.pid, uid: 0, gid: 0 };
    async function subscribe(handler: ExtensionHandler, outlet: UnreadOutlet): Promise<() => void> {
      const reply = await handler.answer(extensionRequest({ v: 1, op: 'events' }), { socket: undefined, allowUids: [], peers: [] }, peer);
      expect(reply.bytes).toHaveLength(0);
      return (reply.stream as NonNullable<typeof reply.stream>)(outlet);
    }
    /** Three changes of one container: added, updated, removed (the same bytes each time but for the time, always 24 characters). */
    function churn(): void {
      engine.sink?.upsert({ engine: 'fixture', id: 'c0ffee000000', names: ['churned'], running: false });
      engine.sink?.upsert({ engine: 'fixture', id: 'c0ffee000000', names: ['churned', 'again'], running: false });
      engine.sink?.remove('c0ffee000000');
    }
    // What each change costs, seen by a subscriber with room to spare.
    const measure = new UnreadOutlet();
    const stopMeasure = await subscribe(new ExtensionHandler(view, { version: 't', eventBacklogBytes: 1 << 20 }, t.logger), measure);
    churn();
    stopMeasure();
    expect(measure.docs().slice(1).map((d) => (d.event as { action: string }).action)).toEqual(['added', 'updated', 'removed']);
    const [first, added, updated] = measure.writes.map((w) => w.length) as [number, number, number];

    const exact = new UnreadOutlet();
    await subscribe(new ExtensionHandler(view, { version: 't', eventBacklogBytes: added + updated }, t.logger), exact);
    const short = new UnreadOutlet();
    await subscribe(new ExtensionHandler(view, { version: 't', eventBacklogBytes: added + updated - 1 }, t.logger), short);
    const logged = t.logger.lines.length;
    churn();
    expect([exact.writes.length, exact.closes, exact.backlog]).toEqual([3, 1, first + added + updated]);
    expect([short.writes.length, short.closes, short.backlog]).toEqual([2, 1, first + added]);
    expect(t.logger.lines.slice(logged).filter((l) => l.line === 'warn events subscriber dropped: it does not read what it is sent').map((l) => l.fields)).toEqual([
      { pid: process.pid, uid: 0, unread: short.backlog, limit: added + updated - 1 },
      { pid: process.pid, uid: 0, unread: exact.backlog, limit: added + updated },
    ]);
    // Dropped: nothing more is written, however much changes.
    churn();
    expect([exact.writes.length, exact.closes, short.writes.length, short.closes]).toEqual([3, 1, 2, 1]);
    // The connection closed (what it calls then): nothing more is written either.
    expect(measure.writes).toHaveLength(4);
    expect(measure.closes).toBe(0);
  });

  it('made without options or logger: reports version unknown and when it was made, and answers failures all the same', async () => {
    const view = t.container.get<ContainerView>(ContainerView);
    const before = Date.now();
    const bare = new ExtensionHandler(view, undefined, undefined);
    const after = Date.now();
    const facts = { socket: undefined, allowUids: [], peers: [] };
    const peer = { pid: process.pid, uid: 0, gid: 0 };
    const status = readExtension((await bare.answer(extensionRequest({ v: 1, op: 'status' }), facts, peer)).bytes);
    const server = (JSON.parse(status.payload) as { server: { version: string; startedAt: string; socket: unknown } }).server;
    expect([status.status, server.version, server.socket]).toEqual([0, 'unknown', null]);
    expect(Date.parse(server.startedAt)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(server.startedAt)).toBeLessThanOrEqual(after);
    const failed = readExtension((await bare.answer(extensionRequest({ v: 1, op: 'show', name: 'ab12' }), facts, peer)).bytes);
    expect(failed.status).toBe(-errnoTruth('ENOTUNIQ'));
  });
});
