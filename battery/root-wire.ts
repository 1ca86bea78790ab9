/**
 * The root-socket protocol as the battery writes and checks it, from the
 * protocol's description (docs/protocol.md, PCP's pmdaroot.h), not from
 * croot's codec: the battery judges croot's server, so it does not share its
 * code. 32-bit little-endian ints (x86-64 and arm64 hosts).
 */

export const HEADER = 16;
export const INFO = 0x9000;
export const HOSTNAME_REQ = 0x9001;
export const PROCESSID_REQ = 0x9003;
export const CGROUPNAME_REQ = 0x9005;
export const STARTPMDA_REQ = 0x9007;
export const STOPPMDA_REQ = 0x9009;
export const REQUEST_TYPES = [HOSTNAME_REQ, PROCESSID_REQ, CGROUPNAME_REQ, STARTPMDA_REQ, STOPPMDA_REQ] as const;
export const CONTAINER_REQUESTS: readonly number[] = [HOSTNAME_REQ, PROCESSID_REQ, CGROUPNAME_REQ];
/** MAXPATHLEN of the C structs. */
export const MAXPATHLEN = 4096;
/** The largest PDU a server must take: a STARTPMDA request with 4095 bytes of arguments. */
export const MAX_REQUEST = 104 + MAXPATHLEN;
export const VERSION = 2;

export const int = (buf: Buffer, offset: number): number => buf.readInt32LE(offset);

function header(type: number, length: number, status = 0, version = VERSION): Buffer {
  const buf = Buffer.alloc(length);
  buf.writeInt32LE(type, 0);
  buf.writeInt32LE(length, 4);
  buf.writeInt32LE(status, 8);
  buf.writeInt32LE(version, 12);
  return buf;
}

/** HOSTNAME/PROCESSID/CGROUPNAME request: pid, namelen, name. */
export function containerRequest(type: number, name: Buffer, pid = 0): Buffer {
  const buf = header(type, 24 + name.length);
  buf.writeInt32LE(pid, 16);
  buf.writeInt32LE(name.length, 20);
  name.copy(buf, 24);
  return buf;
}

/** STARTPMDA request: ipctype, label (in a 64-byte field), command line. */
export function startRequest(ipctype: number, label: string, args: string): Buffer {
  const labelBytes = Buffer.from(label);
  const argBytes = Buffer.from(args);
  const buf = header(STARTPMDA_REQ, 104 + argBytes.length);
  buf.writeInt32LE(ipctype, 28);
  buf.writeInt32LE(labelBytes.length, 32);
  buf.writeInt32LE(argBytes.length, 36);
  labelBytes.copy(buf, 40, 0, Math.min(64, labelBytes.length));
  argBytes.copy(buf, 104);
  return buf;
}

/** STOPPMDA request: pid, force (1 terminate, 0 wait). */
export function stopRequest(pid: number, force: number): Buffer {
  const buf = header(STOPPMDA_REQ, 32);
  buf.writeInt32LE(pid, 16);
  buf.writeInt32LE(force, 24);
  return buf;
}

/** What a server reading `bytes` as one stream sees: its frames, in order, by their length field. */
export interface FramedRequest {
  readonly bytes: Buffer;
  readonly type: number;
  readonly version: number;
  /** A length below the header or above MAX_REQUEST: answered, then the connection closes. */
  readonly broken: boolean;
}

/** The complete requests (and the broken one that ends the stream, if any) in `stream`; an incomplete tail is left out. */
export function frames(stream: Buffer): FramedRequest[] {
  const out: FramedRequest[] = [];
  let at = 0;
  while (stream.length - at >= HEADER) {
    const type = int(stream, at);
    const length = int(stream, at + 4);
    const version = int(stream, at + 12);
    if (length < HEADER || length > MAX_REQUEST) {
      out.push({ bytes: stream.subarray(at, at + HEADER), type, version, broken: true });
      break;
    }
    if (stream.length - at < length) break;
    out.push({ bytes: stream.subarray(at, at + length), type, version, broken: false });
    at += length;
  }
  return out;
}

/** A request the protocol can decode, as a server must read it; undefined when malformed. */
export type DecodedRequest =
  | { readonly kind: 'container'; readonly type: number; readonly pid: number; readonly name: string }
  | { readonly kind: 'start'; readonly ipctype: number; readonly label: string; readonly args: string }
  | { readonly kind: 'stop'; readonly pid: number; readonly force: number };

function cString(bytes: Buffer): string {
  const nul = bytes.indexOf(0);
  return (nul < 0 ? bytes : bytes.subarray(0, nul)).toString('utf8');
}

export function decodeRequest(frame: FramedRequest): DecodedRequest | undefined {
  const b = frame.bytes;
  if (frame.broken || frame.version < 1 || frame.version > VERSION) return undefined;
  if (CONTAINER_REQUESTS.includes(frame.type)) {
    if (b.length < 24) return undefined;
    const namelen = int(b, 20);
    if (namelen < 0 || namelen >= MAXPATHLEN || 24 + namelen !== b.length) return undefined;
    return { kind: 'container', type: frame.type, pid: int(b, 16), name: cString(b.subarray(24)) };
  }
  if (frame.type === STARTPMDA_REQ) {
    if (b.length < 104) return undefined;
    const namelen = int(b, 32);
    const argslen = int(b, 36);
    if (namelen < 0 || argslen < 0 || namelen >= 64 || argslen >= MAXPATHLEN || 104 + argslen !== b.length) return undefined;
    return { kind: 'start', ipctype: int(b, 28), label: cString(b.subarray(40, 40 + namelen)), args: cString(b.subarray(104)) };
  }
  if (frame.type === STOPPMDA_REQ) {
    if (b.length !== 32) return undefined;
    return { kind: 'stop', pid: int(b, 16), force: int(b, 24) };
  }
  return undefined;
}

/** One reply as read from the stream. */
export interface Reply {
  readonly type: number;
  readonly length: number;
  readonly status: number;
  readonly version: number;
  readonly bytes: Buffer;
}

/**
 * Splits the server's stream into replies by their length field. Returns
 * the replies and the unread rest; `bad` when a length cannot be a reply's.
 */
export function replies(stream: Buffer): { replies: Reply[]; rest: Buffer; bad?: string } {
  const out: Reply[] = [];
  let at = 0;
  while (stream.length - at >= HEADER) {
    const length = int(stream, at + 4);
    if (length < HEADER || length > 24 + MAXPATHLEN + 104) return { replies: out, rest: stream.subarray(at), bad: `reply length ${length}` };
    if (stream.length - at < length) break;
    const bytes = stream.subarray(at, at + length);
    out.push({ type: int(bytes, 0), length, status: int(bytes, 8), version: int(bytes, 12), bytes });
    at += length;
  }
  return { replies: out, rest: stream.subarray(at) };
}

/**
 * Why `reply` is not a well-formed answer to `request`, or undefined when it
 * is: the reply type of a known request (an error header of the request's
 * own type for an unknown one), a length that fits its body, version 2, a
 * status of 0 or below, and an empty body with a negative status.
 */
/** croot's own protocol extension (docs/protocol.md): a request PDU and its reply PDUs. */
export const EXTENSION_REQ = 0x9100;
export const EXTENSION_REPLY = 0x9101;

export function malformedReply(request: FramedRequest, reply: Reply): string | undefined {
  if (request.type === EXTENSION_REQ) {
    // A fuzzed extension request is answered with one extension reply carrying its status.
    if (reply.type !== EXTENSION_REPLY) return `reply type 0x${(reply.type >>> 0).toString(16)} to croot's extension request`;
    return reply.status > 0 ? `positive status ${reply.status}` : undefined;
  }
  const known = (REQUEST_TYPES as readonly number[]).includes(request.type);
  const expected = known ? request.type + 1 : request.type;
  if (reply.type !== expected) return `reply type 0x${(reply.type >>> 0).toString(16)} to request type 0x${(request.type >>> 0).toString(16)}`;
  if (reply.version !== VERSION) return `reply version ${reply.version}`;
  if (reply.status > 0) return `positive status ${reply.status}`;
  const b = reply.bytes;
  if (!known) return reply.length === HEADER ? undefined : `error reply of ${reply.length} bytes`;
  if (CONTAINER_REQUESTS.includes(request.type)) {
    if (reply.length < 24) return `container reply of ${reply.length} bytes`;
    const namelen = int(b, 20);
    if (namelen < 0 || 24 + namelen !== reply.length) return `container reply namelen ${namelen} in ${reply.length} bytes`;
    if (reply.status < 0 && namelen !== 0) return `error reply with a ${namelen}-byte value`;
    if (request.type === PROCESSID_REQ && namelen !== 0) return `PROCESSID reply with a ${namelen}-byte value`;
    return undefined;
  }
  if (request.type === STARTPMDA_REQ) {
    if (reply.length !== 104) return `STARTPMDA reply of ${reply.length} bytes`;
    if (reply.status < 0 && int(b, 16) !== -1) return `failed STARTPMDA with pid ${int(b, 16)}`;
    if (reply.status === 0 && int(b, 16) <= 0) return `STARTPMDA success with pid ${int(b, 16)}`;
    return undefined;
  }
  return reply.length === 32 ? undefined : `STOPPMDA reply of ${reply.length} bytes`;
}

/** The value of a container reply (hostname or cgroup path) and its pid. */
export function containerAnswer(reply: Reply): { pid: number; value: string } {
  const namelen = int(reply.bytes, 20);
  return { pid: int(reply.bytes, 16), value: reply.bytes.subarray(24, 24 + namelen).toString('utf8') };
}
