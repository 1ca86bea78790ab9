/**
 * A synthetic on-disk Docker state (`$PCP_DOCKER_DIR/containers/<id>/
 * config.v2.json` + `hostconfig.json`), shaped like the files Docker 20.10+
 * writes (every key of a real container's files, values of a
 * `docker run -d --name N --hostname H IMAGE sleep ...`), whose `State.Pid`
 * are real processes and whose `State.StartedAt` is those processes' real
 * start (field 22 of /proc/PID/stat + btime). Files are written as Docker
 * writes them: to a temp file in the same folder, then renamed into place.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLOCK_TICKS_PER_SECOND, bootTime } from './bench-processes.js';

/** What the tree says about one container. */
export interface TreeContainer {
  readonly id: string;
  readonly name: string;
  /** Config.Hostname (the init process's UTS hostname is the truth HOSTNAME answers from). */
  readonly hostname: string;
  readonly pid: number;
  readonly startTicks: number;
  readonly running: boolean;
}

/** 64 lower-case hex digits whose first 12 are unique among `taken`. */
export function newContainerId(taken: Set<string>): string {
  for (;;) {
    const id = randomBytes(32).toString('hex');
    if (!taken.has(id.slice(0, 12))) {
      taken.add(id.slice(0, 12));
      return id;
    }
  }
}

/** An RFC 3339 time with nanoseconds, as Docker writes it, from clock ticks since boot. */
function dockerTime(boot: number, ticks: number): string {
  const seconds = boot + Math.floor(ticks / CLOCK_TICKS_PER_SECOND);
  const nanos = Math.round(((ticks % CLOCK_TICKS_PER_SECOND) * 1e9) / CLOCK_TICKS_PER_SECOND);
  return new Date(seconds * 1000).toISOString().replace('.000Z', `.${String(nanos).padStart(9, '0')}Z`);
}

export class DockerTree {
  /** `$PCP_DOCKER_DIR/containers`. */
  readonly containersDir: string;
  private readonly boot = bootTime();
  private readonly prefixes = new Set<string>();

  /** `dockerDir` is what PCP_DOCKER_DIR points at. */
  constructor(readonly dockerDir: string) {
    this.containersDir = join(dockerDir, 'containers');
    mkdirSync(this.containersDir, { recursive: true });
  }

  newId(): string {
    return newContainerId(this.prefixes);
  }

  /** Creates or rewrites a container's files (the folder, hostconfig.json, then config.v2.json). */
  write(c: TreeContainer): void {
    const dir = join(this.containersDir, c.id);
    mkdirSync(dir, { recursive: true });
    this.atomicWrite(dir, 'hostconfig.json', hostConfig());
    this.atomicWrite(dir, 'config.v2.json', this.config(c, dir));
  }

  /** Removes a container's folder, as `docker rm` does. */
  remove(id: string): void {
    rmSync(join(this.containersDir, id), { recursive: true, force: true });
  }

  private atomicWrite(dir: string, name: string, body: unknown): void {
    const temp = join(dir, `.tmp-${name}${randomBytes(4).readUInt32LE(0)}`);
    writeFileSync(temp, JSON.stringify(body), { mode: 0o600 });
    renameSync(temp, join(dir, name));
  }

  private config(c: TreeContainer, dir: string): unknown {
    const started = dockerTime(this.boot, c.startTicks);
    return {
      StreamConfig: {},
      State: {
        Running: c.running,
        Paused: false,
        Restarting: false,
        OOMKilled: false,
        RemovalInProgress: false,
        Dead: false,
        Pid: c.running ? c.pid : 0,
        ExitCode: c.running ? 0 : 137,
        Error: '',
        StartedAt: started,
        FinishedAt: c.running ? '0001-01-01T00:00:00Z' : new Date().toISOString(),
        Health: null,
      },
      ID: c.id,
      Created: dockerTime(this.boot, Math.max(0, c.startTicks - 20)),
      Managed: false,
      Path: 'sleep',
      Args: ['100000'],
      Config: {
        Hostname: c.hostname,
        Domainname: '',
        User: '',
        AttachStdin: false,
        AttachStdout: false,
        AttachStderr: false,
        Tty: false,
        OpenStdin: false,
        StdinOnce: false,
        Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        Cmd: ['sleep', '100000'],
        Image: 'croot-test:latest',
        Volumes: null,
        WorkingDir: '',
        Entrypoint: null,
        OnBuild: null,
        Labels: {},
      },
      Image: `sha256:${'3'.repeat(64)}`,
      NetworkSettings: {
        Bridge: '',
        SandboxID: c.id.split('').reverse().join(''),
        HairpinMode: false,
        LinkLocalIPv6Address: '',
        LinkLocalIPv6PrefixLen: 0,
        Networks: {},
        Service: null,
        Ports: {},
        SandboxKey: `/var/run/docker/netns/${c.id.slice(0, 12)}`,
        SecondaryIPAddresses: null,
        SecondaryIPv6Addresses: null,
        IsAnonymousEndpoint: false,
        HasSwarmEndpoint: false,
      },
      LogPath: join(dir, `${c.id}-json.log`),
      Name: `/${c.name}`,
      Driver: 'overlay2',
      OS: 'linux',
      MountLabel: '',
      ProcessLabel: '',
      RestartCount: 0,
      HasBeenStartedBefore: true,
      HasBeenManuallyStopped: !c.running,
      MountPoints: {},
      SecretReferences: null,
      ConfigReferences: null,
      AppArmorProfile: '',
      HostnamePath: join(dir, 'hostname'),
      HostsPath: join(dir, 'hosts'),
      ShmPath: '',
      ResolvConfPath: join(dir, 'resolv.conf'),
      SeccompProfile: '',
      NoNewPrivileges: false,
      LocalLogCacheMeta: { HaveNotifyEnabled: false },
    };
  }
}

/** hostconfig.json of a plain `docker run -d` (cgroupfs driver, no cgroup parent). */
function hostConfig(): unknown {
  return {
    Binds: null,
    ContainerIDFile: '',
    LogConfig: { Type: 'json-file', Config: {} },
    NetworkMode: 'default',
    PortBindings: {},
    RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
    AutoRemove: false,
    VolumeDriver: '',
    VolumesFrom: null,
    CapAdd: null,
    CapDrop: null,
    CgroupnsMode: 'host',
    Dns: [],
    DnsOptions: [],
    DnsSearch: [],
    ExtraHosts: null,
    GroupAdd: null,
    IpcMode: 'private',
    Cgroup: '',
    Links: null,
    OomScoreAdj: 0,
    PidMode: '',
    Privileged: false,
    PublishAllPorts: false,
    ReadonlyRootfs: false,
    SecurityOpt: null,
    UTSMode: '',
    UsernsMode: '',
    ShmSize: 67108864,
    Runtime: 'runc',
    ConsoleSize: [0, 0],
    Isolation: '',
    CpuShares: 0,
    Memory: 0,
    NanoCpus: 0,
    CgroupParent: '',
    BlkioWeight: 0,
    BlkioWeightDevice: [],
    BlkioDeviceReadBps: [],
    BlkioDeviceWriteBps: [],
    BlkioDeviceReadIOps: [],
    BlkioDeviceWriteIOps: [],
    CpuPeriod: 0,
    CpuQuota: 0,
    CpuRealtimePeriod: 0,
    CpuRealtimeRuntime: 0,
    CpusetCpus: '',
    CpusetMems: '',
    Devices: [],
    DeviceCgroupRules: null,
    DeviceRequests: null,
    KernelMemory: 0,
    KernelMemoryTCP: 0,
    MemoryReservation: 0,
    MemorySwap: 0,
    MemorySwappiness: null,
    OomKillDisable: false,
    PidsLimit: null,
    Ulimits: [],
    CpuCount: 0,
    CpuPercent: 0,
    IOMaximumIOps: 0,
    IOMaximumBandwidth: 0,
    MaskedPaths: ['/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware'],
    ReadonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
  };
}
