/** The static engine as an inversify module: binds `StaticEngine` as an `EngineContribution`. */
import { ContainerModule } from 'inversify';
import { EngineContribution } from '../../core/registry/engine-contribution.js';
import { StaticEngine } from './static-engine.js';

export const staticEngineModule = new ContainerModule(({ bind }) => {
  bind(StaticEngine).toSelf().inSingletonScope();
  bind(EngineContribution).toService(StaticEngine);
});
