/**
 * The one place croot builds its inversify container and loads modules
 * (its own engines, the native module, and third-party engines), so an
 * inversify upgrade touches this file only.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Container, ContainerModule } from 'inversify';
import { CrootConfig, defaultConfig } from './config/croot-config.js';
import { ContainerView, RegistryContainerView } from './registry/container-view.js';
import { DefaultEngineRegistry, EngineRegistry } from './registry/engine-registry.js';
import { CrootError } from './errors/croot-error.js';
import { RootRequestHandler } from './server/root-request-handler.js';
import {
  ContainerCGroupResolver,
  ContainerHostnameResolver,
  ContainerProcessIdResolver,
  DefaultContainerResolver,
  RunningContainerLocator,
} from './registry/container-resolvers.js';

export interface CreateCrootContainerOptions {
  readonly config?: Partial<CrootConfig>;
  /** Engine modules, the native module, and any other feature modules. */
  readonly modules?: readonly ContainerModule[];
}

/**
 * The core's own bindings: config, registry, resolvers, the container view.
 * Engines in `config.disabledEngines` are left out of the registry whoever
 * bound them (a plugin's included).
 */
export function coreModule(config: CrootConfig): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind<CrootConfig>(CrootConfig).toConstantValue(config);
    bind(EngineRegistry).to(DefaultEngineRegistry).inSingletonScope();
    bind(ContainerView).to(RegistryContainerView).inSingletonScope();
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

/** What a plugin package's package.json says about it. */
export interface PluginManifest {
  /** The package's name (its package.json `name`, else what it was asked by). */
  readonly name: string;
  /** The package's folder. */
  readonly dir: string;
  /** The module file named by `croot.module`. */
  readonly modulePath: string;
  /** The engine id it registers, when `croot.engine` says (then `disabledEngines` skips it without loading it). */
  readonly engine?: string;
}

/**
 * Finds a third-party engine package and reads its `croot` field. `packageName`
 * is a package name, looked up in the node_modules folders of each of
 * `searchFrom` in turn (the config file's folder, croot's own install), or a
 * path to the package's folder: absolute, or relative to the first of
 * `searchFrom`. Never the current directory (`/` under systemd).
 */
export function readPluginManifest(packageName: string, searchFrom: readonly string[]): PluginManifest {
  const isPath = packageName.startsWith('.') || isAbsolute(packageName);
  let dir: string | undefined;
  if (isPath) {
    if (!isAbsolute(packageName) && searchFrom[0] === undefined) {
      throw new CrootError('ERR_CONFIG', `engine package path "${packageName}" is relative, and there is no config file to take it from`);
    }
    dir = isAbsolute(packageName) ? packageName : resolve(searchFrom[0] as string, packageName);
    if (!existsSync(join(dir, 'package.json'))) throw new CrootError('ERR_CONFIG', `engine package "${packageName}" not found: no ${join(dir, 'package.json')}`);
  } else {
    const looked: string[] = [];
    for (const from of searchFrom) {
      for (const modules of createRequire(join(from, 'croot-plugin-lookup.js')).resolve.paths(packageName) ?? []) {
        const candidate = join(modules, packageName);
        looked.push(modules);
        if (existsSync(join(candidate, 'package.json'))) {
          dir = candidate;
          break;
        }
      }
      if (dir !== undefined) break;
    }
    if (dir === undefined) {
      throw new CrootError('ERR_CONFIG', `engine package "${packageName}" not found; looked in ${[...new Set(looked)].slice(0, 8).join(', ')}`);
    }
  }
  let pkg: { name?: unknown; croot?: { module?: unknown; engine?: unknown } };
  try {
    pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as typeof pkg;
  } catch (err) {
    throw new CrootError('ERR_CONFIG', `engine package "${packageName}": cannot read ${join(dir, 'package.json')}: ${(err as Error).message}`, { cause: err });
  }
  const rel = pkg.croot?.module;
  if (typeof rel !== 'string') {
    throw new CrootError('ERR_CONFIG', `package "${packageName}" has no "croot.module" field in its package.json`);
  }
  const engine = pkg.croot?.engine;
  return {
    name: typeof pkg.name === 'string' ? pkg.name : packageName,
    dir,
    modulePath: resolve(dir, rel),
    ...(typeof engine === 'string' ? { engine } : {}),
  };
}

/**
 * Loads a third-party engine package: its package.json names a module in
 * `"croot": { "module": "./dist/index.js", "engine": "my-engine" }` whose
 * default (or `engineModule`) export is a ContainerModule made with croot's
 * own inversify (`import { ContainerModule } from 'croot/inversify'`).
 * CommonJS and ES modules alike. Where `packageName` is looked up: see
 * readPluginManifest.
 */
export async function loadPluginModule(packageName: string, searchFrom: string | readonly string[] = []): Promise<ContainerModule> {
  const manifest = readPluginManifest(packageName, typeof searchFrom === 'string' ? [searchFrom] : searchFrom);
  return loadPluginFrom(manifest, packageName);
}

/** Loads the module a manifest names (see loadPluginModule). */
export async function loadPluginFrom(manifest: PluginManifest, asked: string = manifest.name): Promise<ContainerModule> {
  let mod: Record<string, unknown>;
  try {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      mod = require(manifest.modulePath) as Record<string, unknown>;
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'ERR_REQUIRE_ESM') throw err;
      mod = (await import(pathToFileURL(manifest.modulePath).href)) as Record<string, unknown>;
    }
  } catch (err) {
    throw new CrootError('ERR_CONFIG', `engine package "${asked}": cannot load ${manifest.modulePath}: ${(err as Error).message}`, { cause: err });
  }
  const candidate = mod.default ?? mod.engineModule;
  if (candidate instanceof ContainerModule) return candidate;
  const foreign = (candidate as { constructor?: { name?: unknown } } | undefined)?.constructor?.name === 'ContainerModule';
  throw new CrootError(
    'ERR_CONFIG',
    foreign
      ? `"${asked}" (${manifest.modulePath}) exports a ContainerModule of another copy of inversify: ` +
          "build it with ContainerModule from 'croot/inversify' and depend on croot as a peer, not on inversify"
      : `"${asked}" (${manifest.modulePath}) exports no ContainerModule as default or engineModule ` +
          "(make one with ContainerModule from 'croot/inversify')",
  );
}
