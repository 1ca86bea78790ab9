import { readFileSync } from 'node:fs';
import { commandWorks, describeWith } from '../../test/support/components.js';
import { pmerrTexts } from '../../test/support/truth.js';
import { ErrorCodes } from '../errors/croot-error.js';
import { errorText, knownStatuses } from './error-text.js';

describe('errorText', () => {
  it.each(Object.entries(ErrorCodes))('has a real pmErrStr text for %s (%d)', (_code, status) => {
    const text = errorText(status);
    expect(text).not.toMatch(/^Unknown error|^No such PMAPI error code/);
    expect(text.length).toBeGreaterThan(0);
  });

  it('knows PCP’s container-not-found text', () => {
    expect(errorText(-12399)).toBe('Container not found');
  });

  it('falls back to pmErrStr’s wording for codes it does not know', () => {
    expect(errorText(-12999)).toBe('No such PMAPI error code (-12999)');
    expect(errorText(-4000)).toBe('Unknown error 4000');
  });

  it('lists only negative statuses, each with its own text', () => {
    const statuses = knownStatuses();
    expect(statuses.every((s) => s < 0)).toBe(true);
    expect(new Set(statuses).size).toBe(statuses.length);
  });

  it('lists every errno the kernel’s headers number, negated, and PCP’s three codes of the root protocol', () => {
    // asm-generic/errno*.h: `#define ENAME N`; aliases (`#define EWOULDBLOCK EAGAIN`) name no new number.
    const errnos = ['errno-base.h', 'errno.h'].flatMap((file) =>
      [...readFileSync(`/usr/include/asm-generic/${file}`, 'utf8').matchAll(/^#define\s+E[A-Z0-9]+\s+(\d+)\b/gm)].map((m) => -Number(m[1])),
    );
    expect(errnos.length).toBeGreaterThan(100);
    // PM_ERR_GENERIC, PM_ERR_IPC, PM_ERR_NOCONTAINER, as pcp-root-protocol.md lists them.
    const pcp = [-12345, -12366, -12399];
    expect([...knownStatuses()].sort((a, b) => a - b)).toEqual([...new Set([...errnos, ...pcp])].sort((a, b) => a - b));
  });
});

describeWith('PCP’s pmerr', () => commandWorks('pmerr', ['-12399']), 'texts of statuses croot has no entry for', () => {
  it("gives what PCP's pmerr prints for no error, a positive code, an unknown errno and an unknown PCP code", () => {
    // pmerr reads a positive code as its negative; 0 is "No error".
    const statuses = [0, 2, 22, -134, -4000, -12344, -12999, -20000];
    const pmerr = pmerrTexts(statuses);
    const truth = (status: number): string | undefined => pmerr.get(status > 0 ? -status : status);
    for (const status of statuses) expect([status, errorText(status)]).toEqual([status, truth(status)]);
  });
});
