/**
 * INTERIM: lets an engine written for the old pull contract (a `containers()`
 * the registry called on every request) push into the registry's index by
 * polling it once a second. Each engine replaces it with pushes from its own
 * change signals; this file goes away when none uses it.
 */
import type { ContainerRecord, ContainerSink } from './registry/engine-contribution.js';

export interface LegacyEngine {
  containers(): Promise<readonly ContainerRecord[]>;
  status(): { readonly available: boolean; readonly reason: string };
}

export class InterimPoll {
  private timer: NodeJS.Timeout | undefined;
  private last: readonly ContainerRecord[] | undefined;
  private running = false;

  constructor(
    private readonly sink: ContainerSink,
    private readonly engine: LegacyEngine,
    private readonly intervalMs = 1000,
  ) {}

  async start(): Promise<void> {
    await this.poll();
    this.timer = setInterval(() => void this.poll(), this.intervalMs);
    this.timer.unref();
  }

  async poll(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      let records: readonly ContainerRecord[];
      try {
        records = await this.engine.containers();
      } catch {
        records = [];
      }
      if (records !== this.last || this.last === undefined) {
        this.last = records;
        this.sink.replaceAll(records);
      }
      const status = this.engine.status();
      this.sink.health(status.available, status.reason);
    } finally {
      this.running = false;
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
