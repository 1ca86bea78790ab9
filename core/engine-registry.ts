/**
 * The engines croot knows, filled from every `EngineContribution` bound in
 * the container (croot's own modules and third-party ones alike).
 */
import { injectable, multiInject, optional } from 'inversify';
import { EngineContribution, type ContainerRecord, type EngineStatus } from './engine.js';
import { CrootError } from './errors.js';
import { NameIndex, NameMatcher } from './name-matcher.js';

export const EngineRegistry = Symbol.for('croot/EngineRegistry');
export interface EngineRegistry {
  /** Engine ids in registration order. */
  ids(): readonly string[];
  get(id: string): EngineContribution | undefined;
  /** Every engine's health, as of its last refresh. */
  statuses(): readonly EngineStatus[];
  /** The union of every engine's containers. */
  containers(signal?: AbortSignal): Promise<readonly ContainerRecord[]>;
  /** The one container `ref` (`NAME` or `ENGINE:NAME`) designates; throws a CrootError otherwise. */
  lookup(ref: string, signal?: AbortSignal): Promise<ContainerRecord>;
  /** Starts every engine's watchers; an engine that fails to start is recorded, not fatal. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

@injectable()
export class DefaultEngineRegistry implements EngineRegistry {
  private readonly engines: readonly EngineContribution[];
  private readonly matcher = new NameMatcher();
  private lastParts: readonly (readonly ContainerRecord[])[] = [];
  private lastUnion: readonly ContainerRecord[] = [];
  private index = new NameIndex([]);
  private startFailures = new Map<string, string>();

  constructor(@multiInject(EngineContribution) @optional() engines: EngineContribution[] | undefined) {
    const list = engines ?? [];
    const seen = new Set<string>();
    for (const engine of list) {
      if (seen.has(engine.id)) {
        throw new CrootError('ERR_DUPLICATE_ENGINE', `two engines registered with id "${engine.id}"`);
      }
      seen.add(engine.id);
    }
    this.engines = list;
  }

  ids(): readonly string[] {
    return this.engines.map((e) => e.id);
  }

  get(id: string): EngineContribution | undefined {
    return this.engines.find((e) => e.id === id);
  }

  statuses(): readonly EngineStatus[] {
    return this.engines.map((e) => {
      const failure = this.startFailures.get(e.id);
      if (failure !== undefined) return { engine: e.id, available: false, reason: failure, checkedAt: Date.now() };
      return e.status();
    });
  }

  async containers(signal?: AbortSignal): Promise<readonly ContainerRecord[]> {
    const parts = await Promise.all(this.engines.map((e) => e.containers(signal)));
    if (parts.length === this.lastParts.length && parts.every((p, i) => p === this.lastParts[i])) {
      return this.lastUnion;
    }
    this.lastParts = parts;
    this.lastUnion = Object.freeze(parts.flat());
    this.index = new NameIndex(this.lastUnion);
    return this.lastUnion;
  }

  async lookup(ref: string, signal?: AbortSignal): Promise<ContainerRecord> {
    await this.containers(signal);
    return this.matcher.match(ref, this.index, this.ids());
  }

  async start(): Promise<void> {
    await Promise.all(
      this.engines.map(async (e) => {
        try {
          await e.start?.();
          this.startFailures.delete(e.id);
        } catch (err) {
          this.startFailures.set(e.id, `failed to start: ${(err as Error).message}`);
        }
      }),
    );
    // A first look at every engine, so statuses say what each found.
    await this.containers().catch(() => undefined);
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.engines.map((e) => e.stop?.()));
  }
}

