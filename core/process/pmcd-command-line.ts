/**
 * pmcd's agent command lines. pmcd sends STARTPMDA its argv joined by
 * spaces, with a word that holds a space or tab wrapped in `"…"` and every
 * `"` inside a word written as `\"` (pmcd's BuildCmdLine). PCP's pmdaroot
 * splits that on spaces alone, so a quoted argument arrives in pieces with
 * its quotes still on; croot undoes pmcd's quoting exactly.
 */
import { CrootError, Errno } from '../errors/croot-error.js';

const SEPARATORS = new Set([' ', '\t']);

/**
 * Splits a command line into argv: words separated by runs of spaces/tabs;
 * `"` opens and closes a quoted part (white space kept, the quotes dropped);
 * `\"` is a literal `"` inside or outside quotes; any other backslash is
 * literal (pmcd never escapes backslashes). `""` is an empty argument.
 * Throws ERR_PROTOCOL (status -EINVAL) for an unterminated quote.
 */
export function splitCommandLine(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quoted = false;
  let quoteStart = -1;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i] as string;
    if (ch === '\\' && line[i + 1] === '"') {
      word += '"';
      inWord = true;
      i++;
      continue;
    }
    if (ch === '"') {
      quoted = !quoted;
      if (quoted) quoteStart = i;
      inWord = true;
      continue;
    }
    if (!quoted && SEPARATORS.has(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      continue;
    }
    word += ch;
    inWord = true;
  }
  if (quoted) {
    throw new CrootError('ERR_PROTOCOL', `unterminated quote at offset ${quoteStart} of the command line`, {
      status: -Errno.EINVAL,
      details: { commandLine: line },
    });
  }
  if (inWord) words.push(word);
  return words;
}

/**
 * Joins argv the way pmcd does: words with a space or tab wrapped in `"…"`,
 * every `"` preceded by `\`. An empty word becomes `""` (pmcd would lose it).
 * `splitCommandLine(joinCommandLine(argv))` gives `argv` back unless a word
 * that needs quotes ends in a backslash (pmcd's encoding is ambiguous there).
 */
export function joinCommandLine(argv: readonly string[]): string {
  return argv
    .map((arg) => {
      const escaped = arg.replace(/"/g, '\\"');
      return arg === '' || /[ \t]/.test(arg) ? `"${escaped}"` : escaped;
    })
    .join(' ');
}
