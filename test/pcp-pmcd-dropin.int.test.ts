/**
 * croot's server as the drop-in pmdaroot under PCP's real pmcd: with the
 * `root` line removed from pmcd.conf and croot listening on PCP's root
 * socket first, pmcd starts every pipe PMDA through croot (STARTPMDA, fds
 * passed back), and pmdalinux asks croot for container hostnames, Docker,
 * Podman and containerd alike. The machine is put back afterwards: pmcd.conf
 * restored byte for byte, pmcd (with PCP's own pmdaroot) restarted if it ran.
 *
 * The server is the real, built crootd (`node dist/bin/crootd.js`), as a
 * user would run it.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commandWorks, describeWith, probes, run } from './support/components.js';
import { CROOTD, startCrootd, type CrootdProcess } from './support/crootd-process.js';
import {
  ctrRun,
  ctrTaskPid,
  hostnameOf,
  podmanInspect,
  podmanRun,
  removeCtrContainers,
  removePodmanContainers,
  waitForHostname,
  type CtrContainer,
} from './support/engine-containers.js';
import { PMCD_CONF, ROOT_SOCKET, pidsOf, pminfo, systemPmdaroots, pminfoValues, startPmcd, takeOverFromPcp, withoutRootLine, type PcpTakeover } from './support/pmcd-dropin.js';
import { parentPid } from './support/processes.js';
import { dockerInspect, dockerRun, removeDockerContainers } from './support/testbed.js';

const pcpAndRoot = (): string | undefined =>
  probes.root() ??
  commandWorks('test', ['-x', '/etc/init.d/pmcd']) ??
  commandWorks('test', ['-x', '/var/lib/pcp/pmdas/linux/pmdalinux']) ??
  commandWorks('which', ['pminfo']);

/** The pipe agents of a pmcd.conf: label -> command line. */
function pipeAgents(conf: string): Map<string, string> {
  const agents = new Map<string, string>();
  for (const line of conf.split('\n')) {
    const m = /^\s*(\S+)\s+\d+\s+pipe\s+binary\s+(.*\S)\s*$/.exec(line);
    if (m && !line.trimStart().startsWith('#')) agents.set(m[1] as string, m[2] as string);
  }
  return agents;
}

/**
 * kernel.uname.nodename as pmdalinux reports it inside `container`. Retried
 * for a while: an engine may learn of a container a moment after it started.
 */
async function nodenameIn(container: string, expected: string, timeoutMs = 15000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = pminfoValues(await pminfo([`--container=${container}`, '-f', 'kernel.uname.nodename'])).get('') ?? '';
    if (value === expected || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 250));
  }
}

describeWith('PCP (pmcd, pmdalinux) and root', pcpAndRoot, "crootd as the drop-in pmdaroot under PCP's real pmcd", () => {
  const tag = randomBytes(4).toString('hex');
  let dir: string;
  let logPath: string;
  let originalConf: string;
  let takeover: PcpTakeover | undefined;
  let crootd: CrootdProcess | undefined;

  const log = (): string => crootd?.log() ?? '';

  beforeAll(async () => {
    if (!existsSync(CROOTD)) throw new Error(`${CROOTD} is missing: run npm run build (npm test does)`);
    dir = mkdtempSync(join(tmpdir(), 'croot-dropin-'));
    logPath = join(dir, 'crootd.log');
    originalConf = readFileSync(PMCD_CONF, 'utf8');
    takeover = await takeOverFromPcp();

    crootd = await startCrootd({ socketPath: ROOT_SOCKET, logPath, args: ['--log-level', 'debug'] });
    await startPmcd();
    // pmcd is up once it answers; its agents a moment later.
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline) {
      try {
        const status = pminfoValues(await pminfo(['-f', 'pmcd.agent.status']));
        if (status.size > 0 && [...status.values()].every((v) => v === '0')) break;
      } catch {
        // not answering yet
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }, 120000);

  afterAll(async () => {
    const stopCroot = async (): Promise<void> => {
      if (crootd === undefined || crootd.child.exitCode !== null) return;
      const exit = await crootd.stop('SIGTERM');
      if (exit.code !== 0) throw new Error(`crootd exited ${exit.code ?? exit.signal} on SIGTERM: ${crootd.stderr()}`);
      if (existsSync(ROOT_SOCKET)) throw new Error('crootd left its socket behind');
    };
    let problem: unknown;
    try {
      // pmcd stops first (its agents with it, while croot still answers), then croot, then PCP comes back.
      if (takeover) await takeover.giveBack(stopCroot);
      else await stopCroot();
    } catch (err) {
      problem = err;
    }
    await crootd?.stop('SIGKILL');
    if (process.env.CROOT_KEEP_DROPIN_LOG === undefined) rmSync(dir, { recursive: true, force: true });
    if (problem !== undefined) throw problem;
  }, 120000);

  it('runs with the root line removed and PCP’s own pmdaroot not running', () => {
    expect(readFileSync(PMCD_CONF, 'utf8')).toBe(withoutRootLine(originalConf));
    expect(systemPmdaroots()).toEqual([]);
    expect(pidsOf('pmcd').length).toBeGreaterThan(0);
  });

  it('starts every pipe PMDA of pmcd.conf through crootd, each running as its child', () => {
    const agents = pipeAgents(readFileSync(PMCD_CONF, 'utf8'));
    expect(agents.size).toBeGreaterThan(0);
    const text = log();
    for (const [label, args] of agents) {
      const m = new RegExp(`INFO started process label=${label} pid=(\\d+)`).exec(text);
      expect({ label, started: m !== null }).toEqual({ label, started: true });
      const pid = Number(m?.[1]);
      // crootd's own child.
      expect(parentPid(pid)).toBe(crootd?.pid);
      expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ')).toBe(args);
      // As PCP's pmdaroot would: run as root.
      expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^Uid:\s+0\s/m);
    }
  });

  it('has every agent connected (pmcd.agent.status all 0)', async () => {
    const status = pminfoValues(await pminfo(['-f', 'pmcd.agent.status']));
    expect(status.size).toBeGreaterThan(0);
    expect(Object.fromEntries(status)).toEqual(Object.fromEntries([...status.keys()].map((k) => [k, '0'])));
    expect(status.has('linux')).toBe(true);
  });

  it("answers kernel.uname.nodename with the host's hostname", async () => {
    expect(pminfoValues(await pminfo(['-f', 'kernel.uname.nodename'])).get('')).toBe(run('hostname', []));
  });

  it('gives PCP QA 767\'s "Container not found" for a container that does not exist', async () => {
    // pminfo exits non-zero on a fetch error; its output is what 767.out shows.
    const out = await pminfo(['--container=NoSuchContainer', '-f', 'kernel.all.load', 'kernel.uname.nodename']).catch((err: Error) => err.message);
    expect(out).toMatch(/kernel\.all\.load\s*\n\s*Error: Container not found/);
    expect(out).toMatch(/kernel\.uname\.nodename\s*\n\s*Error: Container not found/);
  });

  describeWith('docker', probes.docker, 'a Docker container', () => {
    const name = `croot-t-dropin-d-${tag}`;
    const created: string[] = [];
    afterAll(() => removeDockerContainers(created));
    it('answers pminfo --container=NAME with the container’s hostname', async () => {
      dockerRun(name, { hostname: `${name}-h` }, created);
      const pid = Number(dockerInspect(name, '{{.State.Pid}}'));
      expect(hostnameOf(pid)).toBe(`${name}-h`);
      expect(await nodenameIn(name, `${name}-h`)).toBe(`${name}-h`);
    });
  });

  describeWith('podman', probes.podman, 'a Podman container', () => {
    const name = `croot-t-dropin-p-${tag}`;
    const created: string[] = [];
    afterAll(() => removePodmanContainers(created));
    it('answers pminfo --container=NAME with the container’s hostname', async () => {
      podmanRun(name, { hostname: `${name}-h` }, created);
      const pid = Number(podmanInspect(name, '{{.State.Pid}}'));
      expect(hostnameOf(pid)).toBe(`${name}-h`);
      expect(await nodenameIn(name, `${name}-h`)).toBe(`${name}-h`);
    });
  });

  describeWith('containerd', probes.containerd, 'a containerd container (which PCP alone cannot name)', () => {
    const container: CtrContainer = { namespace: 'default', id: `croot-t-dropin-c-${tag}` };
    const { id } = container;
    const created: CtrContainer[] = [];
    afterAll(() => removeCtrContainers(created));
    it('answers pminfo --container=default/ID with the container’s hostname', async () => {
      ctrRun(container, { hostname: `${id}-h` }, created);
      const pid = ctrTaskPid(container) ?? -1;
      expect(await waitForHostname(pid, `${id}-h`, 10000)).toBe(`${id}-h`);
      expect(await nodenameIn(`default/${id}`, `${id}-h`)).toBe(`${id}-h`);
    });
  });
});
