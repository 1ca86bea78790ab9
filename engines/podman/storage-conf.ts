/**
 * c/storage's `storage.conf`, as far as croot needs it: the `[storage]`
 * table's `driver`, `graphroot`, `runroot` and `rootless_storage_path`, and the
 * variable expansion c/storage applies to them. Only the TOML that such a
 * file can hold is understood; everything outside `[storage]` is checked for
 * syntax and ignored.
 */
import { readFile } from 'node:fs/promises';
import { CrootError } from '../../core/errors.js';

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

/** Marks a TOML value croot does not keep (number, boolean, date, array, inline table). */
const OTHER = Symbol('other');

/** Parses `storage.conf` text; throws `ERR_CONFIG` (with the line) when it is not valid TOML of that shape. */
export function parseStorageConf(text: string): StorageConf {
  return new TomlSubsetReader(text).read();
}

/** Reads and parses one `storage.conf`; a missing file is `absent`, any other failure `bad`. */
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
 * `USER` (from the passwd entry); any other variable, and a result that is
 * not absolute (c/storage expands no `~`), throws `ERR_CONFIG`.
 */
export function expandStoragePath(path: string, user: ExpansionUser): string {
  const known: Record<string, string> = { HOME: user.home.replace(/\/+$/, '') || '/', USER: user.name };
  const withUid = path.replaceAll('$UID', String(user.uid));
  const expanded = withUid.replace(/\$(?:\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g, (whole, braced: string | undefined, bare: string | undefined) => {
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

/** A cursor over TOML text that keeps `[storage]`'s string keys and checks the syntax of the rest. */
class TomlSubsetReader {
  private pos = 0;
  private table: string | undefined;
  private readonly tables = new Set<string>();
  private readonly storageKeys = new Set<string>();
  private readonly conf: { -readonly [K in keyof StorageConf]: StorageConf[K] } = {};

  constructor(private readonly text: string) {
    if (text.startsWith('\uFEFF')) this.pos = 1;
  }

  read(): StorageConf {
    for (;;) {
      this.skipBlank(true);
      if (this.pos >= this.text.length) return this.conf;
      if (this.peek() === '[') this.readHeader();
      else this.readKeyValue();
      this.endOfLine();
    }
  }

  private readHeader(): void {
    const arrayTable = this.text.startsWith('[[', this.pos);
    this.pos += arrayTable ? 2 : 1;
    const name = this.readKey(arrayTable ? ']]' : ']').join('.');
    if (!this.text.startsWith(arrayTable ? ']]' : ']', this.pos)) this.fail(`expected "${arrayTable ? ']]' : ']'}" after table name`);
    this.pos += arrayTable ? 2 : 1;
    if (!arrayTable) {
      if (this.tables.has(name)) this.fail(`table [${name}] defined twice`);
      this.tables.add(name);
    }
    this.table = name;
  }

  private readKeyValue(): void {
    const key = this.readKey('=');
    this.skipSpaces();
    if (this.peek() !== '=') this.fail(`expected "=" after key ${key.join('.')}`);
    this.pos++;
    this.skipSpaces();
    const at = this.pos;
    const value = this.readValue();
    if (this.table !== 'storage' || key.length !== 1) return;
    const name = key[0] as string;
    if (this.storageKeys.has(name)) this.fail(`key ${name} defined twice in [storage]`, at);
    this.storageKeys.add(name);
    const field = KEYS[name];
    if (field === undefined) return;
    if (typeof value !== 'string') this.fail(`${name} must be a string`, at);
    // c/storage treats an empty string as unset.
    if (value !== '') this.conf[field] = value;
  }

  /** A bare, quoted or dotted key; stops before `stop` or whitespace. */
  private readKey(stop: string): string[] {
    const parts: string[] = [];
    for (;;) {
      this.skipSpaces();
      const c = this.peek();
      if (c === '"') parts.push(this.readBasicString());
      else if (c === "'") parts.push(this.readLiteralString());
      else {
        const m = /^[A-Za-z0-9_-]+/.exec(this.text.slice(this.pos, this.pos + 256));
        if (m === null) this.fail(this.atLineEnd() || this.text.startsWith(stop, this.pos) ? 'missing key' : `unexpected "${c}" in key`);
        parts.push(m[0]);
        this.pos += m[0].length;
      }
      this.skipSpaces();
      if (this.peek() !== '.') return parts;
      this.pos++;
    }
  }

  private readValue(): string | typeof OTHER {
    const c = this.peek();
    if (c === '"') return this.text.startsWith('"""', this.pos) ? this.readMultilineBasic() : this.readBasicString();
    if (c === "'") return this.text.startsWith("'''", this.pos) ? this.readMultilineLiteral() : this.readLiteralString();
    if (c === '[') return this.readArray();
    if (c === '{') return this.readInlineTable();
    return this.readScalar();
  }

  private readArray(): typeof OTHER {
    this.pos++;
    for (;;) {
      this.skipBlank(true);
      if (this.peek() === ']') break;
      this.readValue();
      this.skipBlank(true);
      if (this.peek() === ',') {
        this.pos++;
        continue;
      }
      if (this.peek() !== ']') this.fail('expected "," or "]" in array');
      break;
    }
    this.pos++;
    return OTHER;
  }

  private readInlineTable(): typeof OTHER {
    this.pos++;
    this.skipSpaces();
    if (this.peek() === '}') {
      this.pos++;
      return OTHER;
    }
    for (;;) {
      this.readKey('=');
      if (this.peek() !== '=') this.fail('expected "=" in inline table');
      this.pos++;
      this.skipSpaces();
      this.readValue();
      this.skipSpaces();
      const c = this.peek();
      this.pos++;
      if (c === '}') return OTHER;
      if (c !== ',') this.fail('expected "," or "}" in inline table', this.pos - 1);
    }
  }

  /** Numbers, booleans, dates and times: checked loosely, never kept. */
  private readScalar(): typeof OTHER {
    const rest = this.text.slice(this.pos, this.pos + 128);
    const m = /^[^\s,\]}#]+/.exec(rest);
    if (m === null) this.fail('missing value');
    let token = m[0];
    const time = /^\d{4}-\d{2}-\d{2}( \d{2}:[^\s,\]}#]+)/.exec(rest);
    if (time !== null) token = time[0];
    const valid =
      /^(true|false|[+-]?(inf|nan))$/.test(token) ||
      /^[+-]?(0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+|\d[\d_]*(\.\d[\d_]*)?([eE][+-]?\d[\d_]*)?)$/.test(token) ||
      /^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?)?$/.test(token) ||
      /^\d{2}:\d{2}:\d{2}(\.\d+)?$/.test(token);
    if (!valid) this.fail(`invalid value ${token}`);
    this.pos += token.length;
    return OTHER;
  }

  private readBasicString(): string {
    this.pos++;
    let out = '';
    for (;;) {
      const c = this.peek();
      if (c === undefined || c === '\n' || c === '\r') this.fail('unterminated string');
      this.pos++;
      if (c === '"') return out;
      out += c === '\\' ? this.readEscape() : c;
    }
  }

  private readMultilineBasic(): string {
    this.pos += 3;
    this.skipOneNewline();
    let out = '';
    for (;;) {
      if (this.pos >= this.text.length) this.fail('unterminated string');
      if (this.text.startsWith('"""', this.pos)) {
        let end = this.pos + 3;
        while (this.text[end] === '"' && end < this.pos + 5) end++;
        out += this.text.slice(this.pos + 3, end);
        this.pos = end;
        return out;
      }
      const c = this.text[this.pos++] as string;
      if (c !== '\\') {
        out += c;
        continue;
      }
      const ws = /^[ \t]*\r?\n[\s]*/.exec(this.text.slice(this.pos));
      if (ws !== null) this.pos += ws[0].length;
      else out += this.readEscape();
    }
  }

  private readLiteralString(): string {
    const end = this.text.indexOf("'", this.pos + 1);
    const nl = this.text.slice(this.pos + 1, end < 0 ? undefined : end).search(/[\r\n]/);
    if (end < 0 || nl >= 0) this.fail('unterminated string');
    const out = this.text.slice(this.pos + 1, end);
    this.pos = end + 1;
    return out;
  }

  private readMultilineLiteral(): string {
    this.pos += 3;
    this.skipOneNewline();
    const end = this.text.indexOf("'''", this.pos);
    if (end < 0) this.fail('unterminated string');
    let close = end + 3;
    while (this.text[close] === "'" && close < end + 5) close++;
    const out = this.text.slice(this.pos, close - 3);
    this.pos = close;
    return out;
  }

  private readEscape(): string {
    const c = this.text[this.pos++];
    const simple: Record<string, string> = { b: '\b', t: '\t', n: '\n', f: '\f', r: '\r', '"': '"', '\\': '\\' };
    if (c !== undefined && simple[c] !== undefined) return simple[c];
    if (c === 'u' || c === 'U') {
      const len = c === 'u' ? 4 : 8;
      const hex = this.text.slice(this.pos, this.pos + len);
      const code = /^[0-9a-fA-F]+$/.test(hex) && hex.length === len ? Number.parseInt(hex, 16) : NaN;
      if (!(code <= 0x10ffff) || (code >= 0xd800 && code <= 0xdfff)) this.fail(`invalid escape \\${c}${hex}`, this.pos - 2);
      this.pos += len;
      return String.fromCodePoint(code);
    }
    return this.fail(`invalid escape \\${c ?? ''}`, this.pos - 2);
  }

  private skipOneNewline(): void {
    if (this.text.startsWith('\r\n', this.pos)) this.pos += 2;
    else if (this.peek() === '\n') this.pos++;
  }

  /** After a header or key/value: spaces, a comment, then a newline or the end. */
  private endOfLine(): void {
    this.skipSpaces();
    if (this.peek() === '#') this.skipComment();
    if (this.pos >= this.text.length) return;
    if (!this.atLineEnd()) this.fail(`unexpected "${this.peek()}" after value`);
  }

  /** Spaces and tabs, and with `lines` also newlines and comments. */
  private skipBlank(lines: boolean): void {
    for (;;) {
      this.skipSpaces();
      const c = this.peek();
      if (c === '#') this.skipComment();
      else if (lines && (c === '\n' || c === '\r')) this.pos++;
      else return;
    }
  }

  private skipSpaces(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.pos++;
  }

  private skipComment(): void {
    while (this.pos < this.text.length && this.peek() !== '\n' && this.peek() !== '\r') this.pos++;
  }

  private atLineEnd(): boolean {
    const c = this.peek();
    return c === '\n' || c === '\r' || c === undefined;
  }

  private peek(): string | undefined {
    return this.text[this.pos];
  }

  private fail(message: string, at = this.pos): never {
    const line = this.text.slice(0, at).split('\n').length;
    throw new CrootError('ERR_CONFIG', `line ${line}: ${message}`);
  }
}
