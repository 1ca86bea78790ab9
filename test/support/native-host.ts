/**
 * The native module's bindings (SO_PEERCRED, SCM_RIGHTS, the namespace
 * thread, the spawner) for core's own tests: core's sources and tests never
 * import native/ themselves (.dependency-cruiser.cjs), but a test of the
 * server needs the real peer credentials the kernel reports, not a stand-in,
 * and a test of a watch needs the inotify watcher crootd runs with.
 */
export { nativeModule } from '../../native/native-module.js';
/** setrlimit in this process (no fd needed): gives back fd room a test took away. */
export { raiseFdLimit } from '../../native/fd-limit.js';
export { NativeDirectoryWatcher } from '../../native/native-directory-watcher.js';
export { loadNative } from '../../native/load-native.js';
