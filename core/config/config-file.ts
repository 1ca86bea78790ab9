/**
 * croot's config file (JSON). Every key is optional:
 *
 *     {
 *       "socket": "/var/lib/pcp/pmcd/root.socket",
 *       "allowUids": [0],
 *       "allowUsers": ["pcp"],
 *       "disabledEngines": ["lxc"],
 *       "plugins": ["croot-engine-example", "./engines/my-engine"],
 *       "containers": [
 *         { "name": "sbx", "aliases": ["sandbox"], "id": "sbx-1", "pid": 1234 },
 *         { "name": "jail", "pidfile": "/run/jail.pid" }
 *       ]
 *     }
 *
 * `allowUsers` are resolved to uids through the system's name service
 * (`UserDatabase`: NSS, so LDAP and sssd users too) and joined to
 * `allowUids`. `plugins` are engine packages: names resolved from the config
 * file's folder (then croot's own install), or paths relative to that
 * folder. A relative `pidfile` is taken relative to the config file's
 * folder. A `"$comment"` key (a string or an array of strings) is allowed in
 * the top object and in each container, and ignored. Anything else that is
 * not understood is an `ERR_CONFIG` error naming the file and the key.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { ConnectionLimitOptions, CrootConfig, StaticContainerConfig } from './croot-config.js';
import { CrootError } from '../errors/croot-error.js';
import { GetentUserDatabase, type UserDatabase } from '../host/user-database.js';

/** Where croot looks for its config file when `CROOT_CONFIG` is not set. */
export const DEFAULT_CONFIG_FILE = '/etc/croot/croot.json';

export interface ConfigFileOptions {
  /** Where `allowUsers` are looked up (default: the system's name service through getent). */
  readonly users?: UserDatabase;
  /** The file read when neither a path nor `CROOT_CONFIG` is given (default DEFAULT_CONFIG_FILE). */
  readonly defaultPath?: string;
}

const TOP_KEYS = new Set(['$comment', 'socket', 'allowUids', 'allowUsers', 'disabledEngines', 'plugins', 'containers', 'limits']);
const LIMIT_KEYS = new Set(['$comment', 'maxConnections', 'maxConnectionsPerUid', 'reservedForRoot', 'idleTimeoutMs']);

/** An engine package named in a config file, and the folder its name is resolved from. */
export interface PluginReference {
  /** A package name, or a path (absolute, or relative to `from`). */
  readonly name: string;
  /** The config file's folder. */
  readonly from: string;
}

/** What a config file sets: croot's settings, and the engine packages to load. */
export interface ConfigFileSettings extends Partial<CrootConfig> {
  readonly plugins?: readonly PluginReference[];
}
const CONTAINER_KEYS = new Set(['$comment', 'name', 'aliases', 'id', 'pid', 'pidfile']);

/** The config file to read: `CROOT_CONFIG` when set (then it must exist), else the default (which may be absent). */
export function configFilePath(
  env: Readonly<Record<string, string | undefined>> = process.env,
  defaultPath = DEFAULT_CONFIG_FILE,
): { path: string; explicit: boolean } {
  const fromEnv = env.CROOT_CONFIG;
  return fromEnv !== undefined && fromEnv.length > 0 ? { path: fromEnv, explicit: true } : { path: defaultPath, explicit: false };
}

/**
 * Loads croot's settings from `path` when given (it must exist), else from
 * `configFilePath(env)`: a missing default file gives an empty config.
 */
export async function loadCrootConfigFile(
  path?: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
  options: ConfigFileOptions = {},
): Promise<ConfigFileSettings> {
  const chosen = path !== undefined ? { path, explicit: true } : configFilePath(env, options.defaultPath);
  try {
    return await loadConfigFile(chosen.path, options);
  } catch (err) {
    const cause = (err as CrootError).cause as NodeJS.ErrnoException | undefined;
    if (!chosen.explicit && CrootError.is(err) && cause?.code === 'ENOENT' && err.details.key === undefined) return {};
    throw err;
  }
}

/** Reads and checks one config file; throws CrootError('ERR_CONFIG') naming the file and the bad key. */
export async function loadConfigFile(path: string, options: ConfigFileOptions = {}): Promise<ConfigFileSettings> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new CrootError('ERR_CONFIG', `cannot read config file ${path}: ${code}`, { cause: err, details: { file: path } });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new CrootError('ERR_CONFIG', `config file ${path} is not valid JSON: ${(err as Error).message}`, {
      cause: err,
      details: { file: path },
    });
  }
  return new ConfigFileParser(path, options.users ?? new GetentUserDatabase()).parse(data);
}

/** The uid of user `name` as the name service knows it, or undefined when there is no such user. */
export async function resolveUserUid(name: string, users: UserDatabase = new GetentUserDatabase()): Promise<number | undefined> {
  return (await users.userByName(name))?.uid;
}

class ConfigFileParser {
  constructor(
    private readonly file: string,
    private readonly users: UserDatabase,
  ) {}

  async parse(data: unknown): Promise<ConfigFileSettings> {
    const top = this.object(data, '');
    this.onlyKeys(top, TOP_KEYS, '');
    this.comment(top, '$comment');

    const out: { -readonly [K in keyof ConfigFileSettings]?: ConfigFileSettings[K] } = {};
    if (top.socket !== undefined) out.socketPath = this.nonEmptyString(top.socket, 'socket');

    const uids: number[] = [];
    if (top.allowUids !== undefined) {
      this.array(top.allowUids, 'allowUids').forEach((v, i) => uids.push(this.uid(v, `allowUids[${i}]`)));
    }
    if (top.allowUsers !== undefined) {
      const users = this.array(top.allowUsers, 'allowUsers');
      for (const [i, v] of users.entries()) {
        const key = `allowUsers[${i}]`;
        const user = this.nonEmptyString(v, key);
        let uid: number | undefined;
        try {
          uid = await resolveUserUid(user, this.users);
        } catch (err) {
          throw this.error(key, `cannot look user "${user}" up: ${(err as Error).message}`, err);
        }
        if (uid === undefined) throw this.error(key, `no user "${user}" (asked the system's name service)`);
        uids.push(uid);
      }
    }
    if (top.allowUids !== undefined || top.allowUsers !== undefined) out.allowUids = Object.freeze([...new Set(uids)]);

    if (top.disabledEngines !== undefined) {
      out.disabledEngines = Object.freeze(
        this.array(top.disabledEngines, 'disabledEngines').map((v, i) => this.nonEmptyString(v, `disabledEngines[${i}]`)),
      );
    }
    if (top.plugins !== undefined) {
      const from = dirname(resolve(this.file));
      out.plugins = Object.freeze(
        this.array(top.plugins, 'plugins').map((v, i) => Object.freeze({ name: this.nonEmptyString(v, `plugins[${i}]`), from })),
      );
    }
    if (top.containers !== undefined) out.staticContainers = this.containers(top.containers);
    if (top.limits !== undefined) out.connectionLimits = this.limits(top.limits);
    return out;
  }

  private limits(value: unknown): ConnectionLimitOptions {
    const obj = this.object(value, 'limits');
    this.onlyKeys(obj, LIMIT_KEYS, 'limits');
    this.comment(obj, 'limits.$comment');
    const out: { -readonly [K in keyof ConnectionLimitOptions]: ConnectionLimitOptions[K] } = {};
    for (const key of ['maxConnections', 'maxConnectionsPerUid', 'reservedForRoot', 'idleTimeoutMs'] as const) {
      const v = obj[key];
      if (v === undefined) continue;
      const least = key === 'reservedForRoot' ? 0 : 1;
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < least) throw this.error(`limits.${key}`, `must be an integer >= ${least}`);
      out[key] = v;
    }
    if (out.reservedForRoot !== undefined && out.maxConnections !== undefined && out.reservedForRoot >= out.maxConnections) {
      throw this.error('limits.reservedForRoot', 'must be less than limits.maxConnections');
    }
    return Object.freeze(out);
  }

  private containers(value: unknown): readonly StaticContainerConfig[] {
    const list = this.array(value, 'containers');
    const names = new Map<string, string>();
    const ids = new Map<string, string>();
    const out: StaticContainerConfig[] = [];
    list.forEach((item, i) => {
      const at = `containers[${i}]`;
      const c = this.object(item, at);
      this.onlyKeys(c, CONTAINER_KEYS, at);
      this.comment(c, `${at}.$comment`);
      if (c.name === undefined) throw this.error(`${at}.name`, 'is required');
      const name = this.nonEmptyString(c.name, `${at}.name`);
      const aliases =
        c.aliases === undefined ? undefined : this.array(c.aliases, `${at}.aliases`).map((a, j) => this.nonEmptyString(a, `${at}.aliases[${j}]`));
      const id = c.id === undefined ? undefined : this.nonEmptyString(c.id, `${at}.id`);
      if (c.pid === undefined && c.pidfile === undefined) throw this.error(at, 'needs a "pid" or a "pidfile"');
      if (c.pid !== undefined && c.pidfile !== undefined) throw this.error(at, 'has both "pid" and "pidfile": give one');
      let pid: number | undefined;
      if (c.pid !== undefined) {
        if (typeof c.pid !== 'number' || !Number.isSafeInteger(c.pid) || c.pid <= 0) throw this.error(`${at}.pid`, 'must be a positive integer');
        pid = c.pid;
      }
      const pidfile = c.pidfile === undefined ? undefined : resolve(dirname(this.file), this.nonEmptyString(c.pidfile, `${at}.pidfile`));

      for (const [j, n] of [name, ...(aliases ?? [])].entries()) {
        const key = j === 0 ? `${at}.name` : `${at}.aliases[${j - 1}]`;
        const earlier = names.get(n);
        if (earlier !== undefined) throw this.error(key, `duplicate container name "${n}" (already used by ${earlier})`);
        names.set(n, key);
      }
      const effectiveId = id ?? name;
      const idKey = id === undefined ? `${at}.name` : `${at}.id`;
      const earlierId = ids.get(effectiveId);
      if (earlierId !== undefined) throw this.error(idKey, `duplicate container id "${effectiveId}" (already used by ${earlierId})`);
      ids.set(effectiveId, idKey);

      out.push(
        Object.freeze({
          name,
          ...(aliases !== undefined && { aliases: Object.freeze(aliases) }),
          ...(id !== undefined && { id }),
          ...(pid !== undefined && { pid }),
          ...(pidfile !== undefined && { pidfile }),
        }),
      );
    });
    return Object.freeze(out);
  }

  private error(key: string, problem: string, cause?: unknown): CrootError {
    const where = key.length > 0 ? `"${key}" ` : '';
    return new CrootError('ERR_CONFIG', `config file ${this.file}: ${where}${problem}`, {
      ...(cause !== undefined && { cause }),
      details: { file: this.file, key },
    });
  }

  private object(value: unknown, key: string): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw this.error(key, key.length > 0 ? 'must be an object' : 'must hold a JSON object');
    }
    return value as Record<string, unknown>;
  }

  private onlyKeys(obj: Record<string, unknown>, allowed: ReadonlySet<string>, at: string): void {
    for (const key of Object.keys(obj)) {
      if (!allowed.has(key)) {
        const full = at.length > 0 ? `${at}.${key}` : key;
        throw this.error(full, `is not a known key (known: ${[...allowed].filter((k) => k !== '$comment').join(', ')})`);
      }
    }
  }

  private comment(obj: Record<string, unknown>, key: string): void {
    const c = obj.$comment;
    if (c === undefined || typeof c === 'string') return;
    if (Array.isArray(c) && c.every((l) => typeof l === 'string')) return;
    throw this.error(key, 'must be a string or an array of strings');
  }

  private array(value: unknown, key: string): unknown[] {
    if (!Array.isArray(value)) throw this.error(key, 'must be an array');
    return value;
  }

  private nonEmptyString(value: unknown, key: string): string {
    if (typeof value !== 'string' || value.length === 0) throw this.error(key, 'must be a non-empty string');
    return value;
  }

  private uid(value: unknown, key: string): number {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > 0xfffffffe) {
      throw this.error(key, 'must be a uid (an integer >= 0)');
    }
    return value;
  }
}

