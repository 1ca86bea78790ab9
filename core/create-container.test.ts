import { join, resolve } from 'node:path';
import { settle } from '../test/support/outcomes.js';
import type { ContainerModule } from 'inversify';
import { cgroupTruth } from '../test/support/truth.js';
import { CrootConfig } from './config.js';
import { createCrootContainer, loadPluginModule } from './create-container.js';
import { EngineRegistry } from './engine-registry.js';
import { ContainerCGroupResolver, ContainerHostnameResolver, ContainerProcessIdResolver } from './resolvers.js';

const fixtures = resolve(__dirname, '..', 'test', 'fixtures');

/** The engine ids a module registers and the PID it resolves `example:self` to. */
async function behaviourOf(module: ContainerModule): Promise<{ ids: readonly string[]; self: number }> {
  const container = createCrootContainer({ modules: [module] });
  const self = await container.get<ContainerProcessIdResolver>(ContainerProcessIdResolver).resolveProcessId('example:self');
  return { ids: container.get<EngineRegistry>(EngineRegistry).ids(), self };
}

describe('createCrootContainer', () => {
  it('binds the configuration it is given, defaults filled in', () => {
    const container = createCrootContainer({ config: { socketPath: '/tmp/croot-t/root.socket', allowUids: [0, 42] } });
    expect(container.get<CrootConfig>(CrootConfig)).toMatchObject({ socketPath: '/tmp/croot-t/root.socket', allowUids: [0, 42], procRoot: '/proc' });
  });

  it('answers hostnames, PIDs and cgroups through one registry, which knows the engines of the modules given', async () => {
    const container = createCrootContainer({ modules: [loadPluginModule(join(fixtures, 'plugin-example'))] });
    const registry = container.get<EngineRegistry>(EngineRegistry);
    expect(container.get<EngineRegistry>(EngineRegistry)).toBe(registry);
    expect(registry.ids()).toEqual(['example']);
    // The cgroup resolver reads the kernel's answer for the engine's PID: this process's.
    const cgroup = await container.get<ContainerCGroupResolver>(ContainerCGroupResolver).resolveCGroupName('example:self');
    expect([cgroup.pid, cgroup.value]).toEqual([process.pid, cgroupTruth(process.pid)]);
    // Without the native module nothing can enter a UTS namespace: a clear ERR_NATIVE_LOAD, not a guess (docs/errors.md).
    await expect(container.get<ContainerHostnameResolver>(ContainerHostnameResolver).resolveHostname('example:self')).rejects.toMatchObject({ code: 'ERR_NATIVE_LOAD' });
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
    const module = loadPluginModule(join(fixtures, 'plugin-example'));
    const container = createCrootContainer({ modules: [module] });
    const registry = container.get<EngineRegistry>(EngineRegistry);
    expect(registry.ids()).toEqual(['example']);
    await expect(settle(() => container.get<ContainerProcessIdResolver>(ContainerProcessIdResolver).resolveProcessId('example:self'))).resolves.toBe(process.pid);
  });

  it('finds a package by a relative path from the given folder, and only from there', async () => {
    await expect(behaviourOf(loadPluginModule('./plugin-example', fixtures))).resolves.toEqual({ ids: ['example'], self: process.pid });
    expect(() => loadPluginModule('./plugin-example', resolve(fixtures, 'plugin-example'))).toThrow(expect.objectContaining({ code: 'ERR_CONFIG' }));
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
