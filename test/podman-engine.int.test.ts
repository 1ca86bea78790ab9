/**
 * The Podman engine against real rootful podman containers: every answer is
 * compared with `podman inspect` and the host's /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createCrootContainer } from '../core/create-container.js';
import { EngineRegistry } from '../core/engine-registry.js';
import { ContainerCGroupResolver, ContainerProcessIdResolver } from '../core/resolvers.js';
import { podmanEngineModule } from '../engines/podman/index.js';
import { describeWith, probes, run } from './support/components.js';

const IMAGE = 'localhost/croot-test:latest';
const LIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];

/** The host's own answer: the unified line unless it is `/`, else memory, else name=systemd. */
function cgroupTruth(pid: number): string {
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n').map((l) => l.split(':'));
  const pick = (f: (l: string[]) => boolean): string | undefined => {
    const path = lines.find(f)?.slice(2).join(':');
    return path && path !== '/' ? path : undefined;
  };
  const path = pick((l) => l[0] === '0' && l[1] === '') ?? pick((l) => (l[1] ?? '').split(',').includes('memory')) ?? pick((l) => l[1] === 'name=systemd');
  return (path ?? '').replace(/^\/+/, '');
}

function ensureImage(): void {
  try {
    run('podman', ['image', 'exists', IMAGE]);
  } catch {
    run('sh', ['-c', `d=$(mktemp -d) && mkdir -p $d/bin && cp /bin/busybox $d/bin/ && for c in sh sleep hostname cat; do ln -sf busybox $d/bin/$c; done && tar -C $d -c . | podman import - ${IMAGE} && rm -rf $d`]);
  }
}

function inspectPid(name: string): number {
  return Number(run('podman', ['inspect', '-f', '{{.State.Pid}}', name]));
}

describeWith('podman', probes.podman, 'PodmanEngine with real rootful podman', () => {
  const tag = randomBytes(4).toString('hex');
  const web = `croot-t-${tag}-web`;
  const db = `croot-t-${tag}-db`;
  const idle = `croot-t-${tag}-idle`;
  const created: string[] = [];

  beforeAll(() => {
    ensureImage();
    run('podman', ['run', '-d', ...LIMITS, '--name', web, '--hostname', `${web}-host`, IMAGE, 'sleep', '100000']);
    created.push(web);
    run('podman', ['run', '-d', ...LIMITS, '--name', db, IMAGE, 'sleep', '100000']);
    created.push(db);
    run('podman', ['create', ...LIMITS, '--name', idle, IMAGE, 'sleep', '100000']);
    created.push(idle);
  }, 120000);

  afterAll(() => {
    if (created.length > 0) run('podman', ['rm', '-f', '-t', '0', ...created], 120000);
  }, 120000);

  function croot(env: Record<string, string | undefined> = { ...process.env }) {
    const container = createCrootContainer({ config: { env, procRoot: '/proc' }, modules: [podmanEngineModule] });
    return {
      registry: container.get<EngineRegistry>(EngineRegistry),
      pids: container.get<ContainerProcessIdResolver>(ContainerProcessIdResolver),
      cgroups: container.get<ContainerCGroupResolver>(ContainerCGroupResolver),
    };
  }

  it('gives every running container the PID podman inspect reports, by name and by id', async () => {
    const { pids } = croot();
    for (const name of [web, db]) {
      const expected = inspectPid(name);
      expect(expected).toBeGreaterThan(0);
      await expect(pids.resolveProcessId(name)).resolves.toBe(expected);
      await expect(pids.resolveProcessId(`podman:${run('podman', ['inspect', '-f', '{{.Id}}', name])}`)).resolves.toBe(expected);
    }
  });

  it('gives the cgroup the host\'s /proc/PID/cgroup shows', async () => {
    const { cgroups } = croot();
    const answer = await cgroups.resolveCGroupName(web);
    expect(answer.pid).toBe(inspectPid(web));
    expect(answer.value).toBe(cgroupTruth(answer.pid));
    expect(answer.value).toContain(run('podman', ['inspect', '-f', '{{.Id}}', web]));
  });

  it('records the hostname podman configured', async () => {
    const record = await croot().registry.lookup(web);
    expect(record.hostname).toBe(run('podman', ['inspect', '-f', '{{.Config.Hostname}}', web]));
  });

  it('refuses a created container that never ran with ERR_NOT_RUNNING', async () => {
    await expect(croot().pids.resolveProcessId(idle)).rejects.toMatchObject({ code: 'ERR_NOT_RUNNING' });
  });

  it('refuses a container stopped after the index was built with ERR_NOT_RUNNING', async () => {
    const { pids } = croot();
    await expect(pids.resolveProcessId(db)).resolves.toBe(inspectPid(db));
    run('podman', ['stop', '-t', '0', db], 60000);
    await expect(pids.resolveProcessId(db)).rejects.toMatchObject({ code: 'ERR_NOT_RUNNING' });
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
      await expect(pids.resolveProcessId(web)).resolves.toBe(inspectPid(web));
      expect((await registry.lookup(web)).source).toBe('api');
      expect(registry.statuses()[0]?.reason).toContain(`API at ${socket}`);
      await expect(pids.resolveProcessId(idle)).rejects.toMatchObject({ code: 'ERR_NOT_RUNNING' });
    });
  });
});
