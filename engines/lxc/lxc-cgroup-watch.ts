/**
 * Where LXC's starts and stops show: the root of every cgroup hierarchy
 * mounted here, where LXC makes `lxc.monitor.NAME` and `lxc.payload.NAME`
 * on `lxc-start` and removes them on stop (LXC 3 and earlier: `lxc/NAME`,
 * under an `lxc` folder that is watched too once it exists).
 */
import { readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { DirectoryEvent, DirectoryWatcher } from '../../core/host/host-services.js';

/** A started container's cgroup folders at a hierarchy's root (LXC 4 and later). */
const PAYLOAD_FOLDER = /^lxc\.(?:payload|monitor)\.(.+)$/;
/** Folders LXC puts containers' cgroups in, one per container (`lxc/NAME` up to LXC 3). */
const PARENT_FOLDERS = ['lxc', 'lxc.payload', 'lxc.monitor'];

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

export class LxcCGroupWatch {
  /** Watched cgroup folders → unwatch. */
  private readonly watches = new Map<string, () => void>();
  private closed = false;

  constructor(
    private readonly watcher: DirectoryWatcher,
    /** The cgroup roots given in the options, else undefined: every cgroup mount point in `<procRoot>/self/mountinfo`. */
    private readonly roots: readonly string[] | undefined,
    private readonly procRoot: string,
    /** Folders that cannot be watched, with why; shared with the engine, which shows them in its health. */
    private readonly problems: Map<string, string>,
    /** A cgroup folder named `folder` came or went (a container's name, or LXC's `NAME-1`). */
    private readonly onFolder: (folder: string) => void,
    /** Events were lost: every container should be asked about. */
    private readonly onOverflow: () => void,
  ) {}

  /** How many cgroup folders are watched. */
  get size(): number {
    return this.watches.size;
  }

  /** Watches every cgroup root and the LXC folders under it that exist (those already watched stay). */
  open(): void {
    for (const root of this.rootList()) {
      this.watch(root, (e) => this.onRoot(root, e));
      for (const parent of PARENT_FOLDERS) this.watch(join(root, parent), (e) => this.onParent(join(root, parent), e), true);
    }
  }

  close(): void {
    this.closed = true;
    for (const end of this.watches.values()) end();
    this.watches.clear();
  }

  private rootList(): readonly string[] {
    if (this.roots !== undefined) return this.roots;
    try {
      return cgroupMountPoints(readFileSync(join(this.procRoot, 'self', 'mountinfo'), 'utf8'));
    } catch {
      return [];
    }
  }

  /** True when newly watched. */
  private watch(dir: string, onEvent: (event: DirectoryEvent) => void, mayBeAbsent = false): boolean {
    if (this.closed || this.watches.has(dir)) return false;
    try {
      this.watches.set(dir, this.watcher.watch(dir, onEvent));
      this.problems.delete(dir);
      return true;
    } catch (err) {
      if (!mayBeAbsent) this.problems.set(dir, (err as Error).message);
      return false;
    }
  }

  private onRoot(root: string, event: DirectoryEvent): void {
    if (event.kind === 'gone') this.watches.delete(root);
    if (event.kind === 'overflow') {
      this.onOverflow();
      return;
    }
    if (PARENT_FOLDERS.includes(event.name)) {
      const dir = join(root, event.name);
      // Newly watched: the first container's folder may be in it already.
      if (event.kind === 'changed' && this.watch(dir, (e) => this.onParent(dir, e), true)) {
        void readdir(dir).then((names) => names.forEach((name) => this.onFolder(name)), () => undefined);
      }
      return;
    }
    const m = PAYLOAD_FOLDER.exec(event.name);
    if (m !== null) this.onFolder(m[1] as string);
  }

  private onParent(dir: string, event: DirectoryEvent): void {
    if (event.kind === 'gone') this.watches.delete(dir);
    if (event.kind === 'overflow') this.onOverflow();
    else if (event.name !== '') this.onFolder(event.name);
  }
}
