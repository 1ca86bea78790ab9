/**
 * The containerd engine against real `ctr` tasks in the `default` and
 * `k8s.io` namespaces: every PID is compared with `ctr task ls`, every
 * cgroup with the host's /proc.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createCrootContainer } from '../core/create-container.js';
import { EngineRegistry } from '../core/engine-registry.js';
import { ContainerCGroupResolver, ContainerProcessIdResolver } from '../core/resolvers.js';
import { containerdEngineModule } from '../engines/containerd/index.js';
import { describeWith, probes, run } from './support/components.js';

const IMAGE = 'docker.io/library/croot-test:latest';

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

/** PID column of `ctr -n NS task ls` for one task. */
function taskPid(ns: string, id: string): number {
  const line = run('ctr', ['-n', ns, 'task', 'ls']).split('\n').slice(1).map((l) => l.trim().split(/\s+/)).find((f) => f[0] === id);
  if (line === undefined) throw new Error(`ctr -n ${ns} task ls has no ${id}`);
  return Number(line[1]);
}

/** The image in `ns`, copied from `default` (where the testbed imports it) when missing. */
function ensureImage(ns: string): void {
  if (run('ctr', ['-n', ns, 'images', 'ls', '-q']).split('\n').includes(IMAGE)) return;
  run('sh', ['-c', `t=$(mktemp) && ctr -n default images export "$t" ${IMAGE} && ctr -n ${ns} images import "$t"; rc=$?; rm -f "$t"; exit $rc`], 120000);
}

describeWith('containerd', probes.containerd, 'ContainerdEngine with real ctr tasks', () => {
  const tag = randomBytes(4).toString('hex');
  const plain = `croot-t-${tag}-ctr`;
  const stopped = `croot-t-${tag}-gone`;
  const sandbox = `croot-t-${tag}-sbx`;
  const app = `croot-t-${tag}-app`;
  const pod = `shop-${tag}`;
  const created: [string, string][] = [];

  function start(ns: string, id: string, annotations: Record<string, string> = {}): void {
    const flags = Object.entries(annotations).flatMap(([k, v]) => ['--annotation', `${k}=${v}`]);
    run('ctr', ['-n', ns, 'run', '-d', ...flags, IMAGE, id, 'sleep', '100000']);
    created.push([ns, id]);
  }

  beforeAll(() => {
    ensureImage('default');
    ensureImage('k8s.io');
    start('default', plain);
    start('default', stopped);
    const pod_ = {
      'io.kubernetes.cri.sandbox-name': pod,
      'io.kubernetes.cri.sandbox-namespace': 'prod',
      'io.kubernetes.cri.sandbox-id': sandbox,
    };
    start('k8s.io', sandbox, { ...pod_, 'io.kubernetes.cri.container-type': 'sandbox' });
    start('k8s.io', app, { ...pod_, 'io.kubernetes.cri.container-type': 'container', 'io.kubernetes.cri.container-name': 'app' });
    run('ctr', ['-n', 'default', 'task', 'kill', '-s', 'KILL', stopped]);
    for (let i = 0; i < 50 && !/STOPPED/.test(run('ctr', ['-n', 'default', 'task', 'ls'])); i++) run('sleep', ['0.1']);
  }, 180000);

  afterAll(() => {
    for (const [ns, id] of created) {
      try {
        run('ctr', ['-n', ns, 'task', 'kill', '-s', 'KILL', id]);
      } catch {
        // already stopped
      }
    }
    for (const [ns, id] of created) {
      for (let i = 0; i < 50; i++) {
        try {
          run('ctr', ['-n', ns, 'task', 'rm', id]);
          break;
        } catch (err) {
          if (!/running|not stopped/i.test(String((err as { stderr?: unknown }).stderr ?? err))) break;
          run('sleep', ['0.1']);
        }
      }
      run('ctr', ['-n', ns, 'container', 'rm', id]);
    }
  }, 180000);

  function croot() {
    const container = createCrootContainer({ config: { env: { ...process.env }, procRoot: '/proc' }, modules: [containerdEngineModule] });
    return {
      registry: container.get<EngineRegistry>(EngineRegistry),
      pids: container.get<ContainerProcessIdResolver>(ContainerProcessIdResolver),
      cgroups: container.get<ContainerCGroupResolver>(ContainerCGroupResolver),
    };
  }

  it('resolves <namespace>/<id> to the PID ctr task ls shows', async () => {
    const { pids } = croot();
    await expect(pids.resolveProcessId(`default/${plain}`)).resolves.toBe(taskPid('default', plain));
    await expect(pids.resolveProcessId(`k8s.io/${app}`)).resolves.toBe(taskPid('k8s.io', app));
    await expect(pids.resolveProcessId(`containerd:${plain}`)).resolves.toBe(taskPid('default', plain));
  });

  it('resolves a Kubernetes container by <pod-namespace>/<pod>/<container>', async () => {
    await expect(croot().pids.resolveProcessId(`prod/${pod}/app`)).resolves.toBe(taskPid('k8s.io', app));
  });

  it('leaves the CRI sandbox out', async () => {
    expect(taskPid('k8s.io', sandbox)).toBeGreaterThan(0);
    const { registry } = croot();
    expect((await registry.containers()).map((r) => r.id)).not.toContain(sandbox);
    await expect(registry.lookup(`k8s.io/${sandbox}`)).rejects.toMatchObject({ code: 'ERR_NO_CONTAINER' });
  });

  it('gives the cgroup the host\'s /proc/PID/cgroup shows', async () => {
    const { cgroups } = croot();
    for (const ref of [`default/${plain}`, `prod/${pod}/app`]) {
      const answer = await cgroups.resolveCGroupName(ref);
      expect(answer.value).toBe(cgroupTruth(answer.pid));
      expect(answer.value).toContain(answer.container.id);
    }
  });

  it('records runc\'s start time of the init PID', async () => {
    const record = await croot().registry.lookup(`default/${plain}`);
    const stat = readFileSync(`/proc/${taskPid('default', plain)}/stat`, 'utf8');
    expect(record.pidStartTime).toBe(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]));
  });

  it('refuses a stopped task with ERR_NOT_RUNNING', async () => {
    await expect(croot().pids.resolveProcessId(`default/${stopped}`)).rejects.toMatchObject({ code: 'ERR_NOT_RUNNING' });
  });

  it('says which task root it reads', async () => {
    const { registry } = croot();
    await registry.containers();
    expect(registry.statuses()[0]).toMatchObject({ engine: 'containerd', available: true });
    expect(registry.statuses()[0]?.reason).toContain('/run/containerd/io.containerd.runtime.v2.task');
  });
});
