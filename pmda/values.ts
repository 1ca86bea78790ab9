/**
 * Metric values as a PDU_RESULT carries them, the way libpcp's
 * __pmStuffValue and __htonpmValueBlock lay them out: 32-bit integers in
 * the value word itself (INSITU); every other type in a value block after
 * the value lists (DPTR), 64-bit integers and doubles and floats in network
 * byte order, strings with their terminating NUL, aggregates as given.
 */
import { CrootError } from '../core/errors/croot-error.js';
import { MetricType, ValueFormat } from './identifiers.js';
import type { Value, ValueBlock } from './pdus.js';
import { PM_ERR_SIGN, PM_ERR_TRUNC, PM_ERR_TYPE } from './pm-status.js';

/** What a metric's fetch gives for one instance, by its type. */
export type MetricValue = number | bigint | string | Uint8Array;

export interface EncodedValue {
  readonly valfmt: number;
  readonly lval?: number;
  readonly block?: ValueBlock;
}

function bad(status: number, why: string): never {
  throw new CrootError('ERR_CONFIG', why, { status });
}

function integer(value: MetricValue, what: string): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  return bad(PM_ERR_TYPE, `${what} wants an integer, got ${typeof value === 'number' ? value : typeof value}`);
}

/** Lays `value` out as a value of `type`; a value that does not fit is a CrootError with PCP's status. */
export function encodeValue(type: number, value: MetricValue): EncodedValue {
  switch (type) {
    case MetricType.I32: {
      const v = integer(value, '32-bit metric');
      if (v < -0x80000000n || v > 0x7fffffffn) bad(PM_ERR_TRUNC, `${v} does not fit 32 bits`);
      return { valfmt: ValueFormat.INSITU, lval: Number(v) };
    }
    case MetricType.U32: {
      const v = integer(value, 'unsigned 32-bit metric');
      if (v < 0n) bad(PM_ERR_SIGN, `${v} is negative`);
      if (v > 0xffffffffn) bad(PM_ERR_TRUNC, `${v} does not fit 32 bits`);
      return { valfmt: ValueFormat.INSITU, lval: Number(v) | 0 };
    }
    case MetricType.I64:
    case MetricType.U64: {
      const v = integer(value, '64-bit metric');
      const data = Buffer.alloc(8);
      if (type === MetricType.U64) {
        if (v < 0n) bad(PM_ERR_SIGN, `${v} is negative`);
        if (v > 0xffffffffffffffffn) bad(PM_ERR_TRUNC, `${v} does not fit 64 bits`);
        data.writeBigUInt64BE(v);
      } else {
        if (v < -(1n << 63n) || v >= 1n << 63n) bad(PM_ERR_TRUNC, `${v} does not fit 64 bits`);
        data.writeBigInt64BE(v);
      }
      return { valfmt: ValueFormat.DPTR, block: { vtype: type, data } };
    }
    case MetricType.FLOAT:
    case MetricType.DOUBLE: {
      if (typeof value !== 'number') bad(PM_ERR_TYPE, `a floating point metric wants a number, got ${typeof value}`);
      const data = Buffer.alloc(type === MetricType.FLOAT ? 4 : 8);
      if (type === MetricType.FLOAT) data.writeFloatBE(value);
      else data.writeDoubleBE(value);
      return { valfmt: ValueFormat.DPTR, block: { vtype: type, data } };
    }
    case MetricType.STRING: {
      if (typeof value !== 'string') bad(PM_ERR_TYPE, `a string metric wants a string, got ${typeof value}`);
      const text = Buffer.from(value, 'utf8');
      if (text.includes(0)) bad(PM_ERR_TYPE, 'a string metric value cannot hold a NUL');
      return { valfmt: ValueFormat.DPTR, block: { vtype: type, data: Buffer.concat([text, Buffer.alloc(1)]) } };
    }
    case MetricType.AGGREGATE: {
      if (!(value instanceof Uint8Array)) bad(PM_ERR_TYPE, `an aggregate metric wants bytes, got ${typeof value}`);
      return { valfmt: ValueFormat.DPTR, block: { vtype: type, data: Buffer.from(value) } };
    }
    default:
      return bad(PM_ERR_TYPE, `metric type ${type} is not supported`);
  }
}

/** The value a PDU carries, read back by `type` (for clients and tests). */
export function decodeValue(type: number, v: Value): MetricValue {
  if (type === MetricType.I32) return v.lval ?? 0;
  if (type === MetricType.U32) return (v.lval ?? 0) >>> 0;
  const block = v.block;
  if (block === undefined) return bad(PM_ERR_TYPE, `type ${type} needs a value block`);
  switch (type) {
    case MetricType.I64:
      return block.data.readBigInt64BE(0);
    case MetricType.U64:
      return block.data.readBigUInt64BE(0);
    case MetricType.FLOAT:
      return block.data.readFloatBE(0);
    case MetricType.DOUBLE:
      return block.data.readDoubleBE(0);
    case MetricType.STRING: {
      const nul = block.data.indexOf(0);
      return block.data.subarray(0, nul < 0 ? block.data.length : nul).toString('utf8');
    }
    default:
      return Buffer.from(block.data);
  }
}
