/**
 * A stalled Podman source (a getent that never answers, as when an LDAP
 * server is unreachable) delays no request for another engine's container,
 * and Podman's own requests wait only for the registry's bound.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerModule } from 'inversify';
import { createCrootContainer } from '../core/create-container.js';
import { EngineRegistry, EngineRegistryOptions } from '../core/registry/engine-registry.js';
import { ContainerProcessIdResolver } from '../core/registry/container-resolvers.js';
import { nssUsers, podmanEngineModule, PodmanEngineOptions, type UserLookup } from '../engines/podman/index.js';
import { staticEngineModule } from '../engines/static/index.js';
import { codeOf } from './support/outcomes.js';

describe('a stalled Podman source', () => {
  let work: string;
  let sleeper: ChildProcess;
  let registry: EngineRegistry | undefined;

  beforeEach(() => {
    work = mkdtempSync(join(tmpdir(), 'croot-t-stalled-'));
    cpSync(join(__dirname, 'fixtures/podman/rootful'), join(work, 'rootful'), { recursive: true });
    writeFileSync(join(work, 'getent'), '#!/bin/sh\nexec sleep 1000\n');
    chmodSync(join(work, 'getent'), 0o755);
    sleeper = spawn('sleep', ['1000'], { stdio: 'ignore' });
  });

  afterEach(async () => {
    await registry?.stop();
    sleeper.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });

  it('delays no request for a declared container while Podman\'s first load waits for its users', async () => {
    const pid = sleeper.pid as number;
    const lookupUsers: UserLookup = (keys, signal) => nssUsers(keys, { command: join(work, 'getent'), timeoutMs: 3600e3, signal });
    const env = {
      PCP_PODMAN_DATADIR: join(work, 'rootful/storage'),
      PCP_PODMAN_RUNDIR: join(work, 'rootful/run'),
      CROOT_CONTAINERS_STORAGE_CONF: '',
      CROOT_PODMAN_USER_RUNDIR: join(work, 'no-run-user'),
    };
    const c = createCrootContainer({
      config: { env, procRoot: '/proc', staticContainers: [{ name: 'box', pid }] },
      modules: [
        podmanEngineModule,
        staticEngineModule,
        new ContainerModule(({ bind }) => {
          bind<PodmanEngineOptions>(PodmanEngineOptions).toConstantValue({ lookupUsers, firstLoadTimeoutMs: 3600e3 });
          // A request that may be for Podman's container waits this long for its first load.
          bind<EngineRegistryOptions>(EngineRegistryOptions).toConstantValue({ firstLoadTimeoutMs: 100 });
        }),
      ],
    });
    registry = c.get<EngineRegistry>(EngineRegistry);
    await registry.start();
    const pids = c.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
    // Answered at once, synchronously: nothing waits for Podman.
    expect(pids.resolveProcessId('static:box')).toBe(pid);
    expect(registry.statuses().find((s) => s.engine === 'podman')?.reason).toBe('loading');
    // Podman's own container: the request waits for the registry's bound only, then says Podman is loading.
    expect(await codeOf(() => pids.resolveProcessId('podman:croot-fx-run'))).toBe('ERR_ENGINE_LOADING');
  });
});
