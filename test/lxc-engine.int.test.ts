/**
 * The LXC engine against real LXC containers (Debian's lxc 5, the busybox
 * template, no network, nothing downloaded): croot's resolvers in this
 * process, the built crootd and PCP 6.0.3's own pmdaroot must answer what
 * `lxc-info`, `lxc-attach -- hostname` and the host's /proc/PID/cgroup say.
 * Containers run under `lxc-start -F` as children of this process, so their
 * monitors are reaped here (pid 1 on these VMs does not reap orphans).
 */
import { settle } from './support/outcomes.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCrootContainer } from '../core/create-container.js';
import { EngineRegistry } from '../core/engine-registry.js';
import { CrootError, PM_ERR_NOCONTAINER } from '../core/errors.js';
import { RootClient } from '../core/root-client.js';
import { ContainerCGroupResolver, ContainerHostnameResolver, ContainerProcessIdResolver } from '../core/resolvers.js';
import { lxcEngineModule } from '../engines/lxc/index.js';
import { nativeModule } from '../native/native-module.js';
import { describeWith, probes, run } from './support/components.js';
import { builtBinaries, retryUntil, startCrootd, type CrootdProcess } from './support/crootd-process.js';
import { cgroupTruth } from './support/engine-containers.js';
import { makeTempDir, startPcpRoot, type PcpRootPeer } from './support/pcp-peer.js';

const LXC_DIR = '/var/lib/lxc';
const ENOENT = 2;

function probe(): string | undefined {
  return probes.root() ?? probes.lxc() ?? probes.native();
}

/** What lxc-info says (`-H`: the bare value). */
function lxcInfo(name: string, what: '-s' | '-p'): string {
  return run('lxc-info', ['-n', name, what, '-H'], 10000);
}

const registries: EngineRegistry[] = [];

/** A fresh croot over the host's /proc with the LXC engine and the native module (for hostnames). */
function croot() {
  const container = createCrootContainer({ config: { env: { ...process.env }, procRoot: '/proc' }, modules: [nativeModule, lxcEngineModule] });
  registries.push(container.get<EngineRegistry>(EngineRegistry));
  return {
    registry: container.get<EngineRegistry>(EngineRegistry),
    hostnames: container.get<ContainerHostnameResolver>(ContainerHostnameResolver),
    pids: container.get<ContainerProcessIdResolver>(ContainerProcessIdResolver),
    cgroups: container.get<ContainerCGroupResolver>(ContainerCGroupResolver),
  };
}

/** The CrootError a promise rejects with (fails the test when it resolves or throws something else). */
async function crootError(p: Promise<unknown>): Promise<CrootError> {
  const err = await p.then(
    (v) => new Error(`resolved with ${JSON.stringify(v)}`),
    (e: unknown) => e,
  );
  if (!(err instanceof CrootError)) throw err;
  return err;
}

/** One server's three answers for a name: the value, or the negative status it sent. */
interface Answers {
  readonly hostname: string | number;
  readonly pid: number;
  readonly cgroup: string | number;
}

describeWith('root, LXC (lxc, lxc-templates, busybox-static) and croot’s native module', probe, 'LxcEngine with real LXC containers', () => {
  const tag = randomBytes(4).toString('hex');
  const up = `croot-t-${tag}-up`;
  const down = `croot-t-${tag}-down`;
  const unknown = `croot-t-${tag}-nope`;
  const upHost = `${up}-h`;
  const created: string[] = [];
  const starts = new Map<string, ChildProcess>();
  let work: string;
  /** The truth about `up`, from LXC's own tools and the kernel. */
  let truth: { pid: number; hostname: string; cgroup: string };

  function lxcCreate(name: string, hostname: string): void {
    const conf = join(work, `${name}.conf`);
    // No network (no bridge here); unconfined for hosts with AppArmor, a no-op without it.
    writeFileSync(conf, 'lxc.net.0.type = empty\nlxc.apparmor.profile = unconfined\n');
    created.push(name);
    run('lxc-create', ['-n', name, '-t', 'busybox', '-f', conf], 60000);
    // The template writes lxc.uts.name = NAME; a later line wins.
    appendFileSync(join(LXC_DIR, name, 'config'), `lxc.uts.name = ${hostname}\n`);
  }

  /** Starts `name` in the foreground as this process's child and waits until LXC says RUNNING. */
  function lxcStart(name: string): void {
    const child = spawn('lxc-start', ['-n', name, '-F'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    starts.set(name, child);
    try {
      run('lxc-wait', ['-n', name, '-s', 'RUNNING', '-t', '10'], 15000);
    } catch (err) {
      throw new Error(`lxc-start -n ${name} -F did not reach RUNNING: ${stderr}`, { cause: err });
    }
  }

  async function lxcStop(name: string): Promise<void> {
    try {
      run('lxc-stop', ['-n', name, '-k'], 15000);
    } catch {
      // not running (or never created): the destroy below still runs
    }
    const child = starts.get(name);
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    starts.delete(name);
  }

  beforeAll(async () => {
    work = makeTempDir('croot-lxc-');
    lxcCreate(up, upHost);
    lxcCreate(down, `${down}-h`);
    lxcStart(up);
    const pid = Number(lxcInfo(up, '-p'));
    truth = { pid, hostname: run('lxc-attach', ['-n', up, '--', 'hostname'], 10000), cgroup: cgroupTruth(pid) };
  }, 60000);

  afterAll(async () => {
    await Promise.all(registries.map((r) => r.stop()));
    const problems: string[] = [];
    for (const name of created) {
      await lxcStop(name);
      if (!existsSync(join(LXC_DIR, name))) continue;
      try {
        run('lxc-destroy', ['-n', name], 30000);
      } catch (err) {
        problems.push(`${name}: ${(err as Error).message}`);
      }
    }
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
    if (problems.length > 0) throw new Error(`lxc-destroy failed: ${problems.join('; ')}`);
  }, 60000);

  it('has LXC report one container running under its configured hostname and the other stopped (the truth)', () => {
    expect(lxcInfo(up, '-s')).toBe('RUNNING');
    expect(truth.pid).toBeGreaterThan(1);
    expect(truth.hostname).toBe(upHost);
    expect(truth.cgroup).toContain(up);
    expect(lxcInfo(down, '-s')).toBe('STOPPED');
  });

  it('lists both containers with the state, PID and cgroup LXC and the kernel give', async () => {
    const { registry } = croot();
    await registry.start();
    await registry.ready();
    const mine = registry.containers().filter((r) => r.id === up || r.id === down);
    expect(mine.map((r) => ({ id: r.id, names: r.names, running: r.running, paused: r.paused, pid: r.pid, cgroupHint: r.cgroupHint }))).toEqual(
      expect.arrayContaining([
        { id: up, names: [up], running: true, paused: false, pid: truth.pid, cgroupHint: truth.cgroup },
        { id: down, names: [down], running: false, paused: false, pid: undefined, cgroupHint: undefined },
      ]),
    );
    expect(mine).toHaveLength(2);
    expect(registry.statuses().find((s) => s.engine === 'lxc')).toMatchObject({ available: true });
  });

  it('resolves the running container’s hostname, PID and cgroup by name and by lxc:NAME', async () => {
    const { hostnames, pids, cgroups } = croot();
    for (const ref of [up, `lxc:${up}`]) {
      const host = await hostnames.resolveHostname(ref);
      const cgroup = await cgroups.resolveCGroupName(ref);
      const pid = await pids.resolveProcessId(ref);
      expect({ hostname: host.value, hostPid: host.pid, pid, cgroup: cgroup.value, cgroupPid: cgroup.pid }).toEqual({
        hostname: truth.hostname,
        hostPid: truth.pid,
        pid: truth.pid,
        cgroup: truth.cgroup,
        cgroupPid: truth.pid,
      });
    }
  });

  it('refuses the stopped container with ERR_NOT_RUNNING for every question', async () => {
    const { hostnames, pids, cgroups } = croot();
    for (const ask of [() => hostnames.resolveHostname(down), () => pids.resolveProcessId(down), () => cgroups.resolveCGroupName(down)]) {
      expect((await crootError(settle<unknown>(ask))).code).toBe('ERR_NOT_RUNNING');
    }
  });

  it('refuses a name no LXC container has with ERR_NO_CONTAINER, even one sharing a long prefix', async () => {
    const { pids } = croot();
    for (const ref of [unknown, `lxc:${unknown}`]) {
      expect((await crootError(settle(() => pids.resolveProcessId(ref)))).code).toBe('ERR_NO_CONTAINER');
    }
  });

  it('takes no prefix of an LXC name (a chosen name, not a digest): a unique prefix and a shared one both find nothing', async () => {
    const { pids } = croot();
    for (const ref of [up.slice(0, -1), `croot-t-${tag}-`, `lxc:${up.slice(0, -1)}`]) {
      expect((await crootError(settle(() => pids.resolveProcessId(ref)))).code).toBe('ERR_NO_CONTAINER');
    }
    await expect(settle(() => pids.resolveProcessId(up))).resolves.toBe(truth.pid);
  });

  it('reports a frozen container as running and paused, and still resolves its PID', async () => {
    run('lxc-freeze', ['-n', up], 10000);
    try {
      expect(lxcInfo(up, '-s')).toBe('FROZEN');
      const { registry, pids } = croot();
      expect(await registry.lookup(up)).toMatchObject({ running: true, paused: true, pid: truth.pid });
      await expect(settle(() => pids.resolveProcessId(up))).resolves.toBe(truth.pid);
    } finally {
      run('lxc-unfreeze', ['-n', up], 10000);
    }
    expect(lxcInfo(up, '-s')).toBe('RUNNING');
  });

  const pcpAndCrootd = (): string | undefined => probes.pcp() ?? builtBinaries();
  describeWith('PCP’s pmdaroot and the built crootd', pcpAndCrootd, 'through the built crootd and PCP’s own pmdaroot', () => {
    let crootd: CrootdProcess | undefined;
    let pcp: PcpRootPeer | undefined;

    beforeAll(async () => {
      const config = join(work, 'croot.json');
      // Only the LXC engine (and the empty static one): the answers below must come from it.
      writeFileSync(config, JSON.stringify({ disabledEngines: ['docker', 'podman', 'containerd'] }));
      crootd = await startCrootd({ socketPath: join(work, 'crootd.socket'), logPath: join(work, 'crootd.log'), args: ['--config', config] });
      pcp = await startPcpRoot({ env: { PCP_LXC_DIR: LXC_DIR } });
    }, 60000);

    afterAll(async () => {
      await crootd?.stop();
      await pcp?.stop();
    }, 30000);

    /** HOSTNAME, PROCESSID and CGROUPNAME for `name` from `server`; an error as its wire status. */
    async function ask(server: { socketPath: string } | undefined, name: string): Promise<Answers> {
      if (server === undefined) throw new Error('server did not start');
      const client = await RootClient.connect(server.socketPath);
      const status = (e: unknown): number => {
        if (e instanceof CrootError) return e.status;
        throw e;
      };
      try {
        return {
          hostname: await client.hostname(name).catch(status),
          pid: await client.processId(name).catch(status),
          cgroup: await client.cgroupName(name).catch(status),
        };
      } finally {
        client.close();
      }
    }

    it('both give the running container’s hostname and PID; crootd the kernel’s cgroup, pmdaroot its fixed lxc/NAME', async () => {
      expect(await ask(crootd, up)).toEqual({ hostname: truth.hostname, pid: truth.pid, cgroup: truth.cgroup });
      expect(await ask(pcp, up)).toEqual({ hostname: truth.hostname, pid: truth.pid, cgroup: `lxc/${up}` });
      // LXC 4 and later put a container in lxc.payload.NAME, so PCP's guess names no cgroup on this host.
      expect(truth.cgroup).not.toBe(`lxc/${up}`);
    });

    it('answers lxc:NAME in crootd only: pmdaroot knows no engine qualifiers', async () => {
      expect(await ask(crootd, `lxc:${up}`)).toEqual({ hostname: truth.hostname, pid: truth.pid, cgroup: truth.cgroup });
      expect(await ask(pcp, `lxc:${up}`)).toEqual({ hostname: PM_ERR_NOCONTAINER, pid: PM_ERR_NOCONTAINER, cgroup: PM_ERR_NOCONTAINER });
    });

    it('crootd refuses the stopped container with -ESRCH; pmdaroot gives -ENOENT, PID 0 and a made-up cgroup', async () => {
      const esrch = new CrootError('ERR_NOT_RUNNING', 'x').status;
      expect(await ask(crootd, down)).toEqual({ hostname: esrch, pid: esrch, cgroup: esrch });
      expect(await ask(pcp, down)).toEqual({ hostname: -ENOENT, pid: 0, cgroup: `lxc/${down}` });
    });

    it('crootd says “container not found” for an unknown name where pmdaroot answers for a container sharing its prefix', async () => {
      expect(await ask(crootd, unknown)).toEqual({ hostname: PM_ERR_NOCONTAINER, pid: PM_ERR_NOCONTAINER, cgroup: PM_ERR_NOCONTAINER });
      // PCP's fuzzy match (issues #179, #190): the longest shared prefix wins, here croot-t-<tag>- of both containers.
      const fromPcp = await ask(pcp, unknown);
      expect([`lxc/${up}`, `lxc/${down}`]).toContain(fromPcp.cgroup);
    });
  });

  // Last on purpose: it stops `up`, which every test above needs running.
  it('follows lxc-stop: a croot that saw the container running refuses it at once, and lists it stopped within its cache time', async () => {
    const { registry, pids } = croot();
    await expect(settle(() => pids.resolveProcessId(up))).resolves.toBe(truth.pid);
    await lxcStop(up);
    expect(lxcInfo(up, '-s')).toBe('STOPPED');
    expect((await crootError(settle(() => pids.resolveProcessId(up)))).code).toBe('ERR_NOT_RUNNING');
    const record = await retryUntil(() => settle(() => registry.lookup(up)), (r) => !r.running, 3000, 100);
    expect(record).toMatchObject({ id: up, running: false });
    expect(record.pid).toBeUndefined();
  });
});
