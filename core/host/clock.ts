/**
 * Where an engine reads the time and sets its timers (bounds, backoffs,
 * retries): Node's monotonic clock and timers, or, in tests, a clock the
 * test moves and fires itself (test/support/manual-clock.ts), so that what
 * happens at a bound, an age or the end of a backoff is tested without
 * waiting for real time to pass.
 */
export interface Clock {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Calls `callback` once after `ms`, without keeping the process alive; the function returned cancels it. */
  after(ms: number, callback: () => void): () => void;
}

/** `performance.now()` and an unref'd `setTimeout`. */
export const systemClock: Clock = {
  now: () => performance.now(),
  after: (ms, callback) => {
    const timer = setTimeout(callback, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
};

/** Resolves after `ms` on `clock`, or rejects at once (and cancels its timer) when `signal` aborts. */
export function sleep(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) {
      reject(new Error('aborted'));
      return;
    }
    const onAbort = (): void => {
      cancel();
      reject(new Error('aborted'));
    };
    const cancel = clock.after(ms, () => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
    signal.addEventListener('abort', onAbort);
  });
}
