/**
 * The engine contract: what every container engine (docker, podman,
 * containerd, lxc, static, or a third party's) gives the core.
 */

/** What an engine knows of one container, as of its last refresh. */
export interface ContainerRecord {
  /** Id of the engine that reported it (`docker`, `podman`, ...). */
  readonly engine: string;
  /** The container's full id, unique within its engine. */
  readonly id: string;
  /** Every name it answers to, without a leading `/`. */
  readonly names: readonly string[];
  /** True when its init process is running (paused counts as running). */
  readonly running: boolean;
  readonly paused?: boolean;
  readonly restarting?: boolean;
  /** Init PID as seen from the host; absent or <= 0 when not running. */
  readonly pid?: number;
  /**
   * Start time of the init PID (field 22 of /proc/PID/stat, clock ticks since
   * boot) as the engine recorded it, when it did. A different start time
   * means the PID was reused and the container is gone.
   */
  readonly pidStartTime?: number;
  /** Hostname the engine configured, for display only (truth is the UTS ns). */
  readonly hostname?: string;
  /** The cgroup the engine says it placed the container in, for display only. */
  readonly cgroupHint?: string;
  /** Where the facts came from (`api`, `disk`, `config`...), for logs and `croot list`. */
  readonly source?: string;
}

export interface EngineStatus {
  readonly engine: string;
  readonly available: boolean;
  /** Why it is not available, or what it reads when it is. */
  readonly reason: string;
  /** When the status was last checked (ms since epoch). */
  readonly checkedAt: number;
}

/** Token and interface share a name: bind an engine with `bind(EngineContribution)`. */
export const EngineContribution = Symbol.for('croot/EngineContribution');
export interface EngineContribution {
  /** Short lower-case id (`docker`), unique in the registry. */
  readonly id: string;
  /**
   * The engine's containers from its in-memory index. Called on every lookup:
   * must not scan directories or call a daemon each time; return the same
   * array object while nothing changed so callers can cache on identity.
   * When the engine's source is absent it returns `[]` and reports why in
   * `status()`; it never throws for that.
   */
  containers(signal?: AbortSignal): Promise<readonly ContainerRecord[]>;
  /** Health as of the last refresh. */
  status(): EngineStatus;
  /** Start watching (event streams, timers). Called once by the registry. */
  start?(): Promise<void>;
  /** Stop watching and release every handle. */
  stop?(): Promise<void>;
}
