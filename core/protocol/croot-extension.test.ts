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
  sortContainers,
  sortEngines,
  type ContainerReport,
  type CrootDocument,
} from './croot-extension.js';
import { CrootError } from '../errors/croot-error.js';
import { FrameDecoder } from './frame-decoder.js';
import { MAX_PDU_SIZE, PduType } from './root-pdus.js';
import { errnoTruth } from '../../test/support/truth.js';

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
    // PDU version 1, as PCP's own requests may carry (pmdaroot.h: versions 1 and 2), is taken too.
    const v1 = Buffer.from(bytes);
    v1.writeInt32LE(1, 12);
    expect(decodeExtensionRequest(v1)).toEqual({ op: 'list' });
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

/** The statuses docs/protocol.md gives the extension's refusals, numbered by the kernel's errno headers. */
const EINVAL = errnoTruth('EINVAL');
// ENOTSUP is glibc's name for the kernel's EOPNOTSUPP.
const ENOTSUP = errnoTruth('EOPNOTSUPP');
const E2BIG = errnoTruth('E2BIG');
const ESRCH = errnoTruth('ESRCH');

/** An extension PDU laid out by hand from docs/protocol.md: type, length, status, version, flags, paylen, then the payload. */
function extensionBytes(payload: Buffer | string, fields: { type?: number; length?: number; status?: number; version?: number; flags?: number; paylen?: number } = {}): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const buf = Buffer.alloc(24 + body.length);
  buf.writeInt32LE(fields.type ?? 0x9100, 0);
  buf.writeInt32LE(fields.length ?? buf.length, 4);
  buf.writeInt32LE(fields.status ?? 0, 8);
  buf.writeInt32LE(fields.version ?? 2, 12);
  buf.writeInt32LE(fields.flags ?? 0, 16);
  buf.writeInt32LE(fields.paylen ?? body.length, 20);
  body.copy(buf, 24);
  return buf;
}

/** The code and status `run` throws, or what it returned. */
function outcomeOf(run: () => unknown): unknown {
  try {
    return run();
  } catch (err) {
    if (!(err instanceof CrootError)) throw err;
    return [err.code, err.status];
  }
}

/** The PDUs of a byte stream, read by hand: type, status, version, flags, paylen and payload of each. */
function pdusOf(bytes: Buffer): { type: number; status: number; version: number; flags: number; payload: Buffer }[] {
  const out = [];
  for (let at = 0; at < bytes.length; at += bytes.readInt32LE(at + 4)) {
    const paylen = bytes.readInt32LE(at + 20);
    expect(bytes.readInt32LE(at + 4)).toBe(24 + paylen);
    out.push({ type: bytes.readInt32LE(at), status: bytes.readInt32LE(at + 8), version: bytes.readInt32LE(at + 12), flags: bytes.readInt32LE(at + 16), payload: bytes.subarray(at + 24, at + 24 + paylen) });
  }
  return out;
}

/** A JSON object of exactly `size` bytes: `{"schemaVersion":1,"pad":"xxx…"}`. */
function documentOfBytes(size: number): CrootDocument & { pad: string } {
  const empty = Buffer.byteLength(JSON.stringify({ schemaVersion: 1, pad: '' }));
  return { schemaVersion: 1, pad: 'x'.repeat(size - empty) };
}

describe('croot protocol extension: requests as docs/protocol.md spells them', () => {
  it.each([
    ['{"v":1,"op":"list"}', { op: 'list' }],
    ['{"v":1,"op":"engines"}', { op: 'engines' }],
    ['{"v":1,"op":"status"}', { op: 'status' }],
    ['{"v":1,"op":"events"}', { op: 'events' }],
    ['{"v":1,"op":"show","name":"web"}', { op: 'show', name: 'web' }],
    // What an operation does not take is not passed on.
    ['{"v":1,"op":"list","name":"web"}', { op: 'list' }],
  ])('takes %s', (json, request) => {
    expect(decodeExtensionRequest(extensionBytes(json))).toEqual(request);
  });

  it('encodes each request as the JSON docs/protocol.md gives', () => {
    for (const [request, json] of [
      [{ op: 'engines' }, '{"v":1,"op":"engines"}'],
      [{ op: 'status' }, '{"v":1,"op":"status"}'],
      [{ op: 'events' }, '{"v":1,"op":"events"}'],
      [{ op: 'show', name: 'web' }, '{"v":1,"op":"show","name":"web"}'],
    ] as const) {
      expect(encodeExtensionRequest(request)).toEqual(extensionBytes(json));
    }
  });

  it.each([
    ['not JSON', '{"v":1', ['ERR_PROTOCOL', -EINVAL]],
    ['JSON null', 'null', ['ERR_PROTOCOL', -EINVAL]],
    ['a JSON array', '[{"v":1,"op":"list"}]', ['ERR_PROTOCOL', -EINVAL]],
    ['a JSON string', '"list"', ['ERR_PROTOCOL', -EINVAL]],
    ['a JSON number', '1', ['ERR_PROTOCOL', -EINVAL]],
    ['without a version', '{"op":"list"}', ['ERR_NOT_SUPPORTED', -ENOTSUP]],
    ['of version "1" as text', '{"v":"1","op":"list"}', ['ERR_NOT_SUPPORTED', -ENOTSUP]],
    ['of version 2', '{"v":2,"op":"list"}', ['ERR_NOT_SUPPORTED', -ENOTSUP]],
    ['without an operation', '{"v":1}', ['ERR_NOT_SUPPORTED', -ENOTSUP]],
    ['of an unknown operation', '{"v":1,"op":"kill"}', ['ERR_NOT_SUPPORTED', -ENOTSUP]],
    ['of an operation in capitals', '{"v":1,"op":"LIST"}', ['ERR_NOT_SUPPORTED', -ENOTSUP]],
    ['show without a name', '{"v":1,"op":"show"}', ['ERR_INVALID_NAME', -EINVAL]],
    ['show with an empty name', '{"v":1,"op":"show","name":""}', ['ERR_INVALID_NAME', -EINVAL]],
    ['show with a number for a name', '{"v":1,"op":"show","name":7}', ['ERR_INVALID_NAME', -EINVAL]],
  ])('refuses a request %s, with the status docs/protocol.md gives', (_what, json, outcome) => {
    expect(outcomeOf(() => decodeExtensionRequest(extensionBytes(json)))).toEqual(outcome);
  });

  it('refuses a request PDU of the wrong shape with -EINVAL: MORE set, an unknown flag, a payload length that disagrees', () => {
    const list = '{"v":1,"op":"list"}';
    expect(outcomeOf(() => decodeExtensionRequest(extensionBytes(list, { flags: 1 })))).toEqual(['ERR_PROTOCOL', -EINVAL]);
    expect(outcomeOf(() => decodeExtensionRequest(extensionBytes(list, { flags: 2 })))).toEqual(['ERR_PROTOCOL', -EINVAL]);
    expect(outcomeOf(() => decodeExtensionRequest(extensionBytes(list, { flags: 1 << 31 })))).toEqual(['ERR_PROTOCOL', -EINVAL]);
    expect(outcomeOf(() => decodeExtensionRequest(extensionBytes(list, { paylen: -1 })))).toEqual(['ERR_PROTOCOL', -EINVAL]);
    expect(outcomeOf(() => decodeExtensionRequest(extensionBytes(list, { paylen: 20 })))).toEqual(['ERR_PROTOCOL', -EINVAL]);
    // A root-protocol header without the extension's flags and paylen.
    expect(outcomeOf(() => decodeExtensionRequest(extensionBytes('').subarray(0, 20)))).toEqual(['ERR_PROTOCOL', -EINVAL]);
    expect(outcomeOf(() => decodeExtensionRequest(extensionBytes('').subarray(0, 16)))).toEqual(['ERR_PROTOCOL', -EINVAL]);
  });

  it('refuses a reply where a request belongs, with -ESRCH', () => {
    expect(outcomeOf(() => decodeExtensionRequest(extensionBytes('{"v":1,"op":"list"}', { type: 0x9101 })))).toEqual(['ERR_UNEXPECTED_PDU', -ESRCH]);
  });

  it('takes a request PDU of 4096 bytes and refuses one of 4097, sent or received', () => {
    const fits = (nameBytes: number): string => JSON.stringify({ v: 1, op: 'show', name: 'n'.repeat(nameBytes) });
    const longest = 'n'.repeat(4096 - 24 - Buffer.byteLength(fits(0)));
    expect(decodeExtensionRequest(extensionBytes(fits(longest.length)))).toEqual({ op: 'show', name: longest });
    expect(encodeExtensionRequest({ op: 'show', name: longest })).toEqual(extensionBytes(fits(longest.length)));
    expect(outcomeOf(() => decodeExtensionRequest(extensionBytes(fits(longest.length + 1))))).toEqual(['ERR_TOO_LONG', -E2BIG]);
    expect(outcomeOf(() => encodeExtensionRequest({ op: 'show', name: `${longest}n` }))).toEqual(['ERR_TOO_LONG', -E2BIG]);
  });
});

describe('croot protocol extension: replies', () => {
  it('sends a document of 4072 bytes as one PDU, and one more byte as two, the first with MORE', () => {
    const one = pdusOf(encodeExtensionReply(documentOfBytes(4072)));
    expect(one.map((p) => [p.type, p.status, p.version, p.flags, p.payload.length])).toEqual([[0x9101, 0, 2, 0, 4072]]);
    const two = pdusOf(encodeExtensionReply(documentOfBytes(4073)));
    expect(two.map((p) => [p.type, p.status, p.version, p.flags, p.payload.length])).toEqual([
      [0x9101, 0, 2, 1, 4072],
      [0x9101, 0, 2, 0, 1],
    ]);
    expect(JSON.parse(Buffer.concat(two.map((p) => p.payload)).toString())).toEqual(documentOfBytes(4073));
  });

  it('refuses to send a document of more than 8 MiB, what every client takes', () => {
    expect(outcomeOf(() => encodeExtensionReply(documentOfBytes(8 * 1024 * 1024 + 1)))).toEqual(['ERR_TOO_LONG', -E2BIG]);
  });

  it('sends and puts back a document exactly as long as the cap it is given, then the next document of the stream, and refuses a longer one', () => {
    const cap = 3 * 4072 + 10;
    const most = documentOfBytes(cap);
    const next = { schemaVersion: 1, engines: [] };
    const assembler = new ExtensionReplyAssembler(cap);
    const frames = new FrameDecoder().push(Buffer.concat([encodeExtensionReply(most, cap), encodeExtensionReply(most, cap), encodeExtensionReply(next, cap)]));
    const documents = frames.map((f) => (f.kind === 'pdu' ? assembler.push(f.bytes) : f.reason)).filter((d) => d !== undefined);
    expect(documents).toEqual([most, most, next]);
    expect(outcomeOf(() => encodeExtensionReply(documentOfBytes(cap + 1), cap))).toEqual(['ERR_TOO_LONG', -E2BIG]);
    const longer = new FrameDecoder().push(encodeExtensionReply(documentOfBytes(cap + 1)));
    const small = new ExtensionReplyAssembler(cap);
    expect(outcomeOf(() => longer.map((f) => (f.kind === 'pdu' ? small.push(f.bytes) : f.reason)))).toEqual(['ERR_TOO_LONG', -E2BIG]);
  });

  it('takes a reply of an older PDU version and refuses a newer one with -ENOTSUP', () => {
    expect(new ExtensionReplyAssembler().push(extensionBytes('{"schemaVersion":1}', { type: 0x9101, version: 1 }))).toEqual({ schemaVersion: 1 });
    expect(outcomeOf(() => new ExtensionReplyAssembler().push(extensionBytes('{"schemaVersion":1}', { type: 0x9101, version: 3 })))).toEqual(['ERR_VERSION', -ENOTSUP]);
  });

  it('refuses a request where a reply belongs, with -ESRCH', () => {
    expect(outcomeOf(() => new ExtensionReplyAssembler().push(extensionBytes('{"schemaVersion":1}')))).toEqual(['ERR_UNEXPECTED_PDU', -ESRCH]);
  });

  it.each([
    ['not JSON', '{"schemaVersion":1'],
    ['JSON null', 'null'],
    ['a JSON number', '1'],
    ['an object without schemaVersion', '{"containers":[]}'],
    ['a schemaVersion that is text', '{"schemaVersion":"1"}'],
  ])('refuses a reply that is %s, and reads the next document of the stream as if nothing had been', (_what, json) => {
    const assembler = new ExtensionReplyAssembler();
    expect(outcomeOf(() => assembler.push(extensionBytes(json, { type: 0x9101 })))).toEqual(['ERR_PROTOCOL', -12366]);
    expect(assembler.push(extensionBytes('{"schemaVersion":1,"engines":[]}', { type: 0x9101 }))).toEqual({ schemaVersion: 1, engines: [] });
  });
});

describe('croot protocol extension: error replies', () => {
  it('sends a negative status as it is, and a status that is not negative as -EINVAL', () => {
    expect(pdusOf(encodeExtensionError(-12399, { code: 'ERR_NO_CONTAINER', message: 'no' })).map((p) => [p.type, p.status, p.flags])).toEqual([[0x9101, -12399, 0]]);
    expect(pdusOf(encodeExtensionError(-1, { code: 'ERR_NOT_PERMITTED', message: 'no' }))[0]?.status).toBe(-1);
    expect(pdusOf(encodeExtensionError(0, { code: 'ERR_SYSTEM', message: 'no' }))[0]?.status).toBe(-EINVAL);
    expect(pdusOf(encodeExtensionError(5, { code: 'ERR_SYSTEM', message: 'no' }))[0]?.status).toBe(-EINVAL);
  });

  it('keeps a message that fits one PDU whole, and cuts a longer one to a prefix of it, marked with …', () => {
    const report = (message: string): string => JSON.stringify({ code: 'ERR_NO_CONTAINER', status: -12399, message });
    const whole = 'm'.repeat(4072 - Buffer.byteLength(report('')));
    const [fits] = pdusOf(encodeExtensionError(-12399, { code: 'ERR_NO_CONTAINER', message: whole }));
    expect(fits?.payload.toString()).toBe(report(whole));
    const [cut] = pdusOf(encodeExtensionError(-12399, { code: 'ERR_NO_CONTAINER', message: `${whole}m` }));
    const { message } = JSON.parse(cut?.payload.toString() ?? '') as { message: string };
    expect(cut?.payload.length).toBeLessThanOrEqual(4072);
    expect(message.endsWith('…')).toBe(true);
    expect(whole.startsWith(message.slice(0, -1))).toBe(true);
    expect(message.length).toBeGreaterThan(1000);
  });

  it.each([
    ['a code croot does not know', '{"code":"ERR_BOGUS","status":-5,"message":"odd"}', { code: 'ERR_REMOTE', status: -5, message: 'odd' }],
    ['a code from Object.prototype', '{"code":"constructor","status":-5,"message":"odd"}', { code: 'ERR_REMOTE', status: -5, message: 'odd' }],
    ['a code that is not text', '{"code":7,"status":-5,"message":"odd"}', { code: 'ERR_REMOTE', status: -5, message: 'odd' }],
    ['no JSON at all', 'oops', { code: 'ERR_REMOTE', status: -5, message: 'server answered status -5' }],
    ['a message that is not text', '{"code":"ERR_NOT_RUNNING","message":["x"]}', { code: 'ERR_NOT_RUNNING', status: -5, message: 'server answered status -5' }],
  ])('turns an error reply with %s into a CrootError with the status of the PDU', (_what, json, expected) => {
    let thrown: unknown = 'no error';
    try {
      new ExtensionReplyAssembler().push(extensionBytes(json, { type: 0x9101, status: -5 }));
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(CrootError);
    expect(thrown).toMatchObject(expected);
  });
});

describe('the order every command prints (docs/cli.md: by engine, first name, id)', () => {
  const c = (engine: string | null, names: string[], id: string | null): ContainerReport => ({ engine, id, names, state: null, pid: null });

  it('sorts containers by engine, then first name, then id, a missing one first', () => {
    const sorted = [
      c(null, ['z'], 'f'),
      c('docker', [], 'e'),
      c('docker', ['a', 'z'], null),
      c('docker', ['a', 'b'], '1'),
      c('docker', ['a'], '2'),
      c('docker', ['b'], '0'),
      c('lxc', ['a'], '0'),
      c('podman', ['a'], '0'),
    ];
    const shuffled = [sorted[5], sorted[7], sorted[3], sorted[0], sorted[6], sorted[4], sorted[1], sorted[2]] as ContainerReport[];
    expect(sortContainers(shuffled)).toEqual(sorted);
    expect(sortContainers([...shuffled].reverse())).toEqual(sorted);
    // The list given is left as it was.
    expect(shuffled[0]).toBe(sorted[5]);
  });

  it('sorts engines by id', () => {
    const e = (engine: string) => ({ engine, available: true, reason: '', checkedAt: '' });
    const list = [e('podman'), e('containerd'), e('lxc'), e('docker')];
    expect(sortEngines(list).map((r) => r.engine)).toEqual(['containerd', 'docker', 'lxc', 'podman']);
    expect(sortEngines([...list].reverse()).map((r) => r.engine)).toEqual(['containerd', 'docker', 'lxc', 'podman']);
    expect(list[0]?.engine).toBe('podman');
  });
});
