/**
 * Real containers for the benchmark, made with the engines' own CLIs from the
 * testbed's `croot-test:latest` image: Docker (`croot-bench-*` names),
 * rootful Podman, and containerd through `ctr`. Every container made here is
 * registered for removal at the end (`onCleanup`), and only those are
 * removed. The truth about each (init PID, hostname, cgroup) comes from the
 * engine's CLI and the kernel.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { onCleanup } from './bench-processes.js';

export type EngineName = 'docker' | 'podman' | 'containerd';

export interface RealContainer {
  readonly engine: EngineName;
  /** What is sent: the name (containerd: the id chosen with ctr run). */
  readonly name: string;
  readonly id: string;
  readonly pid: number;
}

/** Runs a command; resolves with stdout, rejects with stderr in the message. */
export function run(file: string, args: readonly string[], timeoutMs = 60000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, [...args], { encoding: 'utf8', timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout.trim());
    });
  });
}

const DOCKER_IMAGE = 'croot-test:latest';
const PODMAN_IMAGE = 'localhost/croot-test:latest';
const CTR_IMAGE = 'docker.io/library/croot-test:latest';
const PODMAN_LIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];

/** Why `engine` cannot be used here (CLI, daemon or image missing), or undefined. */
export async function engineMissing(engine: EngineName): Promise<string | undefined> {
  try {
    if (engine === 'docker') {
      await run('docker', ['info', '--format', '{{.ServerVersion}}'], 15000);
      await run('docker', ['image', 'inspect', '--format', '{{.Id}}', DOCKER_IMAGE], 15000);
    } else if (engine === 'podman') {
      await run('podman', ['image', 'exists', PODMAN_IMAGE], 15000);
    } else {
      const images = await run('ctr', ['-n', 'default', 'images', 'ls', '-q'], 15000);
      if (!images.split('\n').includes(CTR_IMAGE)) return `containerd has no ${CTR_IMAGE} (scripts/testbed-start.sh imports it)`;
    }
    return undefined;
  } catch (err) {
    return (err as Error).message.split('\n')[0];
  }
}

/** Starts a container running `sleep` with `hostname` (not containerd); registered for removal. */
export async function startContainer(engine: EngineName, name: string, hostname: string): Promise<RealContainer> {
  onCleanup(`${engine} container ${name}`, () => removeContainer(engine, name));
  if (engine === 'docker') {
    await run('docker', ['run', '-d', '--name', name, '--hostname', hostname, DOCKER_IMAGE, 'sleep', '100000']);
  } else if (engine === 'podman') {
    await run('podman', ['run', '-d', ...PODMAN_LIMITS, '--name', name, '--hostname', hostname, PODMAN_IMAGE, 'sleep', '100000']);
  } else {
    // ctr 1.6 has no --hostname: the container keeps the host's name in a UTS namespace of its own.
    await run('ctr', ['-n', 'default', 'run', '-d', CTR_IMAGE, name, 'sleep', '100000']);
  }
  return inspectContainer(engine, name);
}

/** The container's id and init PID as its engine tells them (PID 0 when it is not running). */
export async function inspectContainer(engine: EngineName, name: string): Promise<RealContainer> {
  if (engine === 'containerd') {
    const tasks = await run('ctr', ['-n', 'default', 'tasks', 'ls']);
    const line = tasks.split('\n').find((l) => l.split(/\s+/)[0] === name);
    const pid = Number(line?.split(/\s+/)[1] ?? 0);
    return { engine, name, id: name, pid };
  }
  const out = await run(engine, ['inspect', '--format', '{{.Id}} {{.State.Pid}}', name]);
  const [id = '', pid = '0'] = out.split(' ');
  return { engine, name, id, pid: Number(pid) };
}

/** Stops it (SIGKILL: `sleep` as PID 1 ignores SIGTERM). */
export async function stopContainer(engine: EngineName, name: string): Promise<void> {
  if (engine === 'containerd') {
    await run('ctr', ['-n', 'default', 'tasks', 'kill', '-s', 'SIGKILL', name]);
    return;
  }
  await run(engine, ['stop', '-t', '0', name]);
}

/** Removes it, running or not; no error when it is already gone. */
export async function removeContainer(engine: EngineName, name: string): Promise<void> {
  try {
    if (engine === 'containerd') {
      await run('ctr', ['-n', 'default', 'tasks', 'rm', '-f', name]).catch(() => undefined);
      await run('ctr', ['-n', 'default', 'containers', 'rm', name]);
    } else {
      await run(engine, ['rm', '-f', name]);
    }
  } catch (err) {
    if (!/no such|not found|does not exist/i.test((err as Error).message)) throw err;
  }
}

/** The hostname of `pid`'s UTS namespace, from the kernel (nsenter). */
export function kernelHostname(pid: number): Promise<string> {
  return run('nsenter', ['-t', String(pid), '-u', 'hostname']);
}

/** The cgroup paths of `pid` (every hierarchy), without their leading `/`; the root ('') left out. */
export function cgroupPaths(pid: number): string[] {
  return [
    ...new Set(
      readFileSync(`/proc/${pid}/cgroup`, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => l.slice(l.indexOf(':', l.indexOf(':') + 1) + 1).replace(/^\/+/, ''))
        .filter((p) => p !== ''),
    ),
  ];
}

/** How many containers each engine runs right now (other users' included), for the notes. */
export async function runningCounts(): Promise<string> {
  const count = async (file: string, args: readonly string[]): Promise<string> => {
    try {
      const out = await run(file, args, 15000);
      return String(out === '' ? 0 : out.split('\n').length);
    } catch {
      return '?';
    }
  };
  const [docker, podman, ctrDefault, ctrK8s] = await Promise.all([
    count('docker', ['ps', '-q']),
    count('podman', ['ps', '-q']),
    count('ctr', ['-n', 'default', 'tasks', 'ls', '-q']),
    count('ctr', ['-n', 'k8s.io', 'tasks', 'ls', '-q']),
  ]);
  return `docker ${docker}, podman ${podman}, containerd default ${ctrDefault} + k8s.io ${ctrK8s}`;
}
