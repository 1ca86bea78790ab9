/**
 * The engine contract: what every container engine (docker, podman,
 * containerd, lxc, static, or a third party's) gives the core. An engine
 * keeps its containers current from its source's own change signals and
 * pushes every change into a {@link ContainerSink}; the registry owns the one
 * index those changes land in, and requests only ever read that index.
 */
import type { CrootConfig } from '../config/croot-config.js';

/** What an engine knows of one container. */
export interface ContainerRecord {
  /** Id of the engine that reported it (`docker`, `podman`, ...); the registry sets it. */
  readonly engine: string;
  /** The container's full id, unique within its engine. */
  readonly id: string;
  /** Every name it answers to, without a leading `/`. */
  readonly names: readonly string[];
  /** True when its init process is running (paused counts as running). */
  readonly running: boolean;
  readonly paused?: boolean | undefined;
  readonly restarting?: boolean | undefined;
  /** Init PID as seen from the host; absent or <= 0 when not running. */
  readonly pid?: number | undefined;
  /**
   * Start time of the init PID (field 22 of /proc/PID/stat, clock ticks since
   * boot) as the engine recorded it (runc's `init_process_start`, Docker's
   * `StartedAt`), when it did. The registry checks it against the kernel once
   * when it anchors the process; a different start time means the PID was
   * reused and the container is gone. When absent, the start time the
   * registry sees first is kept for as long as the engine reports that PID.
   */
  readonly pidStartTime?: number | undefined;
  /**
   * How far (clock ticks) the kernel's start time may lie from
   * `pidStartTime` and still be this container's process; absent or 0: it
   * must be equal. For an engine that records its own clock's time rather
   * than the kernel's ticks (Docker's `StartedAt`): the registry's one read
   * of /proc/PID/stat, when it anchors the process, is then the only one —
   * the engine reads no /proc file to make its records.
   */
  readonly pidStartTolerance?: number | undefined;
  /** Hostname the engine configured, for display only (truth is the UTS ns). */
  readonly hostname?: string | undefined;
  /** The cgroup the engine says it placed the container in, for display only. */
  readonly cgroupHint?: string | undefined;
  /** The engine's own word for the state (`running`, `exited`, `created`, `FROZEN`...), for display. */
  readonly state?: string | undefined;
  /** Kubernetes' names for the container, when a pod holds it. */
  readonly kubernetes?: KubernetesNames | undefined;
  /** Where the facts came from (`api`, `disk`, `config`...), for logs and `croot list`. */
  readonly source?: string | undefined;
  /**
   * Listed, but its state not read yet (LXC's containers before lxc-info has
   * answered): a request for it waits for the engine's next word on it, at
   * most the registry's first-load wait, instead of being told that it is
   * not running.
   */
  readonly pending?: boolean | undefined;
}

export interface KubernetesNames {
  readonly namespace: string;
  readonly pod: string;
  readonly container: string;
}

export interface EngineStatus {
  readonly engine: string;
  readonly available: boolean;
  /** Why it is not available, or what it reads when it is. */
  readonly reason: string;
  /** When the engine last reported its health (ms since epoch). */
  readonly checkedAt: number;
}

/**
 * Where an engine pushes what it learns. Every method is synchronous and
 * cheap; an engine calls them from its own event handlers, never from a
 * request. Records are taken as they are (the registry freezes them).
 */
export interface ContainerSink {
  /**
   * Replaces every container of this engine: the first load, or a full
   * re-check. The first call marks the engine loaded, so requests waiting
   * for it go on; an engine whose source is absent calls it with `[]`.
   */
  replaceAll(records: Iterable<ContainerRecord>): void;
  /** Adds a container or replaces the one with the same id. */
  upsert(record: ContainerRecord): void;
  /** Drops the container with this id (no-op when unknown). */
  remove(id: string): void;
  /** Reports the engine's health; the registry logs each change. */
  health(available: boolean, reason: string): void;
}

/** Token and interface share a name: bind an engine with `bind(EngineContribution)`. */
export const EngineContribution = Symbol.for('croot/EngineContribution');
export interface EngineContribution {
  /** Short lower-case id (`docker`), unique in the registry. */
  readonly id: string;
  /**
   * Called once by the registry: load the containers, push them with
   * `sink.replaceAll`, then keep pushing every change the source signals
   * (events, inotify) until `stop()`. May resolve before the first load is
   * pushed. Must never block the event loop: a source that hangs delays
   * this engine's own first load only.
   */
  start(sink: ContainerSink): Promise<void> | void;
  /**
   * A full re-read of the source, the registry's slow safety net against a
   * missed signal (every 30 s or slower, never on a request). Pushes what it
   * finds through the sink.
   */
  recheck?(): Promise<void>;
  /** Applies a re-read configuration (crootd's SIGHUP); engines that have nothing to re-read omit it. */
  reconfigure?(config: CrootConfig): Promise<void>;
  /** Stops watching and releases every handle; no sink call after it resolves. */
  stop(): Promise<void>;
}
