/**
 * The three questions pmdaroot answers, as injectable resolvers. Each takes a
 * container reference (`NAME`, `ENGINE:NAME` or `ENGINE.NAME`) and throws a
 * CrootError with the PCP status to send when it cannot answer. PID and
 * cgroup answers come straight from the live index, synchronously, once the
 * engines in question have loaded. A hostname needs the namespace thread: it
 * is synchronous too when the thread answers at once (readHostnameNow), else
 * a promise.
 */
import { inject, injectable, optional } from 'inversify';
import { CrootConfig } from '../config/croot-config.js';
import type { ContainerRecord } from './engine-contribution.js';
import { EngineRegistry, type IndexedContainer } from './engine-registry.js';
import { CrootError } from '../errors/croot-error.js';
import { NamespaceHostnameReader, type ProcessHandle } from '../host/host-services.js';
import { readCGroupNameSync, readProcessStat } from '../host/proc-files.js';

/** A value, or a promise of it when something had to be waited for. */
export type MaybePromise<T> = T | Promise<T>;

export const ContainerHostnameResolver = Symbol.for('croot/ContainerHostnameResolver');
export interface ContainerHostnameResolver {
  /**
   * The hostname seen inside the container (its UTS namespace). Without a
   * signal, synchronous when the namespace thread answers at once; with one,
   * always a promise, which the signal's abort rejects.
   */
  resolveHostname(ref: string, signal?: AbortSignal): MaybePromise<ResolvedAnswer<string>>;
  /** The hostname seen by a host PID (PCP's `namelen == 0` request); synchronous as resolveHostname. */
  resolveHostnameOfProcess(pid: number, signal?: AbortSignal): MaybePromise<string>;
}

export const ContainerProcessIdResolver = Symbol.for('croot/ContainerProcessIdResolver');
export interface ContainerProcessIdResolver {
  /** The container's init PID as seen from the host; never 0 or -1. */
  resolveProcessId(ref: string): MaybePromise<number>;
  /** The same PID (as `value` and `pid`), with the container and process it was answered for. */
  resolveProcess?(ref: string): MaybePromise<ResolvedAnswer<number>>;
}

export const ContainerCGroupResolver = Symbol.for('croot/ContainerCGroupResolver');
export interface ContainerCGroupResolver {
  /** The container's cgroup from the host's /proc/PID/cgroup, without the leading `/`. */
  resolveCGroupName(ref: string): MaybePromise<ResolvedAnswer<string>>;
  /** The cgroup of a host PID (PCP's `namelen == 0` request). */
  resolveCGroupNameOfProcess(pid: number): string;
}

/** An answer together with the init PID it was read from (the wire carries both). */
export interface ResolvedAnswer<T> {
  readonly pid: number;
  readonly value: T;
  readonly container: ContainerRecord;
  /**
   * Set when the answer stays the same for as long as this process lives
   * and the index does not change (a hostname: and no hostname is set
   * anywhere), so that a server may give an answer it gave at once again
   * without asking (ReplyCache).
   */
  readonly holder?: ProcessHandle | undefined;
}

/**
 * Looks a container up and checks that its init process is still the one the
 * index holds: a zero-timeout poll of its pidfd (or, without pidfds, its
 * /proc start time and state). A process seen dead here is marked exited in
 * the index at once.
 */
@injectable()
export class RunningContainerLocator {
  constructor(@inject(EngineRegistry) private readonly registry: EngineRegistry) {}

  locate(ref: string): MaybePromise<IndexedContainer> {
    const found = this.registry.lookup(ref);
    return found instanceof Promise ? found.then((c) => this.running(c)) : this.running(found);
  }

  /** `container` when its init process runs; else the CrootError a request gets. */
  running(container: IndexedContainer): IndexedContainer {
    if (container.liveness === 'running' && container.handle !== undefined) {
      if (container.handle.isAlive()) return container;
      this.registry.markExited(container);
    }
    throw notRunning(container);
  }
}

function notRunning(container: IndexedContainer): CrootError {
  const record = container.record;
  const label = `${record.engine}:${record.names[0] ?? record.id}`;
  const details = { engine: record.engine, id: record.id, ...(container.pid !== undefined ? { pid: container.pid } : {}) };
  switch (container.liveness) {
    case 'reused':
      return new CrootError('ERR_PID_REUSED', `container ${label} is gone: PID ${container.pid} now belongs to another process`, { details });
    case 'stopped':
      return new CrootError('ERR_NOT_RUNNING', `container ${label} is not running`, { details });
    default:
      return new CrootError('ERR_NOT_RUNNING', `container ${label} is not running (its init process ${container.pid} has exited)`, {
        details,
      });
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

  resolveHostname(ref: string, signal?: AbortSignal): MaybePromise<ResolvedAnswer<string>> {
    const found = this.locator.locate(ref);
    return found instanceof Promise ? found.then((c) => this.hostnameOf(c, signal)) : this.hostnameOf(found, signal);
  }

  resolveHostnameOfProcess(pid: number, signal?: AbortSignal): MaybePromise<string> {
    const reader = this.reader();
    return signal === undefined ? reader.readHostnameNow(pid) : reader.readHostname(pid, signal);
  }

  resolveProcessId(ref: string): MaybePromise<number> {
    const answer = this.resolveProcess(ref);
    return answer instanceof Promise ? answer.then((a) => a.value) : answer.value;
  }

  resolveProcess(ref: string): MaybePromise<ResolvedAnswer<number>> {
    const found = this.locator.locate(ref);
    // A container waited for is answered without a holder: the index may have changed meanwhile.
    return found instanceof Promise ? found.then((c) => processAnswer(c, undefined)) : processAnswer(found, found.handle);
  }

  resolveCGroupName(ref: string): MaybePromise<ResolvedAnswer<string>> {
    const found = this.locator.locate(ref);
    return found instanceof Promise ? found.then((c) => this.cgroupOf(c)) : this.cgroupOf(found);
  }

  resolveCGroupNameOfProcess(pid: number): string {
    const stat = readProcessStat(this.config.procRoot, pid);
    if (stat === undefined) throw new CrootError('ERR_NOT_RUNNING', `process ${pid} is gone`, { details: { pid } });
    return readCGroupNameSync(this.config.procRoot, pid);
  }

  private hostnameOf(container: IndexedContainer, signal: AbortSignal | undefined): MaybePromise<ResolvedAnswer<string>> {
    const reader = this.reader();
    const pid = container.pid as number;
    const record = container.record;
    // Through the handle the locator has just checked (no JS since: a kept hostname needs no second
    // check): its pidfd, so a reused PID can never be entered, or else its start time, checked
    // again after the read.
    const target = container.handle ?? pid;
    const value = signal === undefined ? reader.readHostnameNow(target, container.handle !== undefined) : reader.readHostname(target, signal);
    if (typeof value === 'string') return { pid, container: record, value, holder: container.handle };
    return value.then((v) => ({ pid, container: record, value: v }));
  }

  private cgroupOf(container: IndexedContainer): ResolvedAnswer<string> {
    const pid = container.pid as number;
    // Read from /proc once, the first time it is asked for, while the process is held (IndexedContainer.cgroup).
    const value = container.cgroup;
    if (value !== undefined) return { pid, container: container.record, value, holder: container.handle };
    // None: its file names no usable cgroup (the read says why), or the process exited meanwhile.
    const read = readCGroupNameSync(this.config.procRoot, pid);
    // Checked after the read: only a process still held makes the PID's cgroup this container's.
    this.locator.running(container);
    return { pid, container: container.record, value: read };
  }

  private reader(): NamespaceHostnameReader {
    if (this.hostnames === undefined) {
      throw new CrootError('ERR_NATIVE_LOAD', 'no NamespaceHostnameReader is bound: the native module is not loaded');
    }
    return this.hostnames;
  }
}

/** The container's init PID as an answer, held by `holder` when given. */
function processAnswer(container: IndexedContainer, holder: ProcessHandle | undefined): ResolvedAnswer<number> {
  const pid = container.pid as number;
  return { pid, value: pid, container: container.record, holder };
}
