import { StreamLogger } from './logger.js';
import { RateLimitedLogger, type RateLimitOptions } from './rate-limited-logger.js';

describe('RateLimitedLogger', () => {
  let lines: string[];
  let clock: number;

  /** Lines as the StreamLogger writes them, without the time and pid prefix. */
  const written = (): string[] => lines.map((l) => l.replace(/^\S+ crootd\[\d+\] /, '').trimEnd());

  function make(options: RateLimitOptions = {}): RateLimitedLogger {
    return new RateLimitedLogger(new StreamLogger('debug', (line) => lines.push(line)), { now: () => clock, ...options });
  }

  beforeEach(() => {
    lines = [];
    clock = 1_000_000;
  });

  it('writes a kind of line up to its burst, then counts it, and summarises the count per field value', () => {
    const logger = make({ burstPerKind: 2 });
    for (let i = 0; i < 4823; i++) logger.warn('request failed', { pid: 7, status: i < 4002 ? -12399 : -22 });
    clock += 60_000;
    logger.flush();
    expect(written()).toEqual([
      'WARN request failed pid=7 status=-12399',
      'WARN request failed pid=7 status=-12399',
      'WARN request failed ×4821 in the last 60 s (status -12399 ×4000, -22 ×821)',
    ]);
  });

  it('counts each level and message apart, and caps all kinds together', () => {
    const logger = make({ burstPerKind: 3, maxLinesPerInterval: 4 });
    for (let i = 0; i < 5; i++) {
      logger.warn('a');
      logger.error('a');
      logger.warn('b');
    }
    logger.flush();
    expect(written()).toEqual(['WARN a', 'ERROR a', 'WARN b', 'WARN a', 'WARN a ×3 in the last 1 s', 'ERROR a ×4 in the last 1 s', 'WARN b ×4 in the last 1 s']);
  });

  it('summarises kinds beyond maxKinds together, counting their messages', () => {
    const logger = make({ burstPerKind: 1, maxKinds: 2 });
    for (const m of ['one', 'two', 'three', 'four', 'three']) logger.warn(m);
    logger.flush();
    expect(written()).toEqual(['WARN one', 'WARN two', 'WARN other messages ×3 in the last 1 s (message three ×2, four ×1)']);
  });

  it('starts every interval with fresh budgets, writing the last interval\'s summary first', () => {
    const logger = make({ burstPerKind: 1, intervalMs: 10_000 });
    logger.info('tick', { label: 'x' });
    logger.info('tick', { label: 'y' });
    clock += 10_000;
    logger.info('tick', { label: 'z' });
    expect(written()).toEqual(['INFO tick label=x', 'INFO tick ×1 in the last 10 s (label y ×1)', 'INFO tick label=z']);
  });

  it('writes the summary when the interval ends although nothing more is logged', () => {
    jest.useFakeTimers({ now: clock });
    try {
      const logger = make({ burstPerKind: 1, intervalMs: 60_000, now: () => Date.now() });
      logger.warn('refused', { uid: 65534 });
      logger.warn('refused', { uid: 65534 });
      jest.advanceTimersByTime(59_999);
      expect(written()).toEqual(['WARN refused uid=65534']);
      jest.advanceTimersByTime(1);
      expect(written()).toEqual(['WARN refused uid=65534', 'WARN refused ×1 in the last 60 s (uid 65534 ×1)']);
    } finally {
      jest.useRealTimers();
    }
  });

  it('cuts long messages and field values', () => {
    const logger = make({ maxFieldLength: 8 });
    logger.warn('a very long message', { args: 'x'.repeat(20), list: ['abcdefgh', 'ijklmnop'], n: 123456789012 });
    expect(written()).toEqual([`WARN a very l…(11 more) args="${'x'.repeat(8)}…(12 more)" list="[\\"abcdef…(15 more)" n=123456789012`]);
  });

  it('neither writes nor counts lines below its level', () => {
    const logger = make({ level: 'warn', burstPerKind: 1, maxLinesPerInterval: 1 });
    for (let i = 0; i < 100; i++) logger.debug('noise');
    logger.warn('kept');
    logger.flush();
    expect(written()).toEqual(['WARN kept']);
  });

  it('keeps a flood of any mix of lines under its bound', () => {
    const logger = make();
    const bound = (60 + 64 + 1) * 1024;
    for (let i = 0; i < 100_000; i++) {
      const junk = `${i % 97}`.repeat(i % 500);
      if (i % 3 === 0) logger.warn('request failed', { status: -(i % 50), error: junk });
      else if (i % 3 === 1) logger.warn(`unknown request type ${i % 1000}`, { type: junk });
      else logger.error('unframeable request; closing', { reason: junk });
    }
    logger.flush();
    const bytes = lines.reduce((sum, l) => sum + Buffer.byteLength(l), 0);
    expect(lines.length).toBeLessThanOrEqual(60 + 64 + 1);
    expect(bytes).toBeLessThan(bound);
    // Nothing lost from the count: the summaries and the lines written add up to every line logged.
    const summarised = written()
      .map((l) => / ×(\d+) in the last /.exec(l)?.[1])
      .filter((n): n is string => n !== undefined)
      .reduce((sum, n) => sum + Number(n), 0);
    expect(summarised + written().filter((l) => !/ in the last \d+ s/.test(l)).length).toBe(100_000);
  });
  it('keeps the documented defaults: 10 lines a kind and 60 in all a minute, 64 kinds told apart, 256 characters', () => {
    const logger = make();
    for (let k = 0; k < 70; k++) for (let i = 0; i < 12; i++) logger.warn(`kind ${k}`, { code: 'E' });
    clock += 59_999;
    logger.warn('kind 0', { code: 'E' });
    expect(lines).toHaveLength(60);
    clock += 1;
    logger.warn('kind 0', { code: 'F' });
    const out = written();
    expect(out).toHaveLength(60 + 64 + 1 + 1);
    expect(out.slice(0, 11)).toEqual([...Array.from({ length: 10 }, () => 'WARN kind 0 code=E'), 'WARN kind 1 code=E']);
    expect(out[60]).toBe('WARN kind 0 ×3 in the last 60 s (code E ×3)');
    expect(out[66]).toBe('WARN kind 6 ×12 in the last 60 s (code E ×12)');
    expect(out[60 + 63]).toBe('WARN kind 63 ×12 in the last 60 s (code E ×12)');
    expect(out[60 + 64]).toBe(
      'WARN other messages ×72 in the last 60 s (message "kind 64" ×12, "kind 65" ×12, "kind 66" ×12, "kind 67" ×12, "kind 68" ×12, others ×12; code E ×72)',
    );
    // The next minute starts with fresh budgets.
    expect(out[125]).toBe('WARN kind 0 code=F');
  });

  it('passes debug lines on, cutting messages and values at 256 characters, by default', () => {
    make().debug('x'.repeat(300), { reason: 'y'.repeat(257) });
    expect(written()).toEqual([`DEBUG ${'x'.repeat(256)}…(44 more) reason="${'y'.repeat(256)}…(1 more)"`]);
  });

  it('counts the documented fields of the lines it holds back, and no others', () => {
    const logger = make({ burstPerKind: 0 });
    logger.error('refused', { pid: 1, status: -1, type: 'T', uid: 7, label: 'L', reason: 'R', code: 'C', engine: 'docker' });
    logger.flush();
    expect(written()).toEqual(['ERROR refused ×1 in the last 1 s (status -1 ×1; type T ×1; uid 7 ×1; label L ×1; reason R ×1; code C ×1; engine docker ×1)']);
  });

  it('names the most frequent values of a field, most frequent first, and counts the rest as others', () => {
    const logger = make({ burstPerKind: 0 });
    const counts: [string, number][] = [['c', 8], ['a', 10], ['b', 9], ['d', 7], ['e', 6], ['f', 5], ['g', 4], ['h', 3], ['i', 2], ['j', 1]];
    for (const [status, n] of counts) for (let i = 0; i < n; i++) logger.warn('x', { status });
    clock += 1_499;
    logger.flush();
    // Eight values are told apart (c, a, b, d, e, f, g, h); i and j are only counted.
    expect(written()).toEqual(['WARN x ×55 in the last 1 s (status a ×10, b ×9, c ×8, d ×7, e ×6, others ×15)']);
  });

  it('quotes summarised values that could be taken for the summary\'s own punctuation, and cuts long ones', () => {
    const logger = make({ burstPerKind: 0 });
    for (const reason of ['a b', 'x,y', 'p;q', '(z)', '']) logger.warn('x', { reason });
    for (const reason of ['plain', 'y'.repeat(100)]) logger.warn('y', { reason });
    clock += 1_500;
    logger.flush();
    expect(written()).toEqual([
      'WARN x ×5 in the last 2 s (reason "a b" ×1, "x,y" ×1, "p;q" ×1, "(z)" ×1, "" ×1)',
      `WARN y ×2 in the last 2 s (reason plain ×1, "${'y'.repeat(64)}…(36 more)" ×1)`,
    ]);
  });
  it('starts a new interval on flush: the summary of what comes next is written at the end of that interval', () => {
    jest.useFakeTimers({ now: clock });
    try {
      const logger = make({ burstPerKind: 1, intervalMs: 60_000, now: () => Date.now() });
      logger.warn('a');
      logger.warn('a');
      jest.advanceTimersByTime(30_000);
      logger.flush();
      logger.warn('b');
      logger.warn('b');
      jest.advanceTimersByTime(30_000);
      expect(written()).toEqual(['WARN a', 'WARN a ×1 in the last 30 s', 'WARN b']);
      jest.advanceTimersByTime(30_000);
      expect(written()).toEqual(['WARN a', 'WARN a ×1 in the last 30 s', 'WARN b', 'WARN b ×1 in the last 60 s']);
    } finally {
      jest.useRealTimers();
    }
  });

  it('keeps the kinds beyond maxKinds apart by level', () => {
    const logger = make({ burstPerKind: 1, maxKinds: 1 });
    logger.info('first');
    logger.warn('w');
    logger.error('e');
    logger.flush();
    expect(written()).toEqual(['INFO first', 'WARN other messages ×1 in the last 1 s (message w ×1)', 'ERROR other messages ×1 in the last 1 s (message e ×1)']);
  });

  it('tells at most eight values of a field apart: a ninth is counted among the others, however often it comes', () => {
    const logger = make({ burstPerKind: 0 });
    for (const status of ['1', '2', '3', '4', '5', '6', '7', '8']) logger.warn('x', { status });
    for (let i = 0; i < 10; i++) logger.warn('x', { status: '9' });
    logger.flush();
    expect(written()).toEqual(['WARN x ×18 in the last 1 s (status 1 ×1, 2 ×1, 3 ×1, 4 ×1, 5 ×1, others ×13)']);
  });

  it('leaves a message of exactly maxFieldLength characters whole', () => {
    make({ maxFieldLength: 8 }).warn('12345678', { v: 'abcdefgh' });
    expect(written()).toEqual(['WARN 12345678 v=abcdefgh']);
  });
});
