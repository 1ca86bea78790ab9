import type { ContainerRecord } from './engine-contribution.js';
import { crootErrorOf } from '../../test/support/outcomes.js';
import { CrootError } from '../errors/croot-error.js';
import { NameMatcher } from './name-matcher.js';

function record(engine: string, id: string, ...names: string[]): ContainerRecord {
  return { engine, id, names, running: true, pid: 1 };
}

const web = record('docker', 'c0ffee11aa00', 'web');
const db = record('docker', 'c0deba5e2200', 'db');
const cafe = record('docker', 'cafe00003300', 'c0de'); // its name is another container's id prefix
const podWeb = record('podman', 'aa11bb22cc00', 'web', 'frontend');
const engines = ['docker', 'podman'];

const errorOf = crootErrorOf;

describe('NameMatcher', () => {
  const matcher = new NameMatcher();

  describe('.match', () => {
    it('finds a container by its full id', () => {
      expect(matcher.match('c0ffee11aa00', [web, db], engines)).toBe(web);
    });

    it('finds a container by its name, with or without the leading slash', () => {
      expect(matcher.match('db', [web, db], engines)).toBe(db);
      expect(matcher.match('/db', [web, db], engines)).toBe(db);
    });

    it('finds a container by a unique id prefix', () => {
      expect(matcher.match('c0f', [web, db], engines)).toBe(web);
    });

    it('prefers an exact name over an id prefix that also fits', () => {
      expect(matcher.match('c0de', [web, db, cafe], engines)).toBe(cafe);
    });

    it('prefers an exact id over a name equal to it', () => {
      const namedLikeId = record('docker', 'ffff00004400', 'c0ffee11aa00');
      expect(matcher.match('c0ffee11aa00', [namedLikeId, web], engines)).toBe(web);
    });

    it('ranks an id someone chose (LXC, containerd, declared) with the names: another engine\'s container of that name makes it ambiguous', () => {
      const declared = record('static', 'web', 'web');
      const lxcDb = record('lxc', 'db', 'db');
      const err = errorOf(() => matcher.match('web', [web, declared], ['docker', 'static']));
      expect([err.code, err.message]).toEqual(['ERR_AMBIGUOUS_NAME', '"web" is ambiguous: id or name of 2 containers: static:web (web), docker:c0ffee11aa00 (web)']);
      expect(errorOf(() => matcher.match('db', [lxcDb, db], ['docker', 'lxc'])).code).toBe('ERR_AMBIGUOUS_NAME');
      // Found both by its id and its name, a container counts once; qualified, each engine answers its own.
      expect(matcher.match('web', [declared], ['static'])).toBe(declared);
      expect(matcher.match('static:web', [web, declared], ['docker', 'static'])).toBe(declared);
      expect(matcher.match('docker:web', [web, declared], ['docker', 'static'])).toBe(web);
      // A chosen id still wins over nothing else: a prefix of a digest that it also is does not compete.
      expect(matcher.match('lxc:db', [lxcDb, db], ['docker', 'lxc'])).toBe(lxcDb);
    });

    it('takes prefixes of digest ids only: a chosen id (LXC, containerd, declared) must be given in full', () => {
      const lxcWeb1 = record('lxc', 'web1', 'web1');
      const ctrApp = record('containerd', 'default/app-7', 'app-7');
      for (const ref of ['web', 'we', 'default/app', 'app', 'lxc:web']) {
        expect(errorOf(() => matcher.match(ref, [lxcWeb1, ctrApp, db], engines)).code).toBe('ERR_NO_CONTAINER');
      }
      expect(matcher.match('web1', [lxcWeb1, ctrApp], engines)).toBe(lxcWeb1);
      // Nor is a digest found by an upper-case or non-hex "prefix".
      expect(errorOf(() => matcher.match('C0DE', [db], engines)).code).toBe('ERR_NO_CONTAINER');
    });

    it('rejects an ambiguous prefix and names every candidate', () => {
      const err = errorOf(() => matcher.match('c0', [web, db], engines));
      expect(err.code).toBe('ERR_AMBIGUOUS_NAME');
      expect(err.status).toBe(-76);
      expect(err.message).toContain('c0ffee11aa00');
      expect(err.message).toContain('c0deba5e2200');
    });

    it('says which step found several containers, how many, and names each as ENGINE:ID (first name)', () => {
      const unnamed = record('podman', 'c0c0c0c0c0c0');
      const byPrefix = errorOf(() => matcher.match('c0', [web, db, unnamed], engines));
      expect(byPrefix.message).toBe(
        '"c0" is ambiguous: id prefix of 3 containers: docker:c0ffee11aa00 (web), docker:c0deba5e2200 (db), podman:c0c0c0c0c0c0',
      );
      expect(byPrefix.details).toEqual({
        ref: 'c0',
        candidates: [web, db, unnamed].map((r) => ({ engine: r.engine, id: r.id, names: r.names })),
      });
      expect(errorOf(() => matcher.match('web', [web, podWeb], engines)).message).toBe(
        '"web" is ambiguous: name of 2 containers: docker:c0ffee11aa00 (web), podman:aa11bb22cc00 (web)',
      );
      const twin = record('podman', 'c0ffee11aa00', 'twin');
      expect(errorOf(() => matcher.match('c0ffee11aa00', [web, twin], engines)).message).toBe(
        '"c0ffee11aa00" is ambiguous: id of 2 containers: docker:c0ffee11aa00 (web), podman:c0ffee11aa00 (twin)',
      );
      expect(errorOf(() => matcher.match('docker:c0', [web, db, unnamed], engines)).message).toBe(
        '"docker:c0" is ambiguous: id prefix of 2 containers: docker:c0ffee11aa00 (web), docker:c0deba5e2200 (db)',
      );
    });

    it('keeps the reference of a miss in its details, and names the engine of an empty qualified name', () => {
      expect(errorOf(() => matcher.match('nosuch', [web], engines)).details).toEqual({ ref: 'nosuch' });
      expect(errorOf(() => matcher.match('docker:', [web], engines)).message).toBe('empty container name for engine docker');
      expect(errorOf(() => matcher.match('podman./', [web], engines)).message).toBe('empty container name for engine podman');
    });

    it('reports a miss as an answer: the status and message, no stack trace recorded, the limit left as it was', () => {
      const limit = Error.stackTraceLimit;
      const err = errorOf(() => matcher.match('nosuch', [web], engines));
      expect(err).toBeInstanceOf(CrootError);
      expect({ code: err.code, status: err.status, message: err.message }).toEqual({
        code: 'ERR_NO_CONTAINER',
        status: -12399,
        message: 'no container matches "nosuch"',
      });
      expect(err.stack).toBe('CrootError: no container matches "nosuch"');
      expect(Error.stackTraceLimit).toBe(limit);
      // An unusable name is an answer too (-EINVAL), not a fault.
      expect(errorOf(() => matcher.match('', [web], engines)).stack).toBe('CrootError: empty container name');
    });

    it('answers PM_ERR_NOCONTAINER for a name that fits nothing, even one starting with a hex digit of some id', () => {
      const err = errorOf(() => matcher.match('ctr1', [web, db], engines));
      expect(err.code).toBe('ERR_NO_CONTAINER');
      expect(err.status).toBe(-12399);
    });

    it('rejects an empty name as invalid', () => {
      expect(errorOf(() => matcher.match('', [web], engines)).code).toBe('ERR_INVALID_NAME');
      expect(errorOf(() => matcher.match('/', [web], engines)).code).toBe('ERR_INVALID_NAME');
    });

    it('refuses a name that two engines both use, unless qualified', () => {
      const err = errorOf(() => matcher.match('web', [web, podWeb], engines));
      expect(err.code).toBe('ERR_AMBIGUOUS_NAME');
      expect(err.message).toContain('docker:c0ffee11aa00');
      expect(err.message).toContain('podman:aa11bb22cc00');
      expect(matcher.match('docker:web', [web, podWeb], engines)).toBe(web);
      expect(matcher.match('podman:web', [web, podWeb], engines)).toBe(podWeb);
    });

    it('matches every name of a container that has several', () => {
      expect(matcher.match('frontend', [web, podWeb], engines)).toBe(podWeb);
    });

    it('does not look into other engines when qualified', () => {
      expect(errorOf(() => matcher.match('podman:db', [web, db, podWeb], engines)).code).toBe('ERR_NO_CONTAINER');
    });

    it('treats a colon before an unknown engine id as part of the name', () => {
      const odd = record('static', 'x', 'svc:1');
      expect(matcher.match('svc:1', [odd], [...engines, 'static'])).toBe(odd);
    });

    it('treats a dot after anything but an engine id as part of the name: no engine, so nothing is empty', () => {
    const dotted = record('static', 'x', 'k8s.io');
    expect(matcher.match('k8s.io', [dotted], [...engines, 'static'])).toBe(dotted);
    expect(errorOf(() => matcher.match('web.', [web], engines)).code).toBe('ERR_NO_CONTAINER');
  });

  it('takes ENGINE.NAME, the spelling current pmcd lets through, like ENGINE:NAME', () => {
      expect(matcher.match('docker.web', [web, podWeb], engines)).toBe(web);
      expect(matcher.match('podman.web', [web, podWeb], engines)).toBe(podWeb);
      expect(matcher.match('docker.c0ffee', [web, db, podWeb], engines)).toBe(web);
      expect(errorOf(() => matcher.match('podman.db', [web, db, podWeb], engines)).code).toBe('ERR_NO_CONTAINER');
    });

    it('lets an exact name with a dot win over the ENGINE.NAME reading', () => {
      const dotted = record('podman', 'dd11bb22cc00', 'docker.web');
      expect(matcher.match('docker.web', [web, dotted], engines)).toBe(dotted);
    });

    it('keeps the order within one engine too: exact id, then exact name, then a unique id prefix; several at one step is no answer', () => {
      const namedLikeId = record('docker', 'ffff00004400', 'c0ffee11aa00');
      expect(matcher.match('docker:c0ffee11aa00', [namedLikeId, web], engines)).toBe(web);
      expect(matcher.match('docker.c0ffee11aa00', [namedLikeId, web], engines)).toBe(web);
      expect(matcher.match('docker:c0de', [web, db, cafe], engines)).toBe(cafe);
      expect(matcher.match('docker:/db', [web, db], engines)).toBe(db);
      expect(matcher.match('docker:c0f', [web, db], engines)).toBe(web);
      const web2 = record('docker', 'abab00001100', 'web');
      expect(errorOf(() => matcher.match('docker:web', [web, web2, podWeb], engines)).code).toBe('ERR_AMBIGUOUS_NAME');
      expect(errorOf(() => matcher.match('docker:c0', [web, db, podWeb], engines)).code).toBe('ERR_AMBIGUOUS_NAME');
      expect(errorOf(() => matcher.match('docker:/', [web], engines)).code).toBe('ERR_INVALID_NAME');
    });

    it('refuses an ENGINE.NAME whose name part is empty', () => {
      expect(errorOf(() => matcher.match('docker.', [web], engines)).code).toBe('ERR_INVALID_NAME');
    });
  });

  describe('.parse', () => {
    it('splits ENGINE:NAME only for known engines', () => {
      expect(matcher.parse('docker:web', engines)).toEqual({ engine: 'docker', name: 'web' });
      expect(matcher.parse('k8s.io/abc', engines)).toEqual({ name: 'k8s.io/abc' });
      expect(matcher.parse('lxc:web', engines)).toEqual({ name: 'lxc:web' });
      expect(matcher.parse('podman.web', engines)).toEqual({ engine: 'podman', name: 'web' });
      // An engine id with no separator after it is the start of a plain name.
      expect(matcher.parse('dockerd', engines)).toEqual({ name: 'dockerd' });
    });
  });
});
