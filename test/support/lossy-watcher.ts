/**
 * A DirectoryWatcher for engine unit tests that can lose events the way a
 * full inotify queue does (IN_Q_OVERFLOW), which a test cannot provoke on
 * demand: a real NodeDirectoryWatcher underneath; while `losing` is set its
 * events are dropped, and `overflow()` then tells every watch so, as the
 * kernel would.
 */
import type { DirectoryEvent, DirectoryWatcher } from '../../core/host/host-services.js';
import { NodeDirectoryWatcher } from '../../core/host/node-directory-watcher.js';

export class LossyWatcher implements DirectoryWatcher {
  /** While true, events are lost. */
  losing = false;
  /** The events lost, by folder: a test waits for a change's event to be lost before it reports the overflow. */
  readonly lost: { readonly dir: string; readonly event: DirectoryEvent }[] = [];
  private readonly inner = new NodeDirectoryWatcher();
  private readonly handlers = new Map<string, Set<(event: DirectoryEvent) => void>>();

  watch(dir: string, onEvent: (event: DirectoryEvent) => void): () => void {
    const end = this.inner.watch(dir, (event) => {
      if (!this.losing) onEvent(event);
      else this.lost.push({ dir, event });
    });
    let set = this.handlers.get(dir);
    if (set === undefined) this.handlers.set(dir, (set = new Set()));
    set.add(onEvent);
    return () => {
      this.handlers.get(dir)?.delete(onEvent);
      end();
    };
  }

  /** Stops losing events and reports the overflow to every watch of `dir`. */
  overflow(dir: string): void {
    this.losing = false;
    for (const onEvent of this.handlers.get(dir) ?? []) onEvent({ name: '', kind: 'overflow' });
  }
}
