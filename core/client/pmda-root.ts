/**
 * PCP's C API of pmdaRootConnect(3), in TypeScript, returning the numbers
 * libpcp_pmda (PCP 6.0.3) returns: a handle or a negative status, buffer
 * filling and NUL termination included. Statuses render with errorText().
 * A thin adapter over the PCP client layer (root-channel.ts) that RootClient
 * uses too: it adds C's argument checks, strncpy and buffer semantics, and
 * turns each failure into the number libpcp_pmda returns.
 *
 * Where PCP crashes, leaks or blocks forever, this API stays defined:
 * - `name === null` asks "by pid" (pid = namelen, namelen 0); PCP dereferences NULL.
 * - fds received with an error reply or in an unexpected shape are closed; PCP leaks them.
 * - every wait is bounded (`timeoutMs`, then -ETIMEDOUT); PCP blocks.
 * - pmdaRootShutdown also releases the handle; PCP only shuts the socket down.
 */
import { defaultSocketPath } from '../config/croot-config.js';
import { CrootError, Errno, statusOf } from '../errors/croot-error.js';
import { closeFds } from '../host/close-fds.js';
import {
  CONTAINER_HEADER_SIZE,
  MAXPATHLEN,
  MAXPMDALEN,
  PDU_HEADER_SIZE,
  PduType,
  START_HEADER_SIZE,
  STOP_SIZE,
  decodeHeader,
  encodeContainer,
  encodeStart,
  encodeStop,
  getInt,
} from '../protocol/root-pdus.js';
import { nodeSocketTransport } from './node-socket-transport.js';
import { DEFAULT_TIMEOUT_MS, RootChannel, checkReply, isPeerClosed } from './root-channel.js';
import type { ReceivedPdu, RootTransport, RootTransportFactory } from './root-transport.js';

export interface PmdaRootConnectOptions {
  /** Default: pure Node (no fds, so pipe IPC gets infd = outfd = -1). */
  readonly transport?: RootTransportFactory;
  /** Bound of each wait for the server. Default 10 s. */
  readonly timeoutMs?: number;
}

interface Handle {
  readonly channel: RootChannel;
  readonly timeoutMs: number;
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
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let transport: RootTransport;
  try {
    transport = await (options.transport ?? nodeSocketTransport)(socketPath, timeoutMs);
  } catch {
    return -1;
  }
  let channel: RootChannel;
  try {
    channel = await RootChannel.start(transport, socketPath, timeoutMs);
  } catch (err) {
    // A server that closes before INFO: libpcp read 0 bytes, not the 24 it checks for.
    return CrootError.is(err) && isPeerClosed(err) ? -Errno.EINVAL : libpcpStatus(err);
  }
  const handle = nextHandle++;
  handles.set(handle, { channel, timeoutMs });
  return handle;
}

/** Shuts the connection down and releases the handle. */
export function pmdaRootShutdown(fd: number): void {
  const handle = handles.get(fd);
  if (handle === undefined) return;
  handles.delete(fd);
  handle.channel.close();
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
    return sts < 0 ? sts : getInt(data, 16);
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
  const pdu = encodeStart(PduType.STARTPMDA_REQ, { ipctype, label: strncpy(label, labellen), args: strncpy(args, argslen) });
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
    out.pid = getInt(data, 16);
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
    out.status = getInt(data, 20);
    return getInt(data, 16);
  });
}

/** SIGKILL of a child the server started: resolves 0, or the reply's status. */
export function pmdaRootProcessTerminate(fd: number, pid: number): Promise<number> {
  return stopCall(fd, pid, 1, () => 0);
}

// ------------------------------------------------------------------ internals

/** C's strncpy into a zeroed buffer of `len` bytes: at most `len` bytes of `src`, stopping at a NUL. */
function strncpy(src: string | Buffer, len: number): Buffer {
  const bytes = typeof src === 'string' ? Buffer.from(src, 'utf8') : src;
  const nul = bytes.indexOf(0);
  const out = Buffer.alloc(len);
  bytes.copy(out, 0, 0, Math.min(len, nul < 0 ? bytes.length : nul));
  return out;
}

/** The number libpcp_pmda returns for a failed receive or INFO check: -errno of a socket failure, else the check's status. */
function libpcpStatus(err: unknown): number {
  if (!CrootError.is(err)) return statusOf(err);
  return err.errno !== undefined ? -err.errno : err.status;
}

/** One request and its reply on handle `fd`, queued behind the calls before it. */
async function call(fd: number, pdu: Buffer, decode: (pdu: ReceivedPdu) => number): Promise<number> {
  const handle = handles.get(fd);
  if (handle === undefined) return SEND_FAILED; // send() on a bad fd
  const result = await handle.channel.exchange(pdu, handle.timeoutMs);
  if (!result.ok) return result.stage === 'send' ? SEND_FAILED : libpcpStatus(result.error);
  return decode(result.pdu);
}

/** The checks libpcp_pmda makes of a reply, as a status: 0 when they pass. */
function checked(data: Buffer, type: number, minSize: number): number {
  try {
    checkReply(data, type, minSize, 'reply');
    return 0;
  } catch (err) {
    return statusOf(err);
  }
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
  const pdu = encodeContainer(type, name === null ? Buffer.alloc(0) : strncpy(name, len), { pid });
  return call(fd, pdu, ({ data, fds }) => {
    closeFds(fds);
    // __pmdaRecvRootPDUContainer's checks, in its order.
    const sts = checked(data, type + 1, CONTAINER_HEADER_SIZE);
    if (sts !== 0) return sts;
    if (decodeHeader(data).length < CONTAINER_HEADER_SIZE + getInt(data, 20)) return -Errno.E2BIG;
    return decode(data);
  });
}

/** __pmdaDecodeRootPDUContainer's own check: the bytes read must hold namelen + 1 past the header. */
function checkDecodable(data: Buffer): number {
  const namelen = getInt(data, 20);
  return data.length < namelen + 1 + PDU_HEADER_SIZE ? -Errno.EINVAL : namelen;
}

function copyName(data: Buffer, buffer: Buffer, buflen: number): number {
  const length = checkDecodable(data);
  if (length <= 0) return length;
  const room = Math.min(buflen, buffer.length);
  if (length >= room) return -Errno.E2BIG;
  buffer.fill(0, 0, length + 1);
  strncpy(data.subarray(CONTAINER_HEADER_SIZE, CONTAINER_HEADER_SIZE + length), length).copy(buffer, 0);
  return length;
}

function stopCall(fd: number, pid: number, force: number, decode: (data: Buffer) => number): Promise<number> {
  return call(fd, encodeStop(PduType.STOPPMDA_REQ, { pid, force }), ({ data, fds }) => {
    closeFds(fds);
    // __pmdaRecvRootPDUStop's checks, in its order.
    const sts = checked(data, PduType.STOPPMDA, STOP_SIZE);
    return sts !== 0 ? sts : decode(data);
  });
}
