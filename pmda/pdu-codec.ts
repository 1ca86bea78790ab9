/** What every encoder and decoder of pdus.ts shares: a PDU around a body, and a checked reader of one. */
import { CrootError } from '../core/errors/croot-error.js';
import { PDU_HEADER_SIZE, readHeader, writeHeader } from './pdu-framer.js';
import { PduReader, PduWriter } from './wire.js';

/** A PDU of `type` from `from` with `body` after its header, its length in the header. */
export function finishPdu(type: number, from: number, body: PduWriter): Buffer {
  const pdu = Buffer.concat([Buffer.alloc(PDU_HEADER_SIZE), body.finish()]);
  writeHeader(pdu, type, from);
  return pdu;
}

/** A reader of a PDU's body, once its header's length is checked against the bytes. */
export function pduReader(pdu: Buffer, what: string): PduReader {
  const h = readHeader(pdu);
  if (h.length !== pdu.length) throw new CrootError('ERR_PROTOCOL', `${what} PDU says ${h.length} bytes but has ${pdu.length}`);
  return new PduReader(pdu, PDU_HEADER_SIZE, `${what} PDU`);
}

export const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');
