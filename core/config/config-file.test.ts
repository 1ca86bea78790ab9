import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { configFilePath, DEFAULT_CONFIG_FILE, loadConfigFile, loadCrootConfigFile, resolveUserUid } from './config-file.js';
import { CrootError } from '../errors/croot-error.js';
import { inCI } from '../../test/support/components.js';

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
/** Tests that need PCP's `pcp` user: skipped without it locally; in CI they run, and fail without it (CI installs PCP). */
const itWithPcp = pcpUid === undefined && !inCI ? it.skip : it;

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
  itWithPcp('finds a user through the name service, with the uid id(1) gives', async () => {
    expect(await resolveUserUid('pcp')).toBe(pcpUid);
    expect(await resolveUserUid('root')).toBe(uidOf('root'));
  });

  it('gives undefined for a user that is not there, and never a prefix match', async () => {
    expect(uidOf('nobody-here')).toBeUndefined();
    expect(await resolveUserUid('nobody-here')).toBeUndefined();
    expect(uidOf('pc')).toBeUndefined();
    expect(await resolveUserUid('pc')).toBeUndefined();
  });
});

describe('loadConfigFile', () => {
  itWithPcp('reads every key into croot settings', async () => {
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

  it('leaves out what the file does not set, so defaults apply', async () => {
    expect(await loadConfigFile(writeConfig({}))).toEqual({});
  });

  it("takes a relative pidfile from the config file's folder", async () => {
    const file = writeConfig({ containers: [{ name: 'a', pidfile: 'run/a.pid' }] });
    expect((await loadConfigFile(file)).staticContainers).toEqual([{ name: 'a', pidfile: join(work, 'run/a.pid') }]);
  });

  it('ignores $comment keys', async () => {
    const file = writeConfig({ $comment: ['x', 'y'], containers: [{ $comment: 'z', name: 'a', pid: 1 }] });
    expect((await loadConfigFile(file)).staticContainers).toEqual([{ name: 'a', pid: 1 }]);
  });

  itWithPcp('reads the documented example', async () => {
    const example = resolve(__dirname, '../../examples/croot.example.json');
    const config = await loadConfigFile(example);
    expect(config.allowUids).toEqual([0, pcpUid]);
    expect(config.staticContainers?.map((c) => c.name)).toEqual(['build-sandbox', 'legacy-jail']);
  });

  it('refuses a file that is not JSON', async () => {
    const err = await configError('{ "socket": ');
    expect(err.message).toContain('not valid JSON');
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

  it('refuses a file that does not exist', async () => {
    const missing = join(work, 'nope.json');
    await expect(loadConfigFile(missing)).rejects.toMatchObject({ code: 'ERR_CONFIG', message: expect.stringContaining(missing) });
  });
});

describe('configFilePath', () => {
  it('is CROOT_CONFIG when set, else the default', () => {
    expect(configFilePath({ CROOT_CONFIG: '/x/c.json' })).toEqual({ path: '/x/c.json', explicit: true });
    expect(configFilePath({})).toEqual({ path: DEFAULT_CONFIG_FILE, explicit: false });
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

  it('fails when an explicitly given file is missing', async () => {
    await expect(loadCrootConfigFile(join(work, 'missing.json'), {})).rejects.toMatchObject({ code: 'ERR_CONFIG' });
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
