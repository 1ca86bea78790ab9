/**
 * What the croot extension's refusals carry: the status and code a bare
 * error reply gives, the parser's error as cause, the offending values in
 * the message. PDUs laid out by hand from docs/protocol.md.
 */
import { CrootError } from '../errors/croot-error.js';
import {
  ExtensionReplyAssembler,
  decodeExtensionRequest,
  encodeExtensionReply,
  encodeExtensionRequest,
  sortContainers,
  type ContainerReport,
  type CrootDocument,
} from './croot-extension.js';

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

/** A JSON object of exactly `size` bytes: `{"schemaVersion":1,"pad":"xxx…"}`. */
function documentOfBytes(size: number): CrootDocument & { pad: string } {
  const empty = Buffer.byteLength(JSON.stringify({ schemaVersion: 1, pad: '' }));
  return { schemaVersion: 1, pad: 'x'.repeat(size - empty) };
}

describe('croot protocol extension: what a refusal carries', () => {
  it('takes an error reply that is a bare status, with no payload at all', () => {
    expect(() => new ExtensionReplyAssembler().push(extensionBytes('', { type: 0x9101, status: -5 }))).toThrow(
      expect.objectContaining({ code: 'ERR_REMOTE', status: -5, message: 'server answered status -5' }),
    );
  });

  it('takes no code from an error reply whose code is not text, even one that reads as a code', () => {
    expect(() => new ExtensionReplyAssembler().push(extensionBytes('{"code":["ERR_NO_CONTAINER"],"message":"x"}', { type: 0x9101, status: -5 }))).toThrow(
      expect.objectContaining({ code: 'ERR_REMOTE', status: -5 }),
    );
  });

  it("keeps the JSON parser's error as the cause of a request or reply it cannot read", () => {
    for (const run of [() => decodeExtensionRequest(extensionBytes('{"v":')), () => new ExtensionReplyAssembler().push(extensionBytes('{"schemaVersion":', { type: 0x9101 }))]) {
      let thrown: unknown;
      try {
        run();
      } catch (err) {
        thrown = err;
      }
      expect((thrown as CrootError).cause).toBeInstanceOf(SyntaxError);
    }
  });

  it('names what it refuses in the message a client or a log shows', () => {
    const messageOf = (run: () => unknown): string => {
      try {
        run();
      } catch (err) {
        return (err as Error).message;
      }
      return 'decoded';
    };
    const cases: [() => unknown, RegExp][] = [
      [() => decodeExtensionRequest(extensionBytes('').subarray(0, 20)), /\b20\b.*\b24\b/],
      [() => decodeExtensionRequest(extensionBytes('x'.repeat(4100))), /\b4124\b.*\b4096\b/],
      [() => decodeExtensionRequest(extensionBytes('{}', { paylen: 9 })), /\b9\b.*\b26\b/],
      [() => decodeExtensionRequest(extensionBytes('{}', { type: 0x9abc })), /9abc/],
      [() => decodeExtensionRequest(extensionBytes('{}', { flags: 1 })), /MORE/],
      [() => decodeExtensionRequest(extensionBytes('{"v":1,"op":"list"}', { version: 9 })), /PDU version 9\b/],
      [() => decodeExtensionRequest(extensionBytes('{"v":1,"op":"list"}', { version: 0 })), /PDU version 0\b/],
      [() => decodeExtensionRequest(extensionBytes('{"v":')), /JSON/],
      [() => decodeExtensionRequest(extensionBytes('[]')), /object/],
      [() => decodeExtensionRequest(extensionBytes('{"v":7,"op":"list"}')), /\b7\b.*\b1\b/],
      [() => decodeExtensionRequest(extensionBytes('{"v":1,"op":"show"}')), /name/],
      [() => decodeExtensionRequest(extensionBytes('{"v":1,"op":"reboot"}')), /reboot/],
      [() => encodeExtensionRequest({ op: 'show', name: 'n'.repeat(5000) }), /\b50\d\d\b.*\b4072\b/],
      [() => encodeExtensionReply(documentOfBytes(5000), 4000), /\b5000\b.*\b4000\b/],
      [() => new ExtensionReplyAssembler().push(extensionBytes('{}', { type: 0x9abd })), /9abd/],
      [() => new ExtensionReplyAssembler().push(extensionBytes('{}', { type: 0x9101, version: 9 })), /\b9\b/],
      [() => new ExtensionReplyAssembler(10).push(extensionBytes('{"schemaVersion":1}', { type: 0x9101 })), /\b10\b/],
      [() => new ExtensionReplyAssembler().push(extensionBytes('{"s', { type: 0x9101 })), /JSON/],
      [() => new ExtensionReplyAssembler().push(extensionBytes('{}', { type: 0x9101 })), /schemaVersion/],
    ];
    for (const [run, pattern] of cases) expect(messageOf(run)).toMatch(pattern);
  });

  it('puts a container without a name before one whose name sorts first', () => {
    const c = (names: string[], id: string): ContainerReport => ({ engine: 'docker', id, names, state: null, pid: null });
    expect(sortContainers([c(['App'], '1'), c([], '2')]).map((r) => r.id)).toEqual(['2', '1']);
    expect(sortContainers([c([], '2'), c(['App'], '1')]).map((r) => r.id)).toEqual(['2', '1']);
  });
});
