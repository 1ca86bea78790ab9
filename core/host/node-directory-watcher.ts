/**
 * The DirectoryWatcher where the native module is not loaded: Node's
 * fs.watch (inotify through libuv on Linux), mapped onto the same events as
 * far as fs.watch allows:
 *
 * - fs.watch says only 'rename' or 'change': a 'rename' whose entry exists
 *   afterwards is `changed`, one whose entry is gone is `removed`;
 * - a write reports `changed` at each write (IN_MODIFY), not once at close;
 * - an event without a file name is `overflow`; on Linux libuv never sends
 *   one, and drops inotify's IN_Q_OVERFLOW: events lost are not reported;
 * - libuv names an event about the directory itself by what follows the
 *   last '/' of the path watched, as an entry of that name would be named,
 *   and always as a 'rename' (inotify flags them IN_ISDIR): its deletion,
 *   move or unmount, and also a change of its own attributes. Any
 *   'rename' of that name ends the watch as `gone`: the path may already name
 *   a new directory with the old inode number (ext4 gives freed numbers back
 *   at once), so nothing found there afterwards can tell. A chmod, chown or
 *   utimes of the directory, or an entry named like it, thus costs the caller
 *   a re-read; a directory deleted and made again is never taken for the old.
 */
import { opendirSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { systemError } from '../errors/system-error.js';
import { entryExists } from './entry-exists.js';
import type { DirectoryEvent, DirectoryWatcher } from './host-services.js';


export class NodeDirectoryWatcher implements DirectoryWatcher {
  /** libuv drops IN_Q_OVERFLOW (above). */
  readonly reportsLostEvents = false;

  watch(dir: string, onEvent: (event: DirectoryEvent) => void): () => void {
    let watcher: FSWatcher;
    try {
      // fs.watch would watch a file as well: opening it as a directory gets the kernel's ENOTDIR (or ENOENT...) first.
      opendirSync(dir).closeSync();
      // Not persistent: watching never keeps the process running by itself (as the native watcher).
      watcher = watch(dir, { persistent: false });
    } catch (err) {
      throw systemError(err, `watching ${dir}`);
    }
    // libuv's name for the directory itself ('' for a path ending in '/').
    const self = dir.slice(dir.lastIndexOf('/') + 1);
    // Once closed (closing again does nothing), an FSWatcher emits nothing more, not even events read with the last one.
    const gone = (): void => {
      watcher.close();
      onEvent({ name: '', kind: 'gone' });
    };
    watcher.on('error', gone);
    watcher.on('change', (eventType: string, filename: string | Buffer | null) => {
      if (filename === null) {
        onEvent({ name: '', kind: 'overflow' });
        return;
      }
      const name = filename.toString();
      if (eventType === 'rename' && name === self) {
        gone();
        return;
      }
      onEvent({ name, kind: eventType === 'change' || entryExists(join(dir, name)) ? 'changed' : 'removed' });
    });
    return () => watcher.close();
  }
}
