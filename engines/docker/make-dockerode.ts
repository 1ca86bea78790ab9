/** dockerode for one endpoint, loaded only once a daemon has answered (it and docker-modem are ~200 modules). */
import type Docker from 'dockerode';
import type { DockerTransport } from './docker-endpoint.js';
import type { DockerTlsAgent } from './docker-tls.js';

let dockerode: typeof Docker | undefined;

function loadDockerode(): typeof Docker {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  dockerode ??= require('dockerode') as typeof Docker;
  return dockerode;
}

/** dockerode's options, every transport key given, so none of docker-modem's defaults is left in. */
function dockerOptions(options: DockerTransport, agent: DockerTlsAgent | undefined): Docker.DockerOptions {
  const unset = { host: undefined, port: undefined, socketPath: undefined, ca: undefined, cert: undefined, key: undefined, agent: undefined };
  const chosen =
    options.socketPath !== undefined
      ? { socketPath: options.socketPath, protocol: 'http' }
      : { host: options.host, port: options.port, protocol: options.protocol ?? 'http', ...(agent === undefined ? {} : { agent }) };
  return { ...unset, ...chosen } as unknown as Docker.DockerOptions;
}

/**
 * dockerode on exactly `transport` (with `agent` for TLS). docker-modem's
 * constructor first reads the process's own DOCKER_HOST and, for a tcp://
 * one, DOCKER_CERT_PATH's three files with readFileSync (throwing when
 * cert.pem is absent, which croot allows); croot's config says where the
 * daemon is, so DOCKER_HOST is hidden from that constructor (synchronously,
 * nothing else runs meanwhile).
 */
export function makeDockerode(transport: DockerTransport, agent: DockerTlsAgent | undefined): Docker {
  const options = dockerOptions(transport, agent);
  const Dockerode = loadDockerode();
  const saved = process.env.DOCKER_HOST;
  delete process.env.DOCKER_HOST;
  try {
    return new Dockerode(options);
  } finally {
    if (saved !== undefined) process.env.DOCKER_HOST = saved;
  }
}
