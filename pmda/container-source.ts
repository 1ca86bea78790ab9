/**
 * What the root PMDA's `containers.*` metrics read: one synchronous view
 * of every container croot knows, from its live index. A fetch reads it as
 * it is; it never scans engines.
 */

/** One container as the metrics show it. */
export interface ContainerView {
  /** Engine id: `docker`, `podman`, `containerd`, `lxc`, `static`, or a plugin's. */
  readonly engine: string;
  /** Full id, unique within its engine (and, for containerd, within its namespace). */
  readonly id: string;
  /** containerd's namespace (`default`, `k8s.io`, ...); absent for engines without one. */
  readonly namespace?: string;
  /** Every name croot matches for it, the engine's own first (no leading `/`). */
  readonly names: readonly string[];
  /** Its init process runs (a paused container runs too). */
  readonly running: boolean;
  readonly paused: boolean;
  readonly restarting: boolean;
  /** Init PID as the host sees it, when running. */
  readonly pid?: number;
  /** The init process's cgroup path without its leading `/`, as the root socket's CGROUPNAME answers it; when running. */
  readonly cgroup?: string;
  /** The hostname the engine configured for it (`docker inspect` .Config.Hostname, ...). */
  readonly hostname?: string;
  /** Kubernetes' names for it, when the engine knows them (CRI containers). */
  readonly kubernetes?: { readonly namespace: string; readonly pod: string; readonly container: string };
  /** The engine's own word for its state (`running`, `exited`, `created`, `paused`, ...), when known. */
  readonly state?: string;
  /** Where croot learnt of it (`api`, `disk:default`, `lxc-info`, `config`, ...). */
  readonly source?: string;
}

/**
 * Token and interface share a name: bind the live index's view with
 * `bind(ContainerSnapshotSource)`.
 */
export const ContainerSnapshotSource = Symbol.for('croot/ContainerSnapshotSource');
export interface ContainerSnapshotSource {
  /**
   * Every container of every engine, running or not, as of now. Called for
   * each fetch and instance request of the root PMDA, on the event loop:
   * must not block or do I/O; may return the same array while nothing
   * changed.
   */
  containers(): readonly ContainerView[];
  /**
   * Optional: brings the view up to date before a request is answered
   * (for sources that are not live yet); the PMDA waits for it.
   */
  refresh?(): Promise<void>;
}
