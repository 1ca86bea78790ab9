import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { createCrootContainer } from '../core/create-container.js';
import { CrootError, Errno } from '../core/errors/croot-error.js';
import { DirectoryWatcher, FdSender, NamespaceHostnameReader, PeerCredentialReader, ProcessAnchor } from '../core/host/host-services.js';
import { ProcProcessHandle } from '../core/host/proc-process-handle.js';
import { describeWith, probes } from '../test/support/components.js';
import { settle } from '../test/support/outcomes.js';
import { startSandbox } from '../test/support/sandbox.js';
import { CrootNative } from './croot-native.js';
import type { NativeError } from './croot-native.js';
import { translateNativeError } from './native-host-services.js';
import { nativeModule } from './native-module.js';
import { NativeDirectoryWatcher } from './native-directory-watcher.js';
import { NativeProcessAnchor } from './native-process-anchor.js';

/** The process a pidfd of this process is open on (its fdinfo's `Pid:`), or undefined when `fd` is not an open pidfd. */
function pidOfFd(fd: number): number | undefined {
  try {
    const line = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').split('\n').find((l) => l.startsWith('Pid:'));
    return line === undefined ? undefined : Number(line.slice(4).trim());
  } catch {
    return undefined;
  }
}

function impossiblePid(): number {
  return Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim());
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

describe('nativeModule', () => {
  const container = createCrootContainer({ modules: [nativeModule] });
  const native = container.get<CrootNative>(CrootNative);

  // setns needs CAP_SYS_ADMIN, even into one's own namespace.
  describeWith('root', probes.root, 'NamespaceHostnameReader', () => {
    const reader = container.get<NamespaceHostnameReader>(NamespaceHostnameReader);

    it('reads the hostname of a running process', async () => {
      await expect(reader.readHostname(process.pid)).resolves.toBe(os.hostname());
    });

    it('turns a process that is gone into ERR_NOT_RUNNING with the native error as cause', async () => {
      const err = (await rejection(reader.readHostname(impossiblePid()))) as CrootError;
      expect(err).toBeInstanceOf(CrootError);
      expect(err.code).toBe('ERR_NOT_RUNNING');
      expect(err.status).toBe(-Errno.ESRCH);
      expect(err.cause).toMatchObject({ code: 'ENOENT', syscall: 'open', errno: Errno.ENOENT });
    });

    it('rejects with ERR_ABORTED at once when the signal is already aborted', async () => {
      const err = (await rejection(reader.readHostname(process.pid, AbortSignal.abort()))) as CrootError;
      expect(err).toBeInstanceOf(CrootError);
      expect(err.code).toBe('ERR_ABORTED');
    });

    it('rejects with ERR_ABORTED when aborted while the thread runs', async () => {
      const controller = new AbortController();
      const pending = reader.readHostname(process.pid, controller.signal);
      controller.abort();
      const err = (await rejection(pending)) as CrootError;
      expect(err.code).toBe('ERR_ABORTED');
    });

    it('resolves normally with a signal that is never aborted', async () => {
      await expect(reader.readHostname(process.pid, new AbortController().signal)).resolves.toBe(os.hostname());
    });

    it('reads through a pidfd handle of the bound ProcessAnchor, and answers ERR_NOT_RUNNING once that process has exited', async () => {
      const sandbox = await startSandbox();
      const handle = container.get<ProcessAnchor>(ProcessAnchor).open(sandbox.pid, () => undefined)!;
      try {
        expect(handle.pidfd).toBeDefined();
        await expect(reader.readHostname(handle)).resolves.toBe(sandbox.hostname);
        await expect(reader.readHostname(handle, new AbortController().signal)).resolves.toBe(sandbox.hostname);
        await sandbox.stop();
        const err = (await rejection(reader.readHostname(handle))) as CrootError;
        expect(err).toBeInstanceOf(CrootError);
        expect(err.code).toBe('ERR_NOT_RUNNING');
        handle.close();
        // A closed handle vouches for nothing.
        expect(((await rejection(reader.readHostname(handle))) as CrootError).code).toBe('ERR_NOT_RUNNING');
      } finally {
        handle.close();
        await sandbox.stop();
      }
    });

    it('answers readHostnameNow like readHostname, at once or through a promise, with the same errors', async () => {
      const sandbox = await startSandbox();
      const handle = container.get<ProcessAnchor>(ProcessAnchor).open(sandbox.pid, () => undefined)!;
      try {
        for (const target of [handle, sandbox.pid, ProcProcessHandle.open(sandbox.pid)!]) {
          expect(await settle(() => reader.readHostnameNow(target))).toBe(sandbox.hostname);
        }
        await sandbox.stop();
        for (const target of [handle, impossiblePid()]) {
          const err = (await rejection(settle(() => reader.readHostnameNow(target)))) as CrootError;
          expect(err).toBeInstanceOf(CrootError);
          expect(err.code).toBe('ERR_NOT_RUNNING');
        }
      } finally {
        handle.close();
        await sandbox.stop();
      }
    });

    it('keeps a handle’s pidfd open while a read borrows it, even past close(), and closes it when the read settles', async () => {
      const sandbox = await startSandbox();
      const anchor = container.get<ProcessAnchor>(ProcessAnchor) as NativeProcessAnchor;
      const handle = anchor.open(sandbox.pid, () => undefined)!;
      const fd = handle.pidfd!;
      const watched = anchor.watchedCount();
      try {
        // With a signal the read is always handed over to a promise: it borrows the pidfd.
        const reading = reader.readHostname(handle, new AbortController().signal);
        handle.close();
        expect(handle.pidfd).toBeUndefined();
        expect(handle.isAlive()).toBe(false);
        expect(anchor.watchedCount()).toBe(watched - 1);
        // The kernel still has the fd, on the same process, while the read is pending.
        expect(pidOfFd(fd)).toBe(sandbox.pid);
        await expect(reading).resolves.toBe(sandbox.hostname);
        expect(pidOfFd(fd)).not.toBe(sandbox.pid);
      } finally {
        handle.close();
        await sandbox.stop();
      }
    });

    it('answers a pidfd handle’s hostname again without the namespace thread until a hostname is set anywhere, never an old one', async () => {
      const sandbox = await startSandbox();
      const handle = container.get<ProcessAnchor>(ProcessAnchor).open(sandbox.pid, () => undefined)!;
      const jobs = (): number => {
        const info = native.namespaceThreadInfo();
        return info.answeredAtOnce + info.handedOver;
      };
      /** The hostname in the sandbox's UTS namespace, as the kernel gives it to a process there. */
      const inside = (): string => execFileSync('nsenter', ['-t', String(sandbox.pid), '-u', 'hostname'], { encoding: 'utf8' }).trim();
      try {
        expect(await settle(() => reader.readHostnameNow(handle))).toBe(sandbox.hostname);
        const before = jobs();
        for (let i = 0; i < 20; i++) expect(await settle(() => reader.readHostnameNow(handle))).toBe(sandbox.hostname);
        // Other tests' containers may set hostnames meanwhile; with none, no job at all.
        expect(jobs() - before).toBeLessThan(20);

        execFileSync('nsenter', ['-t', String(sandbox.pid), '-u', 'hostname', `${sandbox.hostname}-b`]);
        expect(inside()).toBe(`${sandbox.hostname}-b`);
        expect(await settle(() => reader.readHostnameNow(handle))).toBe(inside());
        await expect(reader.readHostname(handle, new AbortController().signal)).resolves.toBe(inside());

        // A write of the sysctl file inside the namespace, not sethostname(2).
        execFileSync('nsenter', ['-t', String(sandbox.pid), '-u', 'sh', '-c', `echo ${sandbox.hostname}-c > /proc/sys/kernel/hostname`]);
        expect(inside()).toBe(`${sandbox.hostname}-c`);
        expect(await settle(() => reader.readHostnameNow(handle))).toBe(inside());

        // A hostname set in a namespace of nobody's concern: read again, same answer.
        const again = jobs();
        execFileSync('unshare', ['--uts', 'hostname', 'croot-elsewhere']);
        expect(await settle(() => reader.readHostnameNow(handle))).toBe(`${sandbox.hostname}-c`);
        expect(jobs()).toBeGreaterThan(again);

        await sandbox.stop();
        expect(((await rejection(settle(() => reader.readHostnameNow(handle)))) as CrootError).code).toBe('ERR_NOT_RUNNING');
      } finally {
        handle.close();
        await sandbox.stop();
      }
    });

    it('reads through a /proc handle, and answers ERR_NOT_RUNNING once that process has exited', async () => {
      const sandbox = await startSandbox();
      const handle = ProcProcessHandle.open(sandbox.pid)!;
      try {
        await expect(reader.readHostname(handle)).resolves.toBe(sandbox.hostname);
        await sandbox.stop();
        expect(((await rejection(reader.readHostname(handle))) as CrootError).code).toBe('ERR_NOT_RUNNING');
      } finally {
        handle.close();
        await sandbox.stop();
      }
    });
  });

  it('binds ProcessAnchor and DirectoryWatcher to the native implementations, one each', () => {
    const anchor = container.get<ProcessAnchor>(ProcessAnchor);
    expect(anchor).toBeInstanceOf(NativeProcessAnchor);
    expect(container.get<ProcessAnchor>(ProcessAnchor)).toBe(anchor);
    expect(anchor.mode()).toEqual({ kind: 'pidfd' });
    const watcher = container.get<DirectoryWatcher>(DirectoryWatcher);
    expect(watcher).toBeInstanceOf(NativeDirectoryWatcher);
    expect(container.get<DirectoryWatcher>(DirectoryWatcher)).toBe(watcher);
  });

  describe('PeerCredentialReader and FdSender', () => {
    it('read the peer and send fds on a real connection', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'croot-t-'));
      const server = net.createServer();
      server.listen(path.join(dir, 's'));
      await once(server, 'listening');
      const accepted = once(server, 'connection');
      const clientFd = native.connectUnix(path.join(dir, 's'));
      const [socket] = (await accepted) as [net.Socket];
      const [r, w] = native.pipe();
      try {
        const fd = (socket as unknown as { _handle: { fd: number } })._handle.fd;
        const creds = container.get<PeerCredentialReader>(PeerCredentialReader).peerCredentials(fd);
        expect(creds).toEqual({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
        expect(container.get<FdSender>(FdSender).sendWithFds(fd, Buffer.from('x'), [r])).toBe(1);
        const msg = await native.recvWithFds(clientFd, 8, 5000);
        expect(msg.fds).toHaveLength(1);
        fs.writeSync(w, 'via the passed fd');
        const buf = Buffer.alloc(64);
        expect(buf.subarray(0, fs.readSync(msg.fds[0]!, buf)).toString()).toBe('via the passed fd');
        native.close(msg.fds[0]!);
      } finally {
        native.close(r);
        native.close(w);
        native.close(clientFd);
        socket.destroy();
        await new Promise<void>((done) => server.close(() => done()));
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('translate a failed call into ERR_SYSTEM with -errno as status', () => {
      const [r, w] = native.pipe();
      try {
        let err: unknown;
        try {
          container.get<PeerCredentialReader>(PeerCredentialReader).peerCredentials(r);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(CrootError);
        expect(err).toMatchObject({ code: 'ERR_SYSTEM', status: -os.constants.errno.ENOTSOCK });
        expect((err as CrootError).cause).toMatchObject({ code: 'ENOTSOCK', syscall: 'getsockopt' });
      } finally {
        native.close(r);
        native.close(w);
      }
    });
  });
});

describe('translateNativeError', () => {
  // The addon's shape; EPERM/EACCES cannot be provoked here, where the tests run as root.
  function nativeError(code: string, errno: number, syscall: string): NativeError {
    return Object.assign(new Error(`${syscall}: ${code}`), { code, errno, syscall });
  }

  it.each([
    ['EPERM', Errno.EPERM, 'ERR_NOT_PERMITTED', -Errno.EPERM],
    ['EACCES', Errno.EACCES, 'ERR_NOT_PERMITTED', -Errno.EPERM],
    ['ESRCH', Errno.ESRCH, 'ERR_NOT_RUNNING', -Errno.ESRCH],
    ['ENOENT', Errno.ENOENT, 'ERR_NOT_RUNNING', -Errno.ESRCH],
    ['EPIPE', 32, 'ERR_NOT_CONNECTED', -Errno.ENOTCONN],
    ['EMFILE', Errno.EMFILE, 'ERR_SYSTEM', -Errno.EMFILE],
  ] as const)('maps %s about a process to %s', (code, errno, expected, status) => {
    const cause = nativeError(code, errno, 'setns');
    const err = translateNativeError(cause, 'hostname of process 1', { notRunning: true });
    expect(err.code).toBe(expected);
    expect(err.status).toBe(status);
    expect(err.cause).toBe(cause);
  });

  it('keeps ENOENT about something else a system error', () => {
    const err = translateNativeError(nativeError('ENOENT', Errno.ENOENT, 'connect'), 'connecting');
    expect(err).toMatchObject({ code: 'ERR_SYSTEM', status: -Errno.ENOENT });
  });
});
