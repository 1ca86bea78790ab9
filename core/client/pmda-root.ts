/**
 * PCP's C API of pmdaRootConnect(3), in TypeScript, returning the numbers
 * libpcp_pmda (PCP 6.0.3) returns: a handle or a negative status, buffer
 * filling and NUL termination included. Statuses render with errorText().
 *
 * Where PCP crashes, leaks or blocks forever, this API stays defined:
 * - `name === null` asks "by pid" (pid = namelen, namelen 0); PCP dereferences NULL.
 * - fds received with an error reply or in an unexpected shape are closed; PCP leaks them.
 * - every wait is bounded (`timeoutMs`, then -ETIMEDOUT); PCP blocks.
 * - pmdaRootShutdown also releases the handle; PCP only shuts the socket down.
 */
import { defaultSocketPath } from '../config/croot-config.js';
import { CrootError, Errno } from '../errors/croot-error.js';
import {
  CONTAINER_HEADER_SIZE,
  INFO_SIZE,
  MAXPATHLEN,
  MAXPMDALEN,
  PDU_HEADER_SIZE,
  PduType,
  ROOT_PDU_VERSION,
  START_HEADER_SIZE,
  STOP_SIZE,
  decodeHeader,
} from '../protocol/root-pdus.js';
import { nodeSocketTransport } from './node-socket-transport.js';
import { closeFds } from '../host/close-fds.js';
import type { ReceivedPdu, RootTransport, RootTransportFactory } from './root-transport.js';

export interface PmdaRootConnectOptions {
  /** Default: pure Node (no fds, so pipe IPC gets infd = outfd = -1). */
  readonly transport?: RootTransportFactory;
  /** Bound of each wait for the server. Default 10 s. */
  readonly timeoutMs?: number;
}

interface Handle {
  readonly transport: RootTransport;
  readonly timeoutMs: number;
  tail: Promise<unknown>;
}

const handles = new Map<number, Handle>();
let nextHandle = 0;

/** What libpcp returns when send() fails: send's own -1, not -errno. */
const SEND_FAILED = -1;

/**
 * Connects and checks INFO. Resolves a handle >= 0, or: -1 when the connect
 * fails (PCP returns connect()'s -1 whatever errno was), -EINVAL for an INFO
 * that is not 24 bytes, -ESRCH wrong type, -ENOTSUP newer version, the INFO's
 * own status, -E2BIG wrong length field.
 */
export async function pmdaRootConnect(path?: string | null, options: PmdaRootConnectOptions = {}): Promise<number> {
  const socketPath = path ?? defaultSocketPath();
  const timeoutMs = options.timeoutMs ?? 10000;
  let transport: RootTransport;
  try {
    transport = await (options.transport ?? nodeSocketTransport)(socketPath, timeoutMs);
  } catch {
    return -1;
  }
  const received = await receive(transport, timeoutMs);
  if (typeof received === 'number') {
    transport.close();
    return received;
  }
  closeFds(received.fds);
  const sts = checkInfo(received.data);
  if (sts < 0) {
    transport.close();
    return sts;
  }
  const handle = nextHandle++;
  handles.set(handle, { transport, timeoutMs, tail: Promise.resolve() });
  return handle;
}

/** Shuts the connection down and releases the handle. */
export function pmdaRootShutdown(fd: number): void {
  const handle = handles.get(fd);
  if (handle === undefined) return;
  handles.delete(fd);
  handle.transport.close();
}

/**
 * The container's hostname into `buffer` (NUL-terminated); resolves its
 * length. `namelen` bytes of `name` are sent (cut at a NUL, zero-padded).
 * -ENOTCONN for fd < 0, -EINVAL namelen < 0, -E2BIG namelen >= 4096 or a
 * hostname that does not fit `buflen` with its NUL, else the reply's status.
 * A reply with no name leaves `buffer` untouched and resolves 0.
 */
export function pmdaRootContainerHostName(fd: number, name: string | Buffer | null, namelen: number, buffer: Buffer, buflen: number = buffer.length): Promise<number> {
  return containerCall(fd, PduType.HOSTNAME_REQ, name, namelen, (data) => copyName(data, buffer, buflen));
}

/** The container's init PID (or a negative status, as for pmdaRootContainerHostName). */
export function pmdaRootContainerProcessID(fd: number, name: string | Buffer | null, namelen: number): Promise<number> {
  return containerCall(fd, PduType.PROCESSID_REQ, name, namelen, (data) => {
    const sts = checkDecodable(data);
    return sts < 0 ? sts : int(data, 16);
  });
}

/** The container's cgroup name into `buffer`; resolves its length (as pmdaRootContainerHostName). */
export function pmdaRootContainerCGroupName(fd: number, name: string | Buffer | null, namelen: number, buffer: Buffer, buflen: number = buffer.length): Promise<number> {
  return containerCall(fd, PduType.CGROUPNAME_REQ, name, namelen, (data) => copyName(data, buffer, buflen));
}

export interface ProcessStartOut {
  pid?: number;
  /** Write end of the child's stdin, or -1 when no fds came (socket IPC, or a transport without fd passing). */
  infd?: number;
  /** Read end of the child's stdout, or -1. */
  outfd?: number;
}

/**
 * Starts a process as root: resolves 0 and fills `out`, or -EINVAL
 * (labellen or argslen <= 0), -E2BIG (labellen >= 64, argslen >= 4096), -1
 * (send failed), -ESRCH (wrong reply type), the reply's status, -EINVAL
 * (short reply), -E2BIG (length field < 104). The fds in `out` are the caller's.
 */
export function pmdaRootProcessStart(
  fd: number,
  ipctype: number,
  label: string | Buffer,
  labellen: number,
  args: string | Buffer,
  argslen: number,
  out: ProcessStartOut,
): Promise<number> {
  if (labellen <= 0 || argslen <= 0) return Promise.resolve(-Errno.EINVAL);
  if (labellen >= MAXPMDALEN || argslen >= MAXPATHLEN) return Promise.resolve(-Errno.E2BIG);
  const pdu = Buffer.alloc(START_HEADER_SIZE + argslen);
  header(pdu, PduType.STARTPMDA_REQ, 0);
  pdu.writeInt32LE(ipctype | 0, 28);
  pdu.writeInt32LE(labellen, 32);
  pdu.writeInt32LE(argslen, 36);
  strncpy(pdu, 40, label, labellen);
  strncpy(pdu, START_HEADER_SIZE, args, argslen);
  return call(fd, pdu, ({ data, fds }) => {
    // PCP checks the type on whatever was read (nothing, at EOF) before anything else.
    const view = data.length >= PDU_HEADER_SIZE ? data : Buffer.concat([data, Buffer.alloc(PDU_HEADER_SIZE - data.length)]);
    const h = decodeHeader(view);
    let sts = 0;
    if (h.type !== PduType.STARTPMDA) sts = -Errno.ESRCH;
    else if (h.status !== 0) sts = h.status;
    else if (data.length < START_HEADER_SIZE) sts = -Errno.EINVAL;
    else if (h.length < START_HEADER_SIZE) sts = -Errno.E2BIG;
    if (sts !== 0) {
      closeFds(fds);
      return sts;
    }
    out.pid = int(data, 16);
    if (fds.length === 2) {
      out.infd = fds[0] as number;
      out.outfd = fds[1] as number;
    } else {
      closeFds(fds);
      out.infd = -1;
      out.outfd = -1;
    }
    return 0;
  });
}

/** Non-blocking reap (`pid <= 0`: any child): resolves the reply's pid (0 none exited, -1 no children), `out.status` = raw wait status. */
export function pmdaRootProcessWait(fd: number, pid: number, out: { status?: number }): Promise<number> {
  return stopCall(fd, pid, 0, (data) => {
    out.status = int(data, 20);
    return int(data, 16);
  });
}

/** SIGKILL of a child the server started: resolves 0, or the reply's status. */
export function pmdaRootProcessTerminate(fd: number, pid: number): Promise<number> {
  return stopCall(fd, pid, 1, () => 0);
}

// ------------------------------------------------------------------ internals

function int(buf: Buffer, offset: number): number {
  return buf.readInt32LE(offset);
}

function header(buf: Buffer, type: number, status: number): void {
  buf.writeInt32LE(type, 0);
  buf.writeInt32LE(buf.length, 4);
  buf.writeInt32LE(status, 8);
  buf.writeInt32LE(ROOT_PDU_VERSION, 12);
}

/** C's strncpy: at most `len` bytes, stopping at a NUL; the rest stays zero. */
function strncpy(dest: Buffer, offset: number, src: string | Buffer, len: number): void {
  const bytes = typeof src === 'string' ? Buffer.from(src, 'utf8') : src;
  const nul = bytes.indexOf(0);
  const end = Math.min(len, nul < 0 ? bytes.length : nul);
  bytes.copy(dest, offset, 0, end);
}

/** __pmdaRecvRootPDUInfo's checks, in its order. */
function checkInfo(data: Buffer): number {
  if (data.length !== INFO_SIZE) return -Errno.EINVAL;
  const h = decodeHeader(data);
  if (h.type !== PduType.INFO) return -Errno.ESRCH;
  if (h.version > ROOT_PDU_VERSION) return -Errno.ENOTSUP;
  if (h.status !== 0) return h.status;
  if (h.length !== INFO_SIZE) return -Errno.E2BIG;
  return 0;
}

async function receive(transport: RootTransport, timeoutMs: number): Promise<ReceivedPdu | number> {
  try {
    return await transport.receive(timeoutMs);
  } catch (err) {
    return failureStatus(err);
  }
}

function failureStatus(err: unknown): number {
  if (!CrootError.is(err)) return -Errno.ENOTCONN;
  if (err.code === 'ERR_TIMEOUT') return -Errno.ETIMEDOUT;
  if (err.errno !== undefined && err.errno > 0) return -err.errno;
  return err.status < 0 ? err.status : -Errno.ENOTCONN;
}

/** One request and its reply on handle `fd`, queued behind the calls before it. */
function call(fd: number, pdu: Buffer, decode: (pdu: ReceivedPdu) => number): Promise<number> {
  const handle = handles.get(fd);
  if (handle === undefined) return Promise.resolve(SEND_FAILED); // send() on a bad fd
  const run = handle.tail.then(async () => {
    try {
      await handle.transport.send(pdu);
    } catch {
      return SEND_FAILED;
    }
    const received = await receive(handle.transport, handle.timeoutMs);
    if (typeof received === 'number') {
      // The reply may still come later: this connection is out of step.
      if (received === -Errno.ETIMEDOUT) pmdaRootShutdown(fd);
      return received;
    }
    return decode(received);
  });
  handle.tail = run.catch(() => undefined);
  return run;
}

function containerCall(fd: number, type: number, name: string | Buffer | null, namelen: number, decode: (data: Buffer) => number): Promise<number> {
  if (fd < 0) return Promise.resolve(-Errno.ENOTCONN);
  let pid = 0;
  let len = namelen;
  if (name === null) {
    pid = namelen;
    len = 0;
  }
  if (len < 0) return Promise.resolve(-Errno.EINVAL);
  if (len >= MAXPATHLEN) return Promise.resolve(-Errno.E2BIG);
  const pdu = Buffer.alloc(CONTAINER_HEADER_SIZE + len);
  header(pdu, type, 0);
  pdu.writeInt32LE(pid | 0, 16);
  pdu.writeInt32LE(len, 20);
  if (name !== null) strncpy(pdu, CONTAINER_HEADER_SIZE, name, len);
  return call(fd, pdu, ({ data, fds }) => {
    closeFds(fds);
    // __pmdaRecvRootPDUContainer's checks, in its order.
    if (data.length < CONTAINER_HEADER_SIZE) return -Errno.EINVAL;
    const h = decodeHeader(data);
    if (h.type !== type + 1) return -Errno.ESRCH;
    if (h.version > ROOT_PDU_VERSION) return -Errno.ENOTSUP;
    if (h.status !== 0) return h.status;
    if (h.length < CONTAINER_HEADER_SIZE + int(data, 20)) return -Errno.E2BIG;
    return decode(data);
  });
}

/** __pmdaDecodeRootPDUContainer's own check: the bytes read must hold namelen + 1 past the header. */
function checkDecodable(data: Buffer): number {
  const namelen = int(data, 20);
  return data.length < namelen + 1 + PDU_HEADER_SIZE ? -Errno.EINVAL : namelen;
}

function copyName(data: Buffer, buffer: Buffer, buflen: number): number {
  const length = checkDecodable(data);
  if (length <= 0) return length;
  const room = Math.min(buflen, buffer.length);
  if (length >= room) return -Errno.E2BIG;
  buffer.fill(0, 0, length + 1);
  strncpy(buffer, 0, data.subarray(CONTAINER_HEADER_SIZE, CONTAINER_HEADER_SIZE + length), length);
  return length;
}

function stopCall(fd: number, pid: number, force: number, decode: (data: Buffer) => number): Promise<number> {
  const pdu = Buffer.alloc(STOP_SIZE);
  header(pdu, PduType.STOPPMDA_REQ, 0);
  pdu.writeInt32LE(pid | 0, 16);
  pdu.writeInt32LE(force, 24);
  return call(fd, pdu, ({ data, fds }) => {
    closeFds(fds);
    // __pmdaRecvRootPDUStop's checks, in its order.
    if (data.length < STOP_SIZE) return -Errno.EINVAL;
    const h = decodeHeader(data);
    if (h.type !== PduType.STOPPMDA) return -Errno.ESRCH;
    if (h.version > ROOT_PDU_VERSION) return -Errno.ENOTSUP;
    if (h.status !== 0) return h.status;
    return decode(data);
  });
}
