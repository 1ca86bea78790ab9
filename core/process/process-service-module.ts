/**
 * The process services (STARTPMDA and STOPPMDA) as a module: crootd loads
 * it; without it the server answers those requests with -ENOTSUP.
 */
import { ContainerModule } from 'inversify';
import { ProcessManager } from './process-manager.js';
import { ProcessService } from './process-service.js';

/** Binds ProcessService to ProcessManager (needs a ProcessSpawner, e.g. the native module's). */
export const processServiceModule = new ContainerModule(({ bind }) => {
  bind(ProcessManager).toSelf().inSingletonScope();
  bind<ProcessService>(ProcessService).toService(ProcessManager);
});
