import { Container, ContainerModule } from 'inversify';
import { errnoTruth } from '../../test/support/truth.js';
import { coreModule } from '../create-container.js';
import { defaultConfig, type CrootConfig } from '../config/croot-config.js';
import { CrootError } from '../errors/croot-error.js';
import { Logger, StreamLogger } from '../logging/logger.js';
import { EngineContribution, type ContainerRecord, type ContainerSink } from './engine-contribution.js';
import { EngineRegistry, EngineRegistryOptions } from './engine-registry.js';

/** An engine driven by the test: pushes `initial` at start; its re-check and reconfigure do what the test says. */
class ScriptedEngine implements EngineContribution {
  sink: ContainerSink | undefined;
  rechecks = 0;
  configs: CrootConfig[] = [];
  constructor(
    readonly id: string,
    private readonly initial: readonly ContainerRecord[],
    private readonly failing: { recheck?: boolean; reconfigure?: boolean } = {},
  ) {}
  start(sink: ContainerSink): void {
    this.sink = sink;
    sink.replaceAll(this.initial);
  }
  async recheck(): Promise<void> {
    this.rechecks++;
    if (this.failing.recheck === true) throw new Error(`${this.id} daemon gone`);
  }
  async reconfigure(config: CrootConfig): Promise<void> {
    this.configs.push(config);
    if (this.failing.reconfigure === true) throw new Error('bad file');
  }
  async stop(): Promise<void> {}
}

/** An engine with neither re-check nor reconfigure; `loads: false` never pushes a list, `stop: 'fail'` fails to stop. */
class PlainEngine implements EngineContribution {
  starts = 0;
  stops = 0;
  constructor(
    readonly id: string,
    private readonly behaviour: { loads?: boolean; stop?: 'fail' } = {},
  ) {}
  start(sink: ContainerSink): void {
    this.starts++;
    if (this.behaviour.loads !== false) sink.replaceAll([]);
  }
  async stop(): Promise<void> {
    this.stops++;
    if (this.behaviour.stop === 'fail') throw new Error('stuck');
  }
}

function registryWith(lines: string[], options: EngineRegistryOptions, ...engines: EngineContribution[]): EngineRegistry {
  const c = new Container();
  c.loadSync(
    coreModule(defaultConfig({ env: {} })),
    new ContainerModule(({ bind }) => {
      bind(EngineRegistryOptions).toConstantValue(options);
      bind(Logger).toConstantValue(new StreamLogger('debug', (line) => lines.push(line.replace(/^\S+ \S+\[\d+\] /, '').trimEnd())));
      for (const e of engines) bind(EngineContribution).toConstantValue(e);
    }),
  );
  return c.get<EngineRegistry>(EngineRegistry);
}

const rec = (id: string, name: string): ContainerRecord => ({ engine: 'docker', id, names: [name], running: false });

function found(r: EngineRegistry, ref: string): string {
  try {
    const c = r.lookup(ref);
    if (c instanceof Promise) {
      c.catch(() => undefined);
      return 'promise';
    }
    return c.id;
  } catch (err) {
    if (err instanceof CrootError) return `${err.code} ${err.status}`;
    throw err;
  }
}

describe('DefaultEngineRegistry upkeep', () => {
  it('hands a re-read configuration to every engine that takes one, logging one that fails without holding the others up', async () => {
    const lines: string[] = [];
    const bad = new ScriptedEngine('lxc', [], { reconfigure: true });
    const good = new ScriptedEngine('static', []);
    const r = registryWith(lines, {}, bad, new PlainEngine('docker'), good);
    await r.start();
    const config = defaultConfig({ env: {}, disabledEngines: ['x'] });
    await r.reconfigure(config);
    expect(bad.configs).toEqual([config]);
    expect(good.configs).toEqual([config]);
    expect(lines).toEqual(['ERROR engine lxc: reconfigure failed error="bad file"']);
    await r.stop();
  });

  it('keeps re-checking an engine whose re-check fails, logging each failure', async () => {
    const lines: string[] = [];
    const engine = new ScriptedEngine('docker', [], { recheck: true });
    const r = registryWith(lines, { recheckIntervalMs: 5, recheckCostFactor: 1 }, engine);
    await r.start();
    while (engine.rechecks < 3) await new Promise((resolve) => setTimeout(resolve, 5));
    await r.stop();
    expect(lines.slice(0, 2)).toEqual(['WARN engine docker: re-check failed error="docker daemon gone"', 'WARN engine docker: re-check failed error="docker daemon gone"']);
  });

  it('logs an engine that goes down and comes back, not its first word', async () => {
    const lines: string[] = [];
    const engine = new ScriptedEngine('docker', []);
    const r = registryWith(lines, {}, engine);
    await r.start();
    engine.sink?.health(true, '0 containers');
    engine.sink?.health(true, '1 container');
    engine.sink?.health(false, 'socket refused');
    engine.sink?.health(true, '2 containers');
    expect(lines).toEqual(['WARN engine docker: unavailable reason="socket refused"', 'INFO engine docker: available reason="2 containers"']);
    expect(r.statuses().map((s) => [s.engine, s.available, s.reason])).toEqual([['docker', true, '2 containers']]);
    await r.stop();
  });

  it('gives the engines it holds by id, and how it holds init processes', async () => {
    const engine = new ScriptedEngine('docker', []);
    const r = registryWith([], {}, engine, new PlainEngine('lxc'));
    expect(r.get('docker')).toBe(engine);
    expect(r.get('podman')).toBeUndefined();
    // Core alone has no pidfds: /proc start-time checks, and why.
    expect(r.anchorMode()).toEqual({ kind: 'proc', reason: 'the native module is not loaded' });
  });

  it('starts by itself on the first lookup, and answers in the order exact id, exact name, unique id prefix', async () => {
    const engine = new ScriptedEngine('docker', [
      rec('aaaa11112222', 'bbbb'),
      rec('bbbb33334444', 'x'),
      rec('cccc55556666', 'aaaa11112222'),
      rec('dddd00000001', 'y'),
      rec('dddd00000002', 'z'),
    ]);
    const r = registryWith([], {}, engine);
    // Not started: the lookup starts the engines, which push their lists at once.
    expect(found(r, 'aaaa11112222')).toBe('aaaa11112222');
    expect(found(r, 'bbbb')).toBe('aaaa11112222');
    expect(found(r, 'bbbb3')).toBe('bbbb33334444');
    expect(found(r, 'docker.cccc')).toBe('cccc55556666');
    expect(found(r, 'dddd00000002')).toBe('dddd00000002');
    expect(found(r, 'dddd')).toBe(`ERR_AMBIGUOUS_NAME -${errnoTruth('ENOTUNIQ')}`);
    expect(found(r, 'eeee')).toBe('ERR_NO_CONTAINER -12399');
    await r.stop();
  });
  it('works with no engine at all: nothing to wait for, nothing found', async () => {
    const c = new Container();
    c.loadSync(coreModule(defaultConfig({ env: {} })));
    const r = c.get<EngineRegistry>(EngineRegistry);
    await r.start();
    expect([r.ids(), r.statuses(), r.containers()]).toEqual([[], [], []]);
    expect(found(r, 'web')).toBe('ERR_NO_CONTAINER -12399');
  });

  it('takes a full list as any iterable, not only an array', async () => {
    const engine = new ScriptedEngine('docker', []);
    const r = registryWith([], {}, engine);
    await r.start();
    engine.sink?.replaceAll(new Set([rec('aaaa00000000', 'one'), rec('bbbb00000000', 'two')]));
    expect(r.containers().map((c) => c.names[0])).toEqual(['one', 'two']);
    function* many(): Generator<ContainerRecord> {
      for (let i = 0; i < 600; i++) yield rec(`${i.toString(16).padStart(8, '0')}eeee`, `g${i}`);
    }
    engine.sink?.replaceAll(many());
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(r.containers()).toHaveLength(600);
    expect(found(r, 'g599')).toBe('00000257eeee');
    await r.stop();
  });
  it('starts each engine once however often it is started', async () => {
    const engine = new PlainEngine('docker');
    const r = registryWith([], {}, engine);
    await Promise.all([r.start(), r.start()]);
    await r.start();
    found(r, 'x');
    expect(engine.starts).toBe(1);
    await r.stop();
  });

  it('answers without an engine whose first load is overdue, logging it once', async () => {
    const lines: string[] = [];
    const r = registryWith(lines, { firstLoadTimeoutMs: 20 }, new PlainEngine('lxc', { loads: false }), new PlainEngine('docker'));
    await r.start();
    expect(found(r, 'x')).toBe('promise');
    await r.ready();
    expect(lines).toEqual(['WARN engine lxc: first load not done after 20 ms; answering without it']);
    // No longer waited for, and still named as the reason a name may be missing.
    expect(found(r, 'x')).toBe(`ERR_ENGINE_LOADING -${errnoTruth('EAGAIN')}`);
    await r.stop();
  });

  it('stops every engine, also when one fails to stop, and lets nobody wait for a load that will not come', async () => {
    const stuck = new PlainEngine('lxc', { loads: false, stop: 'fail' });
    const other = new PlainEngine('docker', { loads: false });
    const r = registryWith([], { firstLoadTimeoutMs: 600_000 }, stuck, other);
    await r.start();
    const waiting = r.ready();
    await r.stop();
    await waiting;
    expect([stuck.stops, other.stops]).toEqual([1, 1]);
  });

  it('tells every listener a change although one of them throws, and logs the failure', async () => {
    const lines: string[] = [];
    const engine = new ScriptedEngine('docker', []);
    const r = registryWith(lines, {}, engine);
    await r.start();
    const seen: string[] = [];
    r.subscribe(() => {
      throw new Error('listener broke');
    });
    r.subscribe((e) => seen.push(e.kind));
    engine.sink?.upsert(rec('aaaa00000000', 'a'));
    expect(seen).toEqual(['added']);
    expect(lines).toEqual(['ERROR registry listener failed error="listener broke"']);
    await r.stop();
  });
  it('waits for every engine when the name has no known engine before a colon, however it starts', async () => {
    const docker = new ScriptedEngine('docker', []);
    const late = new PlainEngine('lxc', { loads: false });
    const r = registryWith([], { firstLoadTimeoutMs: 600_000 }, docker, late);
    await r.start();
    // "dockerd" starts like "docker", "svc:1" has a colon: neither is docker's alone, so lxc is waited for.
    expect(found(r, 'dockerd')).toBe('promise');
    expect(found(r, 'svc:1')).toBe('promise');
    expect(found(r, 'docker:svc')).toBe('ERR_NO_CONTAINER -12399');
    await r.stop();
  });
});
