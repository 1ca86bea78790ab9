/**
 * The containerd engine against real `ctr` tasks in the `default` and
 * `k8s.io` namespaces: every PID is compared with `ctr task ls`, every
 * cgroup with the host's /proc.
 */
import { settle } from './support/outcomes.js';
import { randomBytes } from 'node:crypto';
import { containerdEngineModule } from '../engines/containerd/index.js';
import { describeWith, probes, run } from './support/components.js';
import { cgroupTruth, ctrRun, ctrTaskPid, ensureCtrImage, removeCtrContainers, type CtrContainer } from './support/engine-containers.js';
import { engineResolvers } from './support/engine-resolvers.js';
import { startTimeOf } from './support/processes.js';

/** PID column of `ctr -n NS task ls` for one task; throws when it has none. */
function taskPid(namespace: string, id: string): number {
  const pid = ctrTaskPid({ namespace, id });
  if (pid === undefined) throw new Error(`ctr -n ${namespace} task ls has no ${id}`);
  return pid;
}

describeWith('containerd', probes.containerd, 'ContainerdEngine with real ctr tasks', () => {
  const tag = randomBytes(4).toString('hex');
  const plain = `croot-t-${tag}-ctr`;
  const stopped = `croot-t-${tag}-gone`;
  const sandbox = `croot-t-${tag}-sbx`;
  const app = `croot-t-${tag}-app`;
  const pod = `shop-${tag}`;
  const created: CtrContainer[] = [];

  function start(namespace: string, id: string, annotations: Record<string, string> = {}): void {
    ctrRun({ namespace, id }, { annotations }, created);
  }

  beforeAll(() => {
    ensureCtrImage('default');
    ensureCtrImage('k8s.io');
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

  afterAll(() => removeCtrContainers(created), 180000);

  const croot = () => engineResolvers([containerdEngineModule]);

  it('resolves <namespace>/<id> to the PID ctr task ls shows', async () => {
    const { pids } = croot();
    await expect(settle(() => pids.resolveProcessId(`default/${plain}`))).resolves.toBe(taskPid('default', plain));
    await expect(settle(() => pids.resolveProcessId(`k8s.io/${app}`))).resolves.toBe(taskPid('k8s.io', app));
    await expect(settle(() => pids.resolveProcessId(`containerd:${plain}`))).resolves.toBe(taskPid('default', plain));
  });

  it('resolves a Kubernetes container by <pod-namespace>/<pod>/<container>', async () => {
    await expect(settle(() => croot().pids.resolveProcessId(`prod/${pod}/app`))).resolves.toBe(taskPid('k8s.io', app));
  });

  it('leaves the CRI sandbox out', async () => {
    expect(taskPid('k8s.io', sandbox)).toBeGreaterThan(0);
    const { registry } = croot();
    expect((await registry.start(), await registry.ready(), registry.containers()).map((r) => r.id)).not.toContain(sandbox);
    await expect(settle(() => registry.lookup(`k8s.io/${sandbox}`))).rejects.toMatchObject({ code: 'ERR_NO_CONTAINER' });
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
    expect(record.pidStartTime).toBe(startTimeOf(taskPid('default', plain)));
  });

  it('refuses a stopped task with ERR_NOT_RUNNING', async () => {
    await expect(settle(() => croot().pids.resolveProcessId(`default/${stopped}`))).rejects.toMatchObject({ code: 'ERR_NOT_RUNNING' });
  });

  it('says which task root it reads', async () => {
    const { registry } = croot();
    await registry.start();
    await registry.ready();
    expect(registry.statuses()[0]).toMatchObject({ engine: 'containerd', available: true });
    expect(registry.statuses()[0]?.reason).toContain('/run/containerd/io.containerd.runtime.v2.task');
  });
});
