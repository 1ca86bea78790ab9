import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeWith, probes } from '../../test/support/components.js';
import { expandStoragePath, parseStorageConf, readStorageConf } from './storage-conf.js';
import { DEFAULT_PODMAN_DATADIR, DEFAULT_PODMAN_RUNDIR, locateStores, readSystemStorageConf, rootfulLocation, rootlessLocation } from './locate-stores.js';
import { podmanPathsFrom } from './podman-paths.js';

const FIXTURE = join(__dirname, '..', '..', 'test', 'fixtures', 'podman');
const ALICE = { name: 'alice', uid: 1000, home: '/home/alice' };

describe('parseStorageConf', () => {
  it('takes driver, graphroot and runroot from a whole storage.conf as c/storage ships it, ignoring its other tables', () => {
    const text = readFileSync(join(FIXTURE, 'home/carol/.config/containers/storage.conf'), 'utf8');
    expect(parseStorageConf(text)).toEqual({
      driver: 'overlay',
      graphroot: '@ROOT@/srv/containers/$USER/storage',
      runroot: '@ROOT@/run-alt/$UID/containers',
    });
  });

  it('takes rootless_storage_path', () => {
    const text = readFileSync(join(FIXTURE, 'etc/containers/storage.conf'), 'utf8');
    expect(parseStorageConf(text).rootlessStoragePath).toBe('@ROOT@/local/$USER/storage');
  });

  it('ignores the same keys outside [storage], at the top and in sub-tables', () => {
    const text = 'graphroot = "/top"\n[storage.options]\ngraphroot = "/sub"\n[[storage.list]]\nrunroot = "/arr"\n[storage]\nrunroot = "/run/x"\n';
    expect(parseStorageConf(text)).toEqual({ runroot: '/run/x' });
  });

  it('reads literal, escaped, quoted-key and multi-line strings and skips arrays, inline tables and numbers', () => {
    const text = [
      '# comment',
      '[ storage ]   # spaced header',
      "graphroot = 'C:\\no\\escapes'",
      'runroot = "/run/\\u0041\\t"  # trailing comment',
      '"rootless_storage_path" = """',
      '/multi\\',
      '   line"""',
      'driver = "overlay"',
      'list = [ "a", [1, 2], # c',
      '  { k = "v" }, ]',
      'size = 1_000',
      'when = 1979-05-27 07:32:00Z',
      'flag = true',
      '[storage.options]',
      "mount_program = '''",
      "x'''",
    ].join('\n');
    expect(parseStorageConf(text)).toEqual({ graphroot: 'C:\\no\\escapes', runroot: '/run/A\t', rootlessStoragePath: '/multiline', driver: 'overlay' });
  });

  it.each([
    ['an empty file', ''],
    ['settings all commented out', '# [storage]\n# driver = "overlay"\n'],
    ["another tool's table", '[engine]\ncgroup_manager = "cgroupfs"\n'],
  ])('sets nothing for a file without a [storage] table (%s), as c/storage reads it', (_what, text) => {
    expect(parseStorageConf(text)).toEqual({});
  });

  it('treats an empty string as unset, as c/storage does', () => {
    expect(parseStorageConf('[storage]\ngraphroot = ""\n')).toEqual({});
  });

  it.each([
    ['[storage]\ngraphroot = /unquoted\n', 2],
    ['[storage\n', 1],
    ['[storage]\ngraphroot = "/open\n', 2],
    ['[storage]\nrunroot = "/a"\nrunroot = "/b"\n', 3],
    ['[storage]\n[storage]\n', 2],
    ['[storage]\ngraphroot "/x"\n', 2],
    ['[storage]\ngraphroot = "/x" "/y"\n', 2],
    ['[storage.options]\nlist = ["a" "b"]\n', 2],
    ['[storage]\nrunroot = "\\q"\n', 2],
  ])('rejects %j with ERR_CONFIG naming line %i', (text, line) => {
    expect(() => parseStorageConf(text)).toThrow(expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringMatching(new RegExp(`^line ${line}, column \\d+: \\S`)) }));
  });

  it.each([
    ['[storage]\ngraphroot = 5\n', '[storage] graphroot must be a string, not a number'],
    ['[storage]\ndriver = ["overlay"]\n', '[storage] driver must be a string, not an array'],
    ['[storage]\nrunroot = true\n', '[storage] runroot must be a string, not a boolean'],
    ['[storage]\nrootless_storage_path = { a = 1 }\n', '[storage] rootless_storage_path must be a string, not a table'],
    ['storage = "flat"\n', 'storage must be a table, not a string'],
    ['[[storage]]\ndriver = "vfs"\n', 'storage must be a table, not an array'],
    ['storage = 1979-05-27\n', 'storage must be a table, not a date'],
    ['[storage]\ngraphroot = 1979-05-27T07:32:00Z\n', '[storage] graphroot must be a string, not a date'],
    ['[storage]\ndriver = 1.5\n', '[storage] driver must be a string, not a number'],
  ])('rejects %j with ERR_CONFIG naming the key', (text, message) => {
    expect(() => parseStorageConf(text)).toThrow(expect.objectContaining({ code: 'ERR_CONFIG', message }));
  });

  it('keeps smol-toml\'s error, with the line and column it names, as the cause', () => {
    let thrown: unknown;
    try {
      parseStorageConf('[storage]\ngraphroot = /unquoted\n');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toMatchObject({ code: 'ERR_CONFIG', message: expect.stringMatching(/^line 2, column 13: /), cause: { line: 2, column: 13 } });
  });

  it('reads a file that starts with a byte-order mark', () => {
    expect(parseStorageConf('\uFEFF[storage]\ndriver = "vfs"\n')).toEqual({ driver: 'vfs' });
  });
});

describe('readStorageConf', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'croot-storage-conf-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('says a missing file is absent', async () => {
    await expect(readStorageConf(join(dir, 'none.conf'))).resolves.toEqual({ state: 'absent' });
  });

  it('names the file and the line of a malformed one', async () => {
    writeFileSync(join(dir, 'storage.conf'), '[storage]\ngraphroot = nope\n');
    await expect(readStorageConf(join(dir, 'storage.conf'))).resolves.toEqual({
      state: 'bad',
      path: join(dir, 'storage.conf'),
      reason: `${join(dir, 'storage.conf')}: line 2, column 13: invalid value`,
    });
  });

  it('gives a reason for a path that cannot be read as a file', async () => {
    mkdirSync(join(dir, 'storage.conf'));
    await expect(readStorageConf(join(dir, 'storage.conf'))).resolves.toEqual({
      state: 'bad',
      path: join(dir, 'storage.conf'),
      reason: expect.stringMatching(new RegExp(`^${join(dir, 'storage.conf')}: EISDIR: `)),
    });
  });

  it('says a file under a path that is not a folder is absent, as a missing one', async () => {
    writeFileSync(join(dir, 'containers'), '');
    await expect(readStorageConf(join(dir, 'containers/storage.conf'))).resolves.toEqual({ state: 'absent' });
  });
});

describe('expandStoragePath', () => {
  it('expands $UID, $HOME, ${HOME} and $USER from the passwd entry', () => {
    expect(expandStoragePath('$HOME/a/$USER/$UID/${HOME}', ALICE)).toBe('/home/alice/a/alice/1000/home/alice');
  });

  it('cleans the result like filepath.Clean', () => {
    expect(expandStoragePath('/srv//x/./y/../z/', ALICE)).toBe('/srv/x/z');
  });

  it('refuses a variable only the user\'s session knows', () => {
    expect(() => expandStoragePath('$XDG_DATA_HOME/containers', ALICE)).toThrow(expect.objectContaining({ code: 'ERR_CONFIG' }));
  });

  it('does not expand ~, as c/storage does not, and refuses the relative path', () => {
    expect(() => expandStoragePath('~/containers', ALICE)).toThrow(expect.objectContaining({ code: 'ERR_CONFIG', message: '"~/containers" is not an absolute path' }));
  });
});

describe('rootlessLocation', () => {
  const none = { state: 'absent' } as const;

  it('defaults to ~/.local/share/containers/storage and <userRunRoot>/<uid>/containers', () => {
    expect(rootlessLocation(ALICE, none, {}, '/run/user')).toEqual({
      storageDir: '/home/alice/.local/share/containers/storage',
      runDir: '/run/user/1000/containers',
    });
  });

  it('ranks the user\'s graphroot over the user\'s rootless_storage_path over the system one', () => {
    const system = { rootlessStoragePath: '/sys/$USER', runroot: '/ignored', graphroot: '/ignored' };
    const read = (conf: object) => ({ state: 'read', path: '/c', conf }) as const;
    expect(rootlessLocation(ALICE, none, system, '/run/user').storageDir).toBe('/sys/alice');
    expect(rootlessLocation(ALICE, read({ rootlessStoragePath: '/mine' }), system, '/run/user').storageDir).toBe('/mine');
    expect(rootlessLocation(ALICE, read({ graphroot: '/g', rootlessStoragePath: '/mine' }), system, '/run/user').storageDir).toBe('/g');
    expect(rootlessLocation(ALICE, read({ runroot: '/r/$UID' }), system, '/run/user')).toEqual({ storageDir: '/sys/alice', runDir: '/r/1000' });
  });

  it('takes the driver from the user\'s file, which replaces the system file\'s even when it names none', () => {
    const read = (conf: object) => ({ state: 'read', path: '/c', conf }) as const;
    const system = { driver: 'overlay' };
    expect(rootlessLocation(ALICE, read({ driver: 'vfs' }), system, '/run/user').driver).toEqual({ name: 'vfs', from: '/c' });
    expect(rootlessLocation(ALICE, read({}), system, '/run/user')).not.toHaveProperty('driver');
  });

  it('inherits the system file\'s driver only when a rootless user may use it, as c/storage does', () => {
    for (const driver of ['overlay', 'overlay2', 'vfs', 'btrfs']) {
      expect(rootlessLocation(ALICE, none, { driver }, '/run/user').driver).toEqual({ name: driver, from: 'system storage.conf' });
    }
    for (const driver of ['zfs', 'devicemapper', 'aufs']) {
      expect(rootlessLocation(ALICE, none, { driver }, '/run/user')).not.toHaveProperty('driver');
    }
  });

  it('uses the defaults and names the problem when the user\'s file is malformed', () => {
    expect(rootlessLocation(ALICE, { state: 'bad', path: '/c', reason: '/c: line 1: x' }, {}, '/run/user')).toEqual({
      storageDir: '/home/alice/.local/share/containers/storage',
      runDir: '/run/user/1000/containers',
      problem: '/c: line 1: x (using the defaults, as podman 4.3 does)',
    });
  });
  it('names the file and the setting of each path it cannot expand', () => {
    const read = (conf: object) => ({ state: 'read', path: '/c', conf }) as const;
    expect(rootlessLocation(ALICE, read({ rootlessStoragePath: 'mine' }), {}, '/run/user').problem).toBe('/c: rootless_storage_path "mine" is not an absolute path');
    expect(rootlessLocation(ALICE, none, { rootlessStoragePath: 'sys' }, '/run/user').problem).toBe('system rootless_storage_path "sys" is not an absolute path');
    expect(rootlessLocation(ALICE, read({ graphroot: 'g', runroot: '$XDG_RUNTIME_DIR/c' }), {}, '/run/user')).toEqual({
      problem: '/c: graphroot "g" is not an absolute path; /c: runroot "$XDG_RUNTIME_DIR/c": $XDG_RUNTIME_DIR is not known outside the user\'s session',
    });
  });
});

describe('rootfulLocation', () => {
  const read = (conf: object) => ({ state: 'read', path: '/etc/containers/storage.conf', conf }) as const;

  it('uses c/storage\'s built-in paths without a system storage.conf or with a malformed one', () => {
    const defaults = { storageDir: DEFAULT_PODMAN_DATADIR, runDir: DEFAULT_PODMAN_RUNDIR };
    expect(rootfulLocation({}, { state: 'absent' })).toEqual(defaults);
    expect(rootfulLocation({}, { state: 'bad', path: '/c', reason: '/c: line 1: x' })).toEqual(defaults);
  });

  it('takes graphroot and runroot, expanding $UID as root\'s and cleaning them', () => {
    expect(rootfulLocation({}, read({ graphroot: '/srv//podman/', runroot: '/run/$UID/c', rootlessStoragePath: '/ignored' }))).toEqual({
      storageDir: '/srv/podman',
      runDir: '/run/0/c',
    });
  });

  it('takes the system file\'s driver, also when an explicit directory is given', () => {
    const driver = { name: 'vfs', from: '/etc/containers/storage.conf' };
    expect(rootfulLocation({}, read({ driver: 'vfs' })).driver).toEqual(driver);
    expect(rootfulLocation({ dataDir: '/pcp/data', runDir: '/pcp/run' }, read({ driver: 'vfs' })).driver).toEqual(driver);
    expect(rootfulLocation({}, read({}))).not.toHaveProperty('driver');
  });

  it('lets each explicit directory win on its own', () => {
    const conf = read({ graphroot: '/g', runroot: '/r' });
    expect(rootfulLocation({ dataDir: '/pcp/data' }, conf)).toEqual({ storageDir: '/pcp/data', runDir: '/r' });
    expect(rootfulLocation({ runDir: '/pcp/run' }, conf)).toEqual({ storageDir: '/g', runDir: '/pcp/run' });
  });

  it('names each path the file leaves unset, which rootful podman 4.3 refuses, unless an explicit directory gives it', () => {
    const unset = (key: string, fallback: string): string => `/etc/containers/storage.conf: no ${key} set (using ${fallback}; rootful podman 4.3 refuses such a file: "${key} must be set")`;
    expect(rootfulLocation({}, read({ driver: 'vfs' }))).toEqual({
      storageDir: DEFAULT_PODMAN_DATADIR,
      runDir: DEFAULT_PODMAN_RUNDIR,
      driver: { name: 'vfs', from: '/etc/containers/storage.conf' },
      problem: `${unset('graphroot', DEFAULT_PODMAN_DATADIR)}; ${unset('runroot', DEFAULT_PODMAN_RUNDIR)}`,
    });
    expect(rootfulLocation({ dataDir: '/pcp/data' }, read({})).problem).toBe(unset('runroot', DEFAULT_PODMAN_RUNDIR));
    expect(rootfulLocation({ dataDir: '/pcp/data', runDir: '/pcp/run' }, read({}))).not.toHaveProperty('problem');
  });

  it('names a path it cannot expand and uses the built-in one instead', () => {
    expect(rootfulLocation({}, read({ graphroot: 'relative/store', runroot: '/r' }))).toEqual({
      storageDir: DEFAULT_PODMAN_DATADIR,
      runDir: '/r',
      problem: `/etc/containers/storage.conf: graphroot "relative/store" is not an absolute path (using ${DEFAULT_PODMAN_DATADIR})`,
    });
  });

  it('names both paths, one problem after the other, when neither can be expanded', () => {
    expect(rootfulLocation({}, read({ graphroot: 'relative/store', runroot: '$XDG_RUNTIME_DIR/c' }))).toEqual({
      storageDir: DEFAULT_PODMAN_DATADIR,
      runDir: DEFAULT_PODMAN_RUNDIR,
      problem:
        `/etc/containers/storage.conf: graphroot "relative/store" is not an absolute path (using ${DEFAULT_PODMAN_DATADIR}); ` +
        `/etc/containers/storage.conf: runroot "$XDG_RUNTIME_DIR/c": $XDG_RUNTIME_DIR is not known outside the user's session (using ${DEFAULT_PODMAN_RUNDIR})`,
    });
  });
});

describe('readSystemStorageConf', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'croot-system-conf-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the first file that exists, as c/storage prefers /etc to /usr/share', async () => {
    writeFileSync(join(dir, 'second.conf'), '[storage]\ngraphroot = "/second"\n');
    writeFileSync(join(dir, 'third.conf'), '[storage]\ngraphroot = "/third"\n');
    const paths = ['first.conf', 'second.conf', 'third.conf'].map((f) => join(dir, f));
    await expect(readSystemStorageConf(paths)).resolves.toEqual({ state: 'read', path: paths[1], conf: { graphroot: '/second' } });
    await expect(readSystemStorageConf([])).resolves.toEqual({ state: 'absent' });
  });

  it('stops at a malformed first file rather than falling through to the next', async () => {
    writeFileSync(join(dir, 'first.conf'), '[storage\n');
    writeFileSync(join(dir, 'second.conf'), '[storage]\ngraphroot = "/second"\n');
    await expect(readSystemStorageConf([join(dir, 'first.conf'), join(dir, 'second.conf')])).resolves.toMatchObject({ state: 'bad' });
  });
});

describeWith('podman, run as root', () => probes.root() ?? probes.podman(), 'a system storage.conf without a [storage] table, against rootful podman', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'croot-t-no-storage-table-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** What rootful podman says of its store with `conf` as the system storage.conf: graph root and driver, or why it refuses the file. */
  function podmanWith(conf: string): { graphRoot: string; driver: string } | { refused: string } {
    try {
      const out = execFileSync('podman', ['info', '--format', '{{.Store.GraphRoot}} {{.Store.GraphDriverName}}'], {
        env: { ...process.env, CONTAINERS_STORAGE_CONF: conf },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 60000,
      }).trim();
      const [graphRoot = '', driver = ''] = out.split(' ');
      return { graphRoot, driver };
    } catch (err) {
      // Its last line: "Failed to obtain podman configuration: runroot must be set".
      const last = String((err as { stderr?: unknown }).stderr ?? '').trim().split('\n').at(-1) ?? '';
      return { refused: last.slice(last.lastIndexOf(': ') + 2) };
    }
  }

  /** croot's rootful store and notes with `text` as the system storage.conf, and podman's answer with it. */
  async function bothWith(text: string): Promise<{ podman: ReturnType<typeof podmanWith>; notes: readonly string[]; rootful: { storageDir: string; driver: string; note?: string } | undefined }> {
    const conf = join(dir, 'storage.conf');
    writeFileSync(conf, text);
    const found = await locateStores(podmanPathsFrom({ CROOT_CONTAINERS_STORAGE_CONF: conf, CROOT_PODMAN_ROOTLESS: '0' }), () => [], async () => []);
    return { podman: podmanWith(conf), notes: found.notes, rootful: found.wanted.find((w) => w.store.label === 'rootful')?.store };
  }

  it.each([
    ['an empty file', ''],
    ['settings all commented out', '# [storage]\n# driver = "overlay"\n# runroot = "/run/containers/storage"\n'],
    ["another tool's table", '[engine]\ncgroup_manager = "cgroupfs"\n'],
    ['only [storage.options]', '[storage.options]\nmount_program = "/usr/bin/fuse-overlayfs"\n'],
  ])('reads %s as valid and empty, and places the rootful store where podman does, or names what podman refuses in it', async (_what, text) => {
    const { podman, notes, rootful } = await bothWith(text);
    // Valid TOML: podman too parses it, and refuses it (if at all) for what it lacks.
    expect(await readStorageConf(join(dir, 'storage.conf'))).toEqual({ state: 'read', path: join(dir, 'storage.conf'), conf: {} });
    expect(notes).toEqual([]);
    if ('refused' in podman) {
      expect(podman.refused).toMatch(/^\S+ must be set$/);
      expect(rootful?.note).toContain(`"${podman.refused}"`);
    } else {
      expect({ graphRoot: rootful?.storageDir, driver: rootful?.driver }).toEqual(podman);
    }
  });

  it.each([
    ['runroot', `[storage]\ndriver = "overlay"\ngraphroot = "${DEFAULT_PODMAN_DATADIR}"\n`],
    ['graphroot', `[storage]\ndriver = "overlay"\nrunroot = "${DEFAULT_PODMAN_RUNDIR}"\n`],
  ])('names the %s a [storage] table leaves unset as podman does, or places the store where podman does', async (key, text) => {
    const { podman, rootful } = await bothWith(text);
    if ('refused' in podman) {
      expect(podman.refused).toBe(`${key} must be set`);
      expect(rootful?.note).toContain(`no ${key} set`);
      expect(rootful?.note).toContain(`"${podman.refused}"`);
    } else {
      expect({ graphRoot: rootful?.storageDir, driver: rootful?.driver }).toEqual(podman);
    }
  });
});
