import { appendFileSync, chmodSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describeDirectoryWatcherContract, EventLog, tempDir } from '../../test/support/directory-watcher-cases.js';
import { NodeDirectoryWatcher } from './node-directory-watcher.js';

describe(NodeDirectoryWatcher, () => {
  describeDirectoryWatcherContract(() => new NodeDirectoryWatcher());

  it('reports every write to a file as changed, not once when it is closed', async () => {
    const dir = tempDir();
    const log = new EventLog();
    const stop = new NodeDirectoryWatcher().watch(dir, log.listener);
    try {
      writeFileSync(join(dir, 'state'), 'a');
      await log.waitFor('state', 'changed');
      const after = log.events.length;
      appendFileSync(join(dir, 'state'), 'b');
      await log.waitFor('state', 'changed', after);
      expect(log.events.filter((e) => e.name === 'state' && e.kind === 'changed').length).toBeGreaterThanOrEqual(2);
      expect(log.events.every((e) => e.name === 'state')).toBe(true);
    } finally {
      stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("ends the watch as gone at a change of the directory's own attributes, which fs.watch names like its deletion", async () => {
    const dir = tempDir();
    const log = new EventLog();
    const stop = new NodeDirectoryWatcher().watch(dir, log.listener);
    try {
      chmodSync(dir, 0o750);
      await log.waitFor('', 'gone');
      expect(log.events).toEqual([{ name: '', kind: 'gone' }]);
    } finally {
      stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports the writes to an entry named like the directory as that entry changed', async () => {
    const dir = tempDir();
    const self = join(dir, basename(dir));
    writeFileSync(self, 'a');
    const log = new EventLog();
    const stop = new NodeDirectoryWatcher().watch(dir, log.listener);
    try {
      appendFileSync(self, 'b');
      writeFileSync(join(dir, 'marker'), 'x');
      await log.waitFor('marker', 'changed');
      expect(log.events[0]).toEqual({ name: basename(dir), kind: 'changed' });
    } finally {
      stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports the writes to a file deleted before the watcher had a turn by its name, never as the directory', async () => {
    const dir = tempDir();
    const log = new EventLog();
    const stop = new NodeDirectoryWatcher().watch(dir, log.listener);
    try {
      writeFileSync(join(dir, 'brief'), 'x');
      unlinkSync(join(dir, 'brief'));
      writeFileSync(join(dir, 'marker'), 'x');
      await log.waitFor('marker', 'changed');
      const brief = log.events.filter((e) => e.name !== 'marker');
      expect(brief).toContainEqual({ name: 'brief', kind: 'changed' });
      expect(brief.every((e) => e.name === 'brief')).toBe(true);
    } finally {
      stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('never keeps the process running by itself: its handle is not counted by the event loop', () => {
    const dir = tempDir();
    const handles = (): number => process.getActiveResourcesInfo().filter((r) => r === 'FSEventWrap').length;
    const before = handles();
    const stop = new NodeDirectoryWatcher().watch(dir, () => undefined);
    try {
      expect(handles()).toBe(before);
    } finally {
      stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
