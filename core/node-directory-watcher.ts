/**
 * DirectoryWatcher on Node's fs.watch, for when the native module (and its
 * inotify watcher) is not loaded. fs.watch does not say what happened to an
 * entry, so every event is reported as `changed` and the watcher looks at
 * the entry to tell a removal.
 */
import { existsSync, watch } from 'node:fs';
import { join } from 'node:path';
import { CrootError, statusOf } from './errors.js';
import type { DirectoryEvent, DirectoryWatcher } from './host-services.js';

export class NodeDirectoryWatcher implements DirectoryWatcher {
  watch(dir: string, onEvent: (event: DirectoryEvent) => void): () => void {
    let watcher;
    try {
      watcher = watch(dir, { persistent: false }, (_type, name) => {
        if (name === null) {
          onEvent({ name: '', kind: 'overflow' });
          return;
        }
        const entry = name.toString();
        onEvent({ name: entry, kind: existsSync(join(dir, entry)) ? 'changed' : 'removed' });
      });
    } catch (err) {
      throw new CrootError('ERR_SYSTEM', `cannot watch ${dir}: ${(err as Error).message}`, { cause: err, status: statusOf(err) });
    }
    watcher.on('error', () => {
      watcher.close();
      onEvent({ name: '', kind: 'gone' });
    });
    return () => watcher.close();
  }
}
