/**
 * Instance numbers for a dynamic instance domain, the way pmdaroot's
 * pmdaCache gives them: in the order names are first seen, from 0, and
 * never handed to another name while the agent runs, so a number in an
 * archive or a client's profile keeps meaning one container. Names that
 * went away keep their number should they come back, up to `maxRetired` of
 * them (the oldest are forgotten first; their numbers are still not reused).
 */
import type { Instance } from './pmda-definition.js';

export class InstanceNumbering {
  private readonly live = new Map<string, number>();
  private readonly retired = new Map<string, number>();
  private next = 0;

  constructor(private readonly maxRetired = 10000) {}

  /** Instances for `names` (duplicates ignored), in that order; names not given now are retired. */
  assign(names: Iterable<string>): Instance[] {
    const out: Instance[] = [];
    const seen = new Set<string>();
    for (const name of names) {
      if (seen.has(name)) continue;
      seen.add(name);
      out.push({ id: this.idOf(name), name });
    }
    for (const [name, id] of this.live) {
      if (seen.has(name)) continue;
      this.live.delete(name);
      this.retired.set(name, id);
    }
    while (this.retired.size > this.maxRetired) {
      const oldest = this.retired.keys().next().value as string;
      this.retired.delete(oldest);
    }
    return out;
  }

  private idOf(name: string): number {
    const known = this.live.get(name) ?? this.retired.get(name);
    if (known !== undefined) {
      this.retired.delete(name);
      this.live.set(name, known);
      return known;
    }
    const id = this.next++;
    this.live.set(name, id);
    return id;
  }
}
