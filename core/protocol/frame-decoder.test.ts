import { FrameDecoder } from './frame-decoder.js';
import { PduType, encodeContainer } from './root-pdus.js';

describe('FrameDecoder', () => {
  const a = encodeContainer(PduType.HOSTNAME_REQ, 'alpha', { trailingNul: true });
  const b = encodeContainer(PduType.CGROUPNAME_REQ, 'beta');

  it('reassembles a request split across writes', () => {
    const d = new FrameDecoder();
    expect(d.push(a.subarray(0, 7))).toEqual([]);
    expect(d.push(a.subarray(7, 20))).toEqual([]);
    const frames = d.push(a.subarray(20));
    expect(frames).toHaveLength(1);
    expect(frames[0]).toMatchObject({ kind: 'pdu' });
    expect(frames[0]?.kind === 'pdu' && frames[0].bytes).toEqual(a);
  });

  it('splits pipelined requests in one write, in order', () => {
    const d = new FrameDecoder();
    const frames = d.push(Buffer.concat([a, b, a.subarray(0, 3)]));
    expect(frames.map((f) => f.kind === 'pdu' && f.header.type)).toEqual([PduType.HOSTNAME_REQ, PduType.CGROUPNAME_REQ]);
    expect(d.pending).toBe(3);
  });

  it('reports a stream with an impossible length as broken and stops', () => {
    const d = new FrameDecoder();
    const bad = Buffer.from(a);
    bad.writeInt32LE(-5, 4);
    const frames = d.push(Buffer.concat([bad, b]));
    expect(frames).toHaveLength(1);
    expect(frames[0]?.kind).toBe('broken');
    expect(d.push(b)).toEqual([]);
  });

  it('refuses a length beyond the largest PDU', () => {
    const d = new FrameDecoder();
    const huge = Buffer.from(a);
    huge.writeInt32LE(1 << 20, 4);
    expect(d.push(huge)[0]?.kind).toBe('broken');
  });

  it('says why a length cannot be trusted, and takes a PDU exactly as long as the limit', () => {
    const short = Buffer.from(a);
    short.writeInt32LE(15, 4);
    expect(new FrameDecoder().push(short)).toEqual([
      { kind: 'broken', header: { type: PduType.HOSTNAME_REQ, length: 15, status: 0, version: a.readInt32LE(12) }, reason: 'PDU length 15 is shorter than its header' },
    ]);
    const limit = a.length;
    expect(new FrameDecoder(limit - 1).push(a)).toMatchObject([{ kind: 'broken', reason: `PDU length ${limit} exceeds ${limit - 1}` }]);
    expect(new FrameDecoder(limit).push(a)).toEqual([{ kind: 'pdu', header: expect.objectContaining({ length: limit }), bytes: a }]);
    // A header alone is a PDU of its own when it says so.
    const bare = Buffer.from(a.subarray(0, 16));
    bare.writeInt32LE(16, 4);
    expect(new FrameDecoder().push(bare)).toMatchObject([{ kind: 'pdu', header: { length: 16 } }]);
  });

  it('keeps exactly the bytes after each PDU, however the writes cut them', () => {
    const stream = Buffer.concat([a, b, a, b]);
    for (let cut = 1; cut < stream.length; cut += 5) {
      const d = new FrameDecoder();
      const got: Buffer[] = [];
      for (let at = 0; at < stream.length; at += cut) {
        for (const f of [...d.push(Buffer.alloc(0)), ...d.push(stream.subarray(at, at + cut))]) if (f.kind === 'pdu') got.push(f.bytes);
      }
      expect([cut, got]).toEqual([cut, [a, b, a, b]]);
      expect([cut, d.pending]).toEqual([cut, 0]);
    }
  });
});

describe('FrameDecoder on a broken stream', () => {
  it('holds none of the bytes it received once the stream is broken, whatever comes after', () => {
    const d = new FrameDecoder();
    const bad = Buffer.concat([Buffer.alloc(4), Buffer.alloc(4, 0xff), Buffer.alloc(8)]);
    expect(d.push(Buffer.concat([bad, Buffer.alloc(100)])).map((f) => f.kind)).toEqual(['broken']);
    expect(d.pending).toBe(0);
    expect(d.push(Buffer.alloc(50))).toEqual([]);
    expect(d.pending).toBe(0);
  });
});
