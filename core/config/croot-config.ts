/** croot's settings, bound once under the `CrootConfig` token. */
import { readFileSync } from 'node:fs';

/** The server's connection limits (the config file's `limits`). */
export interface ConnectionLimitOptions {
  /** Connections served at once (default 1024). */
  readonly maxConnections?: number;
  /** Connections one non-root uid may hold (default 128); pmcd's own do not count. */
  readonly maxConnectionsPerUid?: number;
  /** Of `maxConnections`, how many only root and pmcd may take (default 64). */
  readonly reservedForRoot?: number;
  /** A connection that has not sent a complete request for this long is closed (ms, default 10000). */
  readonly idleTimeoutMs?: number;
}

/** What the server applies for each limit the config does not set. */
export const CONNECTION_LIMIT_DEFAULTS: Required<ConnectionLimitOptions> = {
  maxConnections: 1024,
  maxConnectionsPerUid: 128,
  reservedForRoot: 64,
  idleTimeoutMs: 10000,
};

export interface StaticContainerConfig {
  /** The name it answers to (more in `aliases`). */
  readonly name: string;
  readonly aliases?: readonly string[];
  /** Id; defaults to the name. */
  readonly id?: string;
  /** Init PID, or a file holding it. */
  readonly pid?: number;
  readonly pidfile?: string;
}

export interface CrootConfig {
  /** The server's socket. */
  readonly socketPath: string;
  /**
   * Permission bits of the socket (default 0755, as PCP's pmdaroot: only root
   * can connect(2)). Non-root uids on the allow-list also need write
   * permission on the socket (e.g. 0777) and a directory they can traverse;
   * SO_PEERCRED still decides who is served.
   */
  readonly socketMode: number;
  /** Uids allowed to talk to the server (SO_PEERCRED). */
  readonly allowUids: readonly number[];
  /** Root of the proc filesystem (tests point it elsewhere). */
  readonly procRoot: string;
  /** Engines to leave out, by id. */
  readonly disabledEngines: readonly string[];
  /** Containers of the static engine. */
  readonly staticContainers: readonly StaticContainerConfig[];
  /** Environment the engines read their `PCP_*`/`DOCKER_HOST` settings from. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The server's connection limits (config file `limits`); defaults in CONNECTION_LIMIT_DEFAULTS. */
  readonly connectionLimits?: ConnectionLimitOptions | undefined;
}

export const CrootConfig = Symbol.for('croot/CrootConfig');

export const DEFAULT_SOCKET_PATH = '/var/lib/pcp/pmcd/root.socket';

/** Where PCP's root socket is: `$PCP_VAR_DIR/pmcd/root.socket`, `PCP_VAR_DIR` from the env or /etc/pcp.conf. */
export function defaultSocketPath(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const varDir = env.PCP_VAR_DIR ?? readPcpConf(env.PCP_CONF ?? '/etc/pcp.conf').PCP_VAR_DIR;
  return varDir ? `${varDir.replace(/\/+$/, '')}/pmcd/root.socket` : DEFAULT_SOCKET_PATH;
}

function readPcpConf(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m && m[1] && m[2] !== undefined) out[m[1]] = m[2].replace(/^"(.*)"$/, '$1');
  }
  return out;
}

export function defaultConfig(overrides: Partial<CrootConfig> = {}): CrootConfig {
  const env = overrides.env ?? process.env;
  return {
    socketPath: overrides.socketPath ?? defaultSocketPath(env),
    socketMode: overrides.socketMode ?? 0o755,
    allowUids: overrides.allowUids ?? [0],
    procRoot: overrides.procRoot ?? '/proc',
    disabledEngines: overrides.disabledEngines ?? [],
    staticContainers: overrides.staticContainers ?? [],
    env,
    ...(overrides.connectionLimits !== undefined ? { connectionLimits: overrides.connectionLimits } : {}),
  };
}
