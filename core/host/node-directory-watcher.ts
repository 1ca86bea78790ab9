/**
 * The DirectoryWatcher where the native module is not loaded: Node's
 * fs.watch (inotify through libuv on Linux), mapped onto the same events as
 * far as fs.watch allows:
 *
 * - fs.watch says only 'rename' or 'change': a 'rename' whose entry exists
 *   afterwards is `changed`, one whose entry is gone is `removed`;
 * - a write reports `changed` at each write (IN_MODIFY), not once at close;
 * - the directory itself deleted, moved or replaced is seen by checking that
 *   its path still names the same inode after each 'rename': `gone`;
 * - an event without a file name (libuv could not tell) is `overflow`;
 * - libuv names an event about the directory itself by the directory's own
 *   base name: a 'change' of that name with no such entry becomes ''.
 */
import { lstatSync, statSync, watch, type FSWatcher, type Stats } from 'node:fs';
import { basename, join } from 'node:path';
import { systemError } from '../errors/system-error.js';
import type { DirectoryEvent, DirectoryWatcher } from './host-services.js';

function sameDirectory(dir: string, was: Stats): boolean {
  try {
    const now = statSync(dir);
    return now.ino === was.ino && now.dev === was.dev;
  } catch {
    return false;
  }
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

export class NodeDirectoryWatcher implements DirectoryWatcher {
  watch(dir: string, onEvent: (event: DirectoryEvent) => void): () => void {
    let was: Stats;
    let watcher: FSWatcher;
    try {
      was = statSync(dir);
      if (!was.isDirectory()) {
        throw Object.assign(new Error(`ENOTDIR: not a directory, watch '${dir}'`), { code: 'ENOTDIR', errno: -20, syscall: 'watch' });
      }
      // Not persistent: watching never keeps the process running by itself (as the native watcher).
      watcher = watch(dir, { persistent: false });
    } catch (err) {
      throw systemError(err, `watching ${dir}`);
    }
    const self = basename(dir);
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      watcher.close();
    };
    const gone = (): void => {
      if (ended) return;
      end();
      onEvent({ name: '', kind: 'gone' });
    };
    watcher.on('error', gone);
    watcher.on('change', (eventType: string, filename: string | Buffer | null) => {
      if (ended) return;
      if (filename === null) {
        onEvent({ name: '', kind: 'overflow' });
        return;
      }
      if (eventType === 'rename' && !sameDirectory(dir, was)) {
        gone();
        return;
      }
      const name = filename.toString();
      const present = exists(join(dir, name));
      if (eventType === 'change') {
        onEvent({ name: !present && name === self ? '' : name, kind: 'changed' });
      } else {
        onEvent({ name, kind: present ? 'changed' : 'removed' });
      }
    });
    return end;
  }
}
