/**
 * Finds and loads the compiled addon. Tries CROOT_NATIVE_PATH, then
 * native/build/Release and native/build/Debug under the package root, and when
 * none loads throws ERR_NATIVE_LOAD listing every path and why it failed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CrootError } from '../core/errors/croot-error.js';
import { crootNativeFunctions } from './croot-native.js';
import type { CrootNative } from './croot-native.js';

const addonName = 'croot_native.node';

export interface LoadNativeOptions {
  /** Environment to read CROOT_NATIVE_PATH from (default: process.env). */
  readonly env?: NodeJS.ProcessEnv;
  /** The package root the build directories are under (default: found from this file). */
  readonly packageRoot?: string;
}

/**
 * The package root: the nearest directory above this file holding
 * native/binding.gyp (the source tree, dist/native/ after tsc, or an install).
 */
export function findPackageRoot(start: string = __dirname): string {
  for (let dir = path.resolve(start); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'native', 'binding.gyp'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(__dirname, '..');
  }
}

/** The paths the loader tries, in order. */
export function nativeCandidates(options: LoadNativeOptions = {}): string[] {
  const env = options.env ?? process.env;
  const root = options.packageRoot ?? findPackageRoot();
  const candidates: string[] = [];
  const override = env.CROOT_NATIVE_PATH;
  if (override !== undefined && override !== '') candidates.push(path.resolve(override));
  candidates.push(path.join(root, 'native', 'build', 'Release', addonName));
  candidates.push(path.join(root, 'native', 'build', 'Debug', addonName));
  return candidates;
}

/** Loads the addon without the cache; throws ERR_NATIVE_LOAD listing every failed attempt. */
export function loadNativeUncached(options: LoadNativeOptions = {}): CrootNative {
  const failures: { path: string; reason: string; cause?: unknown }[] = [];
  for (const candidate of nativeCandidates(options)) {
    if (!fs.existsSync(candidate)) {
      failures.push({ path: candidate, reason: 'no such file' });
      continue;
    }
    let loaded: unknown;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      loaded = require(candidate);
    } catch (err) {
      failures.push({ path: candidate, reason: firstLine(err), cause: err });
      continue;
    }
    const missing = crootNativeFunctions.filter(
      (name) => typeof (loaded as Record<string, unknown> | null)?.[name] !== 'function',
    );
    if (missing.length > 0) {
      failures.push({ path: candidate, reason: `loaded, but lacks ${missing.join(', ')}` });
      continue;
    }
    return loaded as CrootNative;
  }
  const list = failures.map((f) => `  ${f.path}: ${f.reason}`).join('\n');
  throw new CrootError(
    'ERR_NATIVE_LOAD',
    `croot's native module could not be loaded (build it with "node native/build.js"); tried:\n${list}`,
    { cause: failures.find((f) => f.cause !== undefined)?.cause, details: { tried: failures.map(({ path: p, reason }) => ({ path: p, reason })) } },
  );
}

let cached: CrootNative | undefined;

/** The addon, loaded once per process (a dlopen'ed library is process-wide anyway). */
export function loadNative(): CrootNative {
  cached ??= loadNativeUncached();
  return cached;
}

function firstLine(err: unknown): string {
  // No instanceof: errors thrown while loading may come from another realm (e.g. under Jest).
  const raw = (err as { message?: unknown } | null)?.message;
  const message = typeof raw === 'string' ? raw : String(err);
  return message.split('\n')[0] ?? message;
}
