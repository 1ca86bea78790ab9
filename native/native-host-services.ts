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
import { PidfdProcessHandle } from './native-process-anchor.js';

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

function exitedError(pid: number): CrootError {
  return new CrootError('ERR_NOT_RUNNING', `hostname of process ${pid}: the process has exited`);
}

/**
 * Reads a hostname through the UTS namespace of a process, on the addon's
 * namespace thread. Through a handle with a pidfd the kernel guarantees the
 * process: a reused PID is never entered (ESRCH, so ERR_NOT_RUNNING). Through
 * a /proc handle, the start time is checked before and after the read.
 *
 * A hostname read through a pidfd handle is kept on the handle and answered
 * again, without the namespace thread, for as long as the addon's
 * utsGeneration() stays what it was before the read: the kernel raises it
 * whenever a hostname is set in any namespace, so a kept hostname is never
 * older than the last change anywhere. A handle is one process; a restarted
 * container is a new handle.
 */
@injectable()
export class NativeNamespaceHostnameReader implements NamespaceHostnameReader {
  constructor(@inject(CrootNative) private readonly native: CrootNative) {}

  readHostname(target: number | ProcessHandle, signal?: AbortSignal): Promise<string> {
    if (signal?.aborted === true) return Promise.reject(abortedError(signal, whatOf(target)));
    let reading: Promise<string>;
    try {
      // With a signal the JS thread does not wait: the read stays abortable.
      const answer = this.read(target, signal === undefined ? undefined : 0);
      reading = typeof answer === 'string' ? Promise.resolve(answer) : answer;
    } catch (err) {
      return Promise.reject(err);
    }
    if (signal === undefined) return reading;
    // An abort settles the caller's promise at once; the job finishes harmlessly on the thread.
    return new Promise<string>((resolve, reject) => {
      const onAbort = (): void => reject(abortedError(signal, whatOf(target)));
      signal.addEventListener('abort', onAbort, { once: true });
      reading.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  readHostnameNow(target: number | ProcessHandle, checkedAlive = false): string | Promise<string> {
    return this.read(target, undefined, checkedAlive);
  }

  /** The read; `waitMicros` as for the addon's readHostnameNow (undefined: its default). */
  private read(target: number | ProcessHandle, waitMicros: number | undefined, checkedAlive = false): string | Promise<string> {
    if (typeof target === 'number') return this.now(target, undefined, waitMicros);
    const pid = target.pid;
    if (target instanceof PidfdProcessHandle) {
      const pidfd = target.pidfd;
      // Closed: it vouches for nothing. An exited process is refused by setns itself (ESRCH).
      if (pidfd === undefined) throw exitedError(pid);
      // Taken before the read: a hostname set while it runs raises the count again.
      const generation = this.utsGeneration();
      if (generation >= 0 && target.hostnameGeneration === generation) {
        // No hostname was set anywhere since this one was read through the same pidfd.
        if (!checkedAlive && !target.isAlive()) throw exitedError(pid);
        return target.hostname;
      }
      const answer = this.now(pid, pidfd, waitMicros);
      if (typeof answer === 'string') return remember(target, answer, generation);
      // The job borrows the pidfd until it settles (no JS ran since the call: it is still open).
      target.borrowPidfd();
      return answer.then((hostname) => remember(target, hostname, generation)).finally(() => target.returnPidfd());
    }
    const pidfd = target.pidfd;
    if (pidfd !== undefined) {
      // Another anchor's pidfd, which may be closed at any time: the job takes a copy of its own.
      return inRealm(this.native.readHostname(pid, pidfd), pid);
    }
    // A /proc handle: the PID may be reused while the thread reads it, so only a process still alive answers.
    if (!target.isAlive()) throw exitedError(pid);
    const answer = this.now(pid, undefined, waitMicros);
    if (typeof answer !== 'string') return answer.then((hostname) => stillAlive(target, hostname));
    return stillAlive(target, answer);
  }

  /** The addon's count of hostname changes; -1 (cache nothing) when it cannot be read. */
  private utsGeneration(): number {
    try {
      return this.native.utsGeneration();
    } catch {
      return -1;
    }
  }

  /** One addon readHostnameNow, its error (thrown or rejected) translated at the edge. */
  private now(pid: number, pidfd: number | undefined, waitMicros: number | undefined): string | Promise<string> {
    let answer: string | Promise<string>;
    try {
      answer = this.native.readHostnameNow(pid, pidfd, waitMicros);
    } catch (err) {
      throw translateNativeError(err, `hostname of process ${pid}`, { notRunning: true });
    }
    return typeof answer === 'string' ? answer : inRealm(answer, pid);
  }
}

/**
 * The addon's promise as one of this realm (the addon's are the main
 * realm's, which `instanceof Promise` misses under Jest), its rejection
 * translated.
 */
function inRealm(answer: Promise<string>, pid: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    answer.then(resolve, (err: unknown) => reject(translateNativeError(err, `hostname of process ${pid}`, { notRunning: true })));
  });
}

/** Keeps `hostname` on the handle it was read through, valid while the count stays `generation`. */
function remember(handle: PidfdProcessHandle, hostname: string, generation: number): string {
  if (generation >= 0) {
    handle.hostname = hostname;
    handle.hostnameGeneration = generation;
  }
  return hostname;
}

function whatOf(target: number | ProcessHandle): string {
  return `hostname of process ${typeof target === 'number' ? target : target.pid}`;
}

function stillAlive(target: ProcessHandle, hostname: string): string {
  if (!target.isAlive()) throw exitedError(target.pid);
  return hostname;
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
