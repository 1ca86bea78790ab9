import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as containerd from '../engines/containerd/index.js';
import * as docker from '../engines/docker/index.js';
import * as lxc from '../engines/lxc/index.js';
import * as podman from '../engines/podman/index.js';
import { ENGINES, ENGINE_DEFAULT_PATHS, ENGINE_IDS, mayExist } from './engine-table.js';

describe('the engine table', () => {
  it('repeats the engines’ own default paths exactly', () => {
    expect(ENGINE_DEFAULT_PATHS).toEqual({
      docker: { dir: docker.DEFAULT_DOCKER_DIR, socket: docker.DEFAULT_DOCKER_SOCKET },
      podman: {
        dataDir: podman.DEFAULT_PODMAN_DATADIR,
        runDir: podman.DEFAULT_PODMAN_RUNDIR,
        userRunRoot: podman.podmanPathsFrom({}).userRunRoot,
        storageConfs: [...podman.DEFAULT_CONTAINERS_STORAGE_CONFS],
      },
      containerd: { taskDir: containerd.DEFAULT_CONTAINERD_TASK_DIR, mobyNamespace: containerd.MOBY_NAMESPACE },
      lxc: { dir: lxc.DEFAULT_LXC_DIR },
    });
  });

  it('loads each engine’s own module, whose engine has the table’s id', () => {
    expect(ENGINE_IDS).toEqual(['docker', 'podman', 'containerd', 'lxc', 'static']);
    expect(ENGINES.find((e) => e.id === 'docker')?.load()).toBe(docker.dockerEngineModule);
    expect(ENGINES.find((e) => e.id === 'lxc')?.load()).toBe(lxc.lxcEngineModule);
  });

  describe('sources probes', () => {
    let empty: string;
    beforeAll(() => {
      empty = mkdtempSync(join(tmpdir(), 'croot-t-table-'));
    });
    afterAll(() => rmSync(empty, { recursive: true, force: true }));

    /** An environment pointing every engine at folders that do not exist. */
    const nowhere = (): Record<string, string> => ({
      HOME: empty,
      PCP_DOCKER_DIR: join(empty, 'docker'),
      PCP_PODMAN_DATADIR: join(empty, 'storage'),
      PCP_PODMAN_RUNDIR: join(empty, 'run'),
      CROOT_PODMAN_USER_RUNDIR: join(empty, 'run-user'),
      CROOT_CONTAINERS_STORAGE_CONF: '',
      CROOT_CONTAINERD_TASK_DIR: join(empty, 'tasks'),
      PCP_LXC_DIR: join(empty, 'lxc'),
    });

    it('finds no source where the environment points at nothing, and says where it looked', () => {
      // Docker's socket path is fixed unless DOCKER_HOST names another: it counts when this host has it.
      const dockerSocket = existsSync(docker.DEFAULT_DOCKER_SOCKET);
      for (const engine of ENGINES) {
        const why = engine.absent({ env: nowhere(), declaredContainers: 0 });
        // The static engine is always loaded: it reads only the config file.
        const present = (engine.id === 'docker' && dockerSocket) || engine.id === 'static';
        const expected = present ? undefined : expect.stringMatching(/^not loaded: none of/);
        expect([engine.id, why]).toEqual([engine.id, expected]);
      }
    });

    it('takes an engine as present when one of its paths exists, or when its daemon is named', () => {
      const env = { ...nowhere(), PCP_LXC_DIR: empty };
      expect(ENGINES.find((e) => e.id === 'lxc')?.absent({ env, declaredContainers: 0 })).toBeUndefined();
      expect(ENGINES.find((e) => e.id === 'docker')?.absent({ env: { ...nowhere(), DOCKER_HOST: 'tcp://127.0.0.1:1' }, declaredContainers: 0 })).toBeUndefined();
      expect(ENGINES.find((e) => e.id === 'static')?.absent({ env: nowhere(), declaredContainers: 0 })).toBeUndefined();
    });

    it('says an LXC folder holds nothing only while it is empty', () => {
      const lxc = ENGINES.find((e) => e.id === 'lxc');
      const dir = join(empty, 'lxc-holding');
      mkdirSync(dir);
      const facts = { env: { ...nowhere(), PCP_LXC_DIR: dir }, declaredContainers: 0 };
      expect(lxc?.holdsNone?.(facts)).toBe(`not loaded: ${dir} is empty`);
      mkdirSync(join(dir, 'web'));
      expect(lxc?.holdsNone?.(facts)).toBeUndefined();
    });

    it('says containerd holds nothing while no namespace but Docker’s has a task', () => {
      const ctr = ENGINES.find((e) => e.id === 'containerd');
      const root = join(empty, 'tasks-holding');
      mkdirSync(join(root, 'default'), { recursive: true });
      mkdirSync(join(root, containerd.MOBY_NAMESPACE, 'a'.repeat(64)), { recursive: true });
      const facts = { env: { ...nowhere(), CROOT_CONTAINERD_TASK_DIR: root }, declaredContainers: 0 };
      expect(ctr?.holdsNone?.(facts)).toMatch(/^not loaded: no task in /);
      mkdirSync(join(root, 'default', 'web'));
      expect(ctr?.holdsNone?.(facts)).toBeUndefined();
    });

    it('says the static engine holds nothing only when the config declares no container', () => {
      const stat = ENGINES.find((e) => e.id === 'static');
      expect(stat?.holdsNone?.({ env: nowhere(), declaredContainers: 0 })).toBe('not loaded: the config file declares no container');
      expect(stat?.holdsNone?.({ env: nowhere(), declaredContainers: 1 })).toBeUndefined();
    });

    it('tells a path that is not there (or under a missing folder) from one that is', () => {
      expect(mayExist(empty)).toBe(true);
      expect(mayExist(join(empty, 'missing'))).toBe(false);
      expect(mayExist(join(empty, 'missing', 'deeper'))).toBe(false);
    });
  });
});
