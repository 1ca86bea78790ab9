/**
 * A containerd and a dockerd of a test's own, so a test may kill and restart
 * them without touching the testbed's daemons: every path of theirs lies in
 * one fresh folder (`/tmp/croot-t-daemons-XXXX`): containerd's root, state,
 * sockets and config; dockerd's data root, exec root, pidfile, socket and
 * config file (so /etc/docker/daemon.json is not read); runc's root for the
 * test's ctr tasks (Docker's runc root is under its exec root). dockerd runs on
 * that containerd, without iptables rules, on a bridge of its own (never
 * `--bridge=none`, which deletes the host's docker0), with the vfs graph
 * driver (no overlay mounts); ctr uses the native snapshotter. The test image
 * is copied from the testbed's dockerd with `docker save`.
 *
 * Both daemons are children of the test process (so their exits are reaped).
 * `cleanup()` removes everything, even after a failure: Docker's containers,
 * every task and container of the private containerd (started again for that
 * if it is down), both daemons, any shim of theirs left over with its
 * container's processes, every mount under the folder, and the folder.
 *
 * Paths croot reads for them: `crootEnv()`.
 *
 * `startPrivatePodman()` does the same for rootful podman (which has no
 * daemon): a graph root, run root, tmp folder and runc root of the test's
 * own, vfs, cgroupfs, events in a file.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { randomBytes, randomInt } from 'node:crypto';
import { join } from 'node:path';
import { TEST_IMAGE } from './testbed.js';
import { hostnameTruth } from './truth.js';

/** The test image's name in the private containerd (as the testbed imports it). */
export const PRIVATE_CTR_IMAGE = 'docker.io/library/croot-test:latest';

/** Runs `file ARGS` asynchronously (a test's clients keep running meanwhile); rejects with stderr on failure. */
export function exec(file: string, args: readonly string[], timeoutMs = 60000, input?: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, [...args], { encoding: 'buffer', timeout: timeoutMs, maxBuffer: 512 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')}: ${stderr.toString().trim() || err.message}`));
      else resolve(stdout.toString().trim());
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** hostnameTruth, or undefined while it cannot be read (the task not entered yet, or gone). */
function hostnameOrUndefined(pid: number): string | undefined {
  try {
    return hostnameTruth(pid);
  } catch {
    return undefined;
  }
}

/** Polls `ok` every 200 ms until it resolves true; throws `explain()` after `timeoutMs`. */
async function waitFor(ok: () => Promise<boolean>, timeoutMs: number, explain: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(explain());
    await sleep(200);
  }
}

function tail(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** One daemon process of the test's: started, SIGKILLed, restarted, stopped. */
class DaemonProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly name: string,
    private readonly command: readonly string[],
    readonly logPath: string,
    /** Resolves true once the daemon answers. */
    private readonly answers: () => Promise<boolean>,
    /** Run before each start (e.g. removing a stale pidfile). */
    private readonly beforeStart: () => void = () => undefined,
  ) {}

  /** Its pid while it runs. */
  get pid(): number | undefined {
    const c = this.child;
    return c !== undefined && c.exitCode === null && c.signalCode === null ? c.pid : undefined;
  }

  get running(): boolean {
    return this.pid !== undefined;
  }

  /** Starts it and waits until it answers (at most `timeoutMs`). */
  async start(timeoutMs = 60000): Promise<void> {
    if (this.running) return;
    this.beforeStart();
    const log = openSync(this.logPath, 'a');
    let child: ChildProcess;
    try {
      child = spawn(this.command[0] as string, this.command.slice(1), { stdio: ['ignore', log, log] });
    } finally {
      closeSync(log);
    }
    this.child = child;
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    await waitFor(
      async () => {
        if (!this.running) throw new Error('exited');
        return this.answers();
      },
      timeoutMs,
      () => `${this.name} did not answer within ${timeoutMs} ms (${this.running ? 'running' : 'exited'}); its log:\n${tail(this.logPath)}`,
    );
  }

  /** Sends `signal` and waits until it has exited (SIGKILL after `timeoutMs`). */
  async kill(signal: NodeJS.Signals = 'SIGKILL', timeoutMs = 20000): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.running) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}

export interface PrivateContainerd {
  /** containerd's gRPC socket (`ctr -a`). */
  readonly address: string;
  /** The runc v2 shims' task root (`CROOT_CONTAINERD_TASK_DIR`). */
  readonly taskDir: string;
  /** runc's root for the test's ctr tasks (`CROOT_CONTAINERD_RUNC_ROOT`). */
  readonly runcRoot: string;
  readonly process: DaemonProcess;
  /** `ctr -a ADDRESS ARGS...`, trimmed stdout. */
  ctr(args: readonly string[], timeoutMs?: number): Promise<string>;
  /**
   * `ctr run -d` of `sleep 100000` in `namespace` (the test image, native snapshotter, the private runc root and fifo
   * folder); with `hostname`, the task sets it itself, and this resolves once its UTS namespace holds it.
   */
  run(namespace: string, id: string, options?: { hostname?: string; command?: readonly string[] }): Promise<void>;
  /** The init PID `ctr task ls` shows for a task, or undefined when it has none or it is not RUNNING. */
  taskPid(namespace: string, id: string): Promise<number | undefined>;
  /** Kills a task (SIGKILL), deletes it once it stopped, and its container; quiet about what is gone. */
  remove(namespace: string, id: string): Promise<void>;
}

export interface PrivateDockerd {
  /** `unix://…/docker.sock` (croot's `DOCKER_HOST`). */
  readonly host: string;
  /** Its data root (croot's `PCP_DOCKER_DIR`). */
  readonly dataRoot: string;
  /** The bridge made for it (deleted at cleanup). */
  readonly bridge: string;
  readonly process: DaemonProcess;
  /** `docker -H HOST ARGS...`, trimmed stdout. */
  docker(args: readonly string[], timeoutMs?: number): Promise<string>;
  /**
   * `docker run -d --network none --stop-timeout 1` of `sleep 100000`
   * (the bridge is off, and the daemon's restart stops containers within a
   * second); returns the full id.
   */
  run(name: string, options?: { hostname?: string; args?: readonly string[] }): Promise<string>;
}

export interface PrivateDaemons {
  /** The folder holding everything of theirs. */
  readonly dir: string;
  readonly containerd: PrivateContainerd;
  /** Present when asked for. */
  readonly dockerd: PrivateDockerd | undefined;
  /** The environment that points croot at them (and at nothing of the testbed's). */
  crootEnv(): Record<string, string>;
  /** Removes everything: containers, tasks, daemons, leftover shims, mounts, the folder. Never throws. */
  cleanup(): Promise<void>;
}

/** Where the private daemons' sockets lie must be short: a unix socket path holds at most 107 bytes. */
function makeFolder(): string {
  return mkdtempSync('/tmp/croot-t-daemons-');
}

/**
 * Starts a containerd (and, with `docker`, a dockerd on it) of the test's
 * own, with the test image loaded into each (into containerd's `namespaces`).
 * On a failure everything started so far is cleaned up before the error is
 * thrown.
 */
export async function startPrivateDaemons(options: { docker: boolean; namespaces: readonly string[] }): Promise<PrivateDaemons> {
  const dir = makeFolder();
  const address = join(dir, 'containerd.sock');
  const ctdRoot = join(dir, 'containerd-root');
  const ctdState = join(dir, 'containerd-state');
  const runcRoot = join(dir, 'runc');
  const fifoDir = join(dir, 'fifo');
  for (const d of [ctdRoot, ctdState, runcRoot, fifoDir]) mkdirSync(d, { recursive: true });
  const ctdConfig = join(dir, 'containerd.toml');
  writeFileSync(
    ctdConfig,
    [
      'version = 2',
      `root = ${JSON.stringify(ctdRoot)}`,
      `state = ${JSON.stringify(ctdState)}`,
      // The CRI plugin would set up networking and a namespace of its own: not wanted here.
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = ${JSON.stringify(address)}`,
      '[ttrpc]',
      `  address = ${JSON.stringify(`${address}.ttrpc`)}`,
      '[debug]',
      '  address = ""',
      '[metrics]',
      '  address = ""',
      '',
    ].join('\n'),
  );
  const ctr = (args: readonly string[], timeoutMs = 60000): Promise<string> => exec('ctr', ['-a', address, ...args], timeoutMs);
  const containerdProcess = new DaemonProcess('containerd', ['containerd', '--config', ctdConfig], join(dir, 'containerd.log'), async () => {
    await ctr(['version'], 10000);
    return true;
  });

  const taskPid = async (namespace: string, id: string): Promise<number | undefined> => {
    const line = (await ctr(['-n', namespace, 'task', 'ls']))
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s+/))
      .find((f) => f[0] === id);
    return line !== undefined && line[2] === 'RUNNING' ? Number(line[1]) : undefined;
  };
  const containerd: PrivateContainerd = {
    address,
    taskDir: join(ctdState, 'io.containerd.runtime.v2.task'),
    runcRoot,
    process: containerdProcess,
    ctr,
    run: async (namespace, id, o = {}) => {
      const command = o.command ?? (o.hostname === undefined ? ['sleep', '100000'] : ['sh', '-c', `hostname ${o.hostname} && exec sleep 100000`]);
      // ctr has no --hostname: a container that sets its own needs CAP_SYS_ADMIN in its UTS namespace.
      const privileged = o.hostname === undefined ? [] : ['--privileged'];
      await ctr(['-n', namespace, 'run', '-d', '--snapshotter', 'native', '--runc-root', runcRoot, '--fifo-dir', fifoDir, ...privileged, PRIVATE_CTR_IMAGE, id, ...command]);
      if (o.hostname === undefined) return;
      // Until its `hostname` has run, the task's UTS namespace holds the host's name: resolve once it holds its own
      // (the kernel's word, through nsenter), as a `docker run --hostname` container does from its start.
      for (let i = 0; i < 200; i++) {
        const pid = await taskPid(namespace, id);
        if (pid !== undefined && hostnameOrUndefined(pid) === o.hostname) return;
        await sleep(50);
      }
      throw new Error(`ctr task ${namespace}/${id} did not set its hostname to ${o.hostname}`);
    },
    taskPid,
    remove: async (namespace, id) => {
      await ctr(['-n', namespace, 'task', 'kill', '-s', 'SIGKILL', id], 20000).catch(() => undefined);
      for (let i = 0; i < 100; i++) {
        if (await ctr(['-n', namespace, 'task', 'delete', id], 20000).then(() => true, () => false)) break;
        const listed = (await ctr(['-n', namespace, 'task', 'ls', '-q']).catch(() => '')).split('\n').includes(id);
        if (!listed) break;
        await sleep(100);
      }
      await ctr(['-n', namespace, 'container', 'delete', id], 20000).catch(() => undefined);
    },
  };

  let dockerd: PrivateDockerd | undefined;
  if (options.docker) {
    const dataRoot = join(dir, 'docker');
    const execRoot = join(dir, 'docker-exec');
    const pidfile = join(dir, 'docker.pid');
    const socket = join(dir, 'docker.sock');
    const host = `unix://${socket}`;
    const daemonJson = join(dir, 'daemon.json');
    writeFileSync(daemonJson, '{}\n');
    const docker = (args: readonly string[], timeoutMs = 60000): Promise<string> => exec('docker', ['-H', host, ...args], timeoutMs);
    // A bridge of its own: `--bridge=none` would make dockerd delete the host's docker0 at start
    // (moby's removeDefaultBridgeInterface), taking the host's Docker networking with it.
    const bridge = `crt${randomBytes(5).toString('hex')}`;
    await exec('ip', ['link', 'add', bridge, 'type', 'bridge'], 10000);
    await exec('ip', ['addr', 'add', `10.213.${randomInt(256)}.1/24`, 'dev', bridge], 10000);
    await exec('ip', ['link', 'set', bridge, 'up'], 10000);
    const dockerdProcess = new DaemonProcess(
      'dockerd',
      [
        'dockerd',
        '--config-file', daemonJson,
        '--data-root', dataRoot,
        '--exec-root', execRoot,
        '--pidfile', pidfile,
        '-H', host,
        '--containerd', address,
        '--iptables=false',
        '--ip6tables=false',
        '--ip-masq=false',
        '--bridge', bridge,
        '--storage-driver', 'vfs',
      ],
      join(dir, 'dockerd.log'),
      async () => {
        await docker(['info', '--format', '{{.ID}}'], 10000);
        return true;
      },
      // A SIGKILLed dockerd leaves its pidfile; its pid is reaped (ours), but may be any process by now.
      () => rmSync(pidfile, { force: true }),
    );
    dockerd = {
      host,
      bridge,
      dataRoot,
      process: dockerdProcess,
      docker,
      run: async (name, o = {}) => {
        const hostname = o.hostname === undefined ? [] : ['--hostname', o.hostname];
        return docker(['run', '-d', '--network', 'none', '--stop-timeout', '1', '--name', name, ...hostname, ...(o.args ?? []), TEST_IMAGE, 'sleep', '100000']);
      },
    };
  }

  const daemons: PrivateDaemons = {
    dir,
    containerd,
    dockerd,
    crootEnv: () => ({
      DOCKER_HOST: dockerd?.host ?? `unix://${join(dir, 'no-docker.sock')}`,
      PCP_DOCKER_DIR: dockerd?.dataRoot ?? join(dir, 'no-docker'),
      CROOT_CONTAINERD_TASK_DIR: containerd.taskDir,
      CROOT_CONTAINERD_RUNC_ROOT: runcRoot,
    }),
    cleanup: () => cleanup(dir, containerd, dockerd),
  };

  try {
    await containerdProcess.start();
    const image = await exportTestImage();
    for (const ns of options.namespaces) {
      await exec('ctr', ['-a', address, '-n', ns, 'images', 'import', '--snapshotter', 'native', '--base-name', 'docker.io/library/croot-test', '-'], 120000, image);
    }
    if (dockerd !== undefined) {
      await dockerd.process.start();
      await exec('docker', ['-H', dockerd.host, 'load', '-q'], 120000, image);
    }
  } catch (err) {
    await daemons.cleanup();
    throw err;
  }
  return daemons;
}

/** `docker save` of the test image from the testbed's dockerd. */
function exportTestImage(): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile('docker', ['save', TEST_IMAGE], { encoding: 'buffer', maxBuffer: 512 * 1024 * 1024, timeout: 120000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`docker save ${TEST_IMAGE}: ${stderr.toString().trim() || err.message}`)) : resolve(stdout),
    );
  });
}

/** The argv of `pid` (NUL-separated /proc/PID/cmdline), [] when it is gone. */
function argvOf(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

function allPids(): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number);
}

/** Every descendant of `pid`, parents before their children. */
function descendantsOf(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const p of allPids()) {
    const parent = parentOf(p);
    if (parent !== undefined) children.set(parent, [...(children.get(parent) ?? []), p]);
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const c of children.get(queue.shift() as number) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
}

/** Mount points at or below `dir` in this mount namespace, deepest first. */
function mountsUnder(dir: string): string[] {
  const points: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const point = (line.split(' ')[4] ?? '').replace(/\\040/g, ' ');
    if (point === dir || point.startsWith(`${dir}/`)) points.push(point);
  }
  return points.sort((a, b) => b.length - a.length);
}

async function cleanup(dir: string, containerd: PrivateContainerd, dockerd: PrivateDockerd | undefined): Promise<void> {
  const quiet = async (what: () => Promise<unknown>): Promise<void> => {
    await what().catch(() => undefined);
  };
  // Docker's containers first, through dockerd when it is up (it needs containerd up for that).
  if (dockerd?.process.running === true) {
    if (!containerd.process.running) await quiet(() => containerd.process.start(30000));
    const ids = (await dockerd.docker(['ps', '-aq']).catch(() => '')).split('\n').filter(Boolean);
    if (ids.length > 0) await quiet(() => dockerd.docker(['rm', '-f', ...ids], 60000));
  }
  await quiet(() => dockerd?.process.kill('SIGTERM') ?? Promise.resolve());
  // Every task of every namespace (Docker's `moby` included), through containerd.
  if (!containerd.process.running) await quiet(() => containerd.process.start(30000));
  if (containerd.process.running) {
    const namespaces = (await containerd.ctr(['namespaces', 'ls', '-q']).catch(() => '')).split('\n').filter(Boolean);
    for (const ns of namespaces) {
      const ids = (await containerd.ctr(['-n', ns, 'containers', 'ls', '-q']).catch(() => '')).split('\n').filter(Boolean);
      for (const id of ids) await containerd.remove(ns, id);
    }
  }
  await quiet(() => containerd.process.kill('SIGTERM'));
  // Shims the daemon could not clean up (it was down, or a task would not die): they name its address.
  for (const pid of allPids()) {
    const argv = argvOf(pid);
    if (!(argv[0] ?? '').includes('containerd-shim')) continue;
    const at = argv.indexOf('-address');
    if (at < 0 || argv[at + 1] !== containerd.address) continue;
    for (const child of descendantsOf(pid).reverse()) killQuietly(child);
    killQuietly(pid);
  }
  if (dockerd !== undefined) await exec('ip', ['link', 'del', dockerd.bridge], 10000).catch(() => undefined);
  for (const point of mountsUnder(dir)) {
    await exec('umount', [point], 20000).catch(() => exec('umount', ['-l', point], 20000).catch(() => undefined));
  }
  if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
}

export interface PrivatePodman {
  readonly dir: string;
  /** Its graph root (croot's `PCP_PODMAN_DATADIR`). */
  readonly storageDir: string;
  /** Its run root (croot's `PCP_PODMAN_RUNDIR`). */
  readonly runDir: string;
  /** `podman --root … ARGS...`, trimmed stdout. */
  podman(args: readonly string[], timeoutMs?: number): Promise<string>;
  /** `podman run -d --network none` of `sleep 100000` with `hostname`; returns the full id. */
  run(name: string, hostname: string): Promise<string>;
  /** The environment that points croot's podman engine at this store only (no storage.conf, no rootless stores). */
  crootEnv(): Record<string, string>;
  /** Removes its containers, any process of theirs left, its mounts and its folder. Never throws. */
  cleanup(): Promise<void>;
}

/** A rootful podman store of the test's own, with the test image loaded. */
export async function startPrivatePodman(): Promise<PrivatePodman> {
  const dir = mkdtempSync('/tmp/croot-t-podman-');
  const storageDir = join(dir, 'storage');
  const runDir = join(dir, 'run');
  const global = [
    '--root', storageDir,
    '--runroot', runDir,
    '--tmpdir', join(dir, 'tmp'),
    '--storage-driver', 'vfs',
    '--cgroup-manager', 'cgroupfs',
    '--events-backend', 'file',
    '--runtime-flag', `root=${join(dir, 'runc')}`,
  ];
  const podman = (args: readonly string[], timeoutMs = 60000): Promise<string> => exec('podman', [...global, ...args], timeoutMs);
  const store: PrivatePodman = {
    dir,
    storageDir,
    runDir,
    podman,
    run: (name, hostname) =>
      podman(['run', '-d', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '--name', name, '--hostname', hostname, 'localhost/croot-test:latest', 'sleep', '100000']),
    crootEnv: () => ({ PCP_PODMAN_DATADIR: storageDir, PCP_PODMAN_RUNDIR: runDir, CROOT_PODMAN_ROOTLESS: '0', CROOT_CONTAINERS_STORAGE_CONF: '' }),
    cleanup: async () => {
      await podman(['rm', '-af', '-t', '0'], 120000).catch(() => undefined);
      // conmon and what it runs name the store's folders on their command lines.
      for (const pid of allPids()) {
        if (pid === process.pid || !argvOf(pid).some((a) => a.includes(dir))) continue;
        for (const child of descendantsOf(pid).reverse()) killQuietly(child);
        killQuietly(pid);
      }
      for (const point of mountsUnder(dir)) {
        await exec('umount', [point], 20000).catch(() => exec('umount', ['-l', point], 20000).catch(() => undefined));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await exec('podman', [...global, 'load', '-q'], 120000, await exportTestImage());
  } catch (err) {
    await store.cleanup();
    throw err;
  }
  return store;
}
