/**
 * Bounds-checked reading and writing of PCP PDU bodies: 32-bit words in
 * network byte order, strings padded with `~` to a word boundary as libpcp
 * pads them. Every read past the end of a PDU is a CrootError
 * `ERR_PROTOCOL` (PM_ERR_IPC), never a wrong value.
 */
import { CrootError } from '../core/errors/croot-error.js';

/** libpcp fills the bytes after a string up to the next 4-byte boundary with this. */
export const PAD_BYTE = 0x7e; // '~'

/** Rounds a byte count up to whole 32-bit words (libpcp's PM_PDU_SIZE_BYTES). */
export function wordAligned(bytes: number): number {
  return (bytes + 3) & ~3;
}

export class PduReader {
  private offset: number;

  constructor(
    private readonly buf: Buffer,
    start = 0,
    private readonly what = 'PDU',
  ) {
    this.offset = start;
  }

  get position(): number {
    return this.offset;
  }

  get remaining(): number {
    return this.buf.length - this.offset;
  }

  seek(offset: number): void {
    if (offset < 0 || offset > this.buf.length) this.fail(`offset ${offset} outside the ${this.buf.length}-byte ${this.what}`);
    this.offset = offset;
  }

  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  uint32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  uint16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.offset);
    this.offset += 2;
    return v;
  }

  uint8(): number {
    this.need(1);
    const v = this.buf.readUInt8(this.offset);
    this.offset += 1;
    return v;
  }

  bytes(n: number): Buffer {
    if (n < 0) this.fail(`negative length ${n}`);
    this.need(n);
    const v = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return v;
  }

  /** `n` bytes of text followed by padding to the next word boundary. */
  paddedString(n: number): string {
    const text = this.bytes(n).toString('utf8');
    this.skip(wordAligned(n) - n);
    return text;
  }

  skip(n: number): void {
    this.need(n);
    this.offset += n;
  }

  /** Throws unless every byte was read. */
  end(): void {
    if (this.offset !== this.buf.length) this.fail(`${this.buf.length - this.offset} bytes left over at the end`);
  }

  count(n: number, perItem: number, label: string): number {
    if (n < 0) this.fail(`negative ${label} ${n}`);
    if (n * perItem > this.remaining) this.fail(`${label} ${n} does not fit in the ${this.buf.length}-byte ${this.what}`);
    return n;
  }

  fail(why: string): never {
    throw new CrootError('ERR_PROTOCOL', `malformed ${this.what}: ${why}`);
  }

  private need(n: number): void {
    if (this.offset + n > this.buf.length) this.fail(`wants ${n} more bytes at offset ${this.offset}, has ${this.buf.length - this.offset}`);
  }
}

/** Appends words and padded strings; `finish` gives one Buffer. */
export class PduWriter {
  private readonly parts: Buffer[] = [];
  private size = 0;

  get length(): number {
    return this.size;
  }

  int32(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeInt32BE(v | 0, 0);
    return this.push(b);
  }

  uint32(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(v >>> 0, 0);
    return this.push(b);
  }

  uint16(v: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeUInt16BE(v, 0);
    return this.push(b);
  }

  uint8(v: number): this {
    return this.push(Buffer.from([v & 0xff]));
  }

  bytes(b: Uint8Array): this {
    return this.push(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  }

  /** Bytes followed by `~` padding to the next word boundary. */
  padded(b: Uint8Array): this {
    this.bytes(b);
    const pad = wordAligned(b.byteLength) - b.byteLength;
    if (pad > 0) this.push(Buffer.alloc(pad, PAD_BYTE));
    return this;
  }

  finish(): Buffer {
    return Buffer.concat(this.parts, this.size);
  }

  private push(b: Buffer): this {
    this.parts.push(b);
    this.size += b.length;
    return this;
  }
}
