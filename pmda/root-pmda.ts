/**
 * croot's root PMDA (domain 1, pmcd.conf's `root` line): PCP pmdaroot's
 * seven `containers.*` metrics with its PMIDs, types, semantics, units,
 * instance domain and help texts, for every container croot knows, plus
 * metrics pmdaroot does not have (cluster 1: what the engines say; cluster
 * 2: process figures from the kernel). docs/pmda.md lists them.
 *
 * Instance names: a container's full id; containerd's `<namespace>/<id>`
 * (an id is unique in its namespace only); and should two engines report
 * the same name, `<engine>:<name>` for each of them.
 */
import type { ContainerSnapshotSource, ContainerView } from './container-source.js';
import { definePmda, type Pmda } from './define-pmda.js';
import type { HelpText, Instance, MetricDefinition, RefreshRequest } from './pmda-definition.js';
import { MetricType, Semantics, pmidParts } from './identifiers.js';
import { InstanceNumbering } from './instance-numbering.js';
import { countPidNamespaces, pidNamespaceOf, type NamespaceCounts } from './pid-namespace-counter.js';

/** pmdaroot's domain (pmcd.conf's `root` line). */
export const ROOT_DOMAIN = 1;
/** The containers instance domain's serial (1.0). */
export const CONTAINERS_INDOM = 0;
/** Cluster of the process figures, read from /proc per fetch. */
export const PROCESS_CLUSTER = 2;

export interface RootPmdaOptions {
  readonly source: ContainerSnapshotSource;
  /** Where the host's /proc is; default `/proc`. */
  readonly procRoot?: string;
}

/** The instance name of each container (see the file comment), in `views` order. */
export function containerInstanceNames(views: readonly ContainerView[]): string[] {
  const base = views.map((v) => (v.namespace !== undefined ? `${v.namespace}/${v.id}` : v.id));
  const seen = new Map<string, number>();
  for (const b of base) seen.set(b, (seen.get(b) ?? 0) + 1);
  return base.map((b, i) => ((seen.get(b) ?? 0) > 1 ? `${views[i]?.engine ?? ''}:${b}` : b));
}

const PMDAROOT_INDOM_HELP: HelpText = {
  oneline: 'container Instance Domain',
  text: 'One instance per running container.  The external instance identifier\nis the unique container identification string for each container.',
};

type Fetch = (v: ContainerView) => string | number | undefined;

interface RootMetric {
  readonly name: string;
  readonly cluster: number;
  readonly item: number;
  readonly type: MetricType;
  readonly semantics: Semantics;
  readonly help: HelpText;
  readonly value: Fetch;
}

const running = (v: ContainerView): boolean => v.running && v.pid !== undefined && v.pid > 0;

/** pmdaroot's seven, byte for byte in their metadata and one-line help (pmdaroot has no long help: pminfo -T shows the one-liner). */
const PMDAROOT_METRICS: readonly RootMetric[] = [
  { name: 'containers.engine', cluster: 0, item: 0, type: MetricType.STRING, semantics: Semantics.DISCRETE, help: { oneline: 'technology backing each container (e.g. docker)' }, value: (v) => v.engine },
  { name: 'containers.name', cluster: 0, item: 1, type: MetricType.STRING, semantics: Semantics.INSTANT, help: { oneline: 'mapping of unique container IDs to human-readable names' }, value: (v) => v.names[0] ?? '?' },
  { name: 'containers.pid', cluster: 0, item: 2, type: MetricType.U32, semantics: Semantics.INSTANT, help: { oneline: 'process identifier for each containers initial process' }, value: (v) => (running(v) ? v.pid : undefined) },
  { name: 'containers.state.running', cluster: 0, item: 3, type: MetricType.U32, semantics: Semantics.INSTANT, help: { oneline: 'this container is currently running (one/zero)' }, value: (v) => (v.running ? 1 : 0) },
  { name: 'containers.state.paused', cluster: 0, item: 4, type: MetricType.U32, semantics: Semantics.INSTANT, help: { oneline: 'this container is currently paused (one/zero)' }, value: (v) => (v.paused ? 1 : 0) },
  { name: 'containers.state.restarting', cluster: 0, item: 5, type: MetricType.U32, semantics: Semantics.INSTANT, help: { oneline: 'this container is restarting (one/zero)' }, value: (v) => (v.restarting ? 1 : 0) },
  // pmdaroot prints the path with its leading "/" (the root socket's CGROUPNAME reply has none).
  { name: 'containers.cgroup', cluster: 0, item: 6, type: MetricType.STRING, semantics: Semantics.DISCRETE, help: { oneline: 'path mapping container names to their cgroups' }, value: (v) => (running(v) && v.cgroup !== undefined ? `/${v.cgroup}` : undefined) },
];

const CROOT_METRICS: readonly RootMetric[] = [
  {
    name: 'containers.hostname',
    cluster: 1,
    item: 0,
    type: MetricType.STRING,
    semantics: Semantics.DISCRETE,
    help: {
      oneline: 'hostname the engine configured for each container',
      text:
        'The hostname the container engine set up for the container (docker inspect\n' +
        '.Config.Hostname, podman inspect .Config.Hostname, the OCI spec of a\n' +
        'containerd task). No value when the engine does not say. The name the\n' +
        'container uses now is kernel.uname.nodename with pminfo --container.',
    },
    value: (v) => v.hostname,
  },
  {
    name: 'containers.state.status',
    cluster: 1,
    item: 1,
    type: MetricType.STRING,
    semantics: Semantics.INSTANT,
    help: {
      oneline: "the engine's own word for each container's state",
      text:
        "The container's state in its engine's words: docker inspect .State.Status\n" +
        '(created, running, paused, restarting, exited, dead), podman inspect\n' +
        '.State.Status, the STATUS column of ctr task ls in lower case (running,\n' +
        'stopped, paused). No value when croot cannot tell.',
    },
    value: (v) => v.state,
  },
  {
    name: 'containers.source',
    cluster: 1,
    item: 2,
    type: MetricType.STRING,
    semantics: Semantics.DISCRETE,
    help: {
      oneline: 'where croot learnt of each container',
      text:
        "How croot's engine found the container: 'api' (the engine's API),\n" +
        "'disk:<namespace>' (containerd's task directories), 'lxc-info', 'config'\n" +
        '(declared in croot.json), or the store it read (podman).',
    },
    value: (v) => v.source,
  },
  {
    name: 'containers.kubernetes.namespace',
    cluster: 1,
    item: 3,
    type: MetricType.STRING,
    semantics: Semantics.DISCRETE,
    help: { oneline: 'Kubernetes namespace of each pod container', text: "The namespace of the container's pod, for containers Kubernetes made\n(CRI annotations). No value for other containers." },
    value: (v) => v.kubernetes?.namespace,
  },
  {
    name: 'containers.kubernetes.pod',
    cluster: 1,
    item: 4,
    type: MetricType.STRING,
    semantics: Semantics.DISCRETE,
    help: { oneline: 'Kubernetes pod of each pod container', text: "The name of the container's pod, for containers Kubernetes made.\nNo value for other containers." },
    value: (v) => v.kubernetes?.pod,
  },
  {
    name: 'containers.kubernetes.container',
    cluster: 1,
    item: 5,
    type: MetricType.STRING,
    semantics: Semantics.DISCRETE,
    help: { oneline: 'Kubernetes container name of each pod container', text: "The container's name in its pod spec, for containers Kubernetes made.\nNo value for other containers." },
    value: (v) => v.kubernetes?.container,
  },
  {
    name: 'containers.id',
    cluster: 1,
    item: 6,
    type: MetricType.STRING,
    semantics: Semantics.DISCRETE,
    help: {
      oneline: "each container's full id in its engine",
      text:
        "The container's id as its engine knows it. The instance name is the same\n" +
        'but for containerd, where it is <namespace>/<id>, and for an id two\n' +
        'engines share, where it is <engine>:<id>.',
    },
    value: (v) => v.id,
  },
];

const PROCESS_METRICS: readonly (Omit<RootMetric, 'value'> & { readonly pick: (c: NamespaceCounts) => number })[] = [
  {
    name: 'containers.processes',
    cluster: PROCESS_CLUSTER,
    item: 0,
    type: MetricType.U32,
    semantics: Semantics.INSTANT,
    help: {
      oneline: "number of processes in each container's PID namespace",
      text:
        "Processes whose PID namespace (/proc/PID/ns/pid) is the one of the\n" +
        "container's init process, counted by croot in the host's /proc at each\n" +
        'fetch. Containers that share a PID namespace (a pod, --pid=container:)\n' +
        'each show the whole namespace; a container in the host PID namespace\n' +
        'shows every host process. Processes of PID namespaces nested inside are\n' +
        'not counted. No value for a container that is not running.\n' +
        'proc.nprocs with pminfo --container cannot give this for Docker, v1\n' +
        'Podman, containerd or LXC containers (see croot docs/pmcd-dropin.md).',
    },
    pick: (c) => c.processes,
  },
  {
    name: 'containers.threads',
    cluster: PROCESS_CLUSTER,
    item: 1,
    type: MetricType.U32,
    semantics: Semantics.INSTANT,
    help: {
      oneline: "number of threads in each container's PID namespace",
      text:
        'The threads of the processes containers.processes counts (field 20 of\n' +
        '/proc/PID/stat, summed). No value for a container that is not running.',
    },
    pick: (c) => c.threads,
  },
];

/** The root PMDA over a snapshot source (crootd --pmda binds croot's live index). */
export function rootPmda(options: RootPmdaOptions): Pmda {
  const { source } = options;
  const procRoot = options.procRoot ?? '/proc';
  const numbering = new InstanceNumbering();
  let lastViews: readonly ContainerView[] | undefined;
  let instances: readonly Instance[] = [];
  let byInstance = new Map<number, ContainerView>();
  let counts = new Map<number, NamespaceCounts>();
  let namespaceOf = new Map<number, number>();

  const snapshot = (): void => {
    const views = source.containers();
    if (views === lastViews) return;
    lastViews = views;
    instances = numbering.assign(containerInstanceNames(views));
    byInstance = new Map(instances.map((inst, i) => [inst.id, views[i] as ContainerView]));
  };

  const refresh = async (request: RefreshRequest): Promise<void> => {
    await source.refresh?.();
    snapshot();
    if (!request.pmids.some((id) => pmidParts(id).cluster === PROCESS_CLUSTER)) return;
    // One pass over /proc for every running container's PID namespace.
    namespaceOf = new Map();
    await Promise.all(
      [...byInstance].map(async ([id, v]) => {
        if (!running(v)) return;
        const ns = await pidNamespaceOf(v.pid as number, procRoot);
        if (ns !== undefined) namespaceOf.set(id, ns);
      }),
    );
    counts = await countPidNamespaces(new Set(namespaceOf.values()), procRoot);
  };

  const viewOf = (instance: Instance | undefined): ContainerView | undefined => (instance === undefined ? undefined : byInstance.get(instance.id));

  const metrics: MetricDefinition[] = [
    ...[...PMDAROOT_METRICS, ...CROOT_METRICS].map(
      (m): MetricDefinition => ({
        name: m.name,
        cluster: m.cluster,
        item: m.item,
        type: m.type,
        semantics: m.semantics,
        indom: CONTAINERS_INDOM,
        help: m.help,
        fetch: (instance) => {
          const v = viewOf(instance);
          return v === undefined ? undefined : m.value(v);
        },
      }),
    ),
    ...PROCESS_METRICS.map(
      (m): MetricDefinition => ({
        name: m.name,
        cluster: m.cluster,
        item: m.item,
        type: m.type,
        semantics: m.semantics,
        indom: CONTAINERS_INDOM,
        help: m.help,
        fetch: (instance) => {
          const v = viewOf(instance);
          if (v === undefined || !running(v) || instance === undefined) return undefined;
          const ns = namespaceOf.get(instance.id);
          const c = ns === undefined ? undefined : counts.get(ns);
          return c === undefined ? undefined : m.pick(c);
        },
      }),
    ),
  ];

  return definePmda({
    name: 'root',
    domain: ROOT_DOMAIN,
    indoms: [
      {
        serial: CONTAINERS_INDOM,
        help: PMDAROOT_INDOM_HELP,
        instances: () => {
          snapshot();
          return instances;
        },
      },
    ],
    metrics,
    refresh,
  });
}
