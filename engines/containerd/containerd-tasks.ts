/**
 * containerd's running tasks as its runc v2 shims leave them on disk (no
 * gRPC): one bundle per task under `<taskRoot>/<namespace>/<id>/` with
 * `init.pid` and the OCI `config.json`, and runc's `state.json` under
 * `<runcRoot>/<namespace>/<id>/`.
 */
import { readdir, readFile } from 'node:fs/promises';

/** The namespace Docker's own containerd uses: the Docker engine answers for those. */
export const MOBY_NAMESPACE = 'moby';

/** CRI annotations that make a task a Kubernetes container. */
export const CriAnnotation = {
  containerType: 'io.kubernetes.cri.container-type',
  containerName: 'io.kubernetes.cri.container-name',
  sandboxName: 'io.kubernetes.cri.sandbox-name',
  sandboxNamespace: 'io.kubernetes.cri.sandbox-namespace',
} as const;

/** What croot reads of one task bundle. */
export interface TaskBundle {
  readonly namespace: string;
  readonly id: string;
  /** From `init.pid`; undefined when missing or unreadable. */
  readonly pid?: number;
  readonly hostname?: string;
  readonly annotations: Readonly<Record<string, string>>;
  /** `linux.cgroupsPath` as the OCI spec has it. */
  readonly cgroupsPath?: string;
  /** runc's `init_process_start`, when `state.json` names the same PID. */
  readonly recordedStart?: number;
}

/** Namespace directories under the task root, Docker's `moby` left out. */
export async function listNamespaces(taskRoot: string): Promise<string[]> {
  const entries = await readdir(taskRoot, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory() && e.name !== MOBY_NAMESPACE && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
}

/** Task ids in one namespace; an unreadable namespace gives none. */
export async function listTaskIds(taskRoot: string, namespace: string): Promise<string[]> {
  try {
    const entries = await readdir(`${taskRoot}/${namespace}`, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
  } catch {
    return [];
  }
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

function parseJson(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Reads one bundle and its runc state; a bundle without a readable `config.json` gives undefined. */
export async function readTaskBundle(taskRoot: string, runcRoot: string, namespace: string, id: string): Promise<TaskBundle | undefined> {
  const dir = `${taskRoot}/${namespace}/${id}`;
  const [pidText, configText, stateText] = await Promise.all([
    readOptional(`${dir}/init.pid`),
    readOptional(`${dir}/config.json`),
    readOptional(`${runcRoot}/${namespace}/${id}/state.json`),
  ]);
  const spec = parseJson(configText);
  if (spec === undefined) return undefined;
  const pidValue = Number(pidText?.trim());
  const pid = Number.isInteger(pidValue) && pidValue > 0 ? pidValue : undefined;

  const annotations: Record<string, string> = {};
  const rawAnnotations = spec.annotations;
  if (rawAnnotations !== null && typeof rawAnnotations === 'object') {
    for (const [k, v] of Object.entries(rawAnnotations as Record<string, unknown>)) if (typeof v === 'string') annotations[k] = v;
  }
  const linux = spec.linux as { cgroupsPath?: unknown } | undefined;
  const cgroupsPath = typeof linux?.cgroupsPath === 'string' && linux.cgroupsPath.length > 0 ? linux.cgroupsPath : undefined;
  const hostname = typeof spec.hostname === 'string' && spec.hostname.length > 0 ? spec.hostname : undefined;

  const state = parseJson(stateText);
  const statePid = state?.init_process_pid;
  const stateStart = state?.init_process_start;
  const recordedStart = pid !== undefined && statePid === pid && typeof stateStart === 'number' ? stateStart : undefined;

  return {
    namespace,
    id,
    annotations,
    ...(pid !== undefined ? { pid } : {}),
    ...(hostname !== undefined ? { hostname } : {}),
    ...(cgroupsPath !== undefined ? { cgroupsPath } : {}),
    ...(recordedStart !== undefined ? { recordedStart } : {}),
  };
}

/** A CRI pause container: never reported. */
export function isSandbox(bundle: Pick<TaskBundle, 'annotations'>): boolean {
  return bundle.annotations[CriAnnotation.containerType] === 'sandbox';
}

/** `<pod-namespace>/<pod>/<container>` for a CRI container, else undefined. */
export function kubernetesName(bundle: Pick<TaskBundle, 'annotations'>): string | undefined {
  const a = bundle.annotations;
  const container = a[CriAnnotation.containerName];
  const pod = a[CriAnnotation.sandboxName];
  const podNamespace = a[CriAnnotation.sandboxNamespace];
  return container && pod && podNamespace ? `${podNamespace}/${pod}/${container}` : undefined;
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
