import { execFileSync, spawn as spawnChild } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { types } from 'node:util';
import { describeWith, probes } from '../test/support/components.js';
import type { CrootNative, NativeError } from './croot-native.js';
import { loadNative } from './load-native.js';

const native: CrootNative = loadNative();

function openFds(): string[] {
  return fs.readdirSync('/proc/self/fd').sort();
}

/** A pid that cannot exist: pid_max itself is never handed out. */
function impossiblePid(): number {
  return Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim());
}

function expectNativeError(err: unknown, code: string | string[], syscall: string): void {
  const e = err as NativeError;
  // The addon's errors come from Node's own realm, not Jest's sandbox: no instanceof here.
  expect(types.isNativeError(e)).toBe(true);
  expect(Array.isArray(code) ? code : [code]).toContain(e.code);
  expect(e.errno).toBe((os.constants.errno as Record<string, number>)[e.code]);
  expect(e.errno).toBeGreaterThan(0);
  expect(e.syscall).toBe(syscall);
}

function catchSync(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 10000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A unix socket server on a temp path; `accept()` resolves the next accepted socket. */
async function startServer(): Promise<{ path: string; server: net.Server; accepted: net.Socket[]; accept: () => Promise<net.Socket>; stop: () => Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'croot-t-'));
  const sockPath = path.join(dir, 's');
  const accepted: net.Socket[] = [];
  const waiting: ((s: net.Socket) => void)[] = [];
  const server = net.createServer((s) => {
    accepted.push(s);
    const w = waiting.shift();
    if (w) w(s);
  });
  server.listen(sockPath);
  await once(server, 'listening');
  return {
    path: sockPath,
    server,
    accepted,
    accept: () =>
      new Promise((resolve) => {
        const ready = accepted.find((s) => !(s as unknown as { taken?: boolean }).taken);
        const take = (s: net.Socket): void => {
          (s as unknown as { taken?: boolean }).taken = true;
          resolve(s);
        };
        if (ready) take(ready);
        else waiting.push(take);
      }),
    stop: async () => {
      for (const s of accepted) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function fdOf(socket: net.Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('net.Socket exposes no fd here');
  return fd;
}

describe('the native addon', () => {
  describe('.peerCredentials', () => {
    it('reports this process for both ends of a net.Server connection', async () => {
      const srv = await startServer();
      try {
        const client = net.connect(srv.path);
        await once(client, 'connect');
        const accepted = await srv.accept();
        const expected = { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() };
        expect(native.peerCredentials(fdOf(accepted))).toEqual(expected);
        expect(native.peerCredentials(fdOf(client))).toEqual(expected);
        client.destroy();
      } finally {
        await srv.stop();
      }
    });

    it('throws ENOTSOCK with syscall getsockopt for a pipe', () => {
      const [r, w] = native.pipe();
      try {
        expectNativeError(catchSync(() => native.peerCredentials(r)), 'ENOTSOCK', 'getsockopt');
      } finally {
        native.close(r);
        native.close(w);
      }
    });
  });

  describeWith('root', probes.root, '.readHostname', () => {
    const started: { child: ChildProcess; pid: number }[] = [];

    async function startInUtsNamespace(hostname: string): Promise<number> {
      const child = spawnChild('unshare', ['--uts', '--fork', 'sh', '-c', `hostname ${hostname}; exec sleep 60`], { stdio: 'ignore' });
      const entry = { child, pid: 0 };
      started.push(entry);
      entry.pid = await waitFor(`the sleep in ${hostname}'s namespace`, () => {
        let children: string[];
        try {
          children = fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
        } catch {
          return undefined;
        }
        return children.map(Number).find((pid) => {
          try {
            return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep';
          } catch {
            return false;
          }
        });
      });
      return entry.pid;
    }

    afterAll(async () => {
      for (const { child, pid } of started) {
        const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, 'exit');
        if (pid > 0) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* already gone */
          }
        }
        child.kill('SIGKILL');
        await exited;
      }
    });

    it("reads three other namespaces' hostnames at once and leaves this process's hostname alone", async () => {
      const before = os.hostname();
      const names = [1, 2, 3].map((i) => `x-${i}-${Math.random().toString(36).slice(2, 10)}`);
      const pids = await Promise.all(names.map((n) => startInUtsNamespace(n)));
      const read = await Promise.all(pids.map((pid) => native.readHostname(pid)));
      expect(read).toEqual(names);
      expect(os.hostname()).toBe(before);
      expect(fs.readFileSync('/proc/sys/kernel/hostname', 'utf8').trim()).toBe(before);
    });

    it('reads the hostname of its own process', async () => {
      await expect(native.readHostname(process.pid)).resolves.toBe(os.hostname());
    });

    it('reads through a pidfd as through the pid', async () => {
      const pid = await startInUtsNamespace(`p-${Math.random().toString(36).slice(2, 10)}`);
      const pidfd = native.pidfdOpen(pid);
      try {
        await expect(native.readHostname(pid, pidfd)).resolves.toBe(await native.readHostname(pid));
      } finally {
        native.close(pidfd);
      }
    });

    it('rejects with ENOENT from open for a pid that does not exist', async () => {
      const pid = impossiblePid();
      const err = await native.readHostname(pid).then(
        () => undefined,
        (e: unknown) => e,
      );
      expectNativeError(err, ['ENOENT', 'ESRCH'], 'open');
      expect((err as NativeError).path).toBe(`/proc/${pid}/ns/uts`);
    });
  });

  describe('.getUserByName, .getUserById and .listUsers', () => {
    interface Passwd {
      name: string;
      uid: number;
      gid: number;
      home: string;
      shell: string;
    }
    /** `getent passwd [key]`: NSS as glibc's own tool reads it. */
    function getent(...keys: string[]): Passwd[] {
      let out: string;
      try {
        out = execFileSync('getent', ['passwd', ...keys], { encoding: 'utf8' });
      } catch (err) {
        if ((err as { status?: number }).status === 2) return []; // no such key
        throw err;
      }
      return out
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => {
          const [name, , uid, gid, , home, shell] = l.split(':');
          return { name: name!, uid: Number(uid), gid: Number(gid), home: home!, shell: shell! };
        });
    }

    it('find users by name and by uid as getent does', () => {
      for (const entry of getent().slice(0, 10)) {
        expect(native.getUserByName(entry.name)).toEqual(getent(entry.name)[0]);
        expect(native.getUserById(entry.uid)).toEqual(getent(String(entry.uid))[0]);
      }
      expect(native.getUserByName('root')).toEqual(getent('root')[0]);
      expect(native.getUserById(0)?.name).toBe('root');
    });

    it('return null for a user that does not exist', () => {
      const name = `croot-t-nobody-${process.pid}`;
      expect(getent(name)).toEqual([]);
      expect(native.getUserByName(name)).toBeNull();
      const unused = 4294967000;
      expect(getent(String(unused))).toEqual([]);
      expect(native.getUserById(unused)).toBeNull();
    });

    it('list the users getent enumerates', () => {
      const byName = (a: Passwd, b: Passwd): number => a.name.localeCompare(b.name) || a.uid - b.uid;
      expect([...native.listUsers()].sort(byName)).toEqual(getent().sort(byName));
    });

    it('refuse a uid that is not one', () => {
      const err = catchSync(() => native.getUserById(-1)) as Error & { code: string };
      expect(err.code).toBe('ERR_INVALID_ARG_VALUE');
      expect((catchSync(() => native.getUserById(2 ** 32)) as { code: string }).code).toBe('ERR_INVALID_ARG_VALUE');
    });
  });

  describe('.sendWithFds and .recvWithFds', () => {
    it('pass two pipe fds in one message, and the received fds are the same pipes', async () => {
      const srv = await startServer();
      const [r1, w1] = native.pipe();
      const [r2, w2] = native.pipe();
      const clientFd = native.connectUnix(srv.path);
      try {
        const accepted = await srv.accept();
        // The accepted socket is non-blocking (libuv's): the send path for such sockets is exercised.
        const sent = native.sendWithFds(fdOf(accepted), Buffer.from('fds!'), [r1, w2]);
        expect(sent).toBe(4);
        const msg = await native.recvWithFds(clientFd, 64, 5000);
        expect(msg.data.toString()).toBe('fds!');
        expect(msg.fds).toHaveLength(2);
        const [gotR1, gotW2] = msg.fds as [number, number];
        for (const fd of msg.fds) expect(native.getFdFlags(fd) & native.FD_CLOEXEC).toBe(native.FD_CLOEXEC);

        fs.writeSync(w1, 'one');
        const buf = Buffer.alloc(16);
        expect(buf.subarray(0, fs.readSync(gotR1, buf)).toString()).toBe('one');
        fs.writeSync(gotW2, 'two');
        expect(buf.subarray(0, fs.readSync(r2, buf)).toString()).toBe('two');
        native.close(gotR1);
        native.close(gotW2);
      } finally {
        for (const fd of [r1, w1, r2, w2, clientFd]) native.close(fd);
        await srv.stop();
      }
    });

    it('reads exactly one message per call and reports an empty one when the peer closes', async () => {
      const srv = await startServer();
      const clientFd = native.connectUnix(srv.path);
      try {
        const accepted = await srv.accept();
        accepted.write('hello');
        const first = await native.recvWithFds(clientFd, 3, 5000);
        expect(first.data.toString()).toBe('hel');
        const second = await native.recvWithFds(clientFd, 64, 5000);
        expect(second.data.toString()).toBe('lo');
        expect(second.fds).toEqual([]);
        accepted.end();
        const last = await native.recvWithFds(clientFd, 64, 5000);
        expect(last.data.length).toBe(0);
      } finally {
        native.close(clientFd);
        await srv.stop();
      }
    });

    it('rejects with ETIMEDOUT after the timeout without blocking the event loop', async () => {
      const srv = await startServer();
      const clientFd = native.connectUnix(srv.path);
      try {
        await srv.accept();
        let ticks = 0;
        const timer = setInterval(() => ticks++, 10);
        const started = Date.now();
        const err = await native.recvWithFds(clientFd, 64, 300).then(
          () => undefined,
          (e: unknown) => e,
        );
        clearInterval(timer);
        expectNativeError(err, 'ETIMEDOUT', 'poll');
        expect(Date.now() - started).toBeGreaterThanOrEqual(290);
        expect(ticks).toBeGreaterThan(5);
      } finally {
        native.close(clientFd);
        await srv.stop();
      }
    });

    it('send writes bytes the server receives', async () => {
      const srv = await startServer();
      const clientFd = native.connectUnix(srv.path);
      try {
        const accepted = await srv.accept();
        const data = once(accepted, 'data');
        expect(native.send(clientFd, Buffer.from('ping'))).toBe(4);
        const [chunk] = (await data) as [Buffer];
        expect(chunk.toString()).toBe('ping');
      } finally {
        native.close(clientFd);
        await srv.stop();
      }
    });

    it('refuses to attach fds to an empty message', () => {
      const [r, w] = native.pipe();
      try {
        const err = catchSync(() => native.sendWithFds(w, Buffer.alloc(0), [r])) as Error & { code: string };
        expect(types.isNativeError(err) && err.name).toBe('TypeError');
        expect(err.code).toBe('ERR_INVALID_ARG_VALUE');
      } finally {
        native.close(r);
        native.close(w);
      }
    });
  });

  describe('fds it creates', () => {
    it('are all close-on-exec', async () => {
      const srv = await startServer();
      const [r, w] = native.pipe();
      const sock = native.connectUnix(srv.path);
      try {
        for (const fd of [r, w, sock]) expect(native.getFdFlags(fd) & native.FD_CLOEXEC).toBe(native.FD_CLOEXEC);
      } finally {
        for (const fd of [r, w, sock]) native.close(fd);
        await srv.stop();
      }
    });
  });

  describe('error paths', () => {
    it('throw code, errno and syscall and leak no fd', async () => {
      const srv = await startServer();
      const clientFd = native.connectUnix(srv.path);
      try {
      await srv.accept();
      // The namespace thread holds one fd of its own (crootd's UTS namespace) for its life: start it first.
      await native.readHostname(impossiblePid()).catch(() => undefined);
      const before = openFds();

      expectNativeError(catchSync(() => native.connectUnix(path.join(os.tmpdir(), `croot-t-missing-${process.pid}`))), 'ENOENT', 'connect');
      expectNativeError(catchSync(() => native.spawn('/nonexistent/croot-t', ['x'], [], {})), 'ENOENT', 'execve');
      expectNativeError(
        await native.recvWithFds(clientFd, 16, 50).then(
          () => undefined,
          (e: unknown) => e,
        ),
        'ETIMEDOUT',
        'poll',
      );
      expectNativeError(
        await native.readHostname(impossiblePid()).then(
          () => undefined,
          (e: unknown) => e,
        ),
        ['ENOENT', 'ESRCH'],
        'open',
      );
      const [r, w] = native.pipe();
      native.close(r);
      expectNativeError(catchSync(() => native.sendWithFds(w, Buffer.from('x'), [w])), 'ENOTSOCK', 'sendmsg');
      native.close(w);
      expectNativeError(catchSync(() => native.close(w)), 'EBADF', 'close');

      expect(openFds()).toEqual(before);
      } finally {
        native.close(clientFd);
        await srv.stop();
      }
    });
  });
});
