/** File descriptors croot owns and must not leak. */
import { closeSync } from 'node:fs';

/** Closes every fd, ignoring ones already closed: for cleanup paths that must not throw. */
export function closeFds(fds: readonly number[]): void {
  for (const fd of fds) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  }
}
