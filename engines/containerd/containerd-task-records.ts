/**
 * The containerd engine's tasks as read, and the records they give. Ids and
 * names: a Kubernetes (CRI) id is a digest and stays the id, so a unique
 * prefix finds it; any other id becomes `<namespace>/<id>`, so the same id
 * in two namespaces is two containers. Names: `<namespace>/<id>`, its
 * pmcd-safe spelling `<namespace>_<id>`, the bare id when it is not the
 * record's id, and for CRI containers `<pod-namespace>/<pod>/<container>`
 * with its pmcd-safe spelling `<pod-namespace>_<pod>_<container>`. CRI pause
 * (sandbox) containers give no record.
 */
import type { ContainerRecord, ContainerSink, KubernetesNames } from '../../core/registry/engine-contribution.js';
import { isDigestId } from '../../core/registry/name-matcher.js';
import { cgroupHintFrom, started, type Task } from './containerd-tasks.js';

/** Characters current pmcd lets through in a container name (PCP's `__pmCheckAttribute`). */
const PMCD_SAFE = /^[A-Za-z0-9._-]+$/;

export class ContainerdTaskRecords {
  /** Tasks by `<namespace>/<id>`. */
  private tasks = new Map<string, Task>();
  /** The record last pushed for each task, by task key. */
  private pushed = new Map<string, ContainerRecord>();
  /** Task keys by Kubernetes name, and by bare id (tasks that give a record only). */
  private readonly kubernetesHolders = new Map<string, Set<string>>();
  private readonly idHolders = new Map<string, Set<string>>();

  constructor(private readonly engineId: string) {}

  get(key: string): Task | undefined {
    return this.tasks.get(key);
  }

  values(): IterableIterator<Task> {
    return this.tasks.values();
  }

  /** For the engine's health: records by namespace (`ns: n`, sorted), CRI sandboxes left out, tasks whose run state is damaged. */
  summary(): { readonly namespaces: string[]; readonly sandboxes: number; readonly damaged: string[] } {
    const counts = new Map<string, number>();
    let sandboxes = 0;
    const damaged: string[] = [];
    for (const task of this.tasks.values()) {
      if (task.spec?.sandbox === true) sandboxes++;
      else if (task.spec !== undefined) counts.set(task.namespace, (counts.get(task.namespace) ?? 0) + 1);
      if (task.damaged !== undefined) damaged.push(`${task.key} (${task.damaged})`);
    }
    const namespaces = [...counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([ns, n]) => `${ns}: ${n}`);
    return { namespaces, sandboxes, damaged };
  }

  /** Replaces every task (a full re-read) and pushes the whole list. */
  replaceAll(fresh: Map<string, Task>, sink: ContainerSink | undefined): void {
    this.tasks = fresh;
    this.kubernetesHolders.clear();
    this.idHolders.clear();
    for (const task of fresh.values()) this.hold(task);
    const pushed = new Map<string, ContainerRecord>();
    for (const task of fresh.values()) {
      const record = this.recordOf(task);
      if (record !== undefined) pushed.set(task.key, record);
    }
    this.pushed = pushed;
    sink?.replaceAll(pushed.values());
  }

  /** Applies what was read of some tasks (undefined: gone) and pushes every record that changed. */
  apply(read: ReadonlyMap<string, Task | undefined>, sink: ContainerSink | undefined): void {
    const affected = new Set<string>();
    const touch = (task: Task | undefined): void => {
      if (task === undefined) return;
      affected.add(task.key);
      if (task.spec === undefined || task.spec.sandbox) return;
      for (const k of this.idHolders.get(task.id) ?? []) affected.add(k);
      const k8s = task.spec.kubernetes;
      if (k8s !== undefined) for (const k of this.kubernetesHolders.get(kubernetesName(k8s)) ?? []) affected.add(k);
    };
    for (const [key, task] of read) {
      const before = this.tasks.get(key);
      touch(before);
      if (before !== undefined) this.release(before);
      affected.add(key);
      if (task === undefined) {
        this.tasks.delete(key);
        continue;
      }
      this.tasks.set(key, task);
      this.hold(task);
      touch(task);
    }
    const upserts: ContainerRecord[] = [];
    for (const key of affected) {
      const task = this.tasks.get(key);
      const record = task === undefined ? undefined : this.recordOf(task);
      const old = this.pushed.get(key);
      if (old !== undefined && (record === undefined || record.id !== old.id)) sink?.remove(old.id);
      if (record === undefined) this.pushed.delete(key);
      else {
        this.pushed.set(key, record);
        upserts.push(record);
      }
    }
    // Removals first: a task whose id changed must not meet its own old record.
    for (const record of upserts) sink?.upsert(record);
  }

  private hold(task: Task): void {
    if (task.spec === undefined || task.spec.sandbox) return;
    addTo(this.idHolders, task.id, task.key);
    if (task.spec.kubernetes !== undefined) addTo(this.kubernetesHolders, kubernetesName(task.spec.kubernetes), task.key);
  }

  private release(task: Task): void {
    if (task.spec === undefined || task.spec.sandbox) return;
    dropFrom(this.idHolders, task.id, task.key);
    if (task.spec.kubernetes !== undefined) dropFrom(this.kubernetesHolders, kubernetesName(task.spec.kubernetes), task.key);
  }

  /** The record of a task, or undefined for a sandbox or a bundle whose spec is not written yet. */
  private recordOf(task: Task): ContainerRecord | undefined {
    const spec = task.spec;
    if (spec === undefined || spec.sandbox) return undefined;
    const { namespace, id } = task;
    const alone = isDigestId(id) && (this.idHolders.get(id)?.size ?? 0) <= 1;
    const names = [`${namespace}/${id}`];
    addSafe(names, `${namespace}_${id}`);
    if (!alone) names.push(id);
    const k8s = spec.kubernetes;
    if (k8s !== undefined && this.keepsKubernetesName(task, k8s)) {
      names.push(kubernetesName(k8s));
      addSafe(names, `${k8s.namespace}_${k8s.pod}_${k8s.container}`);
    }
    const running = started(task);
    return {
      engine: this.engineId,
      id: alone ? id : `${namespace}/${id}`,
      names,
      running,
      ...(running ? { pid: task.pid } : {}),
      ...(running && task.recordedStart !== undefined ? { pidStartTime: task.recordedStart } : {}),
      ...(task.created ? { state: 'created' } : {}),
      ...(k8s !== undefined ? { kubernetes: k8s } : {}),
      ...(spec.hostname !== undefined ? { hostname: spec.hostname } : {}),
      ...(spec.cgroupsPath !== undefined ? { cgroupHint: cgroupHintFrom(spec.cgroupsPath) } : {}),
      source: `disk:${namespace}`,
    };
  }

  /**
   * A Kubernetes name held by several tasks (a restarted container whose old
   * task is not deleted yet) stays on the started ones only.
   */
  private keepsKubernetesName(task: Task, k8s: KubernetesNames): boolean {
    const holders = this.kubernetesHolders.get(kubernetesName(k8s));
    if (holders === undefined || holders.size < 2 || started(task)) return true;
    for (const key of holders) {
      const other = this.tasks.get(key);
      if (other !== undefined && started(other)) return false;
    }
    return true;
  }
}

function kubernetesName(k: KubernetesNames): string {
  return `${k.namespace}/${k.pod}/${k.container}`;
}

function addTo(map: Map<string, Set<string>>, name: string, key: string): void {
  let set = map.get(name);
  if (set === undefined) map.set(name, (set = new Set()));
  set.add(key);
}

function dropFrom(map: Map<string, Set<string>>, name: string, key: string): void {
  const set = map.get(name);
  if (set === undefined) return;
  set.delete(key);
  if (set.size === 0) map.delete(name);
}

function addSafe(names: string[], name: string): void {
  if (PMCD_SAFE.test(name) && !names.includes(name)) names.push(name);
}
