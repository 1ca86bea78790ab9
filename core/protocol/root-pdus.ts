/**
 * PCP's root-socket protocol (pmdaroot.h, PCP 6.0.3), byte for byte: 32-bit
 * signed ints in host byte order, no padding, `length` = bytes on the wire.
 */
import { endianness } from 'node:os';
import { CrootError, Errno } from '../errors/croot-error.js';

export const ROOT_PDU_VERSION = 2;
export const PDU_HEADER_SIZE = 16;
/** MAXPATHLEN on Linux: the C structs' name/args buffers. */
export const MAXPATHLEN = 4096;
/** Label buffer of STARTPMDA. */
export const MAXPMDALEN = 64;

export const PduType = {
  INFO: 0x9000,
  HOSTNAME_REQ: 0x9001,
  HOSTNAME: 0x9002,
  PROCESSID_REQ: 0x9003,
  PROCESSID: 0x9004,
  CGROUPNAME_REQ: 0x9005,
  CGROUPNAME: 0x9006,
  STARTPMDA_REQ: 0x9007,
  STARTPMDA: 0x9008,
  STOPPMDA_REQ: 0x9009,
  STOPPMDA: 0x900a,
} as const;
export type PduType = (typeof PduType)[keyof typeof PduType];

export const Feature = { HOSTNAME: 1, PROCESSID: 2, CGROUPNAME: 4 } as const;
export const ALL_FEATURES = Feature.HOSTNAME | Feature.PROCESSID | Feature.CGROUPNAME;

export const IpcType = { SOCKET: 1, PIPE: 2 } as const;

export const INFO_SIZE = 24;
export const CONTAINER_HEADER_SIZE = 24;
export const START_HEADER_SIZE = 104;
export const STOP_SIZE = 32;
/** The longest PDU either side sends: a STARTPMDA request with MAXPATHLEN-1 bytes of args. */
export const MAX_PDU_SIZE = START_HEADER_SIZE + MAXPATHLEN;

const LE = endianness() === 'LE';

/** Writes a 32-bit int of a PDU, in host byte order. */
export function putInt(buf: Buffer, offset: number, value: number): void {
  if (LE) buf.writeInt32LE(value | 0, offset);
  else buf.writeInt32BE(value | 0, offset);
}

/** A 32-bit int of a PDU, in host byte order. */
export function getInt(buf: Buffer, offset: number): number {
  return LE ? buf.readInt32LE(offset) : buf.readInt32BE(offset);
}

export interface PduHeader {
  readonly type: number;
  readonly length: number;
  readonly status: number;
  readonly version: number;
}

export interface InfoPdu extends PduHeader {
  readonly features: number;
  readonly zeroed: number;
}

export interface ContainerPdu extends PduHeader {
  readonly pid: number;
  /** namelen as sent (may count a trailing NUL). */
  readonly namelen: number;
  /** The name, cut at its first NUL. */
  readonly name: string;
}

export interface StartPdu extends PduHeader {
  readonly pid: number;
  readonly infd: number;
  readonly outfd: number;
  readonly ipctype: number;
  readonly namelen: number;
  readonly argslen: number;
  /** Label, cut at `namelen` and at its first NUL. */
  readonly label: string;
  /** Command line (request only), cut at `argslen` and at its first NUL. */
  readonly args: string;
}

export interface StopPdu extends PduHeader {
  readonly pid: number;
  readonly code: number;
  readonly force: number;
  readonly zeroed: number;
}

function header(buf: Buffer, type: number, status: number): void {
  putInt(buf, 0, type);
  putInt(buf, 4, buf.length);
  putInt(buf, 8, status);
  putInt(buf, 12, ROOT_PDU_VERSION);
}

/**
 * The decoders below list the header's fields instead of spreading it
 * (`{ ...header, pid }`): V8 copies a spread object through its slow
 * generic path, which on the request path costs as much as the decoding
 * and the lookup together.
 */
export function decodeHeader(buf: Buffer): PduHeader {
  if (buf.length < PDU_HEADER_SIZE) {
    throw new CrootError('ERR_PROTOCOL', `PDU of ${buf.length} bytes is shorter than its ${PDU_HEADER_SIZE}-byte header`);
  }
  return { type: getInt(buf, 0), length: getInt(buf, 4), status: getInt(buf, 8), version: getInt(buf, 12) };
}

// ---------------------------------------------------------------- INFO

export function encodeInfo(features: number = ALL_FEATURES, status = 0): Buffer {
  const buf = Buffer.alloc(INFO_SIZE);
  header(buf, PduType.INFO, status);
  putInt(buf, 16, features);
  putInt(buf, 20, 0);
  return buf;
}

/** Decodes INFO with the C client's checks, in its order and with its statuses. */
export function decodeInfo(buf: Buffer): InfoPdu {
  if (buf.length !== INFO_SIZE) {
    throw new CrootError('ERR_PROTOCOL', `INFO PDU is ${buf.length} bytes, expected ${INFO_SIZE}`, { status: -Errno.EINVAL });
  }
  const h = decodeHeader(buf);
  if (h.type !== PduType.INFO) {
    throw new CrootError('ERR_UNEXPECTED_PDU', `expected INFO (0x9000), got type 0x${(h.type >>> 0).toString(16)}`);
  }
  if (h.version > ROOT_PDU_VERSION) {
    throw new CrootError('ERR_VERSION', `server speaks root PDU version ${h.version}, croot speaks ${ROOT_PDU_VERSION}`);
  }
  if (h.status !== 0) {
    throw new CrootError('ERR_REMOTE', `server INFO carries status ${h.status}`, { status: h.status });
  }
  if (h.length !== INFO_SIZE) {
    throw new CrootError('ERR_TOO_LONG', `INFO PDU says length ${h.length}, expected ${INFO_SIZE}`);
  }
  return { type: h.type, length: h.length, status: h.status, version: h.version, features: getInt(buf, 16), zeroed: getInt(buf, 20) };
}

// ---------------------------------------------------------- container PDUs

export interface EncodeContainerOptions {
  readonly pid?: number;
  readonly status?: number;
  /** Append a NUL and count it in namelen, as PCP's own clients do. Default false. */
  readonly trailingNul?: boolean;
}

export function encodeContainer(type: number, name: string | Buffer, options: EncodeContainerOptions = {}): Buffer {
  const raw = typeof name === 'string' ? Buffer.from(name, 'utf8') : name;
  const nameBytes = options.trailingNul ? Buffer.concat([raw, Buffer.alloc(1)]) : raw;
  if (nameBytes.length >= MAXPATHLEN) {
    throw new CrootError('ERR_TOO_LONG', `container name of ${nameBytes.length} bytes exceeds ${MAXPATHLEN - 1}`);
  }
  const buf = Buffer.alloc(CONTAINER_HEADER_SIZE + nameBytes.length);
  header(buf, type, options.status ?? 0);
  putInt(buf, 16, options.pid ?? 0);
  putInt(buf, 20, nameBytes.length);
  nameBytes.copy(buf, CONTAINER_HEADER_SIZE);
  return buf;
}

export function decodeContainer(buf: Buffer): ContainerPdu {
  const { type, length, status, version } = decodeHeader(buf);
  if (buf.length < CONTAINER_HEADER_SIZE) {
    throw new CrootError('ERR_PROTOCOL', `container PDU of ${buf.length} bytes is shorter than ${CONTAINER_HEADER_SIZE}`, { status: -Errno.EINVAL });
  }
  const pid = getInt(buf, 16);
  const namelen = getInt(buf, 20);
  if (namelen < 0) throw new CrootError('ERR_PROTOCOL', `negative name length ${namelen}`, { status: -Errno.EINVAL });
  if (namelen >= MAXPATHLEN) throw new CrootError('ERR_TOO_LONG', `name length ${namelen} exceeds ${MAXPATHLEN - 1}`);
  if (CONTAINER_HEADER_SIZE + namelen !== buf.length) {
    throw new CrootError('ERR_PROTOCOL', `name length ${namelen} disagrees with PDU length ${buf.length}`, { status: -Errno.EINVAL });
  }
  const nameBytes = buf.subarray(CONTAINER_HEADER_SIZE, CONTAINER_HEADER_SIZE + namelen);
  const nul = nameBytes.indexOf(0);
  const name = (nul < 0 ? nameBytes : nameBytes.subarray(0, nul)).toString('utf8');
  return { type, length, status, version, pid, namelen, name };
}

// ---------------------------------------------------------------- STARTPMDA

export interface EncodeStartOptions {
  readonly status?: number;
  readonly pid?: number;
  readonly infd?: number;
  readonly outfd?: number;
  readonly ipctype?: number;
  /** The label; a Buffer is sent as it is (all its bytes counted in namelen). */
  readonly label: string | Buffer;
  /** Request only; a Buffer is sent as it is (all its bytes counted in argslen). */
  readonly args?: string | Buffer;
}

export function encodeStart(type: number, options: EncodeStartOptions): Buffer {
  const label = typeof options.label === 'string' ? Buffer.from(options.label, 'utf8') : options.label;
  if (label.length >= MAXPMDALEN) {
    throw new CrootError('ERR_TOO_LONG', `process label of ${label.length} bytes exceeds ${MAXPMDALEN - 1}`);
  }
  const args = options.args === undefined ? Buffer.alloc(0) : typeof options.args === 'string' ? Buffer.from(options.args, 'utf8') : options.args;
  if (args.length >= MAXPATHLEN) {
    throw new CrootError('ERR_TOO_LONG', `process arguments of ${args.length} bytes exceed ${MAXPATHLEN - 1}`);
  }
  const buf = Buffer.alloc(START_HEADER_SIZE + args.length);
  header(buf, type, options.status ?? 0);
  putInt(buf, 16, options.pid ?? 0);
  putInt(buf, 20, options.infd ?? 0);
  putInt(buf, 24, options.outfd ?? 0);
  putInt(buf, 28, options.ipctype ?? 0);
  putInt(buf, 32, label.length);
  putInt(buf, 36, args.length);
  label.copy(buf, 40);
  args.copy(buf, START_HEADER_SIZE);
  return buf;
}

function cString(bytes: Buffer): string {
  const nul = bytes.indexOf(0);
  return (nul < 0 ? bytes : bytes.subarray(0, nul)).toString('utf8');
}

export function decodeStart(buf: Buffer): StartPdu {
  const { type, length, status, version } = decodeHeader(buf);
  if (buf.length < START_HEADER_SIZE) {
    throw new CrootError('ERR_PROTOCOL', `STARTPMDA PDU of ${buf.length} bytes is shorter than ${START_HEADER_SIZE}`, { status: -Errno.EINVAL });
  }
  const namelen = getInt(buf, 32);
  const argslen = getInt(buf, 36);
  if (namelen < 0 || argslen < 0) {
    throw new CrootError('ERR_PROTOCOL', `negative label or argument length (${namelen}, ${argslen})`, { status: -Errno.EINVAL });
  }
  if (namelen >= MAXPMDALEN) throw new CrootError('ERR_TOO_LONG', `label length ${namelen} exceeds ${MAXPMDALEN - 1}`);
  if (argslen >= MAXPATHLEN) throw new CrootError('ERR_TOO_LONG', `argument length ${argslen} exceeds ${MAXPATHLEN - 1}`);
  const isRequest = type === PduType.STARTPMDA_REQ;
  if (isRequest ? START_HEADER_SIZE + argslen !== buf.length : buf.length !== START_HEADER_SIZE) {
    throw new CrootError('ERR_PROTOCOL', `STARTPMDA lengths disagree (argslen ${argslen}, PDU ${buf.length})`, { status: -Errno.EINVAL });
  }
  return {
    type,
    length,
    status,
    version,
    pid: getInt(buf, 16),
    infd: getInt(buf, 20),
    outfd: getInt(buf, 24),
    ipctype: getInt(buf, 28),
    namelen,
    argslen,
    label: cString(buf.subarray(40, 40 + namelen)),
    args: isRequest ? cString(buf.subarray(START_HEADER_SIZE, START_HEADER_SIZE + argslen)) : '',
  };
}

// ---------------------------------------------------------------- STOPPMDA

export function encodeStop(type: number, fields: { pid: number; code?: number; force?: number; status?: number }): Buffer {
  const buf = Buffer.alloc(STOP_SIZE);
  header(buf, type, fields.status ?? 0);
  putInt(buf, 16, fields.pid);
  putInt(buf, 20, fields.code ?? 0);
  putInt(buf, 24, fields.force ?? 0);
  putInt(buf, 28, 0);
  return buf;
}

export function decodeStop(buf: Buffer): StopPdu {
  const { type, length, status, version } = decodeHeader(buf);
  if (buf.length !== STOP_SIZE) {
    throw new CrootError('ERR_PROTOCOL', `STOPPMDA PDU is ${buf.length} bytes, expected ${STOP_SIZE}`, { status: -Errno.EINVAL });
  }
  return { type, length, status, version, pid: getInt(buf, 16), code: getInt(buf, 20), force: getInt(buf, 24), zeroed: getInt(buf, 28) };
}

/** Reply type of a request type, or undefined when `type` is not a request. */
export function replyTypeOf(type: number): number | undefined {
  switch (type) {
    case PduType.HOSTNAME_REQ:
    case PduType.PROCESSID_REQ:
    case PduType.CGROUPNAME_REQ:
    case PduType.STARTPMDA_REQ:
    case PduType.STOPPMDA_REQ:
      return type + 1;
    default:
      return undefined;
  }
}

/** A bare 16-byte error PDU, for requests whose body cannot be trusted. */
export function encodeErrorHeader(type: number, status: number): Buffer {
  const buf = Buffer.alloc(PDU_HEADER_SIZE);
  header(buf, type, status);
  return buf;
}
