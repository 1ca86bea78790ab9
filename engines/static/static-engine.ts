/**
 * Containers declared in croot's config (`staticContainers`): a name, aliases,
 * an id, and an init PID given directly or through a pidfile. Useful for
 * hand-made namespaces (unshare, systemd-nspawn, a chroot jail) that no engine
 * reports.
 *
 * A pidfile is re-read when its mtime (or size, or inode) changes, checked
 * with one stat at most once per `recheckMs`. A PID is recorded with its
 * /proc start time when first seen, so a process that later takes the same
 * PID is recognised as another one (the resolvers then answer ERR_PID_REUSED).
 */
import { readFile, stat } from 'node:fs/promises';
import { inject, injectable, optional } from 'inversify';
import { CrootConfig, type StaticContainerConfig } from '../../core/config.js';
import type { ContainerRecord, EngineContribution, EngineStatus } from '../../core/engine.js';
import { CrootError } from '../../core/errors.js';
import { plural } from '../../core/plural.js';
import { readStartTime } from '../../core/proc.js';
import { ThrottledRefresh } from '../../core/throttled-refresh.js';

export const STATIC_ENGINE_ID = 'static';

/** Tuning knobs of the static engine; bind under this token to override the defaults. */
export const StaticEngineOptions = Symbol.for('croot/StaticEngineOptions');
export interface StaticEngineOptions {
  /** At most one check of pidfiles and /proc entries per this many ms (default 1000). */
  readonly recheckMs?: number;
}

/** What is known of one declared container between checks. */
interface Tracked {
  readonly declared: StaticContainerConfig;
  /** The pidfile's identity when it was last read (`mtimeNs:size:ino`). */
  pidfileStamp: string | undefined;
  /** The PID currently designated by the config or the pidfile. */
  pid: number | undefined;
  /** Its start time when first seen; kept while the PID stays the same. */
  startTime: number | undefined;
  /** Why it has no usable PID, for status(). */
  problem: string | undefined;
  record: ContainerRecord;
}

@injectable()
export class StaticEngine implements EngineContribution {
  readonly id = STATIC_ENGINE_ID;
  private tracked: Tracked[];
  private snapshot: readonly ContainerRecord[];
  private checkedAt = 0;
  private readonly refresher: ThrottledRefresh<void>;

  constructor(
    @inject(CrootConfig) private readonly config: CrootConfig,
    @inject(StaticEngineOptions) @optional() options: StaticEngineOptions | undefined,
  ) {
    this.refresher = new ThrottledRefresh(options?.recheckMs ?? 1000, () => this.refresh(), Date.now, { measureFrom: 'finish' });
    this.tracked = this.track(config.staticContainers);
    this.snapshot = Object.freeze(this.tracked.map((t) => t.record));
  }

  /**
   * Replaces the declared containers (crootd's SIGHUP re-reads the config).
   * A container declared again with the same name, pid and pidfile keeps what
   * was learnt of it (its PID's first start time), so reuse is still caught.
   */
  async declare(containers: readonly StaticContainerConfig[]): Promise<void> {
    await this.refresher.settle();
    const before = new Map(this.tracked.map((t) => [t.declared.name, t]));
    this.tracked = this.track(containers).map((fresh) => {
      const old = before.get(fresh.declared.name);
      const same = old !== undefined && old.declared.pid === fresh.declared.pid && old.declared.pidfile === fresh.declared.pidfile;
      if (!same) return fresh;
      const running = old.record.running ? old.pid : undefined;
      return { ...old, declared: fresh.declared, record: this.makeRecord(fresh.declared, running, old.record.pidStartTime) };
    });
    this.snapshot = Object.freeze(this.tracked.map((t) => t.record));
    this.refresher.invalidate();
    await this.containers();
  }

  private track(containers: readonly StaticContainerConfig[]): Tracked[] {
    return containers.map((declared) => ({
      declared,
      pidfileStamp: undefined,
      pid: declared.pidfile === undefined ? declared.pid : undefined,
      startTime: undefined,
      problem: undefined,
      record: this.makeRecord(declared, undefined, undefined),
    }));
  }

  async containers(signal?: AbortSignal): Promise<readonly ContainerRecord[]> {
    if (signal?.aborted) throw new CrootError('ERR_ABORTED', 'static lookup aborted', { cause: signal.reason });
    if (this.tracked.length > 0) await this.refresher.get();
    return this.snapshot;
  }

  status(): EngineStatus {
    const n = this.tracked.length;
    const problems = this.tracked.filter((t) => t.problem !== undefined).map((t) => `${t.declared.name}: ${t.problem}`);
    return {
      engine: this.id,
      available: true,
      reason: `${plural(n, 'container')} declared in the config${problems.length > 0 ? `; ${problems.join('; ')}` : ''}`,
      checkedAt: this.checkedAt,
    };
  }

  /** Reads the first sight of every PID now, so the start times predate any reuse. */
  async start(): Promise<void> {
    await this.containers();
  }

  private async refresh(): Promise<void> {
    try {
      await Promise.all(this.tracked.map((t) => this.check(t)));
      const records = this.tracked.map((t) => t.record);
      if (records.some((r, i) => r !== this.snapshot[i])) this.snapshot = Object.freeze(records);
    } finally {
      this.checkedAt = Date.now();
    }
  }

  /** Updates one container: its pidfile (when changed), then whether its PID is alive. */
  private async check(t: Tracked): Promise<void> {
    const { declared } = t;
    t.problem = undefined;
    if (declared.pidfile !== undefined) {
      await this.readPidfile(t, declared.pidfile);
    } else if (declared.pid === undefined || !Number.isInteger(declared.pid) || declared.pid <= 0) {
      t.problem = 'neither a valid pid nor a pidfile';
      t.pid = undefined;
    }

    let alive = false;
    if (t.pid !== undefined) {
      const now = await readStartTime(this.config.procRoot, t.pid);
      alive = now !== undefined;
      // First sight of this PID: remember its start time. Later differences mean reuse.
      if (alive && t.startTime === undefined) t.startTime = now;
      if (!alive) t.problem ??= `process ${t.pid} is not running`;
    }
    const record = this.makeRecord(declared, alive ? t.pid : undefined, alive ? t.startTime : undefined);
    if (!sameRecord(record, t.record)) t.record = record;
  }

  private async readPidfile(t: Tracked, path: string): Promise<void> {
    let stamp: string;
    try {
      const s = await stat(path, { bigint: true });
      stamp = `${s.mtimeNs}:${s.size}:${s.ino}`;
    } catch (err) {
      this.setPid(t, undefined);
      t.pidfileStamp = undefined;
      t.problem = `cannot read pidfile ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
      return;
    }
    if (stamp === t.pidfileStamp) {
      if (t.pid === undefined) t.problem = `pidfile ${path} holds no PID`;
      return;
    }
    t.pidfileStamp = stamp;
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      this.setPid(t, undefined);
      t.problem = `cannot read pidfile ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
      return;
    }
    const pid = parsePidfile(text);
    // A rewritten pidfile re-declares its process, even when the PID is the same.
    t.pid = pid;
    t.startTime = undefined;
    if (pid === undefined) t.problem = `pidfile ${path} holds no PID`;
  }

  private setPid(t: Tracked, pid: number | undefined): void {
    if (pid !== t.pid) {
      t.pid = pid;
      t.startTime = undefined;
    }
  }

  private makeRecord(declared: StaticContainerConfig, pid: number | undefined, startTime: number | undefined): ContainerRecord {
    const names = [declared.name, ...(declared.aliases ?? [])];
    return Object.freeze({
      engine: this.id,
      id: declared.id ?? declared.name,
      names: Object.freeze(names),
      running: pid !== undefined,
      ...(pid !== undefined && { pid }),
      ...(startTime !== undefined && { pidStartTime: startTime }),
      source: 'config',
    });
  }
}

/** The PID in a pidfile: its first line, a positive decimal integer. */
export function parsePidfile(text: string): number | undefined {
  const first = text.split('\n', 1)[0]?.trim() ?? '';
  if (!/^\d+$/.test(first)) return undefined;
  const pid = Number(first);
  return pid > 0 && Number.isSafeInteger(pid) ? pid : undefined;
}

function sameRecord(a: ContainerRecord, b: ContainerRecord): boolean {
  return a.running === b.running && a.pid === b.pid && a.pidStartTime === b.pidStartTime;
}
