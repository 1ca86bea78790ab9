/**
 * The Podman engine against real rootful podman containers, with the native
 * module as crootd has it (inotify, pidfds): the first load, then every
 * change podman makes followed by the index; every answer is compared with
 * `podman inspect` and the host's /proc.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nativeModule } from '../native/native-module.js';
import { podmanEngineModule } from '../engines/podman/index.js';
import { describeWith, probes, run } from './support/components.js';
import { cgroupTruth, ensurePodmanImage, podmanInspect, podmanRun, removePodmanContainers } from './support/engine-containers.js';
import { engineResolvers, type EngineResolvers } from './support/engine-resolvers.js';
import { codeOf, settle } from './support/outcomes.js';
import { followLifecycle } from './support/podman-lifecycle.js';

function inspectPid(name: string): number {
  return Number(podmanInspect(name, '{{.State.Pid}}'));
}

function probe(): string | undefined {
  return probes.podman() ?? probes.native();
}

describeWith('podman and the native module', probe, 'PodmanEngine with real rootful podman', () => {
  const tag = randomBytes(4).toString('hex');
  const web = `croot-t-${tag}-web`;
  const idle = `croot-t-${tag}-idle`;
  const created: string[] = [];
  let croot: EngineResolvers;

  beforeAll(async () => {
    ensurePodmanImage();
    podmanRun(web, { hostname: `${web}-host` }, created);
    podmanRun(idle, { createOnly: true }, created);
    croot = engineResolvers([nativeModule, podmanEngineModule]);
    await croot.registry.start();
    await croot.registry.ready();
  }, 120000);

  afterAll(async () => {
    await croot?.registry.stop();
    removePodmanContainers(created);
  }, 120000);

  describe('the first load', () => {
    it('gives a running container the PID podman inspect reports, by name, id and id prefix', () => {
      const pid = inspectPid(web);
      const id = podmanInspect(web, '{{.Id}}');
      expect(pid).toBeGreaterThan(0);
      for (const ref of [web, `podman:${web}`, `podman.${web}`, id, id.slice(0, 12)]) expect([ref, croot.pids.resolveProcessId(ref)]).toEqual([ref, pid]);
    });

    it('gives the cgroup the host\'s /proc/PID/cgroup shows', async () => {
      const answer = await croot.cgroups.resolveCGroupName(web);
      expect(answer.pid).toBe(inspectPid(web));
      expect(answer.value).toBe(cgroupTruth(answer.pid));
      expect(answer.value).toContain(podmanInspect(web, '{{.Id}}'));
    });

    it('records the hostname and the state podman reports', async () => {
      const record = await croot.registry.lookup(web);
      expect({ hostname: record.hostname, state: record.state, source: record.source }).toEqual({
        hostname: podmanInspect(web, '{{.Config.Hostname}}'),
        state: podmanInspect(web, '{{.State.Status}}'),
        source: 'rootful',
      });
    });

    it('refuses a created container that never ran with ERR_NOT_RUNNING, and records it as podman does', async () => {
      expect(await codeOf(() => croot.pids.resolveProcessId(idle))).toBe('ERR_NOT_RUNNING');
      expect((await croot.registry.lookup(idle)).state).toBe(podmanInspect(idle, '{{.State.Status}}'));
    });
  });

  it('follows create, start, stop, start, restart, rename and remove as podman does them', async () => {
    await followLifecycle({
      registry: croot.registry,
      pids: croot.pids,
      podman: (args) => run('podman', args),
      name: `croot-t-${tag}-life`,
      renamed: `croot-t-${tag}-life2`,
      created,
      namesOf: (name) => [name],
    });
  }, 180000);

  describe('with a socket that accepts and never answers where the API once was read', () => {
    let server: Server;
    let socketPath: string;
    const connections: Socket[] = [];

    beforeAll(async () => {
      socketPath = join(tmpdir(), `croot-t-${tag}-silent.sock`);
      server = createServer((socket) => connections.push(socket));
      await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    });

    afterAll(async () => {
      for (const s of connections) s.destroy();
      await new Promise((resolve) => server.close(resolve));
      rmSync(socketPath, { force: true });
    });

    it('loads and answers from disk without ever connecting to it', async () => {
      const other = engineResolvers([nativeModule, podmanEngineModule], { ...process.env, CROOT_PODMAN_SOCKET: socketPath });
      try {
        await other.registry.start();
        await other.registry.ready();
        expect(await settle(() => other.pids.resolveProcessId(web))).toBe(inspectPid(web));
        expect(other.registry.statuses()[0]).toMatchObject({ engine: 'podman', available: true });
        expect(connections).toHaveLength(0);
      } finally {
        await other.registry.stop();
      }
    });
  });
});
