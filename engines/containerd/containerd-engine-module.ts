/** The containerd engine as an inversify module: binds `ContainerdEngine` as an `EngineContribution`. */
import { ContainerModule } from 'inversify';
import { EngineContribution } from '../../core/registry/engine-contribution.js';
import { ContainerdEngine } from './containerd-engine.js';

export const containerdEngineModule = new ContainerModule(({ bind }) => {
  bind(ContainerdEngine).toSelf().inSingletonScope();
  bind(EngineContribution).toService(ContainerdEngine);
});
