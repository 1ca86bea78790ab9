/**
 * The Podman engine against real rootless podman: containers run as the test
 * user `croot-rootless` (scripts/testbed-start.sh) without a login session,
 * in a store that uses the vfs graph driver when overlay is not available to
 * the user. The first load, then every change podman makes as that user
 * followed by the index (native module as crootd has it: inotify, pidfds).
 * Every answer is compared with `podman inspect` (as that user) and the
 * host's /proc, in-process and through the built crootd.
 */
import { settle } from './support/outcomes.js';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { podmanEngineModule } from '../engines/podman/index.js';
import { RootClient } from '../core/client/root-client.js';
import { nativeModule } from '../native/native-module.js';
import { describeWith, probes, ROOTLESS_USER } from './support/components.js';
import { builtBinaries, startCrootd, type CrootdProcess } from './support/crootd-process.js';
import {
  cgroupTruth,
  removeRootlessPodmanContainers,
  rootlessPodman,
  rootlessPodmanInspect,
  rootlessPodmanRun,
  rootlessUid,
  waitForHostname,
} from './support/engine-containers.js';
import { engineResolvers, type EngineResolvers } from './support/engine-resolvers.js';
import { makeTempDir } from './support/pcp-peer.js';
import { followLifecycle } from './support/podman-lifecycle.js';

function probe(): string | undefined {
  return probes.podmanRootless() ?? probes.native() ?? builtBinaries();
}

describeWith(`rootless podman as ${ROOTLESS_USER} and the built crootd`, probe, 'PodmanEngine with real rootless podman', () => {
  const tag = randomBytes(4).toString('hex');
  const web = `croot-t-${tag}-rlweb`;
  const idle = `croot-t-${tag}-rlidle`;
  const created: string[] = [];
  let webId: string;
  let idleId: string;
  let webPid: number;
  let driver: string;

  /** The names a rootless container has in croot's records: its own, `<user>/<name>`, and the pmcd-safe `<user>_<name>`. */
  const recordNames = (name: string): string[] => [name, `${ROOTLESS_USER}/${name}`, `${ROOTLESS_USER}_${name}`];
  /** Every reference croot must resolve for a rootless container. */
  const namesOf = (name: string, id: string): string[] => [
    ...recordNames(name),
    `podman:${name}`,
    `podman:${ROOTLESS_USER}/${name}`,
    `podman.${ROOTLESS_USER}_${name}`,
    id,
    id.slice(0, 12),
    `podman:${id}`,
  ];
  let resolvers: EngineResolvers;

  beforeAll(async () => {
    webId = rootlessPodmanRun(web, { hostname: `${web}-h` }, created);
    idleId = rootlessPodmanRun(idle, { createOnly: true }, created);
    webPid = Number(rootlessPodmanInspect(web, '{{.State.Pid}}'));
    driver = rootlessPodman(['info', '--format', '{{.Store.GraphDriverName}}']);
    resolvers = engineResolvers([nativeModule, podmanEngineModule]);
    await resolvers.registry.start();
    await resolvers.registry.ready();
  }, 120000);

  afterAll(async () => {
    await resolvers?.registry.stop();
    removeRootlessPodmanContainers(created);
  }, 120000);

  const croot = (): EngineResolvers => resolvers;

  it('runs the container as the user, in the user\'s store at the default rootless paths', () => {
    const uid = rootlessUid();
    expect(webPid).toBeGreaterThan(0);
    expect(readFileSync(`/proc/${webPid}/status`, 'utf8')).toMatch(new RegExp(`^Uid:\\s+${uid}\\s`, 'm'));
    expect(rootlessPodman(['info', '--format', '{{.Store.GraphRoot}} {{.Store.RunRoot}}'])).toBe(
      `/home/${ROOTLESS_USER}/.local/share/containers/storage /run/user/${uid}/containers`,
    );
  });

  it('lists both containers as the user\'s, with podman\'s ids and names', async () => {
    const { registry } = croot();
    const mine = (await registry.start(), await registry.ready(), registry.containers()).filter((r) => r.id === webId || r.id === idleId);
    expect(mine.map((r) => ({ id: r.id, source: r.source, running: r.running, names: r.names })).sort((a, b) => a.id.localeCompare(b.id))).toEqual(
      [
        { id: webId, source: `rootless:${ROOTLESS_USER}`, running: true, names: recordNames(web) },
        { id: idleId, source: `rootless:${ROOTLESS_USER}`, running: false, names: recordNames(idle) },
      ].sort((a, b) => a.id.localeCompare(b.id)),
    );
    expect(registry.statuses()[0]?.reason).toContain(`rootless:${ROOTLESS_USER}: read /home/${ROOTLESS_USER}/.local/share/containers/storage/${driver}-containers/containers.json`);
  });

  it('gives the PID podman inspect reports by every name croot gives a rootless container', async () => {
    const { pids } = croot();
    for (const name of namesOf(web, webId)) {
      await expect(settle(() => pids.resolveProcessId(name)).then((pid) => [name, pid])).resolves.toEqual([name, webPid]);
    }
  });

  it('records the hostname podman configured, which the container\'s UTS namespace holds', async () => {
    const record = await croot().registry.lookup(`${ROOTLESS_USER}/${web}`);
    expect(record.hostname).toBe(rootlessPodmanInspect(web, '{{.Config.Hostname}}'));
    expect(record.hostname).toBe(await waitForHostname(webPid, `${web}-h`));
  });

  it('gives the cgroup the host\'s /proc/PID/cgroup shows', async () => {
    const answer = await croot().cgroups.resolveCGroupName(`${ROOTLESS_USER}/${web}`);
    expect(answer.pid).toBe(webPid);
    expect(answer.value).toBe(cgroupTruth(webPid));
  });

  it('refuses the created container with ERR_NOT_RUNNING by each of its names', async () => {
    const { pids } = croot();
    for (const name of [idle, `${ROOTLESS_USER}/${idle}`, `${ROOTLESS_USER}_${idle}`, `podman:${idleId}`]) {
      await expect(settle(() => pids.resolveProcessId(name))).rejects.toMatchObject({ code: 'ERR_NOT_RUNNING' });
    }
  });

  it('records the states podman reports', async () => {
    const { registry } = croot();
    expect([(await registry.lookup(webId)).state, (await registry.lookup(idleId)).state]).toEqual([
      rootlessPodmanInspect(web, '{{.State.Status}}'),
      rootlessPodmanInspect(idle, '{{.State.Status}}'),
    ]);
  });

  it('follows create, start, stop, start, restart, rename and remove as the user does them', async () => {
    await followLifecycle({
      registry: croot().registry,
      pids: croot().pids,
      podman: (args) => rootlessPodman(args),
      name: `croot-t-${tag}-rllife`,
      renamed: `croot-t-${tag}-rllife2`,
      created,
      extra: ['--network', 'none'],
      namesOf: recordNames,
    });
  }, 180000);

  describe('through the built crootd', () => {
    let work: string;
    let crootd: CrootdProcess | undefined;
    let socketPath: string;

    beforeAll(async () => {
      work = makeTempDir('croot-rootless-');
      socketPath = join(work, 'root.socket');
      crootd = await startCrootd({ socketPath, logPath: join(work, 'crootd.log') });
    }, 60000);

    afterAll(async () => {
      try {
        if (crootd !== undefined) await crootd.stop('SIGTERM', 5000);
      } finally {
        if (work !== undefined) rmSync(work, { recursive: true, force: true });
      }
    }, 30000);

    it('gives croot\'s RootClient the hostname, PID and cgroup by every name, and ERR_NOT_RUNNING for the created one', async () => {
      const client = await RootClient.connect(socketPath);
      try {
        const truth = { hostname: await waitForHostname(webPid, `${web}-h`), pid: webPid, cgroup: cgroupTruth(webPid) };
        for (const name of namesOf(web, webId)) {
          const answer = { name, hostname: await client.hostname(name), pid: await client.processId(name), cgroup: await client.cgroupName(name) };
          expect(answer).toEqual({ name, ...truth });
        }
        await expect(client.processId(`${ROOTLESS_USER}/${idle}`)).rejects.toMatchObject({ code: 'ERR_NOT_RUNNING' });
      } finally {
        client.close();
      }
    });
  });
});
