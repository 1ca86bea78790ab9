/**
 * Framing of a root-socket byte stream: PDUs cut out by their `length`
 * field, whatever the reads that carried them.
 */
import { MAX_PDU_SIZE, PDU_HEADER_SIZE, decodeHeader, type PduHeader } from './root-pdus.js';

export type Frame =
  | { readonly kind: 'pdu'; readonly header: PduHeader; readonly bytes: Buffer }
  /** A header whose length cannot be trusted: the stream cannot be re-synchronised. */
  | { readonly kind: 'broken'; readonly header: PduHeader; readonly reason: string };

/**
 * Splits a byte stream into PDUs by their `length` field, so requests split
 * across writes or pipelined in one write are all seen, in order.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private broken = false;

  constructor(private readonly maxPduSize: number = MAX_PDU_SIZE) {}

  /** Bytes received and not yet part of a complete PDU. */
  get pending(): number {
    return this.buffered;
  }

  push(data: Buffer): Frame[] {
    if (this.broken) return [];
    if (data.length > 0) {
      this.chunks.push(data);
      this.buffered += data.length;
    }
    const frames: Frame[] = [];
    while (this.buffered >= PDU_HEADER_SIZE) {
      const head = this.peek(PDU_HEADER_SIZE);
      const h = decodeHeader(head);
      if (h.length < PDU_HEADER_SIZE || h.length > this.maxPduSize) {
        this.broken = true;
        this.chunks = [];
        this.buffered = 0;
        frames.push({
          kind: 'broken',
          header: h,
          reason: h.length < PDU_HEADER_SIZE ? `PDU length ${h.length} is shorter than its header` : `PDU length ${h.length} exceeds ${this.maxPduSize}`,
        });
        break;
      }
      if (this.buffered < h.length) break;
      frames.push({ kind: 'pdu', header: h, bytes: this.take(h.length) });
    }
    return frames;
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0] as Buffer;
    if (first.length >= n) return first.subarray(0, n);
    this.chunks = [Buffer.concat(this.chunks)];
    return (this.chunks[0] as Buffer).subarray(0, n);
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    if (all.length === n) {
      // The usual case, one PDU per read: hand that buffer over instead of copying it.
      this.chunks = [];
      this.buffered = 0;
      return all;
    }
    // `all` is longer than the PDU here (one exactly as long returned above): keep the rest.
    const out = Buffer.from(all.subarray(0, n));
    const rest = all.subarray(n);
    this.chunks = [rest];
    this.buffered = rest.length;
    return out;
  }
}
