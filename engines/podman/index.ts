/// <reference types="node" preserve="true" />
/** Public entry point of the Podman engine (rootful, rootless, and the API socket when it answers). */
export { podmanEngineModule } from './podman-engine-module.js';
export {
  PodmanEngine,
  PodmanEngineOptions,
  PODMAN_ENGINE_ID,
  DEFAULT_PODMAN_DATADIR,
  DEFAULT_PODMAN_RUNDIR,
  DEFAULT_PODMAN_SOCKET,
  DEFAULT_CONTAINERS_STORAGE_CONFS,
  podmanPathsFrom,
} from './podman-engine.js';
export type { PodmanPaths } from './podman-engine.js';
export {
  parseContainerList,
  parsePasswd,
  findRootlessStores,
  rootlessLocation,
  rootfulLocation,
  readSystemStorageConf,
  chooseDriver,
  GRAPH_DRIVERS,
} from './podman-storage.js';
export type {
  PodmanStore,
  StorageEntry,
  RunState,
  PasswdUser,
  RootlessScan,
  RootlessScanOptions,
  RootfulLocation,
  ConfiguredDriver,
  DriverChoice,
} from './podman-storage.js';
export { parseStorageConf, readStorageConf, expandStoragePath } from './storage-conf.js';
export type { StorageConf, StorageConfRead, ExpansionUser } from './storage-conf.js';
