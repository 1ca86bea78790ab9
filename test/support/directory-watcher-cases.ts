/**
 * The behaviour every DirectoryWatcher must show, on real directories:
 * run by the native (inotify) watcher's tests and by the fs.watch
 * fallback's. Absence is checked against a later event as a marker (inotify
 * delivers one instance's events in order), never by waiting a while.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CrootError, Errno } from '../../core/errors/croot-error.js';
import type { DirectoryEvent, DirectoryWatcher } from '../../core/host/host-services.js';
import { defaultEventuallyMs } from './outcomes.js';

/** The events one watch received, in order. */
export class EventLog {
  readonly events: DirectoryEvent[] = [];
  readonly listener = (event: DirectoryEvent): void => {
    this.events.push(event);
  };

  /** Whether an event `name`/`kind` arrived, at index `from` or later. */
  has(name: string, kind: DirectoryEvent['kind'], from = 0): boolean {
    return this.events.slice(from).some((e) => e.name === name && e.kind === kind);
  }

  /** Waits until an event `name`/`kind` has arrived at index `from` or later. */
  async waitFor(name: string, kind: DirectoryEvent['kind'], from = 0, timeoutMs = defaultEventuallyMs()): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.has(name, kind, from)) {
      if (Date.now() > deadline) throw new Error(`no ${kind} event for '${name}' in ${JSON.stringify(this.events)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'croot-t-'));
}

/** Registers the shared cases for the watcher `make()` returns (a fresh one per test). */
export function describeDirectoryWatcherContract(make: () => DirectoryWatcher, cleanup: (watcher: DirectoryWatcher) => void = () => undefined): void {
  let watcher: DirectoryWatcher;
  let dirs: string[];
  let stops: (() => void)[];

  beforeEach(() => {
    watcher = make();
    dirs = [];
    stops = [];
  });

  afterEach(() => {
    for (const stop of stops) stop();
    cleanup(watcher);
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  function watched(): { dir: string; log: EventLog; stop: () => void } {
    const dir = tempDir();
    dirs.push(dir);
    const log = new EventLog();
    const stop = watcher.watch(dir, log.listener);
    stops.push(stop);
    return { dir, log, stop };
  }

  it('reports a file created, written and closed as changed', async () => {
    const { dir, log } = watched();
    fs.writeFileSync(path.join(dir, 'config.json'), '{}');
    await log.waitFor('config.json', 'changed');
  });

  it('reports a file deleted as removed', async () => {
    const { dir, log } = watched();
    fs.writeFileSync(path.join(dir, 'pidfile'), '1');
    await log.waitFor('pidfile', 'changed');
    fs.unlinkSync(path.join(dir, 'pidfile'));
    await log.waitFor('pidfile', 'removed');
  });

  it('reports a rename inside the directory as the old name removed and the new one changed', async () => {
    const { dir, log } = watched();
    fs.writeFileSync(path.join(dir, 'a.tmp'), 'x');
    fs.renameSync(path.join(dir, 'a.tmp'), path.join(dir, 'a'));
    await log.waitFor('a.tmp', 'removed');
    await log.waitFor('a', 'changed');
  });

  it('reports an entry moved in as changed and one moved out as removed', async () => {
    const { dir, log } = watched();
    const elsewhere = tempDir();
    dirs.push(elsewhere);
    fs.writeFileSync(path.join(elsewhere, 'in'), 'x');
    fs.mkdirSync(path.join(dir, 'out'));
    fs.renameSync(path.join(elsewhere, 'in'), path.join(dir, 'in'));
    fs.renameSync(path.join(dir, 'out'), path.join(elsewhere, 'out'));
    await log.waitFor('in', 'changed');
    await log.waitFor('out', 'removed');
  });

  it('reports an attribute change as changed', async () => {
    const { dir, log } = watched();
    fs.writeFileSync(path.join(dir, 'f'), 'x');
    await log.waitFor('f', 'changed');
    // A marker in the other watched directory: every event of the write has arrived before it.
    const other = watched();
    fs.writeFileSync(path.join(other.dir, 'marker'), 'x');
    await other.log.waitFor('marker', 'changed');
    const before = log.events.length;
    fs.chmodSync(path.join(dir, 'f'), 0o600);
    await log.waitFor('f', 'changed', before);
  });

  it('does not look into subdirectories', async () => {
    const { dir, log } = watched();
    fs.mkdirSync(path.join(dir, 'sub'));
    await log.waitFor('sub', 'changed');
    fs.writeFileSync(path.join(dir, 'sub', 'deep'), 'x');
    fs.writeFileSync(path.join(dir, 'marker'), 'x');
    await log.waitFor('marker', 'changed');
    expect(log.events.map((e) => e.name)).not.toContain('deep');
  });

  it('reports the directory deleted as gone, once, and nothing after', async () => {
    const { dir, log } = watched();
    const other = watched();
    fs.writeFileSync(path.join(dir, 'f'), 'x');
    await log.waitFor('f', 'changed');
    fs.rmSync(dir, { recursive: true });
    await log.waitFor('', 'gone');
    // A new directory at the same path is another directory: nothing from it.
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'late'), 'x');
    fs.writeFileSync(path.join(other.dir, 'marker'), 'x');
    await other.log.waitFor('marker', 'changed');
    expect(log.events.filter((e) => e.kind === 'gone')).toHaveLength(1);
    expect(log.events.map((e) => e.name)).not.toContain('late');
    expect(log.events[log.events.length - 1]).toEqual({ name: '', kind: 'gone' });
  });

  it('reports the directory deleted and made again at once as gone, even when the new one has the same inode number', async () => {
    const other = watched();
    // Deleted and made again before the watcher has a turn; fresh directories until the
    // kernel gives the old inode number back (ext4 mostly does at once, tmpfs does not).
    let target = watched();
    for (let attempt = 0; attempt < 20; attempt++) {
      const was = fs.statSync(target.dir).ino;
      fs.rmdirSync(target.dir);
      fs.mkdirSync(target.dir);
      if (fs.statSync(target.dir).ino === was) break;
      target.stop();
      target = watched();
    }
    fs.writeFileSync(path.join(target.dir, 'late'), 'x');
    fs.writeFileSync(path.join(other.dir, 'marker'), 'x');
    await other.log.waitFor('marker', 'changed');
    expect(target.log.events).toEqual([{ name: '', kind: 'gone' }]);
  });

  it('reports as gone a directory watched through a path ending in a slash', async () => {
    const other = watched();
    const dir = tempDir();
    dirs.push(dir);
    const log = new EventLog();
    stops.push(watcher.watch(`${dir}/`, log.listener));
    fs.writeFileSync(path.join(dir, 'f'), 'x');
    await log.waitFor('f', 'changed');
    fs.rmSync(dir, { recursive: true });
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(other.dir, 'marker'), 'x');
    await other.log.waitFor('marker', 'changed');
    expect(log.events[log.events.length - 1]).toEqual({ name: '', kind: 'gone' });
  });

  it('reports the directory moved away as gone', async () => {
    const { dir, log } = watched();
    fs.renameSync(dir, `${dir}.moved`);
    dirs.push(`${dir}.moved`);
    await log.waitFor('', 'gone');
  });

  it('lets two listeners watch one directory, each stopping alone', async () => {
    const { dir, log, stop } = watched();
    const second = new EventLog();
    const stopSecond = watcher.watch(dir, second.listener);
    stops.push(stopSecond);
    fs.writeFileSync(path.join(dir, 'both'), 'x');
    await log.waitFor('both', 'changed');
    await second.waitFor('both', 'changed');
    stop();
    stop();
    fs.writeFileSync(path.join(dir, 'second-only'), 'x');
    await second.waitFor('second-only', 'changed');
    // Stopped: the first listener saw nothing after, though the second did.
    expect(log.events.map((e) => e.name)).not.toContain('second-only');
  });

  it('delivers nothing once the watch is stopped', async () => {
    const { dir, log, stop } = watched();
    const other = watched();
    stop();
    fs.writeFileSync(path.join(dir, 'after-stop'), 'x');
    fs.writeFileSync(path.join(other.dir, 'marker'), 'x');
    await other.log.waitFor('marker', 'changed');
    expect(log.events).toEqual([]);
  });

  it('throws a CrootError with the errno as status for a directory that does not exist, or a file', () => {
    const dir = tempDir();
    dirs.push(dir);
    fs.writeFileSync(path.join(dir, 'file'), 'x');
    const attempt = (p: string): unknown => {
      try {
        watcher.watch(p, () => undefined);
      } catch (err) {
        return err;
      }
      return undefined;
    };
    const missing = attempt(path.join(dir, 'missing'));
    expect(missing).toBeInstanceOf(CrootError);
    expect(missing).toMatchObject({ code: 'ERR_SYSTEM', status: -Errno.ENOENT });
    expect((missing as CrootError).message).toContain(path.join(dir, 'missing'));
    const file = attempt(path.join(dir, 'file'));
    expect(file).toBeInstanceOf(CrootError);
    expect(file).toMatchObject({ code: 'ERR_SYSTEM', status: -20 /* ENOTDIR */ });
  });
}
