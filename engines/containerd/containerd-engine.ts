/**
 * The containerd engine: every task of every namespace but Docker's `moby`,
 * read from the runc v2 shims' bundles and runc's state on disk (no gRPC),
 * and kept current from inotify (the injected DirectoryWatcher):
 *
 * - the task root, for namespaces that appear or go (and, while the task
 *   root does not exist, the folder where it would appear);
 * - each namespace folder, for tasks that appear or go (`ctr task start`,
 *   `ctr task rm`);
 * - while a task is not started yet, its bundle folder (`init.pid` is written
 *   once runc has created the init process) and runc's folder for it
 *   (`state.json` with `init_process_start`; `exec.fifo` removed on start).
 *   A started task's folders are not watched: nothing there changes until
 *   the task is removed, which its namespace folder shows.
 *
 * Nothing on disk changes when a task's init process exits: the registry
 * sees that through its pidfd. runc records the init process's start time,
 * which the registry checks when it anchors the PID.
 *
 * Ids and names: see containerd-task-records.ts.
 */
import { inject, injectable, optional } from 'inversify';
import { CrootConfig } from '../../core/config/croot-config.js';
import type { ContainerSink, EngineContribution } from '../../core/registry/engine-contribution.js';
import { DirectoryWatcher, type DirectoryEvent } from '../../core/host/host-services.js';
import { NodeDirectoryWatcher } from '../../core/host/node-directory-watcher.js';
import { watchForDirectory } from '../../core/host/watch-for-directory.js';
import { ContainerdTaskRecords } from './containerd-task-records.js';
import { complete, listFolders, MOBY_NAMESPACE, readTask, type Task } from './containerd-tasks.js';

export const CONTAINERD_ENGINE_ID = 'containerd';
export const DEFAULT_CONTAINERD_TASK_DIR = '/run/containerd/io.containerd.runtime.v2.task';
export const DEFAULT_CONTAINERD_RUNC_ROOT = '/run/containerd/runc';

/** Tuning knobs of the containerd engine; bind under this token to override the defaults. */
export const ContainerdEngineOptions = Symbol.for('croot/ContainerdEngineOptions');
export interface ContainerdEngineOptions {
  /** How many task folders are read at once (default 32). */
  readonly concurrency?: number;
}

/** Calls `fn` on every item, at most `limit` at a time. */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

@injectable()
export class ContainerdEngine implements EngineContribution {
  readonly id = CONTAINERD_ENGINE_ID;
  /** The shims' task root (`CROOT_CONTAINERD_TASK_DIR`). */
  readonly taskRoot: string;
  /** runc's state root for containerd (`CROOT_CONTAINERD_RUNC_ROOT`). */
  readonly runcRoot: string;
  private readonly watcher: DirectoryWatcher;
  private readonly concurrency: number;
  private sink: ContainerSink | undefined;
  private stopped = false;

  /** The tasks as read, and the records pushed for them. */
  private readonly tasks = new ContainerdTaskRecords(CONTAINERD_ENGINE_ID);

  /** Watched folders: path → its unwatch function. */
  private readonly watches = new Map<string, () => void>();
  /** Waits for an absent task root or runc root to appear. */
  private readonly waits = new Map<string, () => void>();
  /** Folders that exist but could not be watched, with why. */
  private readonly unwatchable = new Map<string, string>();

  /** Work the change signals asked for, done by one job at a time. */
  private readonly dirty = new Set<string>();
  private readonly dirtyNamespaces = new Set<string>();
  private rescanWanted = false;
  private scheduled = false;
  private work: Promise<void> = Promise.resolve();
  /** Why the task root is not read, when it is not. */
  private absent: string | undefined;

  constructor(
    @inject(CrootConfig) config: CrootConfig,
    @inject(DirectoryWatcher) @optional() watcher: DirectoryWatcher | undefined,
    @inject(ContainerdEngineOptions) @optional() options: ContainerdEngineOptions | undefined,
  ) {
    this.taskRoot = (config.env.CROOT_CONTAINERD_TASK_DIR || DEFAULT_CONTAINERD_TASK_DIR).replace(/\/+$/, '');
    this.runcRoot = (config.env.CROOT_CONTAINERD_RUNC_ROOT || DEFAULT_CONTAINERD_RUNC_ROOT).replace(/\/+$/, '');
    this.watcher = watcher ?? new NodeDirectoryWatcher();
    this.concurrency = Math.max(1, options?.concurrency ?? 32);
  }

  /** Starts the first load (not awaited: it pushes when done) and the watches. */
  start(sink: ContainerSink): void {
    this.sink = sink;
    this.rescanWanted = true;
    this.kick();
  }

  /** Reads everything again and pushes the whole list (the registry's safety net). */
  async recheck(): Promise<void> {
    this.rescanWanted = true;
    this.kick();
    await this.work;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.sink = undefined;
    for (const end of [...this.watches.values(), ...this.waits.values()]) end();
    this.watches.clear();
    this.waits.clear();
    await this.work;
  }

  // ---- the change signals -------------------------------------------------

  private kick(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    this.work = this.work
      .then(async () => {
        this.scheduled = false;
        if (!this.stopped) await this.drain();
      })
      // A fault of croot's own must not end the engine: say it, and let the next signal or re-check go on.
      .catch((err: unknown) => this.sink?.health(false, `reading ${this.taskRoot} failed: ${(err as Error).message}`));
  }

  private watch(dir: string, onEvent: (event: DirectoryEvent) => void): boolean {
    if (this.stopped || this.watches.has(dir)) return false;
    try {
      this.watches.set(dir, this.watcher.watch(dir, onEvent));
      this.unwatchable.delete(dir);
      return true;
    } catch (err) {
      // Absent (raced with a removal) is not worth a word; the limit of inotify watches or a permission is.
      const code = (err as { details?: { code?: string } }).details?.code;
      if (code === 'ENOENT' || code === 'ENOTDIR') this.unwatchable.delete(dir);
      else this.unwatchable.set(dir, (err as Error).message);
      return false;
    }
  }

  private unwatch(dir: string): void {
    this.watches.get(dir)?.();
    this.watches.delete(dir);
    this.unwatchable.delete(dir);
  }

  /** An event that ended a watch: forget the watch. Overflow: read everything again. */
  private ended(dir: string, event: DirectoryEvent): boolean {
    if (event.kind === 'gone') this.watches.delete(dir);
    if (event.kind !== 'overflow') return false;
    this.rescanWanted = true;
    this.kick();
    return true;
  }

  private onTaskRoot(event: DirectoryEvent): void {
    if (this.ended(this.taskRoot, event)) return;
    if (event.kind === 'gone') this.rescanWanted = true;
    else if (event.name !== '' && event.name !== MOBY_NAMESPACE && !event.name.startsWith('.')) this.dirtyNamespaces.add(event.name);
    this.kick();
  }

  private onNamespace(ns: string, event: DirectoryEvent): void {
    if (this.ended(`${this.taskRoot}/${ns}`, event)) return;
    if (event.kind === 'gone' || event.name === '') this.dirtyNamespaces.add(ns);
    else if (!event.name.startsWith('.')) this.dirty.add(`${ns}/${event.name}`);
    this.kick();
  }

  private onRuncRoot(event: DirectoryEvent): void {
    if (this.ended(this.runcRoot, event)) return;
    if (event.kind === 'gone') {
      this.rescanWanted = true;
    } else if (event.name !== '' && event.name !== MOBY_NAMESPACE) {
      if (event.kind === 'changed') this.watch(`${this.runcRoot}/${event.name}`, (e) => this.onRuncNamespace(event.name, e));
      for (const task of this.tasks.values()) if (task.namespace === event.name && !complete(task)) this.dirty.add(task.key);
    }
    this.kick();
  }

  private onRuncNamespace(ns: string, event: DirectoryEvent): void {
    if (this.ended(`${this.runcRoot}/${ns}`, event)) return;
    const task = this.tasks.get(`${ns}/${event.name}`);
    if (task !== undefined && !complete(task)) {
      this.dirty.add(task.key);
      this.kick();
    }
  }

  /** An event in a task's bundle folder or runc's folder for it. */
  private onTaskFolder(dir: string, key: string, event: DirectoryEvent): void {
    if (this.ended(dir, event)) return;
    this.dirty.add(key);
    this.kick();
  }

  // ---- reading ------------------------------------------------------------

  /** One job: a full re-read when asked for, then the namespaces and tasks that changed. */
  private async drain(): Promise<void> {
    if (this.rescanWanted) {
      this.rescanWanted = false;
      await this.rescan();
    }
    while (!this.stopped && !this.rescanWanted && (this.dirty.size > 0 || this.dirtyNamespaces.size > 0)) {
      const namespaces = [...this.dirtyNamespaces];
      this.dirtyNamespaces.clear();
      for (const ns of namespaces) await this.relist(ns);
      const keys = [...this.dirty];
      this.dirty.clear();
      const read = new Map<string, Task | undefined>();
      await eachLimited(keys, this.concurrency, async (key) => {
        read.set(key, await this.readAndWatch(key, this.tasks.get(key)));
      });
      if (this.stopped || this.rescanWanted) break;
      this.apply(read);
      this.reportHealth();
    }
    if (this.rescanWanted) this.kick();
  }

  /** A namespace folder appeared, changed or went: watch it and look at each of its tasks. */
  private async relist(ns: string): Promise<void> {
    const dir = `${this.taskRoot}/${ns}`;
    this.watch(dir, (e) => this.onNamespace(ns, e));
    let ids: string[] = [];
    try {
      ids = await listFolders(dir);
      this.watch(`${this.runcRoot}/${ns}`, (e) => this.onRuncNamespace(ns, e));
    } catch {
      this.unwatch(dir);
    }
    for (const id of ids) this.dirty.add(`${ns}/${id}`);
    for (const task of this.tasks.values()) if (task.namespace === ns) this.dirty.add(task.key);
  }

  /**
   * Reads one task; undefined when its bundle is gone. A task not started yet
   * has its folders watched; a newly watched one is read once more, so a
   * change made between the read and the watch is not missed.
   */
  private async readAndWatch(key: string, before: Task | undefined): Promise<Task | undefined> {
    const task = await readTask(this.taskRoot, this.runcRoot, key, before);
    if (task === undefined) return undefined;
    const bundle = `${this.taskRoot}/${key}`;
    const runc = `${this.runcRoot}/${key}`;
    if (complete(task)) {
      this.unwatch(bundle);
      this.unwatch(runc);
    } else {
      const fresh = [this.watch(bundle, (e) => this.onTaskFolder(bundle, key, e)), this.watch(runc, (e) => this.onTaskFolder(runc, key, e))];
      if (fresh.includes(true)) this.dirty.add(key);
    }
    return task;
  }

  /** A full re-read: every namespace and task, pushed as one list. */
  private async rescan(): Promise<void> {
    this.dirty.clear();
    this.dirtyNamespaces.clear();
    this.armRoot(this.taskRoot, (e) => this.onTaskRoot(e));
    this.armRoot(this.runcRoot, (e) => this.onRuncRoot(e));
    let namespaces: string[];
    try {
      namespaces = (await listFolders(this.taskRoot)).filter((ns) => ns !== MOBY_NAMESPACE).sort();
      this.absent = undefined;
    } catch (err) {
      namespaces = [];
      const code = (err as NodeJS.ErrnoException).code;
      this.absent =
        code === 'ENOENT'
          ? `no ${this.taskRoot}: containerd has run no task here; waiting for it to appear`
          : `cannot read ${this.taskRoot}: ${code ?? (err as Error).message}`;
    }
    const keys: string[] = [];
    for (const ns of namespaces) {
      this.watch(`${this.taskRoot}/${ns}`, (e) => this.onNamespace(ns, e));
      this.watch(`${this.runcRoot}/${ns}`, (e) => this.onRuncNamespace(ns, e));
      try {
        for (const id of (await listFolders(`${this.taskRoot}/${ns}`)).sort()) keys.push(`${ns}/${id}`);
      } catch {
        // Gone while listed: the task root's watch says so.
      }
    }
    const fresh = new Map<string, Task>();
    await eachLimited(keys, this.concurrency, async (key) => {
      const task = await this.readAndWatch(key, this.tasks.get(key));
      if (task !== undefined) fresh.set(key, task);
    });
    if (this.stopped) return;
    this.replaceTasks(fresh, namespaces);
    this.reportHealth();
  }

  /** Watches a root folder, or waits for it to appear. True when it is watched. */
  private armRoot(dir: string, onEvent: (event: DirectoryEvent) => void): boolean {
    if (this.watches.has(dir)) return true;
    if (this.watch(dir, onEvent)) {
      this.waits.get(dir)?.();
      this.waits.delete(dir);
      return true;
    }
    // Absent: wait for it (again, after a wait that failed). There but not watchable: re-checks read it.
    if (!this.unwatchable.has(dir) && !this.waits.has(dir)) this.awaitRoot(dir);
    return false;
  }

  private awaitRoot(dir: string): void {
    if (this.stopped) return;
    let over = false;
    const end = watchForDirectory(
      this.watcher,
      dir,
      () => {
        over = true;
        this.waits.delete(dir);
        this.rescanWanted = true;
        this.kick();
      },
      (err) => {
        over = true;
        this.waits.delete(dir);
        this.unwatchable.set(dir, `waiting for it: ${(err as Error).message}`);
      },
    );
    // It may be over already (the folder appeared meanwhile).
    if (!over) this.waits.set(dir, end);
  }

  // ---- records ------------------------------------------------------------

  /** Replaces every task (a full re-read), unwatches the folders no longer wanted, and pushes the whole list. */
  private replaceTasks(fresh: Map<string, Task>, namespaces: readonly string[]): void {
    const live = new Set(namespaces);
    // Folders of namespaces and tasks that are gone, or of tasks now started, are no longer watched.
    const wanted = (dir: string): boolean => {
      if (dir === this.taskRoot || dir === this.runcRoot) return true;
      const under = dir.startsWith(`${this.taskRoot}/`) ? this.taskRoot : this.runcRoot;
      const rel = dir.slice(under.length + 1);
      if (!rel.includes('/')) return live.has(rel);
      const task = fresh.get(rel);
      return task !== undefined && !complete(task);
    };
    for (const dir of new Set([...this.watches.keys(), ...this.unwatchable.keys()])) if (!wanted(dir)) this.unwatch(dir);
    this.tasks.replaceAll(fresh, this.sink);
  }

  /** Applies what was read of some tasks (undefined: gone, its folders unwatched) and pushes every record that changed. */
  private apply(read: ReadonlyMap<string, Task | undefined>): void {
    for (const [key, task] of read) {
      if (task !== undefined) continue;
      this.unwatch(`${this.taskRoot}/${key}`);
      this.unwatch(`${this.runcRoot}/${key}`);
    }
    this.tasks.apply(read, this.sink);
  }

  private reportHealth(): void {
    const sink = this.sink;
    if (sink === undefined) return;
    const problems = [...this.unwatchable].map(([dir, why]) => `cannot watch ${dir} (${why}); its changes show at the next re-check`);
    if (this.absent !== undefined) {
      sink.health(false, [this.absent, ...problems].join('; '));
      return;
    }
    const { namespaces: list, sandboxes, damaged } = this.tasks.summary();
    if (damaged.length > 0) {
      const shown = damaged.sort().slice(0, 3).join(', ') + (damaged.length > 3 ? `, and ${damaged.length - 3} more` : '');
      problems.unshift(`run state damaged, so not running for croot: ${shown}`);
    }
    const reason =
      `reading ${this.taskRoot} (runc state ${this.runcRoot}): ` +
      (list.length > 0 ? list.join(', ') : 'no tasks') +
      (sandboxes > 0 ? `; ${sandboxes} CRI ${sandboxes === 1 ? 'sandbox' : 'sandboxes'} left out` : '');
    sink.health(true, [reason, ...problems].join('; '));
  }
}
