import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCrootContainer } from '../../core/create-container.js';
import type { ContainerRecord } from '../../core/engine.js';
import { EngineRegistry } from '../../core/engine-registry.js';
import { ContainerProcessIdResolver } from '../../core/resolvers.js';
import { parseStartTime } from '../../core/proc.js';
import { PodmanEngine, PodmanEngineOptions } from './podman-engine.js';
import { podmanEngineModule } from './podman-engine-module.js';
import { ContainerModule } from 'inversify';

const FIXTURE = join(__dirname, '..', '..', 'test', 'fixtures', 'podman');
const RUN = 'be36a965cb4803f38194ce0ee329956f4c53254d81f5cdd5f9ef5a8722fe788b';
const STOPPED = '939b9b57d4ac2c87f0b9b8bc5c5834146182ac8a09078cd174201074f7577660';
const EXITED = 'a52aeab458e9acaf88ca5405749696e6bdeb4c65c52a9f026bced97833cff7bf';
const VOLATILE = '583c8334f046c80cbfdf19da10b00d7d19a7d1eff79ac05d2beb45c56b1b37af';
const ROOTLESS = '4a5bb220b9332a1ac0905130eb5639c7bd2cace134614cc5eb60b3f8e5d83e39';

/** A private copy of the fixture tree (tests change files in it) and the env pointing at it. */
function fixtureTree(): { root: string; env: Record<string, string> } {
  const root = mkdtempSync(join(tmpdir(), 'croot-podman-'));
  cpSync(FIXTURE, root, { recursive: true });
  const passwd = join(root, 'passwd');
  writeFileSync(passwd, readFileSync(passwd, 'utf8').replaceAll('@ROOT@', root));
  return {
    root,
    env: {
      PCP_PODMAN_DATADIR: join(root, 'rootful', 'storage'),
      PCP_PODMAN_RUNDIR: join(root, 'rootful', 'run'),
      CROOT_PODMAN_SOCKET: '',
      CROOT_PASSWD_FILE: passwd,
      CROOT_PODMAN_USER_RUNDIR: join(root, 'run-user'),
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

function byId(records: readonly ContainerRecord[], id: string): ContainerRecord {
  const r = records.find((c) => c.id === id);
  if (r === undefined) throw new Error(`no record ${id}`);
  return r;
}

function statStart(root: string, pid: number): number | undefined {
  return parseStartTime(readFileSync(join(root, 'proc', String(pid), 'stat'), 'utf8'));
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

  describe('rootless stores', () => {
    it('finds a user\'s store through the passwd home and names its containers with and without the user', async () => {
      const r = byId(await engineFor(root, env).containers(), ROOTLESS);
      expect(r).toMatchObject({ source: 'rootless:alice', running: true, names: ['croot-fx-web', 'alice/croot-fx-web'], hostname: 'web-host' });
    });

    it('reads no rootless store when rootless scanning is off', async () => {
      const records = await engineFor(root, { ...env, CROOT_PODMAN_ROOTLESS: '0' }).containers();
      expect(records.some((r) => r.id === ROOTLESS)).toBe(false);
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
      await expect(resolver.resolveProcessId('croot-fx-alias')).resolves.toBe(pid);
      await expect(resolver.resolveProcessId('podman:croot-fx-run')).resolves.toBe(pid);
      await expect(resolver.resolveProcessId('alice/croot-fx-web')).resolves.toBeGreaterThan(0);
      await expect(resolver.resolveProcessId('croot-fx-stopped')).rejects.toMatchObject({ code: 'ERR_NOT_RUNNING' });
      await expect(container.get<EngineRegistry>(EngineRegistry).lookup('croot-fx-nothing')).rejects.toMatchObject({ code: 'ERR_NO_CONTAINER' });
    });
  });
});
