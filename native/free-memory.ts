/**
 * Giving back what malloc holds free: crootd does it once its start-up work
 * is done, when the buffers of reading thousands of state files, freed, are
 * scattered over the malloc arenas of the threads that read them.
 */
import type { CrootNative } from './croot-native.js';
import { loadNative } from './load-native.js';

/** malloc_trim(0): true when some memory was given back. */
export function releaseFreeMemory(native: CrootNative = loadNative()): boolean {
  return native.releaseFreeMemory();
}
