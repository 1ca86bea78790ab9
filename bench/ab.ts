/**
 * A quick A/B for a change under way, where the full run (`npm run bench`)
 * takes ten minutes: one or more crootd builds, the Node floor and the C
 * floor on the same synthetic on-disk Docker containers (real processes,
 * as in the full run), driven by PCP's C client in interleaved rounds, so
 * that a moment of load hits every server alike. Prints, per server, the
 * medians over the rounds of its p50 (µs; req/s with several clients) and
 * its CPU per request, each also as a ratio to the Node floor's.
 *
 *   node dist/bench/ab.js [--crootd PATH]... [--size N] [--op processid|hostname|cgroup]
 *                         [--clients N] [--rounds N] [--ms N] [--node-flags "FLAGS"]
 *
 * Two `--crootd` give an A/B of two builds (another checkout's
 * `bin/crootd`, or its `dist/bin/crootd.js`); `--node-flags` runs every
 * crootd under `node FLAGS` (`--perf-basic-prof` for `perf`, say), in
 * place of the flags of bin/crootd's first line. Needs root and PCP's
 * client library, as the full run does.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { cleanUp, killChildrenSync } from './bench-processes.js';
import { buildCHelpers, CHECKOUT } from './c-helpers.js';
import { DockerTree, type TreeContainer } from './docker-tree.js';
import { InitProcesses } from './init-processes.js';
import { runLoad, type Expectation, type LoadResult, type RequestOp } from './load-clients.js';
import { cgroupPaths } from './real-containers.js';
import { startCrootd, startFloor, type RunningServer } from './servers.js';
import { crootOnDiskEnv } from './synthetic-scenario.js';

interface Options {
  crootd: string[];
  size: number;
  op: RequestOp;
  clients: number;
  rounds: number;
  ms: number;
  nodeFlags: string;
}

/** An integer option of at least `min`, for commander. */
function integerAtLeast(min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`an integer of at least ${min}`);
    return n;
  };
}

function parse(argv: readonly string[]): Options {
  const program = new Command('ab')
    .description('crootd builds against the Node floor and the C floor, on synthetic on-disk Docker containers, in interleaved rounds')
    .addOption(new Option('--crootd <path>', 'a crootd to measure (repeat for an A/B)').argParser((v: string, all: string[]) => [...all, resolve(v)]).default([], "this checkout's bin/crootd"))
    .option('--size <n>', 'synthetic containers', integerAtLeast(1), 10)
    .addOption(new Option('--op <op>', 'the request').choices(['processid', 'hostname', 'cgroup']).default('processid'))
    .option('--clients <n>', "PCP clients at once", integerAtLeast(1), 1)
    .option('--rounds <n>', 'rounds', integerAtLeast(1), 5)
    .option('--ms <n>', 'milliseconds of load per server and round', integerAtLeast(100), 1500)
    .option('--node-flags <flags>', "run every crootd under `node FLAGS`", '')
  program.parse(argv, { from: 'user' });
  const o = program.opts<Options>();
  if (o.crootd.length === 0) o.crootd.push(join(CHECKOUT, 'bin', 'crootd'));
  for (const path of o.crootd) if (!existsSync(path)) throw new Error(`no crootd at ${path}`);
  return o;
}

/**
 * A launcher for `crootd`: itself when it is an executable and no flags are
 * given; else `node FLAGS crootd` (bin/crootd is JavaScript too; its
 * shebang's own node flags then give way to FLAGS).
 */
function launcher(dir: string, crootd: string, flags: string): string {
  if (!crootd.endsWith('.js') && flags === '') return crootd;
  const path = join(dir, 'crootd');
  writeFileSync(path, `#!/bin/sh\nexec ${process.execPath} ${flags} ${crootd} "$@"\n`);
  chmodSync(path, 0o755);
  return path;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1] ?? NaN;
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const work = mkdtempSync(join(tmpdir(), 'croot-ab-'));
  const treeRoot = existsSync('/dev/shm') ? '/dev/shm' : work;
  const treeDir = mkdtempSync(join(treeRoot, 'croot-ab-'));
  const helpers = buildCHelpers(work);
  if (typeof helpers.pcpLoadClient !== 'string') throw new Error(helpers.pcpLoadClient.missing);
  const client = helpers.pcpLoadClient;
  const init = new InitProcesses(helpers.initProcesses);
  const servers: { label: string; server: RunningServer }[] = [];
  try {
    const tree = new DockerTree(treeDir);
    const procs = await init.spawn(o.size, 'ab-host');
    const containers: TreeContainer[] = procs.map((p, i) => ({ id: tree.newId(), name: `ab-${i}`, hostname: p.hostname, pid: p.pid, startTicks: p.startTicks, running: true }));
    for (const c of containers) tree.write(c);
    const known = containers[Math.floor((7 * o.size) / 8)] as TreeContainer;
    const cgroup = cgroupPaths(known.pid)[0] ?? '';
    const refs: Expectation[] = [
      { name: known.name, pid: known.pid, mode: o.op === 'processid' ? 'any' : 'eq', values: o.op === 'hostname' ? [known.hostname] : o.op === 'cgroup' ? [cgroup] : [] },
    ];
    for (const [i, crootd] of o.crootd.entries()) {
      const dir = join(work, `crootd-${i}`);
      mkdirSync(dir);
      const label = o.crootd.length === 1 ? 'crootd' : `crootd ${String.fromCharCode(65 + i)} (${basename(resolve(crootd, '..', '..'))})`;
      servers.push({ label, server: await startCrootd({ crootd: launcher(dir, crootd, o.nodeFlags), dir, config: {}, env: crootOnDiskEnv(tree.dockerDir, dir) }, known, 120000) });
    }
    const floors = join(work, 'floors');
    mkdirSync(join(floors, 'node'), { recursive: true });
    mkdirSync(join(floors, 'c'));
    servers.push({ label: 'Node floor', server: await startFloor('node', helpers.cFloorServer, join(floors, 'node'), known.pid, known.hostname, cgroup) });
    servers.push({ label: 'C floor', server: await startFloor('c', helpers.cFloorServer, join(floors, 'c'), known.pid, known.hostname, cgroup) });

    const results = new Map<string, LoadResult[]>(servers.map((s) => [s.label, []]));
    for (let round = 0; round < o.rounds; round++) {
      for (const { label, server } of servers) {
        const result = await runLoad({
          label,
          kind: 'pcp-c',
          program: client,
          socket: server.socket,
          op: o.op,
          refs,
          clients: o.clients,
          durationMs: o.ms,
          maxCalls: 100_000_000,
          minCalls: 100,
          capMs: o.ms * 4,
          warmupCalls: 500,
          serverPid: server.pid,
          workDir: work,
        });
        if (result.wrong > 0) throw new Error(`${label}: ${result.wrong} wrong answers (first: ${result.firstWrong})`);
        results.get(label)?.push(result);
      }
      process.stderr.write(`round ${round + 1} of ${o.rounds} done\n`);
    }

    const speed = (r: LoadResult): number => (o.clients > 1 ? r.reqPerSec : r.p50Us);
    const unit = o.clients > 1 ? 'req/s' : 'p50 µs';
    const floor = results.get('Node floor') ?? [];
    const floorSpeed = median(floor.map(speed));
    const floorCpu = median(floor.map((r) => r.cpuUsPerReq));
    process.stdout.write(`${o.size} on-disk containers, ${o.op} by name, ${o.clients} PCP client(s), ${o.rounds} rounds of ${o.ms} ms; medians\n`);
    process.stdout.write(`${'server'.padEnd(28)} ${unit.padStart(10)} ${'/ Node floor'.padStart(13)} ${'CPU µs/req'.padStart(11)} ${'/ Node floor'.padStart(13)}\n`);
    for (const [label, list] of results) {
      const s = median(list.map(speed));
      const cpu = median(list.map((r) => r.cpuUsPerReq));
      process.stdout.write(`${label.padEnd(28)} ${s.toFixed(1).padStart(10)} ${(s / floorSpeed).toFixed(3).padStart(12)}× ${cpu.toFixed(1).padStart(11)} ${(cpu / floorCpu).toFixed(3).padStart(12)}×\n`);
    }
  } finally {
    for (const { server } of servers) await server.stop();
    await init.stop();
    rmSync(treeDir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
}

process.on('exit', killChildrenSync);
main()
  .then(() => cleanUp())
  .then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`ab: ${err instanceof Error ? err.message : String(err)}\n`);
      void cleanUp().finally(() => process.exit(1));
    },
  );
