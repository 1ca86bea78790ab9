/**
 * crootd against PCP's own pmdaroot, like for like: both are separate
 * processes on private unix sockets reading the same Docker state from disk
 * (a PCP QA fixture; crootd's docker engine falls back to the files because
 * DOCKER_HOST points at a dead socket, and its other engines are disabled),
 * asked the same requests by the same client (RootClient over the Node
 * transport), one connection, one request at a time (pmdaroot is
 * single-threaded). Only requests both answer alike are timed side by side.
 *
 * Phase "as shipped": the fixture's init PID is not alive here. pmdaroot
 * still answers PROCESSID and CGROUPNAME from the files (pid, status 0);
 * croot answers -ESRCH (it checks /proc). Only misses (-12399 from both) are
 * comparable, so only they are timed.
 * Phase "live pid": a copy of the fixture whose State.Pid is a live `sleep`
 * in its own UTS namespace (and State.StartedAt its start), so both answer
 * PROCESSID and HOSTNAME alike.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CrootError } from '../core/errors.js';
import { nodeSocketTransport } from '../core/node-socket-transport.js';
import { RootClient } from '../core/root-client.js';
import { PMDAROOT, cpuTimeNs, startCrootd, startNamespacedSleeper, startPcpRoot, type StartedChild } from './bench-processes.js';
import type { Benchmark, BenchmarkContext, ResultRow } from './benchmark.js';
import { measureSequential } from './latency-stats.js';
import { REQUEST_TYPES, cgroupPaths } from './server-round-trips-benchmark.js';

const FIXTURE = 'containers-docker-1.12.6-root-006.tgz';

/** The checkout's root: where dist/ and test/fixtures/ are (this file runs from dist/bench/). */
function packageRoot(): string {
  for (const candidate of [resolve(__dirname, '..', '..'), resolve(__dirname, '..')]) {
    if (existsSync(join(candidate, 'package.json')) && existsSync(join(candidate, 'test', 'fixtures', 'pcp-qa'))) return candidate;
  }
  throw new Error(`cannot find the croot checkout (test/fixtures/pcp-qa) above ${__dirname}`);
}

function missing(root: string): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (pmdaroot and crootd serve root only; setns)';
  if (!existsSync(PMDAROOT)) return `PCP's pmdaroot is not installed (${PMDAROOT})`;
  if (!existsSync(join(root, 'dist', 'bin', 'crootd.js'))) return 'dist/bin/crootd.js is missing: run npm run build';
  return undefined;
}

/** What one request answered, as text both sides can be compared on. */
async function ask(client: RootClient, type: (typeof REQUEST_TYPES)[number][1], ref: string): Promise<string> {
  try {
    const answer = await client.containerQuery(type, ref);
    return `pid ${answer.pid}${answer.value !== '' ? ` "${answer.value}"` : ''}`;
  } catch (err) {
    if (err instanceof CrootError && err.status < 0) return `status ${err.status}`;
    throw err;
  }
}

interface Servers {
  readonly pcp: StartedChild;
  readonly croot: StartedChild;
  readonly pcpSocket: string;
  readonly crootSocket: string;
}

async function startBoth(root: string, work: string, dockerDir: string, tag: string): Promise<Servers> {
  const pcpSocket = join(work, `pmdaroot-${tag}.socket`);
  const crootSocket = join(work, `crootd-${tag}`, 'root.socket');
  const configPath = join(work, 'crootd.json');
  writeFileSync(configPath, JSON.stringify({ disabledEngines: ['podman', 'containerd', 'lxc', 'static'] }));
  const pcp = await startPcpRoot(pcpSocket, work, { PCP_DOCKER_DIR: dockerDir });
  try {
    const croot = await startCrootd(join(root, 'dist', 'bin', 'crootd.js'), crootSocket, configPath, {
      PCP_DOCKER_DIR: dockerDir,
      DOCKER_HOST: `unix://${join(work, 'no-docker.sock')}`,
    });
    return { pcp, croot, pcpSocket, crootSocket };
  } catch (err) {
    await pcp.stop();
    throw err;
  }
}

export const crootdVsPmdarootBenchmark: Benchmark = {
  name: 'crootd-vs-pmdaroot',
  title: "crootd vs PCP's pmdaroot (same fixture, same client, 1 connection, sequential)",
  async run(context: BenchmarkContext) {
    const root = packageRoot();
    const why = missing(root);
    if (why !== undefined) return { rows: [], notes: [`skipped: ${why}`] };
    const rows: ResultRow[] = [];
    const notes: string[] = [];
    const answers: string[] = [];
    const work = mkdtempSync(join(tmpdir(), 'croot-bench-vs-'));
    const count = Math.max(100, Math.round(2000 * context.scale));
    const bounds = { count, warmup: Math.min(200, count), capMs: 2000 };
    // Before any row is timed, each server answers this many requests of every kind (see the notes).
    const serverWarmup = Math.max(500, Math.round(6000 * context.scale));
    let sleeper: StartedChild | undefined;
    try {
      const tree = join(work, 'fixture');
      mkdirSync(tree);
      execFileSync('tar', ['-C', tree, '-xzf', join(root, 'test', 'fixtures', 'pcp-qa', FIXTURE)], { timeout: 60000 });
      const dockerDir = join(tree, 'var', 'lib', 'docker');
      const [id] = readdirSync(join(dockerDir, 'containers'));
      if (id === undefined) throw new Error(`${FIXTURE} holds no container`);
      const configFile = join(dockerDir, 'containers', id, 'config.v2.json');
      const config = JSON.parse(readFileSync(configFile, 'utf8')) as { Name: string; State: { Pid: number; StartedAt: string } };
      const name = config.Name.replace(/^\//, '');
      const refs: [string, string][] = [
        ['name', name],
        ['full id', id],
        ['12-digit id prefix', id.slice(0, 12)],
        ['miss', 'no-such-container'],
      ];

      /** Asks both servers every ref and type once; times the cases `timed` picks among those answered alike. */
      const phase = async (phaseName: string, servers: Servers, timed: (kind: string, type: string) => boolean): Promise<void> => {
        const pcp = await RootClient.connect(servers.pcpSocket, { transport: nodeSocketTransport });
        const croot = await RootClient.connect(servers.crootSocket, { transport: nodeSocketTransport });
        try {
          context.progress(`crootd-vs-pmdaroot: ${phaseName}, warming both servers up`);
          for (const client of [pcp, croot]) {
            for (let i = 0; i < serverWarmup; i++) {
              const [, ref] = refs[i % refs.length] as [string, string];
              const [, type] = REQUEST_TYPES[Math.floor(i / refs.length) % REQUEST_TYPES.length] as (typeof REQUEST_TYPES)[number];
              await ask(client, type, ref);
            }
          }
          for (const [kind, ref] of refs) {
            for (const [typeName, type] of REQUEST_TYPES) {
              const fromPcp = await ask(pcp, type, ref);
              const fromCroot = await ask(croot, type, ref);
              const same = fromPcp === fromCroot;
              answers.push(`${phaseName}, ${typeName} of ${kind}: pmdaroot ${fromPcp}; crootd ${fromCroot}${same ? '' : '  (differ: not timed)'}`);
              if (!same || !timed(kind, typeName)) continue;
              for (const [server, client, pid] of [
                ['pmdaroot', pcp, servers.pcp.pid],
                ['crootd', croot, servers.croot.pid],
              ] as const) {
                context.progress(`crootd-vs-pmdaroot: ${phaseName}, ${server}, ${typeName} of ${kind}`);
                let calls = 0;
                const cpuBefore = cpuTimeNs(pid);
                const stats = await measureSequential(bounds, async () => {
                  calls++;
                  const got = await ask(client, type, ref);
                  if (got !== fromPcp) throw new Error(`${server} answered ${typeName} of ${ref} with ${got}, first ${fromPcp}`);
                });
                const cpuUs = (cpuTimeNs(pid) - cpuBefore) / 1000 / calls;
                rows.push({
                  fixture: phaseName,
                  request: typeName,
                  reference: kind,
                  server,
                  answer: fromPcp,
                  requests: stats.count,
                  'req/s': stats.opsPerSecond,
                  'p50 µs': stats.p50Us,
                  'p99 µs': stats.p99Us,
                  'server CPU µs/req': Math.round(cpuUs),
                  capped: stats.capped,
                });
              }
            }
          }
        } finally {
          pcp.close();
          croot.close();
        }
      };

      // Phase 1: the fixture as shipped (its PID is not alive here).
      const shippedPidAlive = existsSync(`/proc/${config.State.Pid}`);
      if (shippedPidAlive) notes.push(`warning: the fixture's PID ${config.State.Pid} happens to be alive on this machine`);
      let servers = await startBoth(root, work, dockerDir, 'shipped');
      try {
        await phase('as shipped', servers, (kind) => kind === 'miss');
      } finally {
        await servers.pcp.stop();
        await servers.croot.stop();
      }

      // Phase 2: the same container, its State.Pid a live sleeper in its own UTS namespace.
      const hostname = `croot-b-${process.pid}-h`;
      sleeper = await startNamespacedSleeper(hostname);
      // Docker writes both; croot checks the PID's start time against StartedAt (30 s tolerance), PCP does not.
      config.State.Pid = sleeper.pid;
      config.State.StartedAt = new Date().toISOString();
      writeFileSync(configFile, JSON.stringify(config));
      servers = await startBoth(root, work, dockerDir, 'live');
      try {
        await phase('live pid', servers, (kind, type) => kind === 'name' || kind === 'miss' || (kind === 'full id' && type === 'PROCESSID'));
      } finally {
        await servers.pcp.stop();
        await servers.croot.stop();
      }
      notes.push(
        `Live-pid CGROUPNAME: /proc/${sleeper.pid}/cgroup of the sleeper names ${JSON.stringify([...new Set(cgroupPaths(sleeper.pid).filter((p) => p !== ""))])}: croot answers from there, pmdaroot builds its answer from the container id.`,
      );
    } finally {
      await sleeper?.stop();
      rmSync(work, { recursive: true, force: true });
    }
    notes.push(
      `Both servers are separate processes; the client (this process) is the same for both, so client cost is equal on each side.`,
      `Each phase starts fresh servers and first sends each ${serverWarmup} requests cycling through every request type and reference, untimed: crootd's JIT needs thousands of requests to settle (without this, its first rows used 2x the CPU per request of its last).`,
      `Per timed row: ${count} requests after ${Math.min(200, count)} warm-up requests, one connection, one at a time, cap 2 s. Every reply is checked against the first answer.`,
      `"server CPU µs/req": CPU time the server process used (all its threads, /proc/PID/task/*/schedstat) over the warm-up and timed requests of the row, divided by their number. It does not count the client, and moves less with the machine's load than the latencies do.`,
      `To keep the run short, the 12-digit id prefix is asked once (answers listed below) but not timed, and the full id is timed for PROCESSID only.`,
      `What each server answered (every request type and reference, once):`,
      ...answers.map((a) => `  ${a}`),
    );
    return { rows, notes };
  },
};
