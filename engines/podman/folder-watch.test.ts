import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DirectoryEvent, DirectoryWatcher } from '../../core/host/host-services.js';
import { NodeDirectoryWatcher } from '../../core/host/node-directory-watcher.js';
import { CountingWatcher } from '../../test/support/counting-watcher.js';
import { LossyWatcher } from '../../test/support/lossy-watcher.js';
import { eventually } from '../../test/support/outcomes.js';
import { FolderWatch } from './folder-watch.js';

describe('FolderWatch', () => {
  let root: string;
  let events: DirectoryEvent[];
  const watches: FolderWatch[] = [];
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'croot-t-folder-'));
    events = [];
  });
  afterEach(() => {
    for (const w of watches.splice(0)) w.close();
    rmSync(root, { recursive: true, force: true });
  });

  function watch(target: string, floor?: string, watcher: DirectoryWatcher = new NodeDirectoryWatcher()): FolderWatch {
    const w = new FolderWatch(watcher, target, (e) => events.push(e), { ...(floor !== undefined ? { floor } : {}), verifiable: true }).open();
    watches.push(w);
    return w;
  }

  const saw = (name: string, kind: DirectoryEvent['kind'] = 'changed'): Promise<true> =>
    eventually(async () => (events.some((e) => e.name === name && e.kind === kind) ? true : undefined));

  it('passes on the events of a folder that exists', async () => {
    const w = watch(root);
    expect(w.armed).toBe(true);
    writeFileSync(join(root, 'pidfile'), '1');
    await saw('pidfile');
  });

  it('waits for a folder several levels deep to appear, then says so and passes its events on', async () => {
    const watcher = new CountingWatcher();
    const target = join(root, 'a/b/c');
    const w = watch(target, undefined, watcher);
    expect(w.armed).toBe(false);
    mkdirSync(join(root, 'a'));
    mkdirSync(join(root, 'a/b'));
    mkdirSync(join(root, 'a/b/c'));
    await saw('', 'overflow');
    expect(w.armed).toBe(true);
    // The ancestors it waited in are no longer watched (inotify watches are a per-user budget): only the folder itself.
    expect([...watcher.active]).toEqual([[target, 1]]);
    writeFileSync(join(target, 'containers.json'), '[]');
    await saw('containers.json');
  });

  it('sees a folder created with its parents at once', async () => {
    const target = join(root, 'x/y/z');
    const w = watch(target);
    mkdirSync(target, { recursive: true });
    await saw('', 'overflow');
    expect(w.armed).toBe(true);
  });

  it('watches nothing at or above its floor: the owner retries when the floor says the folder may be there', async () => {
    const floor = join(root, 'overlay-containers');
    mkdirSync(floor);
    const w = watch(join(floor, 'abc/userdata'), floor);
    expect(w.armed).toBe(false);
    mkdirSync(join(floor, 'abc/userdata'), { recursive: true });
    expect(w.armed).toBe(false);
    w.retry();
    expect(w.armed).toBe(true);
    expect(events).toEqual([{ name: '', kind: 'overflow' }]);
  });

  it('follows a folder deleted and made again', async () => {
    const target = join(root, 'run');
    mkdirSync(target);
    const w = watch(target);
    rmSync(target, { recursive: true });
    await saw('', 'overflow');
    events.length = 0;
    mkdirSync(target);
    await saw('', 'overflow');
    expect(w.armed).toBe(true);
    writeFileSync(join(target, 'hostname'), 'h');
    await saw('hostname');
  });

  it('finds again at verify() a folder whose parent was moved and replaced, which inotify does not tell', async () => {
    const target = join(root, 'store/lists');
    mkdirSync(target, { recursive: true });
    const w = watch(target);
    renameSync(join(root, 'store'), join(root, 'old-store'));
    mkdirSync(target, { recursive: true });
    w.verify();
    expect(events).toContainEqual({ name: '', kind: 'overflow' });
    events.length = 0;
    writeFileSync(join(target, 'containers.json'), '[]');
    await saw('containers.json');
  });

  it('says nothing when opened on a folder that is there, nor at retry() and verify() while it is watched in place', async () => {
    const watcher = new CountingWatcher();
    const w = watch(root, undefined, watcher);
    w.retry();
    w.verify();
    writeFileSync(join(root, 'pidfile'), '1');
    await saw('pidfile');
    // Only the entry's own events: no 'read everything again', and still one watch on the folder.
    expect(events.filter((e) => e.name !== 'pidfile')).toEqual([]);
    expect([...watcher.active]).toEqual([[root, 1]]);
  });

  it('watches nothing and says nothing once closed, whatever is asked of it after', async () => {
    const watcher = new CountingWatcher();
    const target = join(root, 'lists');
    const w = watch(target, undefined, watcher);
    expect([...watcher.active]).toEqual([[root, 1]]);
    w.close();
    expect([...watcher.active]).toEqual([]);
    mkdirSync(target);
    w.retry();
    w.verify();
    expect(w.armed).toBe(false);
    expect([...watcher.active]).toEqual([]);
    expect(events).toEqual([]);
  });

  it('names why a folder on the way cannot be watched (a file stands there), and forgets it once the folder is there', async () => {
    writeFileSync(join(root, 'storage'), 'not a folder');
    const target = join(root, 'storage/overlay-containers');
    const w = watch(target);
    expect(w.armed).toBe(false);
    expect(w.problem).toMatch(/ENOTDIR|not a directory/);
    rmSync(join(root, 'storage'));
    mkdirSync(target, { recursive: true });
    w.retry();
    expect(w.armed).toBe(true);
    expect(w.problem).toBeUndefined();
    expect(events).toEqual([{ name: '', kind: 'overflow' }]);
  });

  it('waits from higher up when the ancestor it waits in is deleted, and still sees the folder made later', async () => {
    const watcher = new CountingWatcher();
    const target = join(root, 'a/b/c');
    const w = watch(target, undefined, watcher);
    const watching = (): string[] => [...watcher.active.keys()];
    mkdirSync(join(root, 'a'));
    await eventually(async () => (watching().includes(join(root, 'a')) ? true : undefined));
    // Waiting in a/ now; a/ goes, and its watch with it: it waits in the tree's root again.
    rmSync(join(root, 'a'), { recursive: true });
    await eventually(async () => (watching().join() === root ? true : undefined));
    mkdirSync(target, { recursive: true });
    await saw('', 'overflow');
    expect(w.armed).toBe(true);
  });

  it('finds at verify() a folder whose creation the ancestor it waits in never told (its event lost, no overflow said)', async () => {
    const watcher = new LossyWatcher();
    const target = join(root, 'a');
    const w = watch(target, undefined, watcher);
    watcher.losing = true;
    mkdirSync(target);
    await eventually(async () => (watcher.lost.some((l) => l.dir === root && l.event.name === 'a') ? true : undefined));
    watcher.losing = false;
    expect(w.armed).toBe(false);
    w.verify();
    expect(w.armed).toBe(true);
    expect(events).toEqual([{ name: '', kind: 'overflow' }]);
    writeFileSync(join(target, 'pidfile'), '1');
    await saw('pidfile');
  });

  it('gives up looking again, still waiting, when the tree changes under every look (a folder on the way made and removed each time)', () => {
    const inner = new NodeDirectoryWatcher();
    const a = join(root, 'a');
    // Another process racing the watch: a/ is removed as it is about to be watched, and made again once root/ is watched.
    let looks = 0;
    let racing = true;
    const racer: DirectoryWatcher = {
      watch(dir, onEvent) {
        if (racing && dir === a) {
          looks++;
          rmSync(a, { recursive: true, force: true });
          // A watch that never gives up would race for ever: stop racing, so it fails here rather than hang.
          if (looks >= 100) racing = false;
        }
        const end = inner.watch(dir, onEvent);
        if (racing && dir === root) mkdirSync(a);
        return end;
      },
    };
    const w = watch(join(a, 'b'), undefined, racer);
    racing = false;
    expect(w.armed).toBe(false);
    // It looked again after the first race, and stopped on its own.
    expect(looks).toBeGreaterThan(1);
    expect(looks).toBeLessThan(100);
  });

  it('looks again when the ancestor it waits in lost events (a full inotify queue), and finds the folder made meanwhile', async () => {
    const watcher = new LossyWatcher();
    const target = join(root, 'a/b');
    const w = watch(target, undefined, watcher);
    watcher.losing = true;
    mkdirSync(target, { recursive: true });
    await eventually(async () => (watcher.lost.some((l) => l.dir === root && l.event.name === 'a') ? true : undefined));
    expect(w.armed).toBe(false);
    watcher.overflow(root);
    expect(w.armed).toBe(true);
    expect(events).toEqual([{ name: '', kind: 'overflow' }]);
  });
});
