/**
 * Docker's containers as PCP reads them, without the daemon:
 * `DOCKERDIR/containers/<id>/config.v2.json` (Docker >= 1.10, else
 * `config.json`), with `hostconfig.json` beside it for the cgroup parent.
 *
 * The index is rebuilt only where something changed: fs.watch on the
 * containers folder and on each container's folder marks what to look at,
 * and at most once per `checkIntervalMs` a lookup also stats the folder and
 * each config file (in case a watch event was missed). A lookup with nothing
 * changed touches no file and returns the same frozen array.
 */
import { watch as fsWatch } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import type { ContainerRecord } from '../../core/engine.js';
import { diskPidStartTime, dockerPidOf, dockerRecordFrom, readBootTime, type DockerContainerJson } from './docker-record.js';

/** The file-system calls the reader makes, injectable so tests can count them. */
export interface DockerDiskFs {
  readdir(path: string): Promise<string[]>;
  stat(path: string): Promise<{ readonly ino: number; readonly size: number; readonly mtimeMs: number; isDirectory(): boolean }>;
  readFile(path: string): Promise<string>;
  /** Calls `onChange` on any change in folder `path`; returns a closer, or undefined when it cannot watch. */
  watch?(path: string, onChange: () => void): (() => void) | undefined;
}

export const nodeDockerDiskFs: DockerDiskFs = {
  readdir: (path) => readdir(path),
  stat: (path) => stat(path),
  readFile: (path) => readFile(path, 'utf8'),
  watch: (path, onChange) => {
    try {
      const watcher = fsWatch(path, { persistent: false }, () => onChange());
      // A watched folder that disappears reports an error: the periodic check covers it.
      watcher.on('error', () => {
        watcher.close();
        onChange();
      });
      return () => watcher.close();
    } catch {
      return undefined;
    }
  },
};

export interface DockerDiskStateOptions {
  /** Docker's root folder, `$PCP_DOCKER_DIR` (default /var/lib/docker). */
  readonly dockerDir: string;
  /** Root of the proc filesystem, for start times of recorded PIDs. */
  readonly procRoot: string;
  readonly fs?: DockerDiskFs;
  /** Watch folders for changes (default true). */
  readonly watch?: boolean;
  /** Least time between two full stat passes (default 1000 ms). */
  readonly checkIntervalMs?: number;
  /** Clock, injectable for tests. */
  readonly now?: () => number;
}

interface Entry {
  /** Signature of the files the record was read from; '' forces a re-read. */
  signature: string;
  record: ContainerRecord | undefined;
  unwatch: (() => void) | undefined;
}

const EMPTY: readonly ContainerRecord[] = Object.freeze([]);

export class DockerDiskState {
  readonly containersDir: string;
  private readonly fs: DockerDiskFs;
  private readonly watchEnabled: boolean;
  private readonly interval: number;
  private readonly now: () => number;
  private readonly entries = new Map<string, Entry>();
  private snapshot: readonly ContainerRecord[] = EMPTY;
  private lastCheck = Number.NEGATIVE_INFINITY;
  private dirSignature = '';
  private dirDirty = true;
  private readonly dirtyIds = new Set<string>();
  private unwatchDir: (() => void) | undefined;
  private refreshing: Promise<void> | undefined;
  private bootTime: Promise<number | undefined> | undefined;
  private absentReason: string | undefined;
  private closed = false;

  constructor(private readonly options: DockerDiskStateOptions) {
    this.containersDir = `${options.dockerDir.replace(/\/+$/, '')}/containers`;
    this.fs = options.fs ?? nodeDockerDiskFs;
    this.watchEnabled = options.watch ?? true;
    this.interval = options.checkIntervalMs ?? 1000;
    this.now = options.now ?? Date.now;
  }

  /** The containers on disk, refreshed where something changed. */
  async containers(): Promise<readonly ContainerRecord[]> {
    // A refresh in flight may be the one that fills the index: wait for it.
    if (this.refreshing !== undefined) await this.refreshing;
    if (this.closed) return this.snapshot;
    const due = this.now() - this.lastCheck >= this.interval;
    if (due || this.dirDirty || this.dirtyIds.size > 0) {
      this.refreshing ??= this.refresh(due).finally(() => {
        this.refreshing = undefined;
      });
      await this.refreshing;
    }
    return this.snapshot;
  }

  /** True once the folder has been looked at. */
  get checked(): boolean {
    return this.lastCheck !== Number.NEGATIVE_INFINITY;
  }

  /** Number of containers as of the last refresh. */
  get size(): number {
    return this.snapshot.length;
  }

  /** Why there is nothing to read (the folder is absent or unreadable), or undefined. */
  unavailableReason(): string | undefined {
    return this.absentReason;
  }

  /** Stops every watcher; later lookups return the last snapshot. */
  close(): void {
    this.closed = true;
    this.unwatchDir?.();
    this.unwatchDir = undefined;
    for (const entry of this.entries.values()) entry.unwatch?.();
  }

  private async refresh(full: boolean): Promise<void> {
    if (full) this.lastCheck = this.now();
    const dirtyIds = [...this.dirtyIds];
    this.dirtyIds.clear();
    let changed = false;

    let dirSig: string;
    try {
      const st = await this.fs.stat(this.containersDir);
      dirSig = `${st.ino}:${st.mtimeMs}`;
    } catch (err) {
      this.absentReason = `${this.containersDir} ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'absent' : `unreadable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`}`;
      this.unwatchDir?.();
      this.unwatchDir = undefined;
      this.dirSignature = '';
      this.dirDirty = true;
      for (const id of [...this.entries.keys()]) this.drop(id);
      this.snapshot = EMPTY;
      return;
    }
    this.absentReason = undefined;

    if (this.dirDirty || dirSig !== this.dirSignature) {
      // Cleared before reading, so a change during readdir is seen next time.
      this.dirDirty = false;
      if (this.watchEnabled && this.unwatchDir === undefined) {
        this.unwatchDir = this.fs.watch?.(this.containersDir, () => {
          this.dirDirty = true;
        });
      }
      let names: string[];
      try {
        names = await this.fs.readdir(this.containersDir);
      } catch {
        this.dirDirty = true;
        return;
      }
      this.dirSignature = dirSig;
      const present = new Set(names);
      for (const id of [...this.entries.keys()]) {
        if (!present.has(id)) {
          this.drop(id);
          changed = true;
        }
      }
      for (const id of names) {
        if (this.entries.has(id)) continue;
        const entry: Entry = { signature: '', record: undefined, unwatch: undefined };
        this.entries.set(id, entry);
        if (this.watchEnabled) {
          entry.unwatch = this.fs.watch?.(`${this.containersDir}/${id}`, () => {
            this.dirtyIds.add(id);
          });
        }
        dirtyIds.push(id);
      }
    }

    const toCheck = full ? [...this.entries.keys()] : [...new Set(dirtyIds)].filter((id) => this.entries.has(id));
    const results = await Promise.all(toCheck.map((id) => this.check(id)));
    if (results.some((r) => r)) changed = true;

    if (changed) {
      const records: ContainerRecord[] = [];
      for (const entry of this.entries.values()) if (entry.record !== undefined) records.push(entry.record);
      this.snapshot = records.length === 0 ? EMPTY : Object.freeze(records);
    }
  }

  /** Re-reads container `id` when its files changed; true when its record changed. */
  private async check(id: string): Promise<boolean> {
    const entry = this.entries.get(id);
    if (entry === undefined) return false;
    const dir = `${this.containersDir}/${id}`;
    const config = (await this.signatureOf(`${dir}/config.v2.json`)) ?? (await this.signatureOf(`${dir}/config.json`));
    const host = await this.signatureOf(`${dir}/hostconfig.json`);
    const signature = config === undefined ? 'none' : `${config.path}|${config.sig}|${host?.sig ?? ''}`;
    if (signature === entry.signature) return false;

    const before = entry.record;
    entry.signature = signature;
    entry.record = undefined;
    if (config !== undefined) {
      try {
        entry.record = await this.parse(id, config.path, host === undefined ? undefined : `${dir}/hostconfig.json`);
      } catch {
        // A file caught mid-write or not JSON: try again on the next check.
        entry.signature = '';
      }
    }
    if (this.entries.get(id) !== entry) return false;
    return before !== entry.record;
  }

  private async parse(id: string, configPath: string, hostConfigPath: string | undefined): Promise<ContainerRecord | undefined> {
    const json = JSON.parse(await this.fs.readFile(configPath)) as DockerContainerJson;
    let cgroupParent: string | undefined;
    if (hostConfigPath !== undefined) {
      try {
        const host = JSON.parse(await this.fs.readFile(hostConfigPath)) as { CgroupParent?: unknown };
        if (typeof host.CgroupParent === 'string') cgroupParent = host.CgroupParent;
      } catch {
        // hostconfig.json only refines the cgroup hint.
      }
    }
    const pid = dockerPidOf(json);
    const pidStartTime =
      pid === undefined
        ? undefined
        : await diskPidStartTime(this.options.procRoot, pid, json.State?.StartedAt, await this.bootTimeOnce());
    return dockerRecordFrom(json, 'disk', {
      fallbackId: id,
      ...(cgroupParent === undefined ? {} : { cgroupParent }),
      ...(pidStartTime === undefined ? {} : { pidStartTime }),
    });
  }

  private async signatureOf(path: string): Promise<{ path: string; sig: string } | undefined> {
    try {
      const st = await this.fs.stat(path);
      if (st.isDirectory()) return undefined;
      return { path, sig: `${st.ino}:${st.size}:${st.mtimeMs}` };
    } catch {
      return undefined;
    }
  }

  private bootTimeOnce(): Promise<number | undefined> {
    this.bootTime ??= readBootTime(this.options.procRoot);
    return this.bootTime;
  }

  private drop(id: string): void {
    this.entries.get(id)?.unwatch?.();
    this.entries.delete(id);
  }
}
