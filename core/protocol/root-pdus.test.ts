import {
  PduType,
  decodeContainer,
  decodeInfo,
  decodeStart,
  decodeStop,
  encodeContainer,
  encodeInfo,
  encodeStart,
  encodeStop,
} from './root-pdus.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('protocol', () => {
  describe('INFO', () => {
    it('encodes exactly the 24 bytes PCP 6.0.3 sends', () => {
      expect(encodeInfo()).toEqual(hex('00900000 18000000 00000000 02000000 07000000 00000000'));
    });

    it('applies the C client checks in order', () => {
      expect(() => decodeInfo(encodeInfo().subarray(0, 20))).toThrow(expect.objectContaining({ status: -22 }));
      const wrongType = encodeInfo();
      wrongType.writeInt32LE(0x9002, 0);
      expect(() => decodeInfo(wrongType)).toThrow(expect.objectContaining({ status: -3 }));
      const newer = encodeInfo();
      newer.writeInt32LE(3, 12);
      expect(() => decodeInfo(newer)).toThrow(expect.objectContaining({ status: -95 }));
      const badLength = encodeInfo();
      badLength.writeInt32LE(25, 4);
      expect(() => decodeInfo(badLength)).toThrow(expect.objectContaining({ status: -7 }));
      expect(decodeInfo(encodeInfo())).toMatchObject({ features: 7, version: 2 });
    });
  });

  describe('container PDUs', () => {
    it('encodes the live HOSTNAME reply for web1 byte for byte', () => {
      const bytes = encodeContainer(PduType.HOSTNAME, 'web1-host', { pid: 6488 });
      expect(bytes).toEqual(
        Buffer.concat([hex('02900000 21000000 00000000 02000000 58190000 09000000'), Buffer.from('web1-host')]),
      );
    });

    it('gives the same name with and without the trailing NUL', () => {
      const withNul = decodeContainer(encodeContainer(PduType.HOSTNAME_REQ, 'web1', { trailingNul: true }));
      const without = decodeContainer(encodeContainer(PduType.HOSTNAME_REQ, 'web1'));
      expect(withNul.namelen).toBe(5);
      expect(without.namelen).toBe(4);
      expect(withNul.name).toBe('web1');
      expect(without.name).toBe('web1');
    });

    it('encodes a not-found reply as 24 bytes with the pid echoed', () => {
      const bytes = encodeContainer(PduType.PROCESSID, '', { pid: 77, status: -12399 });
      expect(bytes.length).toBe(24);
      expect(decodeContainer(bytes)).toMatchObject({ status: -12399, pid: 77, namelen: 0, length: 24 });
    });

    it('rejects a negative, oversized or inconsistent name length', () => {
      const neg = encodeContainer(PduType.HOSTNAME_REQ, 'abc');
      neg.writeInt32LE(-1, 20);
      expect(() => decodeContainer(neg)).toThrow(expect.objectContaining({ code: 'ERR_PROTOCOL' }));
      const big = encodeContainer(PduType.HOSTNAME_REQ, 'abc');
      big.writeInt32LE(5000, 20);
      expect(() => decodeContainer(big)).toThrow(expect.objectContaining({ code: 'ERR_TOO_LONG' }));
      const off = encodeContainer(PduType.HOSTNAME_REQ, 'abc');
      off.writeInt32LE(2, 20);
      expect(() => decodeContainer(off)).toThrow(expect.objectContaining({ code: 'ERR_PROTOCOL' }));
      expect(() => encodeContainer(PduType.HOSTNAME_REQ, 'x'.repeat(4096))).toThrow(expect.objectContaining({ status: -7 }));
    });
  });

  describe('STARTPMDA and STOPPMDA', () => {
    it('lays out a start request as 104 bytes plus the arguments, label zero-padded', () => {
      const bytes = encodeStart(PduType.STARTPMDA_REQ, { ipctype: 2, label: 'linux', args: '/bin/cat -d 60' });
      expect(bytes.length).toBe(104 + 14);
      expect(bytes.readInt32LE(4)).toBe(118);
      expect(bytes.readInt32LE(28)).toBe(2);
      expect(bytes.readInt32LE(32)).toBe(5);
      expect(bytes.readInt32LE(36)).toBe(14);
      expect(bytes.subarray(40, 45).toString()).toBe('linux');
      expect(bytes.subarray(45, 104).every((b) => b === 0)).toBe(true);
      expect(decodeStart(bytes)).toMatchObject({ label: 'linux', args: '/bin/cat -d 60', ipctype: 2 });
    });

    it('encodes a start reply as exactly 104 bytes', () => {
      const bytes = encodeStart(PduType.STARTPMDA, { pid: 99, label: 'linux' });
      expect(bytes.length).toBe(104);
      expect(decodeStart(bytes)).toMatchObject({ pid: 99, label: 'linux', namelen: 5, argslen: 0 });
    });

    it('encodes a stop PDU as 32 bytes', () => {
      const bytes = encodeStop(PduType.STOPPMDA_REQ, { pid: 5, force: 1 });
      expect(bytes.length).toBe(32);
      expect(decodeStop(bytes)).toMatchObject({ pid: 5, force: 1, code: 0, zeroed: 0, type: PduType.STOPPMDA_REQ });
    });
  });
});
