import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { configFilePath, DEFAULT_CONFIG_FILE, loadConfigFile, loadCrootConfigFile, resolveUserUid } from './config-file.js';
import { CrootError } from '../errors/croot-error.js';
import { GetentUserDatabase } from '../host/user-database.js';
import { describeWith, probes } from '../../test/support/components.js';

let work: string;

/** The uid `id -u` gives for a user: the truth the name-service lookups are checked against. */
function uidOf(user: string): number | undefined {
  try {
    return Number(execFileSync('id', ['-u', user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    return undefined;
  }
}
const pcpUid = uidOf('pcp');

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'croot-t-config-'));
});

afterEach(() => {
  rmSync(work, { recursive: true, force: true });
});

function writeConfig(content: unknown, name = 'croot.json'): string {
  const file = join(work, name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

async function configError(content: unknown): Promise<CrootError> {
  const file = writeConfig(content);
  const err = await loadConfigFile(file).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CrootError);
  const crootErr = err as CrootError;
  expect(crootErr.code).toBe('ERR_CONFIG');
  expect(crootErr.message).toContain(file);
  return crootErr;
}

describe('resolveUserUid', () => {
  describeWith("PCP's pcp user", probes.pcpUser, 'with the pcp user', () => {
    it('finds a user through the name service, with the uid id(1) gives', async () => {
      expect(await resolveUserUid('pcp')).toBe(pcpUid);
      expect(await resolveUserUid('root')).toBe(uidOf('root'));
    });
  });

  it('gives undefined for a user that is not there, and never a prefix match', async () => {
    expect(uidOf('nobody-here')).toBeUndefined();
    expect(await resolveUserUid('nobody-here')).toBeUndefined();
    expect(uidOf('pc')).toBeUndefined();
    expect(await resolveUserUid('pc')).toBeUndefined();
  });
});

describe('loadConfigFile', () => {
  describeWith("PCP's pcp user", probes.pcpUser, 'with the pcp user', () => {
    it('reads every key into croot settings', async () => {
      const file = writeConfig({
        socket: '/tmp/croot.sock',
        allowUids: [0, 1000],
        allowUsers: ['pcp', 'root'],
        disabledEngines: ['lxc', 'podman'],
        plugins: ['croot-engine-example', './engines/mine'],
        containers: [
          { name: 'sbx', aliases: ['sandbox'], id: 'sbx-1', pid: 1234 },
          { name: 'jail', pidfile: '/run/jail.pid' },
        ],
      });
      expect(await loadConfigFile(file)).toEqual({
        socketPath: '/tmp/croot.sock',
        allowUids: [...new Set([0, 1000, pcpUid])],
        disabledEngines: ['lxc', 'podman'],
        plugins: [
          { name: 'croot-engine-example', from: work },
          { name: './engines/mine', from: work },
        ],
        staticContainers: [
          { name: 'sbx', aliases: ['sandbox'], id: 'sbx-1', pid: 1234 },
          { name: 'jail', pidfile: '/run/jail.pid' },
        ],
      });
    });
  });

  it('leaves out what the file does not set, so defaults apply', async () => {
    expect(await loadConfigFile(writeConfig({}))).toEqual({});
  });

  it("takes a relative pidfile from the config file's folder", async () => {
    const file = writeConfig({ containers: [{ name: 'a', pidfile: 'run/a.pid' }] });
    expect((await loadConfigFile(file)).staticContainers).toStrictEqual([{ name: 'a', pidfile: join(work, 'run/a.pid') }]);
  });

  it('ignores $comment keys', async () => {
    const file = writeConfig({ $comment: ['x', 'y'], containers: [{ $comment: 'z', name: 'a', pid: 1 }] });
    expect((await loadConfigFile(file)).staticContainers).toStrictEqual([{ name: 'a', pid: 1 }]);
  });

  describeWith("PCP's pcp user", probes.pcpUser, 'with the pcp user', () => {
    it('reads the documented example', async () => {
      const example = resolve(__dirname, '../../examples/croot.example.json');
      const config = await loadConfigFile(example);
      expect(config.allowUids).toEqual([0, pcpUid]);
      expect(config.staticContainers?.map((c) => c.name)).toEqual(['build-sandbox', 'legacy-jail']);
    });
  });

  it('refuses a file that is not JSON', async () => {
    const err = await configError('{ "socket": ');
    expect(err.message).toContain('not valid JSON');
    expect(err.details).toEqual({ file: join(work, 'croot.json') });
  });

  it('refuses a file whose top is not an object', async () => {
    await configError([1, 2]);
  });

  it('refuses an unknown key, naming it', async () => {
    const err = await configError({ sockt: '/tmp/x' });
    expect(err.message).toContain('"sockt"');
    expect(err.details).toMatchObject({ key: 'sockt' });
  });

  it('refuses an unknown key in a container, naming where it is', async () => {
    const err = await configError({ containers: [{ name: 'a', pid: 1, hostname: 'x' }] });
    expect(err.message).toContain('"containers[0].hostname"');
  });

  it.each([
    [{ socket: 5 }, 'socket'],
    [{ socket: '' }, 'socket'],
    [{ allowUids: 0 }, 'allowUids'],
    [{ allowUids: [-1] }, 'allowUids[0]'],
    [{ allowUids: [0, 1.5] }, 'allowUids[1]'],
    [{ allowUsers: 'pcp' }, 'allowUsers'],
    [{ allowUsers: ['pcp', 3] }, 'allowUsers[1]'],
    [{ disabledEngines: [''] }, 'disabledEngines[0]'],
    [{ disabledEngines: 'lxc' }, 'disabledEngines'],
    [{ plugins: 'croot-engine-example' }, 'plugins'],
    [{ containers: {} }, 'containers'],
    [{ containers: ['a'] }, 'containers[0]'],
    [{ containers: [{ pid: 1 }] }, 'containers[0].name'],
    [{ containers: [{ name: 'a', pid: '12' }] }, 'containers[0].pid'],
    [{ containers: [{ name: 'a', pid: 0 }] }, 'containers[0].pid'],
    [{ containers: [{ name: 'a', pidfile: 7 }] }, 'containers[0].pidfile'],
    [{ containers: [{ name: 'a', pid: 1, aliases: 'b' }] }, 'containers[0].aliases'],
    [{ containers: [{ name: 'a', pid: 1, id: 9 }] }, 'containers[0].id'],
    [{ $comment: 5 }, '$comment'],
  ])('refuses %j, naming %s', async (content, key) => {
    const err = await configError(content);
    expect(err.details).toMatchObject({ key });
    expect(err.message).toContain(`"${key}"`);
  });

  it('says a container name is required', async () => {
    expect((await configError({ containers: [{ pid: 1 }] })).message).toBe(`config file ${join(work, 'croot.json')}: "containers[0].name" is required`);
  });

  it('refuses a container with neither pid nor pidfile', async () => {
    const err = await configError({ containers: [{ name: 'a' }] });
    expect(err.message).toContain('needs a "pid" or a "pidfile"');
  });

  it('refuses a container with both pid and pidfile', async () => {
    const err = await configError({ containers: [{ name: 'a', pid: 1, pidfile: '/run/a.pid' }] });
    expect(err.message).toContain('both');
  });

  it('refuses two containers with one name, or a name reused as an alias', async () => {
    const err = await configError({ containers: [{ name: 'a', pid: 1 }, { name: 'a', pid: 2 }] });
    expect(err.details).toMatchObject({ key: 'containers[1].name' });
    expect(err.message).toContain('duplicate container name "a"');
    const alias = await configError({ containers: [{ name: 'a', pid: 1 }, { name: 'b', aliases: ['a'], pid: 2 }] });
    expect(alias.details).toMatchObject({ key: 'containers[1].aliases[0]' });
  });

  it('refuses two containers with one id', async () => {
    const err = await configError({ containers: [{ name: 'a', id: 'x', pid: 1 }, { name: 'b', id: 'x', pid: 2 }] });
    expect(err.message).toContain('duplicate container id "x"');
  });

  it('refuses a user the name service does not know', async () => {
    const err = await configError({ allowUsers: ['ghost'] });
    expect(err.details).toMatchObject({ key: 'allowUsers[0]' });
    expect(err.message).toContain('no user "ghost"');
  });

  it('reads the connection limits, each one optional', async () => {
    const limits = { maxConnections: 10, maxConnectionsPerUid: 1, reservedForRoot: 9, idleTimeoutMs: 1 };
    expect((await loadConfigFile(writeConfig({ limits: { $comment: 'x', ...limits } }))).connectionLimits).toEqual(limits);
    expect((await loadConfigFile(writeConfig({ limits: { reservedForRoot: 0 } }))).connectionLimits).toEqual({ reservedForRoot: 0 });
    expect((await loadConfigFile(writeConfig({ limits: { reservedForRoot: 500 } }))).connectionLimits).toEqual({ reservedForRoot: 500 });
    expect((await loadConfigFile(writeConfig({ limits: {} }))).connectionLimits).toEqual({});
  });

  it.each([
    [{ limits: [] }, 'limits', 'must be an object'],
    [{ limits: { maxConection: 3 } }, 'limits.maxConection', 'is not a known key (known: maxConnections, maxConnectionsPerUid, reservedForRoot, idleTimeoutMs)'],
    [{ limits: { $comment: 1 } }, 'limits.$comment', 'must be a string or an array of strings'],
    [{ limits: { maxConnections: 0 } }, 'limits.maxConnections', 'must be an integer >= 1'],
    [{ limits: { maxConnectionsPerUid: 0 } }, 'limits.maxConnectionsPerUid', 'must be an integer >= 1'],
    [{ limits: { idleTimeoutMs: 0 } }, 'limits.idleTimeoutMs', 'must be an integer >= 1'],
    [{ limits: { idleTimeoutMs: 1.5 } }, 'limits.idleTimeoutMs', 'must be an integer >= 1'],
    [{ limits: { maxConnections: '10' } }, 'limits.maxConnections', 'must be an integer >= 1'],
    [{ limits: { reservedForRoot: -1 } }, 'limits.reservedForRoot', 'must be an integer >= 0'],
    [{ limits: { maxConnections: 4, reservedForRoot: 4 } }, 'limits.reservedForRoot', 'must be less than limits.maxConnections'],
  ])('refuses %j, naming %s and why', async (content, key, why) => {
    const err = await configError(content);
    expect(err.details).toEqual({ file: join(work, 'croot.json'), key });
    expect(err.message).toBe(`config file ${join(work, 'croot.json')}: "${key}" ${why}`);
  });

  it('says what is wrong with a file whose top is not an object, and which keys it knows', async () => {
    const file = join(work, 'croot.json');
    expect((await configError('"text"')).message).toBe(`config file ${file}: must hold a JSON object`);
    expect((await configError(null)).message).toBe(`config file ${file}: must hold a JSON object`);
    expect((await configError({ sockt: 1 })).message).toBe(
      `config file ${file}: "sockt" is not a known key (known: socket, allowUids, allowUsers, disabledEngines, plugins, containers, limits)`,
    );
    expect((await configError({ containers: [{ name: 'a', pid: 1, x: 1 }] })).message).toBe(
      `config file ${file}: "containers[0].x" is not a known key (known: name, aliases, id, pid, pidfile)`,
    );
  });

  it('gives allowUids from allowUsers alone, as the name service has them', async () => {
    expect((await loadConfigFile(writeConfig({ allowUsers: ['root', 'root'] }))).allowUids).toEqual([uidOf('root')]);
  });

  it('takes uids up to 4294967294, the largest the kernel gives ((uid_t)-1 means none)', async () => {
    expect((await loadConfigFile(writeConfig({ allowUids: [4294967294, 0, 0] }))).allowUids).toEqual([4294967294, 0]);
    const err = await configError({ allowUids: [4294967295] });
    expect(err.details).toMatchObject({ key: 'allowUids[0]' });
  });

  it('takes $comment as a string or a list of strings only', async () => {
    expect(await loadConfigFile(writeConfig({ $comment: 'one line' }))).toEqual({});
    expect((await configError({ $comment: ['a', 2] })).details).toMatchObject({ key: '$comment' });
    expect((await configError({ containers: [{ name: 'a', pid: 1, $comment: [null] }] })).details).toMatchObject({ key: 'containers[0].$comment' });
  });

  it('refuses empty strings where a name, alias, id, pidfile or plugin is expected', async () => {
    for (const [content, key] of [
      [{ containers: [{ name: '', pid: 1 }] }, 'containers[0].name'],
      [{ containers: [{ name: 'a', aliases: [''], pid: 1 }] }, 'containers[0].aliases[0]'],
      [{ containers: [{ name: 'a', id: '', pid: 1 }] }, 'containers[0].id'],
      [{ containers: [{ name: 'a', pidfile: '' }] }, 'containers[0].pidfile'],
      [{ plugins: ['x', ''] }, 'plugins[1]'],
      [{ allowUsers: [''] }, 'allowUsers[0]'],
    ] as const) {
      expect((await configError(content)).details).toMatchObject({ key });
    }
  });

  it('refuses a pid that is not a whole positive number', async () => {
    for (const pid of [-3, 1.5, Number.MAX_SAFE_INTEGER + 2]) {
      expect((await configError({ containers: [{ name: 'a', pid }] })).message).toContain('"containers[0].pid" must be a positive integer');
    }
  });

  it('refuses a name used twice within one container, and an id equal to an earlier name-less id', async () => {
    const twice = await configError({ containers: [{ name: 'a', aliases: ['b', 'a'], pid: 1 }] });
    expect(twice.details).toMatchObject({ key: 'containers[0].aliases[1]' });
    expect(twice.message).toContain('(already used by containers[0].name)');
    // Without an id a container's id is its name.
    const id = await configError({ containers: [{ name: 'a', pid: 1 }, { name: 'b', id: 'a', pid: 2 }] });
    expect(id.details).toMatchObject({ key: 'containers[1].id' });
    expect(id.message).toContain('duplicate container id "a" (already used by containers[0].name)');
    const byName = await configError({ containers: [{ name: 'x', id: 'b', pid: 1 }, { name: 'b', pid: 2 }] });
    expect(byName.details).toMatchObject({ key: 'containers[1].name' });
    expect(byName.message).toContain('(already used by containers[0].id)');
  });

  it('refuses a file when the name service cannot be asked, saying so', async () => {
    const file = writeConfig({ allowUsers: ['root'] });
    const err = (await loadConfigFile(file, { users: new GetentUserDatabase(join(work, 'no-getent')) }).then(
      () => undefined,
      (e: unknown) => e,
    )) as CrootError;
    expect(err).toBeInstanceOf(CrootError);
    expect(err.code).toBe('ERR_CONFIG');
    expect(err.details).toEqual({ file, key: 'allowUsers[0]' });
    expect(err.message).toContain(`config file ${file}: "allowUsers[0]" cannot look user "root" up: `);
    expect((err.cause as CrootError).code).toBe('ERR_SYSTEM');
  });

  it('refuses a file that does not exist', async () => {
    const missing = join(work, 'nope.json');
    await expect(loadConfigFile(missing)).rejects.toMatchObject({ code: 'ERR_CONFIG', message: `cannot read config file ${missing}: ENOENT`, details: { file: missing } });
  });
});

describe('configFilePath', () => {
  it('is CROOT_CONFIG when set, else the default', () => {
    expect(configFilePath({ CROOT_CONFIG: '/x/c.json' })).toEqual({ path: '/x/c.json', explicit: true });
    expect(configFilePath({})).toEqual({ path: DEFAULT_CONFIG_FILE, explicit: false });
    expect(configFilePath({ CROOT_CONFIG: '' })).toEqual({ path: DEFAULT_CONFIG_FILE, explicit: false });
    expect(configFilePath({}, '/y/d.json')).toEqual({ path: '/y/d.json', explicit: false });
    expect(DEFAULT_CONFIG_FILE).toBe('/etc/croot/croot.json');
  });
});

describe('loadCrootConfigFile', () => {
  it('reads the file CROOT_CONFIG names', async () => {
    const file = writeConfig({ socket: '/tmp/s.sock' });
    expect(await loadCrootConfigFile(undefined, { CROOT_CONFIG: file })).toEqual({ socketPath: '/tmp/s.sock' });
  });

  it('fails when the file CROOT_CONFIG names is missing', async () => {
    await expect(loadCrootConfigFile(undefined, { CROOT_CONFIG: join(work, 'missing.json') })).rejects.toMatchObject({ code: 'ERR_CONFIG' });
  });

  it('reads an explicitly given file, whatever CROOT_CONFIG says', async () => {
    const file = writeConfig({ socket: '/tmp/given.sock' });
    expect(await loadCrootConfigFile(file, { CROOT_CONFIG: join(work, 'other.json') })).toEqual({ socketPath: '/tmp/given.sock' });
  });

  it('fails when an explicitly given file is missing', async () => {
    await expect(loadCrootConfigFile(join(work, 'missing.json'), {})).rejects.toMatchObject({ code: 'ERR_CONFIG' });
  });

  it('refuses a default file that is there but cannot be read', async () => {
    // A folder where the file should be: EISDIR, not a missing file.
    await expect(loadCrootConfigFile(undefined, {}, { defaultPath: work })).rejects.toMatchObject({ code: 'ERR_CONFIG', message: `cannot read config file ${work}: EISDIR` });
  });

  it('gives an empty config when the default file is missing', async () => {
    expect(await loadCrootConfigFile(undefined, {}, { defaultPath: join(work, 'absent.json') })).toEqual({});
  });

  it('reads the default file when it exists, and refuses its bad content', async () => {
    const good = writeConfig({ disabledEngines: ['lxc'] }, 'default.json');
    expect(await loadCrootConfigFile(undefined, {}, { defaultPath: good })).toEqual({ disabledEngines: ['lxc'] });
    const bad = writeConfig({ bogus: 1 }, 'bad-default.json');
    await expect(loadCrootConfigFile(undefined, {}, { defaultPath: bad })).rejects.toMatchObject({ code: 'ERR_CONFIG' });
  });
});
