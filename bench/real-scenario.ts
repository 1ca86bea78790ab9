/** The real scenario: three Docker containers (and one of each other engine there is), asked about and changed. */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { onCleanup as registerCleanup } from './bench-processes.js';
import { timeChange, type ExpectedAnswer } from './change-latency.js';
import { measureCliStartup } from './cli-startup.js';
import { cgroupPaths, engineMissing, inspectContainer, kernelHostname, removeContainer, runningCounts, startContainer, stopContainer, run, type EngineName } from './real-containers.js';
import type { ScenarioResult } from './results.js';
import { idleAndWarm, measureLookups, plans, scenarioServers, startPair, stopPair, type Pair, type Tools, type Truth } from './scenarios.js';

async function truthOf(engine: EngineName, name: string): Promise<Truth> {
  const c = await inspectContainer(engine, name);
  if (!(c.pid > 0)) throw new Error(`${engine} container ${name} is not running`);
  return { name, id: c.id, pid: c.pid, hostname: await kernelHostname(c.pid), cgroups: cgroupPaths(c.pid) };
}

export async function realScenario(tools: Tools, withPcp: boolean): Promise<ScenarioResult> {
  const s = tools.settings;
  const begin = Date.now();
  const tag = `croot-bench-${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
  const result: ScenarioResult = { kind: 'real', containers: 3, label: '3 real', servers: {}, lookups: [], changes: [], notes: [], seconds: 0 };
  const dir = mkdtempSync(join(tools.work, 'real-'));
  let pair: Pair | undefined;
  try {
    const why = await engineMissing('docker');
    if (why !== undefined) throw new Error(`Docker is not usable: ${why}`);
    const others: EngineName[] = [];
    for (const engine of s.otherEngines) {
      const missing = await engineMissing(engine);
      if (missing === undefined) others.push(engine);
      else result.notes.push(`${engine} skipped: ${missing}`);
    }
    tools.progress(`3 real: starting 3 Docker containers${others.length ? ` and one each of ${others.join(', ')}` : ''} (${tag}-*)`);
    const docker: Truth[] = [];
    for (let i = 1; i <= 3; i++) {
      await startContainer('docker', `${tag}-${i}`, `${tag}-${i}-host`);
      docker.push(await truthOf('docker', `${tag}-${i}`));
    }
    const extra = new Map<EngineName, Truth>();
    for (const engine of others) {
      const name = `${tag}-${engine === 'podman' ? 'p' : 'c'}`;
      await startContainer(engine, name, `${name}-host`);
      extra.set(engine, await truthOf(engine, name));
    }
    result.notes.push(`Containers running on the host during the run (others' included): ${await runningCounts()}.`);
    const target = docker[0] as Truth;
    const crootEnv: Record<string, string> = {};
    pair = await startPair(tools, dir, target, crootEnv, withPcp ? {} : undefined, false);
    const { measures, callMs } = await idleAndWarm(tools, pair, [target]);
    const list = plans(tools, 'docker', [target], withPcp, true, true);
    for (const [engine, truth] of extra) list.push(...plans(tools, engine, [truth], withPcp && engine !== 'containerd', false));
    await measureLookups(tools, pair, list, callMs, '3 real', result.lookups);
    result.servers = scenarioServers(pair, measures);

    tools.progress(`  3 real: the CLI's start-up (${tools.croot}), ${s.cliRuns} runs of each command after ${s.cliWarmups} warm-up`);
    const cliDir = mkdtempSync(join(dir, 'cli-'));
    const cli = await measureCliStartup({
      croot: tools.croot,
      socket: pair.croot.socket,
      name: target.name,
      pid: target.pid,
      runs: s.cliRuns,
      warmups: s.cliWarmups,
      countModulesScript: tools.countModulesScript,
      work: cliDir,
      progress: tools.progress,
      wrong: tools.wrong,
    });
    result.cli = cli.measures;
    result.notes.push(...cli.notes);
    const after = await inspectContainer('docker', target.name);
    if (after.pid !== target.pid) tools.wrong(`CLI start-up: ${target.name}'s PID changed during the section (${target.pid} → ${after.pid})`);

    const servers = [pair.croot, ...(pair.pcp ? [pair.pcp] : [])];
    const time = async (engine: EngineName, event: string, name: string, change: () => Promise<void>, expected: () => Promise<ExpectedAnswer> | ExpectedAnswer): Promise<void> => {
      tools.progress(`  3 real: a ${engine} container ${event}`);
      const watched = engine === 'containerd' ? servers.filter((x) => x.role === 'croot') : servers;
      result.changes.push({ engine, event, results: await timeChange(watched, name, change, expected, { timeoutMs: s.changeTimeoutMs }) });
    };
    const pidOf = async (engine: EngineName, name: string): Promise<ExpectedAnswer> => ({ pid: (await inspectContainer(engine, name)).pid });
    for (const engine of ['docker', ...others] as EngineName[]) {
      const name = `${tag}-new-${engine === 'docker' ? 'd' : engine === 'podman' ? 'p' : 'c'}`;
      const events = engine === 'docker' ? s.events : s.events.filter((e) => e === 'created' || e === 'removed');
      let current = name;
      await time(engine, 'created', current, async () => void (await startContainer(engine, current, `${current}-host`)), () => pidOf(engine, current));
      if (events.includes('renamed')) {
        const renamed = `${name}-renamed`;
        onCleanup(engine, renamed);
        await time(engine, 'renamed', renamed, async () => void (await run('docker', ['rename', current, renamed])), () => pidOf(engine, renamed));
        current = renamed;
      }
      let pid = (await inspectContainer(engine, current)).pid;
      if (events.includes('stopped')) {
        const old = pid;
        await time(engine, 'stopped', current, () => stopContainer(engine, current), () => ({ gone: old }));
      }
      if (events.includes('restarted')) {
        await time(engine, 'restarted', current, async () => void (await run('docker', ['start', current])), () => pidOf(engine, current));
        pid = (await inspectContainer(engine, current)).pid;
      }
      const last = pid;
      await time(engine, 'removed', current, () => removeContainer(engine, current), () => ({ gone: last }));
    }
  } catch (err) {
    result.error = (err as Error).message;
    tools.progress(`3 real: FAILED: ${result.error}`);
  } finally {
    if (pair) await stopPair(pair);
    rmSync(dir, { recursive: true, force: true });
  }
  return { ...result, seconds: Math.round((Date.now() - begin) / 100) / 10 };
}

/** Registers a container name for removal at the end (a renamed container keeps its new name). */
function onCleanup(engine: EngineName, name: string): void {
  registerCleanup(`${engine} container ${name}`, () => removeContainer(engine, name));
}
