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
});
