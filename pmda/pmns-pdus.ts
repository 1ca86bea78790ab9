/**
 * The namespace PDUs: PDU_PMNS_NAMES, PDU_PMNS_IDS (and PDU_DESC_IDS),
 * PDU_PMNS_CHILD and PDU_PMNS_TRAVERSE, byte for byte as libpcp lays them out.
 */
import { CrootError } from '../core/errors/croot-error.js';
import { PduType, readHeader } from './pdu-framer.js';
import { PduWriter } from './wire.js';
import { finishPdu, pduReader, utf8 } from './pdu-codec.js';
import type { NameListPdu, IdListPdu, NameRequestPdu } from './pdu-types.js';

// ---- PMNS: PDU_PMNS_NAMES, PDU_PMNS_IDS, PDU_PMNS_CHILD, PDU_PMNS_TRAVERSE --

export function encodeNameList(p: Omit<NameListPdu, 'kind'>): Buffer {
  const names = p.names.map(utf8);
  if (p.statuses !== undefined && p.statuses.length !== names.length) {
    throw new CrootError('ERR_PROTOCOL', `${names.length} names but ${p.statuses.length} statuses`);
  }
  const nstrbytes = names.reduce((sum, n) => sum + n.length + 1, 0);
  const w = new PduWriter().int32(nstrbytes).int32(p.statuses === undefined ? 0 : names.length).int32(names.length);
  names.forEach((name, i) => {
    if (p.statuses !== undefined) w.int32(p.statuses[i] as number);
    w.int32(name.length).padded(name);
  });
  return finishPdu(PduType.PMNS_NAMES, p.from, w);
}

export function decodeNameList(pdu: Buffer): NameListPdu {
  const r = pduReader(pdu, 'PMNS_NAMES');
  r.int32(); // nstrbytes: a size hint for C's allocation
  const numstatus = r.int32();
  const n = r.count(r.int32(), 4, 'name count');
  if (numstatus !== 0 && numstatus !== n) r.fail(`${numstatus} statuses for ${n} names`);
  const names: string[] = [];
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) {
    if (numstatus > 0) statuses.push(r.int32());
    const len = r.int32();
    if (len < 0) r.fail(`name length ${len}`);
    names.push(r.paddedString(len));
  }
  const from = readHeader(pdu).from;
  return numstatus > 0 ? { kind: 'names', from, names, statuses } : { kind: 'names', from, names };
}

export function encodeIdList(p: Omit<IdListPdu, 'kind'>): Buffer {
  const w = new PduWriter().int32(p.status).int32(p.pmids.length);
  for (const id of p.pmids) w.uint32(id);
  return finishPdu(p.status === -1 ? PduType.DESC_IDS : PduType.PMNS_IDS, p.from, w);
}

export function decodeIdList(pdu: Buffer): IdListPdu {
  const r = pduReader(pdu, 'PMNS_IDS');
  const status = r.int32();
  const n = r.count(r.int32(), 4, 'metric count');
  if (n <= 0) r.fail(`${n} metrics`);
  const pmids: number[] = [];
  for (let i = 0; i < n; i++) pmids.push(r.uint32());
  return { kind: 'ids', from: readHeader(pdu).from, status, pmids };
}

export function encodeNameRequest(p: Omit<NameRequestPdu, 'kind'> & { readonly kind: 'child' | 'traverse' }): Buffer {
  const name = utf8(p.name);
  const w = new PduWriter().int32(p.subtype).int32(name.length).padded(name);
  return finishPdu(p.kind === 'child' ? PduType.PMNS_CHILD : PduType.PMNS_TRAVERSE, p.from, w);
}

export function decodeNameRequest(pdu: Buffer): NameRequestPdu {
  const h = readHeader(pdu);
  const r = pduReader(pdu, h.type === PduType.PMNS_CHILD ? 'PMNS_CHILD' : 'PMNS_TRAVERSE');
  const subtype = r.int32();
  const len = r.int32();
  if (len < 0) r.fail(`name length ${len}`);
  const name = r.bytes(len).toString('utf8');
  return { kind: h.type === PduType.PMNS_CHILD ? 'child' : 'traverse', from: h.from, name, subtype };
}
