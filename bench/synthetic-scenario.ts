/** The synthetic scenario: N containers in an on-disk Docker tree, each with a real init process. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { timeChange, type ExpectedAnswer } from './change-latency.js';
import { DockerTree, type TreeContainer } from './docker-tree.js';
import { InitProcesses } from './init-processes.js';
import { cgroupPaths } from './real-containers.js';
import type { ScenarioResult } from './results.js';
import { idleAndWarm, measureLookups, plans, scenarioServers, startPair, stopPair, type Pair, type Settings, type Tools, type Truth } from './scenarios.js';

/** crootd's environment for an on-disk tree: no Docker daemon, every other engine pointed at something empty. */
export function crootOnDiskEnv(dockerDir: string, dir: string): Record<string, string> {
  const empty = join(dir, 'empty');
  mkdirSync(empty, { recursive: true });
  const passwd = join(dir, 'passwd');
  writeFileSync(passwd, '');
  return {
    PCP_DOCKER_DIR: dockerDir,
    DOCKER_HOST: `unix://${join(dir, 'no-docker.sock')}`,
    PCP_PODMAN_DATADIR: empty,
    PCP_PODMAN_RUNDIR: empty,
    CROOT_PODMAN_SOCKET: join(dir, 'no-podman.sock'),
    CROOT_CONTAINERS_STORAGE_CONF: '',
    CROOT_PASSWD_FILE: passwd,
    CROOT_PODMAN_USER_RUNDIR: empty,
    CROOT_CONTAINERD_TASK_DIR: empty,
    CROOT_CONTAINERD_RUNC_ROOT: empty,
    PCP_LXC_DIR: empty,
  };
}

/**
 * N containers in an on-disk Docker tree, each with a real init process.
 * The tree lives on a tmpfs when the machine has one: both servers read it
 * from the page cache either way, and writing and removing 10 000 folders
 * on a shared disk is slow.
 */
export async function syntheticScenario(tools: Tools, count: number, withPcp: boolean): Promise<ScenarioResult> {
  const s = tools.settings;
  const begin = Date.now();
  const label = `${count} on disk`;
  const result: ScenarioResult = { kind: 'synthetic', containers: count, label, servers: {}, lookups: [], changes: [], notes: [], seconds: 0 };
  const dir = mkdtempSync(join(tools.work, `synthetic-${count}-`));
  const treeDir = mkdtempSync(join(tools.treeRoot, `docker-${count}-`));
  const init = new InitProcesses(tools.helpers.initProcesses);
  let pair: Pair | undefined;
  try {
    tools.progress(`${label}: starting ${count} init processes and writing the tree`);
    const t0 = Date.now();
    const tree = new DockerTree(treeDir);
    const procs = await init.spawn(count, 'synth-host');
    const containers: TreeContainer[] = procs.map((p, i) => ({ id: tree.newId(), name: `synth-${i}`, hostname: p.hostname, pid: p.pid, startTicks: p.startTicks, running: true }));
    for (const c of containers) tree.write(c);
    result.notes.push(`${count} processes started and ${count} container folders written in ${((Date.now() - t0) / 1000).toFixed(1)} s.`);
    const cg = cgroupPaths(procs[0]?.pid ?? process.pid);
    // Up to 8 containers spread over the tree are asked about, in turn.
    const k = Math.min(8, count);
    const truths: Truth[] = Array.from({ length: k }, (_, j) => containers[Math.floor((j * count) / k)] as TreeContainer).map((c) => ({
      name: c.name,
      id: c.id,
      pid: c.pid,
      hostname: c.hostname,
      cgroups: cg,
    }));
    const known = truths[truths.length - 1] as Truth;
    pair = await startPair(tools, dir, known, crootOnDiskEnv(tree.dockerDir, dir), withPcp ? { PCP_DOCKER_DIR: tree.dockerDir } : undefined, true);
    const { measures, callMs } = await idleAndWarm(tools, pair, truths);
    await measureLookups(tools, pair, plans(tools, 'docker', truths, withPcp, true), callMs, label, result.lookups);
    result.servers = scenarioServers(pair, measures);

    // Changes: a new container, renamed, stopped, restarted, removed; each as Docker writes it.
    const servers = [pair.croot, ...(pair.pcp ? [pair.pcp] : [])];
    const timeoutMs = Math.max(s.changeTimeoutMs, ...[...callMs.values()].map((ms) => ms * 4));
    const [first] = await init.spawn(1, 'synth-new');
    if (first === undefined) throw new Error('no process for the new container');
    let current: TreeContainer = { id: tree.newId(), name: `synth-new-${count}`, hostname: first.hostname, pid: first.pid, startTicks: first.startTicks, running: true };
    const step = async (event: string, name: string, change: () => Promise<void> | void, expected: () => ExpectedAnswer): Promise<void> => {
      if (!s.events.includes(event as Settings['events'][number])) return;
      tools.progress(`  ${label}: a container ${event}`);
      result.changes.push({ engine: 'docker', event, results: await timeChange(servers, name, change, expected, { timeoutMs }) });
    };
    await step('created', current.name, () => tree.write(current), () => ({ pid: current.pid }));
    if (s.events.includes('renamed')) {
      const renamed: TreeContainer = { ...current, name: `synth-renamed-${count}` };
      await step('renamed', renamed.name, () => tree.write((current = renamed)), () => ({ pid: current.pid }));
    }
    const oldPid = current.pid;
    if (s.events.includes('stopped')) {
      await step(
        'stopped',
        current.name,
        async () => {
          await init.kill(current.pid);
          tree.write((current = { ...current, running: false }));
        },
        () => ({ gone: oldPid }),
      );
    }
    if (s.events.includes('restarted')) {
      const [again] = await init.spawn(1, 'synth-again');
      if (again === undefined) throw new Error('no process for the restart');
      await step('restarted', current.name, () => tree.write((current = { ...current, pid: again.pid, startTicks: again.startTicks, running: true })), () => ({ pid: again.pid }));
    }
    const lastPid = current.pid;
    await step(
      'removed',
      current.name,
      async () => {
        if (current.running) await init.kill(current.pid);
        tree.remove(current.id);
      },
      () => ({ gone: lastPid }),
    );
  } catch (err) {
    result.error = (err as Error).message;
    tools.progress(`${label}: FAILED: ${result.error}`);
  } finally {
    if (pair) await stopPair(pair);
    tools.progress(`${label}: stopping the init processes, removing the tree`);
    await init.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(treeDir, { recursive: true, force: true });
  }
  return { ...result, seconds: Math.round((Date.now() - begin) / 100) / 10 };
}

