/**
 * The built-in engines: for each, how to load its module (its code is
 * required only then: Docker's and Podman's bring dockerode) and a cheap
 * test of whether this host has anything for it (a few stat calls), so a
 * one-shot `croot` command loads only the engines that can answer. crootd
 * loads every engine not disabled: a source that appears later is picked up.
 *
 * The default paths below are the engines' own (engines/<id>/index.ts
 * exports them; bin/engine-table.test.ts keeps the two in step): they are
 * repeated here so that deciding costs no engine's code.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { homedir } from 'node:os';
import type { ContainerModule } from 'inversify';

type Env = Readonly<Record<string, string | undefined>>;

export interface EngineFacts {
  readonly env: Env;
  /** How many containers the config file declares (the static engine's only source). */
  readonly declaredContainers: number;
}

export interface EngineEntry {
  readonly id: string;
  /**
   * Requires the engine's module file (not its public index, which also
   * re-exports the parts a lookup may never need, such as Docker's API
   * client) and returns its ContainerModule.
   */
  load(): ContainerModule;
  /** The paths whose existence says the engine may have something here. */
  sources(facts: EngineFacts): readonly string[];
  /** Why this host has nothing for the engine, or undefined when it may. */
  absent(facts: EngineFacts): string | undefined;
  /**
   * Why the engine's sources, though there, hold no container at all (they
   * were listed and found empty), or undefined when they may hold some or
   * cannot be listed. A lookup by name leaves such an engine out: it holds
   * nothing a name could match, so the answer, and whether the name is
   * ambiguous, are the same without it. Engines whose containers cannot be
   * listed this cheaply (Docker, Podman) have no such test.
   */
  holdsNone?(facts: EngineFacts): string | undefined;
}

/** The engines' default paths, as their modules export them. */
export const ENGINE_DEFAULT_PATHS = {
  docker: { dir: '/var/lib/docker', socket: '/var/run/docker.sock' },
  podman: {
    dataDir: '/var/lib/containers/storage',
    runDir: '/run/containers/storage',
    userRunRoot: '/run/user',
    storageConfs: ['/etc/containers/storage.conf', '/usr/share/containers/storage.conf'],
  },
  containerd: { taskDir: '/run/containerd/io.containerd.runtime.v2.task', mobyNamespace: 'moby' },
  lxc: { dir: '/var/lib/lxc' },
} as const;

/** True unless `path` is certainly not there (ENOENT/ENOTDIR); a path croot may not read counts as there. */
export function mayExist(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code !== 'ENOENT' && code !== 'ENOTDIR';
  }
}

function absentUnless(paths: readonly string[]): string | undefined {
  return paths.some(mayExist) ? undefined : `not loaded: none of ${paths.join(', ')} exists on this host`;
}

/** The names in folder `path` ([] when it is gone), or undefined when it cannot be listed. */
function entriesOf(path: string): string[] | undefined {
  try {
    return readdirSync(path);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? [] : undefined;
  }
}

/* eslint-disable @typescript-eslint/no-require-imports */
export const ENGINES: readonly EngineEntry[] = [
  {
    id: 'docker',
    load: () => (require('../engines/docker/docker-engine-module.js') as typeof import('../engines/docker/docker-engine-module.js')).dockerEngineModule,
    sources: ({ env }) => {
      const d = ENGINE_DEFAULT_PATHS.docker;
      const configDir = env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker');
      return [d.socket, env.PCP_DOCKER_DIR || d.dir, join(configDir, 'config.json')];
    },
    absent(facts) {
      // A daemon named by the environment may be anywhere: only the engine can tell.
      if (facts.env.DOCKER_HOST || facts.env.DOCKER_CONTEXT) return undefined;
      return absentUnless(this.sources(facts));
    },
  },
  {
    id: 'podman',
    load: () => (require('../engines/podman/podman-engine-module.js') as typeof import('../engines/podman/podman-engine-module.js')).podmanEngineModule,
    sources: ({ env }) => {
      const p = ENGINE_DEFAULT_PATHS.podman;
      const confs = env.CROOT_CONTAINERS_STORAGE_CONF !== undefined ? [env.CROOT_CONTAINERS_STORAGE_CONF].filter(Boolean) : p.storageConfs;
      // Rootless stores are found through the users' runtime folders.
      const rootless = env.CROOT_PODMAN_ROOTLESS === '0' ? [] : [env.CROOT_PODMAN_USER_RUNDIR || p.userRunRoot];
      return [env.PCP_PODMAN_DATADIR || p.dataDir, env.PCP_PODMAN_RUNDIR || p.runDir, ...rootless, ...confs];
    },
    absent(facts) {
      return absentUnless(this.sources(facts));
    },
  },
  {
    id: 'containerd',
    load: () => (require('../engines/containerd/containerd-engine-module.js') as typeof import('../engines/containerd/containerd-engine-module.js')).containerdEngineModule,
    sources: ({ env }) => [env.CROOT_CONTAINERD_TASK_DIR || ENGINE_DEFAULT_PATHS.containerd.taskDir],
    absent(facts) {
      return absentUnless(this.sources(facts));
    },
    holdsNone(facts) {
      // A task is a folder of a namespace folder; Docker's namespace is the Docker engine's.
      const [root] = this.sources(facts) as [string];
      const namespaces = entriesOf(root);
      if (namespaces === undefined) return undefined;
      for (const ns of namespaces) {
        if (ns === ENGINE_DEFAULT_PATHS.containerd.mobyNamespace) continue;
        const tasks = entriesOf(join(root, ns));
        if (tasks === undefined || tasks.length > 0) return undefined;
      }
      return `not loaded: no task in ${root} (Docker's namespace aside)`;
    },
  },
  {
    id: 'lxc',
    load: () => (require('../engines/lxc/lxc-engine-module.js') as typeof import('../engines/lxc/lxc-engine-module.js')).lxcEngineModule,
    sources: ({ env }) => [env.PCP_LXC_DIR || ENGINE_DEFAULT_PATHS.lxc.dir],
    absent(facts) {
      return absentUnless(this.sources(facts));
    },
    holdsNone(facts) {
      // Every container is a folder of the LXC folder.
      const [dir] = this.sources(facts) as [string];
      return entriesOf(dir)?.length === 0 ? `not loaded: ${dir} is empty` : undefined;
    },
  },
  {
    id: 'static',
    load: () => (require('../engines/static/static-engine-module.js') as typeof import('../engines/static/static-engine-module.js')).staticEngineModule,
    sources: () => [],
    // Costs nothing to load, and says how many containers the config declares (none is a fine answer).
    absent: () => undefined,
    holdsNone: ({ declaredContainers }) => (declaredContainers === 0 ? 'not loaded: the config file declares no container' : undefined),
  },
];
/* eslint-enable @typescript-eslint/no-require-imports */

export const ENGINE_IDS: readonly string[] = ENGINES.map((e) => e.id);
