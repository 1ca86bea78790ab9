/**
 * The LXC engine against real LXC containers (Debian's lxc 5, the busybox
 * template, no network, nothing downloaded). One croot (the native module's
 * inotify watcher and pidfds, as crootd runs) is started before the
 * containers exist, so what it knows of them came from its change signals:
 * lxc-create, lxc-start, lxc-stop and lxc-destroy must show in its index as
 * `lxc-info`, `lxc-attach -- hostname` and the host's /proc say. The built
 * crootd and PCP 6.0.3's own pmdaroot are compared on the same containers.
 * Containers run under `lxc-start -F` as children of this process, so their
 * monitors are reaped here (pid 1 on these VMs does not reap orphans).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCrootContainer } from '../core/create-container.js';
import { EngineRegistry, EngineRegistryOptions, type IndexedContainer } from '../core/registry/engine-registry.js';
import { CrootError, PM_ERR_NOCONTAINER } from '../core/errors/croot-error.js';
import { RootClient } from '../core/client/root-client.js';
import { ContainerCGroupResolver, ContainerHostnameResolver, ContainerProcessIdResolver } from '../core/registry/container-resolvers.js';
import { lxcEngineModule } from '../engines/lxc/index.js';
import { nativeModule } from '../native/native-module.js';
import { describeWith, probes, run } from './support/components.js';
import { builtBinaries, startCrootd, type CrootdProcess } from './support/crootd-process.js';
import { cgroupTruth } from './support/engine-containers.js';
import { codeOf, eventually, settle } from './support/outcomes.js';
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

  let registry: EngineRegistry;
  let hostnames: ContainerHostnameResolver;
  let pids: ContainerProcessIdResolver;
  let cgroups: ContainerCGroupResolver;

  /** Waits until the index's container `name` satisfies `test`. */
  function until(name: string, test: (c: IndexedContainer) => boolean): Promise<IndexedContainer> {
    return eventually(async () => {
      const c = await settle(() => registry.lookup(name)).catch(() => undefined);
      return c !== undefined && test(c) ? c : undefined;
    }, 30000);
  }

  beforeAll(async () => {
    work = makeTempDir('croot-lxc-');
    const container = createCrootContainer({ config: { env: { ...process.env }, procRoot: '/proc' }, modules: [nativeModule, lxcEngineModule] });
    // No safety-net pass during the test: what the index shows came from the change signals.
    container.bind<EngineRegistryOptions>(EngineRegistryOptions).toConstantValue({ recheckIntervalMs: 3600000 });
    registry = container.get<EngineRegistry>(EngineRegistry);
    hostnames = container.get<ContainerHostnameResolver>(ContainerHostnameResolver);
    pids = container.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
    cgroups = container.get<ContainerCGroupResolver>(ContainerCGroupResolver);
    await registry.start();
    await registry.ready();
  }, 60000);

  afterAll(async () => {
    await registry?.stop();
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

  it('follows lxc-create: both containers listed, stopped, as lxc-info says', async () => {
    lxcCreate(up, upHost);
    lxcCreate(down, `${down}-h`);
    for (const name of [up, down]) {
      expect(lxcInfo(name, '-s')).toBe('STOPPED');
      const c = await until(name, (x) => x.state === 'STOPPED');
      expect(c).toMatchObject({ engine: 'lxc', id: name, names: [name], running: false, liveness: 'stopped' });
    }
    expect(registry.statuses().find((s) => s.engine === 'lxc')).toMatchObject({ available: true });
  });

  it('follows lxc-start: the PID lxc-info gives, the cgroup the host’s /proc gives, and the configured hostname', async () => {
    lxcStart(up);
    const pid = Number(lxcInfo(up, '-p'));
    truth = { pid, hostname: run('lxc-attach', ['-n', up, '--', 'hostname'], 10000), cgroup: cgroupTruth(pid) };
    expect(lxcInfo(up, '-s')).toBe('RUNNING');
    expect(truth.pid).toBeGreaterThan(1);
    expect(truth.hostname).toBe(upHost);
    expect(truth.cgroup).toContain(up);
    const c = await until(up, (x) => x.liveness === 'running' && x.pid === pid);
    expect(c).toMatchObject({ running: true, paused: false, state: 'RUNNING', cgroup: truth.cgroup });
    expect(lxcInfo(down, '-s')).toBe('STOPPED');
    expect((await settle(() => registry.lookup(down))).running).toBe(false);
  });

  it('resolves the running container’s hostname, PID and cgroup by name, lxc:NAME and lxc.NAME', async () => {
    for (const ref of [up, `lxc:${up}`, `lxc.${up}`]) {
      const host = await hostnames.resolveHostname(ref);
      const cgroup = await cgroups.resolveCGroupName(ref);
      const pid = await pids.resolveProcessId(ref);
      expect({ ref, hostname: host.value, hostPid: host.pid, pid, cgroup: cgroup.value, cgroupPid: cgroup.pid }).toEqual({
        ref,
        hostname: truth.hostname,
        hostPid: truth.pid,
        pid: truth.pid,
        cgroup: truth.cgroup,
        cgroupPid: truth.pid,
      });
    }
  });

  it('refuses the stopped container with ERR_NOT_RUNNING for every question', async () => {
    for (const ask of [() => hostnames.resolveHostname(down), () => pids.resolveProcessId(down), () => cgroups.resolveCGroupName(down)]) {
      expect(await codeOf(ask)).toBe('ERR_NOT_RUNNING');
    }
  });

  it('refuses a name no LXC container has with ERR_NO_CONTAINER, even one sharing a long prefix', async () => {
    for (const ref of [unknown, `lxc:${unknown}`]) expect(await codeOf(() => pids.resolveProcessId(ref))).toBe('ERR_NO_CONTAINER');
  });

  it('takes no prefix of an LXC name (a chosen name, not a digest): a unique prefix and a shared one both find nothing', async () => {
    for (const ref of [up.slice(0, -1), `croot-t-${tag}-`, `lxc:${up.slice(0, -1)}`]) {
      expect(await codeOf(() => pids.resolveProcessId(ref))).toBe('ERR_NO_CONTAINER');
    }
    await expect(settle(() => pids.resolveProcessId(up))).resolves.toBe(truth.pid);
  });

  it('shows a freeze (which signals nothing) at the next re-check: running and paused, the PID still answered', async () => {
    run('lxc-freeze', ['-n', up], 10000);
    try {
      expect(lxcInfo(up, '-s')).toBe('FROZEN');
      await registry.get('lxc')?.recheck?.();
      expect(await settle(() => registry.lookup(up))).toMatchObject({ running: true, paused: true, state: 'FROZEN', pid: truth.pid });
      await expect(settle(() => pids.resolveProcessId(up))).resolves.toBe(truth.pid);
    } finally {
      run('lxc-unfreeze', ['-n', up], 10000);
    }
    expect(lxcInfo(up, '-s')).toBe('RUNNING');
    await registry.get('lxc')?.recheck?.();
    expect(await settle(() => registry.lookup(up))).toMatchObject({ running: true, paused: false, state: 'RUNNING' });
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

  // Last on purpose: they stop `up` and destroy `down`, which every test above needs.
  it('follows lxc-stop: refused once the pidfd shows the exit, then listed STOPPED as lxc-info says', async () => {
    await lxcStop(up);
    expect(lxcInfo(up, '-s')).toBe('STOPPED');
    await eventually(async () => ((await codeOf(() => pids.resolveProcessId(up))) === 'ERR_NOT_RUNNING' ? true : undefined), 30000);
    const c = await until(up, (x) => x.state === 'STOPPED');
    expect(c).toMatchObject({ running: false, pid: undefined, liveness: 'stopped' });
  });

  it('follows lxc-start again with the new PID, then lxc-destroy', async () => {
    lxcStart(up);
    const pid = Number(lxcInfo(up, '-p'));
    expect(pid).not.toBe(truth.pid);
    await until(up, (x) => x.liveness === 'running' && x.pid === pid);
    expect(await settle(() => pids.resolveProcessId(`lxc.${up}`))).toBe(pid);

    run('lxc-destroy', ['-n', down], 30000);
    expect(existsSync(join(LXC_DIR, down))).toBe(false);
    await eventually(async () => ((await codeOf(() => pids.resolveProcessId(down))) === 'ERR_NO_CONTAINER' ? true : undefined), 30000);
  });
});
