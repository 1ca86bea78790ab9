/**
 * The core's host services (core/host/host-services.ts) implemented with the
 * addon. Native errors are translated into CrootErrors here, at the edge,
 * and kept as `cause`.
 */
import { inject, injectable } from 'inversify';
import { CrootError } from '../core/errors/croot-error.js';
import { systemError } from '../core/errors/system-error.js';
import type { FdSender, NamespaceHostnameReader, PeerCredentialReader, PeerCredentials, ProcessHandle } from '../core/host/host-services.js';
import { CrootNative } from './croot-native.js';

/**
 * A CrootError for a failed native call, through core's one translation of
 * system errors (core/errors/system-error.ts): ENOENT/ESRCH become
 * ERR_NOT_RUNNING when `notRunning` says the call was about a process;
 * EPERM/EACCES ERR_NOT_PERMITTED; EPIPE/ECONNRESET/ENOTCONN
 * ERR_NOT_CONNECTED; the rest ERR_SYSTEM with status -errno.
 */
export function translateNativeError(err: unknown, what: string, options: { notRunning?: boolean } = {}): CrootError {
  return systemError(err, what, { process: options.notRunning === true });
}

function abortedError(signal: AbortSignal, what: string): CrootError {
  return new CrootError('ERR_ABORTED', `${what}: aborted`, { cause: signal.reason });
}

function exitedError(what: string): CrootError {
  return new CrootError('ERR_NOT_RUNNING', `${what}: the process has exited`);
}

/**
 * Reads a hostname through the UTS namespace of a process, on the addon's
 * namespace thread. Through a handle with a pidfd the kernel guarantees the
 * process: a reused PID is never entered (ESRCH, so ERR_NOT_RUNNING). Through
 * a /proc handle, the start time is checked before and after the read.
 */
@injectable()
export class NativeNamespaceHostnameReader implements NamespaceHostnameReader {
  constructor(@inject(CrootNative) private readonly native: CrootNative) {}

  readHostname(target: number | ProcessHandle, signal?: AbortSignal): Promise<string> {
    const pid = typeof target === 'number' ? target : target.pid;
    const what = `hostname of process ${pid}`;
    if (signal?.aborted === true) return Promise.reject(abortedError(signal, what));
    const reading = this.start(target, pid, what).catch((err: unknown) => {
      throw translateNativeError(err, what, { notRunning: true });
    });
    if (signal === undefined) return reading;
    // An abort settles the caller's promise at once; the job finishes harmlessly on the thread.
    return new Promise<string>((resolve, reject) => {
      const onAbort = (): void => reject(abortedError(signal, what));
      signal.addEventListener('abort', onAbort, { once: true });
      reading.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  private async start(target: number | ProcessHandle, pid: number, what: string): Promise<string> {
    if (typeof target === 'number') return this.native.readHostname(pid);
    if (!target.isAlive()) throw exitedError(what);
    // Read once: the job takes its own copy of the fd before this returns.
    const pidfd = target.pidfd;
    if (pidfd !== undefined) return this.native.readHostname(pid, pidfd);
    const hostname = await this.native.readHostname(pid);
    // The PID may have been reused while the thread read it: only a process still alive answers.
    if (!target.isAlive()) throw exitedError(what);
    return hostname;
  }
}

/** SO_PEERCRED through the addon. */
@injectable()
export class NativePeerCredentialReader implements PeerCredentialReader {
  constructor(@inject(CrootNative) private readonly native: CrootNative) {}

  peerCredentials(fd: number): PeerCredentials {
    try {
      return this.native.peerCredentials(fd);
    } catch (err) {
      throw translateNativeError(err, `peer credentials of fd ${fd}`);
    }
  }
}

/** SCM_RIGHTS sends through the addon. */
@injectable()
export class NativeFdSender implements FdSender {
  constructor(@inject(CrootNative) private readonly native: CrootNative) {}

  sendWithFds(fd: number, data: Buffer, fds: readonly number[]): number {
    try {
      return this.native.sendWithFds(fd, data, fds);
    } catch (err) {
      throw translateNativeError(err, `sending ${fds.length} fd(s) on fd ${fd}`);
    }
  }
}
