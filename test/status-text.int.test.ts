import { execFileSync } from 'node:child_process';
import { ErrorCodes } from '../core/errors.js';
import { errorText, knownStatuses } from '../core/status-text.js';
import { describeWith, probes } from './support/components.js';

/** What PCP's own `pmerr` prints for each status, in one run. */
function pmerrTexts(statuses: readonly number[]): Map<number, string> {
  const out = execFileSync('pmerr', statuses.map(String), { encoding: 'utf8', timeout: 30000 });
  const texts = new Map<number, string>();
  for (const line of out.split('\n')) {
    const m = /^Code: (-?\d+) 0x[0-9a-f]+ Text: (.*)$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) texts.set(Number(m[1]), m[2]);
  }
  return texts;
}

describeWith('pcp', probes.pcp, 'errorText against PCP’s pmerr', () => {
  const statuses = [...new Set([...knownStatuses(), ...Object.values(ErrorCodes), -12999, -4000])].sort((a, b) => a - b);
  let real: Map<number, string>;

  beforeAll(() => {
    real = pmerrTexts(statuses);
  });

  it('gets an answer from pmerr for every status', () => {
    expect(statuses.filter((s) => !real.has(s))).toEqual([]);
  });

  it.each(statuses)('gives the text pmerr prints for %d', (status) => {
    expect(errorText(status)).toBe(real.get(status));
  });
});
