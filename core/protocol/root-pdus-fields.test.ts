/**
 * Every field of every root PDU where it lies in pmdaroot.h's structs, and
 * the order of the C client's INFO checks, with PDUs laid out by hand
 * (/work/shared/docs/pcp-root-protocol.md is the layout; errno numbers from
 * the kernel's headers).
 */
import { errnoTruth } from '../../test/support/truth.js';
import { CrootError } from '../errors/croot-error.js';
import {
  PduType,
  decodeContainer,
  decodeHeader,
  decodeInfo,
  decodeStart,
  decodeStop,
  encodeErrorHeader,
  encodeContainer,
  encodeInfo,
  encodeStart,
  encodeStop,
  replyTypeOf,
} from './root-pdus.js';

/** PCP's PM_ERR_IPC, as `pmerr -l` lists it. */
const PM_ERR_IPC = -12366;

/** A PDU of 32-bit little-endian ints (x86-64's host order), then `tail`. */
function ints(values: readonly number[], tail: Buffer = Buffer.alloc(0)): Buffer {
  const buf = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => buf.writeInt32LE(v, i * 4));
  return Buffer.concat([buf, tail]);
}

function outcomeOf(run: () => unknown): unknown {
  try {
    return run();
  } catch (err) {
    if (!(err instanceof CrootError)) throw err;
    return [err.code, err.status];
  }
}

describe('root PDUs, field by field', () => {
  it('puts the features and the status of INFO where the C client reads them', () => {
    expect(encodeInfo(3, -5)).toEqual(ints([0x9000, 24, -5, 2, 3, 0]));
  });

  it('runs the C client’s INFO checks in its order: size, type, version, status, length', () => {
    // Each PDU fails two checks; the first in PCP's order decides.
    expect(outcomeOf(() => decodeInfo(ints([0x9002, 24, 0, 3, 7, 0])))).toEqual(['ERR_UNEXPECTED_PDU', -errnoTruth('ESRCH')]);
    expect(outcomeOf(() => decodeInfo(ints([0x9000, 24, -5, 3, 7, 0])))).toEqual(['ERR_VERSION', -errnoTruth('EOPNOTSUPP')]);
    expect(outcomeOf(() => decodeInfo(ints([0x9000, 25, -5, 2, 7, 0])))).toEqual(['ERR_REMOTE', -5]);
    expect(outcomeOf(() => decodeInfo(ints([0x9000, 25, 0, 2, 7, 0])))).toEqual(['ERR_TOO_LONG', -errnoTruth('E2BIG')]);
    expect(outcomeOf(() => decodeInfo(ints([0x9000, 24, 0, 2, 7, 0, 0])))).toEqual(['ERR_PROTOCOL', -errnoTruth('EINVAL')]);
    // An older version passes, and every field is read where it lies.
    expect(decodeInfo(ints([0x9000, 24, 0, 1, 5, 9]))).toEqual({ type: 0x9000, length: 24, status: 0, version: 1, features: 5, zeroed: 9 });
  });

  it('reads a header of 16 bytes and refuses a shorter one with PM_ERR_IPC', () => {
    expect(decodeHeader(ints([0x9001, 40, -2, 2]))).toEqual({ type: 0x9001, length: 40, status: -2, version: 2 });
    expect(outcomeOf(() => decodeHeader(ints([0x9001, 40, -2, 2]).subarray(0, 15)))).toEqual(['ERR_PROTOCOL', PM_ERR_IPC]);
  });

  it('lays out a bare error reply as a 16-byte header', () => {
    expect(encodeErrorHeader(0x9100, -95)).toEqual(ints([0x9100, 16, -95, 2]));
  });

  it('answers each request type with the type after it, and nothing else as a request', () => {
    const requests = [PduType.HOSTNAME_REQ, PduType.PROCESSID_REQ, PduType.CGROUPNAME_REQ, PduType.STARTPMDA_REQ, PduType.STOPPMDA_REQ];
    expect(requests.map(replyTypeOf)).toEqual([0x9002, 0x9004, 0x9006, 0x9008, 0x900a]);
    for (const type of [0x9000, 0x9002, 0x9004, 0x9006, 0x9008, 0x900a, 0x900b, 0x9100, 0x9101, 0]) expect([type, replyTypeOf(type)]).toEqual([type, undefined]);
  });

  it('takes a container PDU of 24 bytes and refuses one of 23 with -EINVAL', () => {
    expect(decodeContainer(ints([0x9004, 24, -3, 2, 77, 0]))).toEqual({ type: 0x9004, length: 24, status: -3, version: 2, pid: 77, namelen: 0, name: '' });
    expect(outcomeOf(() => decodeContainer(ints([0x9004, 24, 0, 2, 77, 0]).subarray(0, 23)))).toEqual(['ERR_PROTOCOL', -errnoTruth('EINVAL')]);
  });

  it('reads a start request’s label up to namelen or its first NUL, and its arguments up to their first NUL', () => {
    const label = Buffer.alloc(64);
    label.write('pmdalinux');
    const request = (namelen: number, args: Buffer): Buffer => ints([0x9007, 104 + args.length, 0, 2, 0, 0, 0, 2, namelen, args.length], Buffer.concat([label, args]));
    expect(decodeStart(request(4, Buffer.from('/bin/x')))).toMatchObject({ label: 'pmda', args: '/bin/x', namelen: 4, argslen: 6, ipctype: 2 });
    expect(decodeStart(request(20, Buffer.from('/bin/x\0-d')))).toMatchObject({ label: 'pmdalinux', args: '/bin/x', namelen: 20, argslen: 9 });
    expect(decodeStart(request(0, Buffer.alloc(0)))).toMatchObject({ label: '', args: '', length: 104 });
    label[0] = 0;
    expect(decodeStart(request(9, Buffer.from('\0/bin/x')))).toMatchObject({ label: '', args: '' });
  });

  it('lays out a failed start reply: status, pid -1, the label, and no descriptors', () => {
    const label = Buffer.alloc(64);
    label.write('linux');
    const bytes = ints([0x9008, 104, -2, 2, -1, 0, 0, 0, 5, 0], label);
    expect(encodeStart(PduType.STARTPMDA, { status: -2, pid: -1, label: 'linux' })).toEqual(bytes);
    expect(decodeStart(bytes)).toEqual({ type: 0x9008, length: 104, status: -2, version: 2, pid: -1, infd: 0, outfd: 0, ipctype: 0, namelen: 5, argslen: 0, label: 'linux', args: '' });
  });

  it('lays out a wait reply: the reaped pid, its raw wait status, force and zeroed', () => {
    expect(encodeStop(PduType.STOPPMDA, { pid: 4242, code: 0x0100, status: -10 })).toEqual(ints([0x900a, 32, -10, 2, 4242, 0x0100, 0, 0]));
    expect(encodeStop(PduType.STOPPMDA_REQ, { pid: -1, force: 1 })).toEqual(ints([0x9009, 32, 0, 2, -1, 0, 1, 0]));
    expect(decodeStop(ints([0x900a, 32, -10, 2, 4242, 9, 1, 3]))).toEqual({ type: 0x900a, length: 32, status: -10, version: 2, pid: 4242, code: 9, force: 1, zeroed: 3 });
  });

  it('names the length it refuses, and the limit, in the message a peer or a log shows', () => {
    const messageOf = (run: () => unknown): string => {
      try {
        run();
      } catch (err) {
        return (err as Error).message;
      }
      return 'decoded';
    };
    const label = Buffer.alloc(64);
    const cases: [string, () => unknown, RegExp][] = [
      ['short header', () => decodeHeader(Buffer.alloc(13)), /\b13\b.*\b16\b/],
      ['INFO size', () => decodeInfo(ints([0x9000, 24, 0, 2, 7, 0, 0])), /\b28\b.*\b24\b/],
      ['INFO type', () => decodeInfo(ints([0x9abc, 24, 0, 2, 7, 0])), /9abc/],
      ['INFO version', () => decodeInfo(ints([0x9000, 24, 0, 7, 7, 0])), /\b7\b.*\b2\b/],
      ['INFO status', () => decodeInfo(ints([0x9000, 24, -12399, 2, 7, 0])), /-12399/],
      ['INFO length', () => decodeInfo(ints([0x9000, 31, 0, 2, 7, 0])), /\b31\b.*\b24\b/],
      ['container size', () => decodeContainer(Buffer.alloc(21)), /\b21\b.*\b24\b/],
      ['negative namelen', () => decodeContainer(ints([0x9001, 24, 0, 2, 0, -9])), /negative.*-9\b/],
      ['long namelen', () => decodeContainer(ints([0x9001, 24, 0, 2, 0, 5000])), /\b5000\b.*\b4095\b/],
      ['namelen off', () => decodeContainer(ints([0x9001, 27, 0, 2, 0, 2], Buffer.from('abc'))), /\b2\b.*\b27\b/],
      ['start size', () => decodeStart(Buffer.alloc(99)), /\b99\b.*\b104\b/],
      ['negative argslen', () => decodeStart(ints([0x9007, 104, 0, 2, 0, 0, 0, 2, 3, -8], label)), /\b3\b.*-8\b/],
      ['long label', () => decodeStart(ints([0x9007, 104, 0, 2, 0, 0, 0, 2, 70, 0], label)), /\b70\b.*\b63\b/],
      ['long args', () => decodeStart(ints([0x9007, 104, 0, 2, 0, 0, 0, 2, 3, 4100], label)), /\b4100\b.*\b4095\b/],
      ['args off', () => decodeStart(ints([0x9007, 104, 0, 2, 0, 0, 0, 2, 3, 6], label)), /\b6\b.*\b104\b/],
      ['stop size', () => decodeStop(Buffer.alloc(36)), /\b36\b.*\b32\b/],
      ['name to send', () => encodeContainer(PduType.HOSTNAME_REQ, 'n'.repeat(4200)), /\b4200\b.*\b4095\b/],
      ['label to send', () => encodeStart(PduType.STARTPMDA_REQ, { label: 'l'.repeat(65) }), /\b65\b.*\b63\b/],
      ['args to send', () => encodeStart(PduType.STARTPMDA_REQ, { label: 'l', args: 'a'.repeat(4101) }), /\b4101\b.*\b4095\b/],
    ];
    for (const [what, run, pattern] of cases) expect([what, messageOf(run)]).toEqual([what, expect.stringMatching(pattern)]);
  });
});

