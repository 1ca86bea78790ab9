/**
 * Turns Docker's container JSON into a ContainerRecord. The API's
 * `GET /containers/{id}/json` and the on-disk `config.v2.json`/`config.json`
 * share the keys croot needs (`State.Pid`, `State.Running/Paused/Restarting`,
 * `State.StartedAt`, `Name`, `Config.Hostname`), so both sources use this.
 * Only the API gives `State.Status`; for the files it is derived.
 */
import { readFile } from 'node:fs/promises';
import type { ContainerRecord } from '../../core/registry/engine-contribution.js';

/** The slice of Docker's container JSON croot reads (the API's `Id`, the disk's `ID`). */
export interface DockerContainerJson {
  readonly Id?: unknown;
  readonly ID?: unknown;
  readonly Name?: unknown;
  readonly State?: {
    readonly Pid?: unknown;
    readonly Running?: unknown;
    readonly Paused?: unknown;
    readonly Restarting?: unknown;
    readonly RemovalInProgress?: unknown;
    readonly Dead?: unknown;
    readonly StartedAt?: unknown;
    /** The API's word for the state; the files do not hold it. */
    readonly Status?: unknown;
  };
  readonly Config?: { readonly Hostname?: unknown };
  readonly HostConfig?: { readonly CgroupParent?: unknown };
}

export type DockerSourceKind = 'api' | 'disk';

export interface DockerRecordOptions {
  /** Id to use when the JSON carries none (the directory name on disk). */
  readonly fallbackId?: string;
  /** `HostConfig.CgroupParent` when it lives elsewhere (hostconfig.json on disk). */
  readonly cgroupParent?: string;
  /** Docker's cgroup driver when known (`systemd` or `cgroupfs`). */
  readonly cgroupDriver?: string;
  /** Start time (clock ticks since boot) of the init PID as `StartedAt` gives it (dockerPidStartTime), when known. */
  readonly pidStartTime?: number;
}

/** The container's full id, or undefined when the JSON has none. */
export function dockerIdOf(json: DockerContainerJson, fallbackId?: string): string | undefined {
  const id = typeof json.Id === 'string' ? json.Id : typeof json.ID === 'string' ? json.ID : fallbackId;
  // Equal to the caller's: the caller's string, which it keeps anyway (one copy per container, not two).
  if (id === fallbackId) return fallbackId;
  return id !== undefined && id.length > 0 ? id : undefined;
}

/** The init PID Docker recorded, when the container is running and it is positive. */
export function dockerPidOf(json: DockerContainerJson): number | undefined {
  const pid = json.State?.Pid;
  return json.State?.Running === true && typeof pid === 'number' && Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * Where Docker says it put the container's cgroup, without the leading `/`:
 * cgroupfs `PARENT/<id>` (default parent `docker`), systemd
 * `PARENT/docker-<id>.scope` (default `system.slice`). Display only.
 */
export function dockerCGroupHint(id: string, cgroupParent: string | undefined, driver: string | undefined): string {
  const parent = (cgroupParent ?? '').replace(/^\/+|\/+$/g, '');
  if (driver === 'systemd') return `${parent.length > 0 ? parent : 'system.slice'}/docker-${id}.scope`;
  return `${parent.length > 0 ? parent : 'docker'}/${id}`;
}

/** Docker's zero time, which `StartedAt` holds for a container that never started. */
const NEVER = /^0001-01-01T00:00:00/;

/**
 * Docker's word for the state (`created`, `running`, `paused`, `restarting`,
 * `removing`, `exited`, `dead`): the API's `State.Status`, else derived from
 * the flags the files hold as Docker itself derives it.
 */
export function dockerStateOf(json: DockerContainerJson): string {
  const state = json.State ?? {};
  if (typeof state.Status === 'string' && state.Status.length > 0) return state.Status;
  if (state.Running === true) return state.Paused === true ? 'paused' : state.Restarting === true ? 'restarting' : 'running';
  if (state.RemovalInProgress === true) return 'removing';
  if (state.Dead === true) return 'dead';
  const started = state.StartedAt;
  return typeof started !== 'string' || started === '' || NEVER.test(started) ? 'created' : 'exited';
}

/** Builds the record; undefined when the JSON names no container. */
export function dockerRecordFrom(
  json: DockerContainerJson,
  source: DockerSourceKind,
  options: DockerRecordOptions = {},
): ContainerRecord | undefined {
  const id = dockerIdOf(json, options.fallbackId);
  if (id === undefined) return undefined;
  const state = json.State ?? {};
  const rawName = typeof json.Name === 'string' ? json.Name.replace(/^\/+/, '') : '';
  const hostname = json.Config?.Hostname;
  const parent = options.cgroupParent ?? (typeof json.HostConfig?.CgroupParent === 'string' ? json.HostConfig.CgroupParent : undefined);
  const pid = dockerPidOf(json);
  const record: {
    -readonly [K in keyof ContainerRecord]: ContainerRecord[K];
  } = {
    engine: 'docker',
    id,
    names: Object.freeze(rawName.length > 0 ? [rawName] : []),
    running: state.Running === true,
    paused: state.Paused === true,
    restarting: state.Restarting === true,
    state: dockerStateOf(json),
    cgroupHint: dockerCGroupHint(id, parent, options.cgroupDriver),
    source,
  };
  if (pid !== undefined) record.pid = pid;
  if (pid !== undefined && options.pidStartTime !== undefined) {
    record.pidStartTime = options.pidStartTime;
    record.pidStartTolerance = START_TOLERANCE_SECONDS * CLOCK_TICKS_PER_SECOND;
  }
  if (typeof hostname === 'string' && hostname.length > 0) record.hostname = hostname;
  return Object.freeze(record);
}

/** `btime` from PROCROOT/stat: the boot time in seconds since the epoch. */
export async function readBootTime(procRoot: string): Promise<number | undefined> {
  try {
    const m = /^btime (\d+)$/m.exec(await readFile(`${procRoot}/stat`, 'utf8'));
    return m?.[1] === undefined ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

/** USER_HZ: the unit of /proc/PID/stat start times (100 on every Linux ABI). */
export const CLOCK_TICKS_PER_SECOND = 100;
/** How far Docker's `StartedAt` may lie from the init process's real start. */
export const START_TOLERANCE_SECONDS = 30;

/**
 * The start time Docker recorded for its init PID, in clock ticks since
 * boot: `StartedAt` less the boot time. Undefined when either is unknown or
 * `StartedAt` is no time. Docker writes its own clock's time, not the
 * kernel's ticks, so the record carries it with a tolerance of
 * START_TOLERANCE_SECONDS (`pidStartTolerance`): the registry, which reads
 * the process's real start once when it anchors it, takes a process that
 * started within that tolerance as the container's, and calls any other
 * process at that PID a reuse. Croot reads no /proc file to make the
 * record.
 */
export function dockerPidStartTime(startedAt: unknown, bootTime: number | undefined): number | undefined {
  const startedMs = typeof startedAt === 'string' ? Date.parse(startedAt) : NaN;
  if (bootTime === undefined || !Number.isFinite(startedMs) || startedMs <= 0) return undefined;
  return Math.round((startedMs / 1000 - bootTime) * CLOCK_TICKS_PER_SECOND);
}
