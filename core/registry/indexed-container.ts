/**
 * A container as the live index holds it: the engine's record and what the
 * index learnt of its init process (liveness, PID, start time, cgroup, the
 * handle that holds it).
 */
import type { ContainerRecord } from './engine-contribution.js';
import type { ProcessHandle } from '../host/host-services.js';
import { readCGroupNameSync } from '../host/proc-files.js';
import { isDigestId } from './name-matcher.js';

/**
 * What the index knows of a container's init process:
 * `running` (held, alive at the last check), `stopped` (the engine says so),
 * `exited` (it died since the engine reported it running), `reused` (the PID
 * now belongs to a process that started at another time than the engine
 * recorded).
 */
export type Liveness = 'running' | 'stopped' | 'exited' | 'reused';

/**
 * A container as the index holds it: the engine's record (its fields are
 * readable here directly) and what the index learnt of its init process.
 * Read-only for everyone but the index.
 */
export interface IndexedContainer extends ContainerRecord {
  readonly record: ContainerRecord;
  readonly liveness: Liveness;
  /** The init PID while `running`, else the one it had (for messages). */
  readonly pid: number | undefined;
  /** The init process's start time as the kernel gave it when anchored. */
  readonly startTime: number | undefined;
  /**
   * The host's view of its cgroup, without the leading `/`: read from
   * /proc/PID/cgroup the first time it is asked for while the process is held
   * (and kept), so anchoring thousands of containers reads no cgroup that no
   * one asks for. Undefined when the process is not held or the file gives no
   * usable line.
   */
  readonly cgroup: string | undefined;
  /** The held init process while `running`. */
  readonly handle: ProcessHandle | undefined;
}

/** What changed, for listeners (`croot events`, the PMDA). */
export interface IndexChange {
  readonly kind: 'added' | 'updated' | 'removed';
  readonly container: IndexedContainer;
}

/** Who owes an entry the anchoring of its init process (the index). */
export interface AnchorDebtor {
  /** Anchors `entry` now. */
  anchorOwed(entry: Entry): void;
}

/**
 * The index's own record of a container: mutable by the index only, read by
 * everyone as an IndexedContainer. While the index owes it the anchoring of
 * its init process (`owedBy`), reading anything anchoring learns (liveness,
 * PID, start time, handle, cgroup) anchors it first: no reader ever sees a
 * container that is not anchored.
 */
export class Entry implements IndexedContainer {
  owedBy: AnchorDebtor | undefined;
  private life: Liveness = 'stopped';
  private heldPid: number | undefined;
  private start: number | undefined;
  private held: ProcessHandle | undefined;
  /** The cgroup once read for the process held now; the index clears it whenever it anchors another. */
  knownCGroup: string | undefined;
  /** Whether a prefix of its id finds it (the id never changes). */
  readonly digest: boolean;
  constructor(
    public record: ContainerRecord,
    private readonly procRoot: string,
  ) {
    this.digest = isDigestId(record.id);
  }

  get liveness(): Liveness {
    if (this.owedBy !== undefined) this.owedBy.anchorOwed(this);
    return this.life;
  }
  set liveness(value: Liveness) {
    this.life = value;
  }
  get pid(): number | undefined {
    if (this.owedBy !== undefined) this.owedBy.anchorOwed(this);
    return this.heldPid;
  }
  set pid(value: number | undefined) {
    this.heldPid = value;
  }
  get startTime(): number | undefined {
    if (this.owedBy !== undefined) this.owedBy.anchorOwed(this);
    return this.start;
  }
  set startTime(value: number | undefined) {
    this.start = value;
  }
  get handle(): ProcessHandle | undefined {
    if (this.owedBy !== undefined) this.owedBy.anchorOwed(this);
    return this.held;
  }
  set handle(value: ProcessHandle | undefined) {
    this.held = value;
  }

  get cgroup(): string | undefined {
    if (this.knownCGroup === undefined && this.liveness === 'running') this.knownCGroup = this.readCGroup();
    return this.knownCGroup;
  }

  /**
   * /proc/PID/cgroup of the held process. The handle is checked after the
   * read: a PID whose process exited meanwhile may belong to another process,
   * whose cgroup is not this container's.
   */
  private readCGroup(): string | undefined {
    const handle = this.handle;
    const pid = this.pid;
    if (handle === undefined || pid === undefined) return undefined;
    let cgroup: string;
    try {
      cgroup = readCGroupNameSync(this.procRoot, pid);
    } catch {
      return undefined;
    }
    return handle.isAlive() && this.handle === handle ? cgroup : undefined;
  }

  get engine(): string {
    return this.record.engine;
  }
  get id(): string {
    return this.record.id;
  }
  get names(): readonly string[] {
    return this.record.names;
  }
  get running(): boolean {
    return this.record.running;
  }
  get paused(): boolean | undefined {
    return this.record.paused;
  }
  get restarting(): boolean | undefined {
    return this.record.restarting;
  }
  get pidStartTime(): number | undefined {
    return this.record.pidStartTime;
  }
  get pidStartTolerance(): number | undefined {
    return this.record.pidStartTolerance;
  }
  get hostname(): string | undefined {
    return this.record.hostname;
  }
  get cgroupHint(): string | undefined {
    return this.record.cgroupHint;
  }
  get state(): string | undefined {
    return this.record.state;
  }
  get kubernetes(): ContainerRecord['kubernetes'] {
    return this.record.kubernetes;
  }
  get source(): string | undefined {
    return this.record.source;
  }

  /** The record's facts and the index's, as plain data (for JSON and logs). */
  toJSON(): Record<string, unknown> {
    return { ...this.record, liveness: this.liveness, pid: this.pid, cgroup: this.cgroup };
  }
}
