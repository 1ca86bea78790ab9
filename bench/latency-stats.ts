/**
 * Latency samples and their summary: every sample is one call timed with
 * `process.hrtime.bigint()`, kept in nanoseconds until summarised.
 */

/** A summary of one measured case. */
export interface LatencyStats {
  /** Calls measured (warm-up excluded). */
  readonly count: number;
  /** Wall time of the measured part, seconds. */
  readonly seconds: number;
  /** `count / seconds`: the throughput seen, concurrency included. */
  readonly opsPerSecond: number;
  /** Median latency of one call, microseconds. */
  readonly p50Us: number;
  /** 99th percentile latency of one call, microseconds. */
  readonly p99Us: number;
  /** Slowest call, microseconds. */
  readonly maxUs: number;
  /** True when the time cap ended the case before `count` reached its target. */
  readonly capped: boolean;
}

/** Collects per-call latencies (ns) of one case. */
export class LatencyRecorder {
  private readonly samples: number[] = [];

  /** Adds one call that started at `start` (an hrtime.bigint() value) and ends now. */
  record(start: bigint): void {
    this.samples.push(Number(process.hrtime.bigint() - start));
  }

  get count(): number {
    return this.samples.length;
  }

  /** Summarises the samples; `wallNs` is the case's elapsed time. */
  summarize(wallNs: bigint, capped: boolean): LatencyStats {
    const sorted = Float64Array.from(this.samples).sort();
    const seconds = Number(wallNs) / 1e9;
    return {
      count: sorted.length,
      seconds: round(seconds, 3),
      opsPerSecond: seconds > 0 ? Math.round(sorted.length / seconds) : 0,
      p50Us: round(percentile(sorted, 0.5) / 1000, 2),
      p99Us: round(percentile(sorted, 0.99) / 1000, 2),
      maxUs: round((sorted[sorted.length - 1] ?? 0) / 1000, 2),
      capped,
    };
  }
}

/** Nearest-rank percentile of sorted samples (0 when there are none). */
export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] ?? 0;
}

export function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** How many calls to make and how long a case may take. */
export interface CaseBounds {
  /** Calls measured, at most. */
  readonly count: number;
  /** Calls made first and not measured (stopped early after a quarter of `capMs`). */
  readonly warmup: number;
  /** Wall-time cap of the measured part, ms. */
  readonly capMs: number;
}

/**
 * Runs `call` `bounds.warmup` times, then up to `bounds.count` times (fewer
 * when `bounds.capMs` runs out), one at a time, timing each call.
 */
export async function measureSequential(bounds: CaseBounds, call: (i: number) => unknown): Promise<LatencyStats> {
  const capNs = BigInt(bounds.capMs) * 1_000_000n;
  const warmStart = process.hrtime.bigint();
  for (let i = 0; i < bounds.warmup && process.hrtime.bigint() - warmStart < capNs / 4n; i++) await call(i);
  const recorder = new LatencyRecorder();
  const begin = process.hrtime.bigint();
  let capped = false;
  for (let i = 0; i < bounds.count; i++) {
    const start = process.hrtime.bigint();
    await call(i);
    recorder.record(start);
    if (start - begin > capNs) {
      capped = i + 1 < bounds.count;
      break;
    }
  }
  return recorder.summarize(process.hrtime.bigint() - begin, capped);
}

/**
 * Like `measureSequential` for synchronous calls, without an await between
 * calls (so the loop measures the call, not the microtask queue).
 */
export function measureSync(bounds: CaseBounds, call: (i: number) => unknown): LatencyStats {
  const capNs = BigInt(bounds.capMs) * 1_000_000n;
  const warmStart = process.hrtime.bigint();
  for (let i = 0; i < bounds.warmup && process.hrtime.bigint() - warmStart < capNs / 4n; i++) call(i);
  const recorder = new LatencyRecorder();
  const begin = process.hrtime.bigint();
  let capped = false;
  for (let i = 0; i < bounds.count; i++) {
    const start = process.hrtime.bigint();
    call(i);
    recorder.record(start);
    if (start - begin > capNs) {
      capped = i + 1 < bounds.count;
      break;
    }
  }
  return recorder.summarize(process.hrtime.bigint() - begin, capped);
}

/**
 * Runs `workers` loops at once, each calling `call(worker, i)` one at a time,
 * until `bounds.count` calls were made in all or `bounds.capMs` ran out.
 * Warm-up calls are shared out the same way and not measured.
 */
export async function measureConcurrent(
  bounds: CaseBounds,
  workers: number,
  call: (worker: number, i: number) => Promise<unknown>,
): Promise<LatencyStats> {
  const capNs = BigInt(bounds.capMs) * 1_000_000n;
  const warmStart = process.hrtime.bigint();
  let next = 0;
  const warm = async (w: number): Promise<void> => {
    while (next < bounds.warmup && process.hrtime.bigint() - warmStart < capNs / 4n) await call(w, next++);
  };
  await Promise.all(Array.from({ length: workers }, (_, w) => warm(w)));

  const recorder = new LatencyRecorder();
  const begin = process.hrtime.bigint();
  let issued = 0;
  let capped = false;
  const loop = async (w: number): Promise<void> => {
    while (issued < bounds.count) {
      if (process.hrtime.bigint() - begin > capNs) {
        capped = true;
        return;
      }
      const i = issued++;
      const start = process.hrtime.bigint();
      await call(w, i);
      recorder.record(start);
    }
  };
  await Promise.all(Array.from({ length: workers }, (_, w) => loop(w)));
  return recorder.summarize(process.hrtime.bigint() - begin, capped);
}
