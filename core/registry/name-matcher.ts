/**
 * One naming rule for every engine: exact full digest id, then exact name
 * (`name` or `/name`) or exact id someone chose (LXC's, containerd's outside
 * Kubernetes, a declared container's: these are names, so they rank with
 * names and a container of another engine named the same makes the
 * reference ambiguous), then a unique id prefix. Never a guess: an ambiguous name is an
 * error that names the candidates, and a name that fits nothing is
 * PM_ERR_NOCONTAINER even when it starts like some id. Only content-digest
 * ids (hex, as Docker, Podman and Kubernetes make them) are matched by
 * prefix: where an engine's id is a name someone chose (LXC, containerd
 * outside Kubernetes, declared containers), `web` never finds `web1`.
 *
 * An engine is chosen with `ENGINE:NAME`, or with `ENGINE.NAME`, the spelling
 * current pmcd lets through (it refuses container names with characters
 * outside `[A-Za-z0-9._-]`). A reference that is itself some container's
 * exact id or name is that container, whatever its dots say.
 */
import type { ContainerRecord } from './engine-contribution.js';
import { CrootError } from '../errors/croot-error.js';

/** A reference split into its optional engine qualifier and the name. */
export interface ContainerReference {
  readonly engine?: string;
  readonly name: string;
}

/** A reference that can be an id prefix: lowercase hex, as digests are written. */
const ID_PREFIX = /^[0-9a-f]+$/;
/** An id that prefixes may designate: a digest of at least 12 hex digits (docker's short id). */
const DIGEST_ID = /^[0-9a-f]{12,}$/;

/** Whether `id` can be found by a prefix: a digest of 12 or more lowercase hex digits. */
export function isDigestId(id: string): boolean {
  return DIGEST_ID.test(id);
}

/** Whether `record` can be found by a prefix of its id. */
export function hasDigestId(record: ContainerRecord): boolean {
  return isDigestId(record.id);
}

/** The three searches the naming rule needs, over items of any kind; each returns the same item for the same container. */
export interface ContainerSearch<T> {
  withId(id: string): readonly T[];
  withName(name: string): readonly T[];
  /** Items whose digest id starts with `prefix` (only ids for which {@link isDigestId} holds). */
  withIdPrefix(prefix: string): readonly T[];
  /** The record of an item. */
  recordOf(item: T): ContainerRecord;
}

/** A search that scans a plain list of records (for one-off matches and tests). */
export function listSearch(records: readonly ContainerRecord[]): ContainerSearch<ContainerRecord> {
  return {
    withId: (id) => records.filter((r) => r.id === id),
    withName: (name) => records.filter((r) => r.names.includes(name)),
    withIdPrefix: (prefix) => records.filter((r) => hasDigestId(r) && r.id.startsWith(prefix)),
    recordOf: (r) => r,
  };
}

export class NameMatcher {
  /**
   * Splits `ENGINE:NAME` or `ENGINE.NAME` when ENGINE is one of `engineIds`;
   * anything else is a plain name.
   */
  parse(ref: string, engineIds: readonly string[]): ContainerReference {
    for (const separator of [':', '.']) {
      const at = ref.indexOf(separator);
      if (at > 0) {
        const engine = ref.slice(0, at);
        if (engineIds.includes(engine)) return { engine, name: ref.slice(at + 1) };
      }
    }
    return { name: ref };
  }

  /** The one container `ref` designates among `records`, or a CrootError. */
  match(ref: string, records: readonly ContainerRecord[], engineIds: readonly string[]): ContainerRecord {
    return this.find(ref, listSearch(records), engineIds);
  }

  /**
   * The one item `ref` designates in `search`, or a CrootError:
   * ERR_INVALID_NAME (empty), ERR_AMBIGUOUS_NAME (naming the candidates),
   * ERR_NO_CONTAINER (stackless: a miss is an answer, not a fault).
   */
  find<T>(ref: string, search: ContainerSearch<T>, engineIds: readonly string[]): T {
    const colon = ref.indexOf(':');
    if (colon > 0 && engineIds.includes(ref.slice(0, colon))) {
      return this.findIn(ref, ref.slice(0, colon), ref.slice(colon + 1), search);
    }
    if (ref.length === 0 || ref === '/') throw new CrootError('ERR_INVALID_NAME', 'empty container name');
    const exact = this.exact(ref, ref, undefined, search);
    if (exact !== undefined) return exact;
    const dot = ref.indexOf('.');
    if (dot > 0 && engineIds.includes(ref.slice(0, dot))) {
      return this.findIn(ref, ref.slice(0, dot), ref.slice(dot + 1), search);
    }
    const byPrefix = ID_PREFIX.test(ref) ? search.withIdPrefix(ref) : [];
    if (byPrefix.length > 0) return this.single(ref, byPrefix, 'id prefix', search);
    throw this.miss(ref);
  }

  /** `name` within one engine: exact id, exact name, unique id prefix. */
  private findIn<T>(ref: string, engine: string, name: string, search: ContainerSearch<T>): T {
    if (name.length === 0 || name === '/') {
      throw new CrootError('ERR_INVALID_NAME', `empty container name for engine ${engine}`);
    }
    const exact = this.exact(ref, name, engine, search);
    if (exact !== undefined) return exact;
    if (ID_PREFIX.test(name)) {
      const byPrefix = this.inEngine(search.withIdPrefix(name), engine, search);
      if (byPrefix.length > 0) return this.single(ref, byPrefix, 'id prefix', search);
    }
    throw this.miss(ref);
  }

  private exact<T>(ref: string, name: string, engine: string | undefined, search: ContainerSearch<T>): T | undefined {
    const byId = this.inEngine(search.withId(name), engine, search);
    if (byId.length > 0 && isDigestId(name)) return this.single(ref, byId, 'id', search);
    const bare = name.charCodeAt(0) === 47 /* '/' */ ? name.slice(1) : name;
    const byName = this.inEngine(search.withName(bare), engine, search);
    if (byId.length === 0) return byName.length > 0 ? this.single(ref, byName, 'name', search) : undefined;
    // A chosen id is a name: it ranks with the names, and a container found both ways counts once.
    const found = [...byId, ...byName.filter((item) => !byId.includes(item))];
    return this.single(ref, found, 'id or name', search);
  }

  private inEngine<T>(found: readonly T[], engine: string | undefined, search: ContainerSearch<T>): readonly T[] {
    if (engine === undefined || found.length === 0) return found;
    return found.filter((item) => search.recordOf(item).engine === engine);
  }

  private miss(ref: string): CrootError {
    return new CrootError('ERR_NO_CONTAINER', `no container matches "${ref}"`, { details: { ref } });
  }

  private single<T>(ref: string, found: readonly T[], how: string, search: ContainerSearch<T>): T {
    if (found.length === 1) return found[0] as T;
    const records = found.map((item) => search.recordOf(item));
    const candidates = records.map((r) => `${r.engine}:${r.id}${r.names[0] ? ` (${r.names[0]})` : ''}`);
    throw new CrootError(
      'ERR_AMBIGUOUS_NAME',
      `"${ref}" is ambiguous: ${how} of ${found.length} containers: ${candidates.join(', ')}`,
      { details: { ref, candidates: records.map((r) => ({ engine: r.engine, id: r.id, names: r.names })) } },
    );
  }
}
