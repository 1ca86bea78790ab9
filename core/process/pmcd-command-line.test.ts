import { joinCommandLine, splitCommandLine } from './pmcd-command-line.js';
import { CrootError } from '../errors/croot-error.js';

describe('splitCommandLine', () => {
  it('splits words on runs of spaces and tabs', () => {
    expect(splitCommandLine('/var/lib/pcp/pmdas/proc/pmdaproc  -d\t3 ')).toEqual(['/var/lib/pcp/pmdas/proc/pmdaproc', '-d', '3']);
  });

  it('keeps white space inside double quotes and drops the quotes', () => {
    expect(splitCommandLine('/bin/sh -c "echo a  b"')).toEqual(['/bin/sh', '-c', 'echo a  b']);
  });

  it('reads \\" as a literal quote, inside and outside quotes', () => {
    expect(splitCommandLine('/bin/sh -c "echo \\"a b\\" > /tmp/f" say\\"hi')).toEqual(['/bin/sh', '-c', 'echo "a b" > /tmp/f', 'say"hi']);
  });

  it('leaves other backslashes alone', () => {
    expect(splitCommandLine('prog a\\b "c\\d e" f\\')).toEqual(['prog', 'a\\b', 'c\\d e', 'f\\']);
  });

  it('joins a quoted part to the word it touches', () => {
    expect(splitCommandLine('prog --opt="a b"c')).toEqual(['prog', '--opt=a bc']);
  });

  it('gives an empty argument for ""', () => {
    expect(splitCommandLine('prog "" x')).toEqual(['prog', '', 'x']);
  });

  it('gives no words for an empty or blank line', () => {
    expect(splitCommandLine('')).toEqual([]);
    expect(splitCommandLine(' \t ')).toEqual([]);
  });

  it('refuses an unterminated quote with ERR_PROTOCOL and -EINVAL', () => {
    let caught: unknown;
    try {
      splitCommandLine('/bin/sh -c "echo');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(CrootError);
    expect(caught).toMatchObject({ code: 'ERR_PROTOCOL', status: -22, details: { commandLine: '/bin/sh -c "echo' } });
    // Where the quote that never closes opened, for the log reader.
    expect((caught as Error).message).toContain('offset 11');
  });
});

describe('joinCommandLine', () => {
  it('quotes as pmcd does: words with white space in quotes, every quote escaped', () => {
    expect(joinCommandLine(['/bin/sh', '-c', 'echo "a b"', 'x"y'])).toBe('/bin/sh -c "echo \\"a b\\"" x\\"y');
  });

  it.each([
    [['/var/lib/pcp/pmdas/linux/pmdalinux']],
    [['/bin/sh', '-c', 'printf "%s\\n" "$@" > /tmp/out', 'sh', 'a b', 'c\td', '"', '\\', 'x\\"y']],
    [['prog', '', 'tail']],
  ])('round-trips %j through splitCommandLine', (argv) => {
    expect(splitCommandLine(joinCommandLine(argv))).toEqual(argv);
  });
});
