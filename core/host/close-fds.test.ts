import { closeSync, mkdtempSync, openSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeFds } from './close-fds.js';

/** Whether the kernel lists `fd` among this process's open descriptors. */
function isOpen(fd: number): boolean {
  try {
    readlinkSync(`/proc/self/fd/${fd}`);
    return true;
  } catch {
    return false;
  }
}

describe(closeFds, () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'croot-t-fds-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('closes every descriptor it is given, going on past one already closed', () => {
    const a = openSync(join(dir, 'a'), 'w');
    const gone = openSync(join(dir, 'gone'), 'w');
    const b = openSync(join(dir, 'b'), 'w');
    closeSync(gone);
    expect([a, gone, b].map(isOpen)).toEqual([true, false, true]);
    expect(() => closeFds([gone, a, -1, b])).not.toThrow();
    expect([a, b].map(isOpen)).toEqual([false, false]);
  });
});
