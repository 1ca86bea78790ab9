import { mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CrootError } from '../errors/croot-error.js';
import type { DirectoryEvent, DirectoryWatcher } from './host-services.js';
import { NodeDirectoryWatcher } from './node-directory-watcher.js';
import { eventually } from '../../test/support/outcomes.js';
import { watchForDirectory } from './watch-for-directory.js';

/** A real NodeDirectoryWatcher that counts the watches in force and can refuse some folders. */
class CountingWatcher implements DirectoryWatcher {
  active = 0;
  readonly refused = new Set<string>();
  private readonly inner = new NodeDirectoryWatcher();
  watch(dir: string, onEvent: (event: DirectoryEvent) => void): () => void {
    if (this.refused.has(dir)) throw new CrootError('ERR_SYSTEM', `watching ${dir}: no space left on device`, { status: -28 });
    const end = this.inner.watch(dir, onEvent);
    this.active++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.active--;
      end();
    };
  }
}

let work: string;
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'croot-t-await-'));
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

describe(watchForDirectory, () => {
  it('calls back at once, watching nothing, when the folder exists', () => {
    const watcher = new CountingWatcher();
    let calls = 0;
    watchForDirectory(watcher, work, () => calls++);
    expect(calls).toBe(1);
    expect(watcher.active).toBe(0);
  });

  it('follows the path down as each folder appears, and calls back once the last one exists', async () => {
    const watcher = new CountingWatcher();
    const target = join(work, 'a', 'b', 'c');
    let calls = 0;
    watchForDirectory(watcher, target, () => calls++);
    expect([calls, watcher.active]).toEqual([0, 1]);
    mkdirSync(join(work, 'a'));
    mkdirSync(join(work, 'a', 'b'));
    mkdirSync(join(work, 'elsewhere'));
    mkdirSync(target);
    await eventually(async () => (calls === 1 ? true : undefined));
    expect(watcher.active).toBe(0);
  });

  it('takes a folder moved in whole', async () => {
    const watcher = new CountingWatcher();
    const target = join(work, 'in', 'place');
    let calls = 0;
    watchForDirectory(watcher, target, () => calls++);
    mkdirSync(join(work, 'staging', 'place'), { recursive: true });
    renameSync(join(work, 'staging'), join(work, 'in'));
    await eventually(async () => (calls === 1 ? true : undefined));
  });

  it('watches nothing more once stopped', () => {
    const watcher = new CountingWatcher();
    const stop = watchForDirectory(watcher, join(work, 'x', 'y'), () => undefined);
    expect(watcher.active).toBe(1);
    stop();
    expect(watcher.active).toBe(0);
  });

  it('gives up with the error when an existing ancestor cannot be watched', () => {
    const watcher = new CountingWatcher();
    watcher.refused.add(work);
    const errors: unknown[] = [];
    let calls = 0;
    watchForDirectory(watcher, join(work, 'z'), () => calls++, (err) => errors.push(err));
    expect(calls).toBe(0);
    expect(errors).toHaveLength(1);
    expect((errors[0] as CrootError).status).toBe(-28);
    expect(watcher.active).toBe(0);
  });
});
