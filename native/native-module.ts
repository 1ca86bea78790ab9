/**
 * The native feature module: binds the addon (CrootNative, loaded lazily on
 * first use), the host services the core asks for (connections and the
 * replies they give again among them), and the user database
 * (NSS through getpwnam_r/getpwuid_r).
 */
import { ContainerModule } from 'inversify';
import {
  ConnectionSocketFactory,
  DirectoryWatcher,
  FdSender,
  NamespaceHostnameReader,
  PeerCredentialReader,
  ProcessAnchor,
  ProcessSpawner,
  ReplyCache,
} from '../core/host/host-services.js';
import { UserDatabase } from '../core/host/user-database.js';
import { CrootNative } from './croot-native.js';
import { loadNative } from './load-native.js';
import { NativeConnectionSocketFactory } from './native-connection-socket.js';
import { NativeDirectoryWatcher } from './native-directory-watcher.js';
import { NativeFdSender, NativeNamespaceHostnameReader, NativePeerCredentialReader } from './native-host-services.js';
import { NativeProcessAnchor } from './native-process-anchor.js';
import { NativeProcessSpawner } from './native-process-spawner.js';
import { NativeReplyCache } from './native-reply-cache.js';
import { NativeUserDatabase } from './native-user-database.js';

export const nativeModule = new ContainerModule(({ bind }) => {
  bind<CrootNative>(CrootNative).toDynamicValue(() => loadNative()).inSingletonScope();
  bind<NamespaceHostnameReader>(NamespaceHostnameReader).to(NativeNamespaceHostnameReader).inSingletonScope();
  bind<PeerCredentialReader>(PeerCredentialReader).to(NativePeerCredentialReader).inSingletonScope();
  bind<FdSender>(FdSender).to(NativeFdSender).inSingletonScope();
  bind<ConnectionSocketFactory>(ConnectionSocketFactory).to(NativeConnectionSocketFactory).inSingletonScope();
  // One cache, which the handler fills and every adopted connection answers from.
  bind(NativeReplyCache).toSelf().inSingletonScope();
  bind<ReplyCache>(ReplyCache).toService(NativeReplyCache);
  bind<ProcessSpawner>(ProcessSpawner).to(NativeProcessSpawner).inSingletonScope();
  bind<ProcessAnchor>(ProcessAnchor).to(NativeProcessAnchor).inSingletonScope();
  bind<DirectoryWatcher>(DirectoryWatcher).to(NativeDirectoryWatcher).inSingletonScope();
  bind<UserDatabase>(UserDatabase).to(NativeUserDatabase).inSingletonScope();
});
