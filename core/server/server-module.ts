/**
 * crootd's server as a module: the RootServer (PCP's root-socket protocol)
 * and croot's protocol extension (`croot list/show/engines/status/events
 * --socket`), told crootd's version and start time. The request handler
 * both use is the core module's.
 */
import { ContainerModule } from 'inversify';
import { ExtensionHandler, ExtensionHandlerOptions } from './extension-handler.js';
import { RootServer } from './root-server.js';

export function serverModule(options: ExtensionHandlerOptions): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(RootServer).toSelf().inSingletonScope();
    bind<ExtensionHandlerOptions>(ExtensionHandlerOptions).toConstantValue(options);
    bind(ExtensionHandler).toSelf().inSingletonScope();
  });
}
