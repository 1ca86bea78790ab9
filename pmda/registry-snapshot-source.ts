/**
 * A ContainerSnapshotSource over today's EngineRegistry, whose
 * `containers()` is asynchronous: `refresh()` takes the registry's union
 * (the same array while nothing changed, so usually no work) and turns its
 * records into views; `containers()` returns the last views. Everything
 * the records do not say yet is derived here and nowhere else, so this one
 * file goes when the registry's live index gives ContainerViews itself:
 * - containerd's namespace and Kubernetes names, from the names its engine gives;
 * - the cgroup, read once per init process from the host's /proc (what the
 *   root socket's CGROUPNAME answers);
 * - the state word only where the flags tell it (running, paused,
 *   restarting); for a stopped container the engine's word (exited,
 *   created, stopped) is not in the records.
 */
import type { ContainerRecord } from '../core/engine.js';
import type { EngineRegistry } from '../core/engine-registry.js';
import { readCgroupName } from '../core/proc.js';
import type { ContainerSnapshotSource, ContainerView } from './container-source.js';

export interface RegistrySnapshotSourceOptions {
  /** Where the host's /proc is; default `/proc`. */
  readonly procRoot?: string;
}

export class RegistrySnapshotSource implements ContainerSnapshotSource {
  private records: readonly ContainerRecord[] | undefined;
  private views: readonly ContainerView[] = [];
  /** cgroup by `pid:starttime` (or `pid` when the engine has no start time). */
  private cgroups = new Map<string, string>();

  constructor(
    private readonly registry: EngineRegistry,
    private readonly options: RegistrySnapshotSourceOptions = {},
  ) {}

  containers(): readonly ContainerView[] {
    return this.views;
  }

  async refresh(): Promise<void> {
    const records = await this.registry.containers();
    if (records === this.records) return;
    const procRoot = this.options.procRoot ?? '/proc';
    const cgroups = new Map<string, string>();
    const views: ContainerView[] = [];
    for (const r of records) {
      let cgroup: string | undefined;
      if (r.running && r.pid !== undefined && r.pid > 0) {
        const key = `${r.pid}:${r.pidStartTime ?? ''}`;
        cgroup = this.cgroups.get(key);
        if (cgroup === undefined) cgroup = await readCgroupName(procRoot, r.pid).catch(() => undefined);
        if (cgroup !== undefined) cgroups.set(key, cgroup);
      }
      views.push(viewOf(r, cgroup));
    }
    this.cgroups = cgroups;
    this.records = records;
    this.views = Object.freeze(views);
  }
}

/** One record as a view (exported for tests). */
export function viewOf(r: ContainerRecord, cgroup?: string): ContainerView {
  const running = r.running && r.pid !== undefined && r.pid > 0;
  const paused = r.paused === true;
  const restarting = r.restarting === true;
  let namespace: string | undefined;
  let kubernetes: ContainerView['kubernetes'];
  if (r.engine === 'containerd') {
    // The containerd engine names a task `<namespace>/<id>`, and a CRI one also `<pod namespace>/<pod>/<container>`.
    const own = r.names.find((n) => n.endsWith(`/${r.id}`) && n.split('/').length === 2);
    namespace = own?.split('/')[0];
    const k8s = r.names.map((n) => n.split('/')).find((parts) => parts.length === 3 && parts.every((p) => p.length > 0));
    if (k8s !== undefined) kubernetes = { namespace: k8s[0] as string, pod: k8s[1] as string, container: k8s[2] as string };
  }
  const state = restarting ? 'restarting' : paused ? 'paused' : running ? 'running' : undefined;
  return {
    engine: r.engine,
    id: r.id,
    ...(namespace !== undefined ? { namespace } : {}),
    names: r.names,
    running: r.running,
    paused,
    restarting,
    ...(running ? { pid: r.pid } : {}),
    ...(running && cgroup !== undefined ? { cgroup } : {}),
    ...(r.hostname !== undefined ? { hostname: r.hostname } : {}),
    ...(kubernetes !== undefined ? { kubernetes } : {}),
    ...(state !== undefined ? { state } : {}),
    ...(r.source !== undefined ? { source: r.source } : {}),
  };
}
