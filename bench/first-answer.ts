/**
 * The start-up rows of the synthetic scenarios alone, for comparing builds:
 * for each size, one on-disk Docker tree whose PIDs are real processes (the
 * same tree and environment as `npm run bench`'s synthetic scenarios), then
 * rounds in which each crootd build given starts on it, the order turning
 * every round so a burst of load lands on every build alike. Each start
 * reports its first right answer (from spawn), the CPU time crootd had used
 * by then (its own threads, user and system: steadier than the wall time on
 * a loaded machine, where the wall time is mostly waiting for a CPU), and
 * its RSS after settling.
 *
 *   node dist/bench/first-answer.js --sizes 10,10000 --rounds 5 \
 *     --crootd bin/crootd --crootd /other/checkout/bin/crootd [--settle-ms 1000] [--prof-dir DIR]
 *
 * `--prof-dir` runs every crootd's `dist/bin/crootd.js` with `--cpu-prof`
 * (Node refuses it in NODE_OPTIONS), writing into DIR/b<build>-<size>-<round>/.
 * Needs root, as the benchmark does.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { cleanUp, cpuTimeNs, delay, killChildrenSync, onCleanup, rssMb } from './bench-processes.js';
import { buildCHelpers } from './c-helpers.js';
import { DockerTree, type TreeContainer } from './docker-tree.js';
import { InitProcesses } from './init-processes.js';
import { startCrootd } from './servers.js';
import { crootOnDiskEnv } from './synthetic-scenario.js';

interface Options {
  sizes: number[];
  rounds: number;
  crootds: string[];
  settleMs: number;
  profDir: string | undefined;
}

function parse(argv: readonly string[]): Options {
  const positive = (flag: string) => (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${flag} wants positive integers`);
    return n;
  };
  const program = new Command('first-answer')
    .description('the start-up rows of the synthetic scenarios, for comparing crootd builds')
    .option('--sizes <list>', 'container counts, comma-separated', (v: string) => v.split(',').map(positive('--sizes')), [10, 10000])
    .option('--rounds <n>', 'rounds', positive('--rounds'), 5)
    .addOption(new Option('--crootd <path>', 'a crootd build (repeat for several)').argParser((v: string, all: string[]) => [...all, resolve(v)]).default([], "this checkout's bin/crootd"))
    .option('--settle-ms <n>', 'wait before reading RSS', positive('--settle-ms'), 1000)
    .option('--prof-dir <dir>', "run each crootd's dist/bin/crootd.js with --cpu-prof, into DIR", (v: string) => resolve(v))
  program.parse(argv, { from: 'user' });
  const { sizes, rounds, crootd, settleMs, profDir } = program.opts<{ sizes: number[]; rounds: number; crootd: string[]; settleMs: number; profDir?: string }>();
  if (crootd.length === 0) crootd.push(resolve(__dirname, '..', '..', 'bin', 'crootd'));
  return { sizes, rounds, crootds: crootd, settleMs, profDir };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

async function main(): Promise<number> {
  const o = parse(process.argv.slice(2));
  const work = mkdtempSync(join(tmpdir(), 'croot-first-answer-'));
  onCleanup('temp folder', () => rmSync(work, { recursive: true, force: true }));
  const treeRoot = existsSync('/dev/shm') ? mkdtempSync(join('/dev/shm', 'croot-first-answer-')) : work;
  if (treeRoot !== work) onCleanup('tree folder', () => rmSync(treeRoot, { recursive: true, force: true }));
  const helpers = buildCHelpers(work);
  const out = (line: string): boolean => process.stdout.write(`${line}\n`);
  out(`load average at start: ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  for (const size of o.sizes) {
    const init = new InitProcesses(helpers.initProcesses);
    const treeDir = mkdtempSync(join(treeRoot, `docker-${size}-`));
    try {
      const tree = new DockerTree(treeDir);
      const procs = await init.spawn(size, 'fa-host');
      const containers: TreeContainer[] = procs.map((p, i) => ({ id: tree.newId(), name: `synth-${i}`, hostname: p.hostname, pid: p.pid, startTicks: p.startTicks, running: true }));
      for (const c of containers) tree.write(c);
      // The container the benchmark asks about first (the last of its eight).
      const known = containers[Math.floor((7 * size) / 8)] ?? (containers[containers.length - 1] as TreeContainer);
      const samples = new Map<string, { ms: number[]; cpu: number[]; rss: number[] }>(o.crootds.map((c) => [c, { ms: [], cpu: [], rss: [] }]));
      for (let round = 0; round < o.rounds; round++) {
        const order = o.crootds.map((_, i) => o.crootds[(i + round) % o.crootds.length] as string);
        for (const crootd of order) {
          const b = o.crootds.indexOf(crootd);
          const dir = mkdtempSync(join(work, `run-${size}-`));
          const env = crootOnDiskEnv(tree.dockerDir, dir);
          let program = crootd;
          if (o.profDir !== undefined) {
            const prof = join(o.profDir, `b${b}-${size}-${round}`);
            mkdirSync(prof, { recursive: true });
            // bin/crootd's own flag, and the profile.
            program = join(dir, 'crootd-profiled');
            const script = join(dirname(crootd), '..', 'dist', 'bin', 'crootd.js');
            writeFileSync(program, `#!/bin/sh\nexec ${process.execPath} --max-semi-space-size=1 --cpu-prof --cpu-prof-dir=${prof} ${script} "$@"\n`);
            chmodSync(program, 0o755);
          }
          const server = await startCrootd({ crootd: program, dir: join(dir, 'croot'), config: {}, env }, known, 120000);
          const cpuMs = cpuTimeNs(server.pid) / 1e6;
          await delay(o.settleMs);
          const rss = rssMb(server.pid);
          await server.stop();
          const s = samples.get(crootd) as { ms: number[]; cpu: number[]; rss: number[] };
          s.ms.push(server.firstAnswerMs);
          s.cpu.push(cpuMs);
          s.rss.push(rss);
          out(
            `${size}\tround ${round}\tb${b}\tfirst answer ${(server.firstAnswerMs / 1000).toFixed(3)} s\tCPU ${(cpuMs / 1000).toFixed(3)} s\t` +
              `RSS ${rss.toFixed(1)} MB\tload ${loadavg()[0]?.toFixed(1)}`,
          );
          rmSync(dir, { recursive: true, force: true });
        }
      }
      for (const [crootd, s] of samples) {
        const b = o.crootds.indexOf(crootd);
        out(
          `${size} containers, b${b} ${crootd}: first answer median ${(median(s.ms) / 1000).toFixed(3)} s ` +
            `(min ${(Math.min(...s.ms) / 1000).toFixed(3)}, max ${(Math.max(...s.ms) / 1000).toFixed(3)}); ` +
            `CPU by then median ${(median(s.cpu) / 1000).toFixed(3)} s (min ${(Math.min(...s.cpu) / 1000).toFixed(3)}, max ${(Math.max(...s.cpu) / 1000).toFixed(3)}); ` +
            `RSS median ${median(s.rss).toFixed(1)} MB (min ${Math.min(...s.rss).toFixed(1)}, max ${Math.max(...s.rss).toFixed(1)})`,
        );
      }
    } finally {
      await init.stop();
      rmSync(treeDir, { recursive: true, force: true });
    }
  }
  out(`load average at end: ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  return 0;
}

process.on('exit', killChildrenSync);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void cleanUp().then(() => process.exit(130)));
main()
  .then(
    (code) => cleanUp().then(() => code),
    async (err: unknown) => {
      process.stderr.write(`first-answer: ${(err as Error).stack ?? String(err)}\n`);
      await cleanUp();
      return 1;
    },
  )
  .then((code) => process.exit(code));
