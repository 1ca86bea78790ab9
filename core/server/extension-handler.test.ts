/**
 * croot's protocol extension (docs/protocol.md, "croot's extension") over a
 * real socket: requests and replies built and read by the documented bytes
 * (test/support/root-pdu-bytes.ts), the documents' facts checked against
 * the kernel (the sandbox's hostname and cgroup, this process's pid and
 * uid) and against what the test itself sent, the `events` stream with
 * its bounded backlog.
 */
import { describeWith, probes } from '../../test/support/components.js';
import { RawRootClient } from '../../test/support/raw-root-client.js';
import { T, containerRequest, extensionRequest, headerBytes, readContainer, readExtension } from '../../test/support/root-pdu-bytes.js';
import { startSandbox, type Sandbox } from '../../test/support/sandbox.js';
import { FixtureEngine, startTestServer, type TestServer } from '../../test/support/server-fixture.js';
import { cgroupTruth, errnoTruth, hostnameTruth } from '../../test/support/truth.js';

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
    for (const [payload, status, code] of cases) {
      const reply = await ask(payload);
      expect([reply.status, reply.chunks, reply.doc.code, reply.doc.status]).toEqual([status, 1, code, status]);
      expect(typeof reply.doc.message).toBe('string');
    }
    const ambiguous = await ask({ v: 1, op: 'show', name: 'ab12' });
    expect(ambiguous.doc.message).toEqual(expect.stringContaining('ab12cd340000'));
    expect(ambiguous.doc.message).toEqual(expect.stringContaining('ab12ef560000'));
  });

  it('reports the server: version, pid, socket, start, allowed uids, peers, and the requests it answered by kind', async () => {
    const fresh = await startTestServer({ engines: [], config: { allowUids: [65534, 0] }, extension: { startedAt } });
    try {
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
        connections: { open: 2, peers: [{ pid: process.pid, uid: 0 }, { pid: process.pid, uid: 0 }] },
        requests: { total: 6, failed: 3, byKind: { extension: 2, hostname: 1, other: 1, pid: 2 } },
      });
      const uptime = (doc.server as { uptimeSeconds: number }).uptimeSeconds;
      expect(uptime).toBeGreaterThanOrEqual(7);
      expect(uptime).toBeLessThanOrEqual(Math.ceil((Date.now() - startedAt) / 1000));
      expect(Object.keys(doc).sort()).toEqual(['anchor', 'engines', 'schemaVersion', 'server']);
      // The kinds in alphabetical order, as `croot status --json` prints them.
      expect(Object.keys((doc.server as { requests: { byKind: object } }).requests.byKind)).toEqual(['extension', 'hostname', 'other', 'pid']);
    } finally {
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
});
