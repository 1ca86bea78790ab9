/**
 * The PDU header and framing of PCP's agent protocol (libpcp's pdu.c, PCP
 * 6.0.3): every PDU starts with three 32-bit words in network byte order,
 * `len` (bytes in the PDU, header included), `type` and `from`; PDUs follow
 * each other on the byte stream with no separator.
 */
import { CrootError } from '../core/errors/croot-error.js';

export const PDU_HEADER_SIZE = 12;
/** The PDU protocol version pmcd and libpcp_pmda agents exchange (PDU_VERSION2). */
export const PDU_VERSION = 2;
/** `from` of every PDU an agent sends after its credentials (FROM_ANON). */
export const FROM_ANON = 0;
/**
 * The largest PDU the framer accepts. pmcd's requests to an agent are
 * small (a fetch of 1000 metrics is 4 KiB); a larger length means the
 * stream is not PDUs any more.
 */
export const MAX_PDU_LENGTH = 1 << 20;

export const PduType = {
  ERROR: 0x7000,
  RESULT: 0x7001,
  PROFILE: 0x7002,
  FETCH: 0x7003,
  DESC_REQ: 0x7004,
  DESC: 0x7005,
  INSTANCE_REQ: 0x7006,
  INSTANCE: 0x7007,
  TEXT_REQ: 0x7008,
  TEXT: 0x7009,
  CONTROL_REQ: 0x700a,
  CREDS: 0x700c,
  PMNS_IDS: 0x700d,
  PMNS_NAMES: 0x700e,
  PMNS_CHILD: 0x700f,
  PMNS_TRAVERSE: 0x7010,
  ATTR: 0x7011,
  LABEL_REQ: 0x7012,
  LABEL: 0x7013,
  HIGHRES_FETCH: 0x7014,
  HIGHRES_RESULT: 0x7015,
  DESC_IDS: 0x7016,
  DESCS: 0x7017,
} as const;
export type PduType = (typeof PduType)[keyof typeof PduType];

/** Feature bits of a version credential and of pmcd's PDU info (PDU_FLAG_*). */
export const PduFlag = {
  SECURE: 1 << 0,
  COMPRESS: 1 << 1,
  AUTH: 1 << 2,
  CREDS_REQD: 1 << 3,
  SECURE_ACK: 1 << 4,
  NO_NSS_INIT: 1 << 5,
  CONTAINER: 1 << 6,
  CERT_REQD: 1 << 7,
  BAD_LABEL: 1 << 8,
  LABELS: 1 << 9,
  HIGHRES: 1 << 10,
  DESCS: 1 << 11,
} as const;

const TYPE_NAMES = new Map<number, string>(Object.entries(PduType).map(([k, v]) => [v, k]));

/** "FETCH", or "0x1234" for a type PCP does not define. */
export function pduTypeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `0x${(type >>> 0).toString(16)}`;
}

export interface PduHeader {
  readonly length: number;
  readonly type: number;
  readonly from: number;
}

export function readHeader(pdu: Buffer): PduHeader {
  if (pdu.length < PDU_HEADER_SIZE) throw new CrootError('ERR_PROTOCOL', `PDU of ${pdu.length} bytes is shorter than its header`);
  return { length: pdu.readInt32BE(0), type: pdu.readInt32BE(4), from: pdu.readInt32BE(8) };
}

export function writeHeader(pdu: Buffer, type: number, from: number): void {
  pdu.writeInt32BE(pdu.length, 0);
  pdu.writeInt32BE(type, 4);
  pdu.writeInt32BE(from | 0, 8);
}

/**
 * Cuts a byte stream into whole PDUs by the length in each header. A length
 * below the header size or above `maxLength` cannot be re-synchronised:
 * `push` throws a CrootError `ERR_PROTOCOL` and the framer stays broken.
 */
export class PduFramer {
  private pending: Buffer = Buffer.alloc(0);
  private broken: CrootError | undefined;

  constructor(private readonly maxLength = MAX_PDU_LENGTH) {}

  /** Bytes buffered towards the next PDU. */
  get buffered(): number {
    return this.pending.length;
  }

  /** Adds bytes; returns every PDU they complete, in order. */
  push(chunk: Buffer): Buffer[] {
    if (this.broken) throw this.broken;
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: Buffer[] = [];
    while (this.pending.length >= 4) {
      const len = this.pending.readInt32BE(0);
      if (len < PDU_HEADER_SIZE || len > this.maxLength) {
        this.broken = new CrootError('ERR_PROTOCOL', `PDU length ${len} outside ${PDU_HEADER_SIZE}..${this.maxLength}: the stream is not PCP PDUs`);
        this.pending = Buffer.alloc(0);
        throw this.broken;
      }
      if (this.pending.length < len) break;
      // A copy: the caller may keep the PDU while the stream's buffer is reused.
      out.push(Buffer.from(this.pending.subarray(0, len)));
      this.pending = this.pending.subarray(len);
    }
    return out;
  }
}
