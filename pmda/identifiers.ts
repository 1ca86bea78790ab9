/**
 * PCP's identifiers and metadata words as they travel in PDUs (PCP 6.0.3,
 * pmapi.h): a pmID is `domain:9 cluster:12 item:10` below a zero top bit, a
 * pmInDom `domain:9 serial:22`, a pmUnits word packs six 4-bit fields. On the
 * wire each is one 32-bit word in network byte order.
 */
import { CrootError } from '../core/errors/croot-error.js';

export const PM_ID_NULL = 0xffffffff;
export const PM_INDOM_NULL = 0xffffffff;
/** "No instance" (singular metrics); 0xffffffff as an unsigned word, -1 as an int. */
export const PM_IN_NULL = -1;

/** Value types (pmDesc.type). */
export const MetricType = {
  I32: 0,
  U32: 1,
  I64: 2,
  U64: 3,
  FLOAT: 4,
  DOUBLE: 5,
  STRING: 6,
  AGGREGATE: 7,
} as const;
export type MetricType = (typeof MetricType)[keyof typeof MetricType];

/** Semantics (pmDesc.sem). */
export const Semantics = {
  COUNTER: 1,
  INSTANT: 3,
  DISCRETE: 4,
} as const;
export type Semantics = (typeof Semantics)[keyof typeof Semantics];

/** Scales of pmUnits. */
export const SpaceScale = { BYTE: 0, KBYTE: 1, MBYTE: 2, GBYTE: 3, TBYTE: 4, PBYTE: 5, EBYTE: 6, ZBYTE: 7, YBYTE: 8 } as const;
export const TimeScale = { NSEC: 0, USEC: 1, MSEC: 2, SEC: 3, MIN: 4, HOUR: 5 } as const;
export const COUNT_ONE = 0;

/** pmUnits: dimensions (-8..7) and scales (0..15); all zero means "none". */
export interface Units {
  readonly dimSpace?: number;
  readonly dimTime?: number;
  readonly dimCount?: number;
  readonly scaleSpace?: number;
  readonly scaleTime?: number;
  readonly scaleCount?: number;
}

/** pmValue formats (valfmt). */
export const ValueFormat = { INSITU: 0, DPTR: 1, SPTR: 2 } as const;

/** pmLookupText kinds and targets (PM_TEXT_*). */
export const TextKind = { ONELINE: 1, HELP: 2, PMID: 4, INDOM: 8, DIRECT: 16 } as const;

/** Label sources (PM_LABEL_*), also the per-label flags. */
export const LabelType = { CONTEXT: 1, DOMAIN: 2, INDOM: 4, CLUSTER: 8, ITEM: 16, INSTANCES: 32, COMPOUND: 64, OPTIONAL: 128 } as const;

/** Profile states (PM_PROFILE_*). */
export const ProfileState = { INCLUDE: 0, EXCLUDE: 1 } as const;

/** PCP_ATTR_* codes pmcd sends in PDU_ATTR. */
export const Attribute = {
  PROTOCOL: 1,
  SECURE: 2,
  COMPRESS: 3,
  USERAUTH: 4,
  USERNAME: 5,
  AUTHNAME: 6,
  PASSWORD: 7,
  METHOD: 8,
  REALM: 9,
  UNIXSOCK: 10,
  USERID: 11,
  GROUPID: 12,
  LOCAL: 13,
  PROCESSID: 14,
  CONTAINER: 15,
} as const;

export interface MetricId {
  readonly domain: number;
  readonly cluster: number;
  readonly item: number;
}

function checkRange(what: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new CrootError('ERR_CONFIG', `${what} ${v} outside 0..${max}`);
}

export function pmid(domain: number, cluster: number, item: number): number {
  checkRange('domain', domain, 510);
  checkRange('cluster', cluster, 4095);
  checkRange('item', item, 1023);
  return ((domain << 22) | (cluster << 10) | item) >>> 0;
}

export function pmidParts(id: number): MetricId {
  return { domain: (id >>> 22) & 0x1ff, cluster: (id >>> 10) & 0xfff, item: id & 0x3ff };
}

/** "1.0.3", as pminfo prints a PMID. */
export function pmidString(id: number): string {
  if (id >>> 0 === PM_ID_NULL) return 'PM_ID_NULL';
  const p = pmidParts(id);
  return `${p.domain}.${p.cluster}.${p.item}`;
}

export function indom(domain: number, serial: number): number {
  checkRange('domain', domain, 510);
  checkRange('serial', serial, 0x3fffff);
  return ((domain << 22) | serial) >>> 0;
}

export function indomParts(id: number): { readonly domain: number; readonly serial: number } {
  return { domain: (id >>> 22) & 0x1ff, serial: id & 0x3fffff };
}

/** "1.0", as pminfo prints an instance domain. */
export function indomString(id: number): string {
  if (id >>> 0 === PM_INDOM_NULL) return 'PM_INDOM_NULL';
  const p = indomParts(id);
  return `${p.domain}.${p.serial}`;
}

function nibble(v: number | undefined, signed: boolean, what: string): number {
  const n = v ?? 0;
  if (!Number.isInteger(n) || (signed ? n < -8 || n > 7 : n < 0 || n > 15)) {
    throw new CrootError('ERR_CONFIG', `units ${what} ${n} outside ${signed ? '-8..7' : '0..15'}`);
  }
  return n & 0xf;
}

/** The pmUnits word (as it reads in network byte order). */
export function packUnits(u: Units = {}): number {
  return (
    ((nibble(u.dimSpace, true, 'dimSpace') << 28) |
      (nibble(u.dimTime, true, 'dimTime') << 24) |
      (nibble(u.dimCount, true, 'dimCount') << 20) |
      (nibble(u.scaleSpace, false, 'scaleSpace') << 16) |
      (nibble(u.scaleTime, false, 'scaleTime') << 12) |
      (nibble(u.scaleCount, true, 'scaleCount') << 8)) >>>
    0
  );
}

function signed4(n: number): number {
  return n & 0x8 ? n - 16 : n;
}

export function unpackUnits(word: number): Required<Units> {
  return {
    dimSpace: signed4((word >>> 28) & 0xf),
    dimTime: signed4((word >>> 24) & 0xf),
    dimCount: signed4((word >>> 20) & 0xf),
    scaleSpace: (word >>> 16) & 0xf,
    scaleTime: (word >>> 12) & 0xf,
    scaleCount: signed4((word >>> 8) & 0xf),
  };
}
