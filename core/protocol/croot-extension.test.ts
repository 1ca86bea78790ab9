import {
  EXTENSION_MAX_PDU,
  EXTENSION_MAX_REPLY,
  ExtensionPduType,
  ExtensionReplyAssembler,
  SCHEMA_VERSION,
  decodeExtensionPdu,
  decodeExtensionRequest,
  encodeExtensionError,
  encodeExtensionReply,
  encodeExtensionRequest,
  type CrootDocument,
} from './croot-extension.js';
import { CrootError } from '../errors/croot-error.js';
import { FrameDecoder } from './frame-decoder.js';
import { MAX_PDU_SIZE, PduType } from './root-pdus.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** A document of `n` containers, with names long enough to need many chunks. */
function documentOf(n: number): CrootDocument {
  return {
    schemaVersion: SCHEMA_VERSION,
    engines: [{ engine: 'docker', available: true, reason: 'daemon', checkedAt: new Date(0).toISOString() }],
    containers: Array.from({ length: n }, (_, i) => ({
      engine: 'docker',
      id: i.toString(16).padStart(64, '0'),
      names: [`container-${i}-${'é'.repeat(i % 7)}`],
      state: 'running' as const,
      pid: 1000 + i,
    })),
  };
}

describe('croot protocol extension', () => {
  it('lies outside PCP’s PDU types', () => {
    const pcp = Object.values(PduType);
    expect(Math.max(...pcp)).toBeLessThan(ExtensionPduType.REQUEST);
    expect(pcp).not.toContain(ExtensionPduType.REPLY);
  });

  it('encodes a request as one PDU: header, flags, payload length, JSON', () => {
    const bytes = encodeExtensionRequest({ op: 'list' });
    const json = Buffer.from('{"v":1,"op":"list"}');
    // type 0x9100, length 24 + 19, status 0, version 2, flags 0, paylen 19 (host order: little-endian here)
    expect(bytes.subarray(0, 24)).toEqual(hex('00910000 2b000000 00000000 02000000 00000000 13000000'));
    expect(bytes.subarray(24)).toEqual(json);
    expect(decodeExtensionRequest(bytes)).toEqual({ op: 'list' });
    expect(decodeExtensionRequest(encodeExtensionRequest({ op: 'show', name: 'web' }))).toEqual({ op: 'show', name: 'web' });
  });

  it('cuts a large reply into PDUs that every root-protocol framer accepts, and puts it back together', () => {
    const doc = documentOf(400);
    const bytes = encodeExtensionReply(doc);
    const frames = new FrameDecoder(MAX_PDU_SIZE).push(bytes);
    expect(frames.length).toBeGreaterThan(10);
    expect(frames.every((f) => f.kind === 'pdu' && f.bytes.length <= EXTENSION_MAX_PDU)).toBe(true);
    const assembler = new ExtensionReplyAssembler();
    const results = frames.map((f) => (f.kind === 'pdu' ? assembler.push(f.bytes) : undefined));
    expect(results.slice(0, -1).every((r) => r === undefined)).toBe(true);
    expect(results.at(-1)).toEqual(doc);
  });

  it('puts back the documents of an event stream one after another, the large and the small', () => {
    const event = { schemaVersion: SCHEMA_VERSION, event: { time: new Date(0).toISOString(), type: 'engine' as const, action: 'health' as const } };
    const docs: CrootDocument[] = [documentOf(300), event, documentOf(2), event];
    const frames = new FrameDecoder(MAX_PDU_SIZE).push(Buffer.concat(docs.map((d) => encodeExtensionReply(d))));
    const assembler = new ExtensionReplyAssembler();
    const out = frames.map((f) => (f.kind === 'pdu' ? assembler.push(f.bytes) : undefined)).filter((d) => d !== undefined);
    expect(out).toEqual(docs);
    expect(decodeExtensionRequest(encodeExtensionRequest({ op: 'events' }))).toEqual({ op: 'events' });
  });

  it('sends a small document as one PDU without MORE', () => {
    const bytes = encodeExtensionReply({ schemaVersion: 1, engines: [] });
    expect(decodeExtensionPdu(bytes)).toMatchObject({ type: ExtensionPduType.REPLY, status: 0, more: false });
  });

  it('turns an error reply into a CrootError with the server’s code, status and message', () => {
    const reply = encodeExtensionError(-76, { code: 'ERR_AMBIGUOUS_NAME', message: 'web is ambiguous: docker:1 (web), podman:2 (web)' });
    const err = (() => {
      try {
        new ExtensionReplyAssembler().push(reply);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(CrootError);
    expect(err).toMatchObject({ code: 'ERR_AMBIGUOUS_NAME', status: -76, message: 'web is ambiguous: docker:1 (web), podman:2 (web)' });
  });

  it('cuts an error message that would not fit one PDU', () => {
    const reply = encodeExtensionError(-12399, { code: 'ERR_NO_CONTAINER', message: 'x'.repeat(20000) });
    expect(reply.length).toBeLessThanOrEqual(EXTENSION_MAX_PDU);
    expect(() => new ExtensionReplyAssembler().push(reply)).toThrow(expect.objectContaining({ status: -12399 }));
  });

  it('refuses a reply that grows past its cap', () => {
    const assembler = new ExtensionReplyAssembler();
    const chunk = Buffer.alloc(4000, 0x20);
    const more = encodeExtensionReply({ schemaVersion: 1 }).subarray(0, 24);
    const pdu = Buffer.concat([more, chunk]);
    pdu.writeInt32LE(pdu.length, 4);
    pdu.writeInt32LE(1, 16);
    pdu.writeInt32LE(chunk.length, 20);
    expect(() => {
      for (let i = 0; i <= EXTENSION_MAX_REPLY / chunk.length; i++) assembler.push(pdu);
    }).toThrow(expect.objectContaining({ code: 'ERR_TOO_LONG' }));
  });

  it.each([
    ['not JSON', Buffer.from('{'), 'ERR_PROTOCOL'],
    ['a JSON array', Buffer.from('[]'), 'ERR_PROTOCOL'],
    ['another version', Buffer.from('{"v":2,"op":"list"}'), 'ERR_NOT_SUPPORTED'],
    ['an unknown operation', Buffer.from('{"v":1,"op":"kill"}'), 'ERR_NOT_SUPPORTED'],
    ['show without a name', Buffer.from('{"v":1,"op":"show"}'), 'ERR_INVALID_NAME'],
  ])('refuses a request that is %s', (_what, payload, code) => {
    const pdu = encodeExtensionRequest({ op: 'list' });
    const bytes = Buffer.concat([pdu.subarray(0, 24), payload]);
    bytes.writeInt32LE(bytes.length, 4);
    bytes.writeInt32LE(payload.length, 20);
    expect(() => decodeExtensionRequest(bytes)).toThrow(expect.objectContaining({ code }));
  });

  it('refuses a payload length that disagrees with the PDU length', () => {
    const bytes = encodeExtensionRequest({ op: 'list' });
    bytes.writeInt32LE(3, 20);
    expect(() => decodeExtensionRequest(bytes)).toThrow(expect.objectContaining({ code: 'ERR_PROTOCOL', status: -22 }));
  });
});
