import { readFileSync } from 'node:fs';
import { errnoTruth } from '../../test/support/truth.js';
import type { CrootError } from '../errors/croot-error.js';
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

/** The C structs' buffer sizes, from the headers PCP's pmdaroot and the kernel ship. */
const PATH_MAX = Number(/^#define\s+PATH_MAX\s+(\d+)/m.exec(readFileSync('/usr/include/linux/limits.h', 'utf8'))?.[1]);
const MAXPMDALEN = Number(/^#define\s+MAXPMDALEN\s+(\d+)/m.exec(readFileSync('/usr/include/pcp/pmdaroot.h', 'utf8'))?.[1]);
const EINVAL = errnoTruth('EINVAL');

/** What decoding `buf` throws: its code and status, or 'decoded'. */
function failureOf(decode: () => unknown): [string, number] | 'decoded' {
  try {
    decode();
    return 'decoded';
  } catch (err) {
    return [(err as CrootError).code, (err as CrootError).status];
  }
}

/** A container PDU laid out by hand: the 24-byte header of pmdaroot.h's __pmdaRootPDUContainer, then `name`. */
function containerBytes(namelen: number, name: Buffer): Buffer {
  const buf = Buffer.alloc(24 + name.length);
  buf.writeInt32LE(PduType.HOSTNAME_REQ, 0);
  buf.writeInt32LE(buf.length, 4);
  buf.writeInt32LE(1, 12);
  buf.writeInt32LE(namelen, 20);
  name.copy(buf, 24);
  return buf;
}

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

  describe('container PDUs at the limits of pmdaroot.h', () => {
    it('takes a name of PATH_MAX - 1 bytes and refuses PATH_MAX, sent or received', () => {
      const longest = Buffer.alloc(PATH_MAX - 1, 0x61);
      expect(decodeContainer(containerBytes(PATH_MAX - 1, longest)).name).toBe(longest.toString());
      expect(failureOf(() => decodeContainer(containerBytes(PATH_MAX, Buffer.alloc(PATH_MAX, 0x61))))[0]).toBe('ERR_TOO_LONG');
      expect(encodeContainer(PduType.HOSTNAME_REQ, longest).length).toBe(24 + PATH_MAX - 1);
      expect(() => encodeContainer(PduType.HOSTNAME_REQ, longest, { trailingNul: true })).toThrow(
        `container name of ${PATH_MAX} bytes exceeds ${PATH_MAX - 1}`,
      );
    });

    it('answers a malformed length with -EINVAL: negative, disagreeing with the PDU, or a PDU shorter than the header', () => {
      expect(failureOf(() => decodeContainer(containerBytes(-1, Buffer.from('abc'))))).toEqual(['ERR_PROTOCOL', -EINVAL]);
      expect(failureOf(() => decodeContainer(containerBytes(2, Buffer.from('abc'))))).toEqual(['ERR_PROTOCOL', -EINVAL]);
      expect(failureOf(() => decodeContainer(containerBytes(0, Buffer.alloc(0)).subarray(0, 20)))).toEqual(['ERR_PROTOCOL', -EINVAL]);
    });

    it('reads the name up to its first NUL, as the C string it is', () => {
      expect(decodeContainer(containerBytes(7, Buffer.from('abc\0def'))).name).toBe('abc');
      expect(decodeContainer(containerBytes(4, Buffer.from('\0abc'))).name).toBe('');
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

    it('puts the descriptors and takes label and arguments as bytes or text alike', () => {
      const bytes = encodeStart(PduType.STARTPMDA_REQ, { pid: 7, infd: 3, outfd: 4, ipctype: 1, label: Buffer.from('pmdax'), args: Buffer.from('/bin/x -d') });
      expect([bytes.readInt32LE(16), bytes.readInt32LE(20), bytes.readInt32LE(24), bytes.readInt32LE(28)]).toEqual([7, 3, 4, 1]);
      expect(bytes).toEqual(encodeStart(PduType.STARTPMDA_REQ, { pid: 7, infd: 3, outfd: 4, ipctype: 1, label: 'pmdax', args: '/bin/x -d' }));
      expect(decodeStart(bytes)).toMatchObject({ pid: 7, infd: 3, outfd: 4, ipctype: 1, label: 'pmdax', args: '/bin/x -d' });
      // A reply has no arguments whatever follows the label.
      expect(decodeStart(encodeStart(PduType.STARTPMDA, { pid: 7, label: 'pmdax' })).args).toBe('');
    });

    it('takes a label of MAXPMDALEN - 1 bytes and arguments of PATH_MAX - 1, and refuses one more of either', () => {
      const label = 'l'.repeat(MAXPMDALEN - 1);
      const args = 'a'.repeat(PATH_MAX - 1);
      expect(decodeStart(encodeStart(PduType.STARTPMDA_REQ, { label, args }))).toMatchObject({ label, args });
      expect(failureOf(() => encodeStart(PduType.STARTPMDA_REQ, { label: `${label}l` }))[0]).toBe('ERR_TOO_LONG');
      expect(failureOf(() => encodeStart(PduType.STARTPMDA_REQ, { label, args: `${args}a` }))[0]).toBe('ERR_TOO_LONG');
      const longLabel = encodeStart(PduType.STARTPMDA_REQ, { label });
      longLabel.writeInt32LE(MAXPMDALEN, 32);
      expect(failureOf(() => decodeStart(longLabel))[0]).toBe('ERR_TOO_LONG');
      const longArgs = Buffer.concat([encodeStart(PduType.STARTPMDA_REQ, { label, args }), Buffer.from('a')]);
      longArgs.writeInt32LE(PATH_MAX, 36);
      expect(failureOf(() => decodeStart(longArgs))[0]).toBe('ERR_TOO_LONG');
    });

    it('answers malformed STARTPMDA and STOPPMDA lengths with -EINVAL', () => {
      const negLabel = encodeStart(PduType.STARTPMDA_REQ, { label: 'x' });
      negLabel.writeInt32LE(-1, 32);
      const negArgs = encodeStart(PduType.STARTPMDA_REQ, { label: 'x' });
      negArgs.writeInt32LE(-1, 36);
      const argsDisagree = encodeStart(PduType.STARTPMDA_REQ, { label: 'x', args: 'abc' });
      argsDisagree.writeInt32LE(2, 36);
      const replyTooLong = Buffer.concat([encodeStart(PduType.STARTPMDA, { label: 'x' }), Buffer.alloc(4)]);
      // A reply is 104 bytes whatever its argslen says: arguments travel in requests only.
      const replyWithArgs = Buffer.concat([encodeStart(PduType.STARTPMDA, { label: 'x' }), Buffer.from('abc')]);
      replyWithArgs.writeInt32LE(3, 36);
      replyWithArgs.writeInt32LE(107, 4);
      const short = encodeStart(PduType.STARTPMDA_REQ, { label: 'x' }).subarray(0, 100);
      for (const [what, buf] of Object.entries({ negLabel, negArgs, argsDisagree, replyTooLong, replyWithArgs, short })) {
        expect([what, failureOf(() => decodeStart(buf))]).toEqual([what, ['ERR_PROTOCOL', -EINVAL]]);
      }
      const stop = encodeStop(PduType.STOPPMDA_REQ, { pid: 5 });
      expect(failureOf(() => decodeStop(stop.subarray(0, 28)))).toEqual(['ERR_PROTOCOL', -EINVAL]);
      expect(failureOf(() => decodeStop(Buffer.concat([stop, Buffer.alloc(4)])))).toEqual(['ERR_PROTOCOL', -EINVAL]);
    });

    it('encodes a stop PDU as 32 bytes', () => {
      const bytes = encodeStop(PduType.STOPPMDA_REQ, { pid: 5, force: 1 });
      expect(bytes.length).toBe(32);
      expect(decodeStop(bytes)).toMatchObject({ pid: 5, force: 1, code: 0, zeroed: 0, type: PduType.STOPPMDA_REQ });
    });
  });
});
