/**
 * One naming rule for every engine: exact full id, then exact name (`name`
 * or `/name`), then a unique id prefix. Never a guess: an ambiguous name is an
 * error that names the candidates, and a name that fits nothing is
 * PM_ERR_NOCONTAINER even when it starts like some id. Only content-digest
 * ids (hex, as Docker, Podman and Kubernetes make them) are matched by
 * prefix: where an engine's id is a name someone chose (LXC, containerd
 * outside Kubernetes, declared containers), `web` never finds `web1`.
 */
import type { ContainerRecord } from './engine.js';
import { CrootError } from './errors.js';

/** A reference split into its optional `ENGINE:` qualifier and the name. */
export interface ContainerReference {
  readonly engine?: string;
  readonly name: string;
}

/** A reference that can be an id prefix: lowercase hex, as digests are written. */
const ID_PREFIX = /^[0-9a-f]+$/;
/** An id that prefixes may designate: a digest of at least 12 hex digits (docker's short id). */
const DIGEST_ID = /^[0-9a-f]{12,}$/;

/** Whether `record` can be found by a prefix of its id. */
export function hasDigestId(record: ContainerRecord): boolean {
  return DIGEST_ID.test(record.id);
}

/**
 * The containers of every engine, indexed for the naming rule: maps from id
 * and from name, and the ids sorted for prefix search. Built once per change
 * of the engines' lists; a lookup is then a map hit or a binary search.
 */
/** The three searches the naming rule needs. */
interface ContainerSearch {
  withId(id: string): readonly ContainerRecord[];
  withName(name: string): readonly ContainerRecord[];
  withIdPrefix(prefix: string): readonly ContainerRecord[];
}

function listSearch(records: readonly ContainerRecord[]): ContainerSearch {
  return {
    withId: (id) => records.filter((r) => r.id === id),
    withName: (name) => records.filter((r) => r.names.includes(name)),
    withIdPrefix: (prefix) => records.filter((r) => hasDigestId(r) && r.id.startsWith(prefix)),
  };
}

export class NameIndex implements ContainerSearch {
  private readonly byId = new Map<string, ContainerRecord[]>();
  private readonly byName = new Map<string, ContainerRecord[]>();
  private readonly sortedIds: ContainerRecord[];

  constructor(readonly records: readonly ContainerRecord[]) {
    for (const r of records) {
      push(this.byId, r.id, r);
      for (const name of new Set(r.names)) push(this.byName, name, r);
    }
    this.sortedIds = records.filter(hasDigestId).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  withId(id: string): readonly ContainerRecord[] {
    return this.byId.get(id) ?? [];
  }

  withName(name: string): readonly ContainerRecord[] {
    return this.byName.get(name) ?? [];
  }

  /** Every container with a digest id that starts with `prefix`. */
  withIdPrefix(prefix: string): readonly ContainerRecord[] {
    const ids = this.sortedIds;
    let lo = 0;
    let hi = ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((ids[mid] as ContainerRecord).id < prefix) lo = mid + 1;
      else hi = mid;
    }
    const out: ContainerRecord[] = [];
    for (let i = lo; i < ids.length && (ids[i] as ContainerRecord).id.startsWith(prefix); i++) out.push(ids[i] as ContainerRecord);
    return out;
  }
}

function push(map: Map<string, ContainerRecord[]>, key: string, record: ContainerRecord): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [record]);
  else list.push(record);
}

export class NameMatcher {
  /**
   * Splits `ENGINE:NAME` when ENGINE is one of `engineIds`; anything else is a
   * plain name (a name may itself hold a colon).
   */
  parse(ref: string, engineIds: readonly string[]): ContainerReference {
    const colon = ref.indexOf(':');
    if (colon > 0) {
      const engine = ref.slice(0, colon);
      if (engineIds.includes(engine)) return { engine, name: ref.slice(colon + 1) };
    }
    return { name: ref };
  }

  /** The one container `ref` designates among `records` (or an index of them), or a CrootError. */
  match(ref: string, records: readonly ContainerRecord[] | NameIndex, engineIds: readonly string[]): ContainerRecord {
    // A plain list is scanned (O(n)); building an index for one lookup would cost more.
    const index: ContainerSearch = records instanceof NameIndex ? records : listSearch(records);
    const parsed = this.parse(ref, engineIds);
    const name = parsed.name;
    if (name.length === 0 || name === '/') {
      throw new CrootError('ERR_INVALID_NAME', `empty container name${parsed.engine ? ` for engine ${parsed.engine}` : ''}`);
    }
    const inScope = (found: readonly ContainerRecord[]): readonly ContainerRecord[] =>
      parsed.engine === undefined ? found : found.filter((r) => r.engine === parsed.engine);

    const byId = inScope(index.withId(name));
    if (byId.length > 0) return this.single(ref, byId, 'id');

    const bare = name.startsWith('/') ? name.slice(1) : name;
    const byName = inScope(index.withName(bare));
    if (byName.length > 0) return this.single(ref, byName, 'name');

    if (ID_PREFIX.test(name)) {
      const byPrefix = inScope(index.withIdPrefix(name));
      if (byPrefix.length > 0) return this.single(ref, byPrefix, 'id prefix');
    }
    throw CrootError.withoutStack('ERR_NO_CONTAINER', `no container matches "${ref}"`, { details: { ref } });
  }

  private single(ref: string, found: readonly ContainerRecord[], how: string): ContainerRecord {
    if (found.length === 1) return found[0] as ContainerRecord;
    const candidates = found.map((r) => `${r.engine}:${r.id}${r.names[0] ? ` (${r.names[0]})` : ''}`);
    throw new CrootError(
      'ERR_AMBIGUOUS_NAME',
      `"${ref}" is ambiguous: ${how} of ${found.length} containers: ${candidates.join(', ')}`,
      { details: { ref, candidates: found.map((r) => ({ engine: r.engine, id: r.id, names: r.names })) } },
    );
  }
}
