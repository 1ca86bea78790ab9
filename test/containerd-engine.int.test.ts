/**
 * The containerd engine against real `ctr` tasks in `default`, `k8s.io` (with
 * the CRI's annotations) and a namespace of the test's own. One croot (the
 * native module's inotify watcher and pidfds, as crootd runs) is started
 * before the containers, so everything it knows of them came from its change
 * signals. Values are checked against `ctr task ls`, `ctr c info` and the
 * host's /proc.
 */
import { randomBytes } from 'node:crypto';
import { rmdirSync } from 'node:fs';
import { createCrootContainer } from '../core/create-container.js';
import { EngineRegistry, EngineRegistryOptions, type IndexedContainer } from '../core/registry/engine-registry.js';
import { ContainerProcessIdResolver } from '../core/registry/container-resolvers.js';
import { containerdEngineModule } from '../engines/containerd/index.js';
import { nativeModule } from '../native/native-module.js';
import { describeWith, probes, run } from './support/components.js';
import { CTR_IMAGE, cgroupTruth, ctrRun, ctrTaskPid, ensureCtrImage, removeCtrContainers, type CtrContainer } from './support/engine-containers.js';
import { codeOf, eventually, settle } from './support/outcomes.js';
import { pmcdAcceptsContainerName } from './support/pcp-container-name.js';
import { startTimeOf } from './support/processes.js';

function probe(): string | undefined {
  return probes.root() ?? probes.containerd() ?? probes.native();
}

/** PID column of `ctr -n NS task ls` for one task; throws when it has none. */
function taskPid(namespace: string, id: string): number {
  const pid = ctrTaskPid({ namespace, id });
  if (pid === undefined) throw new Error(`ctr -n ${namespace} task ls has no ${id}`);
  return pid;
}

/** STATUS column of `ctr -n NS task ls` for one task; undefined when it has none. */
function taskStatus(namespace: string, id: string): string | undefined {
  return run('ctr', ['-n', namespace, 'task', 'ls'])
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .find((f) => f[0] === id)?.[2];
}

/** The OCI annotations `ctr c info` shows for a container. */
function annotations(namespace: string, id: string): Record<string, string> {
  const info = JSON.parse(run('ctr', ['-n', namespace, 'c', 'info', id])) as { Spec?: { annotations?: Record<string, string> } };
  return info.Spec?.annotations ?? {};
}

describeWith('root, containerd (ctr) and croot’s native module', probe, 'ContainerdEngine with real ctr tasks', () => {
  const tag = randomBytes(4).toString('hex');
  const plain = `croot-t-${tag}-ctr`;
  const later = `croot-t-${tag}-later`;
  const twin = `croot-t-${tag}-twin`;
  const sandbox = `croot-t-${tag}-sbx`;
  const app = `croot-t-${tag}-app`;
  const pod = `shop-${tag}`;
  const ownNamespace = `croot-t-${tag}`;
  const created: CtrContainer[] = [];
  let registry: EngineRegistry;
  let pids: ContainerProcessIdResolver;

  function lookup(ref: string): Promise<IndexedContainer> {
    return settle(() => registry.lookup(ref));
  }

  /** Waits until `ref` resolves to a running container whose PID is `pid`. */
  function followed(ref: string, pid: number): Promise<IndexedContainer> {
    return eventually(async () => {
      const c = await lookup(ref).catch(() => undefined);
      return c !== undefined && c.liveness === 'running' && c.pid === pid ? c : undefined;
    }, 20000);
  }

  beforeAll(async () => {
    ensureCtrImage('default');
    ensureCtrImage('k8s.io');
    const c = createCrootContainer({ config: { env: { ...process.env }, procRoot: '/proc' }, modules: [nativeModule, containerdEngineModule] });
    // No safety-net pass during the test: what the index shows came from the change signals.
    c.bind<EngineRegistryOptions>(EngineRegistryOptions).toConstantValue({ recheckIntervalMs: 3600000 });
    registry = c.get<EngineRegistry>(EngineRegistry);
    pids = c.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
    await registry.start();
    await registry.ready();
  }, 180000);

  afterAll(async () => {
    await registry?.stop();
    removeCtrContainers(created);
    try {
      run('ctr', ['-n', ownNamespace, 'images', 'rm', CTR_IMAGE]);
    } catch {
      // never imported
    }
    try {
      run('ctr', ['namespaces', 'rm', ownNamespace]);
    } catch {
      // never created
    }
    // containerd leaves the namespace's empty folders behind; rmdir refuses anything not empty.
    for (const dir of [`/run/containerd/io.containerd.runtime.v2.task/${ownNamespace}`, `/run/containerd/runc/${ownNamespace}`]) {
      try {
        rmdirSync(dir);
      } catch {
        // absent, or not empty: leave it
      }
    }
  }, 180000);

  it('says which task root it reads', () => {
    const status = registry.statuses().find((s) => s.engine === 'containerd');
    expect(status).toMatchObject({ available: true });
    expect(status?.reason).toContain('/run/containerd/io.containerd.runtime.v2.task');
  });

  it('follows ctr run -d: the PID ctr task ls shows, runc’s start time and the cgroup the host’s /proc gives', async () => {
    ctrRun({ namespace: 'default', id: plain }, {}, created);
    const pid = taskPid('default', plain);
    const c = await followed(`default/${plain}`, pid);
    expect(c).toMatchObject({ id: `default/${plain}`, names: [`default/${plain}`, `default_${plain}`, plain], running: true });
    expect(c.pidStartTime).toBe(startTimeOf(pid));
    expect(c.cgroup).toBe(cgroupTruth(pid));
    for (const ref of [`default/${plain}`, `default_${plain}`, plain, `containerd:${plain}`, `containerd.${plain}`]) {
      expect([ref, await settle(() => pids.resolveProcessId(ref))]).toEqual([ref, pid]);
    }
  });

  it('does not list a container without a task (ctr c create), and follows ctr task start', async () => {
    created.push({ namespace: 'default', id: later });
    run('ctr', ['-n', 'default', 'c', 'create', CTR_IMAGE, later, 'sleep', '100000']);
    expect(run('ctr', ['-n', 'default', 'c', 'ls', '-q']).split('\n')).toContain(later);
    // A task started after the create is a marker: once croot shows it, it has seen everything before it.
    ctrRun({ namespace: 'default', id: twin }, {}, created);
    await followed(`default/${twin}`, taskPid('default', twin));
    expect(await codeOf(() => pids.resolveProcessId(`default/${later}`))).toBe('ERR_NO_CONTAINER');

    run('ctr', ['-n', 'default', 'task', 'start', '-d', later]);
    const pid = taskPid('default', later);
    const c = await followed(`default_${later}`, pid);
    expect(c.pidStartTime).toBe(startTimeOf(pid));
  });

  it('keeps one id in two namespaces apart: each namespaced spelling finds its own task, the bare id is ambiguous', async () => {
    ctrRun({ namespace: 'k8s.io', id: twin }, {}, created);
    const inK8s = taskPid('k8s.io', twin);
    await followed(`k8s.io_${twin}`, inK8s);
    expect(await settle(() => pids.resolveProcessId(`default_${twin}`))).toBe(taskPid('default', twin));
    expect(await settle(() => pids.resolveProcessId(`k8s.io/${twin}`))).toBe(inK8s);
    expect(await codeOf(() => pids.resolveProcessId(twin))).toBe('ERR_AMBIGUOUS_NAME');
  });

  it('names a CRI container by its pod, gives its Kubernetes names as ctr c info shows them, and leaves the sandbox out', async () => {
    const podAnnotations = {
      'io.kubernetes.cri.sandbox-name': pod,
      'io.kubernetes.cri.sandbox-namespace': 'prod',
      'io.kubernetes.cri.sandbox-id': sandbox,
    };
    ctrRun({ namespace: 'k8s.io', id: sandbox }, { annotations: { ...podAnnotations, 'io.kubernetes.cri.container-type': 'sandbox' } }, created);
    ctrRun(
      { namespace: 'k8s.io', id: app },
      { annotations: { ...podAnnotations, 'io.kubernetes.cri.container-type': 'container', 'io.kubernetes.cri.container-name': 'app' } },
      created,
    );
    const pid = taskPid('k8s.io', app);
    const c = await followed(`prod/${pod}/app`, pid);
    const a = annotations('k8s.io', app);
    expect(c.kubernetes).toEqual({
      namespace: a['io.kubernetes.cri.sandbox-namespace'],
      pod: a['io.kubernetes.cri.sandbox-name'],
      container: a['io.kubernetes.cri.container-name'],
    });
    expect(await settle(() => pids.resolveProcessId(`prod_${pod}_app`))).toBe(pid);
    expect(c.cgroup).toBe(cgroupTruth(pid));

    expect(taskStatus('k8s.io', sandbox)).toBe('RUNNING');
    expect(registry.containers().map((x) => x.id)).not.toContain(`k8s.io/${sandbox}`);
    expect(await codeOf(() => pids.resolveProcessId(`k8s.io/${sandbox}`))).toBe('ERR_NO_CONTAINER');
  });

  it('follows a task in a namespace created after croot started', async () => {
    ensureCtrImage(ownNamespace);
    ctrRun({ namespace: ownNamespace, id: plain }, {}, created);
    await followed(`${ownNamespace}_${plain}`, taskPid(ownNamespace, plain));
    expect(registry.statuses().find((s) => s.engine === 'containerd')?.reason).toContain(`${ownNamespace}: 1`);
  });

  it("gives each of the test's containers a name PCP's own rule lets through, and that name finds it", async () => {
    const ours = registry.containers().filter((c) => c.names.some((n) => n.includes(`croot-t-${tag}`) || n.includes(pod)));
    expect(ours.length).toBeGreaterThanOrEqual(5);
    const holders = (name: string): number => registry.containers().filter((x) => x.names.includes(name)).length;
    for (const c of ours) {
      const safe = c.names.filter(pmcdAcceptsContainerName);
      expect([c.id, safe.some((n) => holders(n) === 1)]).toEqual([c.id, true]);
      for (const name of safe) {
        // A bare id two namespaces share is refused as ambiguous; every other spelling finds its container.
        const found = await lookup(name).then((x) => x.id, (e: { code?: string }) => e.code);
        expect([name, found]).toEqual([name, holders(name) === 1 ? c.id : 'ERR_AMBIGUOUS_NAME']);
      }
    }
    for (const name of [`default_${plain}`, `prod_${pod}_app`, `containerd.${plain}`, `containerd.prod_${pod}_app`]) expect(pmcdAcceptsContainerName(name)).toBe(true);
    expect(await settle(() => pids.resolveProcessId(`containerd.prod_${pod}_app`))).toBe(taskPid('k8s.io', app));
  });

  it('follows ctr task kill: croot refuses the task once its init process is gone, as ctr task ls says STOPPED', async () => {
    const pid = taskPid('default', plain);
    run('ctr', ['-n', 'default', 'task', 'kill', '-s', 'KILL', plain]);
    await eventually(async () => ((await codeOf(() => pids.resolveProcessId(`default/${plain}`))) === 'ERR_NOT_RUNNING' ? true : undefined), 20000);
    await eventually(async () => (taskStatus('default', plain) === 'STOPPED' ? true : undefined), 20000);
    expect(startTimeOf(pid)).toBeUndefined();
    expect((await lookup(`default/${plain}`)).liveness).toBe('exited');
  });

  it('follows ctr task rm and ctr c rm: the container leaves the index', async () => {
    run('ctr', ['-n', 'default', 'task', 'rm', plain]);
    expect(taskStatus('default', plain)).toBeUndefined();
    await eventually(async () => ((await codeOf(() => pids.resolveProcessId(`default/${plain}`))) === 'ERR_NO_CONTAINER' ? true : undefined), 20000);
    run('ctr', ['-n', 'default', 'c', 'rm', plain]);
    expect(await codeOf(() => pids.resolveProcessId(`default_${plain}`))).toBe('ERR_NO_CONTAINER');
    // The same id in the test's own namespace is still there.
    expect(await settle(() => pids.resolveProcessId(`${ownNamespace}/${plain}`))).toBe(taskPid(ownNamespace, plain));
  });
});
