/**
 * The one place croot builds its inversify container and loads modules
 * (its own engines, the native module, and third-party engines), so an
 * inversify upgrade touches this file only.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { Container, ContainerModule } from 'inversify';
import { CrootConfig, defaultConfig } from './config.js';
import { DefaultEngineRegistry, EngineRegistry } from './engine-registry.js';
import { CrootError } from './errors.js';
import { RootRequestHandler } from './root-request-handler.js';
import {
  ContainerCGroupResolver,
  ContainerHostnameResolver,
  ContainerProcessIdResolver,
  DefaultContainerResolver,
  RunningContainerLocator,
} from './resolvers.js';

export interface CreateCrootContainerOptions {
  readonly config?: Partial<CrootConfig>;
  /** Engine modules, the native module, and any other feature modules. */
  readonly modules?: readonly ContainerModule[];
}

/** The core's own bindings: config, registry, resolvers. */
export function coreModule(config: CrootConfig): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind<CrootConfig>(CrootConfig).toConstantValue(config);
    bind(EngineRegistry).to(DefaultEngineRegistry).inSingletonScope();
    bind(RunningContainerLocator).toSelf().inSingletonScope();
    bind(DefaultContainerResolver).toSelf().inSingletonScope();
    bind(ContainerHostnameResolver).toService(DefaultContainerResolver);
    bind(ContainerProcessIdResolver).toService(DefaultContainerResolver);
    bind(ContainerCGroupResolver).toService(DefaultContainerResolver);
    bind(RootRequestHandler).toSelf().inSingletonScope();
  });
}

export function createCrootContainer(options: CreateCrootContainerOptions = {}): Container {
  const config = defaultConfig(options.config);
  const container = new Container();
  container.loadSync(coreModule(config), ...(options.modules ?? []));
  return container;
}

/**
 * Loads a third-party engine package: its package.json names a module in
 * `"croot": { "module": "./dist/my-engine-module.js" }` whose default (or
 * `engineModule`) export is a ContainerModule. `packageName` is a package
 * name resolved from `resolveFrom`, or a path to the package's folder.
 */
export function loadPluginModule(packageName: string, resolveFrom: string = process.cwd()): ContainerModule {
  const isPath = packageName.startsWith('.') || isAbsolute(packageName);
  let pkgPath: string;
  try {
    pkgPath = isPath
      ? require.resolve(resolve(resolveFrom, packageName, 'package.json'))
      : require.resolve(`${packageName}/package.json`, { paths: [resolveFrom] });
  } catch (err) {
    throw new CrootError('ERR_CONFIG', `engine package "${packageName}" not found from ${resolveFrom}`, { cause: err });
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const pkg = require(pkgPath) as { croot?: { module?: unknown } };
  const rel = pkg.croot?.module;
  if (typeof rel !== 'string') {
    throw new CrootError('ERR_CONFIG', `package "${packageName}" has no "croot.module" field in its package.json`);
  }
  let mod: Record<string, unknown>;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require(resolve(dirname(pkgPath), rel)) as Record<string, unknown>;
  } catch (err) {
    throw new CrootError('ERR_CONFIG', `engine package "${packageName}": cannot load ${rel}: ${(err as Error).message}`, { cause: err });
  }
  const candidate = mod.default ?? mod.engineModule;
  if (!(candidate instanceof ContainerModule)) {
    throw new CrootError(
      'ERR_CONFIG',
      `"${packageName}" (${rel}) exports no ContainerModule as default or engineModule (a plugin must share croot's inversify)`,
    );
  }
  return candidate;
}
