/** The Docker engine as an inversify module: binds `DockerEngine` as an `EngineContribution`. */
import { ContainerModule } from 'inversify';
import { EngineContribution } from '../../core/registry/engine-contribution.js';
import { DockerEngine } from './docker-engine.js';

export const dockerEngineModule = new ContainerModule(({ bind }) => {
  bind(DockerEngine).toSelf().inSingletonScope();
  bind(EngineContribution).toService(DockerEngine);
});
