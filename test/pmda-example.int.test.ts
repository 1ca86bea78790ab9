/**
 * examples/container-cgroup-pmda.ts, a PMDA written with croot/pmda that
 * asks the root socket through croot's RootClient, installed into PCP's
 * real pmcd with its one command (`install`), fetched with pminfo for a
 * Docker container, and removed again (`remove`): pmcd.conf and the PMNS
 * come back byte for byte. pmcd's root agent is whatever pmcd.conf says
 * (PCP's pmdaroot on the testbed). Run under /tmp/croot-pmcd.lock.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { commandWorks, describeWith, probes, run } from './support/components.js';
import { runCommand } from './support/crootd-process.js';
import { PMCD_CONF, pidsOf, pminfo, startPmcd, stopPmcd } from './support/pmcd-dropin.js';
import { PMNS_ROOT, pminfoFetch, waitForAgents } from './support/pmcd-root-pmda.js';
import { dockerInspect, dockerRun, removeDockerContainers, uniqueName } from './support/testbed.js';

const EXAMPLE = resolve(__dirname, '..', 'dist', 'examples', 'container-cgroup-pmda.js');

const ready = (): string | undefined =>
  probes.root() ?? probes.docker() ?? commandWorks('test', ['-f', EXAMPLE]) ?? commandWorks('test', ['-x', '/etc/init.d/pmcd']) ?? commandWorks('which', ['pminfo']);

/** The kernel's count of processes in `pid`'s memory cgroup (v1) or unified cgroup: /proc/N/cgroup lines equal to its. */
function processesInCgroupOf(pid: number): number {
  const line = (p: number | string): string | undefined => {
    const lines = readFileSync(`/proc/${p}/cgroup`, 'utf8').split('\n');
    return lines.find((l) => l.split(':')[1]?.split(',').includes('memory')) ?? lines.find((l) => l.startsWith('0::'));
  };
  const mine = line(pid);
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        return line(e) === mine;
      } catch {
        return false;
      }
    }).length;
}

describeWith('root, docker, PCP and the built example', ready, 'a TypeScript PMDA (examples/container-cgroup-pmda.ts) under the real pmcd', () => {
  const created: string[] = [];
  const name = uniqueName('croot-t-pmdaex');
  let pmcdWasRunning = false;
  let conf: Buffer;
  let pmns: Buffer;
  let removed = false;

  const example = async (verb: string): Promise<void> => {
    const r = await runCommand(process.execPath, [EXAMPLE, verb], { timeoutMs: 120000 });
    if (r.code !== 0) throw new Error(`example ${verb}: ${r.stderr}`);
  };

  beforeAll(async () => {
    dockerRun(name, {}, created);
    for (let i = 0; i < 2; i++) run('docker', ['exec', '-d', name, 'sleep', '100000']);
    pmcdWasRunning = pidsOf('pmcd').length > 0;
    conf = readFileSync(PMCD_CONF);
    pmns = readFileSync(PMNS_ROOT);
    await stopPmcd();
    await example('install');
    await startPmcd();
    await waitForAgents();
  }, 300000);

  afterAll(async () => {
    try {
      await stopPmcd();
      if (!removed && existsSync('/var/lib/pcp/pmdas/crootexample')) await example('remove');
      if (pmcdWasRunning) await startPmcd();
    } finally {
      removeDockerContainers(created);
    }
  }, 300000);

  it('is connected (pmcd.agent.status of crootexample is 0)', async () => {
    expect(pminfoFetch(await pminfo(['-f', 'pmcd.agent.status'])).get('pmcd.agent.status')?.get('crootexample')).toBe('0');
  });

  it('reports the PID docker inspect gives, and the processes the kernel puts in its cgroup', async () => {
    const pid = Number(dockerInspect(name, '{{.State.Pid}}'));
    const id = dockerInspect(name, '{{.Id}}');
    const got = pminfoFetch(await pminfo([`--container=${name}`, '-f', 'crootexample']));
    expect(got.get('crootexample.container.pid')?.get('')).toBe(String(pid));
    expect(got.get('crootexample.container.cgroup')?.get('')).toContain(id);
    expect(processesInCgroupOf(pid)).toBe(3);
    expect(got.get('crootexample.container.cgroup_procs')?.get('')).toBe('3');
  });

  it('has no value without --container, and "Container not found" for an unknown one', async () => {
    expect(pminfoFetch(await pminfo(['-f', 'crootexample.container.pid'])).get('crootexample.container.pid')?.size).toBe(0);
    // A name that cannot be the prefix of a hex id: PCP's pmdaroot would match any id it begins (PCP issues #179, #190).
    const out = await pminfo(['--container=zz-croot-t-no-such-container', '-f', 'crootexample.container.pid']).catch((err: Error) => err.message);
    expect(out).toMatch(/crootexample\.container\.pid\s*\n\s*Error: Container not found/);
  });

  it('gives its help text to pminfo -T', async () => {
    expect(await pminfo(['-T', 'crootexample.container.cgroup_procs'])).toMatch(/Help:\nLines of the container cgroup's cgroup\.procs/);
  });

  it('is removed by its remove command: pmcd.conf and the PMNS back byte for byte', async () => {
    await stopPmcd();
    await example('remove');
    removed = true;
    expect(readFileSync(PMCD_CONF).equals(conf)).toBe(true);
    expect(readFileSync(PMNS_ROOT).equals(pmns)).toBe(true);
    expect(existsSync('/var/lib/pcp/pmdas/crootexample')).toBe(false);
  });
});
