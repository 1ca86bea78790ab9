/**
 * containerd's tasks as its runc v2 shims leave them on disk (no gRPC): one
 * bundle per task under `<taskRoot>/<namespace>/<id>/` with the OCI
 * `config.json` and, once runc has created the init process, `init.pid`; and
 * runc's own folder `<runcRoot>/<namespace>/<id>/` with `state.json`
 * (`init_process_pid`, `init_process_start`) and, until the task is started,
 * the `exec.fifo` its init process waits on.
 */
import { lstat, readdir } from 'node:fs/promises';
import { dirname, relative } from 'node:path';
import type { KubernetesNames } from '../../core/registry/engine-contribution.js';
import { readStateFile } from '../../core/host/state-file.js';

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
  /**
   * Why the run state cannot be trusted, when it cannot: `init.pid` or
   * `state.json` there but not a file croot reads or not what runc writes
   * (runc writes both whole, by rename), or naming two different PIDs. Such
   * a task is not running for croot.
   */
  readonly damaged?: string;
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
 * The text of the file at `path` inside the tree `root` (core/host/state-file.ts:
 * no symbolic link, FIFO or oversized file; `root` defaults to the task root
 * or runc root two folders above a task's folder), else why it was not read,
 * or undefined when it is missing.
 */
async function readTaskFile(root: string, path: string, limit: number): Promise<{ text: string } | { refused: string } | undefined> {
  const file = await readStateFile(root, relative(root, path), limit);
  if (file.kind === 'missing') return undefined;
  return file.kind === 'text' ? { text: file.text } : { refused: file.reason };
}

/** The tree a task's folder lies in: `<root>/<namespace>/<id>`. */
function treeOf(taskDir: string): string {
  return dirname(dirname(taskDir));
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

/**
 * The spec facts of the bundle in `bundleDir` (inside the task root
 * `taskRoot`); undefined while `config.json` is missing, not whole, or not a
 * file croot reads.
 */
export async function readTaskSpec(bundleDir: string, taskRoot: string = treeOf(bundleDir)): Promise<TaskSpec | undefined> {
  const file = await readTaskFile(taskRoot, `${bundleDir}/config.json`, MAX_SPEC_BYTES);
  const spec = file !== undefined && 'text' in file ? parseObject(file.text) : undefined;
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

/**
 * The init PID of the bundle in `bundleDir` and what runc's folder `runcDir`
 * says of it (inside the task root and runc's root). A `state.json` that is
 * there must be whole and name the same init PID as `init.pid`, else the run
 * state is `damaged`; without one (a runtime other than runc) `init.pid` is
 * taken alone.
 */
export async function readTaskRuntime(
  bundleDir: string,
  runcDir: string,
  taskRoot: string = treeOf(bundleDir),
  runcRoot: string = treeOf(runcDir),
): Promise<TaskRuntime> {
  const [pidFile, stateFile, created] = await Promise.all([
    readTaskFile(taskRoot, `${bundleDir}/init.pid`, MAX_STATE_BYTES),
    readTaskFile(runcRoot, `${runcDir}/state.json`, MAX_STATE_BYTES),
    lstat(`${runcDir}/exec.fifo`).then(
      () => true,
      () => false,
    ),
  ]);
  let damaged: string | undefined;
  let pid: number | undefined;
  if (pidFile !== undefined) {
    // The shim writes the PID in decimal; anything else (a sign, hex, an exponent) is not its file.
    const text = 'text' in pidFile ? pidFile.text.trim() : '';
    const value = /^\d+$/.test(text) ? Number(text) : NaN;
    if (Number.isSafeInteger(value) && value > 0) pid = value;
    else damaged = `init.pid ${'refused' in pidFile ? pidFile.refused : 'holds no PID'}`;
  }
  let recordedStart: number | undefined;
  if (stateFile !== undefined && damaged === undefined) {
    const state = 'text' in stateFile ? parseObject(stateFile.text) : undefined;
    const statePid = state?.init_process_pid;
    const start = state?.init_process_start;
    if (state === undefined) damaged = `runc's state.json ${'refused' in stateFile ? stateFile.refused : 'is not whole'}`;
    else if (pid !== undefined && statePid !== pid) damaged = `init.pid says ${pid}, runc's state.json ${String(statePid)}`;
    else if (pid !== undefined && typeof start === 'number' && Number.isSafeInteger(start)) recordedStart = start;
  }
  if (damaged !== undefined) return { created, damaged };
  return { created, ...(pid !== undefined ? { pid } : {}), ...(recordedStart !== undefined ? { recordedStart } : {}) };
}

/** One task as read from disk. */
export interface Task {
  /** `<namespace>/<id>`. */
  readonly key: string;
  readonly namespace: string;
  readonly id: string;
  /** Inode of the bundle folder: a task removed and created again under the same id is a new one. */
  readonly ino: number;
  readonly spec: TaskSpec | undefined;
  readonly pid: number | undefined;
  readonly recordedStart: number | undefined;
  readonly created: boolean;
  /** Why its run state cannot be trusted (it is then not running for croot). */
  readonly damaged: string | undefined;
}

export function started(task: Task): boolean {
  return task.pid !== undefined && !task.created;
}

/** Read all there is to read: the spec, the init PID, and no `exec.fifo` left. */
export function complete(task: Task): boolean {
  return task.spec !== undefined && started(task);
}

/**
 * Reads the task `<namespace>/<id>` (`key`) from its bundle under `taskRoot`
 * and runc's folder under `runcRoot`; undefined when its bundle is gone or
 * is not a folder. The spec of `before`, the same bundle read earlier, is
 * kept: it does not change while the task lives.
 */
export async function readTask(taskRoot: string, runcRoot: string, key: string, before: Task | undefined): Promise<Task | undefined> {
  const slash = key.indexOf('/');
  const bundle = `${taskRoot}/${key}`;
  let ino: number;
  try {
    // A symbolic link in a task's place is not a task (and is not followed).
    const s = await lstat(bundle);
    if (!s.isDirectory()) return undefined;
    ino = s.ino;
  } catch {
    return undefined;
  }
  const same = before !== undefined && before.ino === ino;
  const [spec, runtime] = await Promise.all([
    same && before.spec !== undefined ? before.spec : readTaskSpec(bundle, taskRoot),
    readTaskRuntime(bundle, `${runcRoot}/${key}`, taskRoot, runcRoot),
  ]);
  return {
    key,
    namespace: key.slice(0, slash),
    id: key.slice(slash + 1),
    ino,
    spec,
    pid: runtime.pid,
    recordedStart: runtime.recordedStart,
    created: runtime.created,
    damaged: runtime.damaged,
  };
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
