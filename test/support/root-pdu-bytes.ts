/**
 * Root-socket PDUs written and read byte by byte from PCP's layout
 * (pmdaroot.h, as docs/protocol.md and the shared pcp-root-protocol.md give
 * it: 32-bit little-endian ints, a 16-byte header `type, length, status,
 * version`), and croot's extension PDU (docs/protocol.md: `flags`, `paylen`,
 * JSON). Nothing here imports croot's codec: tests use these to check
 * croot's server against the documented bytes, not against itself.
 */

export const T = {
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
  EXT_REQUEST: 0x9100,
  EXT_REPLY: 0x9101,
} as const;

/** INFO exactly as PCP 6.0.3's pmdaroot sends it. */
export const PCP_INFO = Buffer.from('009000001800000000000000020000000700000000000000', 'hex');

function ints(values: readonly number[], tail: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(values.length * 4 + tail.length);
  values.forEach((v, i) => b.writeInt32LE(v, i * 4));
  tail.copy(b, values.length * 4);
  return b;
}

/** A bare 16-byte header. */
export function headerBytes(type: number, length: number, status = 0, version = 2): Buffer {
  return ints([type, length, status, version]);
}

/** HOSTNAME/PROCESSID/CGROUPNAME request: `pid, namelen, name` (with the trailing NUL PCP's clients send, unless `nul` is false). */
export function containerRequest(type: number, pid: number, name: string, options: { nul?: boolean; version?: number } = {}): Buffer {
  const nameBytes = Buffer.from(name.length > 0 && options.nul !== false ? `${name}\0` : name, 'utf8');
  return ints([type, 24 + nameBytes.length, 0, options.version ?? 2, pid, nameBytes.length], nameBytes);
}

/** STARTPMDA request: `pid, infd, outfd, ipctype, namelen, argslen, name[64], args`. */
export function startRequest(ipctype: number, label: string, args: string, namelen = Buffer.byteLength(label)): Buffer {
  const name = Buffer.alloc(64);
  name.write(label, 'utf8');
  const argBytes = Buffer.from(args, 'utf8');
  return ints([T.STARTPMDA_REQ, 104 + argBytes.length, 0, 2, 0, 0, 0, ipctype, namelen, argBytes.length], Buffer.concat([name, argBytes]));
}

/** STOPPMDA request: `pid, code, force, zeroed`, 32 bytes. */
export function stopRequest(pid: number, force: boolean): Buffer {
  return ints([T.STOPPMDA_REQ, 32, 0, 2, pid, 0, force ? 1 : 0, 0]);
}

/** croot's extension request: header, `flags`, `paylen`, JSON. */
export function extensionRequest(payload: unknown, flags = 0): Buffer {
  const json = Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload), 'utf8');
  return ints([T.EXT_REQUEST, 24 + json.length, 0, 2, flags, json.length], json);
}

export interface Header {
  readonly type: number;
  readonly length: number;
  readonly status: number;
  readonly version: number;
}

export function readHeader(b: Buffer): Header {
  return { type: b.readInt32LE(0), length: b.readInt32LE(4), status: b.readInt32LE(8), version: b.readInt32LE(12) };
}

/** A container reply: the header, `pid`, `namelen` and the name (no NUL). */
export function readContainer(b: Buffer): Header & { bytes: number; pid: number; namelen: number; name: string } {
  const namelen = b.readInt32LE(20);
  return { ...readHeader(b), bytes: b.length, pid: b.readInt32LE(16), namelen, name: b.subarray(24, 24 + namelen).toString('utf8') };
}

/** A start reply: `pid, infd, outfd, ipctype, namelen, argslen`, the label. */
export function readStart(b: Buffer): Header & { bytes: number; pid: number; rest: number[]; label: string } {
  const namelen = b.readInt32LE(32);
  const rest = [20, 24, 28, 32, 36].map((o) => b.readInt32LE(o));
  return { ...readHeader(b), bytes: b.length, pid: b.readInt32LE(16), rest, label: b.subarray(40, 40 + Math.max(0, namelen)).toString('utf8') };
}

/** A stop reply: `pid, code, force, zeroed`. */
export function readStop(b: Buffer): Header & { bytes: number; pid: number; code: number; force: number } {
  return { ...readHeader(b), bytes: b.length, pid: b.readInt32LE(16), code: b.readInt32LE(20), force: b.readInt32LE(24) };
}

/** One extension reply PDU: header, `flags`, `paylen`, payload text. */
export function readExtension(b: Buffer): Header & { flags: number; paylen: number; payload: string } {
  const paylen = b.readInt32LE(20);
  return { ...readHeader(b), flags: b.readInt32LE(16), paylen, payload: b.subarray(24, 24 + paylen).toString('utf8') };
}
