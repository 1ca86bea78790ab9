/**
 * The root PMDA over a given snapshot: instance names and numbers, and
 * which metric has a value when. (Its bytes against PCP's pmdaroot are in
 * root-pmda-golden.test.ts; its values against the engines' own tools and
 * the kernel in test/pmcd-root-pmda.int.test.ts.)
 */
import type { ContainerView } from './container-source.js';
import { MetricType, PM_IN_NULL, indom, pmid } from './identifiers.js';
import { decodePdu, encodeFetch, encodeInstanceReq, type InstancePdu, type ResultPdu } from './pdus.js';
import { containerInstanceNames, rootPmda } from './root-pmda.js';
import { viewOf } from './registry-snapshot-source.js';
import type { ContainerRecord } from '../core/registry/engine-contribution.js';
import type { IndexedContainer } from '../core/registry/engine-registry.js';
import { decodeValue } from './values.js';

const docker: ContainerView = { engine: 'docker', id: 'a'.repeat(64), names: ['web1'], running: true, paused: false, restarting: false, pid: 4242, cgroup: 'docker/aaaa', state: 'running', hostname: 'web1-h' };
const stopped: ContainerView = { engine: 'podman', id: 'b'.repeat(64), names: ['old'], running: false, paused: false, restarting: false };
const ctrd: ContainerView = {
  engine: 'containerd',
  id: 'app1',
  namespace: 'k8s.io',
  names: ['k8s.io/app1', 'prod/shop/app'],
  running: true,
  paused: false,
  restarting: false,
  pid: 77,
  kubernetes: { namespace: 'prod', pod: 'shop', container: 'app' },
};

async function instances(pmda: ReturnType<typeof rootPmda>): Promise<InstancePdu['instances']> {
  const [reply] = await pmda.handle(encodeInstanceReq({ from: 0, indom: indom(1, 0), inst: PM_IN_NULL }));
  return (decodePdu(reply as Buffer) as InstancePdu).instances;
}

async function fetch(pmda: ReturnType<typeof rootPmda>, cluster: number, item: number, type: number): Promise<Map<number, unknown>> {
  const [reply] = await pmda.handle(encodeFetch({ from: 0, ctxid: 0, pmids: [pmid(1, cluster, item)] }));
  const vs = (decodePdu(reply as Buffer) as ResultPdu).vsets[0];
  return new Map((vs?.values ?? []).map((v) => [v.inst, decodeValue(type, v)]));
}

describe('rootPmda', () => {
  describe('instance names', () => {
    it('are full ids, and <namespace>/<id> for containerd', () => {
      expect(containerInstanceNames([docker, ctrd])).toEqual([docker.id, 'k8s.io/app1']);
    });

    it('carry the engine when two engines report the same name', () => {
      const twin: ContainerView = { ...stopped, engine: 'static', id: docker.id };
      expect(containerInstanceNames([docker, twin, ctrd])).toEqual([`docker:${docker.id}`, `static:${docker.id}`, 'k8s.io/app1']);
    });
  });

  it('keeps a container’s instance number while others come and go, and never gives it to another', async () => {
    let views: readonly ContainerView[] = [docker, stopped];
    const pmda = rootPmda({ source: { containers: () => views } });
    expect(await instances(pmda)).toEqual([
      { inst: 0, name: docker.id },
      { inst: 1, name: stopped.id },
    ]);
    views = [ctrd, docker];
    expect(await instances(pmda)).toEqual([
      { inst: 2, name: 'k8s.io/app1' },
      { inst: 0, name: docker.id },
    ]);
    views = [stopped];
    expect(await instances(pmda)).toEqual([{ inst: 1, name: stopped.id }]);
  });

  it('gives pid and cgroup (with pmdaroot’s leading /) of running containers only', async () => {
    const pmda = rootPmda({ source: { containers: () => [docker, stopped] } });
    expect(await fetch(pmda, 0, 2, MetricType.U32)).toEqual(new Map([[0, 4242]]));
    expect(await fetch(pmda, 0, 6, MetricType.STRING)).toEqual(new Map([[0, '/docker/aaaa']]));
    expect(await fetch(pmda, 0, 3, MetricType.U32)).toEqual(
      new Map([
        [0, 1],
        [1, 0],
      ]),
    );
  });

  it('gives Kubernetes’ names and the state word where the source has them', async () => {
    const pmda = rootPmda({ source: { containers: () => [docker, ctrd] } });
    expect(await fetch(pmda, 1, 4, MetricType.STRING)).toEqual(new Map([[1, 'shop']]));
    expect(await fetch(pmda, 1, 1, MetricType.STRING)).toEqual(new Map([[0, 'running']]));
    expect(await fetch(pmda, 0, 1, MetricType.STRING)).toEqual(
      new Map([
        [0, 'web1'],
        [1, 'k8s.io/app1'],
      ]),
    );
  });

  it('waits for the source’s refresh before answering', async () => {
    let views: readonly ContainerView[] = [];
    const pmda = rootPmda({ source: { containers: () => views, refresh: async () => void (views = [docker]) } });
    expect(await fetch(pmda, 0, 0, MetricType.STRING)).toEqual(new Map([[0, 'docker']]));
  });
});

describe('viewOf (the live index’s containers as views)', () => {
  const indexed = (record: ContainerRecord, liveness: IndexedContainer['liveness'], cgroup?: string): IndexedContainer => ({
    ...record,
    record,
    liveness,
    pid: record.pid,
    startTime: undefined,
    cgroup,
    handle: undefined,
  });

  it('takes containerd’s namespace, and Kubernetes names when the engine gives none, from the names its engine gives', () => {
    const v = viewOf(indexed({ engine: 'containerd', id: 'app1', names: ['k8s.io/app1', 'prod/shop/app'], running: true, pid: 77, source: 'disk:k8s.io' }, 'running', 'kubepods/x'));
    expect(v).toMatchObject({ namespace: 'k8s.io', kubernetes: { namespace: 'prod', pod: 'shop', container: 'app' }, cgroup: 'kubepods/x', state: 'running', pid: 77 });
  });

  it('keeps the engine’s own state word and Kubernetes names when it gives them', () => {
    const v = viewOf(indexed({ engine: 'lxc', id: 'c1', names: ['c1'], running: true, pid: 5, state: 'FROZEN', kubernetes: { namespace: 'a', pod: 'b', container: 'c' } }, 'running'));
    expect(v).toMatchObject({ state: 'FROZEN', kubernetes: { namespace: 'a', pod: 'b', container: 'c' } });
  });

  it('says no pid or cgroup for a container the index knows has exited, whatever the engine last said', () => {
    const v = viewOf(indexed({ engine: 'docker', id: 'c', names: ['c'], running: true, pid: 99 }, 'exited', 'docker/c'));
    expect(v).toMatchObject({ running: false });
    expect(v.pid).toBeUndefined();
    expect(v.cgroup).toBeUndefined();
    expect(v.namespace).toBeUndefined();
  });

  it('says paused and restarting as the flags say when the engine gives no word', () => {
    expect(viewOf(indexed({ engine: 'docker', id: 'p', names: [], running: true, pid: 5, paused: true }, 'running')).state).toBe('paused');
    expect(viewOf(indexed({ engine: 'docker', id: 'r', names: [], running: true, pid: 5, restarting: true }, 'running')).state).toBe('restarting');
    expect(viewOf(indexed({ engine: 'docker', id: 's', names: [], running: false }, 'stopped')).state).toBeUndefined();
  });
});
