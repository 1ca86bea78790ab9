import { spawn, type ChildProcess } from 'node:child_process';
import { ContainerModule } from 'inversify';
import { cgroupTruth } from '../../test/support/truth.js';
import { createCrootContainer } from '../create-container.js';
import { CrootError } from '../errors/croot-error.js';
import type { EventReport } from '../protocol/croot-extension.js';
import { Logger, StreamLogger } from '../logging/logger.js';
import { ContainerChanges, ContainerView, anchorReport, containerReport, errorFromReport, errorReport } from './container-view.js';
import { EngineContribution, type ContainerRecord, type ContainerSink } from './engine-contribution.js';
import { EngineRegistry } from './engine-registry.js';
import type { IndexedContainer } from './indexed-container.js';

/** An engine driven by the test: its first list, then whatever the test pushes. */
class PushEngine implements EngineContribution {
  sink: ContainerSink | undefined;
  constructor(
    readonly id: string,
    private readonly initial: readonly ContainerRecord[],
    private readonly reason = 'ok',
  ) {}
  start(sink: ContainerSink): void {
    this.sink = sink;
    sink.replaceAll(this.initial);
    sink.health(true, this.reason);
  }
  async stop(): Promise<void> {}
}

const children: ChildProcess[] = [];
function sleeper(): number {
  const child = spawn('sleep', ['1000'], { stdio: 'ignore' });
  children.push(child);
  return child.pid as number;
}
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

function viewOf(...engines: PushEngine[]): ContainerView {
  return containerOf([], ...engines).get<ContainerView>(ContainerView);
}

/** The container of a view over `engines`, its log lines (level and message) pushed to `lines`. */
function containerOf(lines: string[], ...engines: PushEngine[]): ReturnType<typeof createCrootContainer> {
  return createCrootContainer({
    modules: [
      new ContainerModule(({ bind }) => void bind(Logger).toConstantValue(new StreamLogger('debug', (line) => lines.push(line.replace(/^\S+ \S+\[\d+\] /, '').trimEnd())))),
      ...engines.map((e) => new ContainerModule(({ bind }) => void bind(EngineContribution).toConstantValue(e))),
    ],
  });
}

describe('RegistryContainerView', () => {
  it('lists engines by id and containers by engine, first name and id, with the state and PID croot answers by', async () => {
    const pid = sleeper();
    const view = viewOf(
      new PushEngine('podman', [{ engine: 'podman', id: 'bbbb00000000', names: ['web'], running: false, pid: 77 }], '1 container'),
      new PushEngine('docker', [
        { engine: 'docker', id: 'ffff00000000', names: ['zeta'], running: true, pid },
        { engine: 'docker', id: 'aaaa00000000', names: ['alpha'], running: true, pid, paused: true },
        { engine: 'docker', id: 'cccc00000000', names: ['alpha'], running: true, pid, restarting: true },
        { engine: 'docker', id: 'dddd00000000', names: [], running: true, pid: 0 },
      ]),
    );
    // Before any request the engines have not loaded.
    expect((await view.engines()).map((e) => [e.engine, e.available, e.reason])).toEqual([
      ['docker', false, 'loading'],
      ['podman', false, 'loading'],
    ]);
    await view.inspect('docker:zeta', []);
    const engines = await view.engines();
    expect(engines.map((e) => [e.engine, e.available, e.reason])).toEqual([
      ['docker', true, 'ok'],
      ['podman', true, '1 container'],
    ]);
    expect(Number.isNaN(Date.parse(engines[0]?.checkedAt as string))).toBe(false);
    expect((await view.containers()).map((c) => [c.engine, c.names[0], c.id, c.state, c.pid])).toEqual([
      ['docker', undefined, 'dddd00000000', 'stopped', null],
      ['docker', 'alpha', 'aaaa00000000', 'paused', pid],
      ['docker', 'alpha', 'cccc00000000', 'restarting', pid],
      ['docker', 'zeta', 'ffff00000000', 'running', pid],
      ['podman', 'web', 'bbbb00000000', 'stopped', null],
    ]);
  });

  it('inspects one container: the fields asked, each from the host, a field that cannot be read as null with its error', async () => {
    const pid = sleeper();
    const view = viewOf(
      new PushEngine('docker', [
        { engine: 'docker', id: 'abab00000000', names: ['up'], running: true, pid },
        { engine: 'docker', id: 'cdcd00000000', names: ['down'], running: false },
      ]),
    );
    const up = await view.inspect('up', ['pid', 'cgroup', 'hostname']);
    expect(up).toMatchObject({ engine: 'docker', id: 'abab00000000', names: ['up'], state: 'running', pid, cgroup: cgroupTruth(pid), hostname: null });
    // No native module here: nothing can enter the UTS namespace (docs/errors.md).
    expect(up.errors).toEqual({ hostname: expect.objectContaining({ code: 'ERR_NATIVE_LOAD' }) });
    expect(Object.keys(up.errors ?? {})).toEqual(['hostname']);
    const pidOnly = await view.inspect('docker:up', ['pid']);
    expect(pidOnly).toEqual({ engine: 'docker', id: 'abab00000000', names: ['up'], state: 'running', pid });
    const down = await view.inspect('down', ['pid', 'cgroup']);
    expect([down.pid, down.cgroup, down.errors?.pid?.code, down.errors?.cgroup?.code]).toEqual([null, null, 'ERR_NOT_RUNNING', 'ERR_NOT_RUNNING']);
    // Only what was asked is read: no PID is looked for, so none is missing.
    const cgroupOnly = await view.inspect('down', ['cgroup']);
    expect([cgroupOnly.cgroup, Object.keys(cgroupOnly.errors ?? {})]).toEqual([null, ['cgroup']]);
    // A PID not asked for is still the running container's, as the list gives it (the kernel's: the sleeper).
    expect(await view.inspect('up', ['cgroup'])).toEqual({ engine: 'docker', id: 'abab00000000', names: ['up'], state: 'running', pid, cgroup: cgroupTruth(pid) });
    await expect(view.inspect('nosuch', ['pid'])).rejects.toMatchObject({ code: 'ERR_NO_CONTAINER' });
  });

  it('tells every watcher each change once, with what there was when it began, until it stops', async () => {
    const engine = new PushEngine('docker', [{ engine: 'docker', id: 'eeee00000000', names: ['first'], running: false }]);
    const view = viewOf(engine);
    await view.inspect('first', []);
    const a: string[] = [];
    const b: string[] = [];
    const line = (e: EventReport): string => (e.type === 'engine' ? `${e.action} ${e.engine?.engine}` : `${e.action} ${e.container?.names.join(',')}`);
    const watchA = view.watch((e) => a.push(line(e)));
    const watchB = view.watch((e) => b.push(line(e)));
    expect(watchA.containers.map((c) => c.names)).toEqual([['first']]);
    expect(watchA.engines.map((e) => [e.engine, e.available])).toEqual([['docker', true]]);
    engine.sink?.upsert({ engine: 'docker', id: 'eeee00000000', names: ['renamed'], running: false });
    watchA.stop();
    watchA.stop();
    engine.sink?.upsert({ engine: 'docker', id: 'ffff00000000', names: ['second'], running: false });
    watchB.stop();
    engine.sink?.remove('ffff00000000');
    expect(a).toEqual(['updated renamed']);
    expect(b).toEqual(['updated renamed', 'added second']);
    // A new watch after all stopped starts afresh.
    const c: string[] = [];
    const watchC = view.watch((e) => c.push(line(e)));
    expect(watchC.containers.map((x) => x.names)).toEqual([['renamed']]);
    engine.sink?.health(false, 'daemon gone');
    watchC.stop();
    expect(c).toEqual(['health docker']);
  });

  it('tells watchers nothing of an update that changes nothing a report shows', async () => {
    const engine = new PushEngine('docker', [{ engine: 'docker', id: 'abcd00000000', names: ['h'], running: false, hostname: 'one' }]);
    const view = viewOf(engine);
    await view.inspect('h', []);
    const seen: EventReport[] = [];
    const watch = view.watch((e) => seen.push(e));
    engine.sink?.upsert({ engine: 'docker', id: 'abcd00000000', names: ['h'], running: false, hostname: 'two' });
    engine.sink?.upsert({ engine: 'docker', id: 'abcd00000000', names: ['h2'], running: false, hostname: 'two' });
    watch.stop();
    expect(seen.map((e) => [e?.action, e?.container?.names])).toEqual([['updated', ['h2']]]);
  });

  it('ends its one subscription to the registry when the last watcher stops; a stop called again ends nothing else', async () => {
    const engine = new PushEngine('docker', [{ engine: 'docker', id: 'eeee00000000', names: ['first'], running: false }]);
    const container = containerOf([], engine);
    const registry = container.get<EngineRegistry>(EngineRegistry);
    let subscribed = 0;
    const subscribe = registry.subscribe.bind(registry);
    registry.subscribe = (listener) => {
      subscribed++;
      const unsubscribe = subscribe(listener);
      return () => {
        subscribed--;
        unsubscribe();
      };
    };
    const view = container.get<ContainerView>(ContainerView);
    await view.inspect('first', []);
    const seen: string[] = [];
    const listener = (e: EventReport): void => void seen.push(`${e.action} ${e.container?.names.join(',')}`);
    const first = view.watch(listener);
    const other = view.watch(() => undefined);
    expect(subscribed).toBe(1);
    first.stop();
    other.stop();
    expect(subscribed).toBe(0);
    // The same listener watching again: the first watch's stop, called again, leaves the new one be.
    const again = view.watch(listener);
    first.stop();
    engine.sink?.upsert({ engine: 'docker', id: 'eeee00000000', names: ['renamed'], running: false });
    expect([seen, subscribed]).toEqual([['updated renamed'], 1]);
    again.stop();
    expect(subscribed).toBe(0);
    // One listener in two watches: stopping both ends the subscription once.
    const one = view.watch(listener);
    const two = view.watch(listener);
    one.stop();
    two.stop();
    expect(subscribed).toBe(0);
  });

  it('still tells every watcher when one of them throws', async () => {
    const engine = new PushEngine('docker', []);
    const lines: string[] = [];
    const view = containerOf(lines, engine).get<ContainerView>(ContainerView);
    await view.engines();
    await expect(view.inspect('x', [])).rejects.toMatchObject({ code: 'ERR_NO_CONTAINER' });
    const seen: string[] = [];
    view.watch(() => {
      throw new Error('listener broke');
    });
    view.watch((e) => seen.push(e.type));
    // The registry logs the failure; the other watcher is told and the index holds the container.
    engine.sink?.upsert({ engine: 'docker', id: 'a1a100000000', names: ['n'], running: false });
    expect(seen).toEqual(['container']);
    expect(lines.filter((l) => l.includes('listener'))).toEqual(['ERROR registry listener failed error="listener broke"']);
    expect((await view.containers()).map((c) => c.id)).toEqual(['a1a100000000']);
  });
});

describe('ContainerChanges', () => {
  const container = (names: string[], liveness: IndexedContainer['liveness'], pid?: number): IndexedContainer =>
    ({ engine: 'docker', id: 'abc000000000', names, running: liveness !== 'stopped', pid, liveness }) as unknown as IndexedContainer;

  it('says added, updated with what it was, exited when croot saw the init end, removed; nothing for a change no report shows', () => {
    const changes = new ContainerChanges([]);
    const now = Date.UTC(2026, 0, 2, 3, 4, 5);
    const added = changes.translate({ kind: 'added', container: container(['a'], 'running', 42) }, now);
    expect(added).toEqual({
      time: '2026-01-02T03:04:05.000Z',
      type: 'container',
      action: 'added',
      container: { engine: 'docker', id: 'abc000000000', names: ['a'], state: 'running', pid: 42 },
    });
    expect(changes.translate({ kind: 'updated', container: container(['a'], 'running', 42) }, now)).toBeUndefined();
    const renamed = changes.translate({ kind: 'updated', container: container(['b'], 'running', 42) }, now);
    expect(renamed).toMatchObject({ type: 'container', action: 'updated', container: { names: ['b'] }, was: { names: ['a'] } });
    expect(changes.translate({ kind: 'updated', container: container(['b', 'c'], 'running', 42) }, now)).toMatchObject({ action: 'updated' });
    expect(changes.translate({ kind: 'updated', container: container(['c', 'b'], 'running', 42) }, now)).toMatchObject({ action: 'updated' });
    expect(changes.translate({ kind: 'updated', container: container(['c', 'b'], 'running', 43) }, now)).toMatchObject({ action: 'updated', was: { pid: 42 } });
    const exited = changes.translate({ kind: 'updated', container: container(['c', 'b'], 'exited', 43) }, now);
    expect(exited).toMatchObject({ action: 'exited', container: { state: 'stopped', pid: null }, was: { state: 'running', pid: 43 } });
    // Stopped by the engine after croot saw the exit: nothing a report shows changes.
    expect(changes.translate({ kind: 'updated', container: container(['c', 'b'], 'stopped') }, now)).toBeUndefined();
    expect(changes.translate({ kind: 'updated', container: container(['c', 'b'], 'running', 50) }, now)).toMatchObject({ action: 'updated' });
    expect(changes.translate({ kind: 'updated', container: container(['c', 'b'], 'stopped') }, now)).toMatchObject({ action: 'updated' });
    expect(changes.translate({ kind: 'removed', container: container(['c', 'b'], 'stopped') }, now)).toMatchObject({ action: 'removed' });
    // Once removed it is new again.
    expect(changes.translate({ kind: 'updated', container: container(['c', 'b'], 'stopped') }, now)).toMatchObject({ action: 'added' });
  });

  it('tells a change of state alone, or of any one of several names; an exit once, later changes as updates', () => {
    const changes = new ContainerChanges([container(['a', 'b'], 'running', 42)]);
    const paused = { ...container(['a', 'b'], 'running', 42), paused: true } as IndexedContainer;
    expect(changes.translate({ kind: 'updated', container: paused })).toMatchObject({ action: 'updated', container: { state: 'paused' }, was: { state: 'running' } });
    const renamed = { ...container(['a', 'c'], 'running', 42), paused: true } as IndexedContainer;
    expect(changes.translate({ kind: 'updated', container: renamed })).toMatchObject({
      action: 'updated',
      container: { names: ['a', 'c'] },
      was: { names: ['a', 'b'] },
    });
    expect(changes.translate({ kind: 'updated', container: container(['a', 'c'], 'exited', 42) })?.action).toBe('exited');
    // Renamed after croot saw its init end: the exit was told already.
    expect(changes.translate({ kind: 'updated', container: container(['d'], 'exited', 42) })).toMatchObject({ action: 'updated', container: { names: ['d'] } });
  });

  it('tells apart containers of two engines that share an id', () => {
    const of = (engine: string, names: string[]): IndexedContainer =>
      ({ engine, id: 'abc000000000', names, running: false, pid: undefined, liveness: 'stopped' }) as unknown as IndexedContainer;
    const changes = new ContainerChanges([]);
    expect(changes.translate({ kind: 'added', container: of('docker', ['d']) })?.action).toBe('added');
    expect(changes.translate({ kind: 'added', container: of('podman', ['p']) })?.action).toBe('added');
    expect(changes.translate({ kind: 'updated', container: of('docker', ['d']) })).toBeUndefined();
    expect(changes.translate({ kind: 'removed', container: of('podman', ['p']) })?.action).toBe('removed');
    expect(changes.translate({ kind: 'updated', container: of('docker', ['d2']) })).toMatchObject({ action: 'updated', was: { engine: 'docker', names: ['d'] } });
  });

  it('starts from the containers it is given', () => {
    const changes = new ContainerChanges([container(['a'], 'running', 42)]);
    expect(changes.translate({ kind: 'updated', container: container(['a'], 'running', 42) })).toBeUndefined();
    expect(changes.translate({ kind: 'health', status: { engine: 'lxc', available: false, reason: 'gone', checkedAt: 0 } }, 1000)).toEqual({
      time: '1970-01-01T00:00:01.000Z',
      type: 'engine',
      action: 'health',
      engine: { engine: 'lxc', available: false, reason: 'gone', checkedAt: '1970-01-01T00:00:00.000Z' },
    });
  });
});

describe('reports', () => {
  it('says how the registry holds init processes: without the native module, through /proc', () => {
    expect(viewOf().anchor()).toEqual({ mode: 'proc', reason: 'the native module is not loaded' });
  });

  it('gives no PID for a record that says running with PID 0 or below: no container process has one', () => {
    for (const pid of [0, -1]) {
      expect(containerReport({ engine: 'lxc', id: 'box', names: ['box'], running: true, pid })).toEqual({ engine: 'lxc', id: 'box', names: ['box'], state: 'running', pid: null });
    }
  });

  it('describes how init processes are held', () => {
    expect(anchorReport({ kind: 'pidfd' })).toEqual({ mode: 'pidfd' });
    expect(anchorReport({ kind: 'proc', reason: 'kernel too old' })).toEqual({ mode: 'proc', reason: 'kernel too old' });
    expect(anchorReport({ kind: 'proc' })).toEqual({ mode: 'proc', reason: 'pidfds are not used' });
  });

  it('turns an error into a report and a report back into a CrootError', () => {
    const miss = new CrootError('ERR_NO_CONTAINER', 'no container matches "x"');
    expect(errorReport(miss)).toEqual({ code: 'ERR_NO_CONTAINER', status: miss.status, message: 'no container matches "x"' });
    expect(errorReport(new Error('boom'))).toMatchObject({ code: 'ERR_SYSTEM', message: 'boom' });
    expect(errorReport('text')).toMatchObject({ code: 'ERR_SYSTEM', message: 'text' });
    const back = errorFromReport({ code: 'ERR_NO_CONTAINER', status: -12399, message: 'm' });
    expect([back.code, back.status, back.message]).toEqual(['ERR_NO_CONTAINER', -12399, 'm']);
    const foreign = errorFromReport({ code: 'ERR_FROM_THE_FUTURE', status: -5, message: 'n' });
    expect([foreign.code, foreign.status, foreign.message]).toEqual(['ERR_REMOTE', -5, 'n']);
  });
});
