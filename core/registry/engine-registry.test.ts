import { spawn, type ChildProcess } from 'node:child_process';
import { settle } from '../../test/support/outcomes.js';
import { Container, ContainerModule } from 'inversify';
import { coreModule } from '../create-container.js';
import { defaultConfig } from '../config/croot-config.js';
import { EngineContribution, type ContainerRecord, type ContainerSink } from './engine-contribution.js';
import { EngineRegistry, EngineRegistryOptions, type RegistryEvent } from './engine-registry.js';
import { CrootError } from '../errors/croot-error.js';
import { ProcessAnchor } from '../host/host-services.js';
import { ProcProcessAnchor } from '../host/proc-process-anchor.js';
import { startTimeOf } from '../../test/support/processes.js';
import { CountingAnchor } from '../../test/support/counting-anchor.js';

/** An engine as the contract describes one, driven by the test: it pushes what the test tells it to. */
class PushEngine implements EngineContribution {
  sink: ContainerSink | undefined;
  rechecks = 0;
  recheckTimes: number[] = [];
  stopped = false;
  constructor(
    readonly id: string,
    private readonly initial: readonly ContainerRecord[] | 'never' | 'fail',
  ) {}
  start(sink: ContainerSink): void {
    this.sink = sink;
    if (this.initial === 'fail') throw new Error('daemon exploded');
    if (this.initial === 'never') return;
    sink.replaceAll(this.initial);
    sink.health(true, `${this.initial.length} containers`);
  }
  async recheck(): Promise<void> {
    this.rechecks++;
    this.recheckTimes.push(performance.now());
  }
  async stop(): Promise<void> {
    this.stopped = true;
  }
}

function registryWith(options: EngineRegistryOptions, ...engines: EngineContribution[]): EngineRegistry {
  const c = new Container();
  c.loadSync(
    coreModule(defaultConfig()),
    new ContainerModule(({ bind }) => void bind(EngineRegistryOptions).toConstantValue(options)),
    ...engines.map((e) => new ContainerModule(({ bind }) => void bind(EngineContribution).toConstantValue(e))),
  );
  return c.get<EngineRegistry>(EngineRegistry);
}

const rec = (engine: string, id: string, name: string, extra: Partial<ContainerRecord> = {}): ContainerRecord => ({
  engine,
  id,
  names: [name],
  running: false,
  ...extra,
});

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof CrootError) return err.code;
    throw err;
  }
  return 'found';
}

const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

describe('DefaultEngineRegistry', () => {
  it('is filled from every bound EngineContribution, in order', () => {
    const r = registryWith({}, new PushEngine('docker', []), new PushEngine('podman', []));
    expect(r.ids()).toEqual(['docker', 'podman']);
  });

  it('rejects two engines with one id', () => {
    expect(() => registryWith({}, new PushEngine('docker', []), new PushEngine('docker', []))).toThrow(
      expect.objectContaining({ code: 'ERR_DUPLICATE_ENGINE', message: 'two engines registered with id "docker"' }),
    );
  });

  it('answers synchronously from the index once the engines have loaded', async () => {
    const d = rec('docker', 'aaa111000000', 'web');
    const p = rec('podman', 'bbb222000000', 'web');
    const r = registryWith({}, new PushEngine('docker', [d]), new PushEngine('podman', [p]));
    await r.start();
    expect(r.lookup('docker:web')).not.toBeInstanceOf(Promise);
    expect((r.lookup('docker:web') as { record: ContainerRecord }).record).toBe(d);
    expect((r.lookup('podman.web') as { record: ContainerRecord }).record).toBe(p);
    expect((r.lookup('bbb') as { record: ContainerRecord }).record).toBe(p);
    expect(codeOf(() => r.lookup('web'))).toBe('ERR_AMBIGUOUS_NAME');
  });

  it('follows what engines push after their first load', async () => {
    const engine = new PushEngine('docker', []);
    const r = registryWith({}, engine);
    await r.start();
    expect(codeOf(() => r.lookup('web'))).toBe('ERR_NO_CONTAINER');
    engine.sink?.upsert(rec('docker', 'ccc333000000', 'web'));
    expect((r.lookup('web') as { id: string }).id).toBe('ccc333000000');
    engine.sink?.upsert(rec('docker', 'ccc333000000', 'web2'));
    expect(codeOf(() => r.lookup('web'))).toBe('ERR_NO_CONTAINER');
    engine.sink?.remove('ccc333000000');
    expect(codeOf(() => r.lookup('web2'))).toBe('ERR_NO_CONTAINER');
    expect(r.containers()).toEqual([]);
  });

  it('answers a request for one engine while another has not loaded, and makes others wait for it', async () => {
    const stalled = new PushEngine('lxc', 'never');
    const r = registryWith({ firstLoadTimeoutMs: 60000 }, new PushEngine('docker', [rec('docker', 'ddd444000000', 'web')]), stalled);
    await r.start();
    expect((r.lookup('docker:web') as { id: string }).id).toBe('ddd444000000');
    const waiting = r.lookup('web');
    expect(waiting).toBeInstanceOf(Promise);
    // lxc also has a container named "web": answering docker's before lxc loaded would have been wrong.
    stalled.sink?.replaceAll([rec('lxc', 'web', 'web')]);
    await expect(waiting).rejects.toMatchObject({ code: 'ERR_AMBIGUOUS_NAME', details: { candidates: [{ engine: 'lxc', id: 'web' }, { engine: 'docker', id: 'ddd444000000' }] } });
    await r.stop();
  });

  it('makes a request for a container listed with its state not read yet (pending) wait for the engine\'s word on it, never answering "not running" before', async () => {
    const lxc = new PushEngine('lxc', [rec('lxc', 'vm1', 'vm1', { pending: true })]);
    const r = registryWith({ firstLoadTimeoutMs: 60000 }, lxc);
    await r.start();
    const waiting = r.lookup('vm1');
    expect(waiting).toBeInstanceOf(Promise);
    lxc.sink?.upsert(rec('lxc', 'vm1', 'vm1', { state: 'STOPPED' }));
    await expect(waiting).resolves.toMatchObject({ engine: 'lxc', id: 'vm1', running: false, state: 'STOPPED' });
    // Once stated, answered at once.
    expect((r.lookup('vm1') as { state?: string }).state).toBe('STOPPED');
    await r.stop();
  });

  it('says the engine has not stated a pending container when its word does not come within the first-load wait', async () => {
    const r = registryWith({ firstLoadTimeoutMs: 50 }, new PushEngine('lxc', [rec('lxc', 'vm1', 'vm1', { pending: true })]));
    await r.start();
    await expect(settle(() => r.lookup('lxc:vm1'))).rejects.toMatchObject({
      code: 'ERR_ENGINE_LOADING',
      status: -11,
      message: 'lxc has not said yet whether "lxc:vm1" runs',
      details: { ref: 'lxc:vm1', loading: ['lxc'] },
    });
    await r.stop();
  });

  it('never answers "not found" while an engine the name could belong to is still loading', async () => {
    const r = registryWith({ firstLoadTimeoutMs: 50 }, new PushEngine('docker', []), new PushEngine('lxc', 'never'));
    await r.start();
    await expect(settle(() => r.lookup('ghost'))).rejects.toMatchObject({ code: 'ERR_ENGINE_LOADING', status: -11 });
    // After the deadline requests no longer wait, and still say why they cannot be sure.
    expect(codeOf(() => r.lookup('ghost'))).toBe('ERR_ENGINE_LOADING');
    expect(codeOf(() => r.lookup('docker:ghost'))).toBe('ERR_NO_CONTAINER');
    await r.stop();
  });

  it('applies a long first list in slices: other engines answer meanwhile, and this one once it is all in', async () => {
    const many = Array.from({ length: 3000 }, (_, i) => rec('docker', `${i.toString(16).padStart(8, '0')}aaaabbbb`, `c${i}`));
    const small = new PushEngine('static', [rec('static', 'sbx', 'sbx')]);
    const big = new PushEngine('docker', 'never');
    const r = registryWith({ firstLoadTimeoutMs: 60000 }, small, big);
    await r.start();
    big.sink?.replaceAll(many);
    // The first slice is in, the rest waits for the event loop: docker is not loaded yet.
    expect(r.containers().length).toBeLessThan(3001);
    expect((r.lookup('static:sbx') as { id: string }).id).toBe('sbx');
    const late = r.lookup('c2999');
    expect(late).toBeInstanceOf(Promise);
    await expect(late).resolves.toMatchObject({ id: many[2999]?.id });
    expect(r.containers()).toHaveLength(3001);
    // A container pushed on its own while a long list is applied wins over the list's older record of it.
    const renamed = { ...many[2000], names: ['renamed'] } as ContainerRecord;
    big.sink?.replaceAll(many);
    big.sink?.upsert(renamed);
    await r.ready();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((r.lookup('renamed') as { id: string }).id).toBe(many[2000]?.id);
    expect(codeOf(() => r.lookup('c2000'))).toBe('ERR_NO_CONTAINER');
    // A second full list drops what it no longer holds.
    big.sink?.replaceAll(many.slice(0, 10));
    await new Promise((resolve) => setImmediate(resolve));
    expect(codeOf(() => r.lookup('c2999'))).toBe('ERR_NO_CONTAINER');
    expect(r.containers()).toHaveLength(11);
  });

  describe('a long list still being applied', () => {
    const many = Array.from({ length: 3000 }, (_, i) => rec('docker', `${i.toString(16).padStart(8, '0')}ccccdddd`, `m${i}`));
    /** Enough turns of the event loop for every slice of `many` to have been applied. */
    const turns = async (): Promise<void> => {
      for (let i = 0; i < 40; i++) await new Promise((resolve) => setImmediate(resolve));
    };
    const names = (r: EngineRegistry): string[] => r.containers().map((c) => c.names[0] as string).sort();

    it('is superseded by a newer list: nothing of the older one comes back after it', async () => {
      const engine = new PushEngine('docker', 'never');
      const r = registryWith({ firstLoadTimeoutMs: 60000 }, engine);
      await r.start();
      engine.sink?.replaceAll(many);
      engine.sink?.replaceAll([rec('docker', 'eeee00000000', 'newer')]);
      await r.ready();
      await turns();
      expect(names(r)).toEqual(['newer']);
      // A newer long list supersedes one as well.
      engine.sink?.replaceAll(many);
      engine.sink?.replaceAll(many.slice(1000, 1600));
      await turns();
      expect(names(r)).toEqual(many.slice(1000, 1600).map((c) => c.names[0] as string).sort());
      await r.stop();
    });

    it('leaves out a container removed on its own meanwhile, and keeps one added on its own', async () => {
      const engine = new PushEngine('docker', 'never');
      const r = registryWith({ firstLoadTimeoutMs: 60000 }, engine);
      await r.start();
      engine.sink?.replaceAll(many);
      engine.sink?.remove(many[2500]?.id as string);
      engine.sink?.upsert(rec('docker', 'ffff00000000', 'started-meanwhile'));
      await r.ready();
      expect(r.containers()).toHaveLength(3000);
      expect(codeOf(() => r.lookup('m2500'))).toBe('ERR_NO_CONTAINER');
      expect((r.lookup('started-meanwhile') as { id: string }).id).toBe('ffff00000000');
      // Pushes after the list is in are ordinary changes again; a later list holds what it says.
      engine.sink?.replaceAll(many.slice(0, 300));
      await turns();
      expect(r.containers()).toHaveLength(300);
      await r.stop();
    });

    it('holds back the background anchoring while it is applied, then holds every container without a request', async () => {
      const child = spawn('sleep', ['1000'], { stdio: 'ignore' });
      children.push(child);
      const pid = child.pid as number;
      const start = startTimeOf(pid) as number;
      const counting = new CountingAnchor(new ProcProcessAnchor('/proc'));
      const engine = new PushEngine('docker', 'never');
      const c = new Container();
      c.loadSync(
        coreModule(defaultConfig()),
        new ContainerModule(({ bind }) => {
          bind(EngineRegistryOptions).toConstantValue({ firstLoadTimeoutMs: 60000 });
          bind(ProcessAnchor).toConstantValue(counting);
          bind(EngineContribution).toConstantValue(engine);
        }),
      );
      const r = c.get<EngineRegistry>(EngineRegistry);
      await r.start();
      let loaded = false;
      const ready = r.ready().then(() => (loaded = true));
      engine.sink?.replaceAll(many.map((m) => ({ ...m, running: true, pid, pidStartTime: start })));
      let turnsWhileApplying = 0;
      while (!loaded) {
        expect(counting.opened).toBe(0);
        turnsWhileApplying++;
        await new Promise((resolve) => setImmediate(resolve));
      }
      await ready;
      // The list took several turns, none of which anchored anything; once it is in, the pass holds all of it,
      // and anchored() says so when it has.
      expect(turnsWhileApplying).toBeGreaterThan(2);
      let openedWhenAnchored: number | undefined;
      await r.anchored().then(() => (openedWhenAnchored = counting.opened));
      expect(openedWhenAnchored).toBe(many.length);
      await turns();
      expect(counting.opened).toBe(many.length);
      // Held by the process the kernel shows: reading them opens nothing more.
      const seen = r.containers().map((x) => [x.liveness, x.pid, x.startTime]);
      expect(new Set(seen.map((x) => x.join()))).toEqual(new Set([['running', pid, start].join()]));
      expect(counting.opened).toBe(many.length);
      await r.stop();
    });

    it('stops when the registry stops', async () => {
      const engine = new PushEngine('docker', 'never');
      const r = registryWith({ firstLoadTimeoutMs: 60000 }, engine);
      await r.start();
      engine.sink?.replaceAll(many);
      await r.stop();
      await turns();
      expect(r.containers()).toEqual([]);
    });
  });

  it('names the engines it still waits for, and the engines down, in what it answers', async () => {
    const r = registryWith(
      { firstLoadTimeoutMs: 50 },
      new PushEngine('docker', 'fail'),
      new PushEngine('lxc', 'never'),
      new PushEngine('podman', 'never'),
      new PushEngine('static', []),
    );
    expect(r.statuses().map((s) => [s.engine, s.available, s.reason])).toEqual([
      ['docker', false, 'loading'],
      ['lxc', false, 'loading'],
      ['podman', false, 'loading'],
      ['static', false, 'loading'],
    ]);
    await r.start();
    await r.ready();
    const errorOf = (ref: string): CrootError => {
      try {
        r.lookup(ref);
      } catch (err) {
        return err as CrootError;
      }
      throw new Error(`${ref} was found`);
    };
    const waiting = errorOf('ghost');
    expect([waiting.code, waiting.message, waiting.details]).toEqual([
      'ERR_ENGINE_LOADING',
      'no container matches "ghost" yet: lxc, podman have not finished loading',
      { ref: 'ghost', loading: ['lxc', 'podman'] },
    ]);
    expect(errorOf('lxc:ghost').message).toBe('no container matches "lxc:ghost" yet: lxc has not finished loading');
    const down = errorOf('docker:ghost');
    expect([down.code, down.message, down.details]).toEqual([
      'ERR_NO_CONTAINER',
      'no container matches "docker:ghost" (engines down: docker)',
      { ref: 'docker:ghost', down: ['docker'] },
    ]);
    // An engine down outside the reference's scope is not blamed.
    expect(errorOf('static:ghost').message).toBe('no container matches "static:ghost"');
    await r.stop();
  });

  it('stops listening to an engine once stopped, and a listener once unsubscribed; a health repeated is no change', async () => {
    const engine = new PushEngine('docker', []);
    const r = registryWith({}, engine);
    const events: string[] = [];
    const unsubscribe = r.subscribe((e) => events.push(e.kind === 'health' ? `health ${e.status.available} ${e.status.reason}` : e.kind));
    const others: string[] = [];
    r.subscribe((e) => others.push(e.kind));
    await r.start();
    engine.sink?.health(true, '0 containers');
    engine.sink?.health(false, 'daemon gone');
    engine.sink?.health(false, 'daemon gone');
    engine.sink?.health(false, 'socket refused');
    unsubscribe();
    engine.sink?.upsert(rec('docker', 'fff666000000', 'b'));
    expect(events).toEqual(['health true 0 containers', 'health false daemon gone', 'health false socket refused']);
    expect(others).toEqual(['health', 'health', 'health', 'added']);
    await r.stop();
    expect(engine.stopped).toBe(true);
    engine.sink?.replaceAll([rec('docker', 'aaa000000000', 'c')]);
    engine.sink?.upsert(rec('docker', 'bbb000000000', 'd'));
    engine.sink?.remove('fff666000000');
    engine.sink?.health(true, 'back');
    expect(r.containers()).toEqual([]);
    expect(others).toEqual(['health', 'health', 'health', 'added']);
  });

  it('records an engine that fails to start instead of failing, and does not wait for it', async () => {
    const r = registryWith({}, new PushEngine('docker', 'fail'), new PushEngine('lxc', []));
    await r.start();
    await r.ready();
    const statuses = r.statuses();
    expect(statuses.find((s) => s.engine === 'docker')).toMatchObject({ available: false, reason: expect.stringContaining('daemon exploded') });
    expect(statuses.find((s) => s.engine === 'lxc')).toMatchObject({ available: true });
    const miss = (() => {
      try {
        r.lookup('nothing');
      } catch (err) {
        return err as CrootError;
      }
      return undefined;
    })();
    expect(miss?.code).toBe('ERR_NO_CONTAINER');
    expect(miss?.message).toContain('engines down: docker');
  });

  it('tells listeners about index and health changes', async () => {
    const engine = new PushEngine('docker', []);
    const r = registryWith({}, engine);
    const events: RegistryEvent[] = [];
    r.subscribe((e) => events.push(e));
    await r.start();
    engine.sink?.upsert(rec('docker', 'eee555000000', 'a'));
    engine.sink?.health(false, 'daemon gone');
    engine.sink?.remove('eee555000000');
    expect(events.map((e) => e.kind)).toEqual(['health', 'added', 'health', 'removed']);
  });

  it('runs the safety-net re-check off any request, never sooner than its interval after the last', async () => {
    const engine = new PushEngine('docker', []);
    const r = registryWith({ recheckIntervalMs: 30 }, engine);
    const started = performance.now();
    await r.start();
    while (engine.rechecks < 3) await new Promise((resolve) => setTimeout(resolve, 10));
    await r.stop();
    const times = [started, ...engine.recheckTimes];
    for (let i = 1; i < times.length; i++) expect((times[i] as number) - (times[i - 1] as number)).toBeGreaterThanOrEqual(29);
    expect(engine.stopped).toBe(true);
  });

  it('holds a running container of any engine by its init process', async () => {
    const child = spawn('sleep', ['1000'], { stdio: 'ignore' });
    children.push(child);
    const engine = new PushEngine('static', [{ engine: 'static', id: 'sbx', names: ['sbx'], running: true, pid: child.pid as number }]);
    const r = registryWith({}, engine);
    await r.start();
    const found = r.lookup('sbx') as { liveness: string; pid: number };
    expect(found.liveness).toBe('running');
    expect(found.pid).toBe(child.pid);
    await r.stop();
  });
});
