/**
 * Properties of the naming rule over generated sets of containers
 * (fast-check), through `NameMatcher.match(ref, records, engineIds)` with
 * plain record lists: an exact digest id beats an exact name or chosen id
 * (which rank together), which beats a unique prefix; prefixes find digest ids only; two fits are an error naming both,
 * never an answer. Ids and names come from small alphabets so that they
 * collide, share prefixes and equal one another often. The expected outcome
 * is worked out here from the rule as docs/architecture.md states it.
 */
import fc from 'fast-check';
import type { ContainerRecord } from './engine-contribution.js';
import { CrootError } from '../errors/croot-error.js';
import { NameMatcher } from './name-matcher.js';

const ENGINES = ['docker', 'podman', 'lxc'] as const;
const DIGEST = /^[0-9a-f]{12,}$/;

type Outcome = { readonly found: string } | { readonly code: string; readonly candidates?: readonly string[] };

/** `engine/id`, how outcomes name a record. */
const key = (r: ContainerRecord): string => `${r.engine}/${r.id}`;

function outcomeOf(ref: string, records: readonly ContainerRecord[]): Outcome {
  try {
    return { found: key(new NameMatcher().match(ref, records, ENGINES)) };
  } catch (err) {
    if (!(err instanceof CrootError)) throw err;
    if (err.code !== 'ERR_AMBIGUOUS_NAME') return { code: err.code };
    const candidates = (err.details?.candidates as { engine: string; id: string }[] | undefined) ?? [];
    return { code: err.code, candidates: candidates.map((c) => `${c.engine}/${c.id}`).sort() };
  }
}

/** The rule, written out: one fit is the answer, several are ambiguous, none falls through to the next kind. */
function expectedOutcome(name: string, records: readonly ContainerRecord[]): Outcome {
  if (name === '' || name === '/') return { code: 'ERR_INVALID_NAME' };
  const bare = name.startsWith('/') ? name.slice(1) : name;
  const kinds = [
    records.filter((r) => DIGEST.test(r.id) && r.id === name),
    records.filter((r) => (!DIGEST.test(r.id) && r.id === name) || r.names.includes(bare)),
    /^[0-9a-f]+$/.test(name) ? records.filter((r) => DIGEST.test(r.id) && r.id.startsWith(name)) : [],
  ];
  const fits = kinds.find((k) => k.length > 0);
  if (fits === undefined) return { code: 'ERR_NO_CONTAINER' };
  if (fits.length === 1) return { found: key(fits[0] as ContainerRecord) };
  return { code: 'ERR_AMBIGUOUS_NAME', candidates: fits.map(key).sort() };
}

/** Hex over three digits: long ones are digests, short ones are not; prefixes collide often. */
const hexId = fc.stringMatching(/^[0a1]{4,16}$/);
/** Ids someone chose (LXC names, containerd ids, declared containers), some of them hex-looking. */
const chosenId = fc.oneof(fc.constantFrom('web1', 'db', 'app-7', 'default/app', 'c0de', 'a0a0', 'aaa'), fc.stringMatching(/^[a-z][a-z0-9-]{0,5}$/));
const word = fc.oneof(fc.constantFrom('web', 'db', 'web1', '0a', 'a0a', 'a1a1', '00', 'cafe'), fc.stringMatching(/^[0a1w-]{1,6}$/));

/** Containers with distinct ids; names drawn from a small pool that holds other containers' ids too. */
const containers: fc.Arbitrary<ContainerRecord[]> = fc
  .uniqueArray(fc.record({ engine: fc.constantFrom(...ENGINES), id: fc.oneof(hexId, chosenId) }), { selector: (r) => r.id, maxLength: 8 })
  .chain((bases) => {
    const pool = fc.oneof(word, ...(bases.length > 0 ? [fc.constantFrom(...bases.map((b) => b.id))] : []));
    return fc.tuple(...bases.map((b) => fc.array(pool, { maxLength: 3 }).map((names): ContainerRecord => ({ ...b, names, running: true, pid: 1 }))));
  })
  .map((records) => [...records]);

/** References worth asking: every id, name and id prefix of the set, `/name`, and words and hex from the pools. */
function refsOf(records: readonly ContainerRecord[]): string[] {
  const refs = new Set<string>(['', '/']);
  for (const r of records) {
    for (let i = 1; i <= r.id.length; i++) refs.add(r.id.slice(0, i));
    for (const n of r.names) refs.add(n).add(`/${n}`);
  }
  return [...refs];
}

describe('NameMatcher.match (properties)', () => {
  it('follows the rule for every id, name, /name and id prefix of any set of containers', () => {
    fc.assert(
      fc.property(containers, fc.array(fc.oneof(word, hexId), { maxLength: 5 }), (records, extra) => {
        for (const ref of [...refsOf(records), ...extra]) {
          expect([ref, outcomeOf(ref, records)]).toEqual([ref, expectedOutcome(ref, records)]);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('finds every container by its full digest id whatever else is named like it, and by a chosen id unless another container is named so', () => {
    const byId = (r: ContainerRecord, among: readonly ContainerRecord[]): Outcome => {
      const namesakes = among.filter((o) => o !== r && o.names.includes(r.id));
      if (DIGEST.test(r.id) || namesakes.length === 0) return { found: key(r) };
      return { code: 'ERR_AMBIGUOUS_NAME', candidates: [r, ...namesakes].map(key).sort() };
    };
    fc.assert(
      fc.property(containers, (records) => {
        for (const r of records) {
          expect(outcomeOf(r.id, records)).toEqual(byId(r, records));
          expect(outcomeOf(`${r.engine}:${r.id}`, records)).toEqual(byId(r, records.filter((o) => o.engine === r.engine)));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('answers a name two containers hold with an error naming both, never with one of them', () => {
    fc.assert(
      fc.property(containers, word, (records, shared) => {
        fc.pre(records.length >= 2 && !records.some((r) => r.id === shared));
        const [a, b, ...rest] = records as [ContainerRecord, ContainerRecord, ...ContainerRecord[]];
        const twins = [{ ...a, names: [...a.names, shared] }, { ...b, names: [...b.names, shared] }, ...rest];
        const holders = twins.filter((r) => r.names.includes(shared)).map(key).sort();
        expect(outcomeOf(shared, twins)).toEqual({ code: 'ERR_AMBIGUOUS_NAME', candidates: holders });
        expect(outcomeOf(`/${shared}`, twins)).toEqual({ code: 'ERR_AMBIGUOUS_NAME', candidates: holders });
      }),
      { numRuns: 300 },
    );
  });

  it('finds by prefix only digest ids (12 or more lowercase hex digits)', () => {
    fc.assert(
      fc.property(containers, (records) => {
        for (const r of records) {
          for (let i = 1; i < r.id.length; i++) {
            const prefix = r.id.slice(0, i);
            const outcome = outcomeOf(prefix, records);
            if ('found' in outcome && outcome.found === key(r) && !r.names.includes(prefix) && records.every((o) => o.id !== prefix)) {
              expect([prefix, r.id, DIGEST.test(r.id)]).toEqual([prefix, r.id, true]);
            }
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('gives `ENGINE:ref` the answer `ref` gets among that engine’s containers alone', () => {
    fc.assert(
      fc.property(containers, fc.constantFrom(...ENGINES), (records, engine) => {
        const own = records.filter((r) => r.engine === engine);
        for (const ref of refsOf(records)) {
          expect([ref, outcomeOf(`${engine}:${ref}`, records)]).toEqual([ref, expectedOutcome(ref, own)]);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('answers any string with a container whose id, name or id prefix it is, or a CrootError', () => {
    fc.assert(
      fc.property(containers, fc.string({ unit: 'binary', maxLength: 20 }), (records, ref) => {
        const outcome = outcomeOf(ref, records);
        if ('code' in outcome) {
          expect(['ERR_NO_CONTAINER', 'ERR_AMBIGUOUS_NAME', 'ERR_INVALID_NAME']).toContain(outcome.code);
        } else {
          const name = ref.replace(/^(docker|podman|lxc):/, '');
          const r = records.find((o) => key(o) === outcome.found) as ContainerRecord;
          const fits = r.id === name || r.names.includes(name.replace(/^\//, '')) || (DIGEST.test(r.id) && r.id.startsWith(name));
          expect([ref, outcome.found, fits]).toEqual([ref, outcome.found, true]);
        }
      }),
      { numRuns: 300 },
    );
  });
});
