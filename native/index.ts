/// <reference types="node" preserve="true" />
/** `croot/native`: the addon, its loader and the module that binds it. */
export { CrootNative, crootNativeFunctions, isNativeError } from './croot-native.js';
export type {
  FdLimit,
  FdWatcher,
  FdWatcherConstructor,
  InotifyEvent,
  InotifyMasks,
  NamespaceThreadInfo,
  NativeError,
  NativePeerCredentials,
  PasswdEntry,
  ReceivedMessage,
  SpawnStdio,
  WaitResult,
} from './croot-native.js';
export { raiseFdLimit } from './fd-limit.js';
export { reduceHeap, releaseFreeMemory } from './free-memory.js';
export { findPackageRoot, loadNative, loadNativeUncached, nativeCandidates } from './load-native.js';
export type { LoadNativeOptions } from './load-native.js';
export { NativeFdSender, NativeNamespaceHostnameReader, NativePeerCredentialReader, translateNativeError } from './native-host-services.js';
export { NativeDirectoryWatcher } from './native-directory-watcher.js';
export { nativeModule } from './native-module.js';
export { NativeProcessAnchor } from './native-process-anchor.js';
export { NativeProcessSpawner } from './native-process-spawner.js';
export { NativeUserDatabase } from './native-user-database.js';
export { NativeTransport, nativeTransport } from './native-transport.js';
