/// <reference types="node" preserve="true" />
/** croot's public API: the core (contracts, matching, protocol, server, client). */
export { CrootError, ErrorCodes, Errno, PM_ERR_GENERIC, PM_ERR_IPC, PM_ERR_NOCONTAINER, isAnswerCode, isCrootError, statusOf } from './errors/croot-error.js';
export type { CrootErrorOptions, ErrorCode } from './errors/croot-error.js';
export { systemError, errnoOf } from './errors/system-error.js';
export type { SystemErrorContext } from './errors/system-error.js';
export { errorText, knownStatuses } from './protocol/error-text.js';
export { EngineContribution } from './registry/engine-contribution.js';
export type { ContainerRecord, ContainerSink, EngineStatus, KubernetesNames } from './registry/engine-contribution.js';
export { EngineRegistry, EngineRegistryOptions, DefaultEngineRegistry } from './registry/engine-registry.js';
export type { IndexedContainer, IndexChange, Liveness, RegistryEvent } from './registry/engine-registry.js';
export { NameMatcher, listSearch, isDigestId } from './registry/name-matcher.js';
export type { ContainerReference, ContainerSearch } from './registry/name-matcher.js';
export { NodeDirectoryWatcher } from './host/node-directory-watcher.js';
export { systemClock } from './host/clock.js';
export type { Clock } from './host/clock.js';
export { ProcProcessAnchor } from './host/proc-process-anchor.js';
export {
  ContainerHostnameResolver,
  ContainerProcessIdResolver,
  ContainerCGroupResolver,
  RunningContainerLocator,
  DefaultContainerResolver,
} from './registry/container-resolvers.js';
export type { ResolvedAnswer, MaybePromise } from './registry/container-resolvers.js';
export { NamespaceHostnameReader, PeerCredentialReader, FdSender, ProcessAnchor, DirectoryWatcher } from './host/host-services.js';
export type { PeerCredentials, ProcessHandle, ProcessAnchorMode, DirectoryEvent } from './host/host-services.js';
export { CrootConfig, DEFAULT_SOCKET_PATH, defaultConfig, defaultSocketPath } from './config/croot-config.js';
export type { StaticContainerConfig, ConnectionLimitOptions } from './config/croot-config.js';
export { createCrootContainer, coreModule, loadPluginModule, loadPluginFrom, readPluginManifest } from './create-container.js';
export type { CreateCrootContainerOptions, PluginManifest } from './create-container.js';
export { ContainerView, RegistryContainerView, CONTAINER_FIELDS } from './registry/container-view.js';
export type { ContainerField, ContainerWatch } from './registry/container-view.js';
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
} from './protocol/croot-extension.js';
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
} from './protocol/croot-extension.js';
export { ExtensionHandler, ExtensionHandlerOptions, EVENT_BACKLOG_BYTES } from './server/extension-handler.js';
export type { ServerFacts, ExtensionReply, ReplyStream, StreamOutlet } from './server/extension-handler.js';
export { askCrootd, subscribeCrootd } from './client/extension-client.js';
export type { ExtensionCallOptions, CrootdEventStream } from './client/extension-client.js';
export { UserDatabase, GetentUserDatabase, parsePasswdLine } from './host/user-database.js';
export type { UserEntry } from './host/user-database.js';
export { Logger, StreamLogger, SilentLogger } from './logging/logger.js';
export type { LogLevel } from './logging/logger.js';
export { RateLimitedLogger } from './logging/rate-limited-logger.js';
export type { RateLimitOptions } from './logging/rate-limited-logger.js';
export { ProcessService } from './process/process-service.js';
export type { ProcessStartRequest, StartedProcess, ProcessStopResult } from './process/process-service.js';
export { RootServer, RootServerOptions } from './server/root-server.js';
export { serverModule } from './server/server-module.js';
export type { RootServerStats } from './server/root-server.js';
export { RootRequestHandler } from './server/root-request-handler.js';
export type { Reply } from './server/root-request-handler.js';
export * as protocol from './protocol/root-pdus.js';
export { FrameDecoder } from './protocol/frame-decoder.js';
export type { Frame } from './protocol/frame-decoder.js';
export { chooseCGroupPath, parseCGroupFile, readCGroupName, readCGroupNameSync, readProcessStat, readStartTime } from './host/proc-files.js';
export type { ProcessStat } from './host/proc-files.js';
export { ProcProcessHandle } from './host/proc-process-handle.js';
export type { ProcProcessHandleOptions } from './host/proc-process-handle.js';
export { RootClient } from './client/root-client.js';
export { remoteError } from './client/root-channel.js';
export type { RootClientOptions, CallOptions, ContainerAnswer, StartedRootProcess, RootProcessStatus } from './client/root-client.js';
export type { RootTransport, RootTransportFactory, ReceivedPdu } from './client/root-transport.js';
export { NodeSocketTransport, nodeSocketTransport } from './client/node-socket-transport.js';
export {
  pmdaRootConnect,
  pmdaRootShutdown,
  pmdaRootContainerHostName,
  pmdaRootContainerProcessID,
  pmdaRootContainerCGroupName,
  pmdaRootProcessStart,
  pmdaRootProcessWait,
  pmdaRootProcessTerminate,
} from './client/pmda-root.js';
export type { PmdaRootConnectOptions, ProcessStartOut } from './client/pmda-root.js';
export { ProcessManager, ProcessManagerOptions, SAFE_PATH } from './process/process-manager.js';
export { processServiceModule } from './process/process-service-module.js';
export { splitCommandLine, joinCommandLine } from './process/pmcd-command-line.js';
export { PmcdConfAgents, parsePmcdConf, pmcdConfPath } from './process/pmcd-conf-agents.js';
export type { PmcdAgent, ParsedPmcdConf, PmcdConfSnapshot } from './process/pmcd-conf-agents.js';
export { ProcessSpawner } from './host/host-services.js';
export type { SpawnStdio, ReapedProcess } from './host/host-services.js';
export { loadCrootConfigFile, loadConfigFile, resolveUserUid, configFilePath } from './config/config-file.js';
export type { ConfigFileOptions, ConfigFileSettings, PluginReference } from './config/config-file.js';
export { plural } from './logging/plural.js';
