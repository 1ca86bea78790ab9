/**
 * A DirectoryWatcher for engine unit tests: a real NodeDirectoryWatcher
 * underneath, which also remembers how many watches are open on each folder
 * now, so a test can check that an engine ends the watches it no longer needs
 * (and never opens the same one twice).
 */
import type { DirectoryEvent, DirectoryWatcher } from '../../core/host/host-services.js';
import { NodeDirectoryWatcher } from '../../core/host/node-directory-watcher.js';

export class CountingWatcher implements DirectoryWatcher {
  /** Open watches by folder. */
  readonly active = new Map<string, number>();
  /** Watches placed since it was made (one ended and placed again counts again). */
  placed = 0;
  private readonly inner = new NodeDirectoryWatcher();

  watch(dir: string, onEvent: (event: DirectoryEvent) => void): () => void {
    let ended = false;
    /** Counted once per watch, whether it ends by its function or because the folder went. */
    const over = (): void => {
      if (ended) return;
      ended = true;
      this.drop(dir);
    };
    const end = this.inner.watch(dir, (event) => {
      if (event.kind === 'gone') over();
      onEvent(event);
    });
    this.active.set(dir, (this.active.get(dir) ?? 0) + 1);
    this.placed++;
    return () => {
      over();
      end();
    };
  }

  private drop(dir: string): void {
    const n = (this.active.get(dir) ?? 0) - 1;
    if (n > 0) this.active.set(dir, n);
    else this.active.delete(dir);
  }
}
