/**
 * The real, built crootd (`node dist/bin/crootd.js`) with real containers of
 * three engines at once: a docker container, a rootful podman container, a
 * containerd container in `default` and a Kubernetes (CRI-annotated) one in
 * `k8s.io`. PCP's own C client (libpcp_pmda) and croot's RootClient (Node and
 * native transports) must get every hostname, PID and cgroup right by every
 * name, as the kernel and the engines' own tools tell them. Then: one name in
 * two engines, containers that come and go while crootd runs, and a clean
 * SIGTERM.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { nodeSocketTransport } from '../core/client/node-socket-transport.js';
import { RootClient } from '../core/client/root-client.js';
import type { RootTransportFactory } from '../core/client/root-transport.js';
import { nativeTransport } from '../native/native-transport.js';
import { describeWith, probes } from './support/components.js';
import { builtBinaries, retryUntil, startCrootd, type CrootdProcess } from './support/crootd-process.js';
import {
  cgroupTruth,
  ctrRun,
  ctrTaskPid,
  ensureCtrImage,
  podmanInspect,
  podmanRun,
  removeCtrContainers,
  removePodmanContainers,
  waitForHostname,
  type CtrContainer,
} from './support/engine-containers.js';
import { buildPcpCClient, connected, makeTempDir, runPcpCClient, type CClientResult } from './support/pcp-peer.js';
import { dockerInspect, dockerRun, removeDockerContainers } from './support/testbed.js';

function probe(): string | undefined {
  return (
    probes.root() ?? probes.docker() ?? probes.podman() ?? probes.containerd() ?? probes.pcpClientLib() ?? builtBinaries() ?? probes.native()
  );
}

/** What the host says about one container, and the names croot must know it by. */
interface Truth {
  readonly what: string;
  readonly names: readonly string[];
  readonly pid: number;
  readonly hostname: string;
  readonly cgroup: string;
}

const PM_ERR_NOCONTAINER = -12399;
const ENOTUNIQ = 76;

describeWith('root, docker, podman, containerd, PCP’s libpcp_pmda and the built crootd', probe, 'crootd with docker, podman and containerd containers at once', () => {
  const tag = randomBytes(4).toString('hex');
  const dockerName = `croot-t-${tag}-dk`;
  const podmanName = `croot-t-${tag}-pm`;
  const ctrPlain: CtrContainer = { namespace: 'default', id: `croot-t-${tag}-ctr` };
  const ctrK8s: CtrContainer = { namespace: 'k8s.io', id: `croot-t-${tag}-k8s` };
  const pod = `shop-${tag}`;
  const podNamespace = 'prod';
  const k8sContainer = 'app';

  const dockerCreated: string[] = [];
  const podmanCreated: string[] = [];
  const ctrCreated: CtrContainer[] = [];
  let work: string;
  let cClient: string;
  let crootd: CrootdProcess | undefined;
  let socketPath: string;
  const truths: Truth[] = [];

  beforeAll(async () => {
    work = makeTempDir('croot-xengine-');
    socketPath = join(work, 'run', 'root.socket');
    cClient = buildPcpCClient(work);
    ensureCtrImage('default');
    ensureCtrImage('k8s.io');

    dockerRun(dockerName, { hostname: `${dockerName}-h` }, dockerCreated);
    podmanRun(podmanName, { hostname: `${podmanName}-h` }, podmanCreated);
    ctrRun(ctrPlain, { hostname: `${ctrPlain.id}-h` }, ctrCreated);
    ctrRun(
      ctrK8s,
      {
        hostname: `${ctrK8s.id}-h`,
        annotations: {
          'io.kubernetes.cri.container-type': 'container',
          'io.kubernetes.cri.container-name': k8sContainer,
          'io.kubernetes.cri.sandbox-name': pod,
          'io.kubernetes.cri.sandbox-namespace': podNamespace,
        },
      },
      ctrCreated,
    );

    const dockerPid = Number(dockerInspect(dockerName, '{{.State.Pid}}'));
    const podmanPid = Number(podmanInspect(podmanName, '{{.State.Pid}}'));
    const plainPid = ctrTaskPid(ctrPlain) ?? -1;
    const k8sPid = ctrTaskPid(ctrK8s) ?? -1;
    const truth = async (what: string, names: string[], pid: number, hostname: string): Promise<Truth> => {
      expect(pid).toBeGreaterThan(0);
      // The hostname the container holds, read from its UTS namespace (ctr's sh sets it a moment after start).
      return { what, names, pid, hostname: await waitForHostname(pid, hostname), cgroup: cgroupTruth(pid) };
    };
    truths.push(
      await truth('docker', [dockerName, `docker:${dockerName}`], dockerPid, `${dockerName}-h`),
      await truth('podman', [podmanName, `podman:${podmanName}`], podmanPid, `${podmanName}-h`),
      await truth('containerd default', [`default/${ctrPlain.id}`, `containerd:default/${ctrPlain.id}`], plainPid, `${ctrPlain.id}-h`),
      await truth('containerd k8s.io', [`k8s.io/${ctrK8s.id}`, `${podNamespace}/${pod}/${k8sContainer}`], k8sPid, `${ctrK8s.id}-h`),
    );

    crootd = await startCrootd({ socketPath, logPath: join(work, 'crootd.log') });
  }, 180000);

  afterAll(async () => {
    let problem: unknown;
    try {
      if (crootd !== undefined && crootd.child.exitCode === null && crootd.child.signalCode === null) await crootd.stop('SIGKILL', 5000);
    } catch (err) {
      problem = err;
    }
    removeDockerContainers(dockerCreated);
    removePodmanContainers(podmanCreated);
    removeCtrContainers(ctrCreated);
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
    if (problem !== undefined) throw problem;
  }, 120000);

  it('sees each container under its own hostname in the kernel (the truth the answers are checked against)', () => {
    expect(truths.map((t) => [t.what, t.hostname])).toEqual([
      ['docker', `${dockerName}-h`],
      ['podman', `${podmanName}-h`],
      ['containerd default', `${ctrPlain.id}-h`],
      ['containerd k8s.io', `${ctrK8s.id}-h`],
    ]);
    expect(new Set(truths.map((t) => t.pid)).size).toBe(4);
  });

  it('gives PCP’s C client the hostname, PID and cgroup of every container by every name', async () => {
    const asked = truths.flatMap((t) => t.names.map((name) => ({ t, name })));
    const ops = asked.flatMap(({ name }) => [`hostname:${name}`, `processid:${name}`, `cgroup:${name}`]);
    const [connect, ...results] = await runPcpCClient(cClient, socketPath, ops);
    expect(connect).toMatchObject(connected());
    const got = asked.map(({ name }, i) => {
      const [host, pid, cgroup] = results.slice(3 * i, 3 * i + 3) as [CClientResult, CClientResult, CClientResult];
      return { name, hostname: host.value, hostnameSts: host.sts, pid: pid.sts, cgroup: cgroup.value, cgroupSts: cgroup.sts };
    });
    expect(got).toEqual(
      asked.map(({ t, name }) => ({
        name,
        hostname: t.hostname,
        hostnameSts: Buffer.byteLength(t.hostname),
        pid: t.pid,
        cgroup: t.cgroup,
        cgroupSts: Buffer.byteLength(t.cgroup),
      })),
    );
  });

  it.each<[string, RootTransportFactory]>([
    ['Node sockets', nodeSocketTransport],
    ['the native transport', nativeTransport],
  ])('gives croot’s RootClient over %s the same answers by every name', async (_what, transport) => {
    const client = await RootClient.connect(socketPath, { transport });
    try {
      for (const t of truths) {
        for (const name of t.names) {
          const answer = {
            name,
            hostname: await client.hostname(name),
            pid: await client.processId(name),
            cgroup: await client.cgroupName(name),
          };
          expect(answer).toEqual({ name, hostname: t.hostname, pid: t.pid, cgroup: t.cgroup });
        }
      }
    } finally {
      client.close();
    }
  });

  describe('one name held by a docker and a podman container', () => {
    const twin = `croot-t-${tag}-twin`;
    let dockerPid: number;
    let podmanPid: number;
    let dockerId: string;
    let podmanId: string;

    beforeAll(async () => {
      dockerId = dockerRun(twin, { hostname: `${twin}-d` }, dockerCreated).id;
      podmanId = podmanRun(twin, { hostname: `${twin}-p` }, podmanCreated);
      dockerPid = Number(dockerInspect(twin, '{{.State.Pid}}'));
      podmanPid = Number(podmanInspect(twin, '{{.State.Pid}}'));
      // Both must be known before the ambiguity can show.
      const client = await RootClient.connect(socketPath);
      try {
        await retryUntil(
          () => Promise.all([client.processId(`docker:${twin}`), client.processId(`podman:${twin}`)]).catch(() => []),
          (pids) => pids[0] === dockerPid && pids[1] === podmanPid,
          5000,
        );
      } finally {
        client.close();
      }
    }, 60000);

    it('refuses the unqualified name as ambiguous (-76) to PCP’s C client and to RootClient', async () => {
      const [, host, pid, cgroup] = await runPcpCClient(cClient, socketPath, [`hostname:${twin}`, `processid:${twin}`, `cgroup:${twin}`]);
      expect([host?.sts, pid?.sts, cgroup?.sts]).toEqual([-ENOTUNIQ, -ENOTUNIQ, -ENOTUNIQ]);
      const client = await RootClient.connect(socketPath, { transport: nativeTransport });
      try {
        await expect(client.processId(twin)).rejects.toMatchObject({ code: 'ERR_AMBIGUOUS_NAME', status: -ENOTUNIQ });
      } finally {
        client.close();
      }
    });

    it('names both candidates in crootd’s log at warn level (the wire carries only the status)', () => {
      const lines = (crootd?.log() ?? '').split('\n').filter((l) => / WARN request failed /.test(l) && l.includes('status=-76') && l.includes(twin));
      expect(lines.length).toBeGreaterThan(0);
      expect(lines[0]).toContain(`docker:${dockerId}`);
      expect(lines[0]).toContain(`podman:${podmanId}`);
    });

    it('answers docker:NAME and podman:NAME each with its own PID and hostname', async () => {
      const [, dPid, pPid, dHost, pHost] = await runPcpCClient(cClient, socketPath, [
        `processid:docker:${twin}`,
        `processid:podman:${twin}`,
        `hostname:docker:${twin}`,
        `hostname:podman:${twin}`,
      ]);
      expect([dPid?.sts, pPid?.sts, dHost?.value, pHost?.value]).toEqual([dockerPid, podmanPid, `${twin}-d`, `${twin}-p`]);
      const client = await RootClient.connect(socketPath);
      try {
        await expect(client.processId(`docker:${twin}`)).resolves.toBe(dockerPid);
        await expect(client.processId(`podman:${twin}`)).resolves.toBe(podmanPid);
      } finally {
        client.close();
      }
    });
  });

  describe('containers that come and go while crootd runs', () => {
    const lateDocker = `croot-t-${tag}-late-dk`;
    const latePodman = `croot-t-${tag}-late-pm`;
    const lateCtr: CtrContainer = { namespace: 'default', id: `croot-t-${tag}-late-ctr` };
    const names = { docker: lateDocker, podman: latePodman, containerd: `default/${lateCtr.id}` };
    const pids: Record<string, number> = {};

    /** PIDs crootd gives PCP's C client for each name, retried until `done` or ~5 s. */
    async function askUntil(done: (sts: number[]) => boolean): Promise<Record<string, number>> {
      const keys = Object.keys(names) as (keyof typeof names)[];
      const sts = await retryUntil(
        async () => (await runPcpCClient(cClient, socketPath, keys.map((k) => `processid:${names[k]}`))).slice(1).map((r) => r.sts),
        done,
        5000,
      );
      return Object.fromEntries(keys.map((k, i) => [k, sts[i] ?? NaN]));
    }

    it('answers for docker, podman and containerd containers started after crootd', async () => {
      expect(await askUntil(() => true)).toEqual({ docker: PM_ERR_NOCONTAINER, podman: PM_ERR_NOCONTAINER, containerd: PM_ERR_NOCONTAINER });
      dockerRun(lateDocker, { hostname: `${lateDocker}-h` }, dockerCreated);
      podmanRun(latePodman, { hostname: `${latePodman}-h` }, podmanCreated);
      ctrRun(lateCtr, { hostname: `${lateCtr.id}-h` }, ctrCreated);
      pids.docker = Number(dockerInspect(lateDocker, '{{.State.Pid}}'));
      pids.podman = Number(podmanInspect(latePodman, '{{.State.Pid}}'));
      pids.containerd = ctrTaskPid(lateCtr) ?? -1;
      const want = [pids.docker, pids.podman, pids.containerd];
      expect(await askUntil((sts) => sts.every((s, i) => s === want[i]))).toEqual(pids);
    }, 60000);

    it('answers -12399 for each of them once removed', async () => {
      removeDockerContainers([lateDocker]);
      removePodmanContainers([latePodman]);
      removeCtrContainers([lateCtr]);
      expect(await askUntil((sts) => sts.every((s) => s === PM_ERR_NOCONTAINER))).toEqual({
        docker: PM_ERR_NOCONTAINER,
        podman: PM_ERR_NOCONTAINER,
        containerd: PM_ERR_NOCONTAINER,
      });
    }, 60000);
  });

  it('exits 0 on SIGTERM and removes its socket', async () => {
    expect(existsSync(socketPath)).toBe(true);
    const exit = await (crootd as CrootdProcess).stop('SIGTERM', 10000);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(existsSync(socketPath)).toBe(false);
    expect(crootd?.log()).toMatch(/ INFO stopping signal=SIGTERM/);
  });
});
