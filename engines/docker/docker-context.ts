/**
 * The docker CLI's contexts: which daemon `docker ps` talks to when
 * `DOCKER_HOST` is not set. The context is `DOCKER_CONTEXT`, else the
 * `currentContext` of `$DOCKER_CONFIG/config.json` (default
 * `$HOME/.docker`), else `default` (the environment's daemon). A named
 * context lives in `contexts/meta/<sha256 of its name>/meta.json` (its
 * `Endpoints.docker.Host` and `SkipTLSVerify`), with its TLS files, when it
 * has any, in `contexts/tls/<same digest>/docker/{ca,cert,key}.pem`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The daemon a named context points at, as its files say. */
export interface DockerContext {
  readonly name: string;
  /** `Endpoints.docker.Host`, e.g. `unix:///run/user/1000/docker.sock` or `tcp://h:2376`. */
  readonly host: string;
  readonly skipTlsVerify: boolean;
  /** The context's TLS folder when it holds any of ca.pem, cert.pem, key.pem. */
  readonly tlsDir?: string;
}

/** What the environment selects: no context (use DOCKER_HOST or the default socket), a context, or a context that cannot be read. */
export type DockerContextChoice =
  | { readonly kind: 'none' }
  | { readonly kind: 'context'; readonly context: DockerContext }
  | { readonly kind: 'broken'; readonly name: string; readonly problem: string };

export const DEFAULT_CONTEXT = 'default';

/** The docker CLI's config folder: `$DOCKER_CONFIG`, else `$HOME/.docker`. */
export function dockerConfigDir(env: Readonly<Record<string, string | undefined>>): string {
  return env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker');
}

/**
 * The context the docker CLI would use with this environment. `DOCKER_HOST`
 * wins over any context (as it does for the CLI), so it gives `none`.
 */
export function dockerContextFrom(env: Readonly<Record<string, string | undefined>>): DockerContextChoice {
  if ((env.DOCKER_HOST ?? '').trim() !== '') return { kind: 'none' };
  const configDir = dockerConfigDir(env);
  let name = env.DOCKER_CONTEXT?.trim() ?? '';
  if (name === '') {
    const current = currentContextOf(join(configDir, 'config.json'));
    if (typeof current !== 'string') return current === undefined ? { kind: 'none' } : { kind: 'broken', name: '?', problem: current.problem };
    name = current;
  }
  if (name === DEFAULT_CONTEXT) return { kind: 'none' };
  return readContext(configDir, name);
}

/** `currentContext` of config.json: a name, undefined when none is set, or why the file cannot be used. */
function currentContextOf(configFile: string): string | undefined | { problem: string } {
  let text: string;
  try {
    text = readFileSync(configFile, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    return { problem: `cannot read ${configFile}: ${code ?? (err as Error).message}` };
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    return { problem: `${configFile} is not valid JSON: ${(err as Error).message}` };
  }
  const current = (data as { currentContext?: unknown } | null)?.currentContext;
  return typeof current === 'string' && current.trim() !== '' ? current.trim() : undefined;
}

function readContext(configDir: string, name: string): DockerContextChoice {
  // node:crypto is required here, not at load: most hosts use no named context, and it costs a one-shot lookup its start.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createHash } = require('node:crypto') as typeof import('node:crypto');
  const digest = createHash('sha256').update(name).digest('hex');
  const metaFile = join(configDir, 'contexts', 'meta', digest, 'meta.json');
  const broken = (problem: string): DockerContextChoice => ({ kind: 'broken', name, problem: `docker context "${name}": ${problem}` });
  let meta: unknown;
  try {
    meta = JSON.parse(readFileSync(metaFile, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return broken(`not found (no ${metaFile})`);
    return broken(`cannot read ${metaFile}: ${code ?? (err as Error).message}`);
  }
  const endpoint = (meta as { Endpoints?: { docker?: { Host?: unknown; SkipTLSVerify?: unknown } } } | null)?.Endpoints?.docker;
  if (typeof endpoint?.Host !== 'string' || endpoint.Host.trim() === '') return broken(`${metaFile} names no docker endpoint host`);
  const tlsDir = join(configDir, 'contexts', 'tls', digest, 'docker');
  const hasTls = ['ca.pem', 'cert.pem', 'key.pem'].some((f) => existsSync(join(tlsDir, f)));
  return {
    kind: 'context',
    context: { name, host: endpoint.Host.trim(), skipTlsVerify: endpoint.SkipTLSVerify === true, ...(hasTls ? { tlsDir } : {}) },
  };
}
