/**
 * The agents pmcd.conf names, read the way pmcd reads them, so the process
 * service can start for an unprivileged client (pmcd as the pcp user)
 * exactly the command lines pmcd itself would send, and nothing else.
 *
 * pmcd's scanner (src/pmcd/src/config.c in PCP): lines, a trailing `\`
 * joining the next line; tokens separated by white space; `#` starts a
 * comment (also inside a token) unless written `\#` or inside quotes; a
 * token that starts with `"` runs to the next unescaped `"`, white space
 * kept; `\"` and `\#` stand for `"` and `#`; a `"` inside an unquoted token
 * is an ordinary character. An agent line is `label domain type ...`:
 * `pipe binary [notready...] argv...`, `socket inet|ipv6|unix port [argv...]`
 * or `dso ...` (never started as a process). The `[access]` section ends the
 * agents. An unterminated quote makes pmcd give up on the whole file; here
 * it leaves no agent at all.
 */
import { statSync, readFileSync } from 'node:fs';
import { IpcType } from '../protocol/root-pdus.js';

/** A pipe or socket agent of pmcd.conf with the command pmcd starts it with. */
export interface PmcdAgent {
  /** The first word of its line: what pmcd sends as the STARTPMDA label. */
  readonly label: string;
  readonly ipctype: typeof IpcType.PIPE | typeof IpcType.SOCKET;
  /** The command's words, as pmcd splits them (and joins them for STARTPMDA). */
  readonly argv: readonly string[];
  /** 1-based line the agent starts on. */
  readonly line: number;
}

export interface ParsedPmcdConf {
  readonly agents: readonly PmcdAgent[];
  /** Lines pmcd would reject, and why (the agents of other lines still count, except after an unterminated quote). */
  readonly problems: readonly string[];
}

/** Where pmcd reads its config: `$PCP_PMCDCONF_PATH`, else pcp.conf's `PCP_PMCDCONF_PATH`, else Debian's and Fedora's path. */
export const DEFAULT_PMCD_CONF = '/etc/pcp/pmcd/pmcd.conf';

export function pmcdConfPath(env: Readonly<Record<string, string | undefined>>): string {
  const fromEnv = env.PCP_PMCDCONF_PATH;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  return pcpConfValue(env.PCP_CONF ?? '/etc/pcp.conf', 'PCP_PMCDCONF_PATH') ?? DEFAULT_PMCD_CONF;
}

function pcpConfValue(path: string, key: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m?.[1] === key && m[2] !== undefined && m[2] !== '') return m[2].trim().replace(/^"(.*)"$/, '$1');
  }
  return undefined;
}

interface Token {
  readonly text: string;
  /** The token was written in quotes (so `[` or `#` in it mean nothing). */
  readonly quoted: boolean;
}

class UnterminatedQuote extends Error {}

const isSpace = (ch: string | undefined): boolean => ch === ' ' || ch === '\t' || ch === '\r' || ch === '\v' || ch === '\f';

/** Removes the backslash of `\#` and `\"`, as pmcd does once a token holds either. */
const unescape = (raw: string): string => raw.replace(/\\([#"])/g, '$1');

/** The tokens of one (joined) line, comments dropped. */
function tokenize(line: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  for (;;) {
    while (isSpace(line[i])) i++;
    if (i >= line.length || line[i] === '#') return tokens;
    if (line[i] === '"') {
      let j = i + 1;
      while (j < line.length && !(line[j] === '"' && line[j - 1] !== '\\')) j++;
      if (j >= line.length) throw new UnterminatedQuote();
      tokens.push({ text: unescape(line.slice(i + 1, j)), quoted: true });
      i = j + 1;
      continue;
    }
    let j = i + 1;
    while (j < line.length && !isSpace(line[j]) && !(line[j] === '#' && line[j - 1] !== '\\')) j++;
    tokens.push({ text: unescape(line.slice(i, j)), quoted: false });
    i = j;
  }
}

/** The text's lines with pmcd's `\` continuations joined; each with its first line number. */
function joinedLines(text: string): Array<{ line: number; text: string }> {
  const out: Array<{ line: number; text: string }> = [];
  const raw = text.split('\n');
  for (let n = 0; n < raw.length; n++) {
    const start = n + 1;
    let joined = raw[n] as string;
    while (joined.endsWith('\\') && n + 1 < raw.length) {
      joined = `${joined.slice(0, -1)} ${raw[++n] as string}`;
    }
    out.push({ line: start, text: joined });
  }
  return out;
}

const keyword = (token: Token | undefined, word: string): boolean => token !== undefined && token.text.toLowerCase() === word;

/** The pipe and socket agents of a pmcd.conf text. */
export function parsePmcdConf(text: string): ParsedPmcdConf {
  const agents: PmcdAgent[] = [];
  const problems: string[] = [];
  for (const { line, text: content } of joinedLines(text)) {
    let tokens: Token[];
    try {
      tokens = tokenize(content);
    } catch {
      // pmcd stops reading here and refuses the whole file.
      return { agents: [], problems: [...problems, `line ${line}: unterminated quoted string (pmcd gives up on the file)`] };
    }
    const [label, domain, type, ...rest] = tokens;
    if (label === undefined) continue;
    if (!label.quoted && label.text.startsWith('[')) break; // [access]
    if (domain === undefined || !/^\d+$/.test(domain.text)) {
      problems.push(`line ${line}: expected a domain number for "${label.text}"`);
      continue;
    }
    if (keyword(type, 'dso')) continue;
    if (keyword(type, 'pipe')) {
      if (!keyword(rest[0], 'binary')) {
        problems.push(`line ${line}: pipe PDU type expected ("binary")`);
        continue;
      }
      let k = 1;
      while (keyword(rest[k], 'notready')) k++;
      const argv = rest.slice(k).map((t) => t.text);
      if (argv.length === 0) {
        problems.push(`line ${line}: command to create pipe agent expected`);
        continue;
      }
      agents.push({ label: label.text, ipctype: IpcType.PIPE, argv, line });
      continue;
    }
    if (keyword(type, 'socket')) {
      if (!['inet', 'ipv6', 'unix'].some((w) => keyword(rest[0], w)) || rest[1] === undefined) {
        problems.push(`line ${line}: expected a socket address domain and port`);
        continue;
      }
      const argv = rest.slice(2).map((t) => t.text);
      if (argv.length > 0) agents.push({ label: label.text, ipctype: IpcType.SOCKET, argv, line });
      continue;
    }
    problems.push(`line ${line}: expected dso, socket or pipe`);
  }
  return { agents, problems };
}

/** pmcd.conf as last read: its path, its agents, or why it could not be read. */
export interface PmcdConfSnapshot {
  readonly path: string;
  readonly agents: readonly PmcdAgent[];
  readonly problems: readonly string[];
  /** Set when the file could not be read (then `agents` is empty). */
  readonly error?: string;
}

/**
 * pmcd.conf, re-read whenever its identity or modification time changes
 * (one stat per call; STARTPMDA is rare).
 */
export class PmcdConfAgents {
  private stamp: string | undefined;
  private snapshot: PmcdConfSnapshot | undefined;

  constructor(private readonly path: () => string) {}

  current(): PmcdConfSnapshot {
    const path = this.path();
    let stamp: string;
    try {
      const st = statSync(path, { bigint: true });
      stamp = `${path}\0${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    } catch (err) {
      this.stamp = undefined;
      this.snapshot = undefined;
      return { path, agents: [], problems: [], error: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
    }
    if (stamp === this.stamp && this.snapshot !== undefined) return this.snapshot;
    let snapshot: PmcdConfSnapshot;
    try {
      snapshot = { path, ...parsePmcdConf(readFileSync(path, 'utf8')) };
    } catch (err) {
      snapshot = { path, agents: [], problems: [], error: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
    }
    this.stamp = stamp;
    this.snapshot = snapshot;
    return snapshot;
  }
}
