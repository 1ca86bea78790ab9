/**
 * Properties of the codec and the framing, over generated PDUs (fast-check):
 * whatever the requests and however the stream is cut, the decoder hands
 * back exactly the PDUs sent, with the fields they were made from; whatever
 * the bytes, it never throws, and a length it cannot trust ends the stream.
 * The expected values are the generated inputs, not croot's output.
 */
import fc from 'fast-check';
import { CrootError } from '../errors/croot-error.js';
import { FrameDecoder, type Frame } from './frame-decoder.js';
import {
  CONTAINER_HEADER_SIZE,
  MAX_PDU_SIZE,
  PDU_HEADER_SIZE,
  PduType,
  decodeContainer,
  decodeInfo,
  decodeStart,
  decodeStop,
  encodeContainer,
  encodeStart,
  encodeStop,
} from './root-pdus.js';

/** A request as a client means it, before encoding. */
type Request =
  | { readonly kind: 'container'; readonly type: number; readonly name: string; readonly pid: number; readonly trailingNul: boolean }
  | { readonly kind: 'start'; readonly ipctype: number; readonly label: string; readonly args: string }
  | { readonly kind: 'stop'; readonly type: number; readonly pid: number; readonly force: number };

const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
/** Text without NUL (the wire cuts names at the first NUL) of at most `max` UTF-8 bytes. */
const text = (maxChars: number, maxBytes: number): fc.Arbitrary<string> =>
  fc.string({ unit: 'grapheme', maxLength: maxChars }).filter((s) => !s.includes('\0') && Buffer.byteLength(s) <= maxBytes);

const request: fc.Arbitrary<Request> = fc.oneof(
  fc.record({
    kind: fc.constant('container' as const),
    type: fc.constantFrom(PduType.HOSTNAME_REQ, PduType.PROCESSID_REQ, PduType.CGROUPNAME_REQ),
    name: text(60, 4094),
    pid: int32,
    trailingNul: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('start' as const), ipctype: fc.constantFrom(1, 2), label: text(20, 63), args: text(200, 4095) }),
  fc.record({ kind: fc.constant('stop' as const), type: fc.constant(PduType.STOPPMDA_REQ), pid: int32, force: fc.constantFrom(0, 1) }),
);

function encode(r: Request): Buffer {
  switch (r.kind) {
    case 'container':
      return encodeContainer(r.type, r.name, { pid: r.pid, trailingNul: r.trailingNul });
    case 'start':
      return encodeStart(PduType.STARTPMDA_REQ, { ipctype: r.ipctype, label: r.label, args: r.args });
    default:
      return encodeStop(r.type, { pid: r.pid, force: r.force });
  }
}

/** The fields a decoded frame carries, in the shape of `Request`. */
function decode(frame: Frame): Request {
  if (frame.kind !== 'pdu') throw new Error(`a broken frame for a valid stream: ${frame.reason}`);
  switch (frame.header.type) {
    case PduType.HOSTNAME_REQ:
    case PduType.PROCESSID_REQ:
    case PduType.CGROUPNAME_REQ: {
      const c = decodeContainer(frame.bytes);
      const trailingNul = c.namelen > 0 && frame.bytes[CONTAINER_HEADER_SIZE + c.namelen - 1] === 0;
      return { kind: 'container', type: c.type, name: c.name, pid: c.pid, trailingNul };
    }
    case PduType.STARTPMDA_REQ: {
      const s = decodeStart(frame.bytes);
      return { kind: 'start', ipctype: s.ipctype, label: s.label, args: s.args };
    }
    default: {
      const s = decodeStop(frame.bytes);
      return { kind: 'stop', type: s.type, pid: s.pid, force: s.force };
    }
  }
}

/** `bytes` cut at `cuts` (any positions, in any order, repeats allowed). */
function split(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const to of [...at, bytes.length]) {
    chunks.push(bytes.subarray(from, to));
    from = to;
  }
  return chunks;
}

function pushAll(decoder: FrameDecoder, chunks: readonly Buffer[]): Frame[] {
  return chunks.flatMap((c) => decoder.push(c));
}

/** True when `fn` returns, or throws a CrootError; any other throw fails the property. */
function returnsOrCrootError(fn: () => unknown): boolean {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof CrootError)) throw err;
  }
  return true;
}

describe('protocol (properties)', () => {
  it('decodes any stream of valid requests, cut anywhere, into the same requests in order', () => {
    fc.assert(
      fc.property(fc.array(request, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 40 }), (requests, cuts) => {
        const wire = requests.map(encode);
        const decoder = new FrameDecoder();
        const frames = pushAll(decoder, split(Buffer.concat(wire), cuts));
        expect(frames.map(decode)).toEqual(requests);
        expect(frames.map((f) => (f.kind === 'pdu' ? f.bytes : undefined))).toEqual(wire);
        expect(decoder.pending).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('holds back a partial PDU until its last byte arrives', () => {
    fc.assert(
      fc.property(request, fc.nat(), (r, cut) => {
        const bytes = encode(r);
        const at = cut % bytes.length;
        const decoder = new FrameDecoder();
        expect(decoder.push(bytes.subarray(0, at))).toEqual([]);
        expect(decoder.pending).toBe(at);
        expect(decoder.push(bytes.subarray(at)).map(decode)).toEqual([r]);
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on any bytes: it hands back whole PDUs by their length field, and a length it cannot trust ends the stream', () => {
    // Frames whose length field fits their random body, mixed with plain random bytes.
    const framed = fc.record({ type: int32, body: fc.uint8Array({ maxLength: 180 }), rest: fc.uint8Array({ maxLength: 8 }) }).map(({ type, body, rest }) => {
      const head = Buffer.alloc(PDU_HEADER_SIZE);
      head.writeInt32LE(type, 0);
      head.writeInt32LE(PDU_HEADER_SIZE + body.length, 4);
      head.set(rest.subarray(0, 8), 8);
      return Buffer.concat([head, body]);
    });
    const segment = fc.oneof(framed, fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)));
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 20 }), (segments, cuts) => {
        const bytes = Buffer.concat(segments);
        const frames = pushAll(new FrameDecoder(), split(bytes, cuts));
        let offset = 0;
        for (const [i, frame] of frames.entries()) {
          const length = bytes.readInt32LE(offset + 4);
          if (frame.kind === 'broken') {
            // Only the last frame, and only for a length below the header or above the largest PDU.
            expect(i).toBe(frames.length - 1);
            expect(length < PDU_HEADER_SIZE || length > MAX_PDU_SIZE).toBe(true);
            break;
          }
          expect(frame.bytes).toEqual(bytes.subarray(offset, offset + length));
          offset += length;
        }
        // Whatever is left did not yet make a whole PDU (or the stream broke).
        const last = frames[frames.length - 1];
        if (last?.kind !== 'broken' && bytes.length - offset >= PDU_HEADER_SIZE) {
          const length = bytes.readInt32LE(offset + 4);
          expect(length > bytes.length - offset).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('decodes any bytes to fields or a CrootError with a negative status, never another exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.constantFrom(...Object.values(PduType)), (raw, type) => {
        const bytes = Buffer.from(raw);
        // A real PDU type in the header, so the decoders get past the first check.
        if (bytes.length >= 16) bytes.writeInt32LE(type, 0);
        for (const decoder of [decodeContainer, decodeStart, decodeStop, decodeInfo]) {
          expect(returnsOrCrootError(() => decoder(bytes))).toBe(true);
          try {
            decoder(bytes);
          } catch (err) {
            expect((err as CrootError).status).toBeLessThan(0);
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});
