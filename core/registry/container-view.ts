/**
 * What `croot list`, `show`, `engines` and `events` (in-process) and
 * crootd's extension handler (through the socket) ask of the engines: every
 * container, every engine's health, one container inspected, how init
 * processes are held, and the changes as they happen. The one place outside
 * the resolvers that reads the engine registry, so a change of the
 * registry's shape is made here.
 */
import { inject, injectable } from 'inversify';
import type { ContainerRecord, EngineStatus } from './engine-contribution.js';
import { EngineRegistry, type IndexedContainer, type Liveness, type RegistryEvent } from './engine-registry.js';
import { CrootError, ErrorCodes, statusOf, type ErrorCode } from '../errors/croot-error.js';
import {
  sortContainers,
  sortEngines,
  type AnchorReport,
  type ContainerReport,
  type ContainerState,
  type EngineReport,
  type ErrorReport,
  type EventReport,
} from '../protocol/croot-extension.js';
import { ContainerCGroupResolver, ContainerHostnameResolver, ContainerProcessIdResolver } from './container-resolvers.js';

/** The three answers a container can be inspected for. */
export type ContainerField = 'pid' | 'hostname' | 'cgroup';
export const CONTAINER_FIELDS: readonly ContainerField[] = ['pid', 'hostname', 'cgroup'];

export const ContainerView = Symbol.for('croot/ContainerView');
export interface ContainerView {
  /** Every engine's health, sorted by engine id. */
  engines(): Promise<readonly EngineReport[]>;
  /** Every container of every engine, sorted by engine, first name, id. */
  containers(signal?: AbortSignal): Promise<readonly ContainerReport[]>;
  /**
   * The one container `ref` designates, with the `fields` asked for read
   * from the host. Throws the lookup's CrootError when `ref` designates no
   * container or several; a field that cannot be answered (not running...)
   * is null with its reason in `errors`.
   */
  inspect(ref: string, fields: readonly ContainerField[], signal?: AbortSignal): Promise<ContainerReport>;
  /** How init processes are held: pidfds, or start-time checks through /proc and why. */
  anchor(): AnchorReport;
  /**
   * Calls `listener` with every change from now on (`croot events`), and
   * returns what there is at the same instant, so that nothing falls
   * between the two. `listener` runs synchronously inside the change:
   * it must not throw or wait.
   */
  watch(listener: (event: EventReport) => void): ContainerWatch;
}

/** A subscription to the changes, and what there was when it began. */
export interface ContainerWatch {
  /** Every container when the watch began, sorted as `containers()`. */
  readonly containers: readonly ContainerReport[];
  /** Every engine's health when the watch began. */
  readonly engines: readonly EngineReport[];
  /** Ends the subscription; idempotent. */
  stop(): void;
}

/** The ContainerView over croot's engine registry and resolvers. */
@injectable()
export class RegistryContainerView implements ContainerView {
  private readonly watchers = new Set<(event: EventReport) => void>();
  /** Shared by every watcher; exists only while there is one. */
  private tracker: { readonly changes: ContainerChanges; readonly unsubscribe: () => void } | undefined;

  constructor(
    @inject(EngineRegistry) private readonly registry: EngineRegistry,
    @inject(ContainerProcessIdResolver) private readonly pids: ContainerProcessIdResolver,
    @inject(ContainerHostnameResolver) private readonly hostnames: ContainerHostnameResolver,
    @inject(ContainerCGroupResolver) private readonly cgroups: ContainerCGroupResolver,
  ) {}

  async engines(): Promise<readonly EngineReport[]> {
    return sortEngines(this.registry.statuses().map(engineReport));
  }

  async containers(): Promise<readonly ContainerReport[]> {
    return sortContainers(this.registry.containers().map(containerReport));
  }

  async inspect(ref: string, fields: readonly ContainerField[], signal?: AbortSignal): Promise<ContainerReport> {
    const record = await Promise.resolve().then(() => this.registry.lookup(ref));
    // Asked by engine and id, so each answer is about this very container.
    const exact = `${record.engine}:${record.id}`;
    const base = containerReport(record);
    // A PID not asked for is the index's (null when not running), as `containers()` gives it.
    const out: { pid?: number | null; hostname?: string | null; cgroup?: string | null } = {};
    const errors: { pid?: ErrorReport; hostname?: ErrorReport; cgroup?: ErrorReport } = {};
    const attempt = async <T>(field: ContainerField, get: () => T | Promise<T>): Promise<T | null> => {
      try {
        return await get();
      } catch (err) {
        errors[field] = errorReport(err);
        return null;
      }
    };
    if (fields.includes('pid')) out.pid = await attempt('pid', () => this.pids.resolveProcessId(exact));
    if (fields.includes('hostname')) out.hostname = await attempt('hostname', async () => (await this.hostnames.resolveHostname(exact, signal)).value);
    if (fields.includes('cgroup')) out.cgroup = await attempt('cgroup', async () => (await this.cgroups.resolveCGroupName(exact)).value);
    return { ...base, ...out, ...(Object.keys(errors).length > 0 ? { errors } : {}) };
  }

  anchor(): AnchorReport {
    return anchorReport(this.registry.anchorMode());
  }

  watch(listener: (event: EventReport) => void): ContainerWatch {
    if (this.tracker === undefined) {
      // One translation of the registry's events for every watcher; each event is made once.
      const changes = new ContainerChanges(this.registry.containers());
      const unsubscribe = this.registry.subscribe((event) => {
        const report = changes.translate(event);
        if (report === undefined) return;
        let failure: unknown;
        for (const watcher of [...this.watchers]) {
          try {
            watcher(report);
          } catch (err) {
            // Every watcher still gets the event; the registry logs the failure.
            failure ??= err;
          }
        }
        if (failure !== undefined) throw failure;
      });
      this.tracker = { changes, unsubscribe };
    }
    this.watchers.add(listener);
    let stopped = false;
    return {
      containers: sortContainers(this.registry.containers().map(containerReport)),
      engines: sortEngines(this.registry.statuses().map(engineReport)),
      stop: () => {
        if (stopped) return;
        stopped = true;
        this.watchers.delete(listener);
        if (this.watchers.size === 0 && this.tracker !== undefined) {
          this.tracker.unsubscribe();
          this.tracker = undefined;
        }
      },
    };
  }
}

/**
 * Turns the registry's events into `croot events` reports: keeps each
 * container's last report (and its init's liveness), so an update says what
 * it was, an update that changes nothing a report shows (names, state, PID)
 * is left out, and the end of an init process that croot saw before its
 * engine did is told apart (`exited`).
 */
export class ContainerChanges {
  private readonly last = new Map<string, { report: ContainerReport; liveness: Liveness }>();

  constructor(containers: Iterable<IndexedContainer>) {
    for (const c of containers) this.last.set(keyOf(c), { report: containerReport(c), liveness: c.liveness });
  }

  /** The report of `event`, or undefined when it changes nothing a report shows. */
  translate(event: RegistryEvent, now: number = Date.now()): EventReport | undefined {
    const time = new Date(now).toISOString();
    if (event.kind === 'health') return { time, type: 'engine', action: 'health', engine: engineReport(event.status) };
    const c = event.container;
    const key = keyOf(c);
    const report = containerReport(c);
    if (event.kind === 'removed') {
      this.last.delete(key);
      return { time, type: 'container', action: 'removed', container: report };
    }
    const before = this.last.get(key);
    this.last.set(key, { report, liveness: c.liveness });
    if (before === undefined) return { time, type: 'container', action: 'added', container: report };
    if (sameReport(before.report, report)) return undefined;
    const action = before.liveness === 'running' && c.liveness === 'exited' ? 'exited' : 'updated';
    return { time, type: 'container', action, container: report, was: before.report };
  }
}

function keyOf(c: { readonly engine: string; readonly id: string }): string {
  return `${c.engine}\0${c.id}`;
}

function sameReport(a: ContainerReport, b: ContainerReport): boolean {
  return a.state === b.state && a.pid === b.pid && a.names.length === b.names.length && a.names.every((n, i) => n === b.names[i]);
}

export function anchorReport(mode: { readonly kind: 'pidfd' | 'proc'; readonly reason?: string }): AnchorReport {
  return mode.kind === 'pidfd' ? { mode: 'pidfd' } : { mode: 'proc', reason: mode.reason ?? 'pidfds are not used' };
}

/** The state croot answers by: the index's view of the init process where there is one, else the engine's. */
export function stateOf(record: ContainerRecord | IndexedContainer): ContainerState {
  const held = 'liveness' in record ? record.liveness === 'running' : record.running;
  if (!held) return 'stopped';
  if (record.paused) return 'paused';
  if (record.restarting) return 'restarting';
  return 'running';
}

export function containerReport(record: ContainerRecord | IndexedContainer): ContainerReport {
  const running = stateOf(record) !== 'stopped' && record.pid !== undefined && record.pid > 0;
  return {
    engine: record.engine,
    id: record.id,
    names: [...record.names],
    state: stateOf(record),
    pid: running ? (record.pid as number) : null,
  };
}

export function engineReport(status: EngineStatus): EngineReport {
  return { engine: status.engine, available: status.available, reason: status.reason, checkedAt: new Date(status.checkedAt).toISOString() };
}

export function errorReport(err: unknown): ErrorReport {
  return {
    code: CrootError.is(err) ? err.code : 'ERR_SYSTEM',
    status: statusOf(err),
    message: err instanceof Error ? err.message : String(err),
  };
}

/** The CrootError an ErrorReport describes (for a command that asked one field and must fail with it). */
export function errorFromReport(report: ErrorReport): CrootError {
  const code = Object.hasOwn(ErrorCodes, report.code) ? (report.code as ErrorCode) : 'ERR_REMOTE';
  return new CrootError(code, report.message, { status: report.status });
}
