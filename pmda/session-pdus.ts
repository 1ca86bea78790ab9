/**
 * The PDUs of a session between pmcd and an agent: PDU_ERROR, PDU_CREDS,
 * PDU_PROFILE and PDU_ATTR, byte for byte as libpcp lays them out.
 */
import { CrootError } from '../core/errors/croot-error.js';
import { PduType, readHeader } from './pdu-framer.js';
import { PduWriter } from './wire.js';
import { finishPdu, pduReader } from './pdu-codec.js';
import { MAX_CREDS, MAX_ATTR_VALUE, type Credential, type ErrorPdu, type CredsPdu, type ProfilePdu, type AttrPdu } from './pdu-types.js';

// ---- PDU_ERROR -----------------------------------------------------------

export function encodeError(p: Omit<ErrorPdu, 'kind'>): Buffer {
  const w = new PduWriter().int32(p.code);
  if (p.datum !== undefined) w.int32(p.datum);
  return finishPdu(PduType.ERROR, p.from, w);
}

export function decodeError(pdu: Buffer): ErrorPdu {
  const r = pduReader(pdu, 'ERROR');
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
  return finishPdu(PduType.CREDS, p.from, w);
}

export function decodeCreds(pdu: Buffer): CredsPdu {
  const r = pduReader(pdu, 'CREDS');
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
  return finishPdu(PduType.PROFILE, p.from, w);
}

export function decodeProfile(pdu: Buffer): ProfilePdu {
  const r = pduReader(pdu, 'PROFILE');
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

// ---- PDU_ATTR ------------------------------------------------------------

export function encodeAttr(p: Omit<AttrPdu, 'kind'>): Buffer {
  if (p.value.length >= MAX_ATTR_VALUE) throw new CrootError('ERR_TOO_LONG', `attribute value of ${p.value.length} bytes (below ${MAX_ATTR_VALUE})`);
  return finishPdu(PduType.ATTR, p.from, new PduWriter().int32(p.attr).bytes(p.value));
}

export function decodeAttr(pdu: Buffer): AttrPdu {
  const r = pduReader(pdu, 'ATTR');
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
