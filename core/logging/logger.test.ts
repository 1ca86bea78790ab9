import { StreamLogger, type LogLevel } from './logger.js';
import { plural } from './plural.js';

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/** Logs one line at every level through a StreamLogger made by `make`, and gives the lines written. */
function everyLevel(make: (write: (line: string) => void) => StreamLogger): string[] {
  const lines: string[] = [];
  const logger = make((line) => lines.push(line));
  for (const level of LEVELS) logger[level](`${level} line`);
  return lines;
}

/** The line without its time and `name[pid] ` prefix. */
const body = (line: string): string => line.replace(/^\S+ \S+\[\d+\] /, '');

describe('StreamLogger', () => {
  it('writes one line per event: ISO time, name[pid], level, message, newline', () => {
    const lines: string[] = [];
    const before = Date.now();
    new StreamLogger('debug', (line) => lines.push(line), 'croot-t').warn('disk full');
    const after = Date.now();
    expect(lines).toHaveLength(1);
    const m = /^(\S+) croot-t\[(\d+)\] WARN disk full\n$/.exec(lines[0] as string);
    expect(m).not.toBeNull();
    expect(Number(m?.[2])).toBe(process.pid);
    const time = Date.parse(m?.[1] as string);
    expect(new Date(time).toISOString()).toBe(m?.[1]);
    expect(time).toBeGreaterThanOrEqual(before);
    expect(time).toBeLessThanOrEqual(after);
  });

  it('is named crootd unless told otherwise', () => {
    const lines: string[] = [];
    new StreamLogger('info', (line) => lines.push(line)).info('up');
    expect(lines[0]).toMatch(new RegExp(`^\\S+ crootd\\[${process.pid}\\] INFO up\\n$`));
  });

  it.each([
    ['debug', ['DEBUG debug line', 'INFO info line', 'WARN warn line', 'ERROR error line']],
    ['info', ['INFO info line', 'WARN warn line', 'ERROR error line']],
    ['warn', ['WARN warn line', 'ERROR error line']],
    ['error', ['ERROR error line']],
  ] as const)('at level %s writes that level and the more severe ones only', (level, expected) => {
    expect(everyLevel((write) => new StreamLogger(level, write)).map((l) => body(l).trimEnd())).toEqual(expected);
  });

  it('logs at info and above by default', () => {
    expect(everyLevel((write) => new StreamLogger(undefined, write)).map((l) => body(l).trimEnd())).toEqual([
      'INFO info line',
      'WARN warn line',
      'ERROR error line',
    ]);
  });

  it('appends fields as key=value, quoting values with blanks or quotes and writing non-strings as JSON, leaving out undefined ones', () => {
    const lines: string[] = [];
    const logger = new StreamLogger('debug', (line) => lines.push(line));
    logger.error('request failed', {
      status: -12399,
      engine: 'docker',
      reason: 'socket refused',
      quote: 'a"b',
      tab: 'a\tb',
      gone: undefined,
      list: [1, 2],
      named: ['x'],
      flag: false,
      nothing: null,
    });
    logger.info('no fields');
    logger.info('empty fields', {});
    logger.info('only undefined', { a: undefined });
    expect(lines.map(body)).toEqual([
      'ERROR request failed status=-12399 engine=docker reason="socket refused" quote="a\\"b" tab="a\\tb" list=[1,2] named="[\\"x\\"]" flag=false nothing=null\n',
      'INFO no fields\n',
      'INFO empty fields\n',
      'INFO only undefined\n',
    ]);
  });

  it('quotes a JSON value that holds a blank', () => {
    const lines: string[] = [];
    new StreamLogger('debug', (line) => lines.push(line)).info('x', { obj: { a: 'b c' } });
    expect(body(lines[0] as string)).toBe('INFO x obj="{\\"a\\":\\"b c\\"}"\n');
  });
});

describe('plural', () => {
  it('adds an s to every count but one', () => {
    expect([0, 1, 2, -1].map((n) => plural(n, 'container'))).toEqual(['0 containers', '1 container', '2 containers', '-1 containers']);
  });
});
