/**
 * The modules croot's commands load: the native module, every built-in
 * engine, and third-party engine packages named in CROOT_PLUGINS
 * (comma-separated package names, each with a `croot.module` field).
 */
import type { ContainerModule } from 'inversify';
import { loadPluginModule } from '../core/create-container.js';
import { CrootError } from '../core/errors.js';
import { processServiceModule } from '../core/process-manager.js';
import { containerdEngineModule } from '../engines/containerd/index.js';
import { dockerEngineModule } from '../engines/docker/index.js';
import { lxcEngineModule } from '../engines/lxc/index.js';
import { podmanEngineModule } from '../engines/podman/index.js';
import { staticEngineModule } from '../engines/static/index.js';
import { loadNative, nativeModule } from '../native/index.js';

export interface LoadedModules {
  readonly modules: ContainerModule[];
  /** Why a module could not be loaded (the native module's error lists the paths it tried). */
  readonly problems: string[];
  /** Set when the native module could not be loaded (also in `problems`): crootd cannot run without it. */
  readonly nativeProblem?: string;
}

const ENGINES: ReadonlyArray<[string, ContainerModule]> = [
  ['docker', dockerEngineModule],
  ['podman', podmanEngineModule],
  ['containerd', containerdEngineModule],
  ['lxc', lxcEngineModule],
  ['static', staticEngineModule],
];

export function defaultModules(options: { disabledEngines?: readonly string[]; env?: NodeJS.ProcessEnv } = {}): LoadedModules {
  const env = options.env ?? process.env;
  const disabled = new Set(options.disabledEngines ?? []);
  const modules: ContainerModule[] = [];
  const problems: string[] = [];
  let nativeProblem: string | undefined;
  try {
    loadNative();
    modules.push(nativeModule, processServiceModule);
  } catch (err) {
    nativeProblem = err instanceof Error ? err.message : String(err);
    problems.push(nativeProblem);
  }
  for (const [id, module] of ENGINES) if (!disabled.has(id)) modules.push(module);
  for (const name of (env.CROOT_PLUGINS ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    try {
      modules.push(loadPluginModule(name));
    } catch (err) {
      problems.push(err instanceof CrootError ? err.message : `plugin ${name}: ${String(err)}`);
    }
  }
  return { modules, problems, ...(nativeProblem !== undefined ? { nativeProblem } : {}) };
}
