import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Container } from 'inversify';
import { createCrootContainer } from '../../core/create-container.js';
import { EngineRegistry, EngineRegistryOptions, type IndexedContainer, type RegistryEvent } from '../../core/registry/engine-registry.js';
import { DirectoryWatcher, type DirectoryEvent } from '../../core/host/host-services.js';
import { NodeDirectoryWatcher } from '../../core/host/node-directory-watcher.js';
import { ContainerProcessIdResolver } from '../../core/registry/container-resolvers.js';
import { LossyWatcher } from '../../test/support/lossy-watcher.js';
import { RefusingWatcher } from '../../test/support/refusing-watcher.js';
import { pmcdAcceptsContainerName } from '../../test/support/pcp-container-name.js';
import { codeOf, eventually, settle } from '../../test/support/outcomes.js';
import { ContainerdEngine } from './containerd-engine.js';
import { containerdEngineModule } from './containerd-engine-module.js';
import { cgroupHintFrom } from './containerd-tasks.js';

const FIXTURE = join(__dirname, '..', '..', 'test', 'fixtures', 'containerd');
const DIGEST = 'c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0123456789';

/** A DirectoryWatcher that remembers which folders are watched now (a real NodeDirectoryWatcher underneath, or the one given). */
class CountingWatcher implements DirectoryWatcher {
  readonly active = new Map<string, number>();
  constructor(private readonly inner: DirectoryWatcher = new NodeDirectoryWatcher()) {}
  watch(dir: string, onEvent: (event: DirectoryEvent) => void): () => void {
    const end = this.inner.watch(dir, (event) => {
      if (event.kind === 'gone') this.drop(dir);
      onEvent(event);
    });
    this.active.set(dir, (this.active.get(dir) ?? 0) + 1);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.drop(dir);
      end();
    };
  }
  private drop(dir: string): void {
    const n = (this.active.get(dir) ?? 0) - 1;
    if (n > 0) this.active.set(dir, n);
    else this.active.delete(dir);
  }
}

let root: string;
const containers: Container[] = [];

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'croot-t-containerd-'));
  cpSync(FIXTURE, root, { recursive: true });
});

afterEach(async () => {
  for (const c of containers.splice(0)) await c.get<EngineRegistry>(EngineRegistry).stop();
  rmSync(root, { recursive: true, force: true });
});

function envFor(taskDir = join(root, 'task'), runcDir = join(root, 'runc')): Record<string, string> {
  return { CROOT_CONTAINERD_TASK_DIR: taskDir, CROOT_CONTAINERD_RUNC_ROOT: runcDir };
}

interface Croot {
  readonly registry: EngineRegistry;
  readonly pids: ContainerProcessIdResolver;
  readonly engine: ContainerdEngine;
  readonly watcher: CountingWatcher;
}

async function croot(env: Record<string, string> = envFor(), lossy?: DirectoryWatcher): Promise<Croot> {
  const c = createCrootContainer({ config: { env, procRoot: join(root, 'proc') }, modules: [containerdEngineModule] });
  const watcher = new CountingWatcher(lossy);
  c.bind<DirectoryWatcher>(DirectoryWatcher).toConstantValue(watcher);
  c.bind<EngineRegistryOptions>(EngineRegistryOptions).toConstantValue({ recheckIntervalMs: 600000 });
  containers.push(c);
  const registry = c.get<EngineRegistry>(EngineRegistry);
  await registry.start();
  await registry.ready();
  return { registry, pids: c.get<ContainerProcessIdResolver>(ContainerProcessIdResolver), engine: c.get(ContainerdEngine), watcher };
}

/** Waits until the event naming `name` in `dir` has been lost, so that only the overflow can tell the engine. */
async function lost(lossy: LossyWatcher, dir: string, name: string): Promise<void> {
  await eventually(async () => (lossy.lost.some((l) => l.dir === dir && l.event.name === name) ? true : undefined));
}

function found(registry: EngineRegistry, ref: string): IndexedContainer {
  return registry.lookup(ref) as IndexedContainer;
}

function mine(registry: EngineRegistry): IndexedContainer[] {
  return registry.containers().filter((c) => c.engine === 'containerd');
}

/** The annotations containerd's CRI plugin writes for a Kubernetes container `container` of pod `pod` in `namespace`. */
function criContainer(namespace: string, pod: string, container: string): Record<string, string> {
  return {
    'io.kubernetes.cri.container-type': 'container',
    'io.kubernetes.cri.container-name': container,
    'io.kubernetes.cri.sandbox-name': pod,
    'io.kubernetes.cri.sandbox-namespace': namespace,
  };
}

/** The fixture's own files, read by the test: the truth the engine must report. */
function initPid(ns: string, id: string): number {
  return Number(readFileSync(join(root, 'task', ns, id, 'init.pid'), 'utf8'));
}

function runcState(ns: string, id: string): { init_process_pid: number; init_process_start: number } {
  return JSON.parse(readFileSync(join(root, 'runc', ns, id, 'state.json'), 'utf8')) as { init_process_pid: number; init_process_start: number };
}

/** Field 22 of the fixture proc root's stat for `pid`. */
function statStart(pid: number): number {
  const text = readFileSync(join(root, 'proc', String(pid), 'stat'), 'utf8');
  return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[19]);
}

function annotationsOf(ns: string, id: string): Record<string, string> {
  return (JSON.parse(readFileSync(join(root, 'task', ns, id, 'config.json'), 'utf8')) as { annotations?: Record<string, string> }).annotations ?? {};
}

/**
 * Steps of a task's life as the shim and runc write them, with the fixture's
 * croot-fx-ctr1 files as the template: the bundle and its spec; runc's folder
 * with `exec.fifo` and `state.json`; `init.pid` (moved in, as the shim does);
 * the start (`exec.fifo` removed); and the removal.
 */
class FakeTask {
  constructor(
    readonly ns: string,
    readonly id: string,
    readonly pid: number,
    readonly start: number,
  ) {}

  get bundle(): string {
    return join(root, 'task', this.ns, this.id);
  }

  get runc(): string {
    return join(root, 'runc', this.ns, this.id);
  }

  bundleWritten(annotations: Record<string, string> = {}, fields: Record<string, unknown> = {}): this {
    mkdirSync(this.bundle, { recursive: true });
    const spec = JSON.parse(readFileSync(join(root, 'task', 'default', 'croot-fx-ctr1', 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(this.bundle, 'config.json'), JSON.stringify({ ...spec, annotations, linux: { cgroupsPath: `/${this.ns}/${this.id}` }, ...fields }));
    return this;
  }

  /** runc's folder for the task, with `exec.fifo` and `state.json`, before the shim writes `init.pid`. */
  runcCreated(): this {
    mkdirSync(this.runc, { recursive: true });
    execFileSync('mkfifo', [join(this.runc, 'exec.fifo')]);
    writeFileSync(join(this.runc, 'state.json'), JSON.stringify({ id: this.id, init_process_pid: this.pid, init_process_start: this.start }));
    return this;
  }

  created(): this {
    if (!existsSync(this.runc)) this.runcCreated();
    const stat = readFileSync(join(root, 'proc', '8101', 'stat'), 'utf8').split(' ');
    stat[0] = String(this.pid);
    stat[21] = String(this.start);
    mkdirSync(join(root, 'proc', String(this.pid)), { recursive: true });
    writeFileSync(join(root, 'proc', String(this.pid), 'stat'), stat.join(' '));
    writeFileSync(join(this.bundle, '.init.pid'), String(this.pid));
    renameSync(join(this.bundle, '.init.pid'), join(this.bundle, 'init.pid'));
    return this;
  }

  started(): this {
    unlinkSync(join(this.runc, 'exec.fifo'));
    return this;
  }

  removed(): void {
    rmSync(this.runc, { recursive: true });
    rmSync(this.bundle, { recursive: true });
  }
}

describe('ContainerdEngine', () => {
  describe('first load', () => {
    it('lists the tasks of every namespace but moby, without CRI sandboxes', async () => {
      const { registry } = await croot();
      expect(mine(registry).map((c) => c.id).sort()).toEqual(['default/croot-fx-ctr1', 'default/croot-fx-tmp2', 'k8s.io/croot-fx-kapp']);
      expect(registry.statuses()[0]).toMatchObject({ engine: 'containerd', available: true });
      expect(registry.statuses()[0]?.reason).toContain('default: 2, k8s.io: 1; 1 CRI sandbox left out');
    });

    it('names a task <namespace>/<id>, <namespace>_<id> and by its bare id', async () => {
      const { registry } = await croot();
      expect(found(registry, 'default/croot-fx-ctr1').names).toEqual(['default/croot-fx-ctr1', 'default_croot-fx-ctr1', 'croot-fx-ctr1']);
    });

    it('names a Kubernetes container <pod-namespace>/<pod>/<container> and <pod-namespace>_<pod>_<container>, and gives its Kubernetes names', async () => {
      const { registry } = await croot();
      const a = annotationsOf('k8s.io', 'croot-fx-kapp');
      const c = found(registry, 'k8s.io/croot-fx-kapp');
      const k8s = [a['io.kubernetes.cri.sandbox-namespace'], a['io.kubernetes.cri.sandbox-name'], a['io.kubernetes.cri.container-name']];
      expect(c.names).toEqual(['k8s.io/croot-fx-kapp', 'k8s.io_croot-fx-kapp', 'croot-fx-kapp', k8s.join('/'), k8s.join('_')]);
      expect(c.kubernetes).toEqual({ namespace: k8s[0], pod: k8s[1], container: k8s[2] });
    });

    it("takes the PID from init.pid and its start time from runc's state.json, and the registry holds that process", async () => {
      const { registry, pids } = await croot();
      const state = runcState('default', 'croot-fx-ctr1');
      const c = found(registry, 'default/croot-fx-ctr1');
      expect(c).toMatchObject({ running: true, pid: initPid('default', 'croot-fx-ctr1'), pidStartTime: state.init_process_start, liveness: 'running' });
      expect(state.init_process_pid).toBe(c.pid);
      expect(c.startTime).toBe(statStart(state.init_process_pid));
      for (const ref of ['default/croot-fx-ctr1', 'default_croot-fx-ctr1', 'croot-fx-ctr1', 'containerd:croot-fx-ctr1', 'containerd.default_croot-fx-ctr1']) {
        expect([ref, pids.resolveProcessId(ref)]).toEqual([ref, initPid('default', 'croot-fx-ctr1')]);
      }
    });

    it('leaves the start time to the registry when runc left no state', async () => {
      rmSync(join(root, 'runc', 'k8s.io'), { recursive: true });
      const { registry } = await croot();
      const c = found(registry, 'prod/shop-7d9f/app');
      expect(c).toMatchObject({ running: true, pid: initPid('k8s.io', 'croot-fx-kapp'), liveness: 'running' });
      expect(c.pidStartTime).toBeUndefined();
      expect(c.startTime).toBe(statStart(initPid('k8s.io', 'croot-fx-kapp')));
    });

    it('refuses a task whose init process is gone (killed, not removed) with ERR_NOT_RUNNING', async () => {
      const { pids } = await croot();
      expect(await codeOf(() => pids.resolveProcessId('default/croot-fx-tmp2'))).toBe('ERR_NOT_RUNNING');
    });

    it('refuses a task whose PID now has another start time than runc recorded with ERR_PID_REUSED', async () => {
      const pid = initPid('default', 'croot-fx-ctr1');
      const path = join(root, 'proc', String(pid), 'stat');
      const fields = readFileSync(path, 'utf8').split(' ');
      fields[21] = String(Number(fields[21]) + 500);
      writeFileSync(path, fields.join(' '));
      const { pids } = await croot();
      expect(await codeOf(() => pids.resolveProcessId('default/croot-fx-ctr1'))).toBe('ERR_PID_REUSED');
    });

    it('gives the hostname the spec names, and no cgroup hint when the spec names no cgroup', async () => {
      new FakeTask('default', 'named', 7040, 6160).bundleWritten({}, { hostname: 'web-1', linux: {} }).created().started();
      const { registry } = await croot();
      const c = found(registry, 'default/named');
      expect([c.hostname, c.cgroupHint, c.pid]).toEqual(['web-1', undefined, 7040]);
      expect(found(registry, 'default/croot-fx-ctr1').hostname).toBeUndefined();
    });

    it('gives no record for a bundle whose config.json is not written yet, and counts it nowhere', async () => {
      mkdirSync(join(root, 'task', 'default', 'unwritten'));
      const { registry } = await croot();
      expect(mine(registry).map((c) => c.id).sort()).toEqual(['default/croot-fx-ctr1', 'default/croot-fx-tmp2', 'k8s.io/croot-fx-kapp']);
      expect(registry.statuses()[0]?.reason).toBe(`reading ${join(root, 'task')} (runc state ${join(root, 'runc')}): default: 2, k8s.io: 1; 1 CRI sandbox left out`);
    });

    it('gives the cgroup the spec asks for as a hint', async () => {
      const { registry } = await croot();
      expect(found(registry, 'default/croot-fx-ctr1').cgroupHint).toBe('default/croot-fx-ctr1');
    });

    it('is not held up by a FIFO where init.pid should be', async () => {
      const task = new FakeTask('default', 'fifo-task', 7001, 5000).bundleWritten();
      execFileSync('mkfifo', [join(task.bundle, 'init.pid')]);
      const { registry } = await croot();
      expect(found(registry, 'default/fifo-task')).toMatchObject({ running: false });
      expect(found(registry, 'default/croot-fx-ctr1').running).toBe(true);
    });

    it('watches the roots and namespace folders, and no folder of a started task', async () => {
      const { watcher } = await croot();
      expect([...watcher.active.keys()].map((d) => d.slice(root.length + 1)).sort()).toEqual([
        'runc',
        'runc/default',
        'runc/k8s.io',
        'task',
        'task/default',
        'task/k8s.io',
      ]);
    });
  });

  describe('following changes', () => {
    it('follows a task through create, start and removal', async () => {
      const { registry, pids, watcher, engine } = await croot();
      const task = new FakeTask('default', 'web', 7002, 6000).bundleWritten();
      await eventually(async () => (mine(registry).some((c) => c.id === 'default/web') ? true : undefined));
      expect(watcher.active.has(task.bundle)).toBe(true);

      // Each step after a re-check has read everything: only the watches can tell the engine of it.
      await engine.recheck();
      task.created();
      const created = await eventually(async () => {
        const c = mine(registry).find((x) => x.id === 'default/web');
        return c?.state === 'created' ? c : undefined;
      });
      expect(created.running).toBe(false);
      expect(await codeOf(() => pids.resolveProcessId('web'))).toBe('ERR_NOT_RUNNING');

      await engine.recheck();
      const events: RegistryEvent[] = [];
      registry.subscribe((e) => events.push(e));
      task.started();
      await eventually(async () => ((await settle(() => pids.resolveProcessId('default_web')).catch(() => 0)) === task.pid ? true : undefined));
      expect(found(registry, 'default/web')).toMatchObject({ running: true, pidStartTime: task.start, state: undefined, liveness: 'running' });
      // The same container, started: updated in place, never dropped and added again.
      expect(events.flatMap((e) => (e.kind !== 'health' && e.container.id === 'default/web' ? [e.kind] : [])).filter((k) => k !== 'updated')).toEqual([]);
      await eventually(async () => (!watcher.active.has(task.bundle) && !watcher.active.has(task.runc) ? true : undefined));

      await engine.recheck();
      task.removed();
      await eventually(async () => ((await codeOf(() => pids.resolveProcessId('default/web'))) === 'ERR_NO_CONTAINER' ? true : undefined));
    });

    it('sees a task in a namespace that did not exist when it started', async () => {
      const { pids, registry } = await croot();
      new FakeTask('fresh', 'job', 7003, 6100).bundleWritten().created().started();
      await eventually(async () => ((await settle(() => pids.resolveProcessId('fresh_job')).catch(() => 0)) === 7003 ? true : undefined));
      expect(registry.statuses()[0]?.reason).toBe(`reading ${join(root, 'task')} (runc state ${join(root, 'runc')}): default: 2, fresh: 1, k8s.io: 1; 1 CRI sandbox left out`);
      new FakeTask('fresh', 'job2', 7033, 6110).bundleWritten().created().started();
      await eventually(async () => ((await settle(() => pids.resolveProcessId('fresh_job2')).catch(() => 0)) === 7033 ? true : undefined));
    });

    it("sees runc's folder of a task appear before init.pid, in a namespace runc has a folder for and in one it has not", async () => {
      const { registry, engine } = await croot();
      const old = new FakeTask('default', 'early', 7034, 6120).bundleWritten();
      const fresh = new FakeTask('fresh', 'early', 7035, 6130).bundleWritten();
      await eventually(async () => (mine(registry).filter((c) => c.id.endsWith('/early')).length === 2 ? true : undefined));
      await engine.recheck();
      old.runcCreated();
      fresh.runcCreated();
      await eventually(async () => (mine(registry).filter((c) => c.id.endsWith('/early') && c.state === 'created').length === 2 ? true : undefined));
    });

    it('follows a namespace folder moved away and made again', async () => {
      const { registry, pids, engine } = await croot();
      renameSync(join(root, 'task', 'k8s.io'), join(root, 'task', '.k8s.io-old'));
      await eventually(async () => (mine(registry).every((c) => c.id.startsWith('default/')) ? true : undefined));
      mkdirSync(join(root, 'task', 'k8s.io'));
      await engine.recheck();
      new FakeTask('k8s.io', 'again', 7036, 6140).bundleWritten().created().started();
      await eventually(async () => ((await settle(() => pids.resolveProcessId('k8s.io/again')).catch(() => 0)) === 7036 ? true : undefined));
    });

    it('stops watching the folders of a task removed while their events were lost, at the re-check', async () => {
      const lossy = new LossyWatcher();
      const { registry, engine, watcher } = await croot(envFor(), lossy);
      const task = new FakeTask('default', 'unheard', 7037, 6150).bundleWritten().created();
      await eventually(async () => (found(registry, 'default/unheard')?.state === 'created' && watcher.active.has(task.runc) ? true : undefined));
      lossy.losing = true;
      task.removed();
      await lost(lossy, join(root, 'task', 'default'), 'unheard');
      lossy.losing = false;
      await engine.recheck();
      expect(mine(registry).map((c) => c.id)).not.toContain('default/unheard');
      expect([watcher.active.has(task.bundle), watcher.active.has(task.runc)]).toEqual([false, false]);
    });

    it('waits for a task root that does not exist yet, then reads it', async () => {
      const later = join(root, 'not', 'yet', 'task');
      const { registry, pids } = await croot(envFor(later));
      expect(mine(registry)).toEqual([]);
      expect(registry.statuses()[0]).toMatchObject({ available: false });
      expect(registry.statuses()[0]?.reason).toContain(later);
      mkdirSync(join(root, 'not', 'yet'), { recursive: true });
      cpSync(join(root, 'task'), later, { recursive: true });
      await eventually(async () => ((await settle(() => pids.resolveProcessId('default/croot-fx-ctr1')).catch(() => 0)) === initPid('default', 'croot-fx-ctr1') ? true : undefined));
      await eventually(async () => (registry.statuses()[0]?.available === true ? true : undefined));
    });

    it('ends every watch when stopped, the wait for an absent task root included', async () => {
      const { registry, watcher, engine } = await croot(envFor(join(root, 'absent', 'task')));
      new FakeTask('default', 'half', 7009, 6700).bundleWritten();
      await engine.recheck();
      await registry.stop();
      expect([...watcher.active.keys()]).toEqual([]);
      const again = await croot();
      new FakeTask('default', 'half', 7009, 6700).bundleWritten();
      await eventually(async () => (again.watcher.active.has(join(root, 'task', 'default', 'half')) ? true : undefined));
      await again.registry.stop();
      expect([...again.watcher.active.keys()]).toEqual([]);
    });

    it('drops every task when the task root goes, and reads it again when it comes back', async () => {
      const { registry } = await croot();
      const saved = join(root, 'saved');
      renameSync(join(root, 'task'), saved);
      await eventually(async () => (mine(registry).length === 0 && registry.statuses()[0]?.available === false ? true : undefined));
      renameSync(saved, join(root, 'task'));
      await eventually(async () => (mine(registry).length === 3 ? true : undefined));
    });

    it('keeps the same id in two namespaces apart: each namespaced name finds its own, the bare id is ambiguous', async () => {
      const { pids, registry } = await croot();
      new FakeTask('k8s.io', 'croot-fx-ctr1', 7004, 6200).bundleWritten().created().started();
      await eventually(async () => ((await settle(() => pids.resolveProcessId('k8s.io_croot-fx-ctr1')).catch(() => 0)) === 7004 ? true : undefined));
      expect(pids.resolveProcessId('default_croot-fx-ctr1')).toBe(initPid('default', 'croot-fx-ctr1'));
      expect(pids.resolveProcessId('default/croot-fx-ctr1')).toBe(initPid('default', 'croot-fx-ctr1'));
      expect(pids.resolveProcessId('k8s.io/croot-fx-ctr1')).toBe(7004);
      expect(await codeOf(() => pids.resolveProcessId('croot-fx-ctr1'))).toBe('ERR_AMBIGUOUS_NAME');
      expect(mine(registry).filter((c) => c.names.includes('croot-fx-ctr1')).map((c) => c.id).sort()).toEqual(['default/croot-fx-ctr1', 'k8s.io/croot-fx-ctr1']);
    });

    it('keeps a digest id as the id (a prefix finds it) until a second namespace holds the same digest', async () => {
      const { pids, registry } = await croot();
      const first = new FakeTask('k8s.io', DIGEST, 7005, 6300).bundleWritten().created().started();
      await eventually(async () => ((await settle(() => pids.resolveProcessId(DIGEST.slice(0, 12))).catch(() => 0)) === 7005 ? true : undefined));
      expect(found(registry, DIGEST).names).toEqual([`k8s.io/${DIGEST}`, `k8s.io_${DIGEST}`]);

      const second = new FakeTask('default', DIGEST, 7006, 6400).bundleWritten().created().started();
      await eventually(async () => ((await codeOf(() => pids.resolveProcessId(DIGEST))) === 'ERR_AMBIGUOUS_NAME' ? true : undefined));
      expect(mine(registry).filter((c) => c.names.includes(DIGEST)).map((c) => c.id).sort()).toEqual([`default/${DIGEST}`, `k8s.io/${DIGEST}`]);
      expect(pids.resolveProcessId(`default_${DIGEST}`)).toBe(7006);
      expect(pids.resolveProcessId(`k8s.io_${DIGEST}`)).toBe(7005);

      second.removed();
      await eventually(async () => ((await settle(() => pids.resolveProcessId(DIGEST)).catch(() => 0)) === first.pid ? true : undefined));
      expect(found(registry, DIGEST).id).toBe(DIGEST);
    });

    it('gives a Kubernetes name held by two tasks to the started one only', async () => {
      const { pids, registry } = await croot();
      const pod = criContainer('prod', 'shop-7d9f', 'app');
      new FakeTask('k8s.io', 'next-app', 7007, 6500).bundleWritten(pod).created();
      await eventually(async () => (mine(registry).find((c) => c.id === 'k8s.io/next-app')?.state === 'created' ? true : undefined));
      expect(pids.resolveProcessId('prod_shop-7d9f_app')).toBe(initPid('k8s.io', 'croot-fx-kapp'));
      expect(found(registry, 'k8s.io/next-app').names).not.toContain('prod/shop-7d9f/app');
      // The started task's removal hands the name to the one left.
      rmSync(join(root, 'task', 'k8s.io', 'croot-fx-kapp'), { recursive: true });
      await eventually(async () => (found(registry, 'prod/shop-7d9f/app').id === 'k8s.io/next-app' ? true : undefined));
      expect(found(registry, 'k8s.io/next-app').names).toEqual(['k8s.io/next-app', 'k8s.io_next-app', 'next-app', 'prod/shop-7d9f/app', 'prod_shop-7d9f_app']);
    });

    it('leaves a Kubernetes name held by two tasks that are both only created on both, so that it names neither', async () => {
      const { registry } = await croot();
      const pod = criContainer('prod', 'batch-1', 'job');
      new FakeTask('k8s.io', 'job-a', 7011, 6900).bundleWritten(pod).created();
      new FakeTask('k8s.io', 'job-b', 7012, 6901).bundleWritten(pod).created();
      await eventually(async () => (mine(registry).filter((c) => c.id.startsWith('k8s.io/job-') && c.state === 'created').length === 2 ? true : undefined));
      // Neither is started: neither can be told from the other, and both keep the name.
      expect(found(registry, 'k8s.io/job-a').names).toContain('prod/batch-1/job');
      expect(found(registry, 'k8s.io/job-b').names).toContain('prod/batch-1/job');
      for (const name of ['prod/batch-1/job', 'prod_batch-1_job']) {
        expect(() => registry.lookup(name)).toThrow(expect.objectContaining({ code: 'ERR_AMBIGUOUS_NAME' }));
      }
    });
  });

  describe('names pmcd lets through', () => {
    it("gives every container a name PCP's own rule accepts, and each such name resolves to it", async () => {
      new FakeTask('k8s.io', DIGEST, 7008, 6600).bundleWritten(criContainer('prod', 'store-1', 'db')).created().started();
      const { registry } = await croot();
      const all = mine(registry);
      expect(all.length).toBe(4);
      for (const c of all) {
        const safe = c.names.filter(pmcdAcceptsContainerName);
        expect([c.id, safe.length > 0]).toEqual([c.id, true]);
        for (const name of safe) expect([name, found(registry, name).id]).toEqual([name, c.id]);
        for (const name of c.names.filter((n) => !pmcdAcceptsContainerName(n))) expect(name).toContain('/');
      }
      expect(found(registry, 'prod_store-1_db').id).toBe(DIGEST);
      expect(found(registry, 'containerd.prod_store-1_db').id).toBe(DIGEST);
    });
  });

  describe('health and what is left out', () => {
    it('reads the roots as given with trailing slashes, and names them in its health', async () => {
      const { registry } = await croot(envFor(`${join(root, 'task')}//`, `${join(root, 'runc')}//`));
      expect(mine(registry)).toHaveLength(3);
      expect(registry.statuses()[0]?.reason).toBe(`reading ${join(root, 'task')} (runc state ${join(root, 'runc')}): default: 2, k8s.io: 1; 1 CRI sandbox left out`);
    });

    it('says "no tasks" for an empty task root, and counts CRI sandboxes in the plural', async () => {
      const empty = join(root, 'empty-task');
      mkdirSync(empty);
      const first = await croot(envFor(empty));
      expect(first.registry.statuses()[0]).toMatchObject({ available: true, reason: `reading ${empty} (runc state ${join(root, 'runc')}): no tasks` });
      await first.registry.stop();
      new FakeTask('k8s.io', 'second-sbx', 7010, 6800).bundleWritten({ 'io.kubernetes.cri.container-type': 'sandbox' }).created().started();
      const { registry } = await croot();
      expect(registry.statuses()[0]?.reason).toContain('k8s.io: 1; 2 CRI sandboxes left out');
    });

    it('names each task with damaged run state when there are three or fewer', async () => {
      for (const id of ['d1', 'd2', 'd3']) {
        const task = new FakeTask('default', id, 7100, 6900).bundleWritten().created().started();
        writeFileSync(join(task.bundle, 'init.pid'), 'junk');
      }
      const { registry } = await croot();
      expect(registry.statuses()[0]).toMatchObject({
        available: true,
        reason:
          `reading ${join(root, 'task')} (runc state ${join(root, 'runc')}): default: 5, k8s.io: 1; 1 CRI sandbox left out; ` +
          'run state damaged, so not running for croot: default/d1 (init.pid holds no PID), default/d2 (init.pid holds no PID), default/d3 (init.pid holds no PID)',
      });
    });

    it('names tasks with damaged run state in its health, three of them and how many more, and takes a task once its file is whole again', async () => {
      for (const id of ['d1', 'd2', 'd3', 'd4', 'd5']) {
        const task = new FakeTask('default', id, 7100, 6900).bundleWritten().created().started();
        writeFileSync(join(task.bundle, 'init.pid'), 'junk');
      }
      const { registry, pids } = await croot();
      expect(registry.statuses()[0]?.reason).toContain(
        'run state damaged, so not running for croot: default/d1 (init.pid holds no PID), default/d2 (init.pid holds no PID), default/d3 (init.pid holds no PID), and 2 more',
      );
      expect(await codeOf(() => pids.resolveProcessId('default/d1'))).toBe('ERR_NOT_RUNNING');
      writeFileSync(join(root, 'task', 'default', 'd1', '.init.pid'), '7100');
      renameSync(join(root, 'task', 'default', 'd1', '.init.pid'), join(root, 'task', 'default', 'd1', 'init.pid'));
      await eventually(async () => ((await settle(() => pids.resolveProcessId('default/d1')).catch(() => 0)) === 7100 ? true : undefined));
      expect(registry.statuses()[0]?.reason).toContain('default/d2 (init.pid holds no PID), default/d3 (init.pid holds no PID), default/d4 (init.pid holds no PID), and 1 more');
    });

    it("leaves out Docker's moby namespace and hidden folders that appear later", async () => {
      rmSync(join(root, 'task', 'moby'), { recursive: true });
      const { registry, pids } = await croot();
      new FakeTask('moby', 'later', 7011, 6810).bundleWritten().created().started();
      new FakeTask('.hidden', 'later', 7012, 6820).bundleWritten().created().started();
      new FakeTask('default', '.later', 7014, 6840).bundleWritten().created().started();
      new FakeTask('marker', 'later', 7013, 6830).bundleWritten().created().started();
      await eventually(async () => ((await settle(() => pids.resolveProcessId('marker/later')).catch(() => 0)) === 7013 ? true : undefined));
      expect(mine(registry).map((c) => c.id).sort()).toEqual(['default/croot-fx-ctr1', 'default/croot-fx-tmp2', 'k8s.io/croot-fx-kapp', 'marker/later']);
    });
  });

  describe('folders it cannot watch or read', () => {
    const status = `reading ${'${T}'} (runc state ${'${R}'}): default: 2, k8s.io: 1; 1 CRI sandbox left out`;
    const statusOf = (): string => status.replace('${T}', join(root, 'task')).replace('${R}', join(root, 'runc'));

    it('names a folder the kernel refuses to watch (the inotify limit) in its health, and reads it at the re-check', async () => {
      const dir = join(root, 'task', 'default');
      const refusing = new RefusingWatcher(new Map([[dir, 'ENOSPC']]));
      const { registry, engine, pids } = await croot(envFor(), refusing);
      const why = `watching ${dir}: ENOSPC: System limit for number of file watchers reached, watch '${dir}'`;
      expect(registry.statuses()[0]).toMatchObject({
        available: true,
        reason: `${statusOf()}; cannot watch ${dir} (${why}); its changes show at the next re-check`,
      });
      new FakeTask('default', 'unseen', 7030, 7000).bundleWritten().created().started();
      refusing.refused.clear();
      await engine.recheck();
      expect(pids.resolveProcessId('default/unseen')).toBe(7030);
      expect(registry.statuses()[0]?.reason).toBe(statusOf().replace('default: 2', 'default: 3'));
      new FakeTask('default', 'seen', 7031, 7010).bundleWritten().created().started();
      await eventually(async () => ((await settle(() => pids.resolveProcessId('default/seen')).catch(() => 0)) === 7031 ? true : undefined));
    });

    it('says so when the folder above an absent task root cannot be watched', async () => {
      const absent = join(root, 'absent', 'task');
      const { registry } = await croot(envFor(absent), new RefusingWatcher(new Map([[root, 'ENOSPC']])));
      const why = `watching ${root}: ENOSPC: System limit for number of file watchers reached, watch '${root}'`;
      expect(registry.statuses()[0]).toMatchObject({
        available: false,
        reason: `no ${absent}: containerd has run no task here; waiting for it to appear; cannot watch ${absent} (waiting for it: ${why}); its changes show at the next re-check`,
      });
    });

    it('says nothing of a folder that was gone when it was to be watched', async () => {
      const dir = join(root, 'task', 'default');
      const { registry } = await croot(envFor(), new RefusingWatcher(new Map([[dir, 'ENOENT']])));
      expect(registry.statuses()[0]).toMatchObject({ available: true, reason: statusOf() });
    });

    it('says why it cannot read a task root that is a file, and reads it once it is a folder', async () => {
      const file = join(root, 'task-file');
      writeFileSync(file, '');
      const { registry, pids } = await croot(envFor(file));
      expect(registry.statuses()[0]).toMatchObject({ available: false, reason: `cannot read ${file}: ENOTDIR` });
      rmSync(file);
      cpSync(join(root, 'task'), file, { recursive: true });
      await eventually(async () => ((await settle(() => pids.resolveProcessId('default/croot-fx-ctr1')).catch(() => 0)) === initPid('default', 'croot-fx-ctr1') ? true : undefined));
    });
  });

  describe('lost events', () => {
    it('reads everything again when the task root or a namespace folder reports an overflow', async () => {
      const lossy = new LossyWatcher();
      const { pids, registry } = await croot(envFor(), lossy);
      lossy.losing = true;
      new FakeTask('fresh', 'lost', 7020, 6900).bundleWritten().created().started();
      await lost(lossy, join(root, 'task'), 'fresh');
      lossy.overflow(join(root, 'task'));
      await eventually(async () => ((await settle(() => pids.resolveProcessId('fresh/lost')).catch(() => 0)) === 7020 ? true : undefined));

      lossy.losing = true;
      new FakeTask('default', 'lost2', 7021, 6910).bundleWritten().created().started();
      rmSync(join(root, 'task', 'default', 'croot-fx-tmp2'), { recursive: true });
      await lost(lossy, join(root, 'task', 'default'), 'croot-fx-tmp2');
      lossy.overflow(join(root, 'task', 'default'));
      await eventually(async () => ((await settle(() => pids.resolveProcessId('default/lost2')).catch(() => 0)) === 7021 ? true : undefined));
      expect(mine(registry).map((c) => c.id)).not.toContain('default/croot-fx-tmp2');
    });

    it("reads a task again when runc's folder for its namespace reports an overflow", async () => {
      const lossy = new LossyWatcher();
      const { pids } = await croot(envFor(), lossy);
      const task = new FakeTask('default', 'slow', 7022, 6920).bundleWritten().created();
      await eventually(async () => ((await codeOf(() => pids.resolveProcessId('default/slow'))) === 'ERR_NOT_RUNNING' ? true : undefined));
      lossy.losing = true;
      task.started();
      await lost(lossy, task.runc, 'exec.fifo');
      lossy.overflow(join(root, 'runc', 'default'));
      await eventually(async () => ((await settle(() => pids.resolveProcessId('default/slow')).catch(() => 0)) === 7022 ? true : undefined));
    });
  });

  describe('.recheck', () => {
    it('reads what changed on disk without an event before it resolves', async () => {
      const lossy = new LossyWatcher();
      const { pids, registry, engine } = await croot(envFor(), lossy);
      lossy.losing = true;
      new FakeTask('default', 'quiet', 7032, 7020).bundleWritten().created().started();
      rmSync(join(root, 'task', 'default', 'croot-fx-tmp2'), { recursive: true });
      await lost(lossy, join(root, 'task', 'default'), 'quiet');
      await engine.recheck();
      expect(pids.resolveProcessId('default/quiet')).toBe(7032);
      expect(mine(registry).map((c) => c.id).sort()).toEqual(['default/croot-fx-ctr1', 'default/quiet', 'k8s.io/croot-fx-kapp']);
    });

    it('changes nothing in the index when nothing changed on disk', async () => {
      const { registry, engine } = await croot();
      const events: RegistryEvent[] = [];
      registry.subscribe((e) => events.push(e));
      await engine.recheck();
      expect(events).toEqual([]);
      expect(mine(registry)).toHaveLength(3);
    });
  });
});

describe('cgroupHintFrom', () => {
  it('strips the leading slash of a plain path', () => {
    expect(cgroupHintFrom('/kubepods/burstable/pod1/abc')).toBe('kubepods/burstable/pod1/abc');
  });

  it('expands a systemd slice:prefix:name triple into nested slices and a scope', () => {
    expect(cgroupHintFrom('kubepods-burstable-pod5f1c.slice:cri-containerd:abc')).toBe(
      'kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod5f1c.slice/cri-containerd-abc.scope',
    );
  });
});
