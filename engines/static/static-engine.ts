/**
 * Containers declared in croot's config (`staticContainers`): a name, aliases,
 * an id, and an init PID given directly or through a pidfile. Useful for
 * hand-made namespaces (unshare, systemd-nspawn, a chroot jail) that no engine
 * reports.
 *
 * A declared PID is pushed once; the registry holds the process and sees it
 * exit. A pidfile's folder is watched, and the pidfile is read again when it
 * is written, moved in or removed; the PID it names is pushed with the start
 * time the kernel gives it then, so a rewritten pidfile re-declares its
 * process even when the number is the same.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { inject, injectable, optional } from 'inversify';
import { CrootConfig, type StaticContainerConfig } from '../../core/config/croot-config.js';
import type { ContainerRecord, ContainerSink, EngineContribution } from '../../core/registry/engine-contribution.js';
import { DirectoryWatcher } from '../../core/host/host-services.js';
import { NodeDirectoryWatcher } from '../../core/host/node-directory-watcher.js';
import { plural } from '../../core/logging/plural.js';
import { readProcessStat } from '../../core/host/proc-files.js';

export const STATIC_ENGINE_ID = 'static';

/** What is known of one declared container. */
interface Declared {
  readonly config: StaticContainerConfig;
  readonly id: string;
  /** Why it has no usable PID, for the engine's health. */
  problem: string | undefined;
}

@injectable()
export class StaticEngine implements EngineContribution {
  readonly id = STATIC_ENGINE_ID;
  private declared: Declared[] = [];
  private sink: ContainerSink | undefined;
  /** Watched pidfile folders: folder → its unwatch function. */
  private readonly watched = new Map<string, () => void>();
  private readonly watcher: DirectoryWatcher;
  private procRoot: string;

  constructor(
    @inject(CrootConfig) private config: CrootConfig,
    @inject(DirectoryWatcher) @optional() watcher: DirectoryWatcher | undefined,
  ) {
    this.watcher = watcher ?? new NodeDirectoryWatcher();
    this.procRoot = config.procRoot;
  }

  start(sink: ContainerSink): void {
    this.sink = sink;
    this.declare(this.config.staticContainers);
  }

  /** crootd's SIGHUP: the declared containers as the re-read config has them. */
  async reconfigure(config: CrootConfig): Promise<void> {
    this.config = config;
    this.procRoot = config.procRoot;
    this.declare(config.staticContainers);
  }

  /** Re-reads every pidfile and re-arms watches on folders that were missing. */
  async recheck(): Promise<void> {
    this.watchFolders();
    this.push();
  }

  async stop(): Promise<void> {
    for (const unwatch of this.watched.values()) unwatch();
    this.watched.clear();
    this.sink = undefined;
  }

  private declare(containers: readonly StaticContainerConfig[]): void {
    this.declared = containers.map((config) => ({ config, id: config.id ?? config.name, problem: undefined }));
    const folders = new Set(this.pidfileFolders());
    for (const [folder, unwatch] of this.watched) {
      if (folders.has(folder)) continue;
      unwatch();
      this.watched.delete(folder);
    }
    this.watchFolders();
    this.push();
  }

  private pidfileFolders(): string[] {
    return this.declared.flatMap((d) => (d.config.pidfile === undefined ? [] : [dirname(d.config.pidfile)]));
  }

  private watchFolders(): void {
    for (const folder of this.pidfileFolders()) {
      if (this.watched.has(folder)) continue;
      try {
        const unwatch = this.watcher.watch(folder, (event) => this.folderChanged(folder, event.name, event.kind));
        this.watched.set(folder, unwatch);
      } catch {
        // The folder does not exist yet: the pidfile reads as missing; the safety net tries again.
      }
    }
  }

  private folderChanged(folder: string, name: string, kind: string): void {
    if (kind === 'gone') {
      this.watched.get(folder)?.();
      this.watched.delete(folder);
    }
    for (const d of this.declared) {
      const pidfile = d.config.pidfile;
      if (pidfile === undefined || dirname(pidfile) !== folder) continue;
      if (name === '' || name === basename(pidfile)) this.sink?.upsert(this.recordOf(d));
    }
    this.reportHealth();
  }

  /** Every declared container, read now, pushed as the whole list. */
  private push(): void {
    const sink = this.sink;
    if (sink === undefined) return;
    sink.replaceAll(this.declared.map((d) => this.recordOf(d)));
    this.reportHealth();
  }

  private reportHealth(): void {
    const problems = this.declared.filter((d) => d.problem !== undefined).map((d) => `${d.config.name}: ${d.problem}`);
    this.sink?.health(true, `${plural(this.declared.length, 'container')} declared in the config${problems.length > 0 ? `; ${problems.join('; ')}` : ''}`);
  }

  private recordOf(d: Declared): ContainerRecord {
    const { config } = d;
    const base = { engine: this.id, id: d.id, names: [config.name, ...(config.aliases ?? [])], source: 'config' };
    d.problem = undefined;
    if (config.pidfile !== undefined) {
      const pid = this.readPidfile(d, config.pidfile);
      if (pid === undefined) return { ...base, running: false };
      // The start time now, so a rewritten pidfile re-declares its process.
      const stat = readProcessStat(this.procRoot, pid);
      if (stat === undefined) {
        d.problem = `process ${pid} is not running`;
        return { ...base, running: false };
      }
      return { ...base, running: true, pid, pidStartTime: stat.startTime, source: 'pidfile' };
    }
    if (config.pid === undefined || !Number.isInteger(config.pid) || config.pid <= 0) {
      d.problem = 'neither a valid pid nor a pidfile';
      return { ...base, running: false };
    }
    return { ...base, running: true, pid: config.pid };
  }

  private readPidfile(d: Declared, path: string): number | undefined {
    let text: string;
    try {
      // Small, local, read only when it changed: not worth a trip through the thread pool.
      text = readFileSync(path, 'utf8');
    } catch (err) {
      d.problem = `cannot read pidfile ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
      return undefined;
    }
    const pid = parsePidfile(text);
    if (pid === undefined) d.problem = `pidfile ${path} holds no PID`;
    return pid;
  }
}

/** The PID in a pidfile: its first line, a positive decimal integer. */
export function parsePidfile(text: string): number | undefined {
  const first = text.split('\n', 1)[0]?.trim() ?? '';
  if (!/^\d+$/.test(first)) return undefined;
  const pid = Number(first);
  return pid > 0 && Number.isSafeInteger(pid) ? pid : undefined;
}
