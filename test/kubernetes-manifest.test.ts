/**
 * packaging/kubernetes/crootd-daemonset.yaml against the engines' own
 * default paths: every path an engine reads by default (each engine's
 * exported DEFAULT_* constants, whatever they are when this runs) is
 * mounted from the same host path, read-only, in crootd's pod; the pod
 * shares the host's PID namespace; the root socket's folder is a writable
 * hostPath.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import * as containerd from '../engines/containerd/index.js';
import * as docker from '../engines/docker/index.js';
import * as lxc from '../engines/lxc/index.js';
import * as podman from '../engines/podman/index.js';
import * as staticEngine from '../engines/static/index.js';
import { DEFAULT_SOCKET_PATH } from '../core/config/croot-config.js';
import { DEFAULT_CONFIG_FILE } from '../core/config/config-file.js';

const MANIFEST = resolve(__dirname, '..', 'packaging', 'kubernetes', 'crootd-daemonset.yaml');

interface Mount {
  readonly name: string;
  readonly mountPath: string;
  readonly readOnly?: boolean;
}
interface Volume {
  readonly name: string;
  readonly hostPath?: { readonly path: string; readonly type?: string };
  readonly configMap?: { readonly name: string };
}
interface PodSpec {
  readonly hostPID?: boolean;
  readonly containers: readonly { readonly name: string; readonly args?: readonly string[]; readonly volumeMounts: readonly Mount[] }[];
  readonly volumes: readonly Volume[];
}

/** Every absolute path among an engine module's DEFAULT_* exports (strings, or arrays of them). */
function defaultPaths(engine: Record<string, unknown>): string[] {
  return Object.entries(engine)
    .filter(([name]) => name.startsWith('DEFAULT_'))
    .flatMap(([, value]) => (Array.isArray(value) ? value : [value]))
    .filter((v): v is string => typeof v === 'string' && isAbsolute(v));
}

/** /var/run is /run on every distribution kubelet runs on. */
const canonical = (path: string): string => path.replace(/^\/var\/run(?=\/|$)/, '/run');
const covers = (mountPath: string, path: string): boolean => {
  const m = canonical(mountPath);
  const p = canonical(path);
  return p === m || p.startsWith(`${m.replace(/\/$/, '')}/`);
};

describe('packaging/kubernetes/crootd-daemonset.yaml', () => {
  const documents = parseAllDocuments(readFileSync(MANIFEST, 'utf8')).map((d) => d.toJS() as { kind: string; spec?: { template?: { spec?: PodSpec } } });
  const daemonSet = documents.find((d) => d.kind === 'DaemonSet');
  const pod = daemonSet?.spec?.template?.spec as PodSpec;
  const crootd = pod?.containers.find((c) => c.name === 'crootd');
  const volumes = new Map((pod?.volumes ?? []).map((v) => [v.name, v]));

  /** The host path a mount shows at `mountPath`, when it is a hostPath volume. */
  const hostPathOf = (m: Mount): string | undefined => volumes.get(m.name)?.hostPath?.path;

  const engines: Record<string, Record<string, unknown>> = { docker, podman, containerd, lxc, static: staticEngine };
  const wanted = Object.entries(engines).flatMap(([id, module]) => defaultPaths(module).map((path) => ({ engine: id, path })));

  it('holds a DaemonSet running crootd in the host’s PID namespace', () => {
    expect(daemonSet).toBeDefined();
    expect(pod.hostPID).toBe(true);
    expect(crootd).toBeDefined();
  });

  it('finds the engines’ default paths to check (so the check below checks something)', () => {
    expect(new Set(wanted.map((w) => w.engine))).toEqual(new Set(['docker', 'podman', 'containerd', 'lxc']));
    expect(wanted.length).toBeGreaterThanOrEqual(8);
  });

  it('mounts every path an engine reads by default, read-only, from the same path on the host', () => {
    const unmounted = wanted.filter(({ path }) => {
      const mount = crootd?.volumeMounts.find((m) => covers(m.mountPath, path));
      return mount === undefined || mount.readOnly !== true || hostPathOf(mount) === undefined || canonical(hostPathOf(mount) as string) !== canonical(mount.mountPath);
    });
    expect(unmounted).toEqual([]);
  });

  it('mounts the folder of croot’s config file read-only', () => {
    const folder = DEFAULT_CONFIG_FILE.slice(0, DEFAULT_CONFIG_FILE.lastIndexOf('/'));
    expect(crootd?.volumeMounts.find((m) => m.mountPath === folder)).toMatchObject({ readOnly: true });
  });

  it('serves PCP’s root socket in a writable hostPath folder that pmcd’s pod can mount', () => {
    const folder = DEFAULT_SOCKET_PATH.slice(0, DEFAULT_SOCKET_PATH.lastIndexOf('/'));
    const mount = crootd?.volumeMounts.find((m) => m.mountPath === folder);
    expect(mount).toBeDefined();
    expect(mount?.readOnly).not.toBe(true);
    expect(hostPathOf(mount as Mount)).toBe(folder);
    const args = crootd?.args ?? [];
    expect(args[args.indexOf('--socket') + 1]).toBe(DEFAULT_SOCKET_PATH);
  });
});
