/**
 * A Clock (core/host/clock.ts) that moves only when the test moves it and
 * fires a timer only when moved past it: what an engine does at a bound, an
 * age or the end of a backoff is seen without waiting for real time.
 */
import type { Clock } from '../../core/host/clock.js';

export class ManualClock implements Clock {
  private time = 1e9;
  private timers: { at: number; callback: () => void }[] = [];

  now(): number {
    return this.time;
  }

  after(ms: number, callback: () => void): () => void {
    const timer = { at: this.time + ms, callback };
    this.timers.push(timer);
    return () => (this.timers = this.timers.filter((t) => t !== timer));
  }

  /** The timers set and not fired or cancelled: how far ahead of now each one is (ms), soonest first. */
  pending(): number[] {
    return this.timers.map((t) => t.at - this.time).sort((a, b) => a - b);
  }

  /** Moves the clock by `ms` and fires the timers due by then. */
  advance(ms: number): void {
    this.time += ms;
    const due = this.timers.filter((t) => t.at <= this.time);
    this.timers = this.timers.filter((t) => t.at > this.time);
    for (const t of due) t.callback();
  }
}
