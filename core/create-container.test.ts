import { join, resolve } from 'node:path';
import { createCrootContainer, loadPluginModule } from './create-container.js';
import { EngineRegistry } from './engine-registry.js';
import { ContainerProcessIdResolver } from './resolvers.js';

const fixtures = resolve(__dirname, '..', 'test', 'fixtures');

describe('loadPluginModule', () => {
  it('loads a third-party engine from its package and resolves through it like a built-in one', async () => {
    const module = await loadPluginModule(join(fixtures, 'plugin-example'));
    const container = createCrootContainer({ modules: [module] });
    const registry = container.get<EngineRegistry>(EngineRegistry);
    expect(registry.ids()).toEqual(['example']);
    await expect(container.get<ContainerProcessIdResolver>(ContainerProcessIdResolver).resolveProcessId('example:self')).resolves.toBe(process.pid);
  });

  it('finds a package by a path relative to the first folder it is given (the config file’s), not the current directory', async () => {
    const container = createCrootContainer({ modules: [await loadPluginModule('./plugin-example', fixtures)] });
    expect(container.get<EngineRegistry>(EngineRegistry).ids()).toEqual(['example']);
    await expect(loadPluginModule('./test/fixtures/plugin-example', [])).rejects.toMatchObject({ code: 'ERR_CONFIG' });
  });

  it('says which package is missing, and where it looked', async () => {
    await expect(loadPluginModule('croot-engine-that-does-not-exist', fixtures)).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      message: expect.stringContaining(`"croot-engine-that-does-not-exist" not found; looked in ${join(fixtures, 'node_modules')}`),
    });
  });

  it('refuses a package without a croot.module field', async () => {
    await expect(loadPluginModule(join(fixtures, 'plugin-without-module'))).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      message: expect.stringContaining('no "croot.module" field'),
    });
  });

  it('leaves a disabled engine out of the registry, whoever bound it', async () => {
    const module = await loadPluginModule(join(fixtures, 'plugin-example'));
    const container = createCrootContainer({ config: { disabledEngines: ['example'] }, modules: [module] });
    expect(container.get<EngineRegistry>(EngineRegistry).ids()).toEqual([]);
  });
});
