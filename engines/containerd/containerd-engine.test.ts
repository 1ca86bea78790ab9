import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { settle } from '../../test/support/outcomes.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerModule } from 'inversify';
import { createCrootContainer } from '../../core/create-container.js';
import type { ContainerRecord } from '../../core/engine.js';
import { ContainerProcessIdResolver } from '../../core/resolvers.js';
import { ContainerdEngine, ContainerdEngineOptions } from './containerd-engine.js';
import { containerdEngineModule } from './containerd-engine-module.js';
import { cgroupHintFrom } from './containerd-tasks.js';
import { startTimeFromStatFile } from '../../test/support/truth.js';

const FIXTURE = join(__dirname, '..', '..', 'test', 'fixtures', 'containerd');

function fixtureTree(): { root: string; env: Record<string, string> } {
  const root = mkdtempSync(join(tmpdir(), 'croot-containerd-'));
  cpSync(FIXTURE, root, { recursive: true });
  return { root, env: { CROOT_CONTAINERD_TASK_DIR: join(root, 'task'), CROOT_CONTAINERD_RUNC_ROOT: join(root, 'runc') } };
}

function engineFor(root: string, env: Record<string, string>, checkIntervalMs = 0): ContainerdEngine {
  return createCrootContainer({
    config: { env, procRoot: join(root, 'proc') },
    modules: [
      containerdEngineModule,
      new ContainerModule(({ bind }) => {
        bind<ContainerdEngineOptions>(ContainerdEngineOptions).toConstantValue({ checkIntervalMs });
      }),
    ],
  }).get(ContainerdEngine);
}

function byId(records: readonly ContainerRecord[], id: string): ContainerRecord {
  const r = records.find((c) => c.id === id);
  if (r === undefined) throw new Error(`no record ${id}`);
  return r;
}

function initPid(root: string, ns: string, id: string): number {
  return Number(readFileSync(join(root, 'task', ns, id, 'init.pid'), 'utf8'));
}

function runcState(root: string, ns: string, id: string): { init_process_pid: number; init_process_start: number } {
  return JSON.parse(readFileSync(join(root, 'runc', ns, id, 'state.json'), 'utf8')) as { init_process_pid: number; init_process_start: number };
}

describe('ContainerdEngine', () => {
  let root: string;
  let env: Record<string, string>;
  beforeEach(() => ({ root, env } = fixtureTree()));
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  describe('.containers', () => {
    it('lists the tasks of every namespace but moby, without CRI sandboxes', async () => {
      const ids = (await engineFor(root, env).containers()).map((r) => r.id).sort();
      expect(ids).toEqual(['croot-fx-ctr1', 'croot-fx-kapp', 'croot-fx-tmp2']);
    });

    it('names a task <namespace>/<id>', async () => {
      expect(byId(await engineFor(root, env).containers(), 'croot-fx-ctr1').names).toEqual(['default/croot-fx-ctr1']);
    });

    it('also names a Kubernetes container <pod-namespace>/<pod>/<container>', async () => {
      expect(byId(await engineFor(root, env).containers(), 'croot-fx-kapp').names).toEqual(['k8s.io/croot-fx-kapp', 'prod/shop-7d9f/app']);
    });

    it('takes the PID from init.pid and its start time from runc\'s state.json', async () => {
      const r = byId(await engineFor(root, env).containers(), 'croot-fx-ctr1');
      const state = runcState(root, 'default', 'croot-fx-ctr1');
      expect(r).toMatchObject({ running: true, pid: initPid(root, 'default', 'croot-fx-ctr1'), pidStartTime: state.init_process_start });
      expect(state.init_process_pid).toBe(r.pid);
      expect(startTimeFromStatFile(join(root, 'proc', String(r.pid), 'stat'))).toBe(state.init_process_start);
    });

    it('reads the start time from /proc when runc left no state', async () => {
      rmSync(join(root, 'runc', 'k8s.io'), { recursive: true });
      const r = byId(await engineFor(root, env).containers(), 'croot-fx-kapp');
      expect(r.running).toBe(true);
      expect(r.pidStartTime).toBe(startTimeFromStatFile(join(root, 'proc', String(r.pid), 'stat')));
    });

    it('reports a stopped task whose PID is gone as not running', async () => {
      expect(byId(await engineFor(root, env).containers(), 'croot-fx-tmp2')).toMatchObject({ running: false });
    });

    it('reports a task whose PID now has another start time as not running', async () => {
      const pid = initPid(root, 'default', 'croot-fx-ctr1');
      const statPath = join(root, 'proc', String(pid), 'stat');
      const fields = readFileSync(statPath, 'utf8').split(' ');
      fields[21] = String(Number(fields[21]) + 500);
      writeFileSync(statPath, fields.join(' '));
      expect(byId(await engineFor(root, env).containers(), 'croot-fx-ctr1').running).toBe(false);
    });

    it('gives the cgroup the spec asks for as a hint', async () => {
      expect(byId(await engineFor(root, env).containers(), 'croot-fx-ctr1').cgroupHint).toBe('default/croot-fx-ctr1');
    });

    it('returns the same frozen array while nothing changed, and a new one when a task goes', async () => {
      const engine = engineFor(root, env);
      const first = await engine.containers();
      expect(Object.isFrozen(first)).toBe(true);
      expect(await engine.containers()).toBe(first);
      rmSync(join(root, 'task', 'default', 'croot-fx-tmp2'), { recursive: true });
      const second = await engine.containers();
      expect(second).not.toBe(first);
      expect(second.map((r) => r.id)).not.toContain('croot-fx-tmp2');
    });
  });

  describe('.status', () => {
    it('gives [] and the reason when the task root is absent, and picks it up when it appears', async () => {
      const later = join(root, 'later');
      const engine = engineFor(root, { ...env, CROOT_CONTAINERD_TASK_DIR: later });
      expect(await engine.containers()).toEqual([]);
      expect(engine.status()).toMatchObject({ available: false });
      expect(engine.status().reason).toContain(later);
      cpSync(join(root, 'task'), later, { recursive: true });
      expect((await engine.containers()).length).toBe(3);
      expect(engine.status().available).toBe(true);
      expect(engine.status().reason).toContain('1 CRI sandboxes left out');
    });
  });

  describe('through the resolvers', () => {
    it('resolves namespace and Kubernetes names and refuses a stopped task', async () => {
      const resolver = createCrootContainer({ config: { env, procRoot: join(root, 'proc') }, modules: [containerdEngineModule] }).get<ContainerProcessIdResolver>(
        ContainerProcessIdResolver,
      );
      await expect(settle(() => resolver.resolveProcessId('default/croot-fx-ctr1'))).resolves.toBe(initPid(root, 'default', 'croot-fx-ctr1'));
      await expect(settle(() => resolver.resolveProcessId('prod/shop-7d9f/app'))).resolves.toBe(initPid(root, 'k8s.io', 'croot-fx-kapp'));
      await expect(settle(() => resolver.resolveProcessId('containerd:croot-fx-kapp'))).resolves.toBe(initPid(root, 'k8s.io', 'croot-fx-kapp'));
      await expect(settle(() => resolver.resolveProcessId('k8s.io/croot-fx-sbx'))).rejects.toMatchObject({ code: 'ERR_NO_CONTAINER' });
      await expect(settle(() => resolver.resolveProcessId('default/croot-fx-tmp2'))).rejects.toMatchObject({ code: 'ERR_NOT_RUNNING' });
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
