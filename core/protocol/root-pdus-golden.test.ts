import { readFileSync } from 'node:fs';
import { join } from 'node:path';
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

/** A PDU recorded from PCP 6.0.3 (see __golden__/README.md). */
function golden(file: string): Buffer {
  return Buffer.from(readFileSync(join(__dirname, '__golden__', file), 'utf8').replace(/\s+/g, ''), 'hex');
}

describe('protocol codec against bytes recorded from PCP 6.0.3', () => {
  describe('pmdaroot’s INFO', () => {
    it('is what encodeInfo produces', () => {
      expect(encodeInfo()).toEqual(golden('pmdaroot-info.hex'));
    });

    it('decodes to version 2 with features 7', () => {
      expect(decodeInfo(golden('pmdaroot-info.hex'))).toMatchObject({ type: PduType.INFO, length: 24, status: 0, version: 2, features: 7, zeroed: 0 });
    });
  });

  describe('pmdaroot’s not-found HOSTNAME reply', () => {
    it('is what encodeContainer produces for status -12399', () => {
      expect(encodeContainer(PduType.HOSTNAME, '', { status: -12399, pid: 0 })).toEqual(golden('pmdaroot-hostname-notfound.hex'));
    });

    it('decodes to status -12399, pid 0 and no name', () => {
      expect(decodeContainer(golden('pmdaroot-hostname-notfound.hex'))).toMatchObject({ type: PduType.HOSTNAME, length: 24, status: -12399, pid: 0, namelen: 0, name: '' });
    });
  });

  describe('pmdaroot’s STOPPMDA reply with no children', () => {
    it('is what encodeStop produces for pid -1', () => {
      expect(encodeStop(PduType.STOPPMDA, { pid: -1 })).toEqual(golden('pmdaroot-wait-nochildren.hex'));
    });

    it('decodes to pid -1, code 0', () => {
      expect(decodeStop(golden('pmdaroot-wait-nochildren.hex'))).toMatchObject({ type: PduType.STOPPMDA, status: 0, pid: -1, code: 0, force: 0 });
    });
  });

  describe('PCP’s C client requests', () => {
    it.each([
      ['pcp-client-hostname-request.hex', PduType.HOSTNAME_REQ],
      ['pcp-client-processid-request.hex', PduType.PROCESSID_REQ],
      ['pcp-client-cgroupname-request.hex', PduType.CGROUPNAME_REQ],
    ])('%s is encodeContainer with the trailing NUL, and decodes to "web1"', (file, type) => {
      expect(encodeContainer(type, 'web1', { trailingNul: true })).toEqual(golden(file));
      expect(decodeContainer(golden(file))).toMatchObject({ type, length: 29, status: 0, version: 2, pid: 0, namelen: 5, name: 'web1' });
    });

    it('STARTPMDA is encodeStart with a zero-padded 64-byte label and unterminated args', () => {
      const fields = { ipctype: 2, label: 'agent', args: '/usr/bin/agent -d 1' };
      expect(encodeStart(PduType.STARTPMDA_REQ, fields)).toEqual(golden('pcp-client-start-request.hex'));
      expect(decodeStart(golden('pcp-client-start-request.hex'))).toMatchObject({ ...fields, length: 123, namelen: 5, argslen: 19, pid: 0, infd: 0, outfd: 0 });
    });

    it('wait is STOPPMDA force 0 and terminate is force 1', () => {
      expect(encodeStop(PduType.STOPPMDA_REQ, { pid: -1, force: 0 })).toEqual(golden('pcp-client-wait-request.hex'));
      expect(encodeStop(PduType.STOPPMDA_REQ, { pid: 4321, force: 1 })).toEqual(golden('pcp-client-terminate-request.hex'));
      expect(decodeStop(golden('pcp-client-terminate-request.hex'))).toMatchObject({ pid: 4321, code: 0, force: 1, zeroed: 0 });
    });
  });
});
