/**
 * What the docker CLI makes of DOCKER_HOST values, captured from docker 28.2
 * in test/fixtures/docker-host/docker-cli-answers.json (how: its `how`
 * key) and checked against the installed CLI by test/docker-host.int.test.ts;
 * and the daemon address each answer, or croot's endpoint, comes to.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DockerEndpoint } from '../../engines/docker/docker-endpoint.js';

export interface DockerCliAnswer {
  readonly value: string;
  /** Run with DOCKER_TLS_VERIFY=1 and a DOCKER_CERT_PATH holding empty ca.pem, cert.pem, key.pem. */
  readonly tls?: boolean;
  /** The address docker resolved (`docker context inspect default`). */
  readonly resolves?: string;
  /** docker's error when it refused the value. */
  readonly refuses?: string;
}

export const DOCKER_CLI_ANSWERS_FILE = join(__dirname, '..', 'fixtures', 'docker-host', 'docker-cli-answers.json');

export function dockerCliAnswers(): { docker: string; answers: readonly DockerCliAnswer[] } {
  return JSON.parse(readFileSync(DOCKER_CLI_ANSWERS_FILE, 'utf8')) as { docker: string; answers: DockerCliAnswer[] };
}

/** The TLS environment the `tls` answers were taken with. */
export function tlsEnvironment(certPath: string): Record<string, string> {
  return { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certPath };
}

/**
 * What docker's answer comes to: `unix PATH`, `tcp HOST PORT`, or `refused`.
 * Two addresses docker resolves but never reaches a daemon through count as
 * refused: a port above 65535 (its dial fails: invalid port) and an API path
 * after host:port (croot sends no such prefix, so it refuses rather than
 * reach another daemon than docker); so do fd:// and ssh://, which croot
 * does not take.
 */
export function dockerDials(answer: DockerCliAnswer): string {
  const address = answer.resolves;
  if (address === undefined) return 'refused';
  const unix = /^unix:\/\/(.+)$/.exec(address);
  if (unix !== null) return `unix ${unix[1]}`;
  const tcp = /^tcp:\/\/(?:\[([^\]]*)\]|([^/]*)):(\d+)(\/.*)?$/.exec(address);
  if (tcp === null) return 'refused';
  const [, v6, name, port, path] = tcp;
  if ((path !== undefined && path !== '/') || Number(port) > 65535) return 'refused';
  return `tcp ${v6 ?? name} ${port}`;
}

/** What croot's endpoint comes to, in dockerDials' terms. */
export function crootDials(endpoint: DockerEndpoint): string {
  if (endpoint.problem !== undefined) return 'refused';
  const { socketPath, host, port } = endpoint.options;
  return socketPath !== undefined ? `unix ${socketPath}` : `tcp ${host ?? '?'} ${port ?? '?'}`;
}
