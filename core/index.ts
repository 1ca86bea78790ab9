/// <reference types="node" preserve="true" />
/** croot's public API: the core (contracts, matching, protocol, server, client). */
export { CrootError, ErrorCodes, Errno, PM_ERR_GENERIC, PM_ERR_IPC, PM_ERR_NOCONTAINER, isCrootError, statusOf } from './errors.js';
export type { CrootErrorOptions, ErrorCode } from './errors.js';
export { errorText, knownStatuses } from './status-text.js';
export { EngineContribution } from './engine.js';
export type { ContainerRecord, ContainerSink, EngineStatus, KubernetesNames } from './engine.js';
export { EngineRegistry, EngineRegistryOptions, DefaultEngineRegistry } from './engine-registry.js';
export type { IndexedContainer, IndexChange, Liveness, RegistryEvent } from './engine-registry.js';
export { NameMatcher, listSearch, isDigestId } from './name-matcher.js';
export type { ContainerReference, ContainerSearch } from './name-matcher.js';
export { NodeDirectoryWatcher } from './node-directory-watcher.js';
export { ProcProcessAnchor } from './proc-process-anchor.js';
export {
  ContainerHostnameResolver,
  ContainerProcessIdResolver,
  ContainerCGroupResolver,
  RunningContainerLocator,
  DefaultContainerResolver,
} from './resolvers.js';
export type { ResolvedAnswer, MaybePromise } from './resolvers.js';
export { NamespaceHostnameReader, PeerCredentialReader, FdSender, ProcessAnchor, DirectoryWatcher } from './host-services.js';
export type { PeerCredentials, ProcessHandle, ProcessAnchorMode, DirectoryEvent } from './host-services.js';
export { CrootConfig, DEFAULT_SOCKET_PATH, defaultConfig, defaultSocketPath } from './config.js';
export type { StaticContainerConfig } from './config.js';
export { createCrootContainer, coreModule, loadPluginModule, loadPluginFrom, readPluginManifest } from './create-container.js';
export type { CreateCrootContainerOptions, PluginManifest } from './create-container.js';
export { ContainerView, RegistryContainerView, CONTAINER_FIELDS } from './container-view.js';
export type { ContainerField, ContainerWatch } from './container-view.js';
export {
  ExtensionPduType,
  SCHEMA_VERSION,
  encodeExtensionRequest,
  decodeExtensionRequest,
  encodeExtensionReply,
  encodeExtensionError,
  ExtensionReplyAssembler,
  sortContainers,
  sortEngines,
} from './croot-extension.js';
export type {
  CrootDocument,
  ContainerReport,
  ContainerState,
  EngineReport,
  ServerReport,
  ErrorReport,
  ExtensionRequest,
  AnchorReport,
  EventReport,
  EventAction,
} from './croot-extension.js';
export { ExtensionHandler, ExtensionHandlerOptions, EVENT_BACKLOG_BYTES } from './extension-handler.js';
export type { ServerFacts, ExtensionReply, ReplyStream, StreamOutlet } from './extension-handler.js';
export { askCrootd, subscribeCrootd } from './extension-client.js';
export type { ExtensionCallOptions, CrootdEventStream } from './extension-client.js';
export { UserDatabase, GetentUserDatabase, parsePasswdLine } from './user-database.js';
export type { UserEntry } from './user-database.js';
export { Logger, StreamLogger, SilentLogger } from './logger.js';
export type { LogLevel } from './logger.js';
export { RateLimitedLogger } from './rate-limited-logger.js';
export type { RateLimitOptions } from './rate-limited-logger.js';
export { ProcessService } from './process-service.js';
export type { ProcessStartRequest, StartedProcess, ProcessStopResult } from './process-service.js';
export { RootServer, RootServerOptions } from './root-server.js';
export type { RootServerStats } from './root-server.js';
export { RootRequestHandler } from './root-request-handler.js';
export type { Reply } from './root-request-handler.js';
export type { ConnectionLimitOptions } from './connection-limits.js';
export * as protocol from './protocol.js';
export { chooseCgroupPath, parseCgroupFile, readCgroupName, readCgroupNameSync, readProcessStat, readStartTime } from './proc.js';
export type { ProcessStat } from './proc.js';
export { ProcProcessHandle } from './proc-process-handle.js';
export type { ProcProcessHandleOptions } from './proc-process-handle.js';
export { RootClient, remoteError } from './root-client.js';
export type { RootTransport, RootTransportFactory, RootClientOptions, CallOptions, ContainerAnswer, StartedRootProcess, RootProcessStatus, ReceivedPdu } from './root-client.js';
export { NodeSocketTransport, nodeSocketTransport } from './node-socket-transport.js';
export {
  pmdaRootConnect,
  pmdaRootShutdown,
  pmdaRootContainerHostName,
  pmdaRootContainerProcessID,
  pmdaRootContainerCGroupName,
  pmdaRootProcessStart,
  pmdaRootProcessWait,
  pmdaRootProcessTerminate,
} from './pmda-root.js';
export type { PmdaRootConnectOptions, ProcessStartOut } from './pmda-root.js';
export { ProcessManager, ProcessManagerOptions, processServiceModule, SAFE_PATH } from './process-manager.js';
export { splitCommandLine, joinCommandLine } from './command-line.js';
export { PmcdConfAgents, parsePmcdConf, pmcdConfPath } from './pmcd-agents.js';
export type { PmcdAgent, ParsedPmcdConf, PmcdConfSnapshot } from './pmcd-agents.js';
export { ProcessSpawner } from './host-services.js';
export type { SpawnStdio, ReapedProcess } from './host-services.js';
export { loadCrootConfigFile, loadConfigFile, resolveUserUid, configFilePath } from './config-file.js';
export type { ConfigFileOptions, ConfigFileSettings, PluginReference } from './config-file.js';
export { ThrottledRefresh } from './throttled-refresh.js';
export { plural } from './plural.js';
