/**
 * PCP's requests to croot's server over a real unix socket, checked byte by
 * byte against PCP's layout (test/support/root-pdu-bytes.ts, written from
 * pmdaroot.h, not croot's codec), with the answers' truth from the kernel:
 * a real UTS-namespace sandbox (its hostname through nsenter, its cgroup
 * through /proc), real children started and killed through STARTPMDA and
 * STOPPMDA, watched in /proc.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { describeWith, probes } from '../../test/support/components.js';
import { RawRootClient } from '../../test/support/raw-root-client.js';
import {
  PCP_INFO,
  T,
  containerRequest,
  extensionRequest,
  headerBytes,
  readContainer,
  readExtension,
  readHeader,
  readStart,
  readStop,
  startRequest,
  stopRequest,
} from '../../test/support/root-pdu-bytes.js';
import { startSandbox, type Sandbox } from '../../test/support/sandbox.js';
import type { ContainerSink } from '../../core/registry/engine-contribution.js';
import { ReplyCache } from '../../core/host/host-services.js';
import { createCrootContainer } from '../create-container.js';
import { CrootError } from '../errors/croot-error.js';
import { FrameDecoder, type Frame } from '../protocol/frame-decoder.js';
import { ContainerProcessIdResolver } from '../registry/container-resolvers.js';
import { RootRequestHandler, type Reply } from './root-request-handler.js';
import { EngineRegistry } from '../registry/engine-registry.js';
import { ContainerModule } from 'inversify';
import { EngineContribution } from '../registry/engine-contribution.js';
import { FixtureEngine, LinesLogger, startTestServer, type TestServer } from '../../test/support/server-fixture.js';
import { Logger } from '../logging/logger.js';
import { cgroupTruth, errnoTruth, hostnameTruth } from '../../test/support/truth.js';

const PM_ERR_NOCONTAINER = -12399;

function procGone(pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true;
  }
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`never happened: ${what}`);
}

/** An engine that has started but not listed its containers yet: the test lists them through `sink`. */
class LateEngine extends FixtureEngine {
  constructor(id: string) {
    super(id, []);
  }
  override start(sink: ContainerSink): void {
    this.sink = sink;
  }
}

/** The server's request counts by kind, from croot's `status` extension request (docs/protocol.md). */
async function requestsByKind(c: RawRootClient): Promise<Record<string, number>> {
  await c.write(extensionRequest({ v: 1, op: 'status' }));
  let text = '';
  for (;;) {
    const pdu = await c.next(2000);
    if (pdu === undefined) throw new Error('closed in the middle of a status reply');
    const p = readExtension(pdu);
    text += p.payload;
    if ((p.flags & 1) === 0) break;
  }
  return (JSON.parse(text) as { server: { requests: { byKind: Record<string, number> } } }).server.requests.byKind;
}

/** A new client of `t`'s socket, past PCP's INFO, kept in `clients` to be closed after the test. */
async function clientOf(t: TestServer, clients: RawRootClient[]): Promise<RawRootClient> {
  const c = await RawRootClient.open(t.socket);
  clients.push(c);
  return c;
}

/** How long a reply on a local socket may take: a broken server fails the test in this, not in Jest's minute. */
const REPLY_MS = 2000;

describeWith('root', () => probes.root() ?? probes.native(), 'RootServer answering PCP requests', () => {
  let sandbox: Sandbox;
  /** The sandbox's hostname and cgroup as the kernel gives them (nsenter, /proc), read once. */
  let hostname: string;
  let cgroup: string;
  let dead: number;
  let t: TestServer;
  const clients: RawRootClient[] = [];
  const client = (): Promise<RawRootClient> => clientOf(t, clients);
  async function ask(request: Buffer): Promise<Buffer> {
    const c = await client();
    await c.write(request);
    const reply = await c.next(REPLY_MS);
    if (reply === undefined) throw new Error('closed without a reply');
    return reply;
  }

  beforeAll(async () => {
    sandbox = await startSandbox();
    hostname = hostnameTruth(sandbox.pid);
    cgroup = cgroupTruth(sandbox.pid);
    dead = spawnSync('true').pid as number;
    const engine = new FixtureEngine('fixture', [
      { engine: 'fixture', id: 'ab12cd340000', names: ['sbx'], running: true, pid: sandbox.pid },
      { engine: 'fixture', id: 'ab12ef560000', names: ['twin'], running: true, pid: sandbox.pid },
      { engine: 'fixture', id: 'cd5500000000', names: ['stopped'], running: false },
    ]);
    t = await startTestServer({ engines: [engine], processes: true });
  });

  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  afterAll(async () => {
    await t?.stop();
    await sandbox?.stop();
  });

  it('greets with PCP INFO, byte for byte', async () => {
    const c = await RawRootClient.open(t.socket, false);
    clients.push(c);
    expect(await c.next(REPLY_MS)).toEqual(PCP_INFO);
  });

  it("answers a container's hostname, cgroup and init PID by name (with or without the NUL) and by id", async () => {
    for (const [name, nul] of [['sbx', true], ['sbx', false], ['ab12cd340000', true]] as const) {
      expect(readContainer(await ask(containerRequest(T.HOSTNAME_REQ, 0, name, { nul })))).toEqual({
        type: T.HOSTNAME, length: 24 + Buffer.byteLength(hostname), status: 0, version: 2, bytes: 24 + Buffer.byteLength(hostname), pid: sandbox.pid, namelen: Buffer.byteLength(hostname), name: hostname,
      });
    }
    expect(readContainer(await ask(containerRequest(T.CGROUPNAME_REQ, 0, 'twin')))).toEqual({
      type: T.CGROUPNAME, length: 24 + cgroup.length, status: 0, version: 2, bytes: 24 + cgroup.length, pid: sandbox.pid, namelen: cgroup.length, name: cgroup,
    });
    expect(readContainer(await ask(containerRequest(T.PROCESSID_REQ, 0, 'sbx')))).toEqual({
      type: T.PROCESSID, length: 24, status: 0, version: 2, bytes: 24, pid: sandbox.pid, namelen: 0, name: '',
    });
  });

  it('answers namelen 0 for the PID itself, and refuses neither name nor PID with -EINVAL', async () => {
    expect(readContainer(await ask(containerRequest(T.HOSTNAME_REQ, sandbox.pid, '')))).toMatchObject({ type: T.HOSTNAME, status: 0, pid: sandbox.pid, name: hostname });
    expect(readContainer(await ask(containerRequest(T.CGROUPNAME_REQ, process.pid, '')))).toMatchObject({ type: T.CGROUPNAME, status: 0, pid: process.pid, name: cgroupTruth(process.pid) });
    expect(readContainer(await ask(containerRequest(T.PROCESSID_REQ, process.pid, '')))).toEqual({
      type: T.PROCESSID, length: 24, status: 0, version: 2, bytes: 24, pid: process.pid, namelen: 0, name: '',
    });
    expect(readContainer(await ask(containerRequest(T.PROCESSID_REQ, dead, '')))).toMatchObject({ type: T.PROCESSID, bytes: 24, status: -errnoTruth('ESRCH'), pid: dead });
    for (const type of [T.HOSTNAME_REQ, T.CGROUPNAME_REQ, T.PROCESSID_REQ]) {
      expect(readContainer(await ask(containerRequest(type, 0, '')))).toEqual({
        type: type + 1, length: 24, status: -errnoTruth('EINVAL'), version: 2, bytes: 24, pid: 0, namelen: 0, name: '',
      });
    }
  });

  it('answers unknown, ambiguous and stopped containers with 24-byte errors that echo the pid', async () => {
    const logged = t.logger.lines.length;
    expect(readContainer(await ask(containerRequest(T.HOSTNAME_REQ, 4321, 'nosuch')))).toEqual({
      type: T.HOSTNAME, length: 24, status: PM_ERR_NOCONTAINER, version: 2, bytes: 24, pid: 4321, namelen: 0, name: '',
    });
    expect(readContainer(await ask(containerRequest(T.CGROUPNAME_REQ, 7, 'ab12')))).toMatchObject({ type: T.CGROUPNAME, bytes: 24, status: -errnoTruth('ENOTUNIQ'), pid: 7 });
    expect(readContainer(await ask(containerRequest(T.PROCESSID_REQ, 0, 'stopped')))).toMatchObject({ type: T.PROCESSID, bytes: 24, status: -errnoTruth('ESRCH') });
    // A name that designates no container is routine for PCP's clients: logged for debugging, not as a warning.
    const failures = t.logger.lines.slice(logged).filter((l) => l.line.endsWith(' request failed'));
    expect(failures.map((l) => [l.line.split(' ')[0], l.fields?.status, l.fields?.pid])).toEqual([
      ['debug', PM_ERR_NOCONTAINER, process.pid],
      ['warn', -errnoTruth('ENOTUNIQ'), process.pid],
      ['warn', -errnoTruth('ESRCH'), process.pid],
    ]);
  });

  it("answers a name whose engine is still loading once the engine has listed: hostname, cgroup and init PID", async () => {
    const late = new LateEngine('late');
    const s = await startTestServer({ engines: [late] });
    const opened: RawRootClient[] = [];
    try {
      const requests = [containerRequest(T.HOSTNAME_REQ, 0, 'later'), containerRequest(T.CGROUPNAME_REQ, 0, 'later'), containerRequest(T.PROCESSID_REQ, 0, 'later')];
      for (const request of requests) {
        const c = await RawRootClient.open(s.socket);
        opened.push(c);
        await c.write(request);
      }
      // The three requests have reached the server (its own counts say so) while the engine has listed nothing.
      const status = await RawRootClient.open(s.socket);
      opened.push(status);
      let kinds = await requestsByKind(status);
      for (let i = 0; i < 500 && !(kinds.hostname === 1 && kinds.cgroup === 1 && kinds.pid === 1); i++) kinds = await requestsByKind(status);
      expect(kinds).toMatchObject({ hostname: 1, cgroup: 1, pid: 1 });
      (late.sink as ContainerSink).replaceAll([{ engine: 'late', id: 'fe12dc340000', names: ['later'], running: true, pid: sandbox.pid }]);
      const [host, group, pid] = await Promise.all(opened.slice(0, 3).map(async (c) => readContainer((await c.next(REPLY_MS)) as Buffer)));
      expect(host).toEqual({ type: T.HOSTNAME, length: 24 + Buffer.byteLength(hostname), status: 0, version: 2, bytes: 24 + Buffer.byteLength(hostname), pid: sandbox.pid, namelen: Buffer.byteLength(hostname), name: hostname });
      expect(group).toEqual({ type: T.CGROUPNAME, length: 24 + cgroup.length, status: 0, version: 2, bytes: 24 + cgroup.length, pid: sandbox.pid, namelen: cgroup.length, name: cgroup });
      expect(pid).toEqual({ type: T.PROCESSID, length: 24, status: 0, version: 2, bytes: 24, pid: sandbox.pid, namelen: 0, name: '' });
    } finally {
      for (const c of opened) c.close();
      await s.stop();
    }
  });

  it('frames by length: a request split byte by byte and three in one write are answered in order', async () => {
    const c = await client();
    const one = containerRequest(T.PROCESSID_REQ, 0, 'sbx');
    for (const byte of one) await c.write(Buffer.from([byte]));
    expect(readContainer((await c.next(REPLY_MS)) as Buffer).pid).toBe(sandbox.pid);
    await c.write(Buffer.concat([containerRequest(T.PROCESSID_REQ, 11, 'none'), containerRequest(T.HOSTNAME_REQ, 0, 'twin'), containerRequest(T.PROCESSID_REQ, 12, 'none2')]));
    const replies = [await c.next(REPLY_MS), await c.next(REPLY_MS), await c.next(REPLY_MS)].map((b) => readContainer(b as Buffer));
    expect(replies.map((r) => [r.type, r.pid, r.status])).toEqual([
      [T.PROCESSID, 11, PM_ERR_NOCONTAINER],
      [T.HOSTNAME, sandbox.pid, 0],
      [T.PROCESSID, 12, PM_ERR_NOCONTAINER],
    ]);
  });

  it('answers every request sent before a half-close, then closes', async () => {
    const c = await client();
    const many = Array.from({ length: 5 }, (_, i) => containerRequest(i % 2 === 0 ? T.PROCESSID_REQ : T.HOSTNAME_REQ, 0, 'sbx'));
    await c.write(Buffer.concat(many));
    c.socket.end();
    const types: number[] = [];
    for (let reply = await c.next(REPLY_MS); reply !== undefined; reply = await c.next(REPLY_MS)) types.push(readHeader(reply).type);
    expect(types).toEqual([T.PROCESSID, T.HOSTNAME, T.PROCESSID, T.HOSTNAME, T.PROCESSID]);
  });

  it('answers an unknown type with a bare header of that type, a newer version with -ENOTSUP of the reply type', async () => {
    const c = await client();
    const logged = t.logger.lines.length;
    await c.write(headerBytes(0x9055, 16));
    expect(await c.next(REPLY_MS)).toEqual(headerBytes(0x9055, 16, -errnoTruth('EOPNOTSUPP')));
    // The operator learns who sent what: the client's pid (this process) and the type as sent, in hex.
    expect(t.logger.lines.slice(logged).filter((l) => l.line === 'warn unknown request type').map((l) => l.fields)).toEqual([{ pid: process.pid, type: '0x9055' }]);
    await c.write(containerRequest(T.HOSTNAME_REQ, 5, 'sbx', { version: 3 }));
    expect(readContainer((await c.next(REPLY_MS)) as Buffer)).toMatchObject({ type: T.HOSTNAME, bytes: 24, status: -errnoTruth('EOPNOTSUPP') });
    await c.write(containerRequest(T.HOSTNAME_REQ, 5, 'sbx', { version: 0 }));
    expect(readContainer((await c.next(REPLY_MS)) as Buffer)).toMatchObject({ type: T.HOSTNAME, status: -errnoTruth('EOPNOTSUPP') });
    // A request too short for its body: -EINVAL of its reply type, pid 0 (whatever its 4 bytes of body say).
    await c.write(headerBytes(T.CGROUPNAME_REQ, 20));
    await c.write(Buffer.from([7, 0, 0, 0]));
    expect(readContainer((await c.next(REPLY_MS)) as Buffer)).toEqual({ type: T.CGROUPNAME, length: 24, status: -errnoTruth('EINVAL'), version: 2, bytes: 24, pid: 0, namelen: 0, name: '' });
    // Still serving after bad requests.
    await c.write(containerRequest(T.PROCESSID_REQ, 0, 'sbx', { version: 1 }));
    expect(readContainer((await c.next(REPLY_MS)) as Buffer)).toMatchObject({ status: 0, pid: sandbox.pid });
  });

  it('refuses an extension request of a version it does not speak with an extension reply (0x9101) of -ENOTSUP, and keeps serving', async () => {
    const c = await client();
    // The fuzzer's request that found this (CI, stop 20): version 0x00200002, status 16, a payload that is not JSON.
    await c.write(Buffer.from('0091000024000000100000000200200000000000' + '0c000000' + '316435633864386561396565', 'hex'));
    const fuzzed = readExtension((await c.next(REPLY_MS)) as Buffer);
    expect(fuzzed).toMatchObject({ type: 0x9101, status: -errnoTruth('EOPNOTSUPP'), flags: 0 });
    expect(fuzzed.length).toBe(24 + fuzzed.paylen);
    expect(JSON.parse(fuzzed.payload)).toMatchObject({ code: 'ERR_VERSION', status: -errnoTruth('EOPNOTSUPP'), message: expect.stringContaining(String(0x00200002)) });
    for (const version of [0, 3]) {
      const request = extensionRequest({ v: 1, op: 'status' });
      request.writeInt32LE(version, 12);
      await c.write(request);
      expect(readExtension((await c.next(REPLY_MS)) as Buffer)).toMatchObject({ type: 0x9101, status: -errnoTruth('EOPNOTSUPP') });
    }
    await c.write(containerRequest(T.PROCESSID_REQ, 0, 'sbx', { version: 1 }));
    expect(readContainer((await c.next(REPLY_MS)) as Buffer)).toMatchObject({ status: 0, pid: sandbox.pid });
  });

  it('answers an unframeable request of a type it does not know with a bare -EINVAL header of that type, then closes', async () => {
    const c = await client();
    const logged = t.logger.lines.length;
    await c.write(headerBytes(0x9055, 8));
    expect(await c.next(REPLY_MS)).toEqual(headerBytes(0x9055, 16, -errnoTruth('EINVAL')));
    expect(await c.next(REPLY_MS)).toBeUndefined();
    // Why it was closed, for the operator: the client's pid, the type as sent in hex, the length that cannot be framed.
    expect(t.logger.lines.slice(logged).filter((l) => l.line === 'warn unframeable request; closing').map((l) => l.fields)).toEqual([
      { pid: process.pid, type: '0x9055', reason: expect.stringContaining('8') },
    ]);
  });

  it.each([
    ['shorter than a header', 8],
    ['longer than PCP frames', 5000],
    ['negative', -1],
  ])('answers a length %s with -EINVAL, then closes', async (_what, length) => {
    const c = await client();
    await c.write(headerBytes(T.HOSTNAME_REQ, length));
    expect(readContainer((await c.next(REPLY_MS)) as Buffer)).toMatchObject({ type: T.HOSTNAME, bytes: 24, status: -errnoTruth('EINVAL'), pid: 0 });
    expect(await c.next(REPLY_MS)).toBeUndefined();
  });

  it('starts a command as root for STARTPMDA (socket IPC) and kills it for STOPPMDA force', async () => {
    const start = readStart(await ask(startRequest(1, 'sleeper', '/bin/sleep 60')));
    expect(start).toMatchObject({ type: T.STARTPMDA, length: 104, bytes: 104, status: 0, version: 2, label: 'sleeper' });
    expect(start.rest).toEqual([0, 0, 0, 'sleeper'.length, 0]);
    // The reply may come while the kernel is still setting up the new image's arguments (cmdline empty until then).
    await until(() => readFileSync(`/proc/${start.pid}/cmdline`, 'utf8') !== '', `process ${start.pid} has its arguments`);
    expect(readFileSync(`/proc/${start.pid}/cmdline`, 'utf8')).toBe('/bin/sleep\u000060\u0000');
    expect(readFileSync(`/proc/${start.pid}/status`, 'utf8')).toMatch(/^Uid:\s+0\s/m);
    const stop = readStop(await ask(stopRequest(start.pid, true)));
    expect(stop).toMatchObject({ type: T.STOPPMDA, length: 32, bytes: 32, status: 0, pid: start.pid, force: 1 });
    await until(() => procGone(start.pid), `process ${start.pid} killed`);
  });

  it('hands pipe IPC fds over and keeps no copy of them', async () => {
    const start = readStart(await ask(startRequest(2, 'piped', '/bin/sleep 60')));
    expect(start).toMatchObject({ type: T.STARTPMDA, bytes: 104, status: 0, label: 'piped' });
    expect(start.pid).toBeGreaterThan(0);
    const stdin = readlinkSync(`/proc/${start.pid}/fd/0`);
    expect(stdin).toMatch(/^pipe:/);
    const ours = readdirSync('/proc/self/fd').map((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return '';
      }
    });
    expect(ours).not.toContain(stdin);
    expect(readStop(await ask(stopRequest(start.pid, true)))).toMatchObject({ status: 0, pid: start.pid });
    await until(() => procGone(start.pid), `process ${start.pid} killed`);
  });

  it("passes pipe IPC's fds to the client with the reply (SCM_RIGHTS): the child's stdin and stdout", async () => {
    // A client of its own that reads the reply with recvmsg(2), as pmcd does, and says what the fds it got are.
    const script = [
      'import socket, sys, json, os, array',
      's = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)',
      's.connect(sys.argv[1])',
      "info = b''",
      'while len(info) < 24: info += s.recv(24 - len(info))',
      's.sendall(bytes.fromhex(sys.argv[2]))',
      "data, fds = b'', []",
      'while len(data) < 104:',
      '    msg, anc, flags, addr = s.recvmsg(104 - len(data), socket.CMSG_SPACE(64))',
      '    if not msg: break',
      '    data += msg',
      '    for level, kind, cdata in anc:',
      "        a = array.array('i'); a.frombytes(cdata[:len(cdata) - len(cdata) % 4]); fds += list(a)",
      "print(json.dumps({'reply': data.hex(), 'fds': [os.readlink('/proc/self/fd/%d' % fd) for fd in fds]}), flush=True)",
    ].join('\n');
    const child = spawn('python3', ['-S', '-c', script, t.socket, startRequest(2, 'passed', '/bin/sleep 60').toString('hex')], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((resolve) => child.on('close', resolve));
    const got = JSON.parse(out) as { reply: string; fds: string[] };
    const start = readStart(Buffer.from(got.reply, 'hex'));
    expect(start).toMatchObject({ type: T.STARTPMDA, bytes: 104, status: 0, label: 'passed' });
    const ends = [0, 1].map((fd) => readlinkSync(`/proc/${start.pid}/fd/${fd}`));
    expect(ends.every((e) => e.startsWith('pipe:'))).toBe(true);
    expect([...got.fds].sort()).toEqual([...ends].sort());
    expect(readStop(await ask(stopRequest(start.pid, true)))).toMatchObject({ status: 0, pid: start.pid });
  });

  it('reaps a child that exited for STOPPMDA wait, with its raw wait status', async () => {
    const start = readStart(await ask(startRequest(1, 'exit3', '/bin/sh -c "exit 3"')));
    expect(start.status).toBe(0);
    const c = await client();
    let stop = { pid: 0, code: 0, force: -1, status: 0 };
    for (let i = 0; i < 500 && stop.pid === 0; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 10));
      await c.write(stopRequest(start.pid, false));
      stop = readStop((await c.next(REPLY_MS)) as Buffer);
    }
    // Linux's wait status: exit code in bits 8-15, no signal in bits 0-6.
    expect([stop.status, stop.pid, (stop.code >> 8) & 0xff, stop.code & 0x7f, stop.force]).toEqual([0, start.pid, 3, 0, 0]);
    expect(procGone(start.pid)).toBe(true);
  });

  it('refuses malformed STARTPMDA and STOPPMDA of a process it did not start, with replies of their shape', async () => {
    const shapes = [
      readStart(await ask(startRequest(3, 'bad', '/bin/true'))),
      readStart(await ask(startRequest(1, '', '/bin/true', 0))),
      readStart(await ask(startRequest(1, 'noargs', ''))),
    ];
    expect(shapes.map((s) => [s.type, s.bytes, s.status, s.pid, s.label, s.rest])).toEqual([
      [T.STARTPMDA, 104, -errnoTruth('EINVAL'), -1, '', [0, 0, 0, 0, 0]],
      [T.STARTPMDA, 104, -errnoTruth('EINVAL'), -1, '', [0, 0, 0, 0, 0]],
      [T.STARTPMDA, 104, -errnoTruth('EINVAL'), -1, '', [0, 0, 0, 0, 0]],
    ]);
    // The shortest label there is (one byte) is a label.
    const short = readStart(await ask(startRequest(1, 'a', '/bin/sleep 60')));
    expect(short).toMatchObject({ type: T.STARTPMDA, status: 0, label: 'a' });
    expect(readFileSync(`/proc/${short.pid}/status`, 'utf8')).toMatch(/^Name:\s+sleep$/m);
    expect(readStop(await ask(stopRequest(short.pid, true)))).toMatchObject({ status: 0, pid: short.pid });
    const refused = readStop(await ask(stopRequest(process.pid, true)));
    expect(refused).toMatchObject({ type: T.STOPPMDA, bytes: 32, status: -errnoTruth('ECHILD'), pid: process.pid });
    expect(existsSync(`/proc/${process.pid}`)).toBe(true);
  });
});

/** The server's `status` as croot's extension reports it (docs/protocol.md). */
async function requestCounts(c: RawRootClient): Promise<{ total: number; answeredAgain: number; byKind: Record<string, number> }> {
  await c.write(extensionRequest({ v: 1, op: 'status' }));
  let text = '';
  for (;;) {
    const pdu = await c.next(REPLY_MS);
    if (pdu === undefined) throw new Error('closed in the middle of a status reply');
    const p = readExtension(pdu);
    text += p.payload;
    if ((p.flags & 1) === 0) break;
  }
  return (JSON.parse(text) as { server: { requests: { total: number; answeredAgain: number; byKind: Record<string, number> } } }).server.requests;
}

describeWith('root', () => probes.root() ?? probes.native(), 'RootServer answering again what it answered at once (its connections and the ReplyCache)', () => {
  let sandbox: Sandbox;
  let engine: FixtureEngine;
  let t: TestServer;
  const clients: RawRootClient[] = [];
  const client = (): Promise<RawRootClient> => clientOf(t, clients);
  async function askOn(c: RawRootClient, request: Buffer): Promise<ReturnType<typeof readContainer>> {
    await c.write(request);
    const reply = await c.next(REPLY_MS);
    if (reply === undefined) throw new Error('closed without a reply');
    return readContainer(reply);
  }

  beforeEach(async () => {
    sandbox = await startSandbox();
    engine = new FixtureEngine('again', [{ engine: 'again', id: 'aa11bb220000', names: ['web1'], running: true, pid: sandbox.pid }]);
    t = await startTestServer({ engines: [engine] });
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await t?.stop();
    await sandbox?.stop();
  });

  it('answers a repeated request by itself with the same bytes, counts it in status, and follows the kernel when the hostname inside changes', async () => {
    const c = await client();
    const cache = t.container.get<ReplyCache>(ReplyCache);
    const before = await requestCounts(await client());
    const kindsBefore = cache.answered();
    const hostname = hostnameTruth(sandbox.pid);
    const cgroup = cgroupTruth(sandbox.pid);
    for (let i = 0; i < 3; i++) {
      expect(await askOn(c, containerRequest(T.PROCESSID_REQ, 0, 'web1'))).toMatchObject({ status: 0, pid: sandbox.pid });
      expect(await askOn(c, containerRequest(T.CGROUPNAME_REQ, 0, 'web1'))).toMatchObject({ status: 0, pid: sandbox.pid, name: cgroup });
      expect(await askOn(c, containerRequest(T.HOSTNAME_REQ, 0, 'web1'))).toMatchObject({ status: 0, pid: sandbox.pid, name: hostname });
    }
    const after = await requestCounts(await client());
    const kinds = cache.answered();
    // PID and cgroup: answered once by the handler, then twice again by the connection itself. A hostname
    // is given again only while no hostname is set anywhere (other tests set some) and once one was read at once.
    expect(kinds.pid - kindsBefore.pid).toBe(2);
    expect(kinds.cgroup - kindsBefore.cgroup).toBe(2);
    expect(kinds.hostname - kindsBefore.hostname).toBeLessThanOrEqual(2);
    expect(after.answeredAgain - before.answeredAgain).toBe(kinds.pid + kinds.cgroup + kinds.hostname - (kindsBefore.pid + kindsBefore.cgroup + kindsBefore.hostname));
    // Every request counted once, wherever it was answered: the nine above and the second status request.
    expect(after.total - before.total).toBe(10);
    expect(after.byKind.pid! - (before.byKind.pid ?? 0)).toBe(3);
    expect(after.byKind.hostname! - (before.byKind.hostname ?? 0)).toBe(3);
    // A hostname set inside the container (by the kernel's own tool): the next answer is the new one.
    execFileSync('nsenter', ['-u', '-t', String(sandbox.pid), 'hostname', 'croot-renamed-host']);
    expect(hostnameTruth(sandbox.pid)).toBe('croot-renamed-host');
    expect(await askOn(c, containerRequest(T.HOSTNAME_REQ, 0, 'web1'))).toMatchObject({ status: 0, pid: sandbox.pid, name: 'croot-renamed-host' });
    expect(await askOn(c, containerRequest(T.HOSTNAME_REQ, 0, 'web1'))).toMatchObject({ status: 0, pid: sandbox.pid, name: 'croot-renamed-host' });
  });

  it('forgets what it answered when the engine renames, re-points or removes the container', async () => {
    const c = await client();
    const sink = engine.sink as ContainerSink;
    for (let i = 0; i < 2; i++) expect(await askOn(c, containerRequest(T.PROCESSID_REQ, 0, 'web1'))).toMatchObject({ status: 0, pid: sandbox.pid });
    sink.upsert({ engine: 'again', id: 'aa11bb220000', names: ['web2'], running: true, pid: sandbox.pid });
    expect(await askOn(c, containerRequest(T.PROCESSID_REQ, 0, 'web1'))).toMatchObject({ status: PM_ERR_NOCONTAINER, pid: 0 });
    expect(await askOn(c, containerRequest(T.PROCESSID_REQ, 0, 'web2'))).toMatchObject({ status: 0, pid: sandbox.pid });
    expect(await askOn(c, containerRequest(T.PROCESSID_REQ, 0, 'web2'))).toMatchObject({ status: 0, pid: sandbox.pid });
    // Another real process as its init process (a restart): the new PID at once.
    const other = spawn('sleep', ['600'], { stdio: 'ignore' });
    try {
      sink.upsert({ engine: 'again', id: 'aa11bb220000', names: ['web2'], running: true, pid: other.pid as number });
      expect(await askOn(c, containerRequest(T.PROCESSID_REQ, 0, 'web2'))).toMatchObject({ status: 0, pid: other.pid });
      expect(await askOn(c, containerRequest(T.PROCESSID_REQ, 0, 'web2'))).toMatchObject({ status: 0, pid: other.pid });
    } finally {
      other.kill('SIGKILL');
    }
    sink.remove('aa11bb220000');
    expect(await askOn(c, containerRequest(T.PROCESSID_REQ, 0, 'web2'))).toMatchObject({ status: PM_ERR_NOCONTAINER, pid: 0 });
  });

  it('never answers from the middle of a request: bytes that look like a remembered request, read while another is half-read, complete that other one', async () => {
    const c = await client();
    const remembered = containerRequest(T.PROCESSID_REQ, 0, 'web1');
    for (let i = 0; i < 2; i++) expect(await askOn(c, remembered)).toMatchObject({ status: 0, pid: sandbox.pid });
    // A PROCESSID request whose name is the remembered request's bytes (pid field 7, to tell its reply apart).
    const wrapper = Buffer.concat([containerRequest(T.PROCESSID_REQ, 7, '').subarray(0, 24), remembered]);
    wrapper.writeInt32LE(wrapper.length, 4);
    wrapper.writeInt32LE(remembered.length, 20);
    const answeredBefore = t.container.get<ReplyCache>(ReplyCache).answered().pid;
    await c.write(wrapper.subarray(0, 24));
    // Let the server read the first part on its own (were both parts read at once, the check would hold anyway).
    await new Promise((r) => setTimeout(r, 50));
    await c.write(wrapper.subarray(24));
    const reply = readContainer((await c.next(REPLY_MS)) as Buffer);
    expect(reply.status).toBeLessThan(0);
    expect(reply.pid).not.toBe(sandbox.pid);
    // One reply for one request: nothing more follows, and the connection is still in step.
    expect(await askOn(c, remembered)).toMatchObject({ status: 0, pid: sandbox.pid });
    expect(t.container.get<ReplyCache>(ReplyCache).answered().pid - answeredBefore).toBe(1);
  });

  it('never answers again for an init process that has exited, even before the exit has reached the index', async () => {
    const c = await client();
    for (let i = 0; i < 2; i++) expect(await askOn(c, containerRequest(T.CGROUPNAME_REQ, 0, 'web1'))).toMatchObject({ status: 0, pid: sandbox.pid });
    const pid = sandbox.pid;
    await sandbox.stop();
    // The kernel's word: gone (or a zombie, which counts as exited).
    await until(() => procGone(pid), `process ${pid} gone`);
    const reply = await askOn(c, containerRequest(T.CGROUPNAME_REQ, 0, 'web1'));
    expect(reply.status).toBeLessThan(0);
    expect(reply.name).toBe('');
  });
});

describe('RootRequestHandler with a PID resolver of a plugin’s own and no ReplyCache bound', () => {
  it('answers through resolveProcessId alone, with the PID that resolver gives, and the other questions as ever', async () => {
    const engine = new FixtureEngine('fx', [{ engine: 'fx', id: 'ff00ee110000', names: ['self'], running: true, pid: process.pid }]);
    const logger = new LinesLogger();
    const engines = new ContainerModule(({ bind }) => {
      bind(EngineContribution).toConstantValue(engine);
      bind(Logger).toConstantValue(logger);
    });
    const c = createCrootContainer({ config: { env: {} }, modules: [engines] });
    // A plugin's resolver that knows one name, and lacks the optional resolveProcess().
    const plugin: ContainerProcessIdResolver = {
      resolveProcessId: (ref) => {
        if (ref === 'mine') return process.pid;
        if (ref === 'later') return Promise.resolve(process.ppid);
        throw new CrootError('ERR_NO_CONTAINER', `no container ${ref}`);
      },
    };
    c.rebindSync<ContainerProcessIdResolver>(ContainerProcessIdResolver).toConstantValue(plugin);
    expect(c.isBound(ReplyCache)).toBe(false);
    const handler = c.get<RootRequestHandler>(RootRequestHandler);
    const ask = async (name: string): Promise<ReturnType<typeof readContainer>> => {
      const [frame] = new FrameDecoder().push(containerRequest(T.PROCESSID_REQ, 0, name));
      return readContainer((await handler.answer(frame as Frame, { pid: process.pid, uid: 0, gid: 0 })).bytes);
    };
    for (let i = 0; i < 2; i++) expect(await ask('mine')).toMatchObject({ type: T.PROCESSID, status: 0, pid: process.pid });
    expect(await ask('later')).toMatchObject({ type: T.PROCESSID, status: 0, pid: process.ppid });
    expect(await ask('other')).toMatchObject({ type: T.PROCESSID, status: PM_ERR_NOCONTAINER });
    // The core's own cgroup resolver, answering at once, with nothing to remember the answer in.
    const registry = c.get<EngineRegistry>(EngineRegistry);
    await registry.start();
    try {
      await registry.ready();
      for (let i = 0; i < 2; i++) {
        const [frame] = new FrameDecoder().push(containerRequest(T.CGROUPNAME_REQ, 0, 'self'));
        const reply = handler.answer(frame as Frame, { pid: process.pid, uid: 0, gid: 0 });
        expect(reply).not.toBeInstanceOf(Promise);
        expect(readContainer((reply as Reply).bytes)).toMatchObject({ type: T.CGROUPNAME, status: 0, pid: process.pid, name: cgroupTruth(process.pid) });
      }
    } finally {
      await registry.stop();
    }
    // The registry's listeners (the handler's among them) ran for the container's arrival without a fault.
    expect(logger.lines.filter((l) => l.line.startsWith('error') || l.line.startsWith('warn'))).toEqual([]);
  });
});
