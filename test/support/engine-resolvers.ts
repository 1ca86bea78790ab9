/**
 * croot as an engine test asks it: a fresh container with the engine
 * modules under test, reading the host's /proc, and the registry and
 * resolvers taken from it.
 */
import type { ContainerModule } from 'inversify';
import { createCrootContainer } from '../../core/create-container.js';
import { EngineRegistry } from '../../core/registry/engine-registry.js';
import { ContainerCGroupResolver, ContainerProcessIdResolver } from '../../core/registry/container-resolvers.js';

/** The registry and resolvers of one freshly built croot container. */
export interface EngineResolvers {
  readonly registry: EngineRegistry;
  readonly pids: ContainerProcessIdResolver;
  readonly cgroups: ContainerCGroupResolver;
}

/** Builds croot with `modules` and `env` (default: a copy of this process's) over the host's /proc. */
export function engineResolvers(modules: readonly ContainerModule[], env: Record<string, string | undefined> = { ...process.env }): EngineResolvers {
  const container = createCrootContainer({ config: { env, procRoot: '/proc' }, modules });
  return {
    registry: container.get<EngineRegistry>(EngineRegistry),
    pids: container.get<ContainerProcessIdResolver>(ContainerProcessIdResolver),
    cgroups: container.get<ContainerCGroupResolver>(ContainerCGroupResolver),
  };
}
