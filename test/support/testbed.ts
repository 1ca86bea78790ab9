/**
 * Helpers for tests that create real containers: unique names, busybox
 * containers from the registry-less `croot-test:latest` image (made by
 * scripts/testbed-start.sh), and cleanup of exactly what a test created.
 */
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { run } from './components.js';

export const TEST_IMAGE = 'croot-test:latest';

/** A name no other test run uses: `croot-t-<10 hex>` (or `<prefix>-<10 hex>`). */
export function uniqueName(prefix = 'croot-t'): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

export interface DockerRunOptions {
  readonly hostname?: string;
  /** `docker create` only: the container exists but never starts. */
  readonly createOnly?: boolean;
  /** Extra `docker run`/`docker create` arguments before the image. */
  readonly args?: readonly string[];
  /** Command (default `sleep 100000`). */
  readonly command?: readonly string[];
}

/** A container a test made, with its full id. */
export interface TestContainer {
  readonly name: string;
  readonly id: string;
}

/**
 * Creates (and by default starts) a busybox container named `name`,
 * remembering it in `created` so `removeDockerContainers` can clean it up.
 */
export function dockerRun(name: string, options: DockerRunOptions = {}, created?: string[]): TestContainer {
  const args = [options.createOnly ? 'create' : 'run', ...(options.createOnly ? [] : ['-d']), '--name', name];
  if (options.hostname !== undefined) args.push('--hostname', options.hostname);
  args.push(...(options.args ?? []), TEST_IMAGE, ...(options.command ?? ['sleep', '100000']));
  // Remember the name first: a run that fails after creating still leaves a container.
  created?.push(name);
  const id = run('docker', args);
  return { name, id };
}

/** `docker inspect -f FORMAT ref`, trimmed. */
export function dockerInspect(ref: string, format: string): string {
  return run('docker', ['inspect', '-f', format, ref]);
}

/** Removes (forcibly) every container named or id'd in `refs`; ignores ones already gone. */
export function removeDockerContainers(refs: readonly string[]): void {
  for (const ref of refs) {
    try {
      execFileSync('docker', ['rm', '-f', ref], { stdio: 'ignore', timeout: 60000 });
    } catch {
      // Already gone, or the daemon went away: nothing more to do here.
    }
  }
}
