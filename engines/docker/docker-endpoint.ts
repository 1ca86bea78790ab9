/**
 * Where Docker's daemon is and how to reach it, as the docker CLI finds it:
 * `DOCKER_HOST` (unix://, tcp://, http(s)://, or without a scheme: tcp, as
 * the CLI reads it), else the current docker
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
  if (host !== undefined && host.length > 0) return endpointForHost(host, (https) => dockerTlsFrom(env, https), '', 'DOCKER_HOST');
  const choice = dockerContextFrom(env);
  if (choice.kind === 'none') return { options: { socketPath: DEFAULT_DOCKER_SOCKET }, label: DEFAULT_DOCKER_SOCKET };
  if (choice.kind === 'broken') {
    return { options: { socketPath: DEFAULT_DOCKER_SOCKET }, label: `docker context "${choice.name}"`, problem: choice.problem };
  }
  const { context } = choice;
  const tlsDir = context.tlsDir;
  const tls = (): DockerTls | undefined => (tlsDir === undefined ? undefined : tlsIn(tlsDir, !context.skipTlsVerify));
  return endpointForHost(context.host, tls, ` (docker context "${context.name}")`, 'context');
}

/** Where a daemon address came from: `DOCKER_HOST` is read as the docker CLI reads it; a context's host as the Go client that takes it does. */
type HostSource = 'DOCKER_HOST' | 'context';

/**
 * One daemon address; `tlsFor(https)` says whether and how a tcp:// daemon
 * is reached over TLS. `DOCKER_HOST` follows the docker CLI (docker/cli
 * opts.ParseHost, checked against docker 28.2's `docker context inspect`):
 * a value without `://` is a tcp address, never a socket path
 * (`/run/d.sock` is tcp://localhost:2375/run/d.sock); tcp:// fills in
 * localhost and port 2375, with TLS too; unix:// with no path is the default
 * socket. A value docker refuses, one croot cannot reach the way docker would
 * (an API path after host:port), and a scheme croot does not speak give an
 * endpoint with a `problem` that names the value.
 */
function endpointForHost(host: string, tlsFor: (https: boolean) => DockerTls | undefined, labelSuffix: string, source: HostSource): DockerEndpoint {
  const refused = (why: string): DockerEndpoint => ({ options: { socketPath: DEFAULT_DOCKER_SOCKET }, label: `${host}${labelSuffix}`, problem: `${host}: ${why}` });
  const dockerRefuses = (why: string): DockerEndpoint => refused(`docker refuses this ${source === 'context' ? 'context host' : 'DOCKER_HOST'} (${why})`);
  const cut = host.indexOf('://');
  if (cut < 0 && source === 'context') return refused('docker refuses a context host without a scheme (unable to parse docker host)');
  const scheme = cut < 0 ? 'tcp' : host.slice(0, cut);
  const rest = cut < 0 ? host : host.slice(cut + 3);
  switch (scheme) {
    case 'unix': {
      if (rest.includes('://')) return dockerRefuses(`invalid proto, expected unix: ${rest}`);
      const path = rest || DEFAULT_DOCKER_SOCKET;
      return { options: { socketPath: path }, label: `${path}${labelSuffix}` };
    }
    case 'tcp':
    case 'http':
    case 'https': {
      const tls = tlsFor(scheme === 'https');
      // docker's own tcp default is 2375, TLS or not; http(s):// is croot's extension and a context's host is not filled in by docker.
      const defaultPort = scheme === 'tcp' && source === 'DOCKER_HOST' ? '2375' : tls !== undefined ? '2376' : '2375';
      const address = parseTcpAddress(rest, defaultPort);
      if (typeof address === 'string') return dockerRefuses(address);
      const hostPort = joinHostPort(address.host, address.port);
      if (address.path !== '' && address.path !== '/') {
        const asDocker = `tcp://${hostPort}${address.path}`;
        const socket = cut < 0 && (host.startsWith('/') || host.startsWith('./')) ? `; a socket is unix://${host}` : '';
        const read = cut < 0 ? `docker reads a DOCKER_HOST without a scheme as tcp://, here ${asDocker}` : `docker would send every request under ${address.path}`;
        return refused(`${read}, and croot takes no API path after host:port${socket}`);
      }
      if (Number(address.port) > 65535) return refused(`port ${address.port} is out of range (docker fails to dial it: invalid port)`);
      const options: DockerTransport = { host: address.host, port: address.port, protocol: tls !== undefined ? 'https' : 'http' };
      return { options, label: `${hostPort}${labelSuffix}`, ...(tls === undefined ? {} : { tls }) };
    }
    default: {
      if (scheme.toLowerCase() === 'ssh') return refused('an ssh:// daemon runs on another host, and croot answers only for containers whose processes are on this one');
      if (source === 'context' || scheme === 'fd' || scheme === 'npipe') return refused(`croot does not speak ${scheme}:// (it reaches docker over unix://, tcp://, http:// or https://)`);
      return dockerRefuses('invalid bind address format');
    }
  }
}

/** A tcp daemon's address: host (without brackets), port, and the path after them (docker's API prefix). */
interface TcpAddress {
  readonly host: string;
  readonly port: string;
  readonly path: string;
}

/**
 * `[USER@]HOST[:PORT][/PATH]` as the docker CLI reads what follows tcp://
 * (opts.ParseTCPAddr: Go's url.Parse, then net.SplitHostPort, trying again
 * with the default port); a string says why docker refuses it. A missing
 * host is localhost, a missing port `defaultPort`; an IPv6 address without
 * a port may be written bare (`::1`), but `[::1]` needs one (docker refuses
 * it). A query or fragment is dropped, as docker drops it. Escapes (`%`),
 * which docker takes only in a few forms, croot refuses.
 */
function parseTcpAddress(text: string, defaultPort: string): TcpAddress | string {
  if (text === '') return { host: 'localhost', port: defaultPort, path: '' };
  if (text.includes('://')) return `invalid proto, expected tcp: ${text}`;
  const addr = text.endsWith(']:') ? `${text}${defaultPort}` : text;
  const end = addr.search(/[/?#]/);
  const authority = (end < 0 ? addr : addr.slice(0, end)).replace(/^.*@/s, '');
  const path = end < 0 || addr[end] !== '/' ? '' : addr.slice(end).replace(/[?#].*$/s, '');
  if (authority.includes('%')) return `an escape (%) in the host ${JSON.stringify(authority)}`;
  // Go's url.Parse takes in a host name letters, digits and these ASCII characters (and any non-ASCII).
  const bad = /[^\w.~!$&'()*+,;=:[\]<>"\-\u{80}-\u{10ffff}]/u.exec(authority);
  if (bad !== null) return `invalid character ${JSON.stringify(bad[0])} in host name`;
  const close = authority.lastIndexOf(']');
  if (authority.startsWith('[') && close < 0) return `missing ']' in host`;
  const colon = authority.lastIndexOf(':');
  const colonPort = authority.startsWith('[') ? authority.slice(close + 1) : colon < 0 ? '' : authority.slice(colon);
  if (colonPort !== '' && !/^:\d*$/.test(colonPort)) return `invalid port ${JSON.stringify(colonPort)} after host`;
  const split = splitHostPort(authority) ?? splitHostPort(joinHostPort(authority, defaultPort));
  if (split === undefined) return `invalid bind address format: ${text}`;
  return { host: split[0] || 'localhost', port: split[1] || defaultPort, path };
}

/** Go's net.SplitHostPort: `host:port` or `[host]:port`, the port after the last colon; undefined where Go fails. */
function splitHostPort(hostPort: string): [string, string] | undefined {
  const last = hostPort.lastIndexOf(':');
  if (last < 0) return undefined;
  let host: string;
  if (hostPort.startsWith('[')) {
    const close = hostPort.indexOf(']');
    if (close < 0 || close + 1 !== last) return undefined;
    host = hostPort.slice(1, close);
  } else {
    host = hostPort.slice(0, last);
    if (host.includes(':')) return undefined;
  }
  if (/[[\]]/.test(host) || hostPort.slice(last + 1).includes(']')) return undefined;
  return [host, hostPort.slice(last + 1)];
}

/** Go's net.JoinHostPort: an IPv6 address in brackets. */
function joinHostPort(host: string, port: string): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
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
