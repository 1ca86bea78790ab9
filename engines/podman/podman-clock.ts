/**
 * Where the Podman engine reads the time and sets its one timer (the first
 * load's bound): Node's monotonic clock and timers, or, in tests, a clock
 * the test moves and fires itself, so that what happens at a bound or an age
 * is tested without waiting for real time to pass.
 */
export interface PodmanClock {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Calls `callback` once after `ms`, without keeping the process alive; the function returned cancels it. */
  after(ms: number, callback: () => void): () => void;
}

/** `performance.now()` and an unref'd `setTimeout`. */
export const systemClock: PodmanClock = {
  now: () => performance.now(),
  after: (ms, callback) => {
    const timer = setTimeout(callback, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
};
