/**
 * `npm run bench` (node dist/bench/run.js): runs croot's benchmarks one after
 * the other, prints each result table on stdout (progress on stderr), and
 * with `--out FILE` writes every number as JSON. Talks only to unix sockets
 * in temp folders on this machine; stops by itself (bounded request counts,
 * a cap per case, a watchdog for the whole run).
 *
 *   node dist/bench/run.js [--only NAME[,NAME...]] [--scale X] [--out FILE] [--quiet]
 */
import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { stopAllChildren } from './bench-processes.js';
import { machineInfo, renderTable, type Benchmark, type BenchmarkResult } from './benchmark.js';
import { crootdVsPmdarootBenchmark } from './crootd-vs-pmdaroot-benchmark.js';
import { nameMatchingBenchmark } from './name-matching-benchmark.js';
import { procReadsBenchmark } from './proc-reads-benchmark.js';
import { serverRoundTripsBenchmark } from './server-round-trips-benchmark.js';

const BENCHMARKS: readonly Benchmark[] = [nameMatchingBenchmark, procReadsBenchmark, serverRoundTripsBenchmark, crootdVsPmdarootBenchmark];

/** The whole run is stopped (children killed and reaped) after this long. */
const WATCHDOG_MS = 180_000;

interface Options {
  only: string[] | undefined;
  scale: number;
  out: string | undefined;
  quiet: boolean;
}

function usage(): string {
  return [
    'usage: node dist/bench/run.js [--only NAME[,NAME...]] [--scale X] [--out FILE] [--quiet]',
    `  --only    run only these benchmarks: ${BENCHMARKS.map((b) => b.name).join(', ')}`,
    '  --scale   multiply every request count by X (default 1; 0.1 for a smoke run)',
    '  --out     also write the results as JSON to FILE',
    '  --quiet   no progress lines on stderr',
  ].join('\n');
}

function parseArgs(argv: readonly string[]): Options {
  const options: Options = { only: undefined, scale: 1, out: undefined, quiet: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value\n${usage()}`);
      return v;
    };
    switch (flag) {
      case '--only':
        options.only = value().split(',').map((s) => s.trim()).filter(Boolean);
        break;
      case '--scale': {
        const scale = Number(value());
        if (!(scale > 0 && scale <= 10)) throw new Error('--scale wants a number in (0, 10]');
        options.scale = scale;
        break;
      }
      case '--out':
        options.out = value();
        break;
      case '--quiet':
        options.quiet = true;
        break;
      case '--help':
      case '-h':
        process.stdout.write(`${usage()}\n`);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${arg}\n${usage()}`);
    }
  }
  for (const name of options.only ?? []) {
    if (!BENCHMARKS.some((b) => b.name === name)) throw new Error(`no benchmark named ${name}\n${usage()}`);
  }
  return options;
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  const machine = machineInfo();
  const out = (text: string): void => {
    process.stdout.write(text);
  };
  out(`croot benchmarks, ${machine.date}\n`);
  out(`machine: ${machine.host}, ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB, Linux ${machine.kernel}, Node ${machine.node}, uid ${machine.uid}\n`);
  out(`load average at start: ${machine.loadAverage.join(' ')}\n\n`);
  const context = {
    scale: options.scale,
    progress: (line: string): void => {
      if (!options.quiet) process.stderr.write(`  ${line}\n`);
    },
  };
  const results: BenchmarkResult[] = [];
  let failed = 0;
  for (const benchmark of BENCHMARKS) {
    if (options.only !== undefined && !options.only.includes(benchmark.name)) continue;
    const begin = process.hrtime.bigint();
    let result: BenchmarkResult;
    try {
      const { rows, notes } = await benchmark.run(context);
      result = { name: benchmark.name, title: benchmark.title, rows, notes, seconds: elapsed(begin) };
    } catch (err) {
      failed++;
      result = { name: benchmark.name, title: benchmark.title, rows: [], notes: [`FAILED: ${err instanceof Error ? err.stack ?? err.message : String(err)}`], seconds: elapsed(begin) };
    }
    results.push(result);
    out(`== ${result.title} [${result.name}, ${result.seconds} s]\n`);
    out(renderTable(result.rows));
    for (const note of result.notes) out(`- ${note}\n`);
    out('\n');
  }
  out(`load average at end: ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
  if (options.out !== undefined) {
    writeFileSync(options.out, `${JSON.stringify({ machine, scale: options.scale, results }, null, 2)}\n`);
    process.stderr.write(`results written to ${options.out}\n`);
  }
  return failed === 0 ? 0 : 1;
}

function elapsed(begin: bigint): number {
  return Math.round(Number(process.hrtime.bigint() - begin) / 1e7) / 100;
}

const watchdog = setTimeout(() => {
  process.stderr.write(`benchmarks still running after ${WATCHDOG_MS / 1000} s: stopping\n`);
  void stopAllChildren().finally(() => process.exit(2));
}, WATCHDOG_MS);

main().then(
  async (code) => {
    clearTimeout(watchdog);
    await stopAllChildren();
    process.exit(code);
  },
  async (err: unknown) => {
    clearTimeout(watchdog);
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    await stopAllChildren();
    process.exit(2);
  },
);
