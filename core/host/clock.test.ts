/**
 * systemClock: Node's monotonic clock and timers, as Node itself reports
 * them (`performance.now()`, the order in which its timers fire, and
 * `process.getActiveResourcesInfo()` for the timers that keep it running).
 * sleep: on a clock the test moves, and an AbortSignal of Node's.
 */
import { getEventListeners } from 'node:events';
import { ManualClock } from '../../test/support/manual-clock.js';
import { sleep, systemClock } from './clock.js';

/** Resolves after Node's own timer of `ms`: a timer of fewer ms set before it has fired by then. */
function nodeTimer(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** How many timers keep Node's event loop alive now. */
function refTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

describe('systemClock', () => {
  describe('.now', () => {
    it('reads performance.now()', () => {
      const before = performance.now();
      const now = systemClock.now();
      const after = performance.now();
      expect(now).toBeGreaterThanOrEqual(before);
      expect(now).toBeLessThanOrEqual(after);
    });
  });

  describe('.after', () => {
    it('calls back once its time has passed, before a Node timer set after it for longer', async () => {
      const calls: string[] = [];
      systemClock.after(1, () => calls.push('clock'));
      await nodeTimer(30);
      expect(calls).toEqual(['clock']);
    });

    it('never calls back once cancelled', async () => {
      const calls: string[] = [];
      const cancel = systemClock.after(1, () => calls.push('clock'));
      cancel();
      await nodeTimer(30);
      expect(calls).toEqual([]);
    });

    it('sets a timer that does not keep the process alive', () => {
      const before = refTimers();
      const cancel = systemClock.after(3600e3, () => undefined);
      try {
        expect(refTimers()).toBe(before);
      } finally {
        cancel();
      }
    });
  });
});

describe('sleep', () => {
  /** 'resolved', 'rejected: MESSAGE' or 'pending' once the microtasks queued so far have run. */
  async function outcome(p: Promise<void>): Promise<string> {
    let state = 'pending';
    p.then(
      () => (state = 'resolved'),
      (err: Error) => (state = `rejected: ${err.message}`),
    );
    for (let i = 0; i < 5; i++) await Promise.resolve();
    return state;
  }

  it('resolves once its clock has moved by its time, not before', async () => {
    const clock = new ManualClock();
    const p = sleep(clock, 250, new AbortController().signal);
    expect(clock.pending()).toEqual([250]);
    clock.advance(249);
    expect(await outcome(p)).toBe('pending');
    clock.advance(1);
    expect(await outcome(p)).toBe('resolved');
    expect(clock.pending()).toEqual([]);
  });

  it('rejects at once and cancels its timer when its signal aborts', async () => {
    const clock = new ManualClock();
    const abort = new AbortController();
    const p = sleep(clock, 250, abort.signal);
    abort.abort();
    expect(await outcome(p)).toBe('rejected: aborted');
    expect(clock.pending()).toEqual([]);
  });

  it('rejects without setting a timer when its signal has aborted already', async () => {
    const clock = new ManualClock();
    const abort = new AbortController();
    abort.abort();
    expect(await outcome(sleep(clock, 250, abort.signal))).toBe('rejected: aborted');
    expect(clock.pending()).toEqual([]);
  });

  it('leaves no listener on its signal once it has resolved', async () => {
    const clock = new ManualClock();
    const abort = new AbortController();
    const p = sleep(clock, 10, abort.signal);
    clock.advance(10);
    await p;
    // An abort after the sleep ended changes nothing: no listener is left to reject or cancel.
    expect(getEventListeners(abort.signal, 'abort')).toHaveLength(0);
  });
});
