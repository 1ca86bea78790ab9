/**
 * What `croot list`, `show` and `engines` (in-process) and crootd's
 * extension handler (through the socket) ask of the engines: every
 * container, every engine's health, and one container inspected. The one
 * place outside the resolvers that reads the engine registry, so a change
 * of the registry's shape is made here.
 */
import { inject, injectable } from 'inversify';
import type { ContainerRecord, EngineStatus } from './engine.js';
import { EngineRegistry, type IndexedContainer } from './engine-registry.js';
import { CrootError, ErrorCodes, statusOf, type ErrorCode } from './errors.js';
import { sortContainers, sortEngines, type ContainerReport, type ContainerState, type EngineReport, type ErrorReport } from './croot-extension.js';
import { ContainerCGroupResolver, ContainerHostnameResolver, ContainerProcessIdResolver } from './resolvers.js';

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
}

/** The ContainerView over croot's engine registry and resolvers. */
@injectable()
export class RegistryContainerView implements ContainerView {
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
    const out: { pid: number | null; hostname?: string | null; cgroup?: string | null } = { pid: null };
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
    code: err instanceof CrootError ? err.code : 'ERR_SYSTEM',
    status: statusOf(err),
    message: err instanceof Error ? err.message : String(err),
  };
}

/** The CrootError an ErrorReport describes (for a command that asked one field and must fail with it). */
export function errorFromReport(report: ErrorReport): CrootError {
  const code = Object.hasOwn(ErrorCodes, report.code) ? (report.code as ErrorCode) : 'ERR_REMOTE';
  return new CrootError(code, report.message, { status: report.status });
}
