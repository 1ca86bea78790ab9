/**
 * Waiting for a directory that does not exist yet (containerd's task root
 * before its first task, an LXC directory not created yet) without polling:
 * the nearest ancestor that exists is watched, and the watch moves one level
 * down each time the next component of the path appears, until the directory
 * itself is there.
 */
import { statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { DirectoryWatcher } from './host-services.js';

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Calls `onExists` once, on the event loop, when `dir` exists as a directory
 * (synchronously, before returning, when it exists already). Returns a
 * function that stops waiting. When an ancestor cannot be watched (the
 * inotify watch limit, a permission), `onError` gets the error and the wait
 * ends: the caller's own re-check must try again.
 */
export function watchForDirectory(
  watcher: DirectoryWatcher,
  dir: string,
  onExists: () => void,
  onError: (error: unknown) => void = () => undefined,
): () => void {
  const target = resolve(dir);
  let done = false;
  let unwatch: (() => void) | undefined;

  const stop = (): void => {
    done = true;
    const end = unwatch;
    unwatch = undefined;
    end?.();
  };

  const arm = (): void => {
    if (done) return;
    unwatch?.();
    unwatch = undefined;
    if (isDirectory(target)) {
      stop();
      onExists();
      return;
    }
    // The deepest ancestor that exists, and the name whose appearance moves the watch down.
    let child = target;
    let parent = dirname(target);
    while (parent !== child && !isDirectory(parent)) {
      child = parent;
      parent = dirname(parent);
    }
    const next = basename(child);
    try {
      unwatch = watcher.watch(parent, (event) => {
        if (event.kind === 'overflow' || event.kind === 'gone' || event.name === next) arm();
      });
    } catch (err) {
      if (isDirectory(parent)) {
        stop();
        onError(err);
        return;
      }
      // The ancestor vanished between the check and the watch: look again from higher up.
      arm();
      return;
    }
    // It may have appeared between the check and the watch.
    if (isDirectory(child)) arm();
  };

  arm();
  return stop;
}
