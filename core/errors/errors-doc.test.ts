/**
 * docs/errors.md and the code must list the same error codes and statuses,
 * and each status's text must be what PCP's own `pmerr` prints for it.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { commandWorks, describeWith } from '../../test/support/components.js';
import { pmerrTexts } from '../../test/support/truth.js';
import { ErrorCodes } from './croot-error.js';

interface Row {
  code: string;
  status: number;
  text: string;
}

function documentedRows(): Row[] {
  const doc = readFileSync(resolve(__dirname, '..', '..', 'docs', 'errors.md'), 'utf8');
  const rows: Row[] = [];
  for (const line of doc.split('\n')) {
    const m = /^\|\s*`(ERR_[A-Z_]+)`\s*\|\s*(-?\d+)\s*\|\s*([^|]+?)\s*\|/.exec(line);
    if (m) rows.push({ code: m[1] as string, status: Number(m[2]), text: m[3] as string });
  }
  return rows;
}

describe('docs/errors.md', () => {
  const rows = documentedRows();

  it('documents every error code the code has, and no other', () => {
    expect(rows.map((r) => r.code).sort()).toEqual(Object.keys(ErrorCodes).sort());
  });

  it('gives each code the PCP status the code uses', () => {
    for (const row of rows) expect([row.code, row.status]).toEqual([row.code, ErrorCodes[row.code as keyof typeof ErrorCodes]]);
  });

  describeWith('PCP’s pmerr', () => commandWorks('pmerr', ['-12399']), 'texts', () => {
    it("gives each status the text PCP's pmerr prints for it", () => {
      const pmerr = pmerrTexts(rows.map((r) => r.status));
      for (const row of rows) expect([row.code, row.status, row.text]).toEqual([row.code, row.status, pmerr.get(row.status)]);
    });
  });
});
