/** The Podman engine as an inversify module: binds `PodmanEngine` as an `EngineContribution`. */
import { ContainerModule } from 'inversify';
import { EngineContribution } from '../../core/registry/engine-contribution.js';
import { PodmanEngine } from './podman-engine.js';

export const podmanEngineModule = new ContainerModule(({ bind }) => {
  bind(PodmanEngine).toSelf().inSingletonScope();
  bind(EngineContribution).toService(PodmanEngine);
});
