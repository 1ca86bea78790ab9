/**
 * Where Docker's daemon is and how to reach it, as the docker CLI finds it:
 * `DOCKER_HOST` (unix://, tcp://, http(s)://), else the current docker
 * context (see docker-context.ts), else /var/run/docker.sock; and where
 * the TLS files of a tcp:// daemon are (docker-tls.ts reads them, and is
 * loaded only when the daemon is asked).
 */
import { join } from 'node:path';
import { dockerConfigDir, dockerContextFrom } from './docker-context.js';

/** How to open a connection to the daemon: a unix socket, or a host and port. */
export interface DockerTransport {
  readonly socketPath?: string;
  readonly host?: string;
  readonly port?: string;
  readonly protocol?: 'http' | 'https';
}

export interface DockerEndpoint {
  /** Where the daemon listens; TLS material is added when connecting. */
  readonly options: DockerTransport;
  /** For messages: the socket path or host:port, and the context it came from. */
  readonly label: string;
  /** Set when a tcp:// daemon is reached over TLS. */
  readonly tls?: DockerTls;
  /** Why this endpoint cannot be used at all (a context that cannot be read, an ssh:// daemon); each try fails with it. */
  readonly problem?: string;
}

/**
 * TLS to a tcp:// daemon, read from the environment as the docker CLI reads
 * it: `DOCKER_TLS_VERIFY` (any non-empty value) means TLS checked against
 * `ca.pem`, `DOCKER_TLS` (non-empty) alone means TLS without checking the
 * daemon's certificate; `DOCKER_CERT_PATH` alone turns nothing on. A docker
 * context brings its own files, checked unless it says `SkipTLSVerify`.
 */
export interface DockerTls {
  /** Check the daemon's certificate against `ca.pem` and its host name or IP. */
  readonly verify: boolean;
  /** `DOCKER_CERT_PATH`, else `$DOCKER_CONFIG`, else `$HOME/.docker`; or the context's TLS folder. */
  readonly certPath: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

export function dockerEndpointFrom(env: Readonly<Record<string, string | undefined>>): DockerEndpoint {
  const host = env.DOCKER_HOST?.trim();
  if (host !== undefined && host.length > 0) return endpointForHost(host, (https) => dockerTlsFrom(env, https), '');
  const choice = dockerContextFrom(env);
  if (choice.kind === 'none') return { options: { socketPath: DEFAULT_DOCKER_SOCKET }, label: DEFAULT_DOCKER_SOCKET };
  if (choice.kind === 'broken') {
    return { options: { socketPath: DEFAULT_DOCKER_SOCKET }, label: `docker context "${choice.name}"`, problem: choice.problem };
  }
  const { context } = choice;
  const tlsDir = context.tlsDir;
  const tls = (): DockerTls | undefined => (tlsDir === undefined ? undefined : tlsIn(tlsDir, !context.skipTlsVerify));
  return endpointForHost(context.host, tls, ` (docker context "${context.name}")`);
}

/** One daemon address; `tlsFor(https)` says whether and how a tcp:// daemon is reached over TLS. */
function endpointForHost(host: string, tlsFor: (https: boolean) => DockerTls | undefined, labelSuffix: string): DockerEndpoint {
  if (host.startsWith('unix://')) {
    const path = host.slice('unix://'.length) || DEFAULT_DOCKER_SOCKET;
    return { options: { socketPath: path }, label: `${path}${labelSuffix}` };
  }
  if (host.startsWith('/')) return { options: { socketPath: host }, label: `${host}${labelSuffix}` };
  const m = /^(?:tcp|http|https):\/\/\[?([^\]/]+?)\]?(?::(\d+))?\/?$/.exec(host);
  if (m?.[1] !== undefined) {
    const tls = tlsFor(host.startsWith('https://'));
    const port = m[2] ?? (tls !== undefined ? '2376' : '2375');
    const options: DockerTransport = { host: m[1], port, protocol: tls !== undefined ? 'https' : 'http' };
    return { options, label: `${m[1]}:${port}${labelSuffix}`, ...(tls === undefined ? {} : { tls }) };
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(host)?.[1];
  if (scheme !== undefined) {
    const why =
      scheme.toLowerCase() === 'ssh'
        ? 'an ssh:// daemon runs on another host, and croot answers only for containers whose processes are on this one'
        : `croot does not speak ${scheme}:// (it reaches docker over unix://, tcp://, http:// or https://)`;
    return { options: { socketPath: DEFAULT_DOCKER_SOCKET }, label: `${host}${labelSuffix}`, problem: `${host}: ${why}` };
  }
  return { options: { socketPath: host }, label: `${host}${labelSuffix}` };
}

/** The docker CLI's TLS settings; `https` (an https:// DOCKER_HOST) counts as DOCKER_TLS_VERIFY. */
function dockerTlsFrom(env: Readonly<Record<string, string | undefined>>, https: boolean): DockerTls | undefined {
  const verify = https || (env.DOCKER_TLS_VERIFY ?? '') !== '';
  if (!verify && (env.DOCKER_TLS ?? '') === '') return undefined;
  return tlsIn(env.DOCKER_CERT_PATH || dockerConfigDir(env), verify);
}

function tlsIn(certPath: string, verify: boolean): DockerTls {
  return {
    verify,
    certPath,
    caFile: join(certPath, 'ca.pem'),
    certFile: join(certPath, 'cert.pem'),
    keyFile: join(certPath, 'key.pem'),
  };
}
