/**
 * The containerd engine: every task of every namespace but Docker's `moby`,
 * read from the runc v2 shims' bundles on disk (no gRPC). Names are
 * `<namespace>/<id>` and, for Kubernetes (CRI) containers,
 * `<pod-namespace>/<pod>/<container>`; CRI pause containers are left out.
 * The index is rebuilt only when a stat fingerprint of the task directories
 * (or the liveness of a running task's PID) changes, checked at most once per
 * `checkIntervalMs`.
 */
import { readdir, stat } from 'node:fs/promises';
import { inject, injectable, optional } from 'inversify';
import { CrootConfig } from '../../core/config.js';
import type { ContainerRecord, ContainerSink, EngineContribution, EngineStatus } from '../../core/engine.js';
import { InterimPoll } from '../../core/interim-poll.js';
import { readStartTime } from '../../core/proc.js';
import { ThrottledRefresh } from '../../core/throttled-refresh.js';
import {
  cgroupHintFrom,
  isSandbox,
  kubernetesName,
  listNamespaces,
  listTaskIds,
  readTaskBundle,
  type TaskBundle,
} from './containerd-tasks.js';

export const CONTAINERD_ENGINE_ID = 'containerd';
export const DEFAULT_CONTAINERD_TASK_DIR = '/run/containerd/io.containerd.runtime.v2.task';
export const DEFAULT_CONTAINERD_RUNC_ROOT = '/run/containerd/runc';

/** Tuning knobs of the containerd engine; bind under this token to override the defaults. */
export const ContainerdEngineOptions = Symbol.for('croot/ContainerdEngineOptions');
export interface ContainerdEngineOptions {
  /** Least time between two stat passes over the task directories (ms, default 1000). */
  readonly checkIntervalMs?: number;
}

@injectable()
export class ContainerdEngine implements EngineContribution {
  readonly id = CONTAINERD_ENGINE_ID;
  /** The shims' task root (`CROOT_CONTAINERD_TASK_DIR`). */
  readonly taskRoot: string;
  /** runc's state root for containerd (`CROOT_CONTAINERD_RUNC_ROOT`). */
  readonly runcRoot: string;
  private records: readonly ContainerRecord[] = Object.freeze([]);
  private fingerprint: string | undefined;
  private readonly refresher: ThrottledRefresh<readonly ContainerRecord[]>;
  private available = false;
  private statusReason = 'not read yet';
  private checkedAt = Date.now();
  /** Start times of PIDs first seen in /proc (when runc recorded none), by `ns/id/pid`. */
  private readonly startTimes = new Map<string, number>();

  constructor(
    @inject(CrootConfig) private readonly config: CrootConfig,
    @inject(ContainerdEngineOptions) @optional() options: ContainerdEngineOptions | undefined,
  ) {
    this.taskRoot = (config.env.CROOT_CONTAINERD_TASK_DIR || DEFAULT_CONTAINERD_TASK_DIR).replace(/\/+$/, '');
    this.runcRoot = (config.env.CROOT_CONTAINERD_RUNC_ROOT || DEFAULT_CONTAINERD_RUNC_ROOT).replace(/\/+$/, '');
    this.refresher = new ThrottledRefresh(options?.checkIntervalMs ?? 1000, () => this.refresh());
  }

  async startLegacy(): Promise<void> {
    await this.containers();
  }

  containers(): Promise<readonly ContainerRecord[]> {
    return this.refresher.get();
  }

  status(): EngineStatus {
    return { engine: this.id, available: this.available, reason: this.statusReason, checkedAt: this.checkedAt };
  }

  /** INTERIM: polls the old pull interface until this engine pushes from its own change signals. */
  private interim: InterimPoll | undefined;

  async start(sink: ContainerSink): Promise<void> {
    await this.startLegacy();
    this.interim = new InterimPoll(sink, this);
    await this.interim.start();
  }

  async stop(): Promise<void> {
    this.interim?.stop();
    await this.refresher.settle();
  }

  private async refresh(): Promise<readonly ContainerRecord[]> {
    const fingerprint = await this.computeFingerprint();
    if (fingerprint !== this.fingerprint) {
      this.fingerprint = fingerprint;
      await this.rebuild();
      this.checkedAt = Date.now();
    }
    return this.records;
  }

  /** The task root, each namespace dir (tasks come and go there), and each running PID. */
  private async computeFingerprint(): Promise<string> {
    const paths = [this.taskRoot];
    try {
      for (const e of await readdir(this.taskRoot)) paths.push(`${this.taskRoot}/${e}`);
    } catch {
      // absent root: its own stamp says so
    }
    for (const r of this.records) if (r.running && r.pid !== undefined) paths.push(`${this.config.procRoot}/${r.pid}`);
    const stamps = await Promise.all(
      paths.map(async (p) => {
        try {
          const s = await stat(p);
          return `${p}=${s.mtimeMs}:${s.ino}`;
        } catch {
          return `${p}=-`;
        }
      }),
    );
    return stamps.join('\n');
  }

  private async rebuild(): Promise<void> {
    let namespaces: string[];
    try {
      namespaces = await listNamespaces(this.taskRoot);
    } catch (err) {
      this.available = false;
      this.statusReason = `no ${this.taskRoot} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): containerd has run no task here`;
      this.setRecords([]);
      return;
    }
    const next: ContainerRecord[] = [];
    const counts: string[] = [];
    let sandboxes = 0;
    for (const ns of namespaces) {
      const ids = await listTaskIds(this.taskRoot, ns);
      let n = 0;
      for (const id of ids) {
        const bundle = await readTaskBundle(this.taskRoot, this.runcRoot, ns, id);
        if (bundle === undefined) continue;
        if (isSandbox(bundle)) {
          sandboxes++;
          continue;
        }
        next.push(await this.record(bundle));
        n++;
      }
      counts.push(`${ns}: ${n}`);
    }
    this.available = true;
    this.statusReason =
      `reading ${this.taskRoot} (runc state ${this.runcRoot}): ` +
      (counts.length > 0 ? counts.join(', ') : 'no namespaces') +
      (sandboxes > 0 ? `; ${sandboxes} CRI sandboxes left out` : '');
    this.forgetStartTimes(next);
    this.setRecords(dropDuplicateKubernetesNames(next));
  }

  private async record(bundle: TaskBundle): Promise<ContainerRecord> {
    const k8s = kubernetesName(bundle);
    const base = {
      engine: this.id,
      id: bundle.id,
      names: [`${bundle.namespace}/${bundle.id}`, ...(k8s !== undefined ? [k8s] : [])],
      source: `disk:${bundle.namespace}`,
      ...(bundle.hostname !== undefined ? { hostname: bundle.hostname } : {}),
      ...(bundle.cgroupsPath !== undefined ? { cgroupHint: cgroupHintFrom(bundle.cgroupsPath) } : {}),
    };
    const pid = bundle.pid;
    if (pid === undefined) return { ...base, running: false };
    const current = await readStartTime(this.config.procRoot, pid);
    if (current === undefined) return { ...base, running: false };
    const key = `${bundle.namespace}/${bundle.id}/${pid}`;
    const recorded = bundle.recordedStart ?? this.startTimes.get(key) ?? current;
    if (bundle.recordedStart === undefined) this.startTimes.set(key, recorded);
    // The task exited and its PID went to another process: stopped, not running.
    if (recorded !== current) return { ...base, running: false };
    return { ...base, running: true, pid, pidStartTime: recorded };
  }

  private forgetStartTimes(records: readonly ContainerRecord[]): void {
    const live = new Set(records.map((r) => `${r.names[0] ?? ''}/${r.pid ?? 0}`));
    for (const key of this.startTimes.keys()) if (!live.has(key)) this.startTimes.delete(key);
  }

  private setRecords(next: readonly ContainerRecord[]): void {
    if (next.length === this.records.length && JSON.stringify(next) === JSON.stringify(this.records)) return;
    this.records = Object.freeze(next.map((r) => Object.freeze(r)));
  }
}

/**
 * A Kubernetes name shared by several tasks (a restarted container whose old
 * task is not yet deleted) stays only on the running ones.
 */
function dropDuplicateKubernetesNames(records: ContainerRecord[]): ContainerRecord[] {
  const holders = new Map<string, ContainerRecord[]>();
  for (const r of records) for (const n of r.names.slice(1)) holders.set(n, [...(holders.get(n) ?? []), r]);
  return records.map((r) => {
    const names = r.names.filter((n, i) => {
      if (i === 0) return true;
      const all = holders.get(n) ?? [];
      return all.length < 2 || r.running || !all.some((o) => o.running);
    });
    return names.length === r.names.length ? r : { ...r, names };
  });
}
