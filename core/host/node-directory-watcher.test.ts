import { appendFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
});
