/**
 * LXC containers: every folder of `$PCP_LXC_DIR` (default /var/lib/lxc) that
 * holds a `config` file is a container, as `lxc-ls` says; its state and init
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
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as fsConstants, readFileSync } from 'node:fs';
import { access, readdir, stat } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { inject, injectable, optional } from 'inversify';
import { CrootConfig } from '../../core/config/croot-config.js';
import type { ContainerRecord, ContainerSink, EngineContribution } from '../../core/registry/engine-contribution.js';
import { DirectoryWatcher, type DirectoryEvent } from '../../core/host/host-services.js';
import { NodeDirectoryWatcher } from '../../core/host/node-directory-watcher.js';
import { plural } from '../../core/logging/plural.js';
import { watchForDirectory } from '../../core/host/watch-for-directory.js';

export const LXC_ENGINE_ID = 'lxc';
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

/** What `lxc-info -n NAME` says about one container. */
export interface LxcInfo {
  readonly state?: string;
  readonly pid?: number;
}

/** Parses lxc-info's `Key: value` lines (`State:`, `PID:`); other lines are ignored. */
export function parseLxcInfo(text: string): LxcInfo {
  let state: string | undefined;
  let pid: number | undefined;
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z][A-Za-z ]*?)\s*:\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    const key = (m[1] ?? '').toLowerCase();
    const value = m[2] ?? '';
    if (key === 'state' && state === undefined) state = value.toUpperCase();
    else if (key === 'pid' && pid === undefined && /^\d+$/.test(value)) pid = Number(value);
  }
  return { ...(state !== undefined && { state }), ...(pid !== undefined && { pid }) };
}

/** The mount points of the cgroup and cgroup2 file systems in a mountinfo text. */
export function cgroupMountPoints(mountinfo: string): string[] {
  const points: string[] = [];
  for (const line of mountinfo.split('\n')) {
    const [before, after] = line.split(' - ');
    const fstype = after?.split(' ')[0];
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const point = before?.split(' ')[4];
    if (point !== undefined) points.push(point.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))));
  }
  return points;
}

/** LXC states in which the init process exists (FROZEN is paused, which counts as running). */
const LIVE_STATES = new Set(['RUNNING', 'FREEZING', 'FROZEN', 'THAWED', 'STOPPING']);
const PAUSED_STATES = new Set(['FREEZING', 'FROZEN']);
/** States on the way to another: lxc-info is asked again shortly, a few times. */
const PASSING_STATES = new Set(['STARTING', 'STOPPING', 'ABORTING', 'FREEZING', 'THAWED']);
const PASSING_RETRIES = 6;
const PASSING_FIRST_DELAY_MS = 100;

/** A started container's cgroup folders at a hierarchy's root (LXC 4 and later). */
const PAYLOAD_FOLDER = /^lxc\.(?:payload|monitor)\.(.+)$/;
/** Folders LXC puts containers' cgroups in, one per container (`lxc/NAME` up to LXC 3). */
const PARENT_FOLDERS = ['lxc', 'lxc.payload', 'lxc.monitor'];

/** What lxc-info gave: an answer, a failure, or that the command is not there. */
type Answer = { readonly info: LxcInfo } | { readonly failed: string } | 'ENOENT';

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
  private readonly timeoutMs: number;
  private readonly concurrency: number;
  private readonly cgroupRoots: readonly string[] | undefined;
  private readonly watcher: DirectoryWatcher;

  private sink: ContainerSink | undefined;
  private stopped = false;
  private command: string | undefined;
  private readonly known = new Map<string, Known>();
  /** Why the engine cannot read its containers, when it cannot. */
  private unavailable: string | undefined = 'not read yet';

  private dirWatch: (() => void) | undefined;
  private dirWait: (() => void) | undefined;
  /** Container folders without a `config` yet. */
  private readonly halfMade = new Map<string, () => void>();
  /** Watched cgroup folders → unwatch. */
  private readonly cgroupWatches = new Map<string, () => void>();
  private readonly watchProblems = new Map<string, string>();

  /** Listing work, one job at a time. */
  private serial: Promise<void> = Promise.resolve();
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly children = new Set<ChildProcess>();

  constructor(
    @inject(CrootConfig) private readonly config: CrootConfig,
    @inject(LxcEngineOptions) @optional() options: LxcEngineOptions | undefined,
    @inject(DirectoryWatcher) @optional() watcher: DirectoryWatcher | undefined,
  ) {
    this.lxcDir = (config.env.PCP_LXC_DIR || DEFAULT_LXC_DIR).replace(/(.)\/+$/, '$1');
    this.lxcInfo = config.env.PCP_LXC_INFO || DEFAULT_LXC_INFO;
    this.timeoutMs = options?.timeoutMs ?? 5000;
    this.concurrency = Math.max(1, options?.concurrency ?? 4);
    this.cgroupRoots = options?.cgroupRoots;
    this.watcher = watcher ?? new NodeDirectoryWatcher();
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
    for (const end of [...this.halfMade.values(), ...this.cgroupWatches.values()]) end();
    this.halfMade.clear();
    this.cgroupWatches.clear();
    for (const k of this.known.values()) clearTimeout(k.retry);
    for (const child of this.children) killGroup(child);
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
    this.command = await findCommand(this.lxcInfo, this.config.env.PATH);
    if (this.stopped) return;
    if (this.command === undefined) {
      this.drop(`${this.lxcInfo} not found (install lxc or set PCP_LXC_INFO)`);
      return;
    }
    if (!this.watchFolder()) return;
    this.watchCgroups();
    let entries;
    try {
      entries = await readdir(this.lxcDir, { withFileTypes: true });
    } catch (err) {
      this.drop(`cannot read the LXC directory ${this.lxcDir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return;
    }
    const folders = entries.filter((e) => e.isDirectory()).map((e) => e.name);
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
    if (event.name === '') return;
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

  private watchCgroups(): void {
    for (const root of this.cgroupRootList()) {
      this.watchCgroup(root, (e) => this.onCgroupRoot(root, e));
      for (const parent of PARENT_FOLDERS) this.watchCgroup(join(root, parent), (e) => this.onCgroupParent(join(root, parent), e), true);
    }
  }

  private cgroupRootList(): readonly string[] {
    if (this.cgroupRoots !== undefined) return this.cgroupRoots;
    try {
      return cgroupMountPoints(readFileSync(join(this.config.procRoot, 'self', 'mountinfo'), 'utf8'));
    } catch {
      return [];
    }
  }

  /** True when newly watched. */
  private watchCgroup(dir: string, onEvent: (event: DirectoryEvent) => void, mayBeAbsent = false): boolean {
    if (this.stopped || this.cgroupWatches.has(dir)) return false;
    try {
      this.cgroupWatches.set(dir, this.watcher.watch(dir, onEvent));
      this.watchProblems.delete(dir);
      return true;
    } catch (err) {
      if (!mayBeAbsent) this.watchProblems.set(dir, (err as Error).message);
      return false;
    }
  }

  private onCgroupRoot(root: string, event: DirectoryEvent): void {
    if (event.kind === 'gone') this.cgroupWatches.delete(root);
    if (event.kind === 'overflow') {
      void this.askAll();
      return;
    }
    if (PARENT_FOLDERS.includes(event.name)) {
      const dir = join(root, event.name);
      // Newly watched: the first container's folder may be in it already.
      if (event.kind === 'changed' && this.watchCgroup(dir, (e) => this.onCgroupParent(dir, e), true)) {
        void readdir(dir).then((names) => names.forEach((name) => this.changed(name)), () => undefined);
      }
      return;
    }
    const m = PAYLOAD_FOLDER.exec(event.name);
    if (m !== null) this.changed(m[1] as string);
  }

  private onCgroupParent(dir: string, event: DirectoryEvent): void {
    if (event.kind === 'gone') this.cgroupWatches.delete(dir);
    if (event.kind === 'overflow') void this.askAll();
    else if (event.name !== '') this.changed(event.name);
  }

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
        const answer = await this.limited(() => this.runLxcInfo(name));
        if (this.stopped || this.known.get(name) !== k) return;
        this.take(name, k, answer);
      } while (k.again);
    })().finally(() => {
      k.asking = undefined;
    });
    return k.asking;
  }

  private take(name: string, k: Known, answer: Answer): void {
    if (answer === 'ENOENT') {
      this.command = undefined;
      this.drop(`${this.lxcInfo} not found (install lxc or set PCP_LXC_INFO)`);
      return;
    }
    if ('failed' in answer) {
      k.failed = answer.failed;
      this.reportHealth();
      return;
    }
    k.failed = undefined;
    const record = recordOf(name, answer.info);
    if (!sameRecord(record, k.record)) {
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

  /** Runs `job` once fewer than `concurrency` lxc-info children are running. */
  private limited<T>(job: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const go = (): void => {
        this.running++;
        job()
          .then(resolve, reject)
          .finally(() => {
            this.running--;
            this.waiting.shift()?.();
          });
      };
      if (this.running < this.concurrency) go();
      else this.waiting.push(go);
    });
  }

  /** One lxc-info child in a process group of its own; the whole group is killed at the timeout. */
  private runLxcInfo(name: string): Promise<Answer> {
    const command = this.command;
    if (this.stopped || command === undefined) return Promise.resolve({ failed: 'not asked' });
    return new Promise<Answer>((resolve) => {
      // -P: the folder croot listed, not lxc's configured lxcpath; -s -p: skip the IP and cgroup statistics.
      let child: ChildProcess;
      try {
        child = spawn(command, ['-n', name, '-P', this.lxcDir, '-s', '-p'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (err) {
        resolve({ failed: (err as Error).message });
        return;
      }
      this.children.add(child);
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      let settled = false;
      const timer = setTimeout(() => {
        timedOut = true;
        killGroup(child);
      }, this.timeoutMs);
      const done = (answer: Answer): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.children.delete(child);
        resolve(answer);
      };
      child.stdout?.setEncoding('utf8').on('data', (d: string) => {
        if (stdout.length < 65536) stdout += d;
      });
      child.stderr?.setEncoding('utf8').on('data', (d: string) => {
        if (stderr.length < 4096) stderr += d;
      });
      child.on('error', (err: NodeJS.ErrnoException) => done(err.code === 'ENOENT' ? 'ENOENT' : { failed: err.message }));
      child.on('close', (code, signal) => {
        if (timedOut) done({ failed: `timed out after ${this.timeoutMs} ms` });
        else if (code === 0) done({ info: parseLxcInfo(stdout) });
        else done({ failed: `exited with ${code ?? signal}${stderr.trim() ? `: ${stderr.trim().split('\n')[0]}` : ''}` });
      });
    });
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
    const cgroups = this.cgroupWatches.size === 0 ? ['no cgroup folder watched: starts and stops show at the next re-check'] : [];
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

/** A container listed but not asked about yet: its state is unknown, so it is not running. */
function fresh(name: string): Known {
  return {
    record: { engine: LXC_ENGINE_ID, id: name, names: [name], running: false, source: 'directory' },
    asking: undefined,
    again: false,
    retry: undefined,
    retries: 0,
    failed: undefined,
  };
}

function recordOf(name: string, info: LxcInfo): ContainerRecord {
  const state = info.state;
  const running = state !== undefined && LIVE_STATES.has(state) && info.pid !== undefined && info.pid > 0;
  return {
    engine: LXC_ENGINE_ID,
    id: name,
    names: [name],
    running,
    paused: running && PAUSED_STATES.has(state),
    restarting: false,
    ...(running ? { pid: info.pid } : {}),
    ...(state !== undefined ? { state } : {}),
    source: 'lxc-info',
  };
}

function sameRecord(a: ContainerRecord, b: ContainerRecord): boolean {
  return a.running === b.running && a.paused === b.paused && a.pid === b.pid && a.state === b.state && a.source === b.source;
}

/**
 * Kills a child's whole process group (a script that does not `exec` leaves
 * its own children). Called only before the child's 'close' (its pipes are
 * still held by it or its descendants), never after, when the group id could
 * in principle belong to an unrelated process.
 */
function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // the group is gone already
  }
}

/** `cmd` itself when it holds a slash, else its first executable match in `pathVar`; undefined when none. */
export async function findCommand(cmd: string, pathVar: string | undefined = process.env.PATH): Promise<string | undefined> {
  const candidates = cmd.includes('/')
    ? [cmd]
    : (pathVar ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')
        .split(delimiter)
        .filter((d) => d.length > 0)
        .map((d) => join(d, cmd));
  for (const candidate of candidates) {
    try {
      await access(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // try the next one
    }
  }
  return undefined;
}
