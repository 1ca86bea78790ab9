import { join, resolve } from 'node:path';
import { settle } from '../test/support/outcomes.js';
import { cgroupTruth } from '../test/support/truth.js';
import { CrootConfig } from './config/croot-config.js';
import { createCrootContainer, loadPluginModule } from './create-container.js';
import { EngineRegistry } from './registry/engine-registry.js';
import { ContainerCGroupResolver, ContainerHostnameResolver, ContainerProcessIdResolver } from './registry/container-resolvers.js';

const fixtures = resolve(__dirname, '..', 'test', 'fixtures');

describe('createCrootContainer', () => {
  it('binds the configuration it is given, defaults filled in', () => {
    const container = createCrootContainer({ config: { socketPath: '/tmp/croot-t/root.socket', allowUids: [0, 42] } });
    expect(container.get<CrootConfig>(CrootConfig)).toMatchObject({ socketPath: '/tmp/croot-t/root.socket', allowUids: [0, 42], procRoot: '/proc' });
  });

  it('answers hostnames, PIDs and cgroups through one registry, which knows the engines of the modules given', async () => {
    const container = createCrootContainer({ modules: [await loadPluginModule(join(fixtures, 'plugin-example'))] });
    const registry = container.get<EngineRegistry>(EngineRegistry);
    expect(container.get<EngineRegistry>(EngineRegistry)).toBe(registry);
    expect(registry.ids()).toEqual(['example']);
    // The cgroup resolver reads the kernel's answer for the engine's PID: this process's.
    const cgroup = await settle(() => container.get<ContainerCGroupResolver>(ContainerCGroupResolver).resolveCGroupName('example:self'));
    expect([cgroup.pid, cgroup.value]).toEqual([process.pid, cgroupTruth(process.pid)]);
    // Without the native module nothing can enter a UTS namespace: a clear ERR_NATIVE_LOAD, not a guess (docs/errors.md).
    await expect(settle(() => container.get<ContainerHostnameResolver>(ContainerHostnameResolver).resolveHostname('example:self'))).rejects.toMatchObject({
      code: 'ERR_NATIVE_LOAD',
    });
  });

  it('builds containers that share nothing', () => {
    const a = createCrootContainer({ config: { socketPath: '/tmp/a.socket' } });
    const b = createCrootContainer({ config: { socketPath: '/tmp/b.socket' } });
    expect([a.get<CrootConfig>(CrootConfig).socketPath, b.get<CrootConfig>(CrootConfig).socketPath]).toEqual(['/tmp/a.socket', '/tmp/b.socket']);
    expect(a.get(EngineRegistry)).not.toBe(b.get(EngineRegistry));
  });
});

describe('loadPluginModule', () => {
  it('loads a third-party engine from its package and resolves through it like a built-in one', async () => {
    const module = await loadPluginModule(join(fixtures, 'plugin-example'));
    const container = createCrootContainer({ modules: [module] });
    const registry = container.get<EngineRegistry>(EngineRegistry);
    expect(registry.ids()).toEqual(['example']);
    await expect(settle(() => container.get<ContainerProcessIdResolver>(ContainerProcessIdResolver).resolveProcessId('example:self'))).resolves.toBe(process.pid);
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
