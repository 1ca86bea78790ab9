/**
 * systemClock: Node's monotonic clock and timers, as Node itself reports
 * them (`performance.now()`, the order in which its timers fire, and
 * `process.getActiveResourcesInfo()` for the timers that keep it running).
 */
import { systemClock } from './podman-clock.js';

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
