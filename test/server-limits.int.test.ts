/**
 * The server under clients that do not play along: a client that shuts down
 * its writing side still gets every answer; connections that never send a
 * complete request are closed after the idle timeout; an allowed non-root
 * uid holding many connections can never lock root (pmcd's agents) out.
 * Real unix sockets, a real namespace sandbox, real uid-65534 clients.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Container } from 'inversify';
import { createCrootContainer } from '../core/create-container.js';
import { EngineRegistry } from '../core/registry/engine-registry.js';
import { IpcType, PduType, decodeContainer, encodeContainer, encodeStart } from '../core/protocol/root-pdus.js';
import { processServiceModule } from '../core/process/process-service-module.js';
import { RootServer, RootServerOptions } from '../core/server/root-server.js';
import { staticEngineModule } from '../engines/static/index.js';
import { nativeModule } from '../native/index.js';
import { describeWith, probes } from './support/components.js';
import { eventually } from './support/outcomes.js';
import { startSandbox, type Sandbox } from './support/sandbox.js';

const NOBODY = 65534;

/** The sandbox's cgroup as the kernel shows it (memory hierarchy on this cgroup-v1 host), read by the test. */
function kernelCgroup(pid: number): string {
  const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .split('\n')
    .find((l) => l.split(':')[1]?.split(',').includes('memory'));
  return (line as string).split(':').slice(2).join(':').replace(/^\//, '');
}

/** Collects every PDU a connection receives, framed by length, until the server closes it. */
class Collector {
  readonly pdus: Buffer[] = [];
  closed = false;
  private buf = Buffer.alloc(0);
  constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 8 && this.buf.length >= this.buf.readInt32LE(4)) {
        const len = this.buf.readInt32LE(4);
        this.pdus.push(Buffer.from(this.buf.subarray(0, len)));
        this.buf = this.buf.subarray(len);
      }
    });
    socket.on('close', () => (this.closed = true));
    // Half-open on our side: the server's end of stream is its close.
    socket.on('end', () => {
      this.closed = true;
      socket.destroy();
    });
    socket.on('error', () => undefined);
  }
  static async open(path: string): Promise<Collector> {
    const socket = createConnection({ path, allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const c = new Collector(socket);
    await eventually(async () => (c.pdus.length >= 1 ? true : undefined), 5000);
    return c;
  }
}

/**
 * A uid-65534 process holding connections on command. Reads lines on stdin:
 * `open N complete` (connect, ask one PROCESSID, keep the connection) or
 * `open N silent` (connect, send nothing); prints `answered K` and `closed K`.
 */
const HOLDER = `
const net = require('net');
const path = process.argv[1];
const req = Buffer.from(process.argv[2], 'hex');
let next = 0;
const rl = require('readline').createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const [cmd, n, kind] = line.split(' ');
  if (cmd !== 'open') return;
  for (let i = 0; i < Number(n); i++) {
    const k = next++;
    const s = net.createConnection(path);
    let bytes = 0;
    s.on('data', (d) => {
      bytes += d.length;
      if (kind === 'complete' && bytes >= 24 && bytes - d.length < 24) s.write(req);
      if (bytes >= 48) console.log('answered ' + k);
    });
    s.on('error', () => {});
    s.on('close', () => console.log('closed ' + k));
  }
});
`;

class Holder {
  readonly answered = new Set<number>();
  readonly closed = new Set<number>();
  constructor(private readonly child: ChildProcess) {
    let rest = '';
    child.stdout?.on('data', (d: Buffer) => {
      rest += d.toString();
      const lines = rest.split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        const [what, k] = line.split(' ');
        (what === 'answered' ? this.answered : this.closed).add(Number(k));
      }
    });
  }
  static start(socketPath: string, name: string): Holder {
    const request = encodeContainer(PduType.PROCESSID_REQ, name).toString('hex');
    const child = spawn('setpriv', ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', process.execPath, '-e', HOLDER, socketPath, request], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    return new Holder(child);
  }
  open(n: number, kind: 'complete' | 'silent'): void {
    this.child.stdin?.write(`open ${n} ${kind}\n`);
  }
  stop(): void {
    this.child.kill('SIGKILL');
  }
}

describeWith('root', probes.root, 'RootServer under uncooperative clients', () => {
  let dir: string;
  let sandbox: Sandbox;
  const servers: Array<{ container: Container; server: RootServer }> = [];
  const holders: Holder[] = [];
  const sockets: Socket[] = [];
  /** The server of the test running now. */
  let server: RootServer;
  let sock: string;

  /** A server of the test's own, with these limits, answering for a declared sandbox `sbx`. */
  async function serve(limits: RootServerOptions): Promise<void> {
    sock = join(dir, `root-${servers.length}.socket`);
    const container = createCrootContainer({
      config: { allowUids: [0, NOBODY], socketMode: 0o777, staticContainers: [{ name: 'sbx', pid: sandbox.pid }] },
      modules: [nativeModule, staticEngineModule, processServiceModule],
    });
    container.bind<RootServerOptions>(RootServerOptions).toConstantValue(limits);
    container.bind(RootServer).toSelf().inSingletonScope();
    await container.get<EngineRegistry>(EngineRegistry).start();
    server = container.get(RootServer);
    await server.listen(sock);
    servers.push({ container, server });
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'croot-t-limits-'));
    chmodSync(dir, 0o711);
    sandbox = await startSandbox();
  });

  afterAll(async () => {
    await sandbox?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  afterEach(async () => {
    for (const h of holders.splice(0)) h.stop();
    for (const s of sockets.splice(0)) s.destroy();
    for (const { container, server: srv } of servers.splice(0)) {
      await srv.close();
      await container.get<EngineRegistry>(EngineRegistry).stop();
    }
  });

  /** Limits small enough to reach, with an idle timeout far beyond any test's length. */
  const small = { maxConnections: 6, reservedForRoot: 2, maxConnectionsPerUid: 3, idleTimeoutMs: 60000 };

  it('answers every request a client sent before shutting down its writing side, then closes', async () => {
    await serve(small);
    const c = await Collector.open(sock);
    const kinds = [PduType.HOSTNAME_REQ, PduType.PROCESSID_REQ, PduType.CGROUPNAME_REQ];
    const requests = Array.from({ length: 60 }, (_, i) => encodeContainer(kinds[i % 3] as number, 'sbx', { trailingNul: i % 2 === 0 }));
    c.socket.end(Buffer.concat(requests));
    await eventually(async () => (c.closed ? true : undefined));
    const replies = c.pdus.slice(1).map((b) => decodeContainer(b));
    expect(replies).toHaveLength(60);
    const cgroup = kernelCgroup(sandbox.pid);
    replies.forEach((r, i) => {
      const want = [sandbox.hostname, '', cgroup][i % 3];
      expect([i, r.status, r.pid, r.name]).toEqual([i, 0, sandbox.pid, want]);
    });
  });

  it('answers every request after one whose reply carries fds (a pipe STARTPMDA), also when the client half-closed', async () => {
    await serve(small);
    const requests = [
      encodeContainer(PduType.PROCESSID_REQ, 'sbx'),
      encodeStart(PduType.STARTPMDA_REQ, { label: 'true', args: '/bin/true', ipctype: IpcType.PIPE }),
      ...Array.from({ length: 20 }, () => encodeContainer(PduType.PROCESSID_REQ, 'sbx')),
    ];
    // A client that reads with recvmsg(2) and takes the fds, as PCP's does; it shuts down its side after writing.
    const script = [
      'import socket, struct, sys, array',
      's = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(sys.argv[1])',
      's.sendall(bytes.fromhex(sys.argv[2])); s.shutdown(socket.SHUT_WR)',
      'buf = b""; out = []; fds = 0',
      'while True:',
      '    d, anc, flags, addr = s.recvmsg(65536, socket.CMSG_SPACE(64))',
      '    for level, kind, data in anc:',
      '        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS: fds += len(data) // 4',
      '    if not d: break',
      '    buf += d',
      '    while len(buf) >= 8 and len(buf) >= struct.unpack_from("<i", buf, 4)[0]:',
      '        n = struct.unpack_from("<i", buf, 4)[0]; out.append(struct.unpack_from("<iiii", buf, 0) + (struct.unpack_from("<i", buf, 16)[0] if n >= 20 else 0,)); buf = buf[n:]',
      'print(fds, " ".join("%x/%d/%d" % (t, st, pid) for t, l, st, v, pid in out[1:]))',
    ].join('\n');
    // Asynchronously: the server answering it runs in this very process.
    const { stdout } = await promisify(execFile)('python3', ['-c', script, sock, Buffer.concat(requests).toString('hex')], { encoding: 'utf8', timeout: 30000 });
    const [fds, ...all] = stdout.trim().split(' ');
    // Both pipe ends came with the STARTPMDA reply, and every reply after it came too.
    expect(Number(fds)).toBe(2);
    expect(all).toHaveLength(22);
    expect(all[0]).toBe(`9004/0/${sandbox.pid}`);
    expect(all[1]).toMatch(/^9008\/0\/[1-9]\d*$/);
    expect(all.slice(2)).toEqual(Array.from({ length: 20 }, () => `9004/0/${sandbox.pid}`));
  });

  it('closes a connection that sends nothing, or half a request, for the idle timeout, and keeps one that asked', async () => {
    await serve({ ...small, idleTimeoutMs: 400 });
    const silent = await Collector.open(sock);
    const partial = await Collector.open(sock);
    partial.socket.write(encodeContainer(PduType.PROCESSID_REQ, 'sbx').subarray(0, 10));
    const asked = await Collector.open(sock);
    asked.socket.write(encodeContainer(PduType.PROCESSID_REQ, 'sbx'));
    await eventually(async () => (silent.closed && partial.closed ? true : undefined));
    // Several idle periods later, the one that completed a request is still served.
    await new Promise((r) => setTimeout(r, 1500));
    expect(asked.closed).toBe(false);
    asked.socket.write(encodeContainer(PduType.PROCESSID_REQ, 'sbx'));
    await eventually(async () => (asked.pdus.length === 3 ? true : undefined));
    expect(decodeContainer(asked.pdus[2] as Buffer)).toMatchObject({ status: 0, pid: sandbox.pid });
    sockets.push(asked.socket);
  });

  it('never lets a non-root uid with many connections keep root out, and drops its own oldest idle one first', async () => {
    await serve(small);
    const holder = Holder.start(sock, 'sbx');
    holders.push(holder);
    holder.open(3, 'complete');
    await eventually(async () => (holder.answered.size === 3 ? true : undefined));
    // Its fourth connection displaces its own oldest idle one (per-uid limit 3).
    holder.open(1, 'complete');
    await eventually(async () => (holder.answered.has(3) && holder.closed.size === 1 ? true : undefined));
    expect([...holder.closed]).toEqual([0]);
    // Root fills the rest (6 in all), then one more: it displaces a non-root idle connection, never fails.
    const roots: Collector[] = [];
    for (let i = 0; i < 4; i++) {
      const c = await Collector.open(sock);
      c.socket.write(encodeContainer(PduType.PROCESSID_REQ, 'sbx'));
      await eventually(async () => (c.pdus.length === 2 ? true : undefined));
      roots.push(c);
      sockets.push(c.socket);
    }
    expect(roots.map((c) => decodeContainer(c.pdus[1] as Buffer).pid)).toEqual(roots.map(() => sandbox.pid));
    expect(holder.closed.size).toBeGreaterThanOrEqual(2);
    // The non-root uid may not take root's reserved room nor displace root: its newcomers displace its own.
    holder.open(5, 'silent');
    await new Promise((r) => setTimeout(r, 300));
    expect(roots.every((c) => !c.closed)).toBe(true);
    const late = await Collector.open(sock);
    late.socket.write(encodeContainer(PduType.PROCESSID_REQ, 'sbx'));
    await eventually(async () => (late.pdus.length === 2 ? true : undefined));
    expect(decodeContainer(late.pdus[1] as Buffer)).toMatchObject({ status: 0, pid: sandbox.pid });
    sockets.push(late.socket);
    expect(server.connectionCount).toBeLessThanOrEqual(6);
  });

  it('keeps a flood of silent connections from any uid from filling the server', async () => {
    await serve(small);
    const holder = Holder.start(sock, 'sbx');
    holders.push(holder);
    holder.open(40, 'silent');
    await eventually(async () => (holder.closed.size >= 37 ? true : undefined));
    expect(server.connectionCount).toBeLessThanOrEqual(3);
    const c = await Collector.open(sock);
    c.socket.write(encodeContainer(PduType.PROCESSID_REQ, 'sbx'));
    await eventually(async () => (c.pdus.length === 2 ? true : undefined));
    expect(decodeContainer(c.pdus[1] as Buffer)).toMatchObject({ status: 0, pid: sandbox.pid });
    sockets.push(c.socket);
  });
});
