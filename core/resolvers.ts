/**
 * The three questions pmdaroot answers, as injectable resolvers. Each takes a
 * container reference (`NAME` or `ENGINE:NAME`) and throws a CrootError with
 * the PCP status to send when it cannot answer.
 */
import { inject, injectable, optional } from 'inversify';
import { CrootConfig } from './config.js';
import type { ContainerRecord } from './engine.js';
import { EngineRegistry } from './engine-registry.js';
import { CrootError } from './errors.js';
import { NamespaceHostnameReader } from './host-services.js';
import { readCgroupName, readStartTime } from './proc.js';

export const ContainerHostnameResolver = Symbol.for('croot/ContainerHostnameResolver');
export interface ContainerHostnameResolver {
  /** The hostname seen inside the container (its UTS namespace). */
  resolveHostname(ref: string, signal?: AbortSignal): Promise<ResolvedAnswer<string>>;
  /** The hostname seen by a host PID (PCP's `namelen == 0` request). */
  resolveHostnameOfProcess(pid: number, signal?: AbortSignal): Promise<string>;
}

export const ContainerProcessIdResolver = Symbol.for('croot/ContainerProcessIdResolver');
export interface ContainerProcessIdResolver {
  /** The container's init PID as seen from the host; never 0 or -1. */
  resolveProcessId(ref: string, signal?: AbortSignal): Promise<number>;
}

export const ContainerCGroupResolver = Symbol.for('croot/ContainerCGroupResolver');
export interface ContainerCGroupResolver {
  /** The container's cgroup from the host's /proc/PID/cgroup, without the leading `/`. */
  resolveCGroupName(ref: string, signal?: AbortSignal): Promise<ResolvedAnswer<string>>;
  resolveCGroupNameOfProcess(pid: number): Promise<string>;
}

/** An answer together with the init PID it was read from (the wire carries both). */
export interface ResolvedAnswer<T> {
  readonly pid: number;
  readonly value: T;
  readonly container: ContainerRecord;
}

/** Looks a container up and checks that its init PID is alive and still the same process. */
@injectable()
export class RunningContainerLocator {
  constructor(
    @inject(EngineRegistry) private readonly registry: EngineRegistry,
    @inject(CrootConfig) private readonly config: CrootConfig,
  ) {}

  async locate(ref: string, signal?: AbortSignal): Promise<{ container: ContainerRecord; pid: number }> {
    const container = await this.registry.lookup(ref, signal);
    const label = `${container.engine}:${container.names[0] ?? container.id}`;
    const pid = container.pid ?? 0;
    if (!container.running || pid <= 0) {
      throw new CrootError('ERR_NOT_RUNNING', `container ${label} is not running`, {
        details: { engine: container.engine, id: container.id },
      });
    }
    const started = await readStartTime(this.config.procRoot, pid);
    if (started === undefined) {
      throw new CrootError('ERR_NOT_RUNNING', `container ${label} is not running (its PID ${pid} is gone)`, {
        details: { engine: container.engine, id: container.id, pid },
      });
    }
    if (container.pidStartTime !== undefined && container.pidStartTime !== started) {
      throw new CrootError('ERR_PID_REUSED', `container ${label} is gone: PID ${pid} now belongs to another process`, {
        details: { engine: container.engine, id: container.id, pid, recorded: container.pidStartTime, actual: started },
      });
    }
    return { container, pid };
  }
}

@injectable()
export class DefaultContainerResolver
  implements ContainerHostnameResolver, ContainerProcessIdResolver, ContainerCGroupResolver
{
  constructor(
    @inject(RunningContainerLocator) private readonly locator: RunningContainerLocator,
    @inject(CrootConfig) private readonly config: CrootConfig,
    @inject(NamespaceHostnameReader) @optional() private readonly hostnames: NamespaceHostnameReader | undefined,
  ) {}

  async resolveHostname(ref: string, signal?: AbortSignal): Promise<ResolvedAnswer<string>> {
    const { container, pid } = await this.locator.locate(ref, signal);
    return { pid, container, value: await this.resolveHostnameOfProcess(pid, signal) };
  }

  async resolveHostnameOfProcess(pid: number, signal?: AbortSignal): Promise<string> {
    if (this.hostnames === undefined) {
      throw new CrootError('ERR_NATIVE_LOAD', 'no NamespaceHostnameReader is bound: the native module is not loaded');
    }
    return this.hostnames.readHostname(pid, signal);
  }

  async resolveProcessId(ref: string, signal?: AbortSignal): Promise<number> {
    return (await this.locator.locate(ref, signal)).pid;
  }

  async resolveCGroupName(ref: string, signal?: AbortSignal): Promise<ResolvedAnswer<string>> {
    const { container, pid } = await this.locator.locate(ref, signal);
    return { pid, container, value: await readCgroupName(this.config.procRoot, pid) };
  }

  async resolveCGroupNameOfProcess(pid: number): Promise<string> {
    return readCgroupName(this.config.procRoot, pid);
  }
}
