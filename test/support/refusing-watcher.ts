/**
 * A DirectoryWatcher for engine unit tests (a real NodeDirectoryWatcher
 * underneath) whose kernel refuses some folders, as inotify does at its watch
 * limit (ENOSPC), which a test cannot reach on a shared machine; the error as
 * NodeDirectoryWatcher gives it.
 *
 * It can also claim what the native inotify watcher claims, that it reports
 * every lost event (`reportsLostEvents`), while staying deaf to the folders
 * in `deaf`: a change there is then one the watcher vouched for and lost,
 * which shows what a safety net leaves alone.
 */
import type { DirectoryEvent, DirectoryWatcher } from '../../core/host/host-services.js';
import { NodeDirectoryWatcher } from '../../core/host/node-directory-watcher.js';
import { systemError } from '../../core/errors/system-error.js';

export type RefusalCode = 'ENOSPC' | 'ENOENT';

const REFUSALS: Readonly<Record<RefusalCode, { text: string; errno: number }>> = {
  ENOSPC: { text: 'System limit for number of file watchers reached', errno: -28 },
  ENOENT: { text: 'no such file or directory', errno: -2 },
};

export class RefusingWatcher implements DirectoryWatcher {
  readonly reportsLostEvents: boolean;
  /** Folders whose events are dropped. */
  readonly deaf = new Set<string>();
  private readonly inner = new NodeDirectoryWatcher();

  constructor(
    /** Folders refused, with the errno the kernel gives. */
    readonly refused: Map<string, RefusalCode> = new Map(),
    options: { readonly reportsLostEvents?: boolean } = {},
  ) {
    this.reportsLostEvents = options.reportsLostEvents ?? false;
  }

  watch(dir: string, onEvent: (event: DirectoryEvent) => void): () => void {
    const code = this.refused.get(dir);
    if (code !== undefined) {
      const { text, errno } = REFUSALS[code];
      throw systemError(Object.assign(new Error(`${code}: ${text}, watch '${dir}'`), { code, errno, syscall: 'watch' }), `watching ${dir}`);
    }
    return this.inner.watch(dir, (event) => {
      if (!this.deaf.has(dir)) onEvent(event);
    });
  }
}
