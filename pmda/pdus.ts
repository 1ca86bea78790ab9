/**
 * Encoders and decoders of the PDUs pmcd and a daemon PMDA exchange over
 * their pipe, laid out byte for byte as PCP 6.0.3's libpcp does
 * (src/libpcp/src/p_*.c): 32-bit words in network byte order, strings
 * without NULs padded with `~` to a word boundary, value blocks of a result
 * after its value lists, addressed in words from the PDU's start.
 * pmda/__golden__ holds PDUs captured from real pmcd and real libpcp_pmda
 * agents; pdus-golden.test.ts decodes and re-encodes every one of them.
 *
 * One quirk is kept on purpose: libpcp_pmda sends the `ident` of a
 * PDU_TEXT in the agent's own byte order (__pmdaMainPDU passes the host
 * value where __pmSendText expects a network one), and pmcd passes the
 * word on. `TextPdu.identWord` is that word as it reads in network order;
 * `hostOrderTextIdent` makes it the way libpcp_pmda does on little-endian
 * machines.
 */
import { PDU_HEADER_SIZE, PduType, readHeader } from './pdu-framer.js';
import { PduWriter } from './wire.js';
import { finishPdu, pduReader } from './pdu-codec.js';
import type { Pdu } from './pdu-types.js';
import { encodeError, decodeError, encodeCreds, decodeCreds, encodeProfile, decodeProfile, encodeAttr, decodeAttr } from './session-pdus.js';
import {
  encodeFetch,
  decodeFetch,
  encodeResult,
  decodeResult,
  encodeDescReq,
  decodeDescReq,
  encodeDesc,
  decodeDesc,
  encodeInstanceReq,
  decodeInstanceReq,
  encodeInstance,
  decodeInstance,
  encodeTextReq,
  decodeTextReq,
  encodeText,
  decodeText,
  encodeLabelReq,
  decodeLabelReq,
  encodeLabel,
  decodeLabel,
} from './metric-pdus.js';
import { encodeNameList, decodeNameList, encodeIdList, decodeIdList, encodeNameRequest, decodeNameRequest } from './pmns-pdus.js';

export * from './pdu-types.js';
export * from './session-pdus.js';
export * from './metric-pdus.js';
export * from './pmns-pdus.js';

// ---- any PDU -------------------------------------------------------------

/** Decodes one whole PDU by its header's type; unknown types come back as `other`. */
export function decodePdu(pdu: Buffer): Pdu {
  const h = readHeader(pdu);
  switch (h.type) {
    case PduType.ERROR:
      return decodeError(pdu);
    case PduType.CREDS:
      return decodeCreds(pdu);
    case PduType.PROFILE:
      return decodeProfile(pdu);
    case PduType.FETCH:
      return decodeFetch(pdu);
    case PduType.RESULT:
      return decodeResult(pdu);
    case PduType.DESC_REQ:
      return decodeDescReq(pdu);
    case PduType.DESC:
      return decodeDesc(pdu);
    case PduType.INSTANCE_REQ:
      return decodeInstanceReq(pdu);
    case PduType.INSTANCE:
      return decodeInstance(pdu);
    case PduType.TEXT_REQ:
      return decodeTextReq(pdu);
    case PduType.TEXT:
      return decodeText(pdu);
    case PduType.ATTR:
      return decodeAttr(pdu);
    case PduType.LABEL_REQ:
      return decodeLabelReq(pdu);
    case PduType.LABEL:
      return decodeLabel(pdu);
    case PduType.PMNS_NAMES:
      return decodeNameList(pdu);
    case PduType.PMNS_IDS:
    case PduType.DESC_IDS:
      return decodeIdList(pdu);
    case PduType.PMNS_CHILD:
    case PduType.PMNS_TRAVERSE:
      return decodeNameRequest(pdu);
    default:
      pduReader(pdu, 'unknown');
      return { kind: 'other', from: h.from, type: h.type, body: Buffer.from(pdu.subarray(PDU_HEADER_SIZE)) };
  }
}

/** Encodes any PDU `decodePdu` gives. */
export function encodePdu(p: Pdu): Buffer {
  switch (p.kind) {
    case 'error':
      return encodeError(p);
    case 'creds':
      return encodeCreds(p);
    case 'profile':
      return encodeProfile(p);
    case 'fetch':
      return encodeFetch(p);
    case 'result':
      return encodeResult(p);
    case 'descReq':
      return encodeDescReq(p);
    case 'desc':
      return encodeDesc(p);
    case 'instanceReq':
      return encodeInstanceReq(p);
    case 'instance':
      return encodeInstance(p);
    case 'textReq':
      return encodeTextReq(p);
    case 'text':
      return encodeText(p);
    case 'attr':
      return encodeAttr(p);
    case 'labelReq':
      return encodeLabelReq(p);
    case 'label':
      return encodeLabel(p);
    case 'names':
      return encodeNameList(p);
    case 'ids':
      return encodeIdList(p);
    case 'child':
    case 'traverse':
      return encodeNameRequest(p);
    case 'other':
      return finishPdu(p.type, p.from, new PduWriter().bytes(p.body));
  }
}
