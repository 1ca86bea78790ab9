/** The LXC engine as an inversify module: binds `LxcEngine` as an `EngineContribution`. */
import { ContainerModule } from 'inversify';
import { EngineContribution } from '../../core/registry/engine-contribution.js';
import { LxcEngine } from './lxc-engine.js';

export const lxcEngineModule = new ContainerModule(({ bind }) => {
  bind(LxcEngine).toSelf().inSingletonScope();
  bind(EngineContribution).toService(LxcEngine);
});
