/**
 * One real podman container taken through create, start, stop, start again,
 * restart, rename and remove, with croot's index checked after each step
 * against `podman inspect` and the host's /proc (rootful or rootless: the
 * runner says which). Also checks what subscribers were told.
 */
import { existsSync } from 'node:fs';
import type { EngineRegistry, IndexedContainer, RegistryEvent } from '../../core/registry/engine-registry.js';
import type { ContainerProcessIdResolver } from '../../core/registry/container-resolvers.js';
import { cgroupTruth, podmanInspect, podmanRun, type PodmanRunner } from './engine-containers.js';
import { codeOf, eventually, settle } from './outcomes.js';

export interface LifecycleOptions {
  readonly registry: EngineRegistry;
  readonly pids: ContainerProcessIdResolver;
  readonly podman: PodmanRunner;
  /** The container's name, and the one it is renamed to. */
  readonly name: string;
  readonly renamed: string;
  /** Names are remembered here before anything is created, for cleanup. */
  readonly created: string[];
  /** More `podman create` options (`--network none` for rootless). */
  readonly extra?: readonly string[];
  /** Every form croot must know a container named `name` by (its own name, `<user>/<name>`...). */
  readonly namesOf: (name: string) => string[];
}

/** What an index event said when it came. */
interface Seen {
  readonly kind: 'added' | 'updated' | 'removed';
  readonly id: string;
  readonly liveness: IndexedContainer['liveness'];
  readonly pid: number | undefined;
}

/** The PID croot gives for `ref` once it equals `want` (errors while it does not). */
async function resolvesTo(pids: ContainerProcessIdResolver, ref: string, want: number): Promise<number> {
  return eventually(async () => ((await settle(() => pids.resolveProcessId(ref))) === want ? want : undefined), 30000);
}

async function codeBecomes(pids: ContainerProcessIdResolver, ref: string, code: string): Promise<string> {
  return eventually(async () => ((await codeOf(() => pids.resolveProcessId(ref))) === code ? code : undefined), 30000);
}

export async function followLifecycle(o: LifecycleOptions): Promise<void> {
  const { registry, pids, podman } = o;
  const inspect = (ref: string, format: string): string => podmanInspect(ref, format, podman);
  // Snapshots: an event carries the index's live entry, which changes afterwards.
  const events: Seen[] = [];
  const unsubscribe = registry.subscribe((e: RegistryEvent) => {
    if (e.kind !== 'health') events.push({ kind: e.kind, id: e.container.id, liveness: e.container.liveness, pid: e.container.pid });
  });
  try {
    o.created.push(o.renamed);
    const id = podmanRun(o.name, { createOnly: true, hostname: `${o.name}-h` }, o.created, podman, o.extra ?? []);
    const entry = (): IndexedContainer | undefined => registry.containers().find((c) => c.id === id);
    const stateBecomes = (state: string): Promise<IndexedContainer> =>
      eventually(async () => {
        const c = entry();
        return c?.state === state ? c : undefined;
      }, 30000);

    // create
    expect(inspect(id, '{{.State.Status}}')).toBe('created');
    const created = await stateBecomes('created');
    expect(created.names).toEqual(o.namesOf(o.name));
    expect(created.running).toBe(false);
    expect(await codeOf(() => pids.resolveProcessId(o.name))).toBe('ERR_NOT_RUNNING');

    // start
    podman(['start', o.name]);
    const pid = Number(inspect(id, '{{.State.Pid}}'));
    expect(pid).toBeGreaterThan(0);
    for (const ref of [...o.namesOf(o.name), id, `podman:${o.name}`]) expect([ref, await resolvesTo(pids, ref, pid)]).toEqual([ref, pid]);
    const started = entry();
    expect({ state: started?.state, hostname: started?.hostname, cgroup: started?.cgroup }).toEqual({
      state: inspect(id, '{{.State.Status}}'),
      hostname: inspect(id, '{{.Config.Hostname}}'),
      cgroup: cgroupTruth(pid),
    });

    // stop
    podman(['stop', '-t', '0', o.name]);
    expect(inspect(id, '{{.State.Status}}')).toBe('exited');
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    expect(await codeBecomes(pids, o.name, 'ERR_NOT_RUNNING')).toBe('ERR_NOT_RUNNING');
    expect((await stateBecomes('exited')).running).toBe(false);

    // start again, then restart: a new init process each time
    podman(['start', o.name]);
    const second = Number(inspect(id, '{{.State.Pid}}'));
    expect(second).not.toBe(pid);
    expect(await resolvesTo(pids, o.name, second)).toBe(second);
    podman(['restart', '-t', '0', o.name]);
    const third = Number(inspect(id, '{{.State.Pid}}'));
    expect(third).not.toBe(second);
    expect(await resolvesTo(pids, o.name, third)).toBe(third);
    expect(entry()?.state).toBe(inspect(id, '{{.State.Status}}'));

    // rename
    podman(['rename', o.name, o.renamed]);
    expect(inspect(id, '{{.Name}}')).toBe(o.renamed);
    for (const ref of o.namesOf(o.renamed)) expect([ref, await resolvesTo(pids, ref, third)]).toEqual([ref, third]);
    for (const ref of o.namesOf(o.name)) expect([ref, await codeOf(() => pids.resolveProcessId(ref))]).toEqual([ref, 'ERR_NO_CONTAINER']);

    // remove
    podman(['rm', '-f', '-t', '0', o.renamed]);
    await eventually(async () => (entry() === undefined ? true : undefined), 30000);
    expect(await codeOf(() => pids.resolveProcessId(o.renamed))).toBe('ERR_NO_CONTAINER');

    // What subscribers were told: added once, removed once at the end, and no init process podman did not report.
    const mine = events.filter((e) => e.id === id);
    expect(mine[0]?.kind).toBe('added');
    expect(mine.filter((e) => e.kind === 'added')).toHaveLength(1);
    expect(mine.map((e) => e.kind).indexOf('removed')).toBe(mine.length - 1);
    const runningPids = [...new Set(mine.filter((e) => e.liveness === 'running').map((e) => e.pid))];
    expect(runningPids).toEqual([pid, second, third]);
  } finally {
    unsubscribe();
  }
}
