/**
 * c/storage's `storage.conf`, as far as croot needs it: the `[storage]`
 * table's `driver`, `graphroot`, `runroot` and `rootless_storage_path`, and the
 * variable expansion c/storage applies to them. The file is parsed whole by
 * smol-toml, so anything that is not TOML is refused with its line, as
 * c/storage refuses it; tables other than `[storage]` are ignored.
 */
import { readFile } from 'node:fs/promises';
import type * as SmolToml from 'smol-toml' with { 'resolution-mode': 'import' };
import { CrootError } from '../../core/errors/croot-error.js';

// smol-toml's types are ESM-only, but the package ships a CommonJS build
// (its `require` export, dist/index.cjs), which is what croot (CommonJS, run
// by Node, tsc and Jest alike) loads: synchronously, with no dynamic import().
const toml = require('smol-toml') as typeof SmolToml;

/** The settings of one `storage.conf` that locate a store (unset keys are absent). */
export interface StorageConf {
  /** The graph driver (`overlay`, `vfs`, ...): names the store's `<driver>-containers` directories. */
  readonly driver?: string;
  readonly graphroot?: string;
  readonly runroot?: string;
  readonly rootlessStoragePath?: string;
}

/** What reading a `storage.conf` gave: no file, its settings, or why it cannot be used. */
export type StorageConfRead =
  | { readonly state: 'absent' }
  | { readonly state: 'read'; readonly path: string; readonly conf: StorageConf }
  | { readonly state: 'bad'; readonly path: string; readonly reason: string };

const KEYS: Readonly<Record<string, keyof StorageConf>> = {
  driver: 'driver',
  graphroot: 'graphroot',
  runroot: 'runroot',
  rootless_storage_path: 'rootlessStoragePath',
};

/**
 * Parses `storage.conf` text; throws `ERR_CONFIG` when it is not TOML (with
 * the line and column smol-toml names) or when one of the keys croot reads
 * is not a string (with the key).
 */
export function parseStorageConf(text: string): StorageConf {
  let doc: Record<string, unknown>;
  try {
    doc = toml.parse(text);
  } catch (err) {
    if (!(err instanceof toml.TomlError)) throw err;
    // smol-toml's message is "Invalid TOML document: <what>", then an excerpt of the text.
    const what = (err.message.split('\n', 1)[0] ?? '').replace(/^Invalid TOML document: /, '');
    throw new CrootError('ERR_CONFIG', `line ${err.line}, column ${err.column}: ${what}`, { cause: err });
  }
  const storage = doc.storage;
  if (storage === undefined) return {};
  if (typeof storage !== 'object' || storage === null || Array.isArray(storage) || storage instanceof Date) {
    throw new CrootError('ERR_CONFIG', `storage must be a table, not ${kindOf(storage)}`);
  }
  const conf: { -readonly [K in keyof StorageConf]: StorageConf[K] } = {};
  for (const [key, field] of Object.entries(KEYS)) {
    const value = (storage as Record<string, unknown>)[key];
    if (value === undefined) continue;
    if (typeof value !== 'string') throw new CrootError('ERR_CONFIG', `[storage] ${key} must be a string, not ${kindOf(value)}`);
    // c/storage treats an empty string as unset.
    if (value !== '') conf[field] = value;
  }
  return conf;
}

/** TOML's word for the kind of a parsed value, for messages. */
function kindOf(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a date';
  if (typeof value === 'object' && value !== null) return 'a table';
  if (typeof value === 'bigint' || typeof value === 'number') return 'a number';
  if (typeof value === 'boolean') return 'a boolean';
  if (typeof value === 'string') return 'a string';
  return typeof value;
}

/** Reads and parses one `storage.conf`; a missing file is `absent`, any other failure `bad` (the reason names the file). */
export async function readStorageConf(path: string): Promise<StorageConfRead> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { state: 'absent' };
    return { state: 'bad', path, reason: `${path}: ${(err as Error).message}` };
  }
  try {
    return { state: 'read', path, conf: parseStorageConf(text) };
  } catch (err) {
    return { state: 'bad', path, reason: `${path}: ${(err as Error).message}` };
  }
}

/** The user a path is expanded for. */
export interface ExpansionUser {
  readonly name: string;
  readonly uid: number;
  readonly home: string;
}

/**
 * Expands a path the way c/storage does for a rootless user: the literal
 * `$UID` first, then `$NAME` / `${NAME}` from the environment podman runs
 * in. croot does not run in that environment, so it knows only `HOME` and
 * `USER` (from the user's passwd entry); any other variable, and a result
 * that is not absolute (c/storage expands no `~`), throws `ERR_CONFIG`.
 */
export function expandStoragePath(path: string, user: ExpansionUser): string {
  const known: Record<string, string> = { HOME: user.home.replace(/\/+$/, '') || '/', USER: user.name };
  const withUid = path.replaceAll('$UID', String(user.uid));
  const expanded = withUid.replace(/\$(?:\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g, (_whole, braced: string | undefined, bare: string | undefined) => {
    const name = braced ?? bare ?? '';
    const value = known[name];
    if (value === undefined) throw new CrootError('ERR_CONFIG', `"${path}": $${name} is not known outside the user's session`);
    return value;
  });
  if (!expanded.startsWith('/')) throw new CrootError('ERR_CONFIG', `"${path}" is not an absolute path`);
  return normalizePath(expanded);
}

/** `filepath.Clean` for absolute paths: no `//`, `.` or `..` parts, no trailing slash. */
function normalizePath(path: string): string {
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
}
