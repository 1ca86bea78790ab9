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
});
