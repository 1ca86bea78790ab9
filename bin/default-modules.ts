/**
 * The modules croot's commands load: the native module, the built-in
 * engines of the engine table (engine-table.ts), and third-party engine
 * packages named in the config file's `plugins` or in CROOT_PLUGINS
 * (comma-separated package names or absolute paths; names are looked up from
 * the config file's folder, then from croot's own install, never from the
 * current directory). `disabledEngines` leaves out built-in engines and
 * plugins alike.
 */
import type { ContainerModule } from 'inversify';
import type { PluginReference } from '../core/config/config-file.js';
import { CrootError } from '../core/errors/croot-error.js';
import { GetentUserDatabase, UserDatabase } from '../core/host/user-database.js';
import { ENGINES, type EngineFacts } from './engine-table.js';
import { crootPackageDir } from './version.js';

export interface LoadedModules {
  readonly modules: ContainerModule[];
  /** Why a module could not be loaded (the native module's error lists the paths it tried). */
  readonly problems: string[];
  /** Set when the native module could not be loaded (also in `problems`): crootd cannot run without it. */
  readonly nativeProblem?: string;
  /** Built-in engines not loaded because this host has nothing for them (`onlyPresent`, `onlyHolding`), with why. */
  readonly skipped: readonly { readonly engine: string; readonly reason: string }[];
}

export interface ModuleChoice {
  readonly disabledEngines?: readonly string[];
  /** Engine packages from the config file. */
  readonly plugins?: readonly PluginReference[];
  readonly env?: NodeJS.ProcessEnv;
  /** Leave out built-in engines whose sources this host does not have (one-shot commands). */
  readonly onlyPresent?: boolean;
  /** Leave out, too, built-in engines whose sources hold no container at all (a lookup by name: they cannot hold it). */
  readonly onlyHolding?: boolean;
  /** Load only these engines (ENGINE:NAME asks one engine); plugins that do not say their engine id are loaded anyway. */
  readonly onlyEngines?: readonly string[];
  /** Containers the config file declares (the static engine's source). */
  readonly declaredContainers?: number;
  /** Bind the process services (crootd's STARTPMDA/STOPPMDA). */
  readonly processServices?: boolean;
}

export async function defaultModules(choice: ModuleChoice = {}): Promise<LoadedModules> {
  const env = choice.env ?? process.env;
  const disabled = new Set(choice.disabledEngines ?? []);
  const only = choice.onlyEngines === undefined ? undefined : new Set(choice.onlyEngines);
  const modules: ContainerModule[] = [];
  const problems: string[] = [];
  const skipped: { engine: string; reason: string }[] = [];
  let nativeProblem: string | undefined;
  try {
    const native = nativeParts();
    native.loadNative();
    modules.push(native.nativeModule);
    if (choice.processServices) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      modules.push((require('../core/process/process-service-module.js') as typeof import('../core/process/process-service-module.js')).processServiceModule);
    }
  } catch (err) {
    nativeProblem = err instanceof Error ? err.message : String(err);
    problems.push(nativeProblem);
  }
  const facts: EngineFacts = { env, declaredContainers: choice.declaredContainers ?? 0 };
  for (const engine of ENGINES) {
    if (disabled.has(engine.id) || (only !== undefined && !only.has(engine.id))) continue;
    const absent = choice.onlyPresent ? (engine.absent(facts) ?? (choice.onlyHolding ? engine.holdsNone?.(facts) : undefined)) : undefined;
    if (absent !== undefined) {
      skipped.push({ engine: engine.id, reason: absent });
      continue;
    }
    modules.push(engine.load());
  }
  const plugins = [...(choice.plugins ?? []), ...pluginsFromEnv(env)];
  if (plugins.length > 0) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { readPluginManifest, loadPluginFrom } = require('../core/create-container.js') as typeof import('../core/create-container.js');
    for (const plugin of plugins) {
      try {
        if (plugin.from === undefined && plugin.name.startsWith('.')) {
          throw new CrootError('ERR_CONFIG', `CROOT_PLUGINS: "${plugin.name}" is a relative path: give an absolute one (or name it in the config file's plugins)`);
        }
        const manifest = readPluginManifest(plugin.name, plugin.from === undefined ? [crootPackageDir()] : [plugin.from, crootPackageDir()]);
        if (manifest.engine !== undefined && (disabled.has(manifest.engine) || (only !== undefined && !only.has(manifest.engine)))) continue;
        if (disabled.has(manifest.name)) continue;
        modules.push(await loadPluginFrom(manifest, plugin.name));
      } catch (err) {
        problems.push(CrootError.is(err) ? err.message : `plugin ${plugin.name}: ${String(err)}`);
      }
    }
  }
  return { modules, problems, skipped, ...(nativeProblem !== undefined ? { nativeProblem } : {}) };
}

/**
 * Where croot's config loading looks users up (`allowUsers`, `--allow-user`,
 * the pcp user): the UserDatabase the native module binds (NSS through
 * getpwnam_r/getpwuid_r) when it loads, else `getent passwd`. Made before
 * the config is read, so from the native module alone.
 */
export function systemUsers(): UserDatabase {
  try {
    const native = nativeParts();
    native.loadNative();
    /* eslint-disable @typescript-eslint/no-require-imports */
    const { createCrootContainer } = require('../core/create-container.js') as typeof import('../core/create-container.js');
    /* eslint-enable @typescript-eslint/no-require-imports */
    return createCrootContainer({ modules: [native.nativeModule] }).get<UserDatabase>(UserDatabase);
  } catch {
    return new GetentUserDatabase();
  }
}

/**
 * The native module's loader and ContainerModule, from their own files: its
 * public index also brings what no command's container needs (the client
 * transport, the fd limit).
 */
function nativeParts(): Pick<typeof import('../native/index.js'), 'loadNative' | 'nativeModule'> {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { loadNative } = require('../native/load-native.js') as typeof import('../native/load-native.js');
  const { nativeModule } = require('../native/native-module.js') as typeof import('../native/native-module.js');
  /* eslint-enable @typescript-eslint/no-require-imports */
  return { loadNative, nativeModule };
}

/** CROOT_PLUGINS: package names (looked up from croot's install) or absolute paths. */
function pluginsFromEnv(env: NodeJS.ProcessEnv): { name: string; from?: string }[] {
  return (env.CROOT_PLUGINS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((name) => ({ name }));
}
