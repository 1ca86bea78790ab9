/**
 * croot's server at accept and around it, over real unix sockets: the
 * allow-list checked against the peer's credentials as the kernel gives
 * them (SO_PEERCRED of real child processes run as `nobody`, and of a
 * process whose executable is named pmcd), the connection caps and who is
 * displaced, the idle timeout, the socket's life (directory, mode, stale
 * and live sockets, removal at close).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describeWith, probes } from '../../test/support/components.js';
import { RawRootClient } from '../../test/support/raw-root-client.js';
import { PCP_INFO, T, containerRequest, readContainer, readStart, readStop, startRequest, stopRequest } from '../../test/support/root-pdu-bytes.js';
import { FixtureEngine, startTestServer, type TestServer } from '../../test/support/server-fixture.js';
import { errnoTruth } from '../../test/support/truth.js';
import { ConnectionSocketFactory, ReplyCache } from '../host/host-services.js';
import { raiseFdLimit } from '../../test/support/native-host.js';
import { openFds } from '../../test/support/sandbox.js';
import { removeStaleSocket } from './root-server.js';

const NOBODY = 65534;
/** Connects, prints what it got first (INFO or a close), then holds the connection until its stdin closes. */
const CLIENT = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
data = b''
while len(data) < 24:
    chunk = s.recv(24 - len(data))
    if not chunk: break
    data += chunk
print(('info ' + data.hex()) if len(data) == 24 else 'closed', flush=True)
sys.stdin.read()
`;

/** A client in a process of its own, whose executable the server sees through /proc/PID/exe. */
class PeerProcess {
  private readonly lines: string[] = [];
  private readonly waiters: (() => void)[] = [];
  private constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (l) => {
      this.lines.push(l);
      for (const w of this.waiters.splice(0)) w();
    });
  }
  static start(path: string, exe: string): PeerProcess {
    return new PeerProcess(spawn(exe, ['-S', '-c', CLIENT, path], { cwd: '/', stdio: ['pipe', 'pipe', 'inherit'] }));
  }
  get pid(): number {
    return this.child.pid as number;
  }
  async line(): Promise<string> {
    while (this.lines.length === 0) await new Promise<void>((r) => this.waiters.push(r));
    return this.lines.shift() as string;
  }
  stop(): void {
    this.child.kill('SIGKILL');
  }
}

/** How long a reply on a local socket may take: a broken server fails the test in this, not in Jest's minute. */
const REPLY_MS = 2000;

describeWith('root', () => probes.root() ?? probes.native(), 'RootServer at accept', () => {
  const servers: TestServer[] = [];
  const peers: PeerProcess[] = [];
  const clients: RawRootClient[] = [];
  async function serve(options: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
    const t = await startTestServer({ dirMode: 0o755, ...options, config: { socketMode: 0o777, ...options.config } });
    servers.push(t);
    return t;
  }
  function peer(t: TestServer, exe: string): PeerProcess {
    const p = PeerProcess.start(t.socket, exe);
    peers.push(p);
    return p;
  }
  async function root(t: TestServer): Promise<RawRootClient> {
    const c = await RawRootClient.open(t.socket, false);
    clients.push(c);
    expect(await c.next(REPLY_MS)).toEqual(PCP_INFO);
    return c;
  }
  /** One answered request: the server has read everything sent before it on every connection. */
  async function roundTrip(c: RawRootClient): Promise<void> {
    await c.write(containerRequest(T.PROCESSID_REQ, 9, 'x'));
    expect(readContainer((await c.next(REPLY_MS)) as Buffer)).toMatchObject({ type: T.PROCESSID, pid: 9 });
  }

  afterEach(async () => {
    for (const p of peers.splice(0)) p.stop();
    for (const c of clients.splice(0)) c.close();
    for (const t of servers.splice(0)) await t.stop();
  });

  async function nobody(t: TestServer): Promise<RawRootClient> {
    const c = await RawRootClient.open(t.socket, false, NOBODY);
    clients.push(c);
    return c;
  }

  it('closes a uid not on the allow-list before any byte, as SO_PEERCRED names it', async () => {
    const t = await serve();
    expect(await (await nobody(t)).next(REPLY_MS)).toBeUndefined();
    expect(t.server.stats()).toEqual({ connections: 0, accepted: 0, refused: 1, evicted: 0 });
    expect(t.logger.lines.find((l) => l.line === 'warn connection refused: uid not allowed')?.fields).toEqual({ uid: NOBODY, pid: process.pid });
    await root(t);
    expect(t.server.stats()).toMatchObject({ connections: 1, accepted: 1, refused: 1 });
  });

  it('admits a uid once allowed, and closes its connections when it is taken off', async () => {
    const t = await serve();
    t.server.setAllowedUids([0, NOBODY]);
    expect(t.server.allowedUids).toEqual([0, NOBODY]);
    const n = await nobody(t);
    expect(await n.next(REPLY_MS)).toEqual(PCP_INFO);
    const c = await root(t);
    expect(t.server.setAllowedUids([0])).toBe(1);
    expect(await n.next(REPLY_MS)).toBeUndefined();
    expect(t.logger.lines.filter((l) => l.line === 'warn connection closed: uid no longer allowed').map((l) => l.fields)).toEqual([{ uid: NOBODY, pid: process.pid }]);
    await roundTrip(c);
    expect(t.server.connectionCount).toBe(1);
  });

  it("caps a non-root uid's connections: its idle one is dropped for a newcomer, a busy one is not", async () => {
    const t = await serve({ config: { allowUids: [0, NOBODY] }, server: { maxConnectionsPerUid: 1 } });
    expect(t.server.connectionLimits).toEqual({ maxConnections: 1024, maxConnectionsPerUid: 1, reservedForRoot: 64, idleTimeoutMs: 10000 });
    const first = await nobody(t);
    expect(await first.next(REPLY_MS)).toEqual(PCP_INFO);
    const second = await nobody(t);
    expect(await second.next(REPLY_MS)).toEqual(PCP_INFO);
    expect(await first.next(REPLY_MS)).toBeUndefined();
    expect(t.server.stats()).toMatchObject({ accepted: 2, evicted: 1, refused: 0 });
    // Half a request: the server holds an incomplete request, so the connection is not idle.
    await second.write(containerRequest(T.PROCESSID_REQ, 0, 'x').subarray(0, 4));
    await roundTrip(await root(t));
    expect(await (await nobody(t)).next(REPLY_MS)).toBeUndefined();
    expect(t.server.stats()).toMatchObject({ accepted: 3, evicted: 1, refused: 1 });
    // Who was dropped and who refused, for the operator.
    expect(t.logger.lines.filter((l) => l.line === 'warn idle connection dropped for a new one').map((l) => l.fields)).toEqual([{ uid: NOBODY, pid: process.pid }]);
    expect(t.logger.lines.filter((l) => l.line === 'warn connection refused: limit reached').map((l) => l.fields)).toEqual([
      { uid: NOBODY, pid: process.pid, reason: expect.stringContaining(`uid ${NOBODY}`) },
    ]);
  });

  it('keeps reservedForRoot slots for root, and at the cap drops the oldest idle connection', async () => {
    const t = await serve({ config: { allowUids: [0, NOBODY], connectionLimits: { maxConnections: 2, reservedForRoot: 1 } } });
    const busy = await root(t);
    await busy.write(containerRequest(T.PROCESSID_REQ, 0, 'x').subarray(0, 10));
    const oldestIdle = await root(t);
    await roundTrip(oldestIdle);
    // Two root connections: the cap is reached for everybody; nobody may not displace root's.
    expect(await (await nobody(t)).next(REPLY_MS)).toBeUndefined();
    const third = await root(t);
    expect(await oldestIdle.next(REPLY_MS)).toBeUndefined();
    expect(t.server.stats()).toMatchObject({ evicted: 1, refused: 1 });
    // The busy connection was kept: the rest of its request gets its answer.
    await busy.write(containerRequest(T.PROCESSID_REQ, 0, 'x').subarray(10));
    expect(readContainer((await busy.next(REPLY_MS)) as Buffer)).toMatchObject({ type: T.PROCESSID, status: -12399 });
    await roundTrip(third);
  });

  it('drops, at the cap, the connection idle the longest, not the one connected first', async () => {
    const t = await serve({ server: { maxConnections: 2 } });
    const first = await root(t);
    const second = await root(t);
    await roundTrip(second);
    await roundTrip(first);
    const third = await root(t);
    expect(await second.next(REPLY_MS)).toBeUndefined();
    await roundTrip(first);
    await roundTrip(third);
  });

  it('counts a request its connection answered by itself (a reply given again) as activity when it picks whom to drop', async () => {
    // A container whose init process is this test's own: its pidfd holds it for the reply cache.
    const engine = new FixtureEngine('fx', [{ engine: 'fx', id: 'ee11ff220000', names: ['web'], running: true, pid: process.pid }]);
    const t = await serve({ server: { maxConnections: 2 }, engines: [engine] });
    const ask = async (c: RawRootClient): Promise<void> => {
      await c.write(containerRequest(T.PROCESSID_REQ, 0, 'web'));
      expect(readContainer((await c.next(REPLY_MS)) as Buffer)).toMatchObject({ type: T.PROCESSID, status: 0, pid: process.pid });
    };
    const first = await root(t);
    const second = await root(t);
    await ask(first);
    await roundTrip(second);
    const cache = t.container.get<ReplyCache>(ReplyCache);
    const before = cache.answered().pid;
    // Answered by first's socket alone, after second's last request.
    await ask(first);
    expect(cache.answered().pid - before).toBe(1);
    const third = await root(t);
    expect(await second.next(REPLY_MS)).toBeUndefined();
    await ask(first);
    await roundTrip(third);
  });

  it('never drops a pmcd connection (a process whose executable is pmcd), even idle', async () => {
    const t = await serve({ server: { maxConnections: 1 } });
    const bin = mkdtempSync(join(tmpdir(), 'croot-pmcd-'));
    try {
      linkSync('/usr/bin/python3.11', join(bin, 'pmcd'));
      const pmcd = peer(t, join(bin, 'pmcd'));
      expect(await pmcd.line()).toMatch(/^info /);
      const c = await RawRootClient.open(t.socket, false);
      clients.push(c);
      expect(await c.next(REPLY_MS)).toBeUndefined();
      expect(t.server.stats()).toMatchObject({ connections: 1, refused: 1, evicted: 0 });
      expect(t.logger.lines.find((l) => l.line === 'debug client connected')?.fields).toEqual({ pid: pmcd.pid, uid: 0, pmcd: true });
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it('closes a connection that sends no complete request within idleTimeoutMs, but not one that has asked', async () => {
    const t = await serve({ server: { idleTimeoutMs: 100 } });
    const asked = await root(t);
    await roundTrip(asked);
    const silent = await root(t);
    const halfway = await root(t);
    await roundTrip(halfway);
    await halfway.write(containerRequest(T.PROCESSID_REQ, 0, 'x').subarray(0, 20));
    expect(await silent.next(REPLY_MS)).toBeUndefined();
    expect(await halfway.next(REPLY_MS)).toBeUndefined();
    // `asked` went quiet before `silent` connected: its timer has fired too, and it is still served.
    await roundTrip(asked);
  });

  it('reads ahead at most maxQueuedRequests, and still answers all of a long pipeline in order', async () => {
    const t = await serve({ server: { maxQueuedRequests: 2 } });
    const c = await root(t);
    // Every third a STOPPMDA, answered through a promise (-ENOTSUP here): the requests behind it queue up meanwhile.
    const request = (i: number): Buffer => (i % 3 === 0 ? stopRequest(i + 1, true) : containerRequest(T.PROCESSID_REQ, i + 1, 'nosuch'));
    await c.write(Buffer.concat(Array.from({ length: 40 }, (_, i) => request(i))));
    const pids: number[] = [];
    for (let i = 0; i < 40; i++) pids.push(((await c.next(REPLY_MS)) as Buffer).readInt32LE(16));
    expect(pids).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
  });

  it('answers STARTPMDA and STOPPMDA with -ENOTSUP when the process services are not loaded', async () => {
    const t = await serve();
    const c = await root(t);
    await c.write(startRequest(1, 'label', '/bin/true'));
    expect(readStart((await c.next(REPLY_MS)) as Buffer)).toMatchObject({ type: T.STARTPMDA, bytes: 104, status: -errnoTruth('EOPNOTSUPP'), pid: -1 });
    await c.write(stopRequest(4242, true));
    expect(readStop((await c.next(REPLY_MS)) as Buffer)).toMatchObject({ type: T.STOPPMDA, bytes: 32, status: -errnoTruth('EOPNOTSUPP'), pid: 4242 });
  });

  it("reads Node's own sockets when no ConnectionSocketFactory is bound: pipelined requests, then the client's half-close", async () => {
    const t = await serve({ nodeSockets: true });
    const c = await root(t);
    await roundTrip(c);
    await c.write(Buffer.concat([containerRequest(T.PROCESSID_REQ, 5, 'x'), containerRequest(T.PROCESSID_REQ, 6, 'y')]));
    c.socket.end();
    const pids: number[] = [];
    for (let reply = await c.next(REPLY_MS); reply !== undefined; reply = await c.next(REPLY_MS)) pids.push(readContainer(reply).pid);
    expect(pids).toEqual([5, 6]);
    expect(t.server.stats()).toMatchObject({ accepted: 1 });
  });

  it('adopts each connection it admits into the native socket, and refuses one it cannot take over (EMFILE from the kernel for the duplicate), then serves the next', async () => {
    const t = await serve();
    // The bound factory, counted: the server asks it once per admitted connection.
    const factory = t.container.get<ConnectionSocketFactory>(ConnectionSocketFactory);
    const adopt = factory.adopt.bind(factory);
    let adopted = 0;
    factory.adopt = (fd: number) => {
      adopted += 1;
      return adopt(fd);
    };
    await roundTrip(await root(t));
    expect(adopted).toBe(1);
    // Leave this process exactly two free fd slots: the client's socket and the accepted one. The duplicate then fails.
    const [soft, hard] = execFileSync('prlimit', ['--pid', String(process.pid), '--nofile', '--output', 'SOFT,HARD', '--noheadings'], { encoding: 'utf8' }).trim().split(/\s+/);
    const open = new Set([...openFds()].map((entry) => Number(entry.split(' ')[0])));
    let limit = 0;
    for (let free = 0; free < 2; limit++) if (!open.has(limit)) free++;
    let starved: RawRootClient | undefined;
    try {
      execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${limit}:${hard}`]);
      starved = await RawRootClient.open(t.socket, false);
      expect(await starved.next(REPLY_MS)).toBeUndefined();
    } finally {
      // Back in this process first (setrlimit needs no fd), then exactly as it was.
      raiseFdLimit();
      starved?.close();
      execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${soft}:${hard}`]);
    }
    expect(adopted).toBe(2);
    expect(t.logger.lines.filter((l) => l.line === 'warn connection refused: cannot take it over').map((l) => l.fields)).toEqual([
      { uid: 0, pid: process.pid, error: expect.stringMatching(/EMFILE/) },
    ]);
    expect(t.server.stats()).toMatchObject({ accepted: 1, refused: 1 });
    await roundTrip(await root(t));
    expect(t.server.stats()).toMatchObject({ accepted: 2, refused: 1 });
  });

  it('refuses every connection when it cannot read peer credentials, and says so once', async () => {
    const t = await serve({ withoutNative: true });
    for (let i = 0; i < 2; i++) {
      const c = await RawRootClient.open(t.socket, false);
      clients.push(c);
      expect(await c.next(REPLY_MS)).toBeUndefined();
    }
    expect(t.logger.lines.filter((l) => l.line.startsWith('error cannot read peer credentials'))).toHaveLength(1);
    expect(t.server.stats()).toMatchObject({ connections: 0, accepted: 0 });
  });
});

describeWith('root', () => probes.root() ?? probes.native(), 'RootServer socket', () => {
  it('creates its directory 0700 and the socket with the mode asked, and removes the socket at close', async () => {
    const t = await startTestServer({ config: { socketMode: 0o750, allowUids: [0, NOBODY] } });
    try {
      expect(statSync(join(t.dir, 'pmcd')).mode & 0o7777).toBe(0o700);
      expect(t.logger.lines.some((l) => l.line.startsWith('warn socket directory'))).toBe(false);
      expect(statSync(t.socket).mode & 0o777).toBe(0o750);
      // The operator's record of what is served: the path, the mode as the kernel has it, who may connect.
      expect(t.logger.lines.filter((l) => l.line === 'info listening').map((l) => l.fields)).toEqual([
        { socket: t.socket, mode: (statSync(t.socket).mode & 0o777).toString(8), allowUids: `0,${NOBODY}` },
      ]);
      expect(t.server.path).toBe(t.socket);
      await expect(t.server.listen(t.socket)).rejects.toMatchObject({ code: 'ERR_CONFIG' });
      // One socket per server: a second path is refused, not bound.
      const second = join(t.dir, 'second.socket');
      await expect(t.server.listen(second)).rejects.toMatchObject({ code: 'ERR_CONFIG', message: expect.stringContaining(t.socket) });
      expect(existsSync(second)).toBe(false);
      expect(readdirSync(join(t.dir, 'pmcd'))).toEqual(['root.socket']);
      const c = await RawRootClient.open(t.socket);
      await t.server.close();
      expect(t.server.path).toBeUndefined();
      expect(await c.next(REPLY_MS)).toBeUndefined();
      expect(() => statSync(t.socket)).toThrow();
      expect(t.logger.lines.filter((l) => l.line === 'info closed').map((l) => l.fields)).toEqual([{ socket: t.socket }]);
      await t.server.close();
    } finally {
      await t.stop();
    }
  });

  it('warns about a directory open to others', async () => {
    const t = await startTestServer({ dirMode: 0o755 });
    await t.stop();
    expect(t.logger.lines.find((l) => l.line === 'warn socket directory is reachable by others; PCP keeps it 0700')?.fields).toEqual({ dir: t.dir, mode: '755' });
    const sticky = await startTestServer({ dirMode: 0o1777 });
    await sticky.stop();
    expect(sticky.logger.lines.some((l) => l.line.startsWith('warn socket directory'))).toBe(false);
    const closed = await startTestServer({ dirMode: 0o700 });
    await closed.stop();
    expect(closed.logger.lines.some((l) => l.line.startsWith('warn socket directory'))).toBe(false);
  });

  it('refuses a live socket and a path that is not a socket; replaces a stale one', async () => {
    const t = await startTestServer();
    const dir = mkdtempSync(join(tmpdir(), 'croot-stale-'));
    try {
      await expect(removeStaleSocket(t.socket)).rejects.toMatchObject({ code: 'ERR_CONFIG', status: -errnoTruth('EBUSY'), message: expect.stringContaining(t.socket) });
      // Its probe connection is not left open on the live server.
      for (let i = 0; i < 300 && t.server.connectionCount > 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(t.server.stats()).toMatchObject({ connections: 0, accepted: 1 });
      const file = join(dir, 'file');
      writeFileSync(file, '');
      await expect(removeStaleSocket(file)).rejects.toMatchObject({ code: 'ERR_CONFIG', message: expect.stringContaining(file) });
      await removeStaleSocket(join(dir, 'none'));
      // A socket nobody listens on: moved away from its server before the server closed (and unlinked its own path).
      const stale = join(dir, 'stale.socket');
      const gone = createServer();
      await new Promise<void>((resolve) => gone.listen(join(dir, 'live.socket'), resolve));
      renameSync(join(dir, 'live.socket'), stale);
      await new Promise<void>((resolve) => gone.close(() => resolve()));
      expect(statSync(stale).isSocket()).toBe(true);
      await removeStaleSocket(stale);
      expect(() => statSync(stale)).toThrow();
    } finally {
      await t.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects a path the kernel cannot bind, and can listen afterwards', async () => {
    const t = await startTestServer();
    await t.server.close();
    try {
      // sockaddr_un's sun_path holds 108 bytes with the NUL (unix(7)): a longer path is refused, never cut and bound.
      const long = join(t.dir, 'x'.repeat(200));
      await expect(t.server.listen(long)).rejects.toMatchObject({ code: 'ERR_CONFIG', status: -errnoTruth('ENAMETOOLONG'), message: expect.stringContaining(long) });
      expect(readdirSync(t.dir).filter((name) => name.startsWith('xxx'))).toEqual([]);
      expect(t.server.stats().connections).toBe(0);
      // The longest path that fits (107 bytes and the NUL) is bound as it is.
      const path = join(t.dir, 'y'.repeat(107 - Buffer.byteLength(t.dir) - 1));
      expect(Buffer.byteLength(path)).toBe(107);
      await expect(t.server.listen(path)).resolves.toBe(path);
      expect(statSync(path).isSocket()).toBe(true);
      const c = await RawRootClient.open(path, false);
      expect(await c.next(REPLY_MS)).toEqual(PCP_INFO);
      c.close();
      // And when its own name is a single byte.
      await t.server.close();
      const deep = join(t.dir, 'd'.repeat(107 - Buffer.byteLength(t.dir) - 3), 'r');
      await expect(t.server.listen(deep)).resolves.toBe(deep);
      expect(statSync(deep).isSocket()).toBe(true);
    } finally {
      await t.stop();
    }
  });

  it('removes at close only its own socket: a server that took the path since keeps it and still answers', async () => {
    const first = await startTestServer();
    const second = await startTestServer();
    try {
      // Our socket file removed, and the path bound again by another server (a new crootd).
      rmSync(first.socket);
      await second.server.close();
      await second.server.listen(first.socket);
      const theirs = statSync(first.socket);
      await first.server.close();
      const now = statSync(first.socket);
      expect([now.dev, now.ino]).toEqual([theirs.dev, theirs.ino]);
      const c = await RawRootClient.open(first.socket, false);
      expect(await c.next(REPLY_MS)).toEqual(PCP_INFO);
      c.close();
      // The second server removes its own socket, and leaves no other name in the directory.
      await second.server.close();
      expect(readdirSync(join(first.dir, 'pmcd'))).toEqual([]);
    } finally {
      await first.stop();
      await second.stop();
    }
  });

  it('refuses with -EBUSY a path another file takes while it binds, keeps that file, leaves no other name, and can listen afterwards', async () => {
    const t = await startTestServer();
    await t.server.close();
    const dir = join(t.dir, 'pmcd');
    const path = join(dir, 'raced.socket');
    try {
      // listen() checks the path, then binds: the file is written after the check (listen's first await), before the bind.
      const listening = t.server.listen(path);
      writeFileSync(path, 'theirs');
      await expect(listening).rejects.toMatchObject({ code: 'ERR_CONFIG', status: -errnoTruth('EBUSY'), message: expect.stringContaining(path) });
      expect(readFileSync(path, 'utf8')).toBe('theirs');
      expect(readdirSync(dir)).toEqual(['raced.socket']);
      expect(t.server.path).toBeUndefined();
      const after = join(dir, 'after.socket');
      await expect(t.server.listen(after)).resolves.toBe(after);
      const c = await RawRootClient.open(after, false);
      expect(await c.next(REPLY_MS)).toEqual(PCP_INFO);
      c.close();
    } finally {
      await t.stop();
    }
  });

  it("rejects a socket path with a trailing slash with the kernel's error for link(2) there, not as a path taken meanwhile", async () => {
    const t = await startTestServer();
    await t.server.close();
    const dir = join(t.dir, 'pmcd');
    try {
      // What link(2) says for a new name with a trailing slash, asked of the kernel with a file of the test's own.
      writeFileSync(join(t.dir, 'file'), '');
      let kernel: string | undefined;
      try {
        linkSync(join(t.dir, 'file'), join(t.dir, 'linked/'));
      } catch (err) {
        kernel = (err as NodeJS.ErrnoException).code;
      }
      expect(kernel).toMatch(/^E[A-Z]+$/);
      expect(kernel).not.toBe('EEXIST');
      await expect(t.server.listen(join(dir, 'root.socket/'))).rejects.toMatchObject({ code: kernel });
      // Nothing left behind: neither the socket nor the name it was bound under.
      expect(readdirSync(dir)).toEqual([]);
      const path = join(dir, 'root.socket');
      await expect(t.server.listen(path)).resolves.toBe(path);
    } finally {
      await t.stop();
    }
  });

  it('leaves at close a socket path that another file has taken since', async () => {
    const t = await startTestServer();
    rmSync(t.socket);
    mkdirSync(t.socket);
    await t.server.close();
    expect(statSync(t.socket).isDirectory()).toBe(true);
    await t.stop();
  });

  it('makes its directory 0700 whatever the umask, and the directories above it that are missing', async () => {
    const umask = process.umask(0o277);
    const t = await startTestServer().finally(() => process.umask(umask));
    try {
      expect(statSync(join(t.dir, 'pmcd')).mode & 0o7777).toBe(0o700);
      await t.server.close();
      const deep = join(t.dir, 'a', 'b', 'root.socket');
      await expect(t.server.listen(deep)).resolves.toBe(deep);
      expect([join(t.dir, 'a'), join(t.dir, 'a', 'b')].map((d) => statSync(d).mode & 0o7777)).toEqual([0o700, 0o700]);
    } finally {
      await t.stop();
    }
  });

  it("rejects a socket path below a file with the kernel's error, and can listen afterwards", async () => {
    const t = await startTestServer();
    await t.server.close();
    try {
      const file = join(t.dir, 'file');
      writeFileSync(file, '');
      await expect(t.server.listen(join(file, 'root.socket'))).rejects.toMatchObject({ code: 'ENOTDIR' });
      const path = join(t.dir, 'after.socket');
      await expect(t.server.listen(path)).resolves.toBe(path);
    } finally {
      await t.stop();
    }
  });
});
