/**
 * Label sets as libpcp_pmda builds them (pmdaAddLabels): names checked,
 * sorted, and laid out as JSON with an index of where each name and value
 * sits.
 */
import { CrootError } from '../core/errors/croot-error.js';
import type { LabelSet } from './pdu-types.js';
import type { Labels } from './pmda-definition.js';

const LABEL_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

/** Throws ERR_CONFIG for a label name PCP would refuse. */
export function checkLabels(labels: Labels | undefined, where: string): void {
  for (const name of Object.keys(labels ?? {})) {
    if (!LABEL_NAME.test(name) || name.length > 255) throw new CrootError('ERR_CONFIG', `${where}: label name "${name}" is not a PCP label name`);
  }
}

/** One label set with its JSON and index, as pmdaAddLabels builds it (names sorted). */
export function labelSet(inst: number, labels: Labels, flags: number): LabelSet {
  const names = Object.keys(labels).sort();
  // libpcp sends a set without labels with no JSON at all.
  if (names.length === 0) return { inst, nlabels: 0, json: '', labels: [] };
  let json = '{';
  const index = names.map((name, i) => {
    if (i > 0) json += ',';
    const nameAt = Buffer.byteLength(json) + 1;
    json += `${JSON.stringify(name)}:`;
    const valueAt = Buffer.byteLength(json);
    const value = JSON.stringify(labels[name]);
    json += value;
    return { name: nameAt, namelen: Buffer.byteLength(name), flags, value: valueAt, valuelen: Buffer.byteLength(value) };
  });
  json += '}';
  return { inst, nlabels: index.length, json, labels: index };
}
