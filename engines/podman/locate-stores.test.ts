/**
 * locateStores: where the rootful store and each user's rootless store are.
 * On this host, against what podman itself says (`podman info`, as root and
 * as the testbed's rootless user); on trees of its own, against the rules
 * c/storage and croot's docs give (docs/engines.md, "Podman").
 */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeWith, probes, ROOTLESS_USER, run } from '../../test/support/components.js';
import { locateStores, type StoreLocations } from './locate-stores.js';
import { nssUsers, type PasswdUser } from './nss-users.js';
import { podmanPathsFrom, type PodmanPaths } from './podman-paths.js';

/** What `podman info` says of the store podman uses. */
interface PodmanStoreInfo {
  readonly graphRoot: string;
  readonly runRoot: string;
  readonly driver: string;
}

/**
 * What `podman info` says, as root or as `asUser`. With `storageConf`, podman
 * reads that file as the system storage.conf (c/storage's
 * `CONTAINERS_STORAGE_CONF`), the host's left alone; an environment variable,
 * not a file mounted over /etc/containers, because rootless podman joins the
 * mount namespace of its running pause process, where /etc is the host's.
 */
function podmanInfo(asUser?: { name: string; uid: number }, storageConf?: string): PodmanStoreInfo {
  const format = ['info', '--format', '{{.Store.GraphRoot}}\t{{.Store.RunRoot}}\t{{.Store.GraphDriverName}}'];
  const podman =
    asUser === undefined
      ? `podman ${format.map((a) => `'${a}'`).join(' ')}`
      : `cd / && runuser -u ${asUser.name} -- env XDG_RUNTIME_DIR=/run/user/${asUser.uid} ${storageConf === undefined ? '' : `CONTAINERS_STORAGE_CONF='${storageConf}' `}podman ${format.map((a) => `'${a}'`).join(' ')}`;
  const out = run('sh', ['-c', podman]);
  const [graphRoot, runRoot, driver] = out.split('\t');
  return { graphRoot: graphRoot ?? '', runRoot: runRoot ?? '', driver: driver ?? '' };
}

function storeOf(found: StoreLocations, label: string): { storageDir: string; runDir: string; driver: string } | undefined {
  const w = found.wanted.find((x) => x.store.label === label);
  return w === undefined ? undefined : { storageDir: w.store.storageDir, runDir: w.store.runDir, driver: w.store.driver };
}

describeWith('rootless podman', probes.podmanRootless, 'locateStores on this host', () => {
  let rootful: PodmanStoreInfo;
  let rootless: PodmanStoreInfo;
  let user: PasswdUser;
  beforeAll(async () => {
    const [found] = await nssUsers([ROOTLESS_USER], { timeoutMs: 5000 });
    if (found === undefined) throw new Error(`NSS does not know ${ROOTLESS_USER}`);
    user = found;
    rootful = podmanInfo();
    rootless = podmanInfo(user);
  }, 60000);

  it('places the rootful store and the rootless user\'s store where podman says they are, with podman\'s graph driver', async () => {
    const paths = podmanPathsFrom({});
    const users = await nssUsers([], { timeoutMs: 5000 });
    const found = await locateStores(paths, () => users, async () => (await readdir(paths.userRunRoot)).filter((n) => /^\d+$/.test(n)));
    expect(found.wanted[0]?.store.label).toBe('rootful');
    expect(storeOf(found, 'rootful')).toEqual({ storageDir: rootful.graphRoot, runDir: rootful.runRoot, driver: rootful.driver });
    expect(storeOf(found, `rootless:${user.name}`)).toEqual({ storageDir: rootless.graphRoot, runDir: rootless.runRoot, driver: rootless.driver });
    // Podman run as root uses the rootful store: root has no rootless store, whatever its home holds.
    expect(users.some((u) => u.uid === 0)).toBe(true);
    expect(found.wanted.filter((w) => w.store.user !== undefined && users.find((u) => u.name === w.store.user)?.uid === 0)).toEqual([]);
  });

  describe('with a system storage.conf that has no [storage] table', () => {
    let etc: string;
    let withConf: PodmanStoreInfo;
    beforeAll(() => {
      // A storage.conf whose settings are all commented out.
      etc = mkdtempSync(join(tmpdir(), 'croot-t-etc-containers-'));
      chmodSync(etc, 0o755);
      writeFileSync(join(etc, 'storage.conf'), '# [storage]\n# driver = "overlay"\n# graphroot = "/srv/containers"\n', { mode: 0o644 });
      withConf = podmanInfo(user, join(etc, 'storage.conf'));
    }, 60000);
    afterAll(() => rmSync(etc, { recursive: true, force: true }));

    it('places the rootless user\'s store where podman then says it is, and notes nothing', async () => {
      const paths = podmanPathsFrom({ CROOT_CONTAINERS_STORAGE_CONF: join(etc, 'storage.conf') });
      const found = await locateStores(paths, () => [user], async () => (await readdir(paths.userRunRoot)).filter((n) => /^\d+$/.test(n)));
      expect(storeOf(found, `rootless:${user.name}`)).toEqual({ storageDir: withConf.graphRoot, runDir: withConf.runRoot, driver: withConf.driver });
      // The file is valid TOML: podman does not refuse it (rootful podman 4.3 then wants runroot and graphroot set, croot reads the built-in ones).
      expect(found.notes).toEqual([]);
    });
  });

  describe('with a system storage.conf that sets rootless_storage_path and driver', () => {
    let stores: string;
    let withConf: PodmanStoreInfo;
    beforeAll(() => {
      // A folder the user owns, for podman to make the store in.
      stores = mkdtempSync(join(tmpdir(), 'croot-t-rootless-stores-'));
      chmodSync(stores, 0o755);
      mkdirSync(join(stores, user.name));
      chownSync(join(stores, user.name), user.uid, user.uid);
      writeFileSync(join(stores, 'storage.conf'), `[storage]\ndriver = "vfs"\nrootless_storage_path = "${stores}/$USER/storage"\n`, { mode: 0o644 });
      withConf = podmanInfo(user, join(stores, 'storage.conf'));
    }, 60000);
    afterAll(() => rmSync(stores, { recursive: true, force: true }));

    it('places the rootless user\'s store where podman then says it is, with the system file\'s driver, as configured', async () => {
      // Without the user's own storage.conf, podman takes the system file's rootless_storage_path and driver.
      expect(withConf.graphRoot).toBe(join(stores, user.name, 'storage'));
      const paths = podmanPathsFrom({ CROOT_CONTAINERS_STORAGE_CONF: join(stores, 'storage.conf') });
      const found = await locateStores(paths, () => [user], async () => (await readdir(paths.userRunRoot)).filter((n) => /^\d+$/.test(n)));
      expect(storeOf(found, `rootless:${user.name}`)).toEqual({ storageDir: withConf.graphRoot, runDir: withConf.runRoot, driver: withConf.driver });
      expect(found.wanted.find((w) => w.store.label === `rootless:${user.name}`)?.driverConfigured).toBe(true);
      expect(found.notes).toEqual([]);
    });
  });
});

describe('locateStores on a tree of its own', () => {
  let root: string;
  let paths: PodmanPaths;
  /** The paths croot takes from crootd's environment, the rootful store placed by the system storage.conf alone. */
  let confPaths: PodmanPaths;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'croot-t-locate-'));
    mkdirSync(join(root, 'run-user'));
    const env = { CROOT_PODMAN_USER_RUNDIR: join(root, 'run-user'), CROOT_CONTAINERS_STORAGE_CONF: join(root, 'etc/storage.conf') };
    confPaths = podmanPathsFrom(env);
    paths = podmanPathsFrom({ ...env, PCP_PODMAN_DATADIR: join(root, 'rootful/storage'), PCP_PODMAN_RUNDIR: join(root, 'rootful/run') });
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  /** A user whose home is under the tree. */
  const userOf = (name: string, uid: number): PasswdUser => ({ name, uid, home: join(root, 'home', name) });

  /** An empty container list of `driver` in the user's default graph root, as rootless podman leaves it. */
  function store(user: PasswdUser, driver = 'overlay'): void {
    const dir = join(user.home, '.local/share/containers/storage', `${driver}-containers`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'containers.json'), '[]');
  }

  /** A runtime folder under the tree's /run/user: a session or lingering. */
  function runtime(uid: number): void {
    mkdirSync(join(root, 'run-user', String(uid)));
  }

  function locate(users: readonly PasswdUser[], given: PodmanPaths = paths): Promise<StoreLocations> {
    return locateStores(given, () => users, async () => readdir(join(root, 'run-user')));
  }

  it('watches a user\'s store when it has lists or a runtime folder, in the order NSS lists the users, and the folder of each one\'s storage.conf', async () => {
    const users = Array.from({ length: 40 }, (_, i) => userOf(`u${i}`, 2000 + i));
    // Every third user has lists, every fifth a runtime folder; the rest have neither and are left out.
    users.forEach((u, i) => {
      if (i % 3 === 0) store(u, i % 2 === 0 ? 'overlay' : 'vfs');
      if (i % 5 === 0) runtime(u.uid);
    });
    const found = await locate(users);
    const expected = users.filter((_, i) => i % 3 === 0 || i % 5 === 0);
    expect(found.wanted.map((w) => w.store.label)).toEqual(['rootful', ...expected.map((u) => `rootless:${u.name}`)]);
    expect(found.confDirs).toEqual(expected.map((u) => join(u.home, '.config/containers')));
    expect(found.notes).toEqual([]);
    for (const [i, u] of users.entries()) {
      if (!expected.includes(u)) continue;
      expect(storeOf(found, `rootless:${u.name}`)).toEqual({
        storageDir: join(u.home, '.local/share/containers/storage'),
        runDir: join(root, 'run-user', String(u.uid), 'containers'),
        // A store without lists is read as overlay, c/storage's first choice.
        driver: i % 3 === 0 && i % 2 === 1 ? 'vfs' : 'overlay',
      });
    }
  });

  it('places the store and storage.conf folder of a user whose passwd home ends in slashes as under the clean home, as Go\'s filepath.Join does', async () => {
    const carol = userOf('carol', 1002);
    store(carol);
    const found = await locate([{ ...carol, home: `${carol.home}//` }]);
    expect(storeOf(found, 'rootless:carol')).toEqual({
      storageDir: join(carol.home, '.local/share/containers/storage'),
      runDir: join(root, 'run-user/1002/containers'),
      driver: 'overlay',
    });
    expect(found.confDirs).toEqual([join(carol.home, '.config/containers')]);
  });

  it('says of a user\'s store both that the user\'s storage.conf is malformed and which of several drivers\' lists it reads', async () => {
    const dave = userOf('dave', 1003);
    store(dave, 'overlay');
    store(dave, 'vfs');
    const graph = join(dave.home, '.local/share/containers/storage');
    // vfs's list changed last: the driver podman wrote to most recently.
    utimesSync(join(graph, 'overlay-containers/containers.json'), 1_000_000, 1_000_000);
    utimesSync(join(graph, 'vfs-containers/containers.json'), 2_000_000, 2_000_000);
    const conf = join(dave.home, '.config/containers/storage.conf');
    mkdirSync(join(dave.home, '.config/containers'), { recursive: true });
    writeFileSync(conf, '[storage\n');
    const found = await locate([dave]);
    const wanted = found.wanted.find((w) => w.store.label === 'rootless:dave');
    expect(wanted).toMatchObject({ store: { storageDir: graph, driver: 'vfs' }, driverConfigured: false });
    const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    expect(wanted?.store.note).toMatch(
      new RegExp(
        `^${escape(conf)}: line 1, column \\d+: [^;]+ \\(using the defaults, as podman 4\\.3 does\\); ` +
          `${escape(`container lists of several graph drivers (overlay, vfs) under ${graph} and no driver in storage.conf: reading vfs's, changed last`)}$`,
      ),
    );
    expect(found.notes).toEqual([]);
  });

  it('notes a user whose own storage.conf sets a runroot only the user\'s session can expand, and watches that folder, not the store', async () => {
    const erin = userOf('erin', 1004);
    store(erin);
    runtime(erin.uid);
    const conf = join(erin.home, '.config/containers/storage.conf');
    mkdirSync(join(erin.home, '.config/containers'), { recursive: true });
    writeFileSync(conf, '[storage]\nrunroot = "$XDG_RUNTIME_DIR/containers"\n');
    const found = await locate([erin]);
    expect(found.wanted.map((w) => w.store.label)).toEqual(['rootful']);
    expect(found.notes).toEqual([`rootless:erin: ${conf}: runroot "$XDG_RUNTIME_DIR/containers": $XDG_RUNTIME_DIR is not known outside the user's session`]);
    expect(found.confDirs).toEqual([join(erin.home, '.config/containers')]);
  });

  it('reads no user\'s store when rootless stores are off, and does not ask for users', async () => {
    const alice = userOf('alice', 1000);
    store(alice);
    runtime(alice.uid);
    let asked = 0;
    const found = await locateStores(
      { ...paths, rootless: false },
      () => {
        asked++;
        return [alice];
      },
      async () => {
        asked++;
        return ['1000'];
      },
    );
    expect(found.wanted.map((w) => w.store.label)).toEqual(['rootful']);
    expect(found.confDirs).toEqual([]);
    expect(asked).toBe(0);
  });

  it('gives root, and users whose home is / or empty, no rootless store even with lists and a runtime folder', async () => {
    // Podman run as root uses the rootful store; system users with home / would all share /.local/share/containers/storage.
    const rootUser = userOf('root', 0);
    store(rootUser);
    runtime(0);
    const daemon = { name: 'daemon', uid: 1, home: '/' };
    runtime(1);
    const nohome = { name: 'nohome', uid: 3, home: '' };
    runtime(3);
    const alice = userOf('alice', 1000);
    store(alice);
    const found = await locate([rootUser, daemon, nohome, alice]);
    expect(found.wanted.map((w) => w.store.label)).toEqual(['rootful', 'rootless:alice']);
    expect(found.confDirs).toEqual([join(alice.home, '.config/containers')]);
  });

  it('says of the rootful store both why a configured path is not used and that it reads the lists podman recorded over the configured driver', async () => {
    const system = join(root, 'etc/storage.conf');
    mkdirSync(join(root, 'etc'));
    writeFileSync(system, `[storage]\ndriver = "vfs"\ngraphroot = "${join(root, 'rootful/storage')}"\nrunroot = "relative/run"\n`);
    mkdirSync(join(root, 'rootful/storage/overlay-containers'), { recursive: true });
    writeFileSync(join(root, 'rootful/storage/overlay-containers/containers.json'), '[]');
    const found = await locate([], confPaths);
    const rootful = found.wanted[0];
    expect(rootful?.driverConfigured).toBe(true);
    expect(rootful?.store).toMatchObject({ label: 'rootful', storageDir: join(root, 'rootful/storage'), runDir: '/run/containers/storage', driver: 'overlay' });
    expect(rootful?.store.note).toBe(
      `${system}: runroot "relative/run" is not an absolute path (using /run/containers/storage); ` +
        `${system} sets driver "vfs", but only overlay-containers under ${join(root, 'rootful/storage')} hold lists, and podman keeps the driver it recorded for a store: reading overlay's`,
    );
    expect(found.notes).toEqual([]);
  });

  it('takes the rootful driver from the lists on disk when no storage.conf names one, and says nothing when all is well', async () => {
    mkdirSync(join(root, 'rootful/storage/vfs-containers'), { recursive: true });
    writeFileSync(join(root, 'rootful/storage/vfs-containers/containers.json'), '[]');
    const found = await locate([]);
    expect(found.wanted).toEqual([
      { store: { label: 'rootful', storageDir: join(root, 'rootful/storage'), runDir: join(root, 'rootful/run'), driver: 'vfs' }, driverConfigured: false },
    ]);
    expect(found.notes).toEqual([]);
  });

  it('notes a malformed system storage.conf once, and a user whose store cannot be placed, with the folder of that user\'s storage.conf', async () => {
    mkdirSync(join(root, 'etc'));
    writeFileSync(join(root, 'etc/storage.conf'), '[storage\n');
    const bob = userOf('bob', 1001);
    mkdirSync(join(bob.home, '.config/containers'), { recursive: true });
    writeFileSync(join(bob.home, '.config/containers/storage.conf'), '[storage]\ngraphroot = "$XDG_DATA_HOME/containers"\n');
    const found = await locate([bob]);
    expect(found.notes).toHaveLength(2);
    expect(found.notes[0]).toMatch(new RegExp(`^system storage.conf ${join(root, 'etc/storage.conf')}: line 1, column \\d+: .+ \\(using the built-in paths; rootful podman 4.3 refuses such a file\\)$`));
    expect(found.notes[1]).toBe(`rootless:bob: ${join(bob.home, '.config/containers/storage.conf')}: graphroot "$XDG_DATA_HOME/containers": $XDG_DATA_HOME is not known outside the user's session`);
    expect(found.confDirs).toEqual([join(bob.home, '.config/containers')]);
    expect(found.wanted.map((w) => w.store.label)).toEqual(['rootful']);
  });
});
