/**
 * containerd's tasks as its runc v2 shims leave them on disk (no gRPC): one
 * bundle per task under `<taskRoot>/<namespace>/<id>/` with the OCI
 * `config.json` and, once runc has created the init process, `init.pid`; and
 * runc's own folder `<runcRoot>/<namespace>/<id>/` with `state.json`
 * (`init_process_pid`, `init_process_start`) and, until the task is started,
 * the `exec.fifo` its init process waits on.
 */
import { constants } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import type { KubernetesNames } from '../../core/registry/engine-contribution.js';

/** The namespace Docker's own containerd uses: the Docker engine answers for those. */
export const MOBY_NAMESPACE = 'moby';

/** CRI annotations that make a task a Kubernetes container. */
export const CriAnnotation = {
  containerType: 'io.kubernetes.cri.container-type',
  containerName: 'io.kubernetes.cri.container-name',
  sandboxName: 'io.kubernetes.cri.sandbox-name',
  sandboxNamespace: 'io.kubernetes.cri.sandbox-namespace',
} as const;

/** What croot keeps of a task's OCI spec (`config.json`), which does not change while the task lives. */
export interface TaskSpec {
  /** A CRI pause container (`container-type` `sandbox`): never reported. */
  readonly sandbox: boolean;
  /** The pod's namespace, the pod and the container, from the CRI annotations. */
  readonly kubernetes?: KubernetesNames;
  readonly hostname?: string;
  /** `linux.cgroupsPath` as the spec has it. */
  readonly cgroupsPath?: string;
}

/** What croot reads of a task's run state. */
export interface TaskRuntime {
  /** From `init.pid`; absent until runc has created the init process. */
  readonly pid?: number;
  /** runc's `init_process_start`, when its `state.json` names the same PID. */
  readonly recordedStart?: number;
  /** runc's `exec.fifo` is there: created, not started yet. */
  readonly created: boolean;
}

/** Largest `config.json` read; CRI specs are tens of kilobytes. */
const MAX_SPEC_BYTES = 4 * 1024 * 1024;
/** Largest `init.pid` or `state.json` read. */
const MAX_STATE_BYTES = 1024 * 1024;

/** Folders in `dir`, hidden ones left out; throws when `dir` cannot be read. */
export async function listFolders(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name);
}

/**
 * A regular file's text, or undefined when it is missing, not a regular file,
 * larger than `limit` or unreadable. Opened non-blocking, so a FIFO in its
 * place can never hold a thread of the pool.
 */
export async function readRegularFile(path: string, limit: number): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile() || stat.size > limit) return undefined;
    return await handle.readFile({ encoding: 'utf8' });
  } catch {
    return undefined;
  } finally {
    await handle.close().catch(() => undefined);
  }
}

function parseObject(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The spec facts of the bundle in `bundleDir`; undefined while `config.json` is missing or not whole. */
export async function readTaskSpec(bundleDir: string): Promise<TaskSpec | undefined> {
  const spec = parseObject(await readRegularFile(`${bundleDir}/config.json`, MAX_SPEC_BYTES));
  return spec === undefined ? undefined : taskSpecFrom(spec);
}

/** The facts croot keeps of a parsed OCI spec. */
export function taskSpecFrom(spec: Record<string, unknown>): TaskSpec {
  const annotations: Record<string, string> = {};
  const raw = spec.annotations;
  if (raw !== null && typeof raw === 'object') {
    for (const [k, v] of Object.entries(raw as Record<string, unknown>)) if (typeof v === 'string') annotations[k] = v;
  }
  const linux = spec.linux as { cgroupsPath?: unknown } | undefined;
  const cgroupsPath = typeof linux?.cgroupsPath === 'string' && linux.cgroupsPath.length > 0 ? linux.cgroupsPath : undefined;
  const hostname = typeof spec.hostname === 'string' && spec.hostname.length > 0 ? spec.hostname : undefined;
  const kubernetes = kubernetesNamesOf(annotations);
  return {
    sandbox: annotations[CriAnnotation.containerType] === 'sandbox',
    ...(kubernetes !== undefined ? { kubernetes } : {}),
    ...(hostname !== undefined ? { hostname } : {}),
    ...(cgroupsPath !== undefined ? { cgroupsPath } : {}),
  };
}

/** The pod namespace, pod and container a CRI container's annotations give; undefined for other tasks. */
export function kubernetesNamesOf(annotations: Readonly<Record<string, string>>): KubernetesNames | undefined {
  const container = annotations[CriAnnotation.containerName];
  const pod = annotations[CriAnnotation.sandboxName];
  const namespace = annotations[CriAnnotation.sandboxNamespace];
  return container && pod && namespace ? { namespace, pod, container } : undefined;
}

/** The init PID of the bundle in `bundleDir` and what runc's folder `runcDir` says of it. */
export async function readTaskRuntime(bundleDir: string, runcDir: string): Promise<TaskRuntime> {
  const [pidText, stateText, created] = await Promise.all([
    readRegularFile(`${bundleDir}/init.pid`, MAX_STATE_BYTES),
    readRegularFile(`${runcDir}/state.json`, MAX_STATE_BYTES),
    lstat(`${runcDir}/exec.fifo`).then(
      () => true,
      () => false,
    ),
  ]);
  const pidValue = pidText === undefined ? NaN : Number(pidText.trim());
  const pid = Number.isSafeInteger(pidValue) && pidValue > 0 ? pidValue : undefined;
  const state = pid === undefined ? undefined : parseObject(stateText);
  const start = state?.init_process_start;
  const recordedStart = state?.init_process_pid === pid && typeof start === 'number' && Number.isSafeInteger(start) ? start : undefined;
  return { created, ...(pid !== undefined ? { pid } : {}), ...(recordedStart !== undefined ? { recordedStart } : {}) };
}

/**
 * The cgroup `linux.cgroupsPath` designates, as a path without the leading
 * `/`: plain paths as they are; systemd's `slice:prefix:name` triple expanded
 * the way systemd nests slices (`a-b.slice` lives in `a.slice`).
 */
export function cgroupHintFrom(cgroupsPath: string): string {
  if (cgroupsPath.startsWith('/') || !cgroupsPath.includes(':')) return cgroupsPath.replace(/^\/+/, '');
  const [slice = '', prefix = '', name = ''] = cgroupsPath.split(':');
  const parts: string[] = [];
  if (slice.length > 0 && slice !== '-.slice') {
    const stem = slice.replace(/\.slice$/, '');
    const pieces = stem.split('-');
    for (let i = 1; i <= pieces.length; i++) parts.push(`${pieces.slice(0, i).join('-')}.slice`);
  }
  const unit = name.endsWith('.slice') ? name : `${prefix ? `${prefix}-` : ''}${name}.scope`;
  parts.push(unit);
  return parts.join('/');
}
