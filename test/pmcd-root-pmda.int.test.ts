/**
 * crootd as PCP's real pmcd's root agent, installed by the built `crootd
 * install-pmcd` and removed by `crootd uninstall-pmcd`: pmcd starts crootd
 * itself and every other agent through it; `containers.*` gives, for test
 * containers of each engine, what `docker inspect`, `podman inspect` and
 * `ctr` say, and process counts equal to what the kernel puts in each
 * container's PID namespace; pminfo -d/-T of pmdaroot's seven metrics
 * print what they print with PCP's own pmdaroot; pmcd.conf and the PMNS
 * come back byte for byte. Run under /tmp/croot-pmcd.lock.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { commandWorks, describeWith, probes, run } from './support/components.js';
import { CROOTD, builtBinaries } from './support/crootd-process.js';
import {
  cgroupTruth,
  ctrRun,
  ctrTaskPid,
  ensureCtrImage,
  hostnameOf,
  podmanInspect,
  podmanRun,
  removeCtrContainers,
  removePodmanContainers,
  rootlessPodman,
  rootlessPodmanInspect,
  rootlessPodmanRun,
  removeRootlessPodmanContainers,
  type CtrContainer,
} from './support/engine-containers.js';
import { GOLDEN_DIR } from './support/golden-transcript.js';
import { PMCD_CONF, pidsOf, pminfo, runAsync, systemPmdaroots } from './support/pmcd-dropin.js';
import { PMCD_OPTIONS, PMNS_ROOT, installCrootAsRootAgent, pminfoFetch, waitForAgents, type RootAgentInstall } from './support/pmcd-root-pmda.js';
import { parentPid } from './support/processes.js';
import { dockerInspect, dockerRun, removeDockerContainers } from './support/testbed.js';

const pcpAndRoot = (): string | undefined =>
  probes.root() ?? builtBinaries() ?? commandWorks('test', ['-x', '/etc/init.d/pmcd']) ?? commandWorks('which', ['pminfo']) ?? commandWorks('test', ['-x', '/usr/lib/pcp/bin/pmnsadd']);

/** Where PCP's Rebuild looks for the PMNS of the agent labelled root (pmcd.conf), and crootd's own PMNS file. */
const ROOT_PMNS_LINK = '/var/lib/pcp/pmns/root_root';
const CROOT_PMNS_FILE = '/var/lib/pcp/pmdas/croot/root_croot';
const NEED_REBUILD = '/var/lib/pcp/pmns/.NeedRebuild';
/** What a symbolic link points at, or undefined when there is none. */
const linkTarget = (path: string): string | undefined => {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
};

/** The kernel's count for the PID namespace of `pid`: /proc/N/ns/pid links equal to its, and their Threads: lines. */
function kernelCounts(pid: number): { processes: number; threads: number } {
  const ns = readlinkSync(`/proc/${pid}/ns/pid`);
  let processes = 0;
  let threads = 0;
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      if (readlinkSync(`/proc/${entry}/ns/pid`) !== ns) continue;
      const t = /^Threads:\s+(\d+)$/m.exec(readFileSync(`/proc/${entry}/status`, 'utf8'));
      processes += 1;
      threads += Number(t?.[1] ?? 0);
    } catch {
      // gone meanwhile
    }
  }
  return { processes, threads };
}

/** Expected `containers.*` values of one container, as pminfo prints them; `undefined` = no value. */
type Expected = Record<string, string | undefined>;

interface Case {
  readonly instance: string;
  readonly expected: Expected;
  /** Metrics that may have no value yet but, when they have one, must equal `expected`. */
  readonly optional?: readonly string[];
}

function flags(running: boolean, paused: boolean, restarting: boolean): Expected {
  return { 'containers.state.running': running ? '1' : '0', 'containers.state.paused': paused ? '1' : '0', 'containers.state.restarting': restarting ? '1' : '0' };
}

function processFigures(pid: number | undefined): Expected {
  if (pid === undefined) return { 'containers.processes': undefined, 'containers.threads': undefined };
  const k = kernelCounts(pid);
  return { 'containers.processes': String(k.processes), 'containers.threads': String(k.threads) };
}

/** From `docker inspect` / `podman inspect` (one format for both). */
function fromInspect(engine: string, inspect: (format: string) => string): Case {
  const [id, name, pidText, running, paused, restarting, status, hostname] = inspect(
    '{{.Id}}|{{.Name}}|{{.State.Pid}}|{{.State.Running}}|{{.State.Paused}}|{{.State.Restarting}}|{{.State.Status}}|{{.Config.Hostname}}',
  ).split('|') as string[];
  const isRunning = running === 'true';
  const pid = isRunning ? Number(pidText) : undefined;
  return {
    instance: id as string,
    expected: {
      'containers.engine': engine,
      'containers.name': (name as string).replace(/^\//, ''),
      'containers.id': id,
      'containers.pid': pid === undefined ? undefined : String(pid),
      'containers.cgroup': pid === undefined ? undefined : `/${cgroupTruth(pid)}`,
      'containers.hostname': hostname === '' ? undefined : hostname,
      'containers.state.status': status,
      ...flags(isRunning, paused === 'true', restarting === 'true'),
      ...processFigures(pid),
    },
    // A stopped container's own word (exited, created) comes with the live index (docs/pmda.md);
    // Podman's disk store has the hostname only of a container that ran.
    ...(isRunning ? {} : { optional: ['containers.state.status', 'containers.hostname'] }),
  };
}

/** From `ctr task ls` and `ctr container info`. */
function fromCtr(c: CtrContainer): Case {
  const row = run('ctr', ['-n', c.namespace, 'task', 'ls'])
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .find((f) => f[0] === c.id);
  const status = (row?.[2] ?? '').toLowerCase();
  const info = JSON.parse(run('ctr', ['-n', c.namespace, 'container', 'info', c.id])) as { Spec?: { hostname?: string; annotations?: Record<string, string> } };
  const a = info.Spec?.annotations ?? {};
  const k8s = a['io.kubernetes.cri.container-name'] !== undefined;
  const running = status === 'running' || status === 'paused';
  const pid = running ? Number(row?.[1]) : undefined;
  return {
    instance: `${c.namespace}/${c.id}`,
    expected: {
      'containers.engine': 'containerd',
      'containers.name': `${c.namespace}/${c.id}`,
      'containers.id': c.id,
      'containers.pid': pid === undefined ? undefined : String(pid),
      'containers.cgroup': pid === undefined ? undefined : `/${cgroupTruth(pid)}`,
      'containers.hostname': info.Spec?.hostname || undefined,
      'containers.state.status': status,
      'containers.kubernetes.namespace': k8s ? a['io.kubernetes.cri.sandbox-namespace'] : undefined,
      'containers.kubernetes.pod': k8s ? a['io.kubernetes.cri.sandbox-name'] : undefined,
      'containers.kubernetes.container': a['io.kubernetes.cri.container-name'],
      ...flags(running, status === 'paused', false),
      ...processFigures(pid),
    },
    ...(running ? {} : { optional: ['containers.state.status'] }),
  };
}

describeWith('PCP (pmcd, pmnsadd), root and a built crootd', pcpAndRoot, "crootd as the real pmcd's root agent (crootd install-pmcd)", () => {
  const tag = randomBytes(4).toString('hex');
  let install: RootAgentInstall | undefined;
  const docker: string[] = [];
  const podman: string[] = [];
  const rootless: string[] = [];
  const ctr: CtrContainer[] = [];
  /** Builds the truths once the containers exist (names known up front). */
  const cases: (() => Case)[] = [];
  /** PCP's own root_root link before the install. */
  let rootLinkBefore: string | undefined;

  beforeAll(async () => {
    // Test containers first (their extra processes settle meanwhile), then crootd in pmcd's root line.
    if (probes.docker() === undefined) {
      const up = `croot-t-pmda-d-${tag}`;
      dockerRun(up, { hostname: `${up}-h` }, docker);
      for (let i = 0; i < 2; i++) run('docker', ['exec', '-d', up, 'sleep', '100000']);
      const paused = `croot-t-pmda-dp-${tag}`;
      dockerRun(paused, {}, docker);
      run('docker', ['pause', paused]);
      const stopped = `croot-t-pmda-ds-${tag}`;
      dockerRun(stopped, { createOnly: true }, docker);
      for (const ref of [up, paused, stopped]) cases.push(() => fromInspect('docker', (f) => dockerInspect(ref, f)));
    }
    if (probes.podman() === undefined) {
      const up = `croot-t-pmda-p-${tag}`;
      podmanRun(up, { hostname: `${up}-h` }, podman);
      run('podman', ['exec', '-d', up, 'sleep', '100000']);
      const stopped = `croot-t-pmda-ps-${tag}`;
      podmanRun(stopped, { createOnly: true }, podman);
      for (const ref of [up, stopped]) cases.push(() => fromInspect('podman', (f) => podmanInspect(ref, f)));
    }
    if (probes.podmanRootless() === undefined) {
      const up = `croot-t-pmda-r-${tag}`;
      rootlessPodmanRun(up, {}, rootless);
      rootlessPodman(['exec', '-d', up, 'sleep', '100000']);
      cases.push(() => fromInspect('podman', (f) => rootlessPodmanInspect(up, f)));
    }
    if (probes.containerd() === undefined) {
      ensureCtrImage('default');
      ensureCtrImage('k8s.io');
      const up: CtrContainer = { namespace: 'default', id: `croot-t-pmda-c-${tag}` };
      ctrRun(up, { hostname: `croot-t-pmda-c-${tag}-h` }, ctr);
      run('ctr', ['-n', 'default', 'task', 'exec', '-d', '--exec-id', `x${tag}`, up.id, 'sleep', '100000']);
      const stopped: CtrContainer = { namespace: 'default', id: `croot-t-pmda-cs-${tag}` };
      ctrRun(stopped, {}, ctr);
      run('ctr', ['-n', 'default', 'task', 'kill', '-s', 'KILL', stopped.id]);
      for (let i = 0; i < 50 && ctrTaskPid(stopped) !== undefined && !/STOPPED/.test(run('ctr', ['-n', 'default', 'task', 'ls'])); i++) run('sleep', ['0.1']);
      const pod = { 'io.kubernetes.cri.sandbox-name': `shop-${tag}`, 'io.kubernetes.cri.sandbox-namespace': 'prod', 'io.kubernetes.cri.sandbox-id': `croot-t-pmda-k-${tag}-sbx` };
      ctrRun({ namespace: 'k8s.io', id: `croot-t-pmda-k-${tag}-sbx` }, { annotations: { ...pod, 'io.kubernetes.cri.container-type': 'sandbox' } }, ctr);
      const app: CtrContainer = { namespace: 'k8s.io', id: `croot-t-pmda-k-${tag}-app` };
      ctrRun(app, { hostname: `${app.id}-h`, annotations: { ...pod, 'io.kubernetes.cri.container-type': 'container', 'io.kubernetes.cri.container-name': 'app' } }, ctr);
      for (const c of [up, stopped, app]) cases.push(() => fromCtr(c));
    }
    rootLinkBefore = linkTarget(ROOT_PMNS_LINK);
    install = await installCrootAsRootAgent();
    execFileSync('/etc/init.d/pmcd', ['start'], { stdio: 'ignore', timeout: 120000 });
    await waitForAgents();
  }, 300000);

  afterAll(async () => {
    try {
      await install?.uninstall();
    } finally {
      removeDockerContainers(docker);
      removePodmanContainers(podman);
      removeRootlessPodmanContainers(rootless);
      removeCtrContainers(ctr);
    }
  }, 300000);

  /** crootd --pmda among pmcd's children. */
  function crootdPid(): number | undefined {
    const pmcd = pidsOf('pmcd')[0];
    return readdirSync('/proc')
      .filter((e) => /^\d+$/.test(e))
      .map(Number)
      .find((pid) => {
        try {
          const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
          return parentPid(pid) === pmcd && argv.includes('--pmda') && argv.some((a) => a.endsWith('/bin/crootd'));
        } catch {
          return false;
        }
      });
  }

  it('puts crootd in the root line, and pmcd runs it as its own child', () => {
    expect(readFileSync(PMCD_CONF, 'utf8')).toMatch(new RegExp(`^root\\t1\\tpipe\\tbinary\\t\\t\\S*/bin/crootd --pmda$`, 'm'));
    // pmcd waits long enough for crootd's first PDU on a loaded host.
    expect(readFileSync(PMCD_OPTIONS, 'utf8')).toMatch(/^-q 20$/m);
    expect(crootdPid()).toBeGreaterThan(0);
    expect(systemPmdaroots()).toEqual([]);
  });

  it("puts its PMNS where PCP's Rebuild looks for the root agent's (root_root), so a rebuild keeps its names", () => {
    expect(linkTarget(ROOT_PMNS_LINK)).toBe(CROOT_PMNS_FILE);
  });

  it('has every agent connected, root included (pmcd.agent.status all 0)', async () => {
    const status = pminfoFetch(await pminfo(['-f', 'pmcd.agent.status'])).get('pmcd.agent.status');
    expect(status?.get('root')).toBe('0');
    expect(Object.fromEntries(status ?? [])).toEqual(Object.fromEntries([...(status ?? new Map()).keys()].map((k) => [k, '0'])));
  });

  it("starts pmcd's other pipe agents through crootd: each is crootd's child", () => {
    const parent = crootdPid();
    const agents = readFileSync(PMCD_CONF, 'utf8')
      .split('\n')
      .map((l) => /^\s*(\S+)\s+\d+\s+pipe\s+binary\s+(.*\S)\s*$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null && m[1] !== 'root')
      .map((m) => ({ label: m[1] as string, args: m[2] as string }));
    expect(agents.length).toBeGreaterThan(0);
    for (const { label, args } of agents) {
      const pid = readdirSync('/proc')
        .filter((e) => /^\d+$/.test(e))
        .map(Number)
        .find((p) => {
          try {
            return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ') === args;
          } catch {
            return false;
          }
        });
      expect({ label, parent: pid === undefined ? undefined : parentPid(pid) }).toEqual({ label, parent });
    }
  });

  it('prints for pmdaroot’s seven metrics what pminfo -d and -T print with PCP’s pmdaroot', async () => {
    const seven = ['containers.engine', 'containers.name', 'containers.pid', 'containers.cgroup', 'containers.state.running', 'containers.state.paused', 'containers.state.restarting'];
    expect(await pminfo(['-d', ...seven])).toBe(readFileSync(join(GOLDEN_DIR, 'pmdaroot-pminfo-d.txt'), 'utf8'));
    expect(await pminfo(['-T', ...seven])).toBe(readFileSync(join(GOLDEN_DIR, 'pmdaroot-pminfo-T.txt'), 'utf8'));
  });

  it('gives containers.* for every test container of every engine as the engines’ own tools say, process counts as the kernel says', async () => {
    expect(cases.length).toBeGreaterThan(0);
    const deadline = Date.now() + 30000;
    let mismatches: unknown[] = [];
    // An engine may learn of a container a moment later: compare until it agrees or time is up.
    for (;;) {
      const got = pminfoFetch(await pminfo(['-f', 'containers']));
      mismatches = [];
      for (const make of cases) {
        const c = make();
        for (const [metric, want] of Object.entries(c.expected)) {
          const have = got.get(metric)?.get(c.instance);
          if (have === want || (have === undefined && c.optional?.includes(metric))) continue;
          mismatches.push({ instance: c.instance, metric, want, have });
        }
      }
      if (mismatches.length === 0 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(mismatches).toEqual([]);
  });

  describeWith('docker', probes.docker, 'a Docker container with two processes exec\'d into it', () => {
    it('has containers.processes 3, as the kernel counts in its PID namespace', async () => {
      const up = fromInspect('docker', (f) => dockerInspect(`croot-t-pmda-d-${tag}`, f));
      expect(up.expected['containers.processes']).toBe('3');
      const got = pminfoFetch(await pminfo(['-f', 'containers.processes'])).get('containers.processes');
      expect(got?.get(up.instance)).toBe('3');
    });

    it("gets proc.nprocs 0 from pmdaproc, and its thread count with proc.control.all.threads on (docs/pmcd-dropin.md)", async () => {
      const name = `croot-t-pmda-d-${tag}`;
      const pid = Number(dockerInspect(name, '{{.State.Pid}}'));
      const nprocs = async (): Promise<string | undefined> => pminfoFetch(await pminfo([`--container=${name}`, '-f', 'proc.nprocs'])).get('proc.nprocs')?.get('');
      expect(await nprocs()).toBe('0');
      // The kernel's list pmdaproc then reads: the tasks of the container's memory cgroup (cgroup v1 and hybrid hosts).
      const memory = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
        .split('\n')
        .find((l) => (l.split(':')[1] ?? '').split(',').includes('memory'));
      if (memory === undefined) return; // a pure cgroup v2 host: no workaround
      const tasks = readFileSync(`/sys/fs/cgroup/memory${memory.split(':').slice(2).join(':')}/tasks`, 'utf8').split('\n').filter(Boolean).length;
      await runAsync('pmstore', ['proc.control.all.threads', '1']);
      try {
        expect(await nprocs()).toBe(String(tasks));
      } finally {
        await runAsync('pmstore', ['proc.control.all.threads', '0']);
      }
    });
  });

  // The spellings current pmcd lets through (PCP >= 6.3.1 refuses '/' and ':' in --container).
  describeWith('containerd', probes.containerd, 'pminfo --container= with names made of [A-Za-z0-9._-] only', () => {
    async function nodenameIn(container: string): Promise<string | undefined> {
      const out = await pminfo([`--container=${container}`, '-f', 'kernel.uname.nodename']);
      return pminfoFetch(out).get('kernel.uname.nodename')?.get('');
    }

    it('reaches a containerd container as <namespace>_<id>', async () => {
      const id = `croot-t-pmda-c-${tag}`;
      expect(await nodenameIn(`default_${id}`)).toBe(hostnameOf(ctrTaskPid({ namespace: 'default', id }) ?? -1));
    });

    it('reaches a Kubernetes container as <pod namespace>_<pod>_<container>', async () => {
      const id = `croot-t-pmda-k-${tag}-app`;
      expect(await nodenameIn(`prod_shop-${tag}_app`)).toBe(hostnameOf(ctrTaskPid({ namespace: 'k8s.io', id }) ?? -1));
    });
  });

  it('gives help for every containers.* metric (pminfo -t)', async () => {
    const out = await pminfo(['-t', 'containers']);
    const lines = out.trim().split('\n');
    expect(lines.length).toBe(16);
    for (const line of lines) expect(line).toMatch(/^containers\.\S+ \[.+\]$/);
  });

  it('uninstall-pmcd puts pmcd.conf, pmcd.options and the PMNS back byte for byte, and removes its files', async () => {
    const original = install;
    expect(original).toBeDefined();
    await original?.uninstall();
    expect(readFileSync(PMCD_CONF).equals(original?.originalConf ?? Buffer.alloc(0))).toBe(true);
    expect(readFileSync(PMCD_OPTIONS).equals(original?.originalOptions ?? Buffer.alloc(0))).toBe(true);
    expect(readFileSync(PMNS_ROOT).equals(original?.originalPmns ?? Buffer.alloc(0))).toBe(true);
    expect(existsSync('/var/lib/pcp/pmdas/croot')).toBe(false);
    expect(existsSync('/var/lib/pcp/pmns/root_croot')).toBe(false);
    expect(linkTarget(ROOT_PMNS_LINK)).toBe(rootLinkBefore);
    expect(pidsOf('pmcd').length > 0).toBe(original?.pmcdWasRunning);
  });
});

describeWith('PCP (pmcd, pmnsadd), root and a built crootd', pcpAndRoot, 'crootd install-pmcd on a PCP whose pmcd has never started (no PMNS yet, a .NeedRebuild)', () => {
  const aside = `${PMNS_ROOT}.croot-test-aside-${randomBytes(4).toString('hex')}`;
  const needRebuildBefore = existsSync(NEED_REBUILD);
  let rootLinkBefore: string | undefined;
  let output = '';

  beforeAll(async () => {
    // As PCP's package leaves it: no PMNS, and .NeedRebuild for pmcd's rc script.
    rootLinkBefore = linkTarget(ROOT_PMNS_LINK);
    renameSync(PMNS_ROOT, aside);
    writeFileSync(NEED_REBUILD, '');
    const r = spawnSync(process.execPath, [CROOTD, 'install-pmcd', '--no-restart'], { encoding: 'utf8', timeout: 120000 });
    output = `${r.stdout}${r.stderr}`;
    if (r.status !== 0) throw new Error(`crootd install-pmcd exited ${r.status}: ${output}`);
  }, 180000);

  afterAll(async () => {
    try {
      if (existsSync('/var/lib/pcp/pmdas/croot')) await runAsync(process.execPath, [CROOTD, 'uninstall-pmcd', '--no-restart'], 120000);
      expect(linkTarget(ROOT_PMNS_LINK)).toBe(rootLinkBefore);
    } finally {
      renameSync(aside, PMNS_ROOT);
      if (needRebuildBefore) writeFileSync(NEED_REBUILD, '');
      else rmSync(NEED_REBUILD, { force: true });
    }
  }, 180000);

  it("keeps every name of crootd's when pmcd's rc script rebuilds the PMNS at a start (.NeedRebuild, as after a PCP upgrade)", () => {
    // The install built the PMNS as pmcd's first start would, and removed .NeedRebuild as that start does.
    expect(existsSync(NEED_REBUILD)).toBe(false);
    // What the rc script runs at a start that finds .NeedRebuild: PCP's own Rebuild, in the PMNS folder.
    execFileSync('./Rebuild', ['-u'], { cwd: '/var/lib/pcp/pmns', stdio: 'ignore', timeout: 120000 });
    const names = (pmns: string): string[] => execFileSync('pminfo', ['-n', pmns, 'containers'], { encoding: 'utf8' }).trim().split('\n').sort();
    expect(names(PMNS_ROOT)).toEqual(names(CROOT_PMNS_FILE));
    expect(names(PMNS_ROOT).length).toBeGreaterThan(7);
  });

  it("builds the PMNS with PCP's Rebuild first, as pmcd's first start would: every agent's names, crootd's merged in", () => {
    expect(output).toMatch(/pmns\/root: built with .*Rebuild -u/);
    // The truth is PCP's own PMNS, read by PCP's pminfo: the agents' names of the original, and containers.* from crootd.
    const names = (pmns: string, top: string): string[] => execFileSync('pminfo', ['-n', pmns, top], { encoding: 'utf8' }).trim().split('\n').sort();
    expect(names(PMNS_ROOT, 'kernel.uname')).toEqual(names(aside, 'kernel.uname'));
    expect(names(PMNS_ROOT, 'containers')).toEqual(expect.arrayContaining(['containers.engine', 'containers.name', 'containers.pid', 'containers.cgroup']));
    expect(readFileSync(PMCD_CONF, 'utf8')).toMatch(/^root\s+1\s+pipe\s+binary\s+.*crootd --pmda$/m);
  });
});
