import { ErrorCodes } from '../core/errors/croot-error.js';
import { errorText, knownStatuses } from '../core/protocol/error-text.js';
import { describeWith, probes } from './support/components.js';
import { pmerrTexts } from './support/truth.js';

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
