/// <reference types="node" preserve="true" />
/** Public entry point of the Docker engine. */
export { dockerEngineModule } from './docker-engine-module.js';
export { DockerEngine, DockerEngineOptions, DOCKER_ENGINE_ID, DEFAULT_DOCKER_DIR } from './docker-engine.js';
export { DockerApiSource, dockerEndpointFrom, loadDockerTls, DEFAULT_DOCKER_SOCKET } from './docker-api-source.js';
export type { DockerApiSourceOptions, DockerEndpoint, DockerTls, DockerTlsMaterial } from './docker-api-source.js';
export { dockerContextFrom, dockerConfigDir, DEFAULT_CONTEXT } from './docker-context.js';
export type { DockerContext, DockerContextChoice } from './docker-context.js';
export { DockerDiskState, nodeDockerDiskFs } from './docker-disk-state.js';
export type { DockerDiskFs, DockerDiskStateOptions } from './docker-disk-state.js';
export { dockerRecordFrom, dockerCgroupHint, diskPidStartTime } from './docker-record.js';
export type { DockerContainerJson, DockerRecordOptions, DockerSourceKind } from './docker-record.js';
