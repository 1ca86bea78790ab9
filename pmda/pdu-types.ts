/**
 * The PDUs pmcd and a daemon PMDA exchange (PCP 6.0.3's libpcp, p_*.c) as
 * data: what pdus.ts's decoders give and its encoders take.
 */
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
  /** The value format (identifiers.ts' ValueFormat), present when numval > 0. */
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
