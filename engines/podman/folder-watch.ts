/**
 * Watches a folder that may not exist yet: the folder itself when it
 * exists, else its nearest existing ancestor (never `floor` or above it)
 * until the folder appears. Podman creates its stores, run roots and
 * per-container folders lazily, so croot watches for them to appear instead
 * of polling.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { DirectoryEvent, DirectoryWatcher } from '../../core/host/host-services.js';

/** More re-arms in a row than a folder tree can need: guards against a tree that changes under every attempt. */
const MAX_ARM_ATTEMPTS = 16;

/** A folder's identity (device and inode), or undefined when the path names nothing. */
function identity(path: string): string | undefined {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}


export interface FolderWatchOptions {
  /** Never watch this folder or any above it (the owner watches it and calls `retry()`). */
  readonly floor?: string;
  /** Remember the watched folder's identity, so `verify()` can tell that it was moved away. */
  readonly verifiable?: boolean;
}

export class FolderWatch {
  private unwatch: (() => void) | undefined;
  /** The folder watched now: `target`, an ancestor, or none. */
  private watching: string | undefined;
  /** Its identity when the watch began (inotify follows the folder, not its path). */
  private watchedIdentity: string | undefined;
  private closed = false;
  /** Why an existing folder on the way could not be watched (e.g. no inotify watches left). */
  problem: string | undefined;

  /**
   * `onEvent` gets the target's own events (`changed`/`removed` per entry)
   * and `{ name: '', kind: 'overflow' }` whenever everything in it must be
   * read again: it appeared, was replaced, or events were lost.
   */
  private readonly floor: string | undefined;
  private readonly verifiable: boolean;

  constructor(
    private readonly watcher: DirectoryWatcher,
    readonly target: string,
    private readonly onEvent: (event: DirectoryEvent) => void,
    options: FolderWatchOptions = {},
  ) {
    this.floor = options.floor;
    this.verifiable = options.verifiable ?? false;
  }

  /** Whether the target itself is watched. */
  get armed(): boolean {
    return this.watching === this.target;
  }

  /** Starts watching; says nothing (the owner reads the folder itself after opening). */
  open(): this {
    this.arm(false);
    return this;
  }

  /** Watches the target again when it is not watched now; announces it when it is found. For the owner's hints and the safety net. */
  retry(): void {
    if (!this.closed && !this.armed) this.arm(true);
  }

  /**
   * Watches again when the path no longer names the folder watched (a
   * folder above it was moved: inotify says nothing then), or when the
   * target is not watched. For the safety net; needs `verifiable`.
   */
  verify(): void {
    if (this.closed) return;
    if (!this.armed || this.watching === undefined || identity(this.watching) !== this.watchedIdentity) this.arm(true);
  }

  close(): void {
    this.closed = true;
    this.release();
  }

  private release(): void {
    const unwatch = this.unwatch;
    this.unwatch = undefined;
    this.watching = undefined;
    this.watchedIdentity = undefined;
    unwatch?.();
  }

  private arm(announce: boolean): void {
    for (let attempt = 0; attempt < MAX_ARM_ATTEMPTS && !this.closed; attempt++) {
      this.release();
      this.problem = undefined;
      const watched = this.watchDeepest();
      if (watched === undefined || watched === this.target) break;
      // The child on the way to the target may have appeared before this watch began: look again.
      if (!existsSync(join(watched, this.childToward(watched)))) break;
    }
    if (announce && this.armed) this.onEvent({ name: '', kind: 'overflow' });
  }

  /** Watches the deepest existing folder from the target up; returns it, or undefined when none could be watched. */
  private watchDeepest(): string | undefined {
    for (let dir = this.target; this.floor === undefined || dir.startsWith(`${this.floor}/`); dir = dirname(dir)) {
      try {
        const folder = dir;
        this.unwatch = this.watcher.watch(folder, (event) => this.event(folder, event));
        this.watching = folder;
        if (this.verifiable) this.watchedIdentity = identity(folder);
        return folder;
      } catch (err) {
        if (existsSync(dir)) {
          // It is there but cannot be watched: going higher would not help.
          this.problem = (err as Error).message;
          return undefined;
        }
      }
      if (dir === '/' || dir === '.') return undefined;
    }
    return undefined;
  }

  /** The name of `ancestor`'s child on the path to the target. */
  private childToward(ancestor: string): string {
    const rest = this.target.slice(ancestor === '/' ? 1 : ancestor.length + 1);
    return rest.split('/', 1)[0] ?? '';
  }

  private event(folder: string, event: DirectoryEvent): void {
    if (this.closed || folder !== this.watching) return;
    if (folder === this.target) {
      if (event.kind === 'gone') {
        // Deleted or moved away: watch for it (or its replacement) from the nearest ancestor.
        this.arm(false);
        this.onEvent({ name: '', kind: 'overflow' });
        return;
      }
      this.onEvent(event);
      return;
    }
    if (event.kind === 'gone' || event.kind === 'overflow' || (event.kind === 'changed' && event.name === this.childToward(folder))) {
      this.arm(true);
    }
  }
}
