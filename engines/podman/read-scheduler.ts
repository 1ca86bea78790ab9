/**
 * How the Podman engine runs its work. Reads that wait for I/O (a store's
 * container lists, storage.conf files) run at most one per key at a time,
 * a change signalled during one answered by one more run after it, so the
 * last read always starts after the last change. Short synchronous work (a
 * container's few small files on tmpfs and in /proc, its watches) is queued
 * and run in slices of the event loop's time, with a turn for everything
 * else between slices: a load of thousands of containers neither stalls
 * requests nor pays a thread-pool trip, a promise and a closure chain per
 * small file.
 */

interface Slot {
  again: boolean;
  task: () => Promise<void>;
  done: Promise<void>;
}

export class ReadScheduler {
  private readonly running = new Map<string, Slot>();
  private queue: ((() => void) | undefined)[] = [];
  private head = 0;
  private scheduled = false;
  private idleWaiters: (() => void)[] = [];

  /** `onError` gets what a task or a piece of work threw; the rest goes on. */
  constructor(
    private readonly sliceMs: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  /**
   * Runs `task` for `key` now, or, when one is running for that key, once
   * more after it (the latest `task` given). Resolves when the key's work
   * is done, including such re-runs; never rejects.
   */
  coalesce(key: string, task: () => Promise<void>): Promise<void> {
    const busy = this.running.get(key);
    if (busy !== undefined) {
      busy.again = true;
      busy.task = task;
      return busy.done;
    }
    const slot: Slot = { again: true, task, done: Promise.resolve() };
    this.running.set(key, slot);
    slot.done = this.drain(key, slot);
    return slot.done;
  }

  /** Queues `work` (short and synchronous) to run in a slice, in the order queued. */
  enqueue(work: () => void): void {
    this.queue.push(work);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.runSlice());
    }
  }

  /** Resolves once every piece of work queued so far (and after) has run. */
  idle(): Promise<void> {
    if (this.head >= this.queue.length) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private runSlice(): void {
    this.scheduled = false;
    const ends = performance.now() + this.sliceMs;
    while (this.head < this.queue.length) {
      const work = this.queue[this.head] as () => void;
      this.queue[this.head++] = undefined;
      try {
        work();
      } catch (err) {
        this.onError(err);
      }
      if (performance.now() > ends) break;
    }
    if (this.head < this.queue.length) {
      this.scheduled = true;
      setImmediate(() => this.runSlice());
      return;
    }
    this.queue = [];
    this.head = 0;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private async drain(key: string, slot: Slot): Promise<void> {
    // Starts on the next turn, so the caller has the promise before the task runs.
    await Promise.resolve();
    try {
      while (slot.again) {
        slot.again = false;
        try {
          await slot.task();
        } catch (err) {
          this.onError(err);
        }
      }
    } finally {
      this.running.delete(key);
    }
  }
}
