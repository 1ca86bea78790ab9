/// <reference types="node" preserve="true" />
/** Public entry point of the Podman engine (rootful and rootless stores, read from disk and followed through inotify). */
export { podmanEngineModule } from './podman-engine-module.js';
export {
  PodmanEngine,
  PodmanEngineOptions,
  PODMAN_ENGINE_ID,
  DEFAULT_PODMAN_DATADIR,
  DEFAULT_PODMAN_RUNDIR,
} from './podman-engine.js';
export type { UserLookup } from './podman-engine.js';
/** The engine's clock option takes croot's `Clock` (core/host/clock.ts); this name stays for code written against it. */
export type { Clock as PodmanClock } from '../../core/host/clock.js';
export { DEFAULT_CONTAINERS_STORAGE_CONFS, podmanPathsFrom } from './podman-paths.js';
export type { PodmanPaths } from './podman-paths.js';
export { parseContainerList, chooseDriver, runStatus, GRAPH_DRIVERS } from './podman-storage.js';
export type { PodmanStore, StorageEntry, RunState, RunStatus, InitProcess, ConfiguredDriver, DriverChoice } from './podman-storage.js';
export { rootlessLocation, rootfulLocation, readSystemStorageConf } from './locate-stores.js';
export type { RootfulLocation, Location } from './locate-stores.js';
export { recordNames } from './podman-store-watch.js';
export { nssUsers, parsePasswd } from './nss-users.js';
export type { PasswdUser, NssUserOptions } from './nss-users.js';
export { parseStorageConf, readStorageConf, expandStoragePath } from './storage-conf.js';
export type { StorageConf, StorageConfRead, ExpansionUser } from './storage-conf.js';
