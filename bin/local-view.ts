/**
 * croot's in-process view: the containers and engine health this process
 * can see by itself, without a server. It loads only the engines this host
 * has sources for (or the one an ENGINE:NAME names; for a lookup, only
 * those whose sources hold some container), starts them, answers, and
 * stops them. The one place in the command line that starts the engine
 * registry; everything else goes through the ContainerView it hands out.
 */
import './inversify-bundle.js';
import 'reflect-metadata';
import { loadCrootConfigFile } from '../core/config/config-file.js';
import { ContainerView, type ContainerField } from '../core/registry/container-view.js';
import { createCrootContainer } from '../core/create-container.js';
import { SCHEMA_VERSION, sortEngines, type AnchorReport, type ContainerReport, type CrootDocument, type EngineReport } from '../core/protocol/croot-extension.js';
import { EngineRegistry } from '../core/registry/engine-registry.js';
import type { CrootdEventStream } from '../core/client/extension-client.js';
import type { UserDatabase } from '../core/host/user-database.js';
import { defaultModules, systemUsers } from './default-modules.js';
import { ENGINE_IDS } from './engine-table.js';
import type { DockerEngineOptions } from '../engines/docker/index.js';

/** The Docker engine's options token (Symbol.for is shared), named here without loading the engine. */
const DOCKER_ENGINE_OPTIONS = Symbol.for('croot/DockerEngineOptions');

export interface LocalViewOptions {
  /** Config file (default $CROOT_CONFIG, else /etc/croot/croot.json when present). */
  readonly config?: string;
  /** Load only these engines (the ENGINE of ENGINE:NAME). */
  readonly engines?: readonly string[];
  /** The view answers a lookup by name: engines whose sources hold no container are left out too. */
  readonly lookup?: boolean;
}

export interface LocalView {
  /** Every engine's health, those not loaded on this host included (as unavailable, with why). */
  engines(): Promise<readonly EngineReport[]>;
  /** The engines left out because this host has nothing for them. */
  readonly notLoaded: readonly string[];
  containers(): Promise<readonly ContainerReport[]>;
  inspect(ref: string, fields: readonly ContainerField[]): Promise<ContainerReport>;
  /** How this process holds init processes (pidfds, or /proc checks and why). */
  anchor(): AnchorReport;
  /** The changes as they happen (`croot events`), as a stream of documents like crootd's. */
  events(): CrootdEventStream;
  /** What went wrong loading modules (a plugin that would not load...), for the user to see. */
  readonly warnings: readonly string[];
  close(): Promise<void>;
}

export async function openLocalView(options: LocalViewOptions = {}): Promise<LocalView> {
  const fileConfig = await loadCrootConfigFile(options.config, process.env, { users: whenAsked(systemUsers) });
  const loaded = await defaultModules({
    disabledEngines: fileConfig.disabledEngines ?? [],
    plugins: fileConfig.plugins ?? [],
    onlyPresent: true,
    onlyHolding: options.lookup === true,
    declaredContainers: fileConfig.staticContainers?.length ?? 0,
    ...(options.engines !== undefined ? { onlyEngines: options.engines } : {}),
  });
  const container = createCrootContainer({ config: fileConfig, modules: loaded.modules });
  // One lookup and out: Docker's files answer it (the daemon writes every change there) without loading its API client.
  container.bind<DockerEngineOptions>(DOCKER_ENGINE_OPTIONS).toConstantValue({ daemon: 'when-no-files' });
  const registry = container.get<EngineRegistry>(EngineRegistry);
  await registry.start();
  await registry.ready();
  const view = container.get<ContainerView>(ContainerView);
  const disabled = new Set(fileConfig.disabledEngines ?? []);
  const notLoaded: EngineReport[] = loaded.skipped.map(({ engine, reason }) => ({
    engine,
    available: false,
    reason,
    checkedAt: new Date().toISOString(),
  }));
  // An ENGINE:NAME lookup loads one engine: the others are not reported at all.
  const others = options.engines === undefined ? notLoaded.filter((e) => ENGINE_IDS.includes(e.engine) && !disabled.has(e.engine)) : [];
  return {
    warnings: loaded.problems,
    notLoaded: loaded.skipped.map((s) => s.engine),
    async engines() {
      return sortEngines([...(await view.engines()), ...others]);
    },
    containers: () => view.containers(),
    inspect: (ref, fields) => view.inspect(ref, fields),
    anchor: () => view.anchor(),
    events: () => localEvents(view, others),
    close: () => registry.stop(),
  };
}

/** The user database `make` gives, made on the first look-up: most configs (or none) never ask. */
function whenAsked(make: () => UserDatabase): UserDatabase {
  let users: UserDatabase | undefined;
  const get = (): UserDatabase => (users ??= make());
  return { userByName: (name) => get().userByName(name), userById: (uid) => get().userById(uid) };
}

/** The view's changes as a stream of documents, as crootd would send them. */
function localEvents(view: ContainerView, notLoaded: readonly EngineReport[]): CrootdEventStream {
  const queue: CrootDocument[] = [];
  let waiting: ((doc: CrootDocument | undefined) => void) | undefined;
  let closed = false;
  const watch = view.watch((event) => {
    const doc: CrootDocument = { schemaVersion: SCHEMA_VERSION, event };
    const wake = waiting;
    waiting = undefined;
    if (wake !== undefined) wake(doc);
    else queue.push(doc);
  });
  return {
    first: { schemaVersion: SCHEMA_VERSION, anchor: view.anchor(), engines: sortEngines([...watch.engines, ...notLoaded]), containers: watch.containers },
    next: () => {
      if (closed) return Promise.resolve(undefined);
      const doc = queue.shift();
      return doc !== undefined ? Promise.resolve(doc) : new Promise((resolve) => (waiting = resolve));
    },
    close: () => {
      if (closed) return;
      closed = true;
      watch.stop();
      queue.length = 0;
      const wake = waiting;
      waiting = undefined;
      wake?.(undefined);
    },
  };
}
