import { Container, ContainerModule } from 'inversify';
import { coreModule } from './create-container.js';
import { defaultConfig } from './config.js';
import { EngineContribution, type ContainerRecord, type EngineStatus } from './engine.js';
import { EngineRegistry } from './engine-registry.js';

class ListEngine implements EngineContribution {
  calls = 0;
  constructor(
    readonly id: string,
    private readonly list: readonly ContainerRecord[],
    private readonly failStart = false,
  ) {}
  async containers(): Promise<readonly ContainerRecord[]> {
    this.calls += 1;
    return this.list;
  }
  status(): EngineStatus {
    return { engine: this.id, available: true, reason: `${this.list.length} containers`, checkedAt: 0 };
  }
  async start(): Promise<void> {
    if (this.failStart) throw new Error('daemon exploded');
  }
}

function registryWith(...engines: EngineContribution[]): EngineRegistry {
  const c = new Container();
  c.loadSync(
    coreModule(defaultConfig()),
    ...engines.map((e) => new ContainerModule(({ bind }) => void bind(EngineContribution).toConstantValue(e))),
  );
  return c.get<EngineRegistry>(EngineRegistry);
}

const rec = (engine: string, id: string, name: string): ContainerRecord => ({ engine, id, names: [name], running: true, pid: 1 });

describe('DefaultEngineRegistry', () => {
  it('is filled from every bound EngineContribution, in order', () => {
    const r = registryWith(new ListEngine('docker', []), new ListEngine('podman', []));
    expect(r.ids()).toEqual(['docker', 'podman']);
  });

  it('yields no engines and no containers when none is bound', async () => {
    const r = registryWith();
    expect(r.ids()).toEqual([]);
    expect(await r.containers()).toEqual([]);
    await expect(r.lookup('web')).rejects.toMatchObject({ code: 'ERR_NO_CONTAINER', status: -12399 });
  });

  it('rejects two engines with one id', () => {
    expect(() => registryWith(new ListEngine('docker', []), new ListEngine('docker', []))).toThrow(/two engines registered with id "docker"/);
  });

  it('looks names up across the union of engines, and by ENGINE:NAME', async () => {
    const d = rec('docker', 'aaa111000000', 'web');
    const p = rec('podman', 'bbb222000000', 'web');
    const r = registryWith(new ListEngine('docker', [d]), new ListEngine('podman', [p]));
    await expect(r.lookup('web')).rejects.toMatchObject({ code: 'ERR_AMBIGUOUS_NAME' });
    await expect(r.lookup('docker:web')).resolves.toBe(d);
    await expect(r.lookup('podman:web')).resolves.toBe(p);
    await expect(r.lookup('bbb')).resolves.toBe(p);
  });

  it('returns the same union while no engine changed', async () => {
    const r = registryWith(new ListEngine('docker', [rec('docker', 'a', 'x')]), new ListEngine('lxc', []));
    const first = await r.containers();
    expect(await r.containers()).toBe(first);
  });

  it('records an engine that fails to start instead of failing', async () => {
    const r = registryWith(new ListEngine('docker', [], true), new ListEngine('lxc', []));
    await r.start();
    const statuses = r.statuses();
    expect(statuses.find((s) => s.engine === 'docker')).toMatchObject({ available: false, reason: expect.stringContaining('daemon exploded') });
    expect(statuses.find((s) => s.engine === 'lxc')).toMatchObject({ available: true });
  });
});
