/// <reference types="node" preserve="true" />
/** Public entry point of the Docker engine. */
export { dockerEngineModule } from './docker-engine-module.js';
export { DockerEngine, DockerEngineOptions, DOCKER_ENGINE_ID, DEFAULT_DOCKER_DIR } from './docker-engine.js';
export { DockerApiSource, describeDockerError } from './docker-api-source.js';
export type { DockerApiSourceOptions, DockerApiProgress } from './docker-api-source.js';
export { dockerEndpointFrom, DEFAULT_DOCKER_SOCKET } from './docker-endpoint.js';
export type { DockerEndpoint, DockerTls, DockerTransport } from './docker-endpoint.js';
export { loadDockerTls, DockerTlsAgent } from './docker-tls.js';
export type { DockerTlsMaterial } from './docker-tls.js';
export { dockerContextFrom, dockerConfigDir, DEFAULT_CONTEXT } from './docker-context.js';
export type { DockerContext, DockerContextChoice } from './docker-context.js';
export { DockerDiskState } from './docker-disk-state.js';
export type { DockerDiskStateOptions } from './docker-disk-state.js';
export { dockerRecordFrom, dockerCGroupHint, dockerPidStartTime, dockerStateOf } from './docker-record.js';
export type { DockerContainerJson, DockerRecordOptions, DockerSourceKind } from './docker-record.js';
