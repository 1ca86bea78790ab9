/**
 * "Refresh at most once per interval, one refresh in flight shared by every
 * caller": the throttle engines put in front of their disk or API scans.
 */
import { CrootError } from './errors/croot-error.js';

export interface ThrottledRefreshOptions {
  /**
   * Whether the interval counts from when the last successful run started
   * (`'start'`: at most one run begins per interval) or from when it finished
   * (`'finish'`: at least the interval passes between two runs). Default `'start'`.
   */
  readonly measureFrom?: 'start' | 'finish';
  /** Message of the ERR_ABORTED error an aborted caller gets (default 'refresh aborted'). */
  readonly abortMessage?: string;
}

/**
 * Runs `run` on demand, at most once per `intervalMs`, and shares the run in
 * flight among every caller. A failed run counts as none: its callers get
 * its error and the next get() runs again.
 */
export class ThrottledRefresh<T> {
  private readonly measureFrom: 'start' | 'finish';
  private readonly abortMessage: string;
  private inFlight: Promise<T> | undefined;
  /** When the last successful run started or finished; undefined when none, or invalidated since. */
  private freshAt: number | undefined;
  private value: T | undefined;
  /** Bumped by invalidate(), so a run that began before it does not count as fresh. */
  private generation = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly run: () => Promise<T>,
    private readonly now: () => number = Date.now,
    options: ThrottledRefreshOptions = {},
  ) {
    this.measureFrom = options.measureFrom ?? 'start';
    this.abortMessage = options.abortMessage ?? 'refresh aborted';
  }

  /**
   * The last run's result when it is fresh; else joins the run in flight, or
   * starts one. An aborted `signal` rejects this caller only, with
   * ERR_ABORTED; the run goes on for the others.
   */
  get(signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(this.aborted(signal));
    if (this.inFlight === undefined) {
      if (this.freshAt !== undefined && this.now() - this.freshAt < this.intervalMs) return Promise.resolve(this.value as T);
      this.inFlight = this.start();
    }
    return signal === undefined ? this.inFlight : this.raceAbort(this.inFlight, signal);
  }

  /** Makes the next get() run (or, during a run, run again after it), whatever the interval says. */
  invalidate(): void {
    this.freshAt = undefined;
    this.generation++;
  }

  /** Waits for the run in flight, if any; never throws. */
  async settle(): Promise<void> {
    await this.inFlight?.catch(() => undefined);
  }

  private start(): Promise<T> {
    const generation = this.generation;
    const startedAt = this.now();
    return new Promise<T>((resolve) => resolve(this.run()))
      .then((value) => {
        this.value = value;
        if (generation === this.generation) this.freshAt = this.measureFrom === 'start' ? startedAt : this.now();
        return value;
      })
      .finally(() => {
        this.inFlight = undefined;
      });
  }

  private raceAbort(promise: Promise<T>, signal: AbortSignal): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => reject(this.aborted(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      promise.then(
        (value) => {
          signal.removeEventListener('abort', onAbort);
          resolve(value);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  }

  private aborted(signal: AbortSignal): CrootError {
    return new CrootError('ERR_ABORTED', this.abortMessage, { cause: signal.reason });
  }
}
