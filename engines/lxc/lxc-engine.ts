/**
 * LXC containers: every directory under `$PCP_LXC_DIR` (default
 * /var/lib/lxc) that holds a `config` file is a container, as `lxc-ls` says;
 * its state and init PID come from `$PCP_LXC_INFO -n NAME -P DIR -s -p`
 * (default `lxc-info`), asked about the same directory that was listed.
 * Unlike PCP, lxc-info is not run on every lookup: answers are kept for
 * `cacheMs`, the directory is re-listed only when its mtime changes, and
 * lxc-info runs as an asynchronous child with a timeout.
 */
import { execFile } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, readdir, stat } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { inject, injectable, optional } from 'inversify';
import { CrootConfig } from '../../core/config.js';
import type { ContainerRecord, ContainerSink, EngineContribution, EngineStatus } from '../../core/engine.js';
import { InterimPoll } from '../../core/interim-poll.js';
import { plural } from '../../core/plural.js';
import { readCgroupName, readStartTime } from '../../core/proc.js';
import { ThrottledRefresh } from '../../core/throttled-refresh.js';

export const LXC_ENGINE_ID = 'lxc';
export const DEFAULT_LXC_DIR = '/var/lib/lxc';
export const DEFAULT_LXC_INFO = 'lxc-info';

/** Tuning knobs of the LXC engine; bind under this token to override the defaults. */
export const LxcEngineOptions = Symbol.for('croot/LxcEngineOptions');
export interface LxcEngineOptions {
  /** How long a listing and each container's lxc-info answer stay fresh (ms, default 1000). */
  readonly cacheMs?: number;
  /** How long one lxc-info may run before it is killed (ms, default 5000). */
  readonly timeoutMs?: number;
  /** How many lxc-info children may run at once (default 8). */
  readonly concurrency?: number;
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

/** LXC states in which the init process exists (FROZEN is paused, which counts as running). */
const LIVE_STATES = new Set(['RUNNING', 'FREEZING', 'FROZEN', 'THAWED', 'STOPPING']);
const PAUSED_STATES = new Set(['FREEZING', 'FROZEN']);

const EMPTY: readonly ContainerRecord[] = Object.freeze([]);

@injectable()
export class LxcEngine implements EngineContribution {
  readonly id = LXC_ENGINE_ID;
  private readonly lxcDir: string;
  private readonly lxcInfo: string;
  private readonly timeoutMs: number;
  private readonly concurrency: number;

  private snapshot: readonly ContainerRecord[] = EMPTY;
  private names: readonly string[] = [];
  private dirMtimeMs: number | undefined;
  private readonly refresher: ThrottledRefresh<void>;
  private state: EngineStatus;
  private readonly children = new AbortController();

  constructor(
    @inject(CrootConfig) private readonly config: CrootConfig,
    @inject(LxcEngineOptions) @optional() options: LxcEngineOptions | undefined,
  ) {
    this.lxcDir = config.env.PCP_LXC_DIR || DEFAULT_LXC_DIR;
    this.lxcInfo = config.env.PCP_LXC_INFO || DEFAULT_LXC_INFO;
    this.refresher = new ThrottledRefresh(options?.cacheMs ?? 1000, () => this.refresh(), Date.now, {
      measureFrom: 'finish',
      abortMessage: 'lxc lookup aborted',
    });
    this.timeoutMs = options?.timeoutMs ?? 5000;
    this.concurrency = Math.max(1, options?.concurrency ?? 8);
    this.state = { engine: this.id, available: false, reason: 'not checked yet', checkedAt: 0 };
  }

  async containers(signal?: AbortSignal): Promise<readonly ContainerRecord[]> {
    await this.refresher.get(signal);
    return this.snapshot;
  }

  status(): EngineStatus {
    return this.state;
  }

  /** INTERIM: polls the old pull interface until this engine pushes from its own change signals. */
  private interim: InterimPoll | undefined;

  async start(sink: ContainerSink): Promise<void> {
    await this.containers();
    this.interim = new InterimPoll(sink, this);
    await this.interim.start();
  }

  async stop(): Promise<void> {
    this.interim?.stop();
    this.children.abort();
    await this.refresher.settle();
  }

  /** Re-lists the directory when it changed and asks lxc-info about every container. */
  private async refresh(): Promise<void> {
    try {
      await this.rescan();
    } catch (err) {
      this.setUnavailable(`cannot read ${this.lxcDir}: ${(err as Error).message}`);
    }
  }

  private async rescan(): Promise<void> {
    let dirStat;
    try {
      dirStat = await stat(this.lxcDir);
    } catch (err) {
      this.setUnavailable(`cannot read the LXC directory ${this.lxcDir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      this.dirMtimeMs = undefined;
      this.names = [];
      return;
    }
    if (dirStat.mtimeMs !== this.dirMtimeMs) {
      const entries = await readdir(this.lxcDir, { withFileTypes: true });
      this.names = entries
        .filter((e) => e.isDirectory())
        .map((e) => e.name)
        .sort();
      this.dirMtimeMs = dirStat.mtimeMs;
    }

    const command = await findCommand(this.lxcInfo, this.config.env.PATH);
    if (command === undefined) {
      this.setUnavailable(`${this.lxcInfo} not found (install lxc or set PCP_LXC_INFO)`);
      return;
    }

    // A directory without `config` is not (or not yet) a container: lxc-create writes it after the mkdir.
    const defined = await filterDefined(this.lxcDir, this.names);
    const previous = new Map(this.snapshot.map((r) => [r.id, r]));
    const records: ContainerRecord[] = [];
    let missingCommand = false;
    let failures = 0;
    await forEachLimited(defined, this.concurrency, async (name, index) => {
      const info = await this.runLxcInfo(command, name);
      if (info === 'ENOENT') {
        missingCommand = true;
        return;
      }
      if (info === undefined) failures += 1;
      records[index] = await this.toRecord(name, info ?? {}, previous.get(name));
    });
    if (missingCommand) {
      this.setUnavailable(`${this.lxcInfo} not found (install lxc or set PCP_LXC_INFO)`);
      return;
    }

    const fresh = records.filter((r) => r !== undefined);
    const unchanged = fresh.length === this.snapshot.length && fresh.every((r, i) => r === this.snapshot[i]);
    if (!unchanged) this.snapshot = Object.freeze(fresh);
    const problems = failures > 0 ? `; ${failures} lxc-info call(s) failed` : '';
    this.state = {
      engine: this.id,
      available: true,
      reason: `reads ${this.lxcDir} with ${this.lxcInfo} (${plural(fresh.length, 'container')})${problems}`,
      checkedAt: Date.now(),
    };
  }

  private setUnavailable(reason: string): void {
    this.snapshot = EMPTY;
    this.state = { engine: this.id, available: false, reason, checkedAt: Date.now() };
  }

  /** lxc-info's answer, `ENOENT` when the command is missing, undefined when it failed. */
  private runLxcInfo(command: string, name: string): Promise<LxcInfo | 'ENOENT' | undefined> {
    return new Promise((resolve) => {
      execFile(
        command,
        // -P: the directory croot listed, not lxc's configured lxcpath; -s -p: skip the IP and cgroup statistics.
        ['-n', name, '-P', this.lxcDir, '-s', '-p'],
        { timeout: this.timeoutMs, killSignal: 'SIGKILL', signal: this.children.signal, encoding: 'utf8', maxBuffer: 64 * 1024 },
        (err, stdout) => {
          if (err) {
            resolve((err as NodeJS.ErrnoException).code === 'ENOENT' ? 'ENOENT' : undefined);
            return;
          }
          resolve(parseLxcInfo(stdout));
        },
      );
    });
  }

  /** The record for `name`, reusing `previous` when nothing changed so the snapshot keeps its identity. */
  private async toRecord(name: string, info: LxcInfo, previous: ContainerRecord | undefined): Promise<ContainerRecord> {
    const state = info.state ?? 'UNKNOWN';
    const running = LIVE_STATES.has(state) && info.pid !== undefined && info.pid > 0;
    const paused = running && PAUSED_STATES.has(state);
    const pid = running ? info.pid : undefined;
    if (previous && previous.running === running && previous.pid === pid && (previous.paused ?? false) === paused) {
      return previous;
    }
    // A PID seen for the first time is recorded with its start time, so a reuse is caught later,
    // and with the cgroup the kernel shows for it: `lxc/NAME` up to LXC 3, `lxc.payload.NAME` since
    // LXC 4, or wherever `lxc.cgroup.dir` put it.
    const pidStartTime = pid !== undefined ? await readStartTime(this.config.procRoot, pid) : undefined;
    const cgroupHint =
      pid !== undefined && pidStartTime !== undefined ? await readCgroupName(this.config.procRoot, pid).catch(() => undefined) : undefined;
    return Object.freeze({
      engine: this.id,
      id: name,
      names: Object.freeze([name]),
      running,
      paused,
      restarting: false,
      ...(pid !== undefined && { pid }),
      ...(pidStartTime !== undefined && { pidStartTime }),
      ...(cgroupHint !== undefined && { cgroupHint }),
      source: 'lxc-info',
    });
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

/** The names among `names` whose directory in `dir` holds a `config` file, in order. */
async function filterDefined(dir: string, names: readonly string[]): Promise<string[]> {
  const present = await Promise.all(
    names.map((name) =>
      stat(join(dir, name, 'config')).then(
        (s) => s.isFile(),
        () => false,
      ),
    ),
  );
  return names.filter((_, i) => present[i]);
}

async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      await fn(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
