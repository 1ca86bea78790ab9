import { describeDirectoryWatcherContract } from '../../test/support/directory-watcher-cases.js';
import { NodeDirectoryWatcher } from './node-directory-watcher.js';

describe(NodeDirectoryWatcher, () => {
  describeDirectoryWatcherContract(() => new NodeDirectoryWatcher());
});
