/**
 * A RootTransport on the native addon: a blocking unix socket read with ONE
 * recvmsg per reply, as PCP's C client does, so replies can carry fds
 * (SCM_RIGHTS), e.g. the two pipes of a pipe-IPC STARTPMDA.
 */
import { CrootError, Errno } from '../core/errors/croot-error.js';
import { errnoOf, systemError } from '../core/errors/system-error.js';
import { closeFds } from '../core/host/close-fds.js';
import { MAX_PDU_SIZE } from '../core/protocol/root-pdus.js';
import type { ReceivedPdu, RootTransport, RootTransportFactory } from '../core/client/root-transport.js';
import type { CrootNative } from './croot-native.js';
import { loadNative } from './load-native.js';

export class NativeTransport implements RootTransport {
  readonly passesFds = true;
  private closed = false;
  /** The receive in progress: the fd must outlive it (the addon reads it on another thread). */
  private pending: Promise<unknown> | undefined;

  constructor(
    private readonly native: CrootNative,
    /** The connected socket, owned by this transport. */
    readonly fd: number,
  ) {}

  /** Connects to `path` (a unix socket accepts at once or refuses). */
  static async connect(path: string, native: CrootNative = loadNative()): Promise<NativeTransport> {
    try {
      return new NativeTransport(native, native.connectUnix(path));
    } catch (err) {
      throw toCrootError(err, `cannot connect to ${path}`);
    }
  }

  async send(pdu: Buffer): Promise<void> {
    if (this.closed) throw new CrootError('ERR_NOT_CONNECTED', 'root socket is closed');
    let sent: number;
    try {
      sent = this.native.send(this.fd, pdu);
    } catch (err) {
      throw toCrootError(err, 'send');
    }
    if (sent !== pdu.length) {
      throw new CrootError('ERR_PROTOCOL', `sent ${sent} of ${pdu.length} bytes in one write`);
    }
  }

  async receive(timeoutMs: number): Promise<ReceivedPdu> {
    if (this.closed) throw new CrootError('ERR_NOT_CONNECTED', 'root socket is closed');
    if (this.pending !== undefined) throw new CrootError('ERR_PROTOCOL', 'a receive is already pending on this connection');
    const wait = Number.isFinite(timeoutMs) && timeoutMs >= 0 ? Math.min(Math.floor(timeoutMs), 2 ** 31 - 1) : -1;
    const recv = this.native.recvWithFds(this.fd, MAX_PDU_SIZE, wait);
    this.pending = recv.catch(() => undefined);
    try {
      const message = await recv;
      if (this.closed) {
        closeFds(message.fds);
        throw new CrootError('ERR_NOT_CONNECTED', 'root socket closed while waiting for a reply');
      }
      return { data: message.data, fds: message.fds };
    } catch (err) {
      throw toCrootError(err, 'recvmsg');
    } finally {
      this.pending = undefined;
      if (this.closed) this.release();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // A pending recvmsg still reads this fd: close it once that returns.
    if (this.pending === undefined) this.release();
  }

  private release(): void {
    try {
      this.native.close(this.fd);
    } catch {
      // already closed
    }
  }
}


function toCrootError(err: unknown, what: string): CrootError {
  if (CrootError.is(err)) return err;
  if (errnoOf(err) === Errno.ETIMEDOUT) return new CrootError('ERR_TIMEOUT', `${what}: no reply in time`, { cause: err });
  return systemError(err, what, { connect: true });
}

/** The native transport factory (receives fds; one recvmsg per reply). */
export const nativeTransport: RootTransportFactory = (path) => NativeTransport.connect(path);
