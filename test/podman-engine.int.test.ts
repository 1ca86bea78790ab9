/**
 * The Podman engine against real rootful podman containers: every answer is
 * compared with `podman inspect` and the host's /proc.
 */
import { settle } from './support/outcomes.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { podmanEngineModule } from '../engines/podman/index.js';
import { describeWith, probes, run } from './support/components.js';
import { cgroupTruth, ensurePodmanImage, podmanInspect, podmanRun, removePodmanContainers } from './support/engine-containers.js';
import { engineResolvers } from './support/engine-resolvers.js';

function inspectPid(name: string): number {
  return Number(podmanInspect(name, '{{.State.Pid}}'));
}

describeWith('podman', probes.podman, 'PodmanEngine with real rootful podman', () => {
  const tag = randomBytes(4).toString('hex');
  const web = `croot-t-${tag}-web`;
  const db = `croot-t-${tag}-db`;
  const idle = `croot-t-${tag}-idle`;
  const created: string[] = [];

  beforeAll(() => {
    ensurePodmanImage();
    podmanRun(web, { hostname: `${web}-host` }, created);
    podmanRun(db, {}, created);
    podmanRun(idle, { createOnly: true }, created);
  }, 120000);

  afterAll(() => removePodmanContainers(created), 120000);

  const croot = (env: Record<string, string | undefined> = { ...process.env }) => engineResolvers([podmanEngineModule], env);

  it('gives every running container the PID podman inspect reports, by name and by id', async () => {
    const { pids } = croot();
    for (const name of [web, db]) {
      const expected = inspectPid(name);
      expect(expected).toBeGreaterThan(0);
      await expect(settle(() => pids.resolveProcessId(name))).resolves.toBe(expected);
      await expect(settle(() => pids.resolveProcessId(`podman:${podmanInspect(name, '{{.Id}}')}`))).resolves.toBe(expected);
    }
  });

  it('gives the cgroup the host\'s /proc/PID/cgroup shows', async () => {
    const { cgroups } = croot();
    const answer = await cgroups.resolveCGroupName(web);
    expect(answer.pid).toBe(inspectPid(web));
    expect(answer.value).toBe(cgroupTruth(answer.pid));
    expect(answer.value).toContain(podmanInspect(web, '{{.Id}}'));
  });

  it('records the hostname podman configured', async () => {
    const record = await croot().registry.lookup(web);
    expect(record.hostname).toBe(podmanInspect(web, '{{.Config.Hostname}}'));
  });

  it('refuses a created container that never ran with ERR_NOT_RUNNING', async () => {
    await expect(settle(() => croot().pids.resolveProcessId(idle))).rejects.toMatchObject({ code: 'ERR_NOT_RUNNING' });
  });

  it('refuses a container stopped after the index was built with ERR_NOT_RUNNING', async () => {
    const { pids } = croot();
    await expect(settle(() => pids.resolveProcessId(db))).resolves.toBe(inspectPid(db));
    run('podman', ['stop', '-t', '0', db], 60000);
    await expect(settle(() => pids.resolveProcessId(db))).rejects.toMatchObject({ code: 'ERR_NOT_RUNNING' });
  });

  describe('through a podman system service API socket', () => {
    const socket = `/tmp/croot-t-${tag}.sock`;
    let service: ChildProcess | undefined;

    beforeAll(async () => {
      service = spawn('podman', ['system', 'service', '--time=0', `unix://${socket}`], { stdio: 'ignore' });
      for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 100));
    }, 30000);

    afterAll(async () => {
      if (service?.pid !== undefined && service.exitCode === null) {
        const exited = new Promise((r) => service?.once('exit', r));
        service.kill('SIGTERM');
        await exited;
      }
    }, 30000);

    it('answers from the API and still matches podman inspect', async () => {
      const { pids, registry } = croot({ ...process.env, CROOT_PODMAN_SOCKET: socket });
      await expect(settle(() => pids.resolveProcessId(web))).resolves.toBe(inspectPid(web));
      expect((await registry.lookup(web)).source).toBe('api');
      expect(registry.statuses()[0]?.reason).toContain(`API at ${socket}`);
      await expect(settle(() => pids.resolveProcessId(idle))).rejects.toMatchObject({ code: 'ERR_NOT_RUNNING' });
    });
  });
});
