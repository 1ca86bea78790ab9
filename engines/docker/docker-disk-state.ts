/**
 * Docker's containers as PCP reads them, without the daemon:
 * `DOCKERDIR/containers/<id>/config.v2.json` (Docker >= 1.10, else
 * `config.json`), with `hostconfig.json` beside it for the cgroup parent.
 *
 * The containers folder and each container's folder are watched through the
 * DirectoryWatcher (Docker replaces its config files by rename, which shows
 * as a change of that name in the container's folder); a change re-reads
 * that one container and is handed on. Nothing is read while nothing
 * changes. The first load reads a bounded number of containers at a time, so
 * it never holds the event loop for long however many there are.
 */
import { lstatSync, realpathSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import type { ContainerRecord } from '../../core/registry/engine-contribution.js';
import type { DirectoryEvent, DirectoryWatcher } from '../../core/host/host-services.js';
import { fileSignature, readStateFileSync } from '../../core/host/state-file.js';
import { dockerPidOf, dockerPidStartTime, dockerRecordFrom, type DockerContainerJson } from './docker-record.js';

/** The files of a container folder that croot reads; a change of any other is ignored. */
const READ_FILES = new Set(['config.v2.json', 'config.json', 'hostconfig.json']);

/** Largest config or hostconfig file read (Docker's are a few KiB). */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

export interface DockerDiskStateOptions {
  /** Docker's root folder, `$PCP_DOCKER_DIR` (default /var/lib/docker). */
  readonly dockerDir: string;
  readonly watcher: DirectoryWatcher;
  /** The host's boot time (seconds since the epoch), to turn `StartedAt` into clock ticks. */
  readonly bootTime: number | undefined;
  /** Containers read per turn of the event loop in a full scan (default 64). */
  readonly readSlice?: number;
  /** A container added or changed, after `load()` resolved. */
  readonly onUpsert?: (record: ContainerRecord) => void;
  /** A container gone, after `load()` resolved. */
  readonly onRemove?: (id: string) => void;
  /** The containers folder appeared or went away. */
  readonly onPresence?: () => void;
}

/**
 * What a scan reads again besides the containers new to it: nothing; those
 * whose changes no live watch vouches for (the periodic safety net); or every
 * one whose files changed (after events were lost).
 */
type Recheck = 'none' | 'unvouched' | 'changed';
const STRENGTH: Readonly<Record<Recheck, number>> = { none: 0, unvouched: 1, changed: 2 };

/** One container folder. */
interface Entry {
  record: ContainerRecord | undefined;
  /** `ino:size:mtime` of the files the record was read from; '' when it must be read again. */
  signature: string;
  unwatch: (() => void) | undefined;
}

export class DockerDiskState {
  readonly containersDir: string;
  private readonly entries = new Map<string, Entry>();
  private count = 0;
  private unwatchDir: (() => void) | undefined;
  /** Inode of the containers folder being watched. */
  private watchedIno: number | undefined;
  private unwatchParent: (() => void) | undefined;
  private scanning: Promise<void> | undefined;
  /** A scan asked for while one runs, the strongest asked. */
  private scanAgain: Recheck | undefined;
  private loaded = false;
  private present: boolean | undefined;
  private absentReason: string | undefined;
  private closed = false;

  constructor(private readonly options: DockerDiskStateOptions) {
    this.containersDir = `${options.dockerDir.replace(/\/+$/, '')}/containers`;
  }

  /**
   * Starts watching, reads every container, and resolves with them; from
   * then on each change is handed to `onUpsert`/`onRemove`. Never rejects:
   * an absent or unreadable folder gives no containers and a reason.
   */
  async load(): Promise<readonly ContainerRecord[]> {
    await this.rescan('none');
    this.loaded = true;
    return this.containers();
  }

  /** Every container read, now. */
  containers(): ContainerRecord[] {
    const out: ContainerRecord[] = [];
    for (const entry of this.entries.values()) if (entry.record !== undefined) out.push(entry.record);
    return out;
  }

  /** Number of containers read. */
  get size(): number {
    return this.count;
  }

  /** True once the containers folder was read; false when it is absent or unreadable. */
  get isPresent(): boolean {
    return this.present === true;
  }

  /** Why there is nothing to read (the folder is absent or unreadable), or undefined. */
  unavailableReason(): string | undefined {
    return this.absentReason;
  }

  /**
   * The safety net: reads the folder again (containers added or removed
   * unheard), watches what could not be watched before, and re-reads each
   * container whose files' inode, size or mtime changed, among those whose
   * changes no watch vouches for: a folder that was not watched, one whose
   * last read failed, or every one when the watcher may lose events unsaid.
   * With inotify (which says when it lost events) and every folder watched,
   * that is one readdir, however many containers there are.
   */
  recheck(): Promise<void> {
    return this.rescan('unvouched');
  }

  /** Ends every watch; nothing is handed on after this. */
  close(): void {
    this.closed = true;
    this.unwatchDir?.();
    this.unwatchDir = undefined;
    this.unwatchParent?.();
    this.unwatchParent = undefined;
    for (const entry of this.entries.values()) entry.unwatch?.();
  }

  /** One scan at a time; scans asked for during one run once more after it, as the strongest of them. */
  private rescan(recheck: Recheck): Promise<void> {
    if (this.scanning !== undefined) {
      if (this.scanAgain === undefined || STRENGTH[recheck] > STRENGTH[this.scanAgain]) this.scanAgain = recheck;
      return this.scanning;
    }
    this.scanning = (async () => {
      let next: Recheck | undefined = recheck;
      while (next !== undefined && !this.closed) {
        this.scanAgain = undefined;
        await this.scan(next);
        next = this.scanAgain;
      }
    })().finally(() => {
      this.scanning = undefined;
    });
    return this.scanning;
  }

  private async scan(recheck: Recheck): Promise<void> {
    if (this.closed) return;
    let names: string[];
    try {
      // A folder removed and made again is another inode: the watch on the old one hears nothing.
      const { ino } = await stat(this.containersDir);
      if (ino !== this.watchedIno) {
        this.unwatchDir?.();
        this.unwatchDir = undefined;
      }
      this.watchContainersDir();
      this.watchedIno = this.unwatchDir === undefined ? undefined : ino;
      names = await readdir(this.containersDir);
    } catch (err) {
      if (this.closed) return;
      const code = (err as NodeJS.ErrnoException).code;
      this.setAbsent(`${this.containersDir} ${code === 'ENOENT' ? 'absent' : `unreadable (${code ?? (err as Error).message})`}`);
      return;
    }
    if (this.closed) return;
    this.setPresent();
    const listed = new Set(names);
    for (const id of [...this.entries.keys()]) if (!listed.has(id)) this.drop(id);
    const toRead: string[] = [];
    const vouched = this.options.watcher.reportsLostEvents === true;
    for (const id of names) {
      const entry = this.entries.get(id);
      if (entry === undefined) {
        this.add(id);
        toRead.push(id);
        continue;
      }
      const unwatched = entry.unwatch === undefined;
      if (unwatched) this.watchEntry(id, entry);
      if (recheck === 'changed' || (recheck === 'unvouched' && (unwatched || !vouched || entry.signature === ''))) toRead.push(id);
    }
    // Each read is synchronous (a few small files through the state-file rules): a slice per turn of the loop keeps requests going.
    const slice = this.options.readSlice ?? 64;
    let realRoot = resolvedOrUndefined(this.containersDir);
    for (let i = 0; i < toRead.length; i++) {
      if (i > 0 && i % slice === 0) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (this.closed) return;
        realRoot = resolvedOrUndefined(this.containersDir);
      }
      this.refresh(toRead[i] as string, recheck !== 'none', realRoot);
    }
  }

  /** Watches the containers folder, or, while it is absent, Docker's folder for it to appear. */
  private watchContainersDir(): void {
    if (this.unwatchDir !== undefined || this.closed) return;
    try {
      this.unwatchDir = this.options.watcher.watch(this.containersDir, (event) => this.onFolderEvent(event));
      this.unwatchParent?.();
      this.unwatchParent = undefined;
    } catch {
      if (this.unwatchParent !== undefined) return;
      try {
        this.unwatchParent = this.options.watcher.watch(this.options.dockerDir, (event) => {
          if (event.kind === 'gone') {
            this.unwatchParent?.();
            this.unwatchParent = undefined;
          } else if (event.name === 'containers' || event.kind === 'overflow') {
            void this.rescan('changed');
          }
        });
      } catch {
        // Docker's folder is absent too: the safety net looks again.
      }
    }
  }

  private onFolderEvent(event: DirectoryEvent): void {
    if (this.closed) return;
    if (event.kind === 'gone') {
      this.unwatchDir?.();
      this.unwatchDir = undefined;
      this.watchedIno = undefined;
      void this.rescan('changed');
    } else if (event.kind === 'overflow' || event.name === '') {
      void this.rescan('changed');
    } else if (event.kind === 'removed') {
      this.drop(event.name);
    } else if (this.entries.has(event.name)) {
      const entry = this.entries.get(event.name) as Entry;
      // A folder made again under a known name (its old watch has ended): watched at once, not at the next safety net.
      if (entry.unwatch === undefined) this.watchEntry(event.name, entry);
      this.refresh(event.name, false);
    } else {
      this.add(event.name);
      this.refresh(event.name, false);
    }
  }

  private onEntryEvent(id: string, entry: Entry, event: DirectoryEvent): void {
    if (this.closed || this.entries.get(id) !== entry) return;
    if (event.kind === 'gone') {
      entry.unwatch?.();
      entry.unwatch = undefined;
      // A folder made again at once under the name is watched now; one still gone, when the containers folder tells.
      this.watchEntry(id, entry);
      this.refresh(id, false);
    } else if (event.kind === 'overflow' || event.name === '' || READ_FILES.has(event.name)) {
      this.refresh(id, false);
    }
  }

  private add(id: string): Entry {
    const entry: Entry = { record: undefined, signature: '', unwatch: undefined };
    this.entries.set(id, entry);
    this.watchEntry(id, entry);
    return entry;
  }

  private watchEntry(id: string, entry: Entry): void {
    try {
      entry.unwatch = this.options.watcher.watch(`${this.containersDir}/${id}`, (event) => this.onEntryEvent(id, entry, event));
    } catch {
      // Not a folder, or gone already: the folder's own events or the safety net tell.
      entry.unwatch = undefined;
    }
  }

  private drop(id: string): void {
    const entry = this.entries.get(id);
    if (entry === undefined) return;
    entry.unwatch?.();
    this.entries.delete(id);
    if (entry.record !== undefined) {
      this.count--;
      if (this.loaded && !this.closed) this.options.onRemove?.(id);
    }
  }

  private setAbsent(reason: string): void {
    this.absentReason = reason;
    this.unwatchDir?.();
    this.unwatchDir = undefined;
    this.watchedIno = undefined;
    for (const id of [...this.entries.keys()]) this.drop(id);
    this.watchContainersDir();
    const changed = this.present !== false;
    this.present = false;
    if (changed && this.loaded) this.options.onPresence?.();
  }

  private setPresent(): void {
    this.absentReason = undefined;
    const changed = this.present !== true;
    this.present = true;
    if (changed && this.loaded) this.options.onPresence?.();
  }

  /** Reads container `id` again (with `onlyChanged`, only when its files' signature changed). */
  private refresh(id: string, onlyChanged: boolean, realRoot?: string): void {
    const entry = this.entries.get(id);
    if (entry === undefined || this.closed) return;
    this.read(id, entry, onlyChanged, realRoot);
  }

  /**
   * Reads one container's files, inside Docker's tree only
   * (core/host/state-file.ts: no symbolic link, no FIFO, bounded size). A config
   * that cannot be read or parsed, or that names another container than its
   * folder, keeps what was known of the container (the registry still checks
   * that its init PID is alive and the same process); a container never read
   * whole is not answered. Synchronous: Docker's files are small and local,
   * and a read through the thread pool costs more than the read itself.
   */
  private read(id: string, entry: Entry, onlyChanged: boolean, realRoot: string | undefined): void {
    const dir = `${this.containersDir}/${id}`;
    if (onlyChanged) {
      // The safety net: a few lstat calls tell whether anything was written since the last read.
      const config = signatureOf(dir, 'config.v2.json') ?? signatureOf(dir, 'config.json');
      const host = config === undefined ? undefined : signatureOf(dir, 'hostconfig.json');
      const now = config === undefined ? 'none' : [config.name, config.sig, host?.sig ?? ''].join('|');
      if (now === entry.signature) return;
    }
    // The signature comes from the files as they were read (fstat of each open descriptor).
    let configName = 'config.v2.json';
    let configFile = readStateFileSync(this.containersDir, `${id}/${configName}`, MAX_CONFIG_BYTES, realRoot);
    if (configFile.kind === 'missing') {
      configName = 'config.json';
      configFile = readStateFileSync(this.containersDir, `${id}/${configName}`, MAX_CONFIG_BYTES, realRoot);
    }
    let signature = 'none';
    let record: ContainerRecord | undefined;
    if (configFile.kind !== 'missing') {
      const hostFile = readStateFileSync(this.containersDir, `${id}/hostconfig.json`, MAX_CONFIG_BYTES, realRoot);
      try {
        if (configFile.kind !== 'text') throw new Error(configFile.reason);
        // Joined, not a template literal: kept per container, it is one flat string (see fileSignature).
        signature = [configName, configFile.signature, hostFile.kind === 'text' ? hostFile.signature : ''].join('|');
        record = this.parse(id, configFile.text, hostFile.kind === 'text' ? hostFile.text : undefined);
        if (record !== undefined && record.id !== id) throw new Error(`it names container ${record.id}`);
      } catch {
        // Damaged, not a file croot reads, or not this container's: keep what was known; the next write's event or the safety net reads it again.
        record = entry.record;
        signature = '';
      }
    }
    if (this.closed || this.entries.get(id) !== entry) return;
    const before = entry.record;
    entry.signature = signature;
    entry.record = record;
    if (record === before) return;
    this.count += (record === undefined ? 0 : 1) - (before === undefined ? 0 : 1);
    if (!this.loaded) return;
    if (record !== undefined) this.options.onUpsert?.(record);
    else this.options.onRemove?.(id);
  }

  private parse(id: string, configText: string, hostConfigText: string | undefined): ContainerRecord | undefined {
    const json = JSON.parse(configText) as DockerContainerJson;
    let cgroupParent: string | undefined;
    if (hostConfigText !== undefined) {
      try {
        const host = JSON.parse(hostConfigText) as { CgroupParent?: unknown };
        if (typeof host.CgroupParent === 'string') cgroupParent = host.CgroupParent;
      } catch {
        // hostconfig.json only refines the cgroup hint.
      }
    }
    const pid = dockerPidOf(json);
    const pidStartTime = pid === undefined ? undefined : dockerPidStartTime(json.State?.StartedAt, this.options.bootTime);
    return dockerRecordFrom(json, 'disk', {
      fallbackId: id,
      ...(cgroupParent === undefined ? {} : { cgroupParent }),
      ...(pidStartTime === undefined ? {} : { pidStartTime }),
    });
  }
}

/** `dir` with every link resolved, once for a slice of reads; undefined when it cannot be (each read then resolves it itself). */
function resolvedOrUndefined(dir: string): string | undefined {
  try {
    return realpathSync.native(dir);
  } catch {
    return undefined;
  }
}

/** The file `name` of `dir` and its `ino:size:mtime` (of the file itself: a symbolic link is not followed), or undefined when it is absent. */
function signatureOf(dir: string, name: string): { name: string; sig: string } | undefined {
  try {
    const st = lstatSync(`${dir}/${name}`);
    return { name, sig: fileSignature(st) };
  } catch {
    return undefined;
  }
}
