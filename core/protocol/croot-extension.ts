/**
 * croot's extension of the root-socket protocol: `croot list`, `show`,
 * `engines`, `status` and `events` through a running crootd. PCP's clients never send
 * these types (PCP's range is 0x9000–0x900a); PCP's pmdaroot closes the
 * connection when it gets one, which is how a client tells it apart.
 *
 * One request PDU, answered by one or more reply PDUs (chunks), each framed
 * like every root PDU (16-byte header, `length` = bytes on the wire) and
 * never longer than EXTENSION_MAX_PDU, so both sides' frame limits hold.
 * An `events` request is answered by a stream of documents on the same
 * connection, each sent the same way (docs/protocol.md):
 *
 *     0  type     EXTENSION_REQUEST (0x9100) or EXTENSION_REPLY (0x9101)
 *     4  length   24 + paylen
 *     8  status   0, or a negative PCP status (then the payload is an error report)
 *    12  version  ROOT_PDU_VERSION
 *    16  flags    bit 0 (MORE): another chunk of this reply follows
 *    20  paylen   bytes of payload in this PDU
 *    24  payload  UTF-8 JSON (a request, or a piece of the reply document)
 *
 * The JSON documents are the same the command line prints with
 * `--format json` (docs/cli.md): one schema for every command.
 */
import { CrootError, Errno, ErrorCodes, type ErrorCode } from '../errors/croot-error.js';
import { ROOT_PDU_VERSION, decodeHeader, getInt, putInt } from './root-pdus.js';

export const ExtensionPduType = {
  REQUEST: 0x9100,
  REPLY: 0x9101,
} as const;

export const EXTENSION_HEADER_SIZE = 24;
/** The longest extension PDU either side sends (below every frame limit of the root protocol). */
export const EXTENSION_MAX_PDU = 4096;
export const EXTENSION_MAX_CHUNK = EXTENSION_MAX_PDU - EXTENSION_HEADER_SIZE;
/** The longest reply document a client accepts, in bytes of JSON. */
export const EXTENSION_MAX_REPLY = 8 * 1024 * 1024;
/** Version of the JSON documents (`schemaVersion`). */
export const SCHEMA_VERSION = 1;
const MORE = 1;

// ------------------------------------------------------------ documents

/** Why one answer about a container is missing. */
export interface ErrorReport {
  readonly code: string;
  /** Negative PCP status. */
  readonly status: number;
  readonly message: string;
}

export type ContainerState = 'running' | 'paused' | 'restarting' | 'stopped';

/** One container, as every command prints it. */
export interface ContainerReport {
  /** Engine id; null when the server does not say (PCP's pmdaroot). */
  readonly engine: string | null;
  /** Full id; null when the server does not say. */
  readonly id: string | null;
  /** Every name it answers to. */
  readonly names: readonly string[];
  /** null when the server does not say. */
  readonly state: ContainerState | null;
  /** Init PID as the host sees it; null when not running (or when the answer failed: see `errors`). */
  readonly pid: number | null;
  /** Read from the container's UTS namespace (show, hostname): absent from `list`. */
  readonly hostname?: string | null;
  /** From /proc/PID/cgroup, without the leading `/` (show, cgroup): absent from `list`. */
  readonly cgroup?: string | null;
  /** Why `pid`, `hostname` or `cgroup` is null. */
  readonly errors?: { readonly pid?: ErrorReport; readonly hostname?: ErrorReport; readonly cgroup?: ErrorReport };
}

/** One engine's health. */
export interface EngineReport {
  readonly engine: string;
  readonly available: boolean;
  /** What it reads, or why it is not available. */
  readonly reason: string;
  /** When the health was last checked (ISO 8601). */
  readonly checkedAt: string;
}

/** A running crootd (`croot status`). */
export interface ServerReport {
  readonly version: string;
  readonly pid: number;
  readonly socket: string | null;
  /** ISO 8601. */
  readonly startedAt: string;
  readonly uptimeSeconds: number;
  readonly allowUids: readonly number[];
  readonly connections: { readonly open: number; readonly peers: readonly { readonly pid: number; readonly uid: number }[] };
  /**
   * Requests answered since start, by kind (`hostname`, `pid`, `cgroup`,
   * `start`, `stop`, `extension`, `other`); `answeredAgain`: how many of them
   * the connections answered by themselves from replies given before.
   */
  readonly requests: {
    readonly total: number;
    readonly failed: number;
    readonly answeredAgain: number;
    readonly byKind: Readonly<Record<string, number>>;
  };
}

/** How init processes are held (`croot engines`, `croot status`). */
export interface AnchorReport {
  /** `pidfd`: held open by pidfds (a reused PID is never answered, an exit is seen at once); `proc`: checked by start time through /proc. */
  readonly mode: 'pidfd' | 'proc';
  /** `proc` only: why pidfds are not used (no native module, an old kernel, the fd limit). */
  readonly reason?: string;
}

/** What one event is about, and what happened to it. */
export type EventAction = 'added' | 'updated' | 'exited' | 'removed' | 'health';

/**
 * One change of the live index (`croot events`): a container added,
 * updated (its names, state or PID changed), exited (its init process
 * ended, seen by croot before its engine said so) or removed; or an
 * engine's health changed.
 */
export interface EventReport {
  /** When croot saw it (ISO 8601). */
  readonly time: string;
  readonly type: 'container' | 'engine';
  readonly action: EventAction;
  /** `container` events: the container now (for `removed`, as it was last). */
  readonly container?: ContainerReport;
  /** `updated` and `exited`: the container as it was before. */
  readonly was?: ContainerReport;
  /** `engine` events: the engine's health now. */
  readonly engine?: EngineReport;
}

/** What every command prints with `--format json`, and what crootd sends back. */
export interface CrootDocument {
  readonly schemaVersion: number;
  readonly server?: ServerReport;
  readonly anchor?: AnchorReport;
  readonly engines?: readonly EngineReport[];
  readonly containers?: readonly ContainerReport[];
  readonly event?: EventReport;
}

const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Containers in the order every command prints them: engine, first name, id. */
export function sortContainers(list: readonly ContainerReport[]): ContainerReport[] {
  return [...list].sort(
    (a, b) => byText(a.engine ?? '', b.engine ?? '') || byText(a.names[0] ?? '', b.names[0] ?? '') || byText(a.id ?? '', b.id ?? ''),
  );
}

/** Engines by id. */
export function sortEngines(list: readonly EngineReport[]): EngineReport[] {
  return [...list].sort((a, b) => byText(a.engine, b.engine));
}

// ------------------------------------------------------------ requests

export type ExtensionRequest =
  | { readonly op: 'list' }
  | { readonly op: 'engines' }
  | { readonly op: 'status' }
  | { readonly op: 'show'; readonly name: string }
  | { readonly op: 'events' };

function pdu(type: number, status: number, more: boolean, payload: Buffer): Buffer {
  const buf = Buffer.alloc(EXTENSION_HEADER_SIZE + payload.length);
  putInt(buf, 0, type);
  putInt(buf, 4, buf.length);
  putInt(buf, 8, status);
  putInt(buf, 12, ROOT_PDU_VERSION);
  putInt(buf, 16, more ? MORE : 0);
  putInt(buf, 20, payload.length);
  payload.copy(buf, EXTENSION_HEADER_SIZE);
  return buf;
}

export function encodeExtensionRequest(request: ExtensionRequest): Buffer {
  const payload = Buffer.from(JSON.stringify({ v: SCHEMA_VERSION, ...request }), 'utf8');
  if (payload.length > EXTENSION_MAX_CHUNK) {
    throw new CrootError('ERR_TOO_LONG', `extension request of ${payload.length} bytes exceeds ${EXTENSION_MAX_CHUNK}`);
  }
  return pdu(ExtensionPduType.REQUEST, 0, false, payload);
}

/** One decoded extension PDU. */
export interface ExtensionPdu {
  readonly type: number;
  readonly status: number;
  readonly version: number;
  readonly more: boolean;
  readonly payload: Buffer;
}

export function decodeExtensionPdu(buf: Buffer): ExtensionPdu {
  const h = decodeHeader(buf);
  if (buf.length < EXTENSION_HEADER_SIZE) {
    throw new CrootError('ERR_PROTOCOL', `extension PDU of ${buf.length} bytes is shorter than ${EXTENSION_HEADER_SIZE}`, {
      status: -Errno.EINVAL,
    });
  }
  if (buf.length > EXTENSION_MAX_PDU) throw new CrootError('ERR_TOO_LONG', `extension PDU of ${buf.length} bytes exceeds ${EXTENSION_MAX_PDU}`);
  const flags = getInt(buf, 16);
  const paylen = getInt(buf, 20);
  if (paylen < 0 || EXTENSION_HEADER_SIZE + paylen !== buf.length || (flags & ~MORE) !== 0) {
    throw new CrootError('ERR_PROTOCOL', `extension PDU: payload length ${paylen} and flags ${flags} disagree with PDU length ${buf.length}`, {
      status: -Errno.EINVAL,
    });
  }
  return { type: h.type, status: h.status, version: h.version, more: (flags & MORE) !== 0, payload: buf.subarray(EXTENSION_HEADER_SIZE) };
}

/** Decodes and checks a request; throws ERR_PROTOCOL (-EINVAL), ERR_VERSION or ERR_NOT_SUPPORTED (-ENOTSUP) for one the server cannot take. */
export function decodeExtensionRequest(buf: Buffer): ExtensionRequest {
  const p = decodeExtensionPdu(buf);
  if (p.type !== ExtensionPduType.REQUEST) {
    throw new CrootError('ERR_UNEXPECTED_PDU', `expected an extension request (0x9100), got 0x${(p.type >>> 0).toString(16)}`);
  }
  if (p.version < 1 || p.version > ROOT_PDU_VERSION) {
    throw new CrootError('ERR_VERSION', `extension request has PDU version ${p.version}; this server speaks 1 to ${ROOT_PDU_VERSION}`);
  }
  if (p.more) throw new CrootError('ERR_PROTOCOL', 'an extension request is one PDU (MORE set)', { status: -Errno.EINVAL });
  let body: unknown;
  try {
    body = JSON.parse(p.payload.toString('utf8'));
  } catch (err) {
    throw new CrootError('ERR_PROTOCOL', `extension request is not JSON: ${(err as Error).message}`, { status: -Errno.EINVAL, cause: err });
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new CrootError('ERR_PROTOCOL', 'extension request must be a JSON object', { status: -Errno.EINVAL });
  }
  const { v, op, name } = body as { v?: unknown; op?: unknown; name?: unknown };
  if (v !== SCHEMA_VERSION) throw new CrootError('ERR_NOT_SUPPORTED', `extension request version ${String(v)}; this server speaks ${SCHEMA_VERSION}`);
  if (op === 'show') {
    if (typeof name !== 'string' || name.length === 0) throw new CrootError('ERR_INVALID_NAME', 'show needs a non-empty "name"');
    return { op, name };
  }
  if (op === 'list' || op === 'engines' || op === 'status' || op === 'events') return { op };
  throw new CrootError('ERR_NOT_SUPPORTED', `unknown extension operation ${JSON.stringify(op)}`);
}

/**
 * The reply to a request (or one document of an event stream): the
 * document's JSON cut into chunks (one PDU each), concatenated. ERR_TOO_LONG
 * past `maxReply` bytes of JSON (EXTENSION_MAX_REPLY, what every client takes).
 */
export function encodeExtensionReply(document: CrootDocument, maxReply: number = EXTENSION_MAX_REPLY): Buffer {
  const json = Buffer.from(JSON.stringify(document), 'utf8');
  if (json.length > maxReply) {
    throw new CrootError('ERR_TOO_LONG', `reply of ${json.length} bytes exceeds ${maxReply}`);
  }
  const chunks: Buffer[] = [];
  for (let at = 0; at < json.length || chunks.length === 0; at += EXTENSION_MAX_CHUNK) {
    const end = Math.min(at + EXTENSION_MAX_CHUNK, json.length);
    chunks.push(pdu(ExtensionPduType.REPLY, 0, end < json.length, json.subarray(at, end)));
  }
  return Buffer.concat(chunks);
}

/** An error reply: one PDU with the status and the error report as payload (message cut to fit). */
export function encodeExtensionError(status: number, report: { code: string; message: string }): Buffer {
  let message = report.message;
  let payload = Buffer.from(JSON.stringify({ code: report.code, status, message }), 'utf8');
  while (payload.length > EXTENSION_MAX_CHUNK) {
    message = message.slice(0, Math.floor(message.length * 0.75));
    payload = Buffer.from(JSON.stringify({ code: report.code, status, message: `${message}…` }), 'utf8');
  }
  return pdu(ExtensionPduType.REPLY, status < 0 ? status : -Errno.EINVAL, false, payload);
}

/**
 * Puts a reply back together, chunk by chunk. `push` returns the document
 * once the last chunk is in (then the next push starts the next document of
 * an event stream), throws the server's error (a CrootError with its
 * code and status) for an error reply, and ERR_TOO_LONG past `maxReply`
 * bytes of one document (EXTENSION_MAX_REPLY unless told less).
 */
export class ExtensionReplyAssembler {
  private readonly chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly maxReply: number = EXTENSION_MAX_REPLY) {}

  push(buf: Buffer): CrootDocument | undefined {
    const p = decodeExtensionPdu(buf);
    if (p.type !== ExtensionPduType.REPLY) {
      throw new CrootError('ERR_UNEXPECTED_PDU', `expected an extension reply (0x9101), got 0x${(p.type >>> 0).toString(16)}`);
    }
    if (p.version > ROOT_PDU_VERSION) throw new CrootError('ERR_VERSION', `extension reply has PDU version ${p.version}`);
    if (p.status < 0) throw remoteExtensionError(p.status, p.payload);
    this.size += p.payload.length;
    if (this.size > this.maxReply) throw new CrootError('ERR_TOO_LONG', `extension reply exceeds ${this.maxReply} bytes`);
    this.chunks.push(Buffer.from(p.payload));
    if (p.more) return undefined;
    const json = Buffer.concat(this.chunks).toString('utf8');
    // Ready for the next document of a stream.
    this.chunks.length = 0;
    this.size = 0;
    let doc: unknown;
    try {
      doc = JSON.parse(json);
    } catch (err) {
      throw new CrootError('ERR_PROTOCOL', `extension reply is not JSON: ${(err as Error).message}`, { cause: err });
    }
    if (typeof doc !== 'object' || doc === null || typeof (doc as CrootDocument).schemaVersion !== 'number') {
      throw new CrootError('ERR_PROTOCOL', 'extension reply is not a croot document (no schemaVersion)');
    }
    return doc as CrootDocument;
  }
}

function remoteExtensionError(status: number, payload: Buffer): CrootError {
  let report: { code?: unknown; message?: unknown } = {};
  try {
    report = JSON.parse(payload.toString('utf8')) as typeof report;
  } catch {
    // a bare status
  }
  const message = typeof report.message === 'string' ? report.message : `server answered status ${status}`;
  const code = typeof report.code === 'string' && Object.hasOwn(ErrorCodes, report.code) ? (report.code as ErrorCode) : 'ERR_REMOTE';
  return new CrootError(code, message, { status });
}

/** How a request is named in logs. */
export function describeExtensionRequest(request: ExtensionRequest): string {
  return request.op === 'show' ? `show ${request.name}` : request.op;
}
