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
import { CrootError } from '../core/errors/croot-error.js';
import { PDU_HEADER_SIZE, PduType, readHeader, writeHeader } from './pdu-framer.js';
import { ValueFormat } from './identifiers.js';
import { PduReader, PduWriter } from './wire.js';

/** Limits libpcp enforces when it decodes (LIMIT_CREDS, LIMIT_ATTR_PDU). */
export const MAX_CREDS = 1024;
export const MAX_ATTR_VALUE = 4096;
/** CVERSION: the credential type that carries a PDU version and feature flags. */
export const CRED_VERSION = 1;

export interface Credential {
  /** CVERSION (1) for a version credential. */
  readonly type: number;
  /** PDU version (c_version), or c_vala of another credential type. */
  readonly version: number;
  /** Feature flags (c_flags, PduFlag bits), or c_valb << 8 | c_valc. */
  readonly flags: number;
}

export interface ErrorPdu {
  readonly kind: 'error';
  readonly from: number;
  readonly code: number;
  /** Only in the 20-byte "extended" form pmcd sends to clients. */
  readonly datum?: number;
}

export interface CredsPdu {
  readonly kind: 'creds';
  readonly from: number;
  readonly creds: readonly Credential[];
}

export interface InDomProfile {
  readonly indom: number;
  readonly state: number;
  readonly instances: readonly number[];
}

export interface ProfilePdu {
  readonly kind: 'profile';
  readonly from: number;
  readonly ctxid: number;
  /** Global state for instance domains not listed (ProfileState). */
  readonly state: number;
  readonly indoms: readonly InDomProfile[];
}

export interface FetchPdu {
  readonly kind: 'fetch';
  readonly from: number;
  readonly ctxid: number;
  readonly pmids: readonly number[];
}

export interface ValueBlock {
  /** Type of the value (MetricType), 0..255. */
  readonly vtype: number;
  /** The value's bytes, without the block's header word and padding. */
  readonly data: Buffer;
}

export interface Value {
  readonly inst: number;
  /** INSITU values: the 32-bit word itself. */
  readonly lval?: number;
  /** DPTR/SPTR values: the block the word points at. */
  readonly block?: ValueBlock;
}

export interface ValueSet {
  readonly pmid: number;
  /** Number of values, or a negative status (then no values and no valfmt). */
  readonly numval: number;
  /** ValueFormat, present when numval > 0. */
  readonly valfmt?: number;
  readonly values: readonly Value[];
}

export interface ResultPdu {
  readonly kind: 'result';
  readonly from: number;
  /** pmTimeval; agents send zeroes (or PMCD_* change flags in the first byte). */
  readonly sec: number;
  readonly usec: number;
  readonly vsets: readonly ValueSet[];
}

export interface Desc {
  readonly pmid: number;
  readonly type: number;
  readonly indom: number;
  readonly sem: number;
  /** The pmUnits word (identifiers.packUnits). */
  readonly units: number;
}

export interface DescReqPdu {
  readonly kind: 'descReq';
  readonly from: number;
  readonly pmid: number;
}

export interface DescPdu {
  readonly kind: 'desc';
  readonly from: number;
  readonly desc: Desc;
}

export interface InstanceReqPdu {
  readonly kind: 'instanceReq';
  readonly from: number;
  readonly indom: number;
  /** PM_IN_NULL (-1) when asking by name or for every instance. */
  readonly inst: number;
  /** Absent when asking by number or for every instance. */
  readonly name?: string;
}

export interface InstanceEntry {
  /** PM_IN_NULL when the reply gives names only (the request named an id). */
  readonly inst: number;
  /** Absent when the reply gives ids only (the request named a name). */
  readonly name?: string;
}

export interface InstancePdu {
  readonly kind: 'instance';
  readonly from: number;
  readonly indom: number;
  readonly instances: readonly InstanceEntry[];
}

export interface TextReqPdu {
  readonly kind: 'textReq';
  readonly from: number;
  /** A pmID or pmInDom, by `type` (TextKind.PMID or TextKind.INDOM). */
  readonly ident: number;
  readonly type: number;
}

export interface TextPdu {
  readonly kind: 'text';
  readonly from: number;
  /** The ident word as it reads in network byte order (see the file comment). */
  readonly identWord: number;
  readonly text: string;
}

export interface AttrPdu {
  readonly kind: 'attr';
  readonly from: number;
  /** PCP_ATTR_* (Attribute). */
  readonly attr: number;
  /** The value as sent: pmcd includes the terminating NUL. */
  readonly value: Buffer;
}

export interface LabelReqPdu {
  readonly kind: 'labelReq';
  readonly from: number;
  /** Domain number, pmID or pmInDom by `type`; PM_ID_NULL for the context. */
  readonly ident: number;
  /** LabelType bits. */
  readonly type: number;
}

export interface LabelIndex {
  /** Offset of the name in the set's JSON. */
  readonly name: number;
  readonly namelen: number;
  readonly flags: number;
  readonly value: number;
  readonly valuelen: number;
}

export interface LabelSet {
  readonly inst: number;
  /** Number of labels, or a negative status. */
  readonly nlabels: number;
  readonly json: string;
  readonly labels: readonly LabelIndex[];
}

export interface LabelPdu {
  readonly kind: 'label';
  readonly from: number;
  readonly ident: number;
  readonly type: number;
  readonly sets: readonly LabelSet[];
}

export interface NameListPdu {
  readonly kind: 'names';
  readonly from: number;
  readonly names: readonly string[];
  /** Leaf (0) or non-leaf (1) per name, when the request asked for them. */
  readonly statuses?: readonly number[];
}

export interface IdListPdu {
  readonly kind: 'ids';
  readonly from: number;
  /** PDU_PMNS_IDS carries a status word (0, or -1 for PDU_DESC_IDS). */
  readonly status: number;
  readonly pmids: readonly number[];
}

export interface NameRequestPdu {
  readonly kind: 'child' | 'traverse';
  readonly from: number;
  readonly name: string;
  /** PMNS_CHILD: 1 asks for leaf/non-leaf statuses too. */
  readonly subtype: number;
}

/** A PDU this codec does not model (e.g. PDU_CONTROL_REQ): kept raw. */
export interface OtherPdu {
  readonly kind: 'other';
  readonly from: number;
  readonly type: number;
  readonly body: Buffer;
}

export type Pdu =
  | ErrorPdu
  | CredsPdu
  | ProfilePdu
  | FetchPdu
  | ResultPdu
  | DescReqPdu
  | DescPdu
  | InstanceReqPdu
  | InstancePdu
  | TextReqPdu
  | TextPdu
  | AttrPdu
  | LabelReqPdu
  | LabelPdu
  | NameListPdu
  | IdListPdu
  | NameRequestPdu
  | OtherPdu;

// ---- helpers -------------------------------------------------------------

function finish(type: number, from: number, body: PduWriter): Buffer {
  const pdu = Buffer.concat([Buffer.alloc(PDU_HEADER_SIZE), body.finish()]);
  writeHeader(pdu, type, from);
  return pdu;
}

function reader(pdu: Buffer, what: string): PduReader {
  const h = readHeader(pdu);
  if (h.length !== pdu.length) throw new CrootError('ERR_PROTOCOL', `${what} PDU says ${h.length} bytes but has ${pdu.length}`);
  return new PduReader(pdu, PDU_HEADER_SIZE, `${what} PDU`);
}

const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');

// ---- PDU_ERROR -----------------------------------------------------------

export function encodeError(p: Omit<ErrorPdu, 'kind'>): Buffer {
  const w = new PduWriter().int32(p.code);
  if (p.datum !== undefined) w.int32(p.datum);
  return finish(PduType.ERROR, p.from, w);
}

export function decodeError(pdu: Buffer): ErrorPdu {
  const r = reader(pdu, 'ERROR');
  if (pdu.length !== 16 && pdu.length !== 20) r.fail(`length ${pdu.length}, not 16 or 20`);
  const code = r.int32();
  const from = readHeader(pdu).from;
  return pdu.length === 20 ? { kind: 'error', from, code, datum: r.int32() } : { kind: 'error', from, code };
}

// ---- PDU_CREDS -----------------------------------------------------------

export function encodeCreds(p: Omit<CredsPdu, 'kind'>): Buffer {
  if (p.creds.length < 1 || p.creds.length > MAX_CREDS) throw new CrootError('ERR_PROTOCOL', `${p.creds.length} credentials (1..${MAX_CREDS})`);
  const w = new PduWriter().int32(p.creds.length);
  for (const c of p.creds) w.uint32(((c.type & 0xff) << 24) | ((c.version & 0xff) << 16) | (c.flags & 0xffff));
  return finish(PduType.CREDS, p.from, w);
}

export function decodeCreds(pdu: Buffer): CredsPdu {
  const r = reader(pdu, 'CREDS');
  const n = r.int32();
  if (n < 0 || n > MAX_CREDS || pdu.length !== 16 + 4 * n) r.fail(`${n} credentials in ${pdu.length} bytes`);
  const creds: Credential[] = [];
  for (let i = 0; i < n; i++) {
    const word = r.uint32();
    creds.push({ type: word >>> 24, version: (word >>> 16) & 0xff, flags: word & 0xffff });
  }
  return { kind: 'creds', from: readHeader(pdu).from, creds };
}

// ---- PDU_PROFILE ---------------------------------------------------------

export function encodeProfile(p: Omit<ProfilePdu, 'kind'>): Buffer {
  const w = new PduWriter().int32(p.ctxid).int32(p.state).int32(p.indoms.length).int32(0);
  for (const d of p.indoms) w.uint32(d.indom).int32(d.state).int32(d.instances.length).int32(0);
  for (const d of p.indoms) for (const inst of d.instances) w.int32(inst);
  return finish(PduType.PROFILE, p.from, w);
}

export function decodeProfile(pdu: Buffer): ProfilePdu {
  const r = reader(pdu, 'PROFILE');
  const ctxid = r.int32();
  if (ctxid < 0) r.fail(`context ${ctxid}`);
  const state = r.int32();
  const n = r.count(r.int32(), 16, 'profile count');
  r.skip(4);
  const heads: { indom: number; state: number; numinst: number }[] = [];
  for (let i = 0; i < n; i++) {
    const indom = r.uint32();
    const st = r.int32();
    const numinst = r.int32();
    r.skip(4);
    heads.push({ indom, state: st, numinst });
  }
  const indoms = heads.map((h) => {
    r.count(h.numinst, 4, 'instance count');
    const instances: number[] = [];
    for (let j = 0; j < h.numinst; j++) instances.push(r.int32());
    return { indom: h.indom, state: h.state, instances };
  });
  r.end();
  return { kind: 'profile', from: readHeader(pdu).from, ctxid, state, indoms };
}

// ---- PDU_FETCH -----------------------------------------------------------

export function encodeFetch(p: Omit<FetchPdu, 'kind'>): Buffer {
  if (p.pmids.length < 1) throw new CrootError('ERR_PROTOCOL', 'a fetch names at least one metric');
  const w = new PduWriter().int32(p.ctxid).int32(0).int32(0).int32(p.pmids.length);
  for (const id of p.pmids) w.uint32(id);
  return finish(PduType.FETCH, p.from, w);
}

export function decodeFetch(pdu: Buffer): FetchPdu {
  const r = reader(pdu, 'FETCH');
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
  return finish(PduType.RESULT, p.from, body);
}

export function decodeResult(pdu: Buffer): ResultPdu {
  const r = reader(pdu, 'RESULT');
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
  return finish(PduType.DESC_REQ, p.from, new PduWriter().uint32(p.pmid));
}

export function decodeDescReq(pdu: Buffer): DescReqPdu {
  const r = reader(pdu, 'DESC_REQ');
  const pmid = r.uint32();
  r.end();
  return { kind: 'descReq', from: readHeader(pdu).from, pmid };
}

export function encodeDesc(p: Omit<DescPdu, 'kind'>): Buffer {
  const d = p.desc;
  return finish(PduType.DESC, p.from, new PduWriter().uint32(d.pmid).int32(d.type).uint32(d.indom).int32(d.sem).uint32(d.units));
}

export function decodeDesc(pdu: Buffer): DescPdu {
  const r = reader(pdu, 'DESC');
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
  return finish(PduType.INSTANCE_REQ, p.from, w);
}

export function decodeInstanceReq(pdu: Buffer): InstanceReqPdu {
  const r = reader(pdu, 'INSTANCE_REQ');
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
  return finish(PduType.INSTANCE, p.from, w);
}

export function decodeInstance(pdu: Buffer): InstancePdu {
  const r = reader(pdu, 'INSTANCE');
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
  return finish(PduType.TEXT_REQ, p.from, new PduWriter().uint32(p.ident).int32(p.type & ~16));
}

export function decodeTextReq(pdu: Buffer): TextReqPdu {
  const r = reader(pdu, 'TEXT_REQ');
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
  return finish(PduType.TEXT, p.from, new PduWriter().uint32(p.identWord).int32(text.length).padded(text));
}

export function decodeText(pdu: Buffer): TextPdu {
  const r = reader(pdu, 'TEXT');
  const identWord = r.uint32();
  const len = r.int32();
  if (len < 0) r.fail(`text length ${len}`);
  const text = r.bytes(len).toString('utf8').split('\0')[0] as string;
  return { kind: 'text', from: readHeader(pdu).from, identWord, text };
}

// ---- PDU_ATTR ------------------------------------------------------------

export function encodeAttr(p: Omit<AttrPdu, 'kind'>): Buffer {
  if (p.value.length >= MAX_ATTR_VALUE) throw new CrootError('ERR_TOO_LONG', `attribute value of ${p.value.length} bytes (below ${MAX_ATTR_VALUE})`);
  return finish(PduType.ATTR, p.from, new PduWriter().int32(p.attr).bytes(p.value));
}

export function decodeAttr(pdu: Buffer): AttrPdu {
  const r = reader(pdu, 'ATTR');
  const attr = r.int32();
  const value = Buffer.from(r.bytes(r.remaining));
  if (value.length >= MAX_ATTR_VALUE) r.fail(`attribute value of ${value.length} bytes`);
  return { kind: 'attr', from: readHeader(pdu).from, attr, value };
}

/** An attribute's value as text: up to its first NUL. */
export function attrText(value: Buffer): string {
  const nul = value.indexOf(0);
  return value.subarray(0, nul < 0 ? value.length : nul).toString('utf8');
}

// ---- PDU_LABEL_REQ, PDU_LABEL --------------------------------------------

export function encodeLabelReq(p: Omit<LabelReqPdu, 'kind'>): Buffer {
  return finish(PduType.LABEL_REQ, p.from, new PduWriter().uint32(p.ident).int32(p.type));
}

export function decodeLabelReq(pdu: Buffer): LabelReqPdu {
  const r = reader(pdu, 'LABEL_REQ');
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
  return finish(PduType.LABEL, p.from, w);
}

export function decodeLabel(pdu: Buffer): LabelPdu {
  const r = reader(pdu, 'LABEL');
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
  return finish(PduType.PMNS_NAMES, p.from, w);
}

export function decodeNameList(pdu: Buffer): NameListPdu {
  const r = reader(pdu, 'PMNS_NAMES');
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
  return finish(p.status === -1 ? PduType.DESC_IDS : PduType.PMNS_IDS, p.from, w);
}

export function decodeIdList(pdu: Buffer): IdListPdu {
  const r = reader(pdu, 'PMNS_IDS');
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
  return finish(p.kind === 'child' ? PduType.PMNS_CHILD : PduType.PMNS_TRAVERSE, p.from, w);
}

export function decodeNameRequest(pdu: Buffer): NameRequestPdu {
  const h = readHeader(pdu);
  const r = reader(pdu, h.type === PduType.PMNS_CHILD ? 'PMNS_CHILD' : 'PMNS_TRAVERSE');
  const subtype = r.int32();
  const len = r.int32();
  if (len < 0) r.fail(`name length ${len}`);
  const name = r.bytes(len).toString('utf8');
  return { kind: h.type === PduType.PMNS_CHILD ? 'child' : 'traverse', from: h.from, name, subtype };
}

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
      reader(pdu, 'unknown');
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
      return finish(p.type, p.from, new PduWriter().bytes(p.body));
  }
}
