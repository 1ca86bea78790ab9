import { mkdirSync, mkdtempSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CrootError } from '../errors/croot-error.js';
import type { DirectoryEvent, DirectoryWatcher } from './host-services.js';
import { NodeDirectoryWatcher } from './node-directory-watcher.js';
import { EventLog } from '../../test/support/directory-watcher-cases.js';
import { LossyWatcher } from '../../test/support/lossy-watcher.js';
import { loadNative, NativeDirectoryWatcher } from '../../test/support/native-host.js';
import { eventually } from '../../test/support/outcomes.js';
import { watchForDirectory } from './watch-for-directory.js';

/**
 * A real watcher (NodeDirectoryWatcher unless given) that keeps the watches
 * in force and how many were placed on each folder, can refuse some folders,
 * and can change the file system just before it watches a folder: a change
 * made then is one made between the wait's look and its watch.
 */
class CountingWatcher implements DirectoryWatcher {
  /** The folders watched now, one entry a watch. */
  readonly open: string[] = [];
  /** Watches placed on each folder so far. */
  readonly placed = new Map<string, number>();
  readonly refused = new Set<string>();
  beforeWatch: (dir: string) => void = () => undefined;

  constructor(private readonly inner: DirectoryWatcher = new NodeDirectoryWatcher()) {}

  get active(): number {
    return this.open.length;
  }

  watch(dir: string, onEvent: (event: DirectoryEvent) => void): () => void {
    this.beforeWatch(dir);
    if (this.refused.has(dir)) throw new CrootError('ERR_SYSTEM', `watching ${dir}: no space left on device`, { status: -28 });
    let ended = false;
    // Counted once, whether the watch ends by its function or because its folder went.
    const over = (): void => {
      if (ended) return;
      ended = true;
      this.open.splice(this.open.indexOf(dir), 1);
    };
    const end = this.inner.watch(dir, (event) => {
      if (event.kind === 'gone') over();
      onEvent(event);
    });
    this.open.push(dir);
    this.placed.set(dir, (this.placed.get(dir) ?? 0) + 1);
    return () => {
      over();
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

  it('watches the nearest folder that exists, and moves the watch only for the name it waits for', async () => {
    const watcher = new CountingWatcher();
    const target = join(work, 'a', 'b');
    writeFileSync(join(work, 'old'), '');
    watchForDirectory(watcher, target, () => undefined);
    expect(watcher.open).toEqual([work]);
    // Other entries come, change and go; a watch of the test's own sees them handed out (inotify keeps their order).
    const log = new EventLog();
    const endLog = new NodeDirectoryWatcher().watch(work, log.listener);
    try {
      mkdirSync(join(work, 'elsewhere'));
      writeFileSync(join(work, 'file'), 'x');
      rmSync(join(work, 'old'));
      await log.waitFor('old', 'removed');
    } finally {
      endLog();
    }
    mkdirSync(join(work, 'a'));
    await eventually(async () => (watcher.open.includes(join(work, 'a')) ? true : undefined));
    expect(watcher.open).toEqual([join(work, 'a')]);
    expect(Object.fromEntries(watcher.placed)).toEqual({ [work]: 1, [join(work, 'a')]: 1 });
  });

  it('watches from higher up again when the folder it watches is removed, and follows the path down when it is made again', async () => {
    const watcher = new CountingWatcher();
    const target = join(work, 'a', 'b', 'c');
    mkdirSync(join(work, 'a'));
    let calls = 0;
    watchForDirectory(watcher, target, () => calls++);
    expect(watcher.open).toEqual([join(work, 'a')]);
    rmdirSync(join(work, 'a'));
    await eventually(async () => (watcher.open.includes(work) ? true : undefined));
    expect(watcher.open).toEqual([work]);
    mkdirSync(target, { recursive: true });
    await eventually(async () => (calls === 1 ? true : undefined));
    expect(watcher.active).toBe(0);
  });

  it('looks again when the watcher reports lost events (an inotify queue overflow)', async () => {
    const lossy = new LossyWatcher();
    const target = join(work, 'a');
    let calls = 0;
    watchForDirectory(lossy, target, () => calls++);
    lossy.losing = true;
    mkdirSync(target);
    await eventually(async () => (lossy.lost.some((l) => l.event.name === 'a') ? true : undefined));
    expect(calls).toBe(0);
    lossy.overflow(work);
    expect(calls).toBe(1);
  });

  it('moves down at once when the next folder appears between its look and its watch (no event will come for it)', () => {
    const watcher = new CountingWatcher();
    const target = join(work, 'a', 'b');
    watcher.beforeWatch = (dir) => {
      if (dir === work) mkdirSync(target, { recursive: true });
    };
    let calls = 0;
    watchForDirectory(watcher, target, () => calls++);
    expect(calls).toBe(1);
    expect(watcher.active).toBe(0);
  });

  it('looks from higher up, without an error, when the folder it was about to watch is removed first', async () => {
    const watcher = new CountingWatcher();
    const target = join(work, 'a', 'b');
    mkdirSync(join(work, 'a'));
    watcher.beforeWatch = (dir) => {
      if (dir !== join(work, 'a')) return;
      watcher.beforeWatch = () => undefined;
      rmdirSync(dir);
    };
    const errors: unknown[] = [];
    let calls = 0;
    watchForDirectory(watcher, target, () => calls++, (err) => errors.push(err));
    expect(errors).toEqual([]);
    expect(watcher.open).toEqual([work]);
    mkdirSync(target, { recursive: true });
    await eventually(async () => (calls === 1 ? true : undefined));
  });

  it('watches nothing more once stopped', () => {
    const watcher = new CountingWatcher();
    const stop = watchForDirectory(watcher, join(work, 'x', 'y'), () => undefined);
    expect(watcher.active).toBe(1);
    stop();
    expect(watcher.active).toBe(0);
  });

  it('calls nothing back once stopped, even for an event the watcher was handing out when it was stopped', async () => {
    // The inotify watcher hands an event to every listener the folder had when the event came, also to one a
    // listener before it stops: here the test's own listener, which stops the wait.
    const native = new NativeDirectoryWatcher(loadNative());
    try {
      const target = join(work, 'a');
      const seen: string[] = [];
      let stop = (): void => undefined;
      native.watch(work, (event) => {
        seen.push(event.name);
        stop();
      });
      const watcher = new CountingWatcher(native);
      let calls = 0;
      stop = watchForDirectory(watcher, target, () => calls++);
      expect(watcher.open).toEqual([work]);
      mkdirSync(target);
      await eventually(async () => (seen.includes('a') ? true : undefined));
      expect(calls).toBe(0);
      expect(watcher.active).toBe(0);
      expect(native.watchedCount()).toBe(1);
    } finally {
      native.close();
    }
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
