/**
 * Full, compacting garbage collections, which crootd runs once its
 * start-up work is done (engines loaded, init processes anchored). Loading
 * thousands of containers promotes the garbage of reading them into V8's old
 * generation, where it stays until a full collection: V8's memory reducer
 * runs one only after some seconds of low allocation, or later, so the
 * memory crootd holds once started would depend on timing. Collected at
 * once, it is what the index keeps.
 *
 * Node has no API for a collection without `--expose-gc` on its command
 * line, which crootd does not control (bin/crootd, pmcd's agent line, a
 * unit file). As Jest's leak detector does, the flag is set at run time and
 * `gc` taken from a new context, where V8 installs it; nothing else sees it.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Runs two full collections: the first finds what is live and frees the
 * rest; the second moves what is live off the pages the first left sparse
 * (V8 picks them by what the last marking found), and V8 gives those pages
 * back to the system. False when this Node gives no way to.
 */
export function compactHeap(): boolean {
  setFlagsFromString('--expose-gc');
  const gc: unknown = runInNewContext('gc');
  if (typeof gc !== 'function') return false;
  (gc as () => void)();
  (gc as () => void)();
  return true;
}
