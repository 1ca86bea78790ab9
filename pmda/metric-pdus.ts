/**
 * The PDUs that ask for and carry metrics: PDU_FETCH and PDU_RESULT, the
 * descriptors (PDU_DESC_REQ, PDU_DESC), instances (PDU_INSTANCE_REQ,
 * PDU_INSTANCE), help texts (PDU_TEXT_REQ, PDU_TEXT) and labels
 * (PDU_LABEL_REQ, PDU_LABEL), byte for byte as libpcp lays them out.
 */
import { CrootError } from '../core/errors/croot-error.js';
import { PDU_HEADER_SIZE, PduType, readHeader } from './pdu-framer.js';
import { ValueFormat } from './identifiers.js';
import { PduWriter } from './wire.js';
import { finishPdu, pduReader, utf8 } from './pdu-codec.js';
import type {
  FetchPdu,
  Value,
  ValueSet,
  ResultPdu,
  DescReqPdu,
  DescPdu,
  InstanceReqPdu,
  InstanceEntry,
  InstancePdu,
  TextReqPdu,
  TextPdu,
  LabelReqPdu,
  LabelIndex,
  LabelSet,
  LabelPdu,
} from './pdu-types.js';

// ---- PDU_FETCH -----------------------------------------------------------

export function encodeFetch(p: Omit<FetchPdu, 'kind'>): Buffer {
  if (p.pmids.length < 1) throw new CrootError('ERR_PROTOCOL', 'a fetch names at least one metric');
  const w = new PduWriter().int32(p.ctxid).int32(0).int32(0).int32(p.pmids.length);
  for (const id of p.pmids) w.uint32(id);
  return finishPdu(PduType.FETCH, p.from, w);
}

export function decodeFetch(pdu: Buffer): FetchPdu {
  const r = pduReader(pdu, 'FETCH');
  const ctxid = r.int32();
  r.skip(8); // pmTimeval, unused
  const n = r.int32();
  if (n <= 0 || pdu.length !== 28 + 4 * n) r.fail(`${n} metrics in ${pdu.length} bytes`);
  const pmids: number[] = [];
  for (let i = 0; i < n; i++) pmids.push(r.uint32());
  return { kind: 'fetch', from: readHeader(pdu).from, ctxid, pmids };
}

// ---- PDU_RESULT ----------------------------------------------------------

export function encodeResult(p: Omit<ResultPdu, 'kind'>): Buffer {
  // Value lists first, then the value blocks they point at (in words from the PDU's start).
  let listBytes = PDU_HEADER_SIZE + 12;
  for (const vs of p.vsets) {
    listBytes += 8;
    if (vs.numval > 0) listBytes += 4 + 8 * vs.values.length;
  }
  const lists = new PduWriter().int32(p.sec).int32(p.usec).int32(p.vsets.length);
  const blocks = new PduWriter();
  for (const vs of p.vsets) {
    lists.uint32(vs.pmid);
    if (vs.numval > 0 && vs.numval !== vs.values.length) {
      throw new CrootError('ERR_PROTOCOL', `value set of ${vs.pmid}: numval ${vs.numval} but ${vs.values.length} values`);
    }
    lists.int32(vs.numval);
    if (vs.numval <= 0) continue;
    const valfmt = vs.valfmt ?? ValueFormat.INSITU;
    lists.int32(valfmt);
    for (const v of vs.values) {
      lists.int32(v.inst);
      if (valfmt === ValueFormat.INSITU) {
        lists.int32(v.lval ?? 0);
        continue;
      }
      if (v.block === undefined) throw new CrootError('ERR_PROTOCOL', `value of ${vs.pmid}: format ${valfmt} needs a value block`);
      const vlen = 4 + v.block.data.length;
      if (vlen > 0xffffff) throw new CrootError('ERR_TOO_LONG', `value of ${vlen} bytes (at most 16 MiB)`);
      lists.int32((listBytes + blocks.length) / 4);
      blocks.uint32(((v.block.vtype & 0xff) << 24) | vlen).padded(v.block.data);
    }
  }
  const body = new PduWriter().bytes(lists.finish()).bytes(blocks.finish());
  return finishPdu(PduType.RESULT, p.from, body);
}

export function decodeResult(pdu: Buffer): ResultPdu {
  const r = pduReader(pdu, 'RESULT');
  const sec = r.int32();
  const usec = r.int32();
  const n = r.count(r.int32(), 8, 'metric count');
  const vsets: ValueSet[] = [];
  for (let i = 0; i < n; i++) {
    const pmid = r.uint32();
    const numval = r.int32();
    if (numval <= 0) {
      vsets.push({ pmid, numval, values: [] });
      continue;
    }
    const valfmt = r.int32();
    r.count(numval, 8, 'value count');
    const values: Value[] = [];
    for (let j = 0; j < numval; j++) {
      const inst = r.int32();
      const word = r.int32();
      if (valfmt === ValueFormat.INSITU) {
        values.push({ inst, lval: word });
        continue;
      }
      if (valfmt !== ValueFormat.DPTR && valfmt !== ValueFormat.SPTR) r.fail(`value format ${valfmt}`);
      const at = word * 4;
      if (word <= 0 || at + 4 > pdu.length) r.fail(`value block at word ${word}`);
      const head = pdu.readUInt32BE(at);
      const vlen = head & 0xffffff;
      if (vlen < 4 || at + vlen > pdu.length) r.fail(`value block of ${vlen} bytes at offset ${at}`);
      values.push({ inst, block: { vtype: head >>> 24, data: Buffer.from(pdu.subarray(at + 4, at + vlen)) } });
    }
    vsets.push({ pmid, numval, valfmt, values });
  }
  return { kind: 'result', from: readHeader(pdu).from, sec, usec, vsets };
}

// ---- PDU_DESC_REQ, PDU_DESC ----------------------------------------------

export function encodeDescReq(p: Omit<DescReqPdu, 'kind'>): Buffer {
  return finishPdu(PduType.DESC_REQ, p.from, new PduWriter().uint32(p.pmid));
}

export function decodeDescReq(pdu: Buffer): DescReqPdu {
  const r = pduReader(pdu, 'DESC_REQ');
  const pmid = r.uint32();
  r.end();
  return { kind: 'descReq', from: readHeader(pdu).from, pmid };
}

export function encodeDesc(p: Omit<DescPdu, 'kind'>): Buffer {
  const d = p.desc;
  return finishPdu(PduType.DESC, p.from, new PduWriter().uint32(d.pmid).int32(d.type).uint32(d.indom).int32(d.sem).uint32(d.units));
}

export function decodeDesc(pdu: Buffer): DescPdu {
  const r = pduReader(pdu, 'DESC');
  const desc = { pmid: r.uint32(), type: r.int32(), indom: r.uint32(), sem: r.int32(), units: r.uint32() };
  r.end();
  return { kind: 'desc', from: readHeader(pdu).from, desc };
}

// ---- PDU_INSTANCE_REQ, PDU_INSTANCE --------------------------------------

export function encodeInstanceReq(p: Omit<InstanceReqPdu, 'kind'>): Buffer {
  const w = new PduWriter().uint32(p.indom).int32(0).int32(0).int32(p.inst);
  if (p.name === undefined) w.int32(0);
  else {
    const name = utf8(p.name);
    w.int32(name.length).padded(name);
  }
  return finishPdu(PduType.INSTANCE_REQ, p.from, w);
}

export function decodeInstanceReq(pdu: Buffer): InstanceReqPdu {
  const r = pduReader(pdu, 'INSTANCE_REQ');
  const indom = r.uint32();
  r.skip(8); // pmTimeval, unused
  const inst = r.int32();
  const namelen = r.int32();
  if (namelen < 0) r.fail(`name length ${namelen}`);
  const from = readHeader(pdu).from;
  if (namelen === 0) return { kind: 'instanceReq', from, indom, inst };
  // libpcp copies with strncpy: a NUL inside the name ends it.
  const name = r.bytes(namelen).toString('utf8').split('\0')[0] as string;
  return { kind: 'instanceReq', from, indom, inst, name };
}

export function encodeInstance(p: Omit<InstancePdu, 'kind'>): Buffer {
  const w = new PduWriter().uint32(p.indom).int32(p.instances.length);
  for (const e of p.instances) {
    w.int32(e.inst);
    if (e.name === undefined) w.int32(0);
    else {
      const name = utf8(e.name);
      w.int32(name.length).padded(name);
    }
  }
  return finishPdu(PduType.INSTANCE, p.from, w);
}

export function decodeInstance(pdu: Buffer): InstancePdu {
  const r = pduReader(pdu, 'INSTANCE');
  const indom = r.uint32();
  const n = r.count(r.int32(), 8, 'instance count');
  const instances: InstanceEntry[] = [];
  for (let i = 0; i < n; i++) {
    const inst = r.int32();
    const namelen = r.int32();
    if (namelen < 0) r.fail(`name length ${namelen}`);
    instances.push(namelen === 0 ? { inst } : { inst, name: r.paddedString(namelen) });
  }
  return { kind: 'instance', from: readHeader(pdu).from, indom, instances };
}

// ---- PDU_TEXT_REQ, PDU_TEXT ----------------------------------------------

export function encodeTextReq(p: Omit<TextReqPdu, 'kind'>): Buffer {
  // libpcp never sends PM_TEXT_DIRECT.
  return finishPdu(PduType.TEXT_REQ, p.from, new PduWriter().uint32(p.ident).int32(p.type & ~16));
}

export function decodeTextReq(pdu: Buffer): TextReqPdu {
  const r = pduReader(pdu, 'TEXT_REQ');
  const ident = r.uint32();
  const type = r.int32();
  return { kind: 'textReq', from: readHeader(pdu).from, ident, type };
}

/** The ident word libpcp_pmda puts in a PDU_TEXT on a little-endian machine (the id's bytes reversed). */
export function hostOrderTextIdent(ident: number): number {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(ident >>> 0, 0);
  return b.readUInt32BE(0);
}

export function encodeText(p: Omit<TextPdu, 'kind'>): Buffer {
  const text = utf8(p.text);
  return finishPdu(PduType.TEXT, p.from, new PduWriter().uint32(p.identWord).int32(text.length).padded(text));
}

export function decodeText(pdu: Buffer): TextPdu {
  const r = pduReader(pdu, 'TEXT');
  const identWord = r.uint32();
  const len = r.int32();
  if (len < 0) r.fail(`text length ${len}`);
  const text = r.bytes(len).toString('utf8').split('\0')[0] as string;
  return { kind: 'text', from: readHeader(pdu).from, identWord, text };
}

// ---- PDU_LABEL_REQ, PDU_LABEL --------------------------------------------

export function encodeLabelReq(p: Omit<LabelReqPdu, 'kind'>): Buffer {
  return finishPdu(PduType.LABEL_REQ, p.from, new PduWriter().uint32(p.ident).int32(p.type));
}

export function decodeLabelReq(pdu: Buffer): LabelReqPdu {
  const r = pduReader(pdu, 'LABEL_REQ');
  const ident = r.uint32();
  const type = r.int32();
  return { kind: 'labelReq', from: readHeader(pdu).from, ident, type };
}

export function encodeLabel(p: Omit<LabelPdu, 'kind'>): Buffer {
  const jsons = p.sets.map((s) => utf8(s.json));
  let jsonOffset = PDU_HEADER_SIZE + 16;
  for (const s of p.sets) jsonOffset += 16 + (s.nlabels > 0 ? 8 * s.labels.length : 0);
  const w = new PduWriter().uint32(p.ident).int32(p.type).int32(0).int32(p.sets.length);
  p.sets.forEach((s, i) => {
    const json = jsons[i] as Buffer;
    w.int32(s.inst).int32(s.nlabels).int32(jsonOffset).int32(json.length);
    jsonOffset += json.length;
    if (s.nlabels <= 0) return;
    if (s.labels.length !== s.nlabels) throw new CrootError('ERR_PROTOCOL', `label set says ${s.nlabels} labels but has ${s.labels.length}`);
    for (const l of s.labels) w.uint16(l.name).uint8(l.namelen).uint8(l.flags).uint16(l.value).uint16(l.valuelen);
  });
  for (const json of jsons) w.bytes(json);
  return finishPdu(PduType.LABEL, p.from, w);
}

export function decodeLabel(pdu: Buffer): LabelPdu {
  const r = pduReader(pdu, 'LABEL');
  const ident = r.uint32();
  const type = r.int32();
  r.skip(4);
  const n = r.count(r.int32(), 16, 'label set count');
  const sets: LabelSet[] = [];
  for (let i = 0; i < n; i++) {
    const inst = r.int32();
    const nlabels = r.int32();
    const at = r.int32();
    const len = r.int32();
    if (at < 0 || len < 0 || at + len > pdu.length) r.fail(`label JSON of ${len} bytes at ${at}`);
    const labels: LabelIndex[] = [];
    if (nlabels > 0) {
      r.count(nlabels, 8, 'label count');
      for (let j = 0; j < nlabels; j++) {
        labels.push({ name: r.uint16(), namelen: r.uint8(), flags: r.uint8(), value: r.uint16(), valuelen: r.uint16() });
      }
    }
    sets.push({ inst, nlabels, json: pdu.subarray(at, at + len).toString('utf8'), labels });
  }
  return { kind: 'label', from: readHeader(pdu).from, ident, type, sets };
}
