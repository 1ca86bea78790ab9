/**
 * The engines croot knows, filled from every `EngineContribution` bound in
 * the container (croot's own modules and third-party ones alike), and the
 * one live index they push their containers into. Requests read the index
 * synchronously; the only thing a request can ever wait for is the first
 * load of the engines its name could belong to, and that wait is bounded.
 */
import { inject, injectable, multiInject, optional } from 'inversify';
import { CrootConfig } from '../config/croot-config.js';
import { ContainerIndex } from './container-index.js';
import type { IndexChange, IndexedContainer } from './indexed-container.js';
import { EngineContribution, type ContainerRecord, type ContainerSink, type EngineStatus } from './engine-contribution.js';
import { CrootError } from '../errors/croot-error.js';
import { ProcessAnchor, type ProcessAnchorMode } from '../host/host-services.js';
import { Logger, SilentLogger } from '../logging/logger.js';
import { NameMatcher } from './name-matcher.js';
import { ProcProcessAnchor } from '../host/proc-process-anchor.js';
import { untilStated } from './until-stated.js';

export type { IndexedContainer, IndexChange, Liveness } from './indexed-container.js';

/** Tuning of the registry; bind under this token to override the defaults. */
export const EngineRegistryOptions = Symbol.for('croot/EngineRegistryOptions');
export interface EngineRegistryOptions {
  /** Longest a request waits for an engine's first load (ms, default 5000). */
  readonly firstLoadTimeoutMs?: number;
  /** Least time between two safety-net re-checks of one engine (ms, default 30000). */
  readonly recheckIntervalMs?: number;
  /**
   * A re-check that took `d` ms is not run again before `d * recheckCostFactor`
   * ms (default 200): the safety net never takes more than 0.5 % of a core.
   */
  readonly recheckCostFactor?: number;
}

/** A change in the index, or in an engine's health. */
export type RegistryEvent = IndexChange | { readonly kind: 'health'; readonly status: EngineStatus };

export const EngineRegistry = Symbol.for('croot/EngineRegistry');
export interface EngineRegistry {
  /** Engine ids in registration order. */
  ids(): readonly string[];
  get(id: string): EngineContribution | undefined;
  /** Every engine's health, as last reported. */
  statuses(): readonly EngineStatus[];
  /** Every container in the index now. */
  containers(): readonly IndexedContainer[];
  /**
   * The one container `ref` (`NAME`, `ENGINE:NAME`, `ENGINE.NAME`)
   * designates; throws a CrootError otherwise. Synchronous when every engine
   * the name could belong to has loaded; else a promise that waits for those
   * loads only (bounded by `firstLoadTimeoutMs`).
   */
  lookup(ref: string): IndexedContainer | Promise<IndexedContainer>;
  /**
   * Marks a running container's init process as exited, when a request's
   * liveness check saw it before the exit notification came.
   */
  markExited(container: IndexedContainer): void;
  /** Starts every engine (concurrently, without waiting for their loads); an engine that fails to start is recorded, not fatal. */
  start(): Promise<void>;
  /** Resolves once every engine has loaded, failed, or passed its first-load deadline. */
  ready(): Promise<void>;
  /**
   * Resolves once the engines are ready (as {@link ready}) and every
   * container they listed has its init process anchored (the background
   * pass is done): the end of start-up work.
   */
  anchored(): Promise<void>;
  /** How init processes are held (pidfds, or /proc checks and why). */
  anchorMode(): ProcessAnchorMode;
  /** Calls `listener` for every change of the index and of engine health; returns an unsubscribe function. */
  subscribe(listener: (event: RegistryEvent) => void): () => void;
  /** Hands a re-read configuration to every engine that takes one (SIGHUP). */
  reconfigure(config: CrootConfig): Promise<void>;
  stop(): Promise<void>;
}

/** Containers anchored per turn of the event loop when a long list is applied. */
const REPLACE_SLICE = 256;

const DEFAULTS: Required<EngineRegistryOptions> = { firstLoadTimeoutMs: 5000, recheckIntervalMs: 30000, recheckCostFactor: 200 };

/** One engine's bookkeeping. */
class EngineSlot {
  status: EngineStatus;
  /** The engine pushed its first full list, failed to start, or was stopped. */
  loaded = false;
  /** Its first-load deadline passed before it loaded. */
  overdue = false;
  readonly settled: Promise<void>;
  settle!: () => void;
  deadline: NodeJS.Timeout | undefined;
  recheckTimer: NodeJS.Timeout | undefined;
  rechecking = false;
  /** Bumped by each replaceAll, so a newer list supersedes one still being applied in slices. */
  replaceRun = 0;
  /** While a list is applied in slices: the ids pushed one by one meanwhile, which are newer than the list. */
  touched: Set<string> | undefined;
  stopped = false;

  constructor(readonly engine: EngineContribution) {
    this.status = { engine: engine.id, available: false, reason: 'loading', checkedAt: Date.now() };
    this.settled = new Promise<void>((resolve) => (this.settle = resolve));
  }

  /** Whether a request may be answered without waiting for this engine. */
  get answerable(): boolean {
    return this.loaded || this.overdue;
  }
}

@injectable()
export class DefaultEngineRegistry implements EngineRegistry {
  private readonly slots: readonly EngineSlot[];
  private readonly byId = new Map<string, EngineSlot>();
  private readonly engineIds: readonly string[];
  private readonly matcher = new NameMatcher();
  private readonly index: ContainerIndex;
  private readonly anchor: ProcessAnchor;
  private readonly options: Required<EngineRegistryOptions>;
  private readonly logger: Logger;
  private readonly listeners = new Set<(event: RegistryEvent) => void>();
  private started = false;

  constructor(
    @multiInject(EngineContribution) @optional() engines: EngineContribution[] | undefined,
    @inject(CrootConfig) config: CrootConfig,
    @inject(ProcessAnchor) @optional() anchor: ProcessAnchor | undefined,
    @inject(Logger) @optional() logger: Logger | undefined,
    @inject(EngineRegistryOptions) @optional() options: EngineRegistryOptions | undefined,
  ) {
    // Engines in disabledEngines are left out whoever bound them (a plugin's included).
    const disabled = new Set(config.disabledEngines);
    const list = (engines ?? []).filter((e) => !disabled.has(e.id));
    for (const engine of list) {
      if (this.byId.has(engine.id)) {
        throw new CrootError('ERR_DUPLICATE_ENGINE', `two engines registered with id "${engine.id}"`);
      }
      this.byId.set(engine.id, new EngineSlot(engine));
    }
    this.slots = [...this.byId.values()];
    this.engineIds = this.slots.map((s) => s.engine.id);
    this.anchor = anchor ?? new ProcProcessAnchor(config.procRoot);
    this.logger = logger ?? new SilentLogger();
    this.options = { ...DEFAULTS, ...(options ?? {}) };
    this.index = new ContainerIndex(this.anchor, config.procRoot, (change) => this.emit(change));
  }

  ids(): readonly string[] {
    return this.engineIds;
  }

  get(id: string): EngineContribution | undefined {
    return this.byId.get(id)?.engine;
  }

  statuses(): readonly EngineStatus[] {
    return this.slots.map((s) => s.status);
  }

  containers(): readonly IndexedContainer[] {
    return [...this.index.containers()];
  }

  anchorMode(): ProcessAnchorMode {
    return this.anchor.mode();
  }

  lookup(ref: string): IndexedContainer | Promise<IndexedContainer> {
    // A library user may look up without starting: start now, and wait like any early request.
    if (!this.started) void this.start();
    const scope = this.scopeOf(ref);
    for (const slot of scope) {
      if (!slot.answerable) return Promise.all(scope.map((s) => s.settled)).then(() => this.known(ref, scope));
    }
    return this.known(ref, scope);
  }

  /** The match for `ref`; when its engine has not read its state yet, a promise of the match once it has (bounded). */
  private known(ref: string, scope: readonly EngineSlot[]): IndexedContainer | Promise<IndexedContainer> {
    const found = this.match(ref, scope);
    if (found.record.pending !== true) return found;
    return untilStated(this, found, this.options.firstLoadTimeoutMs).then(() => {
      const again = this.match(ref, scope);
      if (again.record.pending !== true) return again;
      throw new CrootError('ERR_ENGINE_LOADING', `${again.engine} has not said yet whether "${ref}" runs`, { details: { ref, loading: [again.engine] } });
    });
  }

  markExited(container: IndexedContainer): void {
    this.index.markExited(container);
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await Promise.all(this.slots.map((slot) => this.startEngine(slot)));
  }

  async ready(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.settled));
  }

  async anchored(): Promise<void> {
    await this.ready();
    await this.index.whenAnchored();
  }

  subscribe(listener: (event: RegistryEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async reconfigure(config: CrootConfig): Promise<void> {
    await Promise.all(
      this.slots.map(async (slot) => {
        try {
          await slot.engine.reconfigure?.(config);
        } catch (err) {
          this.logger.error(`engine ${slot.engine.id}: reconfigure failed`, { error: (err as Error).message });
        }
      }),
    );
  }

  async stop(): Promise<void> {
    for (const slot of this.slots) {
      slot.stopped = true;
      clearTimeout(slot.deadline);
      clearTimeout(slot.recheckTimer);
      this.markLoaded(slot);
    }
    await Promise.allSettled(this.slots.map((s) => s.engine.stop()));
    this.index.clear();
  }

  /** The engines a reference could designate a container of. */
  private scopeOf(ref: string): readonly EngineSlot[] {
    const colon = ref.indexOf(':');
    if (colon > 0) {
      const slot = this.byId.get(ref.slice(0, colon));
      if (slot !== undefined) return [slot];
    }
    return this.slots;
  }

  private match(ref: string, scope: readonly EngineSlot[]): IndexedContainer {
    try {
      return this.matcher.find(ref, this.index, this.engineIds);
    } catch (err) {
      if (!CrootError.is(err) || err.code !== 'ERR_NO_CONTAINER') throw err;
      const loading = scope.filter((s) => !s.loaded).map((s) => s.engine.id);
      if (loading.length > 0) {
        throw new CrootError(
          'ERR_ENGINE_LOADING',
          `no container matches "${ref}" yet: ${loading.join(', ')} ${loading.length === 1 ? 'has' : 'have'} not finished loading`,
          { details: { ref, loading } },
        );
      }
      const down = scope.filter((s) => !s.status.available).map((s) => s.engine.id);
      if (down.length === 0) throw err;
      throw new CrootError('ERR_NO_CONTAINER', `${err.message} (engines down: ${down.join(', ')})`, {
        details: { ref, down },
      });
    }
  }

  private async startEngine(slot: EngineSlot): Promise<void> {
    const id = slot.engine.id;
    slot.deadline = setTimeout(() => {
      slot.deadline = undefined;
      if (slot.loaded) return;
      slot.overdue = true;
      this.logger.warn(`engine ${id}: first load not done after ${this.options.firstLoadTimeoutMs} ms; answering without it`);
      slot.settle();
    }, this.options.firstLoadTimeoutMs);
    slot.deadline.unref();
    try {
      await slot.engine.start(this.sinkFor(slot));
    } catch (err) {
      this.setHealth(slot, false, `failed to start: ${(err as Error).message}`);
      this.markLoaded(slot);
    }
  }

  private sinkFor(slot: EngineSlot): ContainerSink {
    const id = slot.engine.id;
    return {
      replaceAll: (records: Iterable<ContainerRecord>) => {
        if (!slot.stopped) this.replaceAll(slot, records);
      },
      upsert: (record: ContainerRecord) => {
        if (slot.stopped) return;
        slot.touched?.add(record.id);
        this.index.upsert(id, record);
      },
      remove: (containerId: string) => {
        if (slot.stopped) return;
        slot.touched?.add(containerId);
        this.index.remove(id, containerId);
      },
      health: (available: boolean, reason: string) => {
        if (!slot.stopped) this.setHealth(slot, available, reason);
      },
    };
  }

  /**
   * Applies an engine's whole list. A long one (a first load of thousands of
   * containers, each anchored: pidfd, /proc reads) is applied in slices with
   * the event loop free in between, so requests for other engines are never
   * held up behind it; the engine counts as loaded once the last slice is in.
   * A newer list supersedes one still being applied.
   */
  private replaceAll(slot: EngineSlot, records: Iterable<ContainerRecord>): void {
    const id = slot.engine.id;
    const list = Array.isArray(records) ? (records as readonly ContainerRecord[]) : [...records];
    const run = ++slot.replaceRun;
    slot.touched = undefined;
    const finished = (): void => {
      if (slot.loaded) return;
      this.markLoaded(slot);
      this.scheduleRecheck(slot, 0);
    };
    if (list.length <= REPLACE_SLICE) {
      this.index.replaceAll(id, list);
      finished();
      return;
    }
    const seen = new Set<string>();
    const touched = new Set<string>();
    slot.touched = touched;
    // The list's own containers are anchored when read, or by the background pass once the list is in.
    const release = this.index.holdBackgroundAnchoring();
    let next = 0;
    const step = (): void => {
      if (slot.stopped || run !== slot.replaceRun) {
        release();
        return;
      }
      const end = Math.min(next + REPLACE_SLICE, list.length);
      // A container pushed on its own since this list began is newer than the list's record of it.
      const slice = touched.size === 0 ? list.slice(next, end) : list.slice(next, end).filter((r) => !touched.has(r.id));
      this.index.upsertMany(id, slice, seen);
      next = end;
      if (next < list.length) {
        setImmediate(step);
        return;
      }
      slot.touched = undefined;
      for (const t of touched) seen.add(t);
      this.index.removeExcept(id, seen);
      release();
      finished();
    };
    step();
  }

  private markLoaded(slot: EngineSlot): void {
    if (slot.loaded) return;
    slot.loaded = true;
    clearTimeout(slot.deadline);
    slot.deadline = undefined;
    slot.settle();
  }

  private setHealth(slot: EngineSlot, available: boolean, reason: string): void {
    const before = slot.status;
    slot.status = { engine: slot.engine.id, available, reason, checkedAt: Date.now() };
    if (before.available === available && before.reason === reason) return;
    if (before.available !== available && before.reason !== 'loading') {
      if (available) this.logger.info(`engine ${slot.engine.id}: available`, { reason });
      else this.logger.warn(`engine ${slot.engine.id}: unavailable`, { reason });
    }
    this.emit({ kind: 'health', status: slot.status });
  }

  /** The safety net: a full re-check of the engine, off any request, every 30 s or slower. */
  private scheduleRecheck(slot: EngineSlot, lastDurationMs: number): void {
    if (slot.engine.recheck === undefined || slot.stopped) return;
    const wait = Math.max(this.options.recheckIntervalMs, lastDurationMs * this.options.recheckCostFactor);
    slot.recheckTimer = setTimeout(() => {
      slot.recheckTimer = undefined;
      if (slot.stopped || slot.rechecking) return;
      slot.rechecking = true;
      const began = performance.now();
      void Promise.resolve()
        .then(() => slot.engine.recheck?.())
        .catch((err: unknown) => this.logger.warn(`engine ${slot.engine.id}: re-check failed`, { error: (err as Error).message }))
        .finally(() => {
          slot.rechecking = false;
          this.scheduleRecheck(slot, performance.now() - began);
        });
    }, wait);
    slot.recheckTimer.unref();
  }

  private emit(event: RegistryEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        this.logger.error('registry listener failed', { error: (err as Error).message });
      }
    }
  }
}
