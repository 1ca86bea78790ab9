import { lstatSync } from 'node:fs';

/** Whether `path` names a directory entry, a dangling symbolic link included (`lstat`, unlike `existsSync`). */
export function entryExists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
