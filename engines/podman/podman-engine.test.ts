import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync, mkdirSync } from 'node:fs';
import { settle } from '../../test/support/outcomes.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCrootContainer } from '../../core/create-container.js';
import type { ContainerRecord } from '../../core/engine.js';
import { EngineRegistry } from '../../core/engine-registry.js';
import { ContainerProcessIdResolver } from '../../core/resolvers.js';
import { DEFAULT_PODMAN_DATADIR, PodmanEngine, PodmanEngineOptions, podmanPathsFrom } from './podman-engine.js';
import { podmanEngineModule } from './podman-engine-module.js';
import { ContainerModule } from 'inversify';
import { startTimeFromStatFile } from '../../test/support/truth.js';

const FIXTURE = join(__dirname, '..', '..', 'test', 'fixtures', 'podman');
const RUN = 'be36a965cb4803f38194ce0ee329956f4c53254d81f5cdd5f9ef5a8722fe788b';
const STOPPED = '939b9b57d4ac2c87f0b9b8bc5c5834146182ac8a09078cd174201074f7577660';
const EXITED = 'a52aeab458e9acaf88ca5405749696e6bdeb4c65c52a9f026bced97833cff7bf';
const VOLATILE = '583c8334f046c80cbfdf19da10b00d7d19a7d1eff79ac05d2beb45c56b1b37af';
const ROOTLESS = '4a5bb220b9332a1ac0905130eb5639c7bd2cace134614cc5eb60b3f8e5d83e39';
const MOVED = 'e71103add7933eed9e10834df82b7f84f151383b3f5c5bb43c8108dc3b5addf1';
/** dave's rootless store, copied from a real rootless podman 4.3 store using the vfs driver. */
const VFS_RUN = 'b2833926895145ebd9618dec7504521565ed447e0686de999e3d2a5798a5222c';
const VFS_CREATED = 'e21549a806f05b03c4f5e63b4d23a59c9f005075ccd198dcfd8bab875581ac3c';
const CONF_FILES = ['passwd', 'home/carol/.config/containers/storage.conf', 'etc/containers/storage.conf', 'etc/containers-moved/storage.conf'];

/** A private copy of the fixture tree (tests change files in it) and the env pointing at it. */
function fixtureTree(): { root: string; env: Record<string, string> } {
  const root = mkdtempSync(join(tmpdir(), 'croot-podman-'));
  cpSync(FIXTURE, root, { recursive: true });
  for (const file of CONF_FILES) writeFileSync(join(root, file), readFileSync(join(root, file), 'utf8').replaceAll('@ROOT@', root));
  const passwd = join(root, 'passwd');
  return {
    root,
    env: {
      PCP_PODMAN_DATADIR: join(root, 'rootful', 'storage'),
      PCP_PODMAN_RUNDIR: join(root, 'rootful', 'run'),
      CROOT_PODMAN_SOCKET: '',
      CROOT_PASSWD_FILE: passwd,
      CROOT_PODMAN_USER_RUNDIR: join(root, 'run-user'),
      // Not the host's /etc/containers/storage.conf; tests that want the fixture's point here.
      CROOT_CONTAINERS_STORAGE_CONF: join(root, 'no-system-storage.conf'),
    },
  };
}

function engineFor(root: string, env: Record<string, string>, checkIntervalMs = 0): PodmanEngine {
  const container = createCrootContainer({
    config: { env, procRoot: join(root, 'proc') },
    modules: [
      podmanEngineModule,
      new ContainerModule(({ bind }) => {
        bind<PodmanEngineOptions>(PodmanEngineOptions).toConstantValue({ checkIntervalMs });
      }),
    ],
  });
  return container.get(PodmanEngine);
}

/** `env` without the given variables (as when PCP's environment does not set them). */
function without(env: Record<string, string>, ...names: string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !names.includes(k)));
}

function byId(records: readonly ContainerRecord[], id: string): ContainerRecord {
  const r = records.find((c) => c.id === id);
  if (r === undefined) throw new Error(`no record ${id}`);
  return r;
}

/** Field 22 of the fixture's copy of /proc/PID/stat, read by test code (truth.ts), not croot's parser. */
function statStart(root: string, pid: number): number {
  return startTimeFromStatFile(join(root, 'proc', String(pid), 'stat'));
}

/** What a running container's `userdata` folder says, as the engine should report it. */
function runningFrom(root: string, userdata: string): { running: true; pid: number; pidStartTime: number; hostname: string } {
  const pid = Number(readFileSync(join(userdata, 'pidfile'), 'utf8'));
  return { running: true, pid, pidStartTime: statStart(root, pid), hostname: readFileSync(join(userdata, 'hostname'), 'utf8') };
}

describe('PodmanEngine', () => {
  let root: string;
  let env: Record<string, string>;
  beforeEach(() => ({ root, env } = fixtureTree()));
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  describe('rootful store', () => {
    it('lists every container of containers.json and volatile-containers.json', async () => {
      const ids = (await engineFor(root, env).containers()).filter((r) => r.source === 'rootful').map((r) => r.id);
      expect(ids.sort()).toEqual([RUN, STOPPED, EXITED, VOLATILE].sort());
    });

    it('gives a container every one of its names', async () => {
      expect(byId(await engineFor(root, env).containers(), RUN).names).toEqual(['croot-fx-run', 'croot-fx-alias']);
    });

    it('takes the PID from the pidfile and its start time from /proc', async () => {
      const r = byId(await engineFor(root, env).containers(), RUN);
      const pid = Number(readFileSync(join(root, 'rootful/run/overlay-containers', RUN, 'userdata/pidfile'), 'utf8'));
      expect(r).toMatchObject({ engine: 'podman', running: true, pid, pidStartTime: statStart(root, pid), hostname: 'fx-host' });
    });

    it('reports a created container without a pidfile as not running', async () => {
      const r = byId(await engineFor(root, env).containers(), STOPPED);
      expect(r.running).toBe(false);
      expect(r.pid).toBeUndefined();
    });

    it('reports an exited container whose stale PID now belongs to a process that is not conmon\'s child as not running', async () => {
      const r = byId(await engineFor(root, env).containers(), EXITED);
      const pid = Number(readFileSync(join(root, 'rootful/run/overlay-containers', EXITED, 'userdata/pidfile'), 'utf8'));
      expect(statStart(root, pid)).toBeDefined();
      expect(r.running).toBe(false);
    });

    it('marks a volatile container running like any other', async () => {
      expect(byId(await engineFor(root, env).containers(), VOLATILE)).toMatchObject({ running: true, names: ['croot-fx-vol'], hostname: 'vol-host' });
    });
  });

  describe('rootful store placed by the system storage.conf', () => {
    const PCP_DIRS = ['PCP_PODMAN_DATADIR', 'PCP_PODMAN_RUNDIR'];
    let movedConf: string;
    let movedEnv: Record<string, string>;
    beforeEach(() => {
      movedConf = join(root, 'etc/containers-moved/storage.conf');
      movedEnv = { ...without(env, ...PCP_DIRS), CROOT_CONTAINERS_STORAGE_CONF: movedConf, CROOT_PODMAN_ROOTLESS: '0' };
    });

    /** Moves the rootful fixture to where etc/containers-moved/storage.conf points (runroot's $UID is root's 0). */
    function moveRootful(parts: { storage?: boolean; run?: boolean } = { storage: true, run: true }): void {
      mkdirSync(join(root, 'moved/0'), { recursive: true });
      if (parts.storage) renameSync(join(root, 'rootful/storage'), join(root, 'moved/storage'));
      if (parts.run) renameSync(join(root, 'rootful/run'), join(root, 'moved/0/run'));
    }

    it('reads graphroot and runroot from it when PCP_PODMAN_DATADIR and PCP_PODMAN_RUNDIR are unset', async () => {
      moveRootful();
      const engine = engineFor(root, movedEnv);
      const records = await engine.containers();
      expect(records.map((r) => r.id).sort()).toEqual([RUN, STOPPED, EXITED, VOLATILE].sort());
      const pid = Number(readFileSync(join(root, 'moved/0/run/overlay-containers', RUN, 'userdata/pidfile'), 'utf8'));
      expect(byId(records, RUN)).toMatchObject({ source: 'rootful', running: true, pid, pidStartTime: statStart(root, pid), hostname: 'fx-host' });
      expect(engine.status().reason).toContain(`rootful: read ${join(root, 'moved/storage/overlay-containers/containers.json')}`);
    });

    it('lets PCP_PODMAN_DATADIR and PCP_PODMAN_RUNDIR win over it', async () => {
      const engine = engineFor(root, { ...env, CROOT_CONTAINERS_STORAGE_CONF: movedConf, CROOT_PODMAN_ROOTLESS: '0' });
      expect(byId(await engine.containers(), RUN).running).toBe(true);
      expect(engine.status().reason).toContain(join(root, 'rootful/storage/overlay-containers/containers.json'));
      expect(engine.status().reason).not.toContain(join(root, 'moved'));
    });

    it('takes only the run root from it when PCP_PODMAN_DATADIR alone is set', async () => {
      moveRootful({ run: true });
      const engine = engineFor(root, { ...movedEnv, PCP_PODMAN_DATADIR: join(root, 'rootful/storage') });
      const pid = Number(readFileSync(join(root, 'moved/0/run/overlay-containers', RUN, 'userdata/pidfile'), 'utf8'));
      expect(byId(await engine.containers(), RUN)).toMatchObject({ running: true, pid });
    });

    it('treats an empty PCP_PODMAN_DATADIR as unset, as before', async () => {
      moveRootful();
      const engine = engineFor(root, { ...movedEnv, PCP_PODMAN_DATADIR: '', PCP_PODMAN_RUNDIR: '' });
      expect(byId(await engine.containers(), RUN).running).toBe(true);
      expect(podmanPathsFrom({ PCP_PODMAN_DATADIR: '', PCP_PODMAN_RUNDIR: '' })).not.toHaveProperty('dataDir');
    });

    it('follows a system storage.conf that changes after the first read', async () => {
      moveRootful();
      const engine = engineFor(root, movedEnv);
      expect(byId(await engine.containers(), RUN).running).toBe(true);
      writeFileSync(movedConf, readFileSync(movedConf, 'utf8').replace(/^graphroot = .*$/m, `graphroot = "${join(root, 'elsewhere')}"`));
      expect((await engine.containers()).some((r) => r.id === RUN)).toBe(false);
      expect(engine.status().reason).toContain(join(root, 'elsewhere/overlay-containers/containers.json'));
    });

    it('says why a malformed system storage.conf is not used, once, and falls back to the built-in paths', async () => {
      writeFileSync(movedConf, '[storage]\ngraphroot = nope\n');
      const engine = engineFor(root, { ...movedEnv, CROOT_PODMAN_ROOTLESS: '1' });
      await engine.containers();
      const reason = engine.status().reason;
      const note = `system storage.conf ${movedConf}: line 2: invalid value nope (using the built-in defaults`;
      expect(reason).toContain(note);
      expect(reason.split(note)).toHaveLength(2);
      expect(reason).toContain(`${DEFAULT_PODMAN_DATADIR}/overlay-containers/containers.json`);
      expect(byId(await engine.containers(), ROOTLESS).running).toBe(true);
    });

    it('says why a graphroot naming an unknown variable is not used and falls back to the built-in path', async () => {
      writeFileSync(movedConf, `[storage]\ngraphroot = "$XDG_DATA_HOME/storage"\nrunroot = "${join(root, 'rootful/run')}"\n`);
      const engine = engineFor(root, movedEnv);
      await engine.containers();
      expect(engine.status().reason).toMatch(/rootful: .*graphroot "\$XDG_DATA_HOME\/storage": \$XDG_DATA_HOME is not known.*\(using \/var\/lib\/containers\/storage\)/);
      expect(engine.status().reason).toContain(`${DEFAULT_PODMAN_DATADIR}/overlay-containers/containers.json`);
    });

    it('uses the built-in paths when there is no system storage.conf', async () => {
      const engine = engineFor(root, { ...movedEnv, CROOT_CONTAINERS_STORAGE_CONF: '' });
      await engine.containers();
      expect(engine.status().reason).toContain(`${DEFAULT_PODMAN_DATADIR}/overlay-containers/containers.json`);
    });
  });

  describe('rootless stores', () => {
    it('finds a user\'s store through the passwd home and names its containers with and without the user', async () => {
      const r = byId(await engineFor(root, env).containers(), ROOTLESS);
      expect(r).toMatchObject({ source: 'rootless:alice', running: true, names: ['croot-fx-web', 'alice/croot-fx-web'], hostname: 'web-host' });
    });

    it('finds a user whose storage.conf moves graphroot and runroot there, with $USER and $UID expanded', async () => {
      const engine = engineFor(root, env);
      const r = byId(await engine.containers(), MOVED);
      const runDir = join(root, 'run-alt/1002/containers/overlay-containers', MOVED, 'userdata');
      expect(r).toMatchObject({
        source: 'rootless:carol',
        ...runningFrom(root, runDir),
        names: ['croot-fx-moved', 'carol/croot-fx-moved'],
      });
      expect(engine.status().reason).toContain(join(root, 'srv/containers/carol/storage/overlay-containers/containers.json'));
    });

    it('does not read the default location of a user whose storage.conf moves the store', async () => {
      const stray = join(root, 'home/carol/.local/share/containers/storage/overlay-containers');
      mkdirSync(stray, { recursive: true });
      writeFileSync(join(stray, 'containers.json'), JSON.stringify([{ id: 'f'.repeat(64), names: ['croot-fx-stray'] }]));
      const records = await engineFor(root, env).containers();
      expect(records.some((r) => r.id === 'f'.repeat(64))).toBe(false);
      expect(byId(records, MOVED).source).toBe('rootless:carol');
    });

    it('moves the store of a user without storage.conf to the system rootless_storage_path, and not that of a user with a graphroot', async () => {
      const engine = engineFor(root, { ...env, CROOT_CONTAINERS_STORAGE_CONF: join(root, 'etc/containers/storage.conf') });
      const before = await engine.containers();
      expect(before.some((r) => r.id === ROOTLESS)).toBe(false);
      expect(byId(before, MOVED).running).toBe(true);
      mkdirSync(join(root, 'local/alice'), { recursive: true });
      renameSync(join(root, 'home/alice/.local/share/containers/storage'), join(root, 'local/alice/storage'));
      const after = await engine.containers();
      expect(byId(after, ROOTLESS)).toMatchObject({ source: 'rootless:alice', running: true, hostname: 'web-host' });
      expect(engine.status().reason).toContain(join(root, 'local/alice/storage/overlay-containers/containers.json'));
    });

    it('prefers the user\'s own rootless_storage_path, with $HOME expanded, to the system one', async () => {
      mkdirSync(join(root, 'home/alice/.config/containers'), { recursive: true });
      writeFileSync(join(root, 'home/alice/.config/containers/storage.conf'), '[storage]\nrootless_storage_path = "$HOME/mine"\n');
      renameSync(join(root, 'home/alice/.local/share/containers/storage'), join(root, 'home/alice/mine'));
      const engine = engineFor(root, { ...env, CROOT_CONTAINERS_STORAGE_CONF: join(root, 'etc/containers/storage.conf') });
      expect(byId(await engine.containers(), ROOTLESS)).toMatchObject({ source: 'rootless:alice', running: true });
      expect(engine.status().reason).toContain(join(root, 'home/alice/mine/overlay-containers/containers.json'));
    });

    it('says why a malformed storage.conf is not used and reads the default location, as podman 4.3 does', async () => {
      const conf = join(root, 'home/alice/.config/containers/storage.conf');
      mkdirSync(join(root, 'home/alice/.config/containers'), { recursive: true });
      writeFileSync(conf, '[storage]\ngraphroot = /srv/unquoted\n');
      const engine = engineFor(root, env);
      expect(byId(await engine.containers(), ROOTLESS).running).toBe(true);
      expect(engine.status().reason).toContain(`rootless:alice: ${conf}: line 2: invalid value /srv/unquoted`);
    });

    it('reports a user with a malformed storage.conf even when no store is found', async () => {
      const conf = join(root, 'home/bob/.config/containers/storage.conf');
      mkdirSync(join(root, 'home/bob/.config/containers'), { recursive: true });
      writeFileSync(conf, '[storage\n');
      const engine = engineFor(root, env);
      // bob's broken configuration costs nobody else: alice's container is still listed.
      expect(byId(await engine.containers(), ROOTLESS).running).toBe(true);
      expect(engine.status().reason).toMatch(new RegExp(`rootless:bob: ${conf}: line 1: .*rootless:bob: no `));
    });

    it('says why a store whose path names a variable of the user\'s session cannot be found', async () => {
      mkdirSync(join(root, 'home/bob/.config/containers'), { recursive: true });
      writeFileSync(join(root, 'home/bob/.config/containers/storage.conf'), '[storage]\ngraphroot = "$XDG_DATA_HOME/containers/storage"\n');
      const engine = engineFor(root, env);
      await engine.containers();
      expect(engine.status().reason).toContain('rootless:bob: ');
      expect(engine.status().reason).toContain('$XDG_DATA_HOME is not known');
    });

    it('follows a storage.conf that changes after the first read', async () => {
      const engine = engineFor(root, env);
      expect(byId(await engine.containers(), MOVED).running).toBe(true);
      const conf = join(root, 'home/carol/.config/containers/storage.conf');
      writeFileSync(conf, readFileSync(conf, 'utf8').replace(/^graphroot = .*$/m, `graphroot = "${join(root, 'elsewhere')}"`));
      expect((await engine.containers()).some((r) => r.id === MOVED)).toBe(false);
    });

    it('reads no rootless store when rootless scanning is off', async () => {
      const records = await engineFor(root, { ...env, CROOT_PODMAN_ROOTLESS: '0' }).containers();
      expect(records.some((r) => r.id === ROOTLESS)).toBe(false);
    });
  });

  describe('graph drivers other than overlay', () => {
    const daveGraph = (): string => join(root, 'home/dave/.local/share/containers/storage');

    /** Moves the rootful fixture's lists and run state from overlay-containers to `<driver>-containers`. */
    function rootfulTo(driver: string): void {
      renameSync(join(root, 'rootful/storage/overlay-containers'), join(root, `rootful/storage/${driver}-containers`));
      renameSync(join(root, 'rootful/run/overlay-containers'), join(root, `rootful/run/${driver}-containers`));
    }

    it('finds a rootless vfs store by its lists, with PID, start time and hostname from vfs-containers', async () => {
      const engine = engineFor(root, env);
      const records = await engine.containers();
      const userdata = join(root, 'run-user/1003/containers/vfs-containers', VFS_RUN, 'userdata');
      expect(byId(records, VFS_RUN)).toMatchObject({
        source: 'rootless:dave',
        ...runningFrom(root, userdata),
        names: ['croot-fx-rl', 'dave/croot-fx-rl'],
      });
      expect(byId(records, VFS_CREATED)).toMatchObject({ source: 'rootless:dave', running: false, names: ['croot-fx-rl-idle', 'dave/croot-fx-rl-idle'] });
      expect(engine.status().reason).toContain(`rootless:dave: read ${join(daveGraph(), 'vfs-containers/containers.json')}`);
    });

    it('reads the rootful store with the driver the system storage.conf names', async () => {
      const conf = join(root, 'driver-vfs.conf');
      writeFileSync(conf, '[storage]\ndriver = "vfs"\n');
      rootfulTo('vfs');
      const engine = engineFor(root, { ...env, CROOT_CONTAINERS_STORAGE_CONF: conf, CROOT_PODMAN_ROOTLESS: '0' });
      const pid = Number(readFileSync(join(root, 'rootful/run/vfs-containers', RUN, 'userdata/pidfile'), 'utf8'));
      expect(byId(await engine.containers(), RUN)).toMatchObject({ source: 'rootful', running: true, pid, pidStartTime: statStart(root, pid) });
      expect(engine.status().reason).toContain(join(root, 'rootful/storage/vfs-containers/containers.json'));
    });

    it('finds a rootful store by its vfs lists when no storage.conf names a driver', async () => {
      rootfulTo('vfs');
      const engine = engineFor(root, { ...env, CROOT_PODMAN_ROOTLESS: '0' });
      const records = await engine.containers();
      expect(records.map((r) => r.id).sort()).toEqual([RUN, STOPPED, EXITED, VOLATILE].sort());
      expect(byId(records, RUN).running).toBe(true);
    });

    it('follows a storage.conf driver that has no lists and says which lists it leaves unread', async () => {
      const conf = join(root, 'home/dave/.config/containers/storage.conf');
      mkdirSync(join(root, 'home/dave/.config/containers'), { recursive: true });
      writeFileSync(conf, '[storage]\ndriver = "overlay"\n');
      const engine = engineFor(root, env);
      expect((await engine.containers()).some((r) => r.id === VFS_RUN)).toBe(false);
      expect(engine.status().reason).toContain(`rootless:dave: ${conf} sets driver "overlay", so vfs-containers under ${daveGraph()} are not read`);
    });

    it('reads the driver whose list changed last when a store has several, and says why', async () => {
      mkdirSync(join(daveGraph(), 'overlay-containers'));
      const stale = join(daveGraph(), 'overlay-containers/containers.json');
      writeFileSync(stale, JSON.stringify([{ id: 'f'.repeat(64), names: ['croot-fx-old-driver'] }]));
      utimesSync(stale, new Date(Date.now() - 3600e3), new Date(Date.now() - 3600e3));
      const engine = engineFor(root, env);
      const records = await engine.containers();
      expect(byId(records, VFS_RUN).running).toBe(true);
      expect(records.some((r) => r.id === 'f'.repeat(64))).toBe(false);
      expect(engine.status().reason).toContain(`rootless:dave: container lists of several graph drivers (overlay, vfs) under ${daveGraph()}`);
    });

    it('resolves a vfs store\'s container by its name and its <user>/ name and refuses the created one', async () => {
      const container = createCrootContainer({ config: { env, procRoot: join(root, 'proc') }, modules: [podmanEngineModule] });
      const resolver = container.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
      const pid = Number(readFileSync(join(root, 'run-user/1003/containers/vfs-containers', VFS_RUN, 'userdata/pidfile'), 'utf8'));
      await expect(settle(() => resolver.resolveProcessId('croot-fx-rl'))).resolves.toBe(pid);
      await expect(settle(() => resolver.resolveProcessId('dave/croot-fx-rl'))).resolves.toBe(pid);
      await expect(settle(() => resolver.resolveProcessId('dave/croot-fx-rl-idle'))).rejects.toMatchObject({ code: 'ERR_NOT_RUNNING' });
    });
  });

  describe('index', () => {
    it('returns the same frozen array while nothing changed', async () => {
      const engine = engineFor(root, env);
      const first = await engine.containers();
      expect(Object.isFrozen(first)).toBe(true);
      expect(await engine.containers()).toBe(first);
    });

    it('does not look at the files again within the check interval', async () => {
      const engine = engineFor(root, env, 60000);
      const first = await engine.containers();
      rmSync(join(root, 'rootful/storage/overlay-containers/containers.json'));
      expect(await engine.containers()).toBe(first);
    });

    it('picks up a renamed container once containers.json changes', async () => {
      const engine = engineFor(root, env);
      const first = await engine.containers();
      const file = join(root, 'rootful/storage/overlay-containers/containers.json');
      const list = JSON.parse(readFileSync(file, 'utf8')) as { id: string; names: string[] }[];
      (list.find((e) => e.id === RUN) as { names: string[] }).names = ['croot-fx-renamed'];
      writeFileSync(file, JSON.stringify(list));
      const second = await engine.containers();
      expect(second).not.toBe(first);
      expect(byId(second, RUN).names).toEqual(['croot-fx-renamed']);
    });

    it('notices a running container\'s PID going away', async () => {
      const engine = engineFor(root, env);
      const pid = byId(await engine.containers(), RUN).pid as number;
      rmSync(join(root, 'proc', String(pid)), { recursive: true });
      expect(byId(await engine.containers(), RUN).running).toBe(false);
    });
  });

  describe('.status', () => {
    it('names the files it read', async () => {
      const engine = engineFor(root, env);
      await engine.containers();
      const status = engine.status();
      expect(status.available).toBe(true);
      expect(status.reason).toContain(join(root, 'rootful/storage/overlay-containers/containers.json'));
      expect(status.reason).toContain('rootless:alice');
    });

    it('gives [] and the reason for an absent storage dir, and picks the store up when it appears', async () => {
      const data = join(root, 'later');
      const engine = engineFor(root, { ...env, PCP_PODMAN_DATADIR: data, CROOT_PODMAN_ROOTLESS: '0' });
      expect(await engine.containers()).toEqual([]);
      expect(engine.status()).toMatchObject({ available: false });
      expect(engine.status().reason).toContain(`${data}/overlay-containers/containers.json`);
      mkdirSync(join(data, 'overlay-containers'), { recursive: true });
      cpSync(join(root, 'rootful/storage/overlay-containers/containers.json'), join(data, 'overlay-containers/containers.json'));
      expect((await engine.containers()).map((r) => r.id)).toContain(RUN);
      expect(engine.status().available).toBe(true);
    });

    it('says why the API socket is not used', async () => {
      const engine = engineFor(root, { ...env, CROOT_PODMAN_SOCKET: join(root, 'no.sock') });
      await engine.containers();
      expect(engine.status().reason).toContain('no socket');
    });
  });

  describe('through the registry and resolvers', () => {
    it('resolves every name of a container to its PID and refuses a stopped one', async () => {
      const container = createCrootContainer({ config: { env, procRoot: join(root, 'proc') }, modules: [podmanEngineModule] });
      const resolver = container.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
      const pid = Number(readFileSync(join(root, 'rootful/run/overlay-containers', RUN, 'userdata/pidfile'), 'utf8'));
      await expect(settle(() => resolver.resolveProcessId('croot-fx-alias'))).resolves.toBe(pid);
      await expect(settle(() => resolver.resolveProcessId('podman:croot-fx-run'))).resolves.toBe(pid);
      const alicePid = Number(readFileSync(join(root, 'run-user/1000/containers/overlay-containers', ROOTLESS, 'userdata/pidfile'), 'utf8'));
      await expect(settle(() => resolver.resolveProcessId('alice/croot-fx-web'))).resolves.toBe(alicePid);
      await expect(settle(() => resolver.resolveProcessId('croot-fx-stopped'))).rejects.toMatchObject({ code: 'ERR_NOT_RUNNING' });
      await expect(settle(() => container.get<EngineRegistry>(EngineRegistry).lookup('croot-fx-nothing'))).rejects.toMatchObject({ code: 'ERR_NO_CONTAINER' });
    });
  });
});
