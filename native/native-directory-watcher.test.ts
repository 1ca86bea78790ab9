import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeDirectoryWatcherContract, EventLog, tempDir } from '../test/support/directory-watcher-cases.js';
import { fdsOpenedSince, openFds } from '../test/support/sandbox.js';
import type { CrootNative } from './croot-native.js';
import { loadNative } from './load-native.js';
import { NativeDirectoryWatcher } from './native-directory-watcher.js';

const native: CrootNative = loadNative();

/** The kernel's limit on one inotify instance's queue. */
function maxQueuedEvents(): number {
  return Number(fs.readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8').trim());
}

describe(NativeDirectoryWatcher, () => {
  describeDirectoryWatcherContract(
    () => new NativeDirectoryWatcher(native),
    (watcher) => (watcher as NativeDirectoryWatcher).close(),
  );

  describe('inotify', () => {
    let watcher: NativeDirectoryWatcher;
    const dirs: string[] = [];

    beforeEach(() => {
      watcher = new NativeDirectoryWatcher(native);
    });

    afterEach(() => {
      watcher.close();
      for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
    });

    function dir(): string {
      const d = tempDir();
      dirs.push(d);
      return d;
    }

    it('uses one close-on-exec inotify fd for every watch, and closes it without leaking', async () => {
      const before = openFds();
      const logs = [new EventLog(), new EventLog(), new EventLog()];
      const watchedDirs = logs.map((log) => {
        const d = dir();
        watcher.watch(d, log.listener);
        return d;
      });
      const opened = fdsOpenedSince(before);
      expect(opened).toHaveLength(1);
      expect(opened[0]).toMatch(/anon_inode:inotify$/);
      const fd = Number(opened[0]!.split(' ')[0]);
      expect(native.getFdFlags(fd) & native.FD_CLOEXEC).toBe(native.FD_CLOEXEC);
      expect(watcher.watchedCount()).toBe(3);
      for (const [i, d] of watchedDirs.entries()) fs.writeFileSync(path.join(d, `f${i}`), 'x');
      for (const [i, log] of logs.entries()) await log.waitFor(`f${i}`, 'changed');
      watcher.close();
      expect(fdsOpenedSince(before)).toEqual([]);
    });

    it('reports a write once it is closed (IN_CLOSE_WRITE), and the directory itself by the name ""', async () => {
      const d = dir();
      const fd = fs.openSync(path.join(d, 'f'), 'w');
      const log = new EventLog();
      watcher.watch(d, log.listener);
      fs.writeSync(fd, 'partial');
      fs.closeSync(fd);
      await log.waitFor('f', 'changed');
      fs.chmodSync(d, 0o700);
      await log.waitFor('', 'changed');
    });

    it('ends the watch for the kernel once the directory is gone', async () => {
      const d = dir();
      const log = new EventLog();
      watcher.watch(d, log.listener);
      expect(watcher.watchedCount()).toBe(1);
      fs.rmdirSync(d);
      await log.waitFor('', 'gone');
      expect(watcher.watchedCount()).toBe(0);
    });

    it('tells every watcher of the process when events were lost (IN_Q_OVERFLOW)', async () => {
      const flooded = dir();
      const quiet = dir();
      const floodedLog = new EventLog();
      const quietLog = new EventLog();
      watcher.watch(flooded, floodedLog.listener);
      watcher.watch(quiet, quietLog.listener);
      // Each new file is IN_CREATE then IN_CLOSE_WRITE: more events than the queue holds, all before the loop reads any.
      const files = Math.ceil(maxQueuedEvents() / 2) + 100;
      for (let i = 0; i < files; i++) fs.writeFileSync(path.join(flooded, String(i)), '');
      await floodedLog.waitFor('', 'overflow');
      await quietLog.waitFor('', 'overflow');
      expect(quietLog.events).toEqual([{ name: '', kind: 'overflow' }]);
      // The watch goes on after an overflow.
      fs.writeFileSync(path.join(quiet, 'after'), 'x');
      await quietLog.waitFor('after', 'changed');
    });
  });
});
