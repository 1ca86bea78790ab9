/**
 * One naming rule for every engine: exact full id, then exact name (`name`
 * or `/name`), then a unique id prefix. Never a guess: an ambiguous name is an
 * error that names the candidates, and a name that fits nothing is
 * PM_ERR_NOCONTAINER even when it starts like some id.
 */
import type { ContainerRecord } from './engine.js';
import { CrootError } from './errors.js';

/** A reference split into its optional `ENGINE:` qualifier and the name. */
export interface ContainerReference {
  readonly engine?: string;
  readonly name: string;
}

/** Characters that may appear in a container id (hex for docker/podman; containerd ids are freer). */
const ID_PREFIX = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

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

  /** The one container `ref` designates among `records`, or a CrootError. */
  match(ref: string, records: readonly ContainerRecord[], engineIds: readonly string[]): ContainerRecord {
    const parsed = this.parse(ref, engineIds);
    const name = parsed.name;
    if (name.length === 0 || name === '/') {
      throw new CrootError('ERR_INVALID_NAME', `empty container name${parsed.engine ? ` for engine ${parsed.engine}` : ''}`);
    }
    const pool = parsed.engine === undefined ? records : records.filter((r) => r.engine === parsed.engine);

    const byId = pool.filter((r) => r.id === name);
    if (byId.length > 0) return this.single(ref, byId, 'id');

    const bare = name.startsWith('/') ? name.slice(1) : name;
    const byName = pool.filter((r) => r.names.includes(bare));
    if (byName.length > 0) return this.single(ref, byName, 'name');

    if (ID_PREFIX.test(name)) {
      const byPrefix = pool.filter((r) => r.id.startsWith(name));
      if (byPrefix.length > 0) return this.single(ref, byPrefix, 'id prefix');
    }
    throw new CrootError('ERR_NO_CONTAINER', `no container matches "${ref}"`, { details: { ref } });
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
