import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { raiseFdLimit } from './fd-limit.js';

/** The soft and hard "Max open files" of this process, as the kernel reports them. */
function fdLimits(): { soft: number; hard: number } {
  const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  const [soft, hard] = (line ?? '').replace('Max open files', '').trim().split(/\s+/).map(Number);
  return { soft: soft ?? NaN, hard: hard ?? NaN };
}

describe(raiseFdLimit, () => {
  const original = fdLimits();

  afterAll(() => {
    execFileSync('prlimit', [`--pid=${process.pid}`, `--nofile=${original.soft}:${original.hard}`]);
  });

  it('raises a lowered soft limit to the hard one and reports what the kernel now holds', () => {
    // Node raises the soft limit itself at start: lower it from outside, as a service manager might have.
    execFileSync('prlimit', [`--pid=${process.pid}`, `--nofile=1024:${original.hard}`]);
    expect(fdLimits()).toEqual({ soft: 1024, hard: original.hard });
    const raised = raiseFdLimit();
    expect(fdLimits()).toEqual({ soft: original.hard, hard: original.hard });
    expect(raised).toEqual(fdLimits());
  });

  it('leaves a soft limit that is already the hard one as it is', () => {
    raiseFdLimit();
    const before = fdLimits();
    expect(before.soft).toBe(before.hard);
    expect(raiseFdLimit()).toEqual(before);
    expect(fdLimits()).toEqual(before);
  });
});
