/**
 * The DirectoryWatcher where the native module is not loaded: Node's
 * fs.watch (inotify through libuv on Linux), mapped onto the same events as
 * far as fs.watch allows:
 *
 * - fs.watch says only 'rename' or 'change': a 'rename' whose entry exists
 *   afterwards is `changed`, one whose entry is gone is `removed`;
 * - a write reports `changed` at each write (IN_MODIFY), not once at close;
 * - an event without a file name (libuv could not tell) is `overflow`;
 * - libuv names an event about the directory itself (inotify's
 *   IN_DELETE_SELF, IN_MOVE_SELF, IN_IGNORED, IN_UNMOUNT, IN_ATTRIB) by the
 *   last part of the path watched, as an entry of that name would be named.
 *   A 'rename' of that name ends the watch as `gone`: the directory may have
 *   been deleted or moved, and its path may already name a new directory
 *   with the same inode number (ext4 gives freed numbers back), so nothing
 *   found at the path afterwards can tell. An entry named like its directory
 *   thus ends the watch too, which costs the caller a re-read. A 'change' of
 *   that name with no such entry is about the directory: name ''.
 */
import { lstatSync, statSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { systemError } from '../errors/system-error.js';
import type { DirectoryEvent, DirectoryWatcher } from './host-services.js';

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
    let watcher: FSWatcher;
    try {
      if (!statSync(dir).isDirectory()) {
        throw Object.assign(new Error(`ENOTDIR: not a directory, watch '${dir}'`), { code: 'ENOTDIR', errno: -20, syscall: 'watch' });
      }
      // Not persistent: watching never keeps the process running by itself (as the native watcher).
      watcher = watch(dir, { persistent: false });
    } catch (err) {
      throw systemError(err, `watching ${dir}`);
    }
    // libuv's name for the directory itself: what follows the path's last '/' ('' for a path ending in '/').
    const self = dir.slice(dir.lastIndexOf('/') + 1);
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
      const name = filename.toString();
      if (eventType === 'rename' && name === self) {
        gone();
        return;
      }
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
