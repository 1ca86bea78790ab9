/**
 * The one live index of containers: engines push their changes into it (via
 * the registry's sinks), requests only read it. Each running container's
 * init process is anchored when its record arrives — held by a pidfd, its
 * start time checked against what the engine recorded (the one read of its
 * /proc/PID/stat) — so a request for its PID needs no file read, and an exit
 * is seen from the pidfd without any request. Its cgroup is read from the
 * host's /proc the first time it is asked for, and kept.
 */
import type { ContainerRecord } from './engine-contribution.js';
import type { ProcessAnchor, ProcessHandle } from '../host/host-services.js';
import { Entry, type AnchorDebtor, type IndexChange, type IndexedContainer } from './indexed-container.js';
import type { ContainerSearch } from './name-matcher.js';
import { hasExited, readProcessStat } from '../host/proc-files.js';

const NONE: readonly Entry[] = Object.freeze([]);

/** Above this many digest ids changed at once, the sorted list is rebuilt instead of patched. */
const REBUILD_THRESHOLD = 64;

/** Owed anchorings done per turn of the event loop. */
const ANCHOR_SLICE = 256;

export class ContainerIndex implements ContainerSearch<IndexedContainer>, AnchorDebtor {
  /** engine id → container id → entry. */
  private readonly engines = new Map<string, Map<string, Entry>>();
  private readonly byId = new Map<string, Entry[]>();
  private readonly byName = new Map<string, Entry[]>();
  /** Entries with digest ids, sorted by id, for prefix search. */
  private digests: Entry[] = [];
  /**
   * Set when a batch changed too many digest ids to patch the list: it is
   * rebuilt once, by the next prefix search, however many batches (a long
   * list applied in slices) came in between.
   */
  private digestsStale = false;
  private count = 0;
  private batch: { digestsChanged: number } | undefined;
  /** New entries whose anchoring is owed, in arrival order, from `owedHead` on. */
  private owed: Entry[] = [];
  private owedHead = 0;
  private owedScheduled = false;
  /** Holds on the background pass (see {@link holdBackgroundAnchoring}). */
  private holds = 0;
  /** Called, once each, when nothing is owed any more (see {@link whenAnchored}). */
  private anchoredWaiters: Array<() => void> = [];

  constructor(
    private readonly anchor: ProcessAnchor,
    private readonly procRoot: string,
    private readonly onChange: (change: IndexChange) => void = () => undefined,
  ) {}

  /** Number of containers held. */
  get size(): number {
    return this.count;
  }

  /** Every container of `engine`, or of every engine. */
  *containers(engine?: string): IterableIterator<IndexedContainer> {
    if (engine !== undefined) {
      yield* this.engines.get(engine)?.values() ?? [];
      return;
    }
    for (const map of this.engines.values()) yield* map.values();
  }

  /** Number of containers of one engine. */
  sizeOf(engine: string): number {
    return this.engines.get(engine)?.size ?? 0;
  }

  withId(id: string): readonly IndexedContainer[] {
    return this.byId.get(id) ?? NONE;
  }

  withName(name: string): readonly IndexedContainer[] {
    return this.byName.get(name) ?? NONE;
  }

  withIdPrefix(prefix: string): readonly IndexedContainer[] {
    if (this.digestsStale) this.rebuildDigests();
    const list = this.digests;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((list[mid] as Entry).record.id < prefix) lo = mid + 1;
      else hi = mid;
    }
    let end = lo;
    while (end < list.length && (list[end] as Entry).record.id.startsWith(prefix)) end++;
    return end === lo ? NONE : list.slice(lo, end);
  }

  recordOf(item: IndexedContainer): ContainerRecord {
    return item.record;
  }

  /** Replaces every container of `engine` with `records`; unchanged ones keep their anchor. */
  replaceAll(engine: string, records: Iterable<ContainerRecord>): void {
    const seen = new Set<string>();
    this.upsertMany(engine, records, seen);
    this.removeExcept(engine, seen);
  }

  /** Adds or updates many containers of `engine` at once (their ids added to `seen`). */
  upsertMany(engine: string, records: Iterable<ContainerRecord>, seen?: Set<string>): void {
    this.inBatch(() => {
      for (const record of records) {
        seen?.add(record.id);
        this.upsert(engine, record);
      }
    });
  }

  /** Drops every container of `engine` whose id is not in `keep`. */
  removeExcept(engine: string, keep: ReadonlySet<string>): void {
    const map = this.engines.get(engine);
    if (map === undefined) return;
    this.inBatch(() => {
      for (const id of [...map.keys()]) if (!keep.has(id)) this.remove(engine, id);
    });
  }

  /** Runs `body` with the sorted digest list patched once at the end when many ids changed. */
  private inBatch(body: () => void): void {
    if (this.batch !== undefined) {
      body();
      return;
    }
    this.batch = { digestsChanged: 0 };
    try {
      body();
    } finally {
      if (this.batch.digestsChanged > REBUILD_THRESHOLD) this.digestsStale = true;
      this.batch = undefined;
    }
  }

  /** Adds or updates one container of `engine`. */
  upsert(engine: string, incoming: ContainerRecord): void {
    const record = Object.freeze(incoming.engine === engine ? incoming : { ...incoming, engine });
    const map = this.mapOf(engine);
    const entry = map.get(record.id);
    if (entry === undefined) {
      const fresh = new Entry(record, this.procRoot);
      map.set(record.id, fresh);
      this.count++;
      this.addKeys(fresh);
      if (mayWait(record)) this.owe(fresh);
      else this.anchorEntry(fresh, undefined);
      this.onChange({ kind: 'added', container: fresh });
      return;
    }
    if (sameRecord(entry.record, record)) return;
    const before = entry.record;
    if (!sameNames(before.names, record.names)) {
      this.dropNames(entry, before.names);
      entry.record = record;
      this.addNames(entry, record.names);
    } else {
      entry.record = record;
    }
    if (entry.owedBy === undefined) this.anchorEntry(entry, before);
    else if (!mayWait(record)) this.anchorOwed(entry);
    this.onChange({ kind: 'updated', container: entry });
  }

  /**
   * Anchors an entry whose anchoring was owed (see {@link owe}): called by
   * the entry itself when something reads what anchoring learns, and by the
   * background pass.
   */
  anchorOwed(entry: Entry): void {
    if (entry.owedBy !== this) return;
    entry.owedBy = undefined;
    this.anchorEntry(entry, undefined);
  }

  /**
   * Defers the anchoring of a new entry whose record names its init
   * process's start time (so the identity check gives the same answer
   * whenever it runs): a first load of thousands of containers is in the
   * index, and answerable, before their pidfds are opened. The first read of
   * the entry's liveness, PID or handle (a request's, a listener's) anchors
   * it on the spot; a background pass anchors the rest a slice per turn of
   * the event loop, so exits are watched for without any request. Owing
   * changes no fact anyone can see, so settling the debt sends no event.
   */
  private owe(entry: Entry): void {
    entry.owedBy = this;
    this.owed.push(entry);
    this.scheduleOwed();
  }

  /**
   * Holds the background pass until the returned release is called (once;
   * holds nest): while a long list is applied in slices, the turns of the
   * event loop go to the list, so the engine finishes its load, and answers,
   * sooner. A read still anchors its entry on the spot.
   */
  holdBackgroundAnchoring(): () => void {
    this.holds++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.holds--;
      this.scheduleOwed();
    };
  }

  /**
   * Resolves once no entry's anchoring is owed: at once when none is, else
   * when the background pass (or reads) have anchored every owed entry.
   */
  whenAnchored(): Promise<void> {
    if (this.owedHead >= this.owed.length) return Promise.resolve();
    return new Promise<void>((resolve) => this.anchoredWaiters.push(resolve));
  }

  private scheduleOwed(): void {
    if (this.owedScheduled || this.holds > 0 || this.owedHead >= this.owed.length) return;
    this.owedScheduled = true;
    setImmediate(() => this.anchorSomeOwed());
  }

  private anchorSomeOwed(): void {
    this.owedScheduled = false;
    if (this.holds > 0) return;
    const end = Math.min(this.owed.length, this.owedHead + ANCHOR_SLICE);
    for (; this.owedHead < end; this.owedHead++) {
      const entry = this.owed[this.owedHead] as Entry;
      // No event: whoever looks at the entry (a listener at its 'added' included) anchors it first, and sees the same.
      this.anchorOwed(entry);
    }
    if (this.owedHead < this.owed.length) {
      this.scheduleOwed();
      return;
    }
    this.owed = [];
    this.owedHead = 0;
    this.settleAnchoredWaiters();
  }

  private settleAnchoredWaiters(): void {
    const waiters = this.anchoredWaiters;
    this.anchoredWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Drops one container of `engine`; releases its anchor. */
  remove(engine: string, id: string): void {
    const map = this.engines.get(engine);
    const entry = map?.get(id);
    if (map === undefined || entry === undefined) return;
    map.delete(id);
    this.count--;
    entry.owedBy = undefined;
    this.release(entry);
    this.dropKeys(entry);
    this.onChange({ kind: 'removed', container: entry });
  }

  /**
   * Marks a running container's init process as exited (seen by a request's
   * liveness check before the exit notification arrived).
   */
  markExited(container: IndexedContainer): void {
    const entry = container as Entry;
    if (entry.liveness !== 'running') return;
    this.release(entry);
    entry.liveness = 'exited';
    if (this.engines.get(entry.record.engine)?.get(entry.record.id) === entry) {
      this.onChange({ kind: 'updated', container: entry });
    }
  }

  /** Releases every anchor and forgets everything. */
  clear(): void {
    for (const map of this.engines.values()) {
      for (const entry of map.values()) {
        entry.owedBy = undefined;
        this.release(entry);
      }
    }
    this.owed = [];
    this.owedHead = 0;
    this.settleAnchoredWaiters();
    this.engines.clear();
    this.byId.clear();
    this.byName.clear();
    this.digests = [];
    this.digestsStale = false;
    this.count = 0;
  }

  private mapOf(engine: string): Map<string, Entry> {
    let map = this.engines.get(engine);
    if (map === undefined) {
      map = new Map();
      this.engines.set(engine, map);
    }
    return map;
  }

  /**
   * Holds the init process of a running record. A PID that the index saw
   * exit (or found reused) stays dead for as long as the engine reports the
   * same PID and start time: a stale engine never brings it back.
   */
  private anchorEntry(entry: Entry, before: ContainerRecord | undefined): void {
    const record = entry.record;
    const pid = record.running && record.pid !== undefined && record.pid > 0 ? record.pid : undefined;
    if (pid === undefined) {
      this.release(entry);
      entry.liveness = 'stopped';
      entry.pid = undefined;
      entry.startTime = undefined;
      entry.knownCGroup = undefined;
      return;
    }
    if (before !== undefined && entry.pid === pid && entry.liveness !== 'stopped') {
      const sameProcess =
        record.pidStartTime === undefined ||
        (record.pidStartTime === before.pidStartTime && record.pidStartTolerance === before.pidStartTolerance) ||
        (entry.startTime !== undefined && startMatches(record, entry.startTime));
      if (sameProcess) return;
    }
    this.release(entry);
    entry.pid = pid;
    entry.knownCGroup = undefined;
    entry.startTime = undefined;
    let handle: ProcessHandle | undefined;
    handle = this.anchor.open(pid, () => this.exited(entry, handle));
    const stat = readProcessStat(this.procRoot, pid);
    if (handle === undefined || stat === undefined || hasExited(stat)) {
      handle?.close();
      entry.liveness = 'exited';
      return;
    }
    entry.startTime = stat.startTime;
    if (!startMatches(record, stat.startTime)) {
      handle.close();
      entry.liveness = 'reused';
      return;
    }
    // The pidfd was opened before the stat was read: alive now, it holds the process the stat showed.
    if (!handle.isAlive()) {
      handle.close();
      entry.liveness = 'exited';
      return;
    }
    entry.handle = handle;
    entry.liveness = 'running';
  }

  private exited(entry: Entry, handle: ProcessHandle | undefined): void {
    if (handle === undefined || entry.handle !== handle) return;
    this.markExited(entry);
  }

  private release(entry: Entry): void {
    const handle = entry.handle;
    entry.handle = undefined;
    handle?.close();
  }

  private addKeys(entry: Entry): void {
    push(this.byId, entry.record.id, entry);
    this.addNames(entry, entry.record.names);
    if (entry.digest && !this.digestsStale) {
      if (this.batch !== undefined && ++this.batch.digestsChanged > REBUILD_THRESHOLD) return;
      const list = this.digests;
      list.splice(this.position(entry.record.id), 0, entry);
    }
  }

  private dropKeys(entry: Entry): void {
    pull(this.byId, entry.record.id, entry);
    this.dropNames(entry, entry.record.names);
    if (entry.digest && !this.digestsStale) {
      if (this.batch !== undefined && ++this.batch.digestsChanged > REBUILD_THRESHOLD) return;
      const list = this.digests;
      for (let i = this.position(entry.record.id); i < list.length && (list[i] as Entry).record.id === entry.record.id; i++) {
        if (list[i] === entry) {
          list.splice(i, 1);
          break;
        }
      }
    }
  }

  private addNames(entry: Entry, names: readonly string[]): void {
    for (let i = 0; i < names.length; i++) {
      const name = names[i] as string;
      if (names.indexOf(name) === i) push(this.byName, name, entry);
    }
  }

  private dropNames(entry: Entry, names: readonly string[]): void {
    for (const name of names) pull(this.byName, name, entry);
  }

  /** First index in the sorted digest list whose id is >= `id`. */
  private position(id: string): number {
    const list = this.digests;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((list[mid] as Entry).record.id < id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private rebuildDigests(): void {
    const list: Entry[] = [];
    for (const map of this.engines.values()) for (const entry of map.values()) if (entry.digest) list.push(entry);
    list.sort((a, b) => (a.record.id < b.record.id ? -1 : a.record.id > b.record.id ? 1 : 0));
    this.digests = list;
    this.digestsStale = false;
  }
}

function push(map: Map<string, Entry[]>, key: string, entry: Entry): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [entry]);
  else if (!list.includes(entry)) list.push(entry);
}

function pull(map: Map<string, Entry[]>, key: string, entry: Entry): void {
  const list = map.get(key);
  if (list === undefined) return;
  const at = list.indexOf(entry);
  if (at < 0) return;
  if (list.length === 1) map.delete(key);
  else list.splice(at, 1);
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Whether the anchoring of a new record may wait: it names a running init
 * process and the start time the engine recorded for it, so the identity
 * check does not depend on when the PID is looked at (a record without one
 * takes whatever process holds the PID when anchored: that is done at once).
 */
function mayWait(record: ContainerRecord): boolean {
  return record.running && record.pid !== undefined && record.pid > 0 && record.pidStartTime !== undefined;
}

/** Whether a process that the kernel says started at `startTime` is the one `record` names (no recorded start time: any). */
function startMatches(record: ContainerRecord, startTime: number): boolean {
  const recorded = record.pidStartTime;
  if (recorded === undefined) return true;
  const tolerance = record.pidStartTolerance ?? 0;
  return tolerance > 0 ? Math.abs(startTime - recorded) <= tolerance : startTime === recorded;
}

const RECORD_KEYS = ['running', 'paused', 'restarting', 'pid', 'pidStartTime', 'pidStartTolerance', 'hostname', 'cgroupHint', 'state', 'source', 'pending'] as const;

/** Same facts (ids are equal by construction). */
function sameRecord(a: ContainerRecord, b: ContainerRecord): boolean {
  if (a === b) return true;
  for (const key of RECORD_KEYS) if (a[key] !== b[key]) return false;
  if (!sameNames(a.names, b.names)) return false;
  const ka = a.kubernetes;
  const kb = b.kubernetes;
  if (ka === kb) return true;
  return ka !== undefined && kb !== undefined && ka.namespace === kb.namespace && ka.pod === kb.pod && ka.container === kb.container;
}
