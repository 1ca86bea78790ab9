import { join, resolve } from 'node:path';
import { settle } from '../test/support/outcomes.js';
import { createCrootContainer, loadPluginModule } from './create-container.js';
import { EngineRegistry } from './engine-registry.js';
import { ContainerProcessIdResolver } from './resolvers.js';

const fixtures = resolve(__dirname, '..', 'test', 'fixtures');

describe('loadPluginModule', () => {
  it('loads a third-party engine from its package and resolves through it like a built-in one', async () => {
    const module = loadPluginModule(join(fixtures, 'plugin-example'));
    const container = createCrootContainer({ modules: [module] });
    const registry = container.get<EngineRegistry>(EngineRegistry);
    expect(registry.ids()).toEqual(['example']);
    await expect(settle(() => container.get<ContainerProcessIdResolver>(ContainerProcessIdResolver).resolveProcessId('example:self'))).resolves.toBe(process.pid);
  });

  it('finds a package by a relative path from the given folder', () => {
    expect(() => loadPluginModule('./plugin-example', fixtures)).not.toThrow();
  });

  it('says which package is missing', () => {
    expect(() => loadPluginModule('croot-engine-that-does-not-exist', fixtures)).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringContaining('croot-engine-that-does-not-exist') }),
    );
  });

  it('refuses a package without a croot.module field', () => {
    expect(() => loadPluginModule(join(fixtures, 'plugin-without-module'))).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG', message: expect.stringContaining('no "croot.module" field') }),
    );
  });
});
