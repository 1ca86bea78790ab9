/**
 * crootd's process services through its real server on a real socket, with
 * the real addon: croot's client, raw PDUs, and PCP's own C client library
 * (pmdaRootProcessStart/Wait/Terminate) start, feed, kill and reap children.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fstatSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Container } from 'inversify';
import { joinCommandLine } from '../core/process/pmcd-command-line.js';
import { createCrootContainer } from '../core/create-container.js';
import { FdSender, ProcessSpawner } from '../core/host/host-services.js';
import { ProcessManager, ProcessManagerOptions } from '../core/process/process-manager.js';
import { processServiceModule } from '../core/process/process-service-module.js';
import { PduType, START_HEADER_SIZE, decodeInfo, decodeStart, decodeStop, encodeStart, encodeStop } from '../core/protocol/root-pdus.js';
import { RootClient } from '../core/client/root-client.js';
import { RootRequestHandler } from '../core/server/root-request-handler.js';
import { RootServer } from '../core/server/root-server.js';
import { FrameDecoder, type Frame } from '../core/protocol/frame-decoder.js';
import { CrootNative, loadNative, nativeModule } from '../native/index.js';
import { NativeProcessSpawner } from '../native/native-process-spawner.js';
import { nativeTransport } from '../native/native-transport.js';
import { describeWith, probes } from './support/components.js';
import { processState, zombieChildren } from './support/processes.js';
import { readStart, startRequest } from './support/root-pdu-bytes.js';
import { errnoTruth } from './support/truth.js';
import { fdsOpenedSince, openFds } from './support/sandbox.js';

/** One PDU per recvmsg on a blocking native socket, as PCP's C client reads. */
class RawNativeClient {
  private constructor(
    private readonly native: CrootNative,
    readonly fd: number,
  ) {}
  static async open(path: string): Promise<RawNativeClient> {
    const native = loadNative();
    const client = new RawNativeClient(native, native.connectUnix(path));
    const info = await client.next();
    expect(decodeInfo(info.data).type).toBe(PduType.INFO);
    return client;
  }
  async next(): Promise<{ data: Buffer; fds: number[] }> {
    return this.native.recvWithFds(this.fd, 8192, 5000);
  }
  async exchange(pdu: Buffer): Promise<{ data: Buffer; fds: number[] }> {
    expect(this.native.send(this.fd, pdu)).toBe(pdu.length);
    return this.next();
  }
  close(): void {
    this.native.close(this.fd);
  }
}

/** A STARTPMDA request with lengths as given, not as checked by croot's encoder. */
function rawStartRequest(ipctype: number, label: Buffer, args: Buffer): Buffer {
  const buf = Buffer.alloc(START_HEADER_SIZE + args.length);
  buf.writeInt32LE(PduType.STARTPMDA_REQ, 0);
  buf.writeInt32LE(buf.length, 4);
  buf.writeInt32LE(2, 12);
  buf.writeInt32LE(ipctype, 28);
  buf.writeInt32LE(label.length, 32);
  buf.writeInt32LE(args.length, 36);
  label.copy(buf, 40, 0, Math.min(label.length, 64));
  args.copy(buf, START_HEADER_SIZE);
  return buf;
}

/**
 * The child's open fds once its start-up is over: right after exec the
 * dynamic loader (and locale set-up) briefly hold fd 3. A leaked fd stays;
 * polled for up to 2 s.
 */
async function settledFds(pid: number): Promise<string[]> {
  const deadline = Date.now() + 2000;
  for (;;) {
    const fds = readdirSync(`/proc/${pid}/fd`).sort();
    if (fds.length <= 3 || Date.now() > deadline) return fds;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Waits (non-blocking, polled) until the server reports `pid` reaped; returns its raw status. */
async function waitFor(client: RootClient, pid: number, timeoutMs = 5000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await client.processWait(pid);
    if (r.pid === pid) return r.code;
    if (r.pid !== 0) throw new Error(`wait reported ${r.pid}, expected ${pid}`);
    if (Date.now() > deadline) throw new Error(`${pid} was never reported by wait`);
    await new Promise((res) => setTimeout(res, 10));
  }
}

/** Collects every status still kept (pid -1 waits, as pmcd makes them) until none is left. */
async function drain(client: RootClient): Promise<Map<number, number>> {
  const seen = new Map<number, number>();
  for (;;) {
    const r = await client.processWait(-1);
    if (r.pid <= 0) return seen;
    seen.set(r.pid, r.code);
  }
}

function readLine(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    let text = '';
    const onData = (d: Buffer): void => {
      text += d.toString();
      if (text.includes('\n')) {
        stream.off('data', onData);
        resolvePromise(text);
      }
    };
    stream.on('data', onData);
    stream.once('error', reject);
  });
}

describeWith('root', probes.root, 'process services through crootd (STARTPMDA/STOPPMDA)', () => {
  let dir: string;
  let sock: string;
  let logPath: string;
  let logFd: number;
  let container: Container;
  let server: RootServer;
  let manager: ProcessManager;
  let client: RootClient;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'croot-proc-'));
    sock = join(dir, 'pmcd', 'root.socket');
    logPath = join(dir, 'crootd.log');
    logFd = openSync(logPath, 'a');
    container = createCrootContainer({ config: { allowUids: [0] }, modules: [nativeModule, processServiceModule] });
    if (!container.isBound(ProcessSpawner)) container.bind<ProcessSpawner>(ProcessSpawner).to(NativeProcessSpawner).inSingletonScope();
    container.bind<ProcessManagerOptions>(ProcessManagerOptions).toConstantValue({ childStderrFd: logFd, reapIntervalMs: 50 });
    container.bind(RootServer).toSelf().inSingletonScope();
    manager = container.get(ProcessManager);
    server = container.get(RootServer);
    await server.listen(sock);
    client = await RootClient.connect(sock, { transport: nativeTransport });
  });

  afterAll(async () => {
    client?.close();
    await server?.close();
    await manager?.shutdown();
    if (logFd !== undefined) closeSync(logFd);
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts /bin/cat with pipe IPC and echoes bytes through the two passed fds', async () => {
    const started = await client.processStart(2, 'cat', '/bin/cat');
    expect(started.pid).toBeGreaterThan(0);
    expect(readFileSync(`/proc/${started.pid}/comm`, 'utf8').trim()).toBe('cat');
    const line = readLine(started.stdout as NodeJS.ReadableStream);
    started.stdin?.write('hello croot\n');
    expect(await line).toBe('hello croot\n');
    started.stdin?.end();
    // cat sees EOF on stdin and exits 0.
    await new Promise((r) => started.stdout?.once('close', r).resume());
    expect(await waitFor(client, started.pid)).toBe(0);
  });

  it('passes the pipes in one SCM_RIGHTS message: [write end of stdin, read end of stdout] of the child', async () => {
    const raw = await RawNativeClient.open(sock);
    try {
      const reply = await raw.exchange(encodeStart(PduType.STARTPMDA_REQ, { ipctype: 2, label: 'cat', args: '/bin/cat' }));
      expect(reply.data.length).toBe(104);
      const start = decodeStart(reply.data);
      expect(start).toMatchObject({ type: PduType.STARTPMDA, status: 0, infd: 0, outfd: 0, ipctype: 0, namelen: 3, label: 'cat' });
      expect(reply.fds).toHaveLength(2);
      const [infd, outfd] = reply.fds as [number, number];
      expect(fstatSync(infd).isFIFO() && fstatSync(outfd).isFIFO()).toBe(true);
      // The same pipes the child has as 0 and 1, by inode.
      expect(readlinkSync(`/proc/${start.pid}/fd/0`)).toBe(`pipe:[${fstatSync(infd).ino}]`);
      expect(readlinkSync(`/proc/${start.pid}/fd/1`)).toBe(`pipe:[${fstatSync(outfd).ino}]`);
      expect(readFileSync(`/proc/self/fdinfo/${infd}`, 'utf8')).toMatch(/flags:\s+0?2000001/); // O_WRONLY|O_CLOEXEC
      // The child holds 0, 1, 2 and nothing else; 2 is the log.
      expect(await settledFds(start.pid)).toEqual(['0', '1', '2']);
      expect(readlinkSync(`/proc/${start.pid}/fd/2`)).toBe(logPath);
      closeSync(infd);
      closeSync(outfd);
      const stop = decodeStop((await raw.exchange(encodeStop(PduType.STOPPMDA_REQ, { pid: start.pid, force: 1 }))).data);
      expect(stop).toMatchObject({ status: 0, pid: start.pid });
    } finally {
      raw.close();
    }
  });

  it('starts with socket IPC: pid only, no fds, stdin /dev/null and stdout to the log', async () => {
    const raw = await RawNativeClient.open(sock);
    try {
      const reply = await raw.exchange(encodeStart(PduType.STARTPMDA_REQ, { ipctype: 1, label: 'sleeper', args: '/bin/sleep 30' }));
      expect(reply.fds).toEqual([]);
      const { pid, status } = decodeStart(reply.data);
      expect(status).toBe(0);
      expect(readlinkSync(`/proc/${pid}/fd/0`)).toBe('/dev/null');
      expect(readlinkSync(`/proc/${pid}/fd/1`)).toBe(logPath);
      expect(await settledFds(pid)).toEqual(['0', '1', '2']);
      await client.processTerminate(pid);
      expect((await waitFor(client, pid)) & 0x7f).toBe(9);
    } finally {
      raw.close();
    }
  });

  it("puts the child's stderr in crootd's log and gives it a clean environment", async () => {
    process.env.CROOT_TEST_SECRET = 'must-not-leak';
    try {
      const { pid } = await client.processStart(1, 'env', '/bin/sh -c "env >&2; echo marker-$$ >&2"');
      expect(await waitFor(client, pid)).toBe(0);
      const log = readFileSync(logPath, 'utf8');
      expect(log).toContain(`marker-${pid}`);
      expect(log).toContain('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
      expect(log).not.toContain('must-not-leak');
    } finally {
      delete process.env.CROOT_TEST_SECRET;
    }
  });

  it('answers a missing binary with -ENOENT and pid -1, passing no fds', async () => {
    const raw = await RawNativeClient.open(sock);
    try {
      const reply = await raw.exchange(encodeStart(PduType.STARTPMDA_REQ, { ipctype: 2, label: 'gone', args: '/nonexistent/pmdagone -d 9' }));
      expect(reply.fds).toEqual([]);
      expect(decodeStart(reply.data)).toMatchObject({ type: PduType.STARTPMDA, status: -2, pid: -1 });
    } finally {
      raw.close();
    }
    await expect(client.processStart(1, 'gone', 'no-such-agent-anywhere')).rejects.toMatchObject({ status: -2 });
  });

  it("honours pmcd's quoting: the child sees the exact argv", async () => {
    const out = join(dir, 'argv.txt');
    const argv = ['/bin/sh', '-c', `for a in "$@"; do printf '[%s]\\n' "$a"; done > ${out}`, 'sh', 'a b', 'c"d', 'tab\there', 'back\\slash'];
    const { pid } = await client.processStart(1, 'argv', joinCommandLine(argv));
    expect(await waitFor(client, pid)).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe('[a b]\n[c"d]\n[tab\there]\n[back\\slash]\n');
  });

  it.each([
    ['a 64-byte label with -E2BIG', 'l'.repeat(64), '/bin/true', -7],
    ['an empty label with -EINVAL', '', '/bin/true', -22],
    ['a 4096-byte command line with -E2BIG', 'x', `/bin/true ${'a'.repeat(4086)}`, -7],
    ['an unterminated quote with -EINVAL', 'x', '/bin/sh -c "true', -22],
  ])('refuses %s and starts nothing', async (_what, label, args, status) => {
    const raw = await RawNativeClient.open(sock);
    try {
      const before = manager.runningPids.length;
      const reply = await raw.exchange(rawStartRequest(2, Buffer.from(label), Buffer.from(args)));
      expect(reply.fds).toEqual([]);
      expect(decodeStart(reply.data)).toMatchObject({ status, pid: -1 });
      expect(manager.runningPids.length).toBe(before);
    } finally {
      raw.close();
    }
  });

  it('accepts a 63-byte label and a 4095-byte command line', async () => {
    const { pid } = await client.processStart(1, 'l'.repeat(63), `/bin/true ${'a'.repeat(4085)}`);
    expect(await waitFor(client, pid)).toBe(0);
  });

  it('gives the kill status (signaled, SIGKILL) to a wait after terminate, as pmcd waits (pid -1)', async () => {
    await until('earlier children reaped', () => manager.runningPids.length === 0);
    await drain(client);
    const { pid } = await client.processStart(1, 'sleeper', '/bin/sleep 30');
    expect(await client.processWait(-1)).toEqual({ pid: 0, code: 0 });
    expect(await client.processTerminate(pid)).toEqual({ pid, code: 0 });
    const r = await client.processWait(-1);
    expect(r.pid).toBe(pid);
    expect(r.code & 0x7f).toBe(9);
    expect(processState(pid)).toBeUndefined();
    expect(await client.processWait(-1)).toEqual({ pid: -1, code: 0 });
  });

  it('refuses to terminate a process it did not start, and the process lives on', async () => {
    const foreign: ChildProcess = spawn('sleep', ['30'], { stdio: 'ignore' });
    // 'close', not 'exit': Node releases the child's fds only then.
    const exited = new Promise((r) => foreign.once('close', r));
    try {
      const pid = foreign.pid as number;
      await expect(client.processTerminate(pid)).rejects.toMatchObject({ status: -10 });
      await expect(client.processWait(pid)).rejects.toMatchObject({ status: -10 });
      await new Promise((r) => setTimeout(r, 100));
      expect(processState(pid)).toBe('S');
      expect(foreign.exitCode).toBeNull();
      expect(foreign.signalCode).toBeNull();
    } finally {
      foreign.kill('SIGKILL');
      await exited;
    }
  });

  it('leaves no zombie and no fd behind after a storm of 50 starts and kills', async () => {
    await until('earlier children reaped', () => manager.runningPids.length === 0);
    await drain(client);
    const fdsBefore = openFds();
    const pids: number[] = [];
    for (let i = 0; i < 50; i++) {
      const started = await client.processStart(i % 2 === 0 ? 2 : 1, `storm${i}`, i % 3 === 0 ? '/bin/true' : '/bin/cat');
      pids.push(started.pid);
      started.stdin?.destroy();
      started.stdout?.destroy();
      if (i % 3 !== 0) await client.processTerminate(started.pid);
    }
    // Nobody waits: the server reaps by itself.
    await until('every storm child reaped', () => manager.runningPids.length === 0);
    expect(pids.filter((pid) => processState(pid) !== undefined)).toEqual([]);
    expect(zombieChildren()).toEqual([]);
    await until('fds released', () => fdsOpenedSince(fdsBefore).length === 0, 2000).catch(() => undefined);
    expect(fdsOpenedSince(fdsBefore)).toEqual([]);
    // Their statuses are still there for pmcd to collect, each once.
    const seen = await drain(client);
    expect([...seen.keys()].sort()).toEqual([...pids].sort());
    expect(await client.processWait(-1)).toEqual({ pid: -1, code: 0 });
  });

  describeWith('PCP client library', probes.pcpClientLib, "PCP's own C client (libpcp_pmda)", () => {
    let binary: string;
    beforeAll(() => {
      binary = join(dir, 'pcp-process-client');
      execFileSync('gcc', ['-Wall', '-Werror', '-O2', '-o', binary, resolve(__dirname, 'support/pcp-process-client.c'), '-lpcp_pmda', '-l:libpcp.so.3'], {
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 60000,
      });
    });

    it('starts cat with pipe IPC, echoes through infd/outfd, is refused a foreign pid, terminates and waits', async () => {
      const foreign: ChildProcess = spawn('sleep', ['30'], { stdio: 'ignore' });
      const exited = new Promise((r) => foreign.once('exit', r));
      try {
        const stdout = await new Promise<string>((res, rej) =>
          execFile(binary, [sock, String(foreign.pid)], { timeout: 20000 }, (err, out, errText) =>
            err ? rej(new Error(`${err.message}\n${out}\n${errText}`)) : res(out),
          ),
        );
        const results = Object.fromEntries(
          stdout
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l) as { op: string })
            .map((r) => [r.op, r]),
        ) as Record<string, Record<string, number | string>>;
        expect(results.connect?.sts).toBeGreaterThanOrEqual(0);
        expect(results.start).toMatchObject({ sts: 0, infd: 'pipe-write', outfd: 'pipe-read' });
        const pid = results.start?.pid as number;
        expect(pid).toBeGreaterThan(0);
        expect(results.echo).toMatchObject({ output: 'hello through libpcp_pmda' });
        expect(results['terminate-foreign']).toMatchObject({ sts: -10 });
        expect(results.terminate).toMatchObject({ sts: 0 });
        expect(results.wait).toMatchObject({ sts: pid, signaled: 1, signal: 9 });
        expect(results['wait-again']).toMatchObject({ sts: -1 });
        expect(results['start-missing']).toMatchObject({ sts: -2, infd: 'closed', outfd: 'closed' });
        expect(processState(foreign.pid as number)).toBe('S');
      } finally {
        foreign.kill('SIGKILL');
        await exited;
      }
    });
  });
});

describeWith('root', probes.root, 'STARTPMDA in a server that cannot pass fds (a ProcessService bound without the native FdSender)', () => {
  /** Processes whose command line is exactly `argv`, from /proc. */
  function running(argv: readonly string[]): number[] {
    const want = `${argv.join('\0')}\0`;
    return readdirSync('/proc')
      .filter((e) => /^\d+$/.test(e))
      .filter((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8') === want;
        } catch {
          return false;
        }
      })
      .map(Number);
  }

  it('refuses pipe IPC with -ENOTSUP before starting anything, and still starts with socket IPC', async () => {
    const container = createCrootContainer({ config: { allowUids: [0] }, modules: [processServiceModule] });
    container.bind<CrootNative>(CrootNative).toConstantValue(loadNative());
    container.bind<ProcessSpawner>(ProcessSpawner).to(NativeProcessSpawner).inSingletonScope();
    expect(container.isBound(FdSender)).toBe(false);
    const handler = container.get(RootRequestHandler);
    const manager = container.get(ProcessManager);
    const root = { pid: process.pid, uid: 0, gid: 0 };
    const ask = async (request: Buffer): Promise<ReturnType<typeof readStart>> => {
      const [frame] = new FrameDecoder().push(request);
      return readStart((await handler.answer(frame as Frame, root)).bytes);
    };
    try {
      const piped = await ask(startRequest(2, 'piped', '/bin/sleep 61.25'));
      // ENOTSUP is EOPNOTSUPP on Linux.
      expect([piped.type, piped.status, piped.pid]).toEqual([PduType.STARTPMDA, -errnoTruth('EOPNOTSUPP'), -1]);
      expect(running(['/bin/sleep', '61.25'])).toEqual([]);
      expect(manager.runningPids).toEqual([]);
      const socketed = await ask(startRequest(1, 'socketed', '/bin/sleep 61.5'));
      expect(socketed.status).toBe(0);
      expect(manager.runningPids).toEqual([socketed.pid]);
    } finally {
      await manager.shutdown();
    }
  });
});
