/**
 * Raising the fd limit at start: crootd holds a pidfd per running container
 * (10 000 containers, 10 000 fds), so it takes every fd its hard limit allows.
 */
import type { CrootNative, FdLimit } from './croot-native.js';
import { loadNative } from './load-native.js';
import { translateNativeError } from './native-host-services.js';

/**
 * Sets the soft RLIMIT_NOFILE to the hard one when it is lower, and returns
 * the limits in force afterwards. Node itself raises the soft limit when it
 * starts, so this mostly confirms it; it matters when something lowered the
 * limit since. Throws a CrootError when setrlimit fails.
 */
export function raiseFdLimit(native: CrootNative = loadNative()): FdLimit {
  try {
    return native.raiseFdLimit();
  } catch (err) {
    throw translateNativeError(err, 'raising the fd limit to the hard limit');
  }
}
