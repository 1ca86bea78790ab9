/**
 * The root PMDA's view of the registry's live index: every container as a
 * ContainerView, read synchronously. The views are rebuilt only after the
 * registry reports a change (subscribe), so a fetch with nothing new does
 * no work. The one file that knows both the index and the metrics' view.
 *
 * What the index does not carry is derived here: containerd's namespace
 * (and, when its engine gives no Kubernetes names, those too) from the
 * names the containerd engine gives (`<namespace>/<id>`,
 * `<pod namespace>/<pod>/<container>`), and a state word from the flags
 * (running, paused, restarting) when the engine gives none.
 */
import type { EngineRegistry, IndexedContainer } from '../core/registry/engine-registry.js';
import type { ContainerSnapshotSource, ContainerView } from './container-source.js';

export class RegistrySnapshotSource implements ContainerSnapshotSource {
  private views: readonly ContainerView[] | undefined;
  private readonly unsubscribe: () => void;

  constructor(private readonly registry: EngineRegistry) {
    this.unsubscribe = registry.subscribe(() => {
      this.views = undefined;
    });
  }

  containers(): readonly ContainerView[] {
    this.views ??= Object.freeze(this.registry.containers().map(viewOf));
    return this.views;
  }

  /** Stops following the registry. */
  close(): void {
    this.unsubscribe();
  }
}

/** One indexed container as a view (exported for tests). */
export function viewOf(c: IndexedContainer): ContainerView {
  const running = c.liveness === 'running' && c.pid !== undefined && c.pid > 0;
  const paused = c.paused === true;
  const restarting = c.restarting === true;
  let namespace: string | undefined;
  let id = c.id;
  let kubernetes = c.kubernetes;
  if (c.engine === 'containerd') {
    // The engine's id is `<namespace>/<id>` unless the id is a digest (unique on its own).
    const slash = c.id.indexOf('/');
    if (slash > 0) {
      namespace = c.id.slice(0, slash);
      id = c.id.slice(slash + 1);
    } else {
      const own = c.names.find((n) => n.endsWith(`/${c.id}`) && n.split('/').length === 2);
      namespace = own?.split('/')[0];
    }
    const k8s = c.names.map((n) => n.split('/')).find((parts) => parts.length === 3 && parts.every((p) => p.length > 0));
    if (kubernetes === undefined && k8s !== undefined) kubernetes = { namespace: k8s[0] as string, pod: k8s[1] as string, container: k8s[2] as string };
  }
  const state = c.state ?? (restarting ? 'restarting' : paused ? 'paused' : running ? 'running' : undefined);
  return {
    engine: c.engine,
    id,
    ...(namespace !== undefined ? { namespace } : {}),
    names: c.names,
    running,
    paused,
    restarting,
    ...(running ? { pid: c.pid } : {}),
    ...(running && c.cgroup !== undefined ? { cgroup: c.cgroup } : {}),
    ...(c.hostname !== undefined ? { hostname: c.hostname } : {}),
    ...(kubernetes !== undefined ? { kubernetes: { namespace: kubernetes.namespace, pod: kubernetes.pod, container: kubernetes.container } } : {}),
    ...(state !== undefined ? { state } : {}),
    ...(c.source !== undefined ? { source: c.source } : {}),
  };
}
