/**
 * Real podman and containerd (`ctr`) containers for tests, next to the
 * docker helpers of testbed.ts, and the host's own answers to compare with:
 * the hostname in a PID's UTS namespace and the cgroup the kernel shows
 * (truth.ts).
 * Every helper records what it created first, so cleanup finds it even when
 * the start itself failed.
 */
import { execFileSync } from 'node:child_process';
import { ROOTLESS_USER, run } from './components.js';
import { cgroupTruth, hostnameTruth } from './truth.js';

export const PODMAN_IMAGE = 'localhost/croot-test:latest';
export const CTR_IMAGE = 'docker.io/library/croot-test:latest';

/** The ulimits podman needs on these VMs (its defaults exceed what the kernel allows). */
export const PODMAN_ULIMITS: readonly string[] = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];

/** Imports the busybox test image into podman unless it is there already. */
export function ensurePodmanImage(): void {
  try {
    run('podman', ['image', 'exists', PODMAN_IMAGE]);
  } catch {
    run('sh', ['-c', `d=$(mktemp -d) && mkdir -p $d/bin && cp /bin/busybox $d/bin/ && for c in sh sleep hostname cat; do ln -sf busybox $d/bin/$c; done && tar -C $d -c . | podman import - ${PODMAN_IMAGE} && rm -rf $d`]);
  }
}

export interface PodmanRunOptions {
  readonly hostname?: string;
  /** `podman create` only: the container exists but never starts. */
  readonly createOnly?: boolean;
}

/** Runs `podman ARGS...` and returns its trimmed stdout: as root (the default) or as ROOTLESS_USER (`rootlessPodman`). */
export type PodmanRunner = (args: readonly string[]) => string;

const rootPodman: PodmanRunner = (args) => run('podman', args);

/**
 * `podman run -d` (or `podman create`) of `sleep 100000` with PODMAN_ULIMITS
 * and `extra` options, remembering `name` in `created` first; returns the
 * full id.
 */
export function podmanRun(
  name: string,
  options: PodmanRunOptions,
  created: string[],
  podman: PodmanRunner = rootPodman,
  extra: readonly string[] = [],
): string {
  created.push(name);
  const hostname = options.hostname === undefined ? [] : ['--hostname', options.hostname];
  const verb = options.createOnly ? ['create'] : ['run', '-d'];
  return podman([...verb, ...extra, ...PODMAN_ULIMITS, '--name', name, ...hostname, PODMAN_IMAGE, 'sleep', '100000']);
}

/** `podman inspect -f FORMAT ref`, trimmed. */
export function podmanInspect(ref: string, format: string, podman: PodmanRunner = rootPodman): string {
  return podman(['inspect', '-f', format, ref]);
}

/** `podman rm -f -t 0` of each; ignores ones already gone. */
export function removePodmanContainers(refs: readonly string[], podman: PodmanRunner = rootPodman): void {
  for (const ref of refs) {
    try {
      podman(['rm', '-f', '-t', '0', ref]);
    } catch {
      // already gone
    }
  }
}

/** ROOTLESS_USER's uid (the name of its runtime dir `/run/user/<uid>`). */
export function rootlessUid(): number {
  return Number(run('id', ['-u', ROOTLESS_USER]));
}

/**
 * `podman ARGS...` as ROOTLESS_USER, the way a user without a login session
 * runs it: `runuser -u USER -- env XDG_RUNTIME_DIR=/run/user/<uid> podman`,
 * from `/` (the user cannot enter every working directory); trimmed stdout.
 */
export function rootlessPodman(args: readonly string[], timeout = 60000): string {
  const env = ['env', `XDG_RUNTIME_DIR=/run/user/${rootlessUid()}`, 'podman'];
  return execFileSync('runuser', ['-u', ROOTLESS_USER, '--', ...env, ...args], {
    cwd: '/',
    encoding: 'utf8',
    timeout,
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
}

/**
 * `podmanRun` as ROOTLESS_USER, with `--network none` (rootless networking
 * needs slirp4netns, which the testbed does not install); returns the full id.
 */
export function rootlessPodmanRun(name: string, options: PodmanRunOptions, created: string[]): string {
  return podmanRun(name, options, created, rootlessPodman, ['--network', 'none']);
}

/** `podman inspect -f FORMAT ref` as ROOTLESS_USER, trimmed. */
export function rootlessPodmanInspect(ref: string, format: string): string {
  return podmanInspect(ref, format, rootlessPodman);
}

/** `podman rm -f -t 0` of each as ROOTLESS_USER; ignores ones already gone. */
export function removeRootlessPodmanContainers(refs: readonly string[]): void {
  removePodmanContainers(refs, rootlessPodman);
}

/** A containerd container, by namespace and id. */
export interface CtrContainer {
  readonly namespace: string;
  readonly id: string;
}

/** Makes the test image available in `namespace` (the testbed imports it into `default` only). */
export function ensureCtrImage(namespace: string): void {
  if (run('ctr', ['-n', namespace, 'images', 'ls', '-q']).split('\n').includes(CTR_IMAGE)) return;
  run('sh', ['-c', `t=$(mktemp) && ctr -n default images export "$t" ${CTR_IMAGE} && ctr -n ${namespace} images import "$t"; rc=$?; rm -f "$t"; exit $rc`], 120000);
}

export interface CtrRunOptions {
  /**
   * The hostname the container sets itself (ctr has no --hostname): the
   * container then runs --privileged and `sh -c 'hostname H && exec sleep'`.
   */
  readonly hostname?: string;
  /** OCI annotations (`--annotation k=v`), e.g. the CRI's pod labels. */
  readonly annotations?: Readonly<Record<string, string>>;
}

/** `ctr -n NS run -d` of `sleep 100000`, remembering the container in `created` first. */
export function ctrRun(container: CtrContainer, options: CtrRunOptions, created: CtrContainer[]): void {
  created.push(container);
  const flags = Object.entries(options.annotations ?? {}).flatMap(([k, v]) => ['--annotation', `${k}=${v}`]);
  const command =
    options.hostname === undefined ? ['sleep', '100000'] : ['sh', '-c', `hostname ${options.hostname} && exec sleep 100000`];
  const privileged = options.hostname === undefined ? [] : ['--privileged'];
  run('ctr', ['-n', container.namespace, 'run', '-d', ...privileged, ...flags, CTR_IMAGE, container.id, ...command]);
}

/** The PID column of `ctr -n NS task ls` for the container; undefined when it has no task. */
export function ctrTaskPid(container: CtrContainer): number | undefined {
  const line = run('ctr', ['-n', container.namespace, 'task', 'ls'])
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .find((f) => f[0] === container.id);
  return line === undefined ? undefined : Number(line[1]);
}

function quiet(args: readonly string[]): boolean {
  try {
    execFileSync('ctr', args, { stdio: 'ignore', timeout: 60000 });
    return true;
  } catch {
    return false;
  }
}

/** Kills each task, deletes it once stopped, then the container; ignores what is already gone. */
export function removeCtrContainers(containers: readonly CtrContainer[]): void {
  for (const { namespace, id } of containers) quiet(['-n', namespace, 'task', 'kill', '-s', 'SIGKILL', id]);
  for (const { namespace, id } of containers) {
    for (let i = 0; i < 50 && !quiet(['-n', namespace, 'task', 'delete', id]); i++) {
      if (ctrTaskPid({ namespace, id }) === undefined) break;
      execFileSync('sleep', ['0.1']);
    }
    quiet(['-n', namespace, 'container', 'delete', id]);
  }
}

/** The hostname inside `pid`'s UTS namespace, asked of the kernel (`nsenter -u`; truth.ts). */
export const hostnameOf = hostnameTruth;

/** Waits (up to `timeoutMs`) until `pid`'s UTS namespace holds `expected`; returns what it holds. */
export async function waitForHostname(pid: number, expected: string, timeoutMs = 5000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let seen = hostnameOf(pid);
  while (seen !== expected && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    seen = hostnameOf(pid);
  }
  return seen;
}

/** The kernel's cgroup of a PID, kept in truth.ts with the other truths (re-exported for the engine tests). */
export { cgroupTruth };
