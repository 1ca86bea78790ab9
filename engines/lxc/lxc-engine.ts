/**
 * LXC containers: every folder of `$PCP_LXC_DIR` (default /var/lib/lxc) that
 * holds a `config` file is a container, as `lxc-ls` says (hidden folders
 * left out, a symbolic link to a folder taken); its state and init
 * PID come from `$PCP_LXC_INFO -n NAME -P DIR -s -p` (default `lxc-info`),
 * asked about the same folder that was listed.
 *
 * Kept current without polling, through the injected DirectoryWatcher:
 *
 * - the LXC folder, for containers created or destroyed (a folder that has
 *   no `config` yet is watched until `lxc-create` writes it);
 * - the root of every cgroup hierarchy mounted here, where LXC makes
 *   `lxc.monitor.NAME` and `lxc.payload.NAME` on `lxc-start` and removes
 *   them on stop (LXC 3 and earlier: `lxc/NAME`, watched too). Each such
 *   change runs lxc-info for that container only.
 *
 * The listing alone gives the names, so the first load pushes them at once
 * (not running until lxc-info says otherwise) and never waits for lxc-info;
 * lxc-info runs off any request, as a child in its own process group with a
 * timeout (the whole group is killed), a few at a time, and each answer is
 * pushed as it comes. A failed or hung lxc-info leaves the container as it
 * was and says so in the engine's health.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { inject, injectable, optional } from 'inversify';
import { CrootConfig } from '../../core/config/croot-config.js';
import type { ContainerRecord, ContainerSink, EngineContribution } from '../../core/registry/engine-contribution.js';
import { DirectoryWatcher, type DirectoryEvent } from '../../core/host/host-services.js';
import { NodeDirectoryWatcher } from '../../core/host/node-directory-watcher.js';
import { plural } from '../../core/logging/plural.js';
import { watchForDirectory } from '../../core/host/watch-for-directory.js';
import { LxcCGroupWatch } from './lxc-cgroup-watch.js';
import { LxcInfoRunner, type LxcInfoAnswer } from './lxc-info-runner.js';
import { LXC_ENGINE_ID, listedLxcRecord, lxcRecordFrom, sameLxcRecord } from './lxc-record.js';

export { LXC_ENGINE_ID } from './lxc-record.js';
export const DEFAULT_LXC_DIR = '/var/lib/lxc';
export const DEFAULT_LXC_INFO = 'lxc-info';

/** Tuning knobs of the LXC engine; bind under this token to override the defaults. */
export const LxcEngineOptions = Symbol.for('croot/LxcEngineOptions');
export interface LxcEngineOptions {
  /** How long one lxc-info may run before its process group is killed (ms, default 5000). */
  readonly timeoutMs?: number;
  /** How many lxc-info children may run at once (default 4). */
  readonly concurrency?: number;
  /**
   * Folders where LXC makes a started container's cgroups (default: the
   * mount point of every cgroup and cgroup2 file system in
   * `<procRoot>/self/mountinfo`).
   */
  readonly cgroupRoots?: readonly string[];
}

/** States on the way to another: lxc-info is asked again shortly, a few times. */
const PASSING_STATES = new Set(['STARTING', 'STOPPING', 'ABORTING', 'FREEZING', 'THAWED']);
const PASSING_RETRIES = 6;
const PASSING_FIRST_DELAY_MS = 100;

/** One container of the LXC folder. */
interface Known {
  record: ContainerRecord;
  asking: Promise<void> | undefined;
  again: boolean;
  retry: NodeJS.Timeout | undefined;
  retries: number;
  /** Why its last lxc-info failed. */
  failed: string | undefined;
}

@injectable()
export class LxcEngine implements EngineContribution {
  readonly id = LXC_ENGINE_ID;
  private readonly lxcDir: string;
  private readonly lxcInfo: string;
  private readonly watcher: DirectoryWatcher;
  private readonly runner: LxcInfoRunner;
  private readonly cgroups: LxcCGroupWatch;

  private sink: ContainerSink | undefined;
  private stopped = false;
  private readonly known = new Map<string, Known>();
  /** Why the engine cannot read its containers, when it cannot. */
  private unavailable: string | undefined = 'not read yet';

  private dirWatch: (() => void) | undefined;
  private dirWait: (() => void) | undefined;
  /** Container folders without a `config` yet. */
  private readonly halfMade = new Map<string, () => void>();
  /** Folders that cannot be watched (the LXC folder's and the cgroup folders'), with why. */
  private readonly watchProblems = new Map<string, string>();

  /** Listing work, one job at a time. */
  private serial: Promise<void> = Promise.resolve();

  constructor(
    @inject(CrootConfig) private readonly config: CrootConfig,
    @inject(LxcEngineOptions) @optional() options: LxcEngineOptions | undefined,
    @inject(DirectoryWatcher) @optional() watcher: DirectoryWatcher | undefined,
  ) {
    this.lxcDir = (config.env.PCP_LXC_DIR || DEFAULT_LXC_DIR).replace(/(.)\/+$/, '$1');
    this.lxcInfo = config.env.PCP_LXC_INFO || DEFAULT_LXC_INFO;
    this.watcher = watcher ?? new NodeDirectoryWatcher();
    this.runner = new LxcInfoRunner(this.lxcInfo, this.lxcDir, options?.timeoutMs ?? 5000, Math.max(1, options?.concurrency ?? 4));
    this.cgroups = new LxcCGroupWatch(
      this.watcher,
      options?.cgroupRoots,
      config.procRoot,
      this.watchProblems,
      (folder) => this.changed(folder),
      () => void this.askAll(),
    );
  }

  /** Lists the LXC folder and pushes its containers at once; lxc-info answers follow as they come. */
  start(sink: ContainerSink): void {
    this.sink = sink;
    void this.serially(() => this.load()).then(() => this.askAll());
  }

  /** Lists the folder again, pushes the whole list, and asks lxc-info about every container. */
  async recheck(): Promise<void> {
    await this.serially(() => this.load());
    await this.askAll();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.sink = undefined;
    this.dirWatch?.();
    this.dirWait?.();
    this.dirWatch = this.dirWait = undefined;
    for (const end of this.halfMade.values()) end();
    this.halfMade.clear();
    this.cgroups.close();
    for (const k of this.known.values()) clearTimeout(k.retry);
    this.runner.stop();
    await this.serial;
    await Promise.all([...this.known.values()].map((k) => k.asking));
  }

  private serially(job: () => Promise<void>): Promise<void> {
    this.serial = this.serial
      .then(() => (this.stopped ? undefined : job()))
      // A fault of croot's own must not end the engine: say it, and let the next signal or re-check go on.
      .catch((err: unknown) => this.sink?.health(false, `reading ${this.lxcDir} failed: ${(err as Error).message}`));
    return this.serial;
  }

  // ---- the LXC folder -----------------------------------------------------

  /** Finds lxc-info, watches the folder and the cgroups, lists the containers and pushes them all. */
  private async load(): Promise<void> {
    const found = await this.runner.locate(this.config.env.PATH);
    if (this.stopped) return;
    if (!found) {
      this.drop(`${this.lxcInfo} not found (install lxc or set PCP_LXC_INFO)`);
      return;
    }
    if (!this.watchFolder()) return;
    this.cgroups.open();
    let entries;
    try {
      entries = await readdir(this.lxcDir, { withFileTypes: true });
    } catch (err) {
      this.drop(`cannot read the LXC directory ${this.lxcDir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return;
    }
    // As lxc-ls (list_defined_containers): no hidden entries; a symbolic link to a container's folder counts.
    const folders = entries.filter((e) => listable(e.name) && (e.isDirectory() || e.isSymbolicLink())).map((e) => e.name);
    const defined = await Promise.all(folders.map((name) => this.isDefined(name)));
    if (this.stopped) return;
    const names = new Set(folders.filter((_, i) => defined[i]));
    folders.forEach((name, i) => (defined[i] ? this.endHalfMade(name) : this.watchHalfMade(name)));
    for (const name of [...this.known.keys()]) if (!names.has(name)) this.forget(name);
    for (const name of [...names].sort()) if (!this.known.has(name)) this.known.set(name, fresh(name));
    this.unavailable = undefined;
    this.sink?.replaceAll([...this.known.values()].map((k) => k.record));
    this.reportHealth();
  }

  /** Watches the LXC folder, or waits for it to appear; false (and nothing listed) while it is absent. */
  private watchFolder(): boolean {
    if (this.dirWatch !== undefined) return true;
    try {
      this.dirWatch = this.watcher.watch(this.lxcDir, (e) => this.onFolder(e));
      this.watchProblems.delete(this.lxcDir);
      return true;
    } catch (err) {
      const code = (err as { details?: { code?: string } }).details?.code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') {
        // It is there but cannot be watched: read it anyway; changes show at the next re-check.
        this.watchProblems.set(this.lxcDir, (err as Error).message);
        return true;
      }
    }
    this.drop(`cannot read the LXC directory ${this.lxcDir}: ENOENT; waiting for it to appear`);
    if (this.dirWait === undefined) {
      let over = false;
      const end = watchForDirectory(
        this.watcher,
        this.lxcDir,
        () => {
          over = true;
          this.dirWait = undefined;
          void this.serially(() => this.load()).then(() => this.askAll());
        },
        (err) => {
          over = true;
          this.dirWait = undefined;
          this.watchProblems.set(this.lxcDir, `waiting for it: ${(err as Error).message}`);
        },
      );
      if (!over) this.dirWait = end;
    }
    return false;
  }

  private onFolder(event: DirectoryEvent): void {
    if (event.kind === 'overflow' || event.kind === 'gone') {
      if (event.kind === 'gone') this.dirWatch = undefined;
      void this.serially(() => this.load()).then(() => this.askAll());
      return;
    }
    if (!listable(event.name)) return;
    const name = event.name;
    void this.serially(() => this.check(name));
  }

  /** A container folder appeared, changed or went. */
  private async check(name: string): Promise<void> {
    const defined = await this.isDefined(name);
    if (this.stopped) return;
    if (defined) {
      this.endHalfMade(name);
      if (this.known.has(name)) return;
      const k = fresh(name);
      this.known.set(name, k);
      this.sink?.upsert(k.record);
      this.reportHealth();
      void this.ask(name);
      return;
    }
    if (this.known.has(name)) {
      this.forget(name);
      this.reportHealth();
    }
    const isFolder = await stat(join(this.lxcDir, name)).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (!isFolder) this.endHalfMade(name);
    // Newly watched: look once more, for a config written before the watch began.
    else if (this.watchHalfMade(name)) await this.check(name);
  }

  /** A folder without `config`: `lxc-create` has not finished it. Watched until it has. True when newly watched. */
  private watchHalfMade(name: string): boolean {
    if (this.stopped || this.halfMade.has(name)) return false;
    const dir = join(this.lxcDir, name);
    try {
      this.halfMade.set(
        name,
        this.watcher.watch(dir, (e) => {
          if (e.kind === 'gone') this.halfMade.delete(name);
          if (e.kind === 'gone' || e.kind === 'overflow' || e.name === 'config') void this.serially(() => this.check(name));
        }),
      );
      return true;
    } catch {
      return false;
    }
  }

  private endHalfMade(name: string): void {
    this.halfMade.get(name)?.();
    this.halfMade.delete(name);
  }

  /** Whether `name`'s folder holds a `config` file, as lxc-ls requires. */
  private isDefined(name: string): Promise<boolean> {
    return stat(join(this.lxcDir, name, 'config')).then(
      (s) => s.isFile(),
      () => false,
    );
  }

  private forget(name: string): void {
    const k = this.known.get(name);
    if (k === undefined) return;
    clearTimeout(k.retry);
    this.known.delete(name);
    this.sink?.remove(name);
  }

  /** Nothing can be read: every container goes, and the health says why. */
  private drop(reason: string): void {
    for (const k of this.known.values()) clearTimeout(k.retry);
    this.known.clear();
    this.unavailable = reason;
    this.sink?.replaceAll([]);
    this.reportHealth();
  }

  // ---- start and stop: the cgroups ---------------------------------------

  /** A cgroup folder of `folder` (a container's name, or LXC's `NAME-1` when that one was taken) came or went. */
  private changed(folder: string): void {
    if (this.known.has(folder)) {
      void this.ask(folder);
      return;
    }
    const base = /^(.+)-\d+$/.exec(folder)?.[1];
    if (base !== undefined && this.known.has(base)) void this.ask(base);
  }

  // ---- lxc-info -----------------------------------------------------------

  private askAll(): Promise<void> {
    return Promise.all([...this.known.keys()].map((name) => this.ask(name))).then(() => undefined);
  }

  /** Asks lxc-info about `name` (once more after the current answer when one is under way) and pushes the answer. */
  private ask(name: string): Promise<void> {
    const k = this.known.get(name);
    if (k === undefined || this.stopped) return Promise.resolve();
    if (k.asking !== undefined) {
      k.again = true;
      return k.asking;
    }
    clearTimeout(k.retry);
    k.retry = undefined;
    k.asking = (async () => {
      do {
        k.again = false;
        const answer = await this.runner.ask(name);
        if (this.stopped || this.known.get(name) !== k) return;
        this.take(name, k, answer);
      } while (k.again);
    })().finally(() => {
      k.asking = undefined;
    });
    return k.asking;
  }

  private take(name: string, k: Known, answer: LxcInfoAnswer): void {
    if (answer === 'ENOENT') {
      this.runner.command = undefined;
      this.drop(`${this.lxcInfo} not found (install lxc or set PCP_LXC_INFO)`);
      return;
    }
    if ('failed' in answer) {
      k.failed = answer.failed;
      // Requests waiting for its state get "not running" (the health says why), not a wait per request.
      if (k.record.pending === true) this.sink?.upsert((k.record = { ...k.record, pending: false }));
      this.reportHealth();
      return;
    }
    k.failed = undefined;
    const record = lxcRecordFrom(name, answer.info);
    if (!sameLxcRecord(record, k.record)) {
      k.record = record;
      this.sink?.upsert(record);
    }
    if (answer.info.state !== undefined && PASSING_STATES.has(answer.info.state) && k.retries < PASSING_RETRIES) {
      const delay = PASSING_FIRST_DELAY_MS * 2 ** k.retries++;
      k.retry = setTimeout(() => void this.ask(name), delay);
      k.retry.unref();
    } else {
      k.retries = 0;
    }
    this.reportHealth();
  }

  private reportHealth(): void {
    const sink = this.sink;
    if (sink === undefined) return;
    const problems = [...this.watchProblems].map(([dir, why]) => `cannot watch ${dir} (${why}); its changes show at the next re-check`);
    if (this.unavailable !== undefined) {
      sink.health(false, [this.unavailable, ...problems].join('; '));
      return;
    }
    const failed = [...this.known].filter(([, k]) => k.failed !== undefined).map(([name, k]) => `${name} (${k.failed})`);
    const shown = failed.slice(0, 3).join(', ') + (failed.length > 3 ? `, and ${failed.length - 3} more` : '');
    const cgroups = this.cgroups.size === 0 ? ['no cgroup folder watched: starts and stops show at the next re-check'] : [];
    sink.health(
      true,
      [
        `reads ${this.lxcDir} with ${this.lxcInfo} (${plural(this.known.size, 'container')})`,
        ...(failed.length > 0 ? [`lxc-info failed for ${shown}`] : []),
        ...cgroups,
        ...problems,
      ].join('; '),
    );
  }
}

/** Whether lxc-ls would look at an entry of the LXC folder: not '', and not hidden ('.', '..', '.name'). */
function listable(name: string): boolean {
  return name !== '' && !name.startsWith('.');
}

/** A container listed but not asked about yet. */
function fresh(name: string): Known {
  return { record: listedLxcRecord(name), asking: undefined, again: false, retry: undefined, retries: 0, failed: undefined };
}
