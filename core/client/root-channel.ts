/**
 * The PCP client layer both root-socket APIs stand on: RootClient (the
 * Promise API) and the C-shaped pmdaRoot* calls. One connection whose INFO
 * was checked as PCP's C client checks it, one request and its reply at a
 * time (requests are encoded by the protocol codec, in host byte order), and
 * each reply's header checked in libpcp_pmda's order: size, type, version,
 * status. Failures are CrootErrors whose status is the number libpcp_pmda
 * returns for them; each API decides what a failure means to its caller.
 */
import { CrootError, Errno, PM_ERR_NOCONTAINER, type ErrorCode } from '../errors/croot-error.js';
import { systemError } from '../errors/system-error.js';
import { closeFds } from '../host/close-fds.js';
import { errorText } from '../protocol/error-text.js';
import { ROOT_PDU_VERSION, decodeHeader, decodeInfo, type InfoPdu, type PduHeader } from '../protocol/root-pdus.js';
import type { ReceivedPdu, RootTransport } from './root-transport.js';

/** Every call's bound, connecting included, unless the caller gives one. */
export const DEFAULT_TIMEOUT_MS = 10000;

/** What one exchange gave: the reply as read (empty `data`: the server closed), or the failure and its stage. */
export type Exchange =
  | { readonly ok: true; readonly pdu: ReceivedPdu }
  | { readonly ok: false; readonly stage: 'send' | 'receive'; readonly error: CrootError };

const STATUS_CODES: ReadonlyMap<number, ErrorCode> = new Map<number, ErrorCode>([
  [PM_ERR_NOCONTAINER, 'ERR_NO_CONTAINER'],
  [-Errno.ENOTUNIQ, 'ERR_AMBIGUOUS_NAME'],
  [-Errno.ESRCH, 'ERR_NOT_RUNNING'],
  [-Errno.ESTALE, 'ERR_PID_REUSED'],
]);

/**
 * The CrootError for a status the server replied with: a negative one by
 * the code it means to croot (ERR_REMOTE when none), a positive one
 * (which no server should send) as ERR_PROTOCOL carrying it.
 */
export function remoteError(status: number, what: string): CrootError {
  if (status > 0) return new CrootError('ERR_PROTOCOL', `${what}: reply has positive status ${status}`, { status });
  const code = STATUS_CODES.get(status) ?? 'ERR_REMOTE';
  // The wire carries only the status: say where the candidates are named.
  const hint = code === 'ERR_AMBIGUOUS_NAME' ? ' — the name fits several containers; the server log names them' : '';
  return new CrootError(code, `${what}: ${errorText(status)} (${status})${hint}`, { status });
}

/** The server closed the connection where a PDU was expected. */
export function peerClosed(message: string): CrootError {
  return new CrootError('ERR_NOT_CONNECTED', message, { details: { peerClosed: true } });
}

/** Whether `err` says the server closed the connection (a read of 0 bytes), rather than a failure of the socket. */
export function isPeerClosed(err: CrootError): boolean {
  return err.details.peerClosed === true;
}

/**
 * libpcp_pmda's checks of a reply's header, in its order: at least
 * `minSize` bytes were read (-EINVAL), the reply type (-ESRCH), the version
 * (-ENOTSUP), then the status (the server's own). Returns the header.
 */
export function checkReply(data: Buffer, type: number, minSize: number, what: string): PduHeader {
  if (data.length < minSize) {
    throw new CrootError('ERR_PROTOCOL', `${what}: reply of ${data.length} bytes is shorter than ${minSize}`, { status: -Errno.EINVAL });
  }
  const h = decodeHeader(data);
  if (h.type !== type) {
    throw new CrootError('ERR_UNEXPECTED_PDU', `${what}: expected reply type 0x${type.toString(16)}, got 0x${(h.type >>> 0).toString(16)}`);
  }
  if (h.version > ROOT_PDU_VERSION) throw new CrootError('ERR_VERSION', `${what}: reply has PDU version ${h.version}`);
  if (h.status !== 0) throw remoteError(h.status, what);
  return h;
}

/**
 * Reads and checks the server's INFO on a connected transport, as libpcp's
 * __pmdaRecvRootPDUInfo does: size -EINVAL, type -ESRCH, version -ENOTSUP,
 * the INFO's status, length -E2BIG; a server that closes first is a
 * peerClosed error. On failure the transport is closed.
 */
export async function readInfo(transport: RootTransport, path: string, timeoutMs: number): Promise<InfoPdu> {
  try {
    const { data, fds } = await transport.receive(timeoutMs);
    closeFds(fds);
    if (data.length === 0) throw peerClosed(`${path} closed the connection before sending INFO`);
    return decodeInfo(data);
  } catch (err) {
    transport.close();
    throw err;
  }
}

function aborted(signal: AbortSignal): CrootError {
  return new CrootError('ERR_ABORTED', 'call aborted', { cause: signal.reason });
}

function asCrootError(err: unknown, what: string): CrootError {
  return systemError(err, what, { connect: true });
}

export class RootChannel {
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly transport: RootTransport,
    /** The socket this channel is connected to. */
    readonly path: string,
    /** The server's INFO. */
    readonly info: InfoPdu,
  ) {}

  /** A channel on a connected transport, once the server's INFO passed readInfo's checks (else the transport is closed). */
  static async start(transport: RootTransport, path: string, timeoutMs: number): Promise<RootChannel> {
    return new RootChannel(transport, path, await readInfo(transport, path, timeoutMs));
  }

  /** Whether the channel can still carry requests. */
  get open(): boolean {
    return !this.closed;
  }

  /** True when replies can carry fds (SCM_RIGHTS): the transport passes them. */
  get passesFds(): boolean {
    return this.transport.passesFds === true;
  }

  /**
   * Sends `request` and reads its reply once every exchange queued before it
   * is done. A transport failure (or an abort while waiting) leaves the
   * stream out of step, so it closes the channel; a reply that arrives after
   * an abort has its fds closed.
   */
  exchange(request: Buffer, timeoutMs: number, signal?: AbortSignal): Promise<Exchange> {
    const run = this.tail.then(() => this.exchangeNow(request, timeoutMs, signal));
    this.tail = run;
    return run;
  }

  /** Closes the connection; queued exchanges fail at their send. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.transport.close();
  }

  private async exchangeNow(request: Buffer, timeoutMs: number, signal: AbortSignal | undefined): Promise<Exchange> {
    if (this.closed) return { ok: false, stage: 'send', error: new CrootError('ERR_NOT_CONNECTED', `connection to ${this.path} is closed`) };
    if (signal?.aborted) return { ok: false, stage: 'send', error: aborted(signal) };
    try {
      await this.transport.send(request);
    } catch (err) {
      this.close();
      return { ok: false, stage: 'send', error: asCrootError(err, 'send') };
    }
    try {
      return { ok: true, pdu: await withAbort(this.transport.receive(timeoutMs), signal) };
    } catch (err) {
      // The reply may still come: the stream is out of step, so it cannot be used again.
      this.close();
      return { ok: false, stage: 'receive', error: asCrootError(err, 'receive') };
    }
  }
}

/** Rejects as soon as `signal` aborts; a reply that arrives later has its fds closed. */
function withAbort(promise: Promise<ReceivedPdu>, signal: AbortSignal | undefined): Promise<ReceivedPdu> {
  if (signal === undefined) return promise;
  return new Promise((resolve, reject) => {
    let done = false;
    const onAbort = (): void => {
      if (done) return;
      done = true;
      reject(aborted(signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (pdu) => {
        signal.removeEventListener('abort', onAbort);
        if (done) closeFds(pdu.fds);
        else {
          done = true;
          resolve(pdu);
        }
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        if (!done) {
          done = true;
          reject(err);
        }
      },
    );
  });
}
