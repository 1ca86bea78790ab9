/**
 * `npm run bench` (node dist/bench/run.js): crootd side by side with PCP's
 * pmdaroot, as the table of record of docs/benchmarks.md.
 *
 *   node dist/bench/run.js [--quick] [--crootd PATH] [--croot PATH] [--sizes real,10,100,1000,10000]
 *                          [--no-pcp] [--no-plot] [--out-dir DIR] [--quiet]
 *   node dist/bench/run.js --report bench/results/NAME.json   (render a saved run again)
 *
 * Prints the table (Markdown) on stdout and progress on stderr; writes
 * bench/results/<date>.json, .md and .png, and copies them to latest.*.
 * Everything it starts (servers, clients, processes, containers, temp
 * folders) is ended and removed at the end, on failure, on SIGINT/SIGTERM,
 * and by its watchdog.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, hostname, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { PMDAROOT, cleanUp, killChildrenSync, onCleanup } from './bench-processes.js';
import { CHECKOUT, buildCHelpers } from './c-helpers.js';
import { writePlot } from './plot.js';
import { buildTable, renderCli, renderFloors, renderHeadline, renderMarkdown, rowErrors, summarize } from './report.js';
import type { RunResult, ScenarioResult } from './results.js';
import { realScenario } from './real-scenario.js';
import { measureFloors, startLiveFloor, type Settings, type Tools } from './scenarios.js';
import { syntheticScenario } from './synthetic-scenario.js';

interface Options {
  quick: boolean;
  crootd: string;
  /** The croot CLI timed in the real scenario; undefined: the one beside `crootd`. */
  croot: string | undefined;
  sizes: (number | 'real')[] | undefined;
  pcp: boolean;
  plot: boolean;
  outDir: string;
  quiet: boolean;
  /** Render a saved run (its .json) again instead of measuring. */
  report: string | undefined;
}

const FULL: Settings = {
  quick: false,
  rowMs: 1000,
  maxCalls: 20000,
  minCalls: 10,
  rowCapMs: 10000,
  warmupCalls: 100,
  serverWarmupMs: 700,
  settleMs: 1000,
  idleMs: 10000,
  clientCounts: [1, 4, 8],
  changeTimeoutMs: 10000,
  lookupBudgetMs: 60000,
  events: ['created', 'renamed', 'stopped', 'restarted', 'removed'],
  firstAnswerTimeoutMs: 120000,
  otherEngines: ['podman', 'containerd'],
  cliRuns: 7,
  cliWarmups: 1,
};

const QUICK: Settings = {
  ...FULL,
  quick: true,
  rowMs: 150,
  maxCalls: 5000,
  minCalls: 3,
  rowCapMs: 2000,
  warmupCalls: 30,
  serverWarmupMs: 200,
  settleMs: 300,
  idleMs: 2000,
  clientCounts: [1, 8],
  changeTimeoutMs: 5000,
  lookupBudgetMs: 20000,
  events: ['created', 'removed'],
  otherEngines: [],
  cliRuns: 3,
};

const DEFAULT_SIZES: readonly (number | 'real')[] = ['real', 10, 100, 1000, 10000];
const QUICK_SIZES: readonly (number | 'real')[] = ['real', 10, 100];

function usage(): string {
  return [
    'usage: node dist/bench/run.js [options]',
    '  --quick          a smoke run: 3 real containers, 10 and 100 on disk, short rows (1–2 minutes)',
    '  --crootd PATH    the crootd to measure (default: this checkout\'s bin/crootd); another build\'s bin/crootd works',
    '  --croot PATH     the croot CLI whose start-up is timed (default: the croot beside --crootd)',
    '  --sizes LIST     scenarios, e.g. real,10,1000 (default real,10,100,1000,10000)',
    '  --no-pcp         leave PCP\'s pmdaroot out even when it is installed',
    '  --no-plot        no PNG',
    '  --out-dir DIR    where results go (default bench/results of this checkout)',
    '  --quiet          no progress lines on stderr',
    '  --report FILE    render a saved run (bench/results/*.json) again: FILE\'s .md and .png, no measuring',
  ].join('\n');
}

function parseArgs(argv: readonly string[]): Options {
  const o: Options = {
    quick: false,
    crootd: join(CHECKOUT, 'bin', 'crootd'),
    croot: undefined,
    sizes: undefined,
    pcp: true,
    plot: true,
    outDir: join(CHECKOUT, 'bench', 'results'),
    quiet: false,
    report: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      const v = eq > 0 ? arg.slice(eq + 1) : argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value\n${usage()}`);
      return v;
    };
    switch (flag) {
      case '--quick':
        o.quick = true;
        break;
      case '--crootd':
        o.crootd = resolve(value());
        break;
      case '--croot':
        o.croot = resolve(value());
        break;
      case '--sizes':
        o.sizes = value()
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
          .map((s) => {
            if (s === 'real') return 'real';
            const n = Number(s);
            if (!Number.isInteger(n) || n < 1 || n > 20000) throw new Error(`--sizes: ${s} is not "real" or a count of 1..20000`);
            return n;
          });
        break;
      case '--no-pcp':
        o.pcp = false;
        break;
      case '--no-plot':
        o.plot = false;
        break;
      case '--out-dir':
        o.outDir = resolve(value());
        break;
      case '--quiet':
        o.quiet = true;
        break;
      case '--report':
        o.report = resolve(value());
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
  return o;
}

function quietExec(file: string, args: readonly string[], cwd?: string): string {
  try {
    return execFileSync(file, [...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], ...(cwd ? { cwd } : {}) }).trim();
  } catch {
    return '';
  }
}

/** Which build `crootd` is: the git commit of its checkout (and whether it has changes), else its path. */
function describeBuild(crootd: string): string {
  const dir = dirname(realpathSync(crootd));
  const commit = quietExec('git', ['rev-parse', '--short', 'HEAD'], dir);
  if (commit === '') return crootd;
  const dirty = quietExec('git', ['status', '--porcelain', '--untracked-files=no'], dir) !== '' ? '+changes' : '';
  return `${commit}${dirty}`;
}

function loads(): number[] {
  return loadavg().map((l) => Math.round(l * 100) / 100);
}

/** The CLI start-up table, when the run has one. */
function cliTable(run: RunResult): string[] {
  const table = renderCli(run);
  return table === '' ? [] : ['CLI start-up (wall time from spawn to exit, median of the timed runs; CPU of the child, mean):', '', table];
}

/** The croot beside `crootd` (bin/crootd → bin/croot, dist/bin/crootd.js → dist/bin/croot.js). */
function crootBeside(crootd: string): string {
  return join(dirname(crootd), crootd.endsWith('.js') ? 'croot.js' : 'croot');
}

/**
 * Writes BASE.md (and BASE.json when `withJson`, BASE.png when `plot`) for
 * `run`, and prints the Markdown. `--report FILE.json` uses it to render a
 * saved run again.
 */
async function writeReport(run: RunResult, base: string, plot: boolean, withJson: boolean): Promise<void> {
  const table = buildTable(run);
  const summary = summarize(table);
  const quick = run.options.quick === true;
  const markdown = [
    `crootd ${run.crootd.build}${run.croot !== undefined && run.croot.build !== run.crootd.build ? ` (croot CLI ${run.croot.build})` : ''} vs PCP ${run.pcp || '(none)'}; ${String(run.machine.date)}; ${String(run.machine.cpus)} CPUs${run.machine.usableCpus !== undefined && run.machine.usableCpus !== run.machine.cpus ? ` (all of it pinned to ${String(run.machine.usableCpus)})` : ''}, Linux ${String(run.machine.kernel)}, Node ${String(run.machine.node)}; load average ${run.loadAverage.start.join(' ')} at start, ${run.loadAverage.end.join(' ')} at end; ${run.seconds} s${quick ? '; --quick' : ''}`,
    '',
    'Headline:',
    '',
    renderHeadline(table),
    'All rows:',
    '',
    renderMarkdown(table),
    'Floors:',
    '',
    renderFloors(run.floors),
    ...cliTable(run),
    ...run.scenarios.flatMap((s) => [...(s.error ? [`- ${s.label}: FAILED: ${s.error}`] : []), ...s.notes.map((n) => `- ${s.label}: ${n}`)]),
    ...rowErrors(run).map((e) => `- ${e}`),
    ...run.notes.map((n) => `- ${n}`),
    '',
    `Targets: ${Object.entries(summary)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ')}.`,
  ].join('\n');
  process.stdout.write(`${markdown}\n`);
  if (withJson) writeFileSync(`${base}.json`, `${JSON.stringify({ ...run, table, summary }, null, 2)}\n`);
  writeFileSync(`${base}.md`, `${markdown}\n`);
  process.stderr.write(`results: ${withJson ? `${base}.json, ` : ''}${base}.md\n`);
  if (!plot) return;
  try {
    const why = await writePlot(run, `${base}.png`);
    process.stderr.write(why === undefined ? `plot: ${base}.png\n` : `no plot: ${why}\n`);
  } catch (err) {
    process.stderr.write(`no plot: ${(err as Error).message}\n`);
  }
}

async function main(options: Options): Promise<number> {
  const begin = Date.now();
  const settings = options.quick ? QUICK : FULL;
  const sizes = options.sizes ?? (options.quick ? QUICK_SIZES : DEFAULT_SIZES);
  const progress = (line: string): void => {
    if (!options.quiet) process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
  };
  const wrongs: string[] = [];
  const notes: string[] = [];

  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root (crootd and pmdaroot serve root; HOSTNAME enters namespaces)');
  if (!existsSync(options.crootd)) throw new Error(`${options.crootd} does not exist`);
  const distCrootd = join(dirname(realpathSync(options.crootd)), '..', 'dist', 'bin', 'crootd.js');
  if (!options.crootd.endsWith('.js') && !existsSync(distCrootd)) throw new Error(`${distCrootd} is missing: run npm run build in that checkout`);
  const croot = options.croot ?? crootBeside(options.crootd);
  if (!existsSync(croot)) throw new Error(`${croot} does not exist${options.croot === undefined ? ' (name the croot CLI with --croot)' : ''}`);
  const rootClientScript = join(__dirname, 'root-client-load.js');

  const date = new Date().toISOString();
  const startLoad = loads();
  const machine = {
    date,
    host: hostname(),
    cpus: cpus().length,
    // The CPUs this run (and everything it starts) may use: fewer under `taskset -c`.
    usableCpus: availableParallelism(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
  };
  const build = describeBuild(options.crootd);
  const crootBuild = describeBuild(croot);
  const pcpVersion = existsSync(PMDAROOT) ? quietExec('dpkg-query', ['-W', '-f', '${Version}', 'pcp']) || 'installed' : '';
  const withPcp = options.pcp && pcpVersion !== '';
  if (!withPcp) notes.push(options.pcp ? `PCP's pmdaroot is not installed (${PMDAROOT}): no PCP column.` : 'PCP left out (--no-pcp).');

  process.stdout.write(`crootd vs PCP's pmdaroot, ${date}${options.quick ? ' (--quick: a smoke run, not numbers of record)' : ''}\n`);
  process.stdout.write(`crootd: ${options.crootd} (${build}); croot: ${croot} (${crootBuild}); PCP: ${pcpVersion || 'not installed'}\n`);
  process.stdout.write(`machine: ${machine.host}, ${machine.cpus} CPUs${machine.usableCpus !== machine.cpus ? `, this run pinned to ${machine.usableCpus}` : ''} (${machine.cpuModel}), ${machine.memoryGiB} GiB, Linux ${machine.kernel}, Node ${machine.node}\n`);
  process.stdout.write(`load average at start: ${startLoad.join(' ')}\n\n`);

  const work = mkdtempSync(join(tmpdir(), 'croot-bench-'));
  onCleanup('temp folder', () => rmSync(work, { recursive: true, force: true }));
  const helpers = buildCHelpers(work);
  if (typeof helpers.pcpLoadClient !== 'string') notes.push(`${helpers.pcpLoadClient.missing}: rows use croot's RootClient only.`);
  // Synthetic trees on a tmpfs when there is one (see syntheticScenario).
  const treeRoot = existsSync('/dev/shm') ? mkdtempSync(join('/dev/shm', 'croot-bench-')) : work;
  if (treeRoot !== work) onCleanup('tree folder', () => rmSync(treeRoot, { recursive: true, force: true }));
  const tools: Tools = {
    crootd: options.crootd,
    croot,
    countModulesScript: join(__dirname, 'count-modules.js'),
    helpers,
    rootClientScript,
    work,
    treeRoot,
    settings,
    progress,
    wrong: (message) => {
      wrongs.push(message);
      process.stderr.write(`\n!!! WRONG ANSWERS: ${message}\n\n`);
    },
  };

  progress('floors: the Node floor server, the C floor server and the kernel socketpair');
  const liveFloor = await startLiveFloor(tools);
  onCleanup('Node floor', () => liveFloor.stop());
  tools.floor = liveFloor;
  const cFloor = await startLiveFloor(tools, 'c');
  const floors = await measureFloors(tools, liveFloor, cFloor).finally(() => cFloor.stop());
  notes.push(...floors.notes);
  const scenarios: ScenarioResult[] = [];
  for (const size of [...sizes].sort((a, b) => (a === 'real' ? -1 : b === 'real' ? 1 : a - b))) {
    const scenario = size === 'real' ? await realScenario(tools, withPcp) : await syntheticScenario(tools, size, withPcp);
    scenarios.push(scenario);
    progress(`${scenario.label}: done in ${scenario.seconds} s${scenario.error ? ` (FAILED: ${scenario.error})` : ''}`);
  }

  const run: RunResult = {
    machine,
    options: { quick: options.quick, sizes, pcp: withPcp, settings },
    crootd: { path: options.crootd, build },
    croot: { path: croot, build: crootBuild },
    pcp: pcpVersion,
    loadAverage: { start: startLoad, end: loads() },
    floors: floors.floors,
    scenarios,
    notes: [...notes, ...wrongs.map((w) => `WRONG ANSWERS: ${w}`)],
    seconds: Math.round((Date.now() - begin) / 1000),
  };
  mkdirSync(options.outDir, { recursive: true });
  const base = join(options.outDir, date.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z'));
  await writeReport(run, base, options.plot, true);
  process.stdout.write(`load average at end: ${run.loadAverage.end.join(' ')}\n`);
  for (const ext of ['json', 'md', 'png']) if (existsSync(`${base}.${ext}`)) copyFileSync(`${base}.${ext}`, join(options.outDir, `latest.${ext}`));
  if (wrongs.length > 0) {
    process.stderr.write(`\n!!! ${wrongs.length} rows had WRONG ANSWERS (see the notes): these numbers time wrong answers.\n`);
    return 3;
  }
  return scenarios.some((s) => s.error !== undefined) ? 1 : 0;
}

/** `--report FILE.json`: the table, Markdown and plot of a saved run, measured again nothing. */
async function rerender(file: string, plot: boolean): Promise<number> {
  const run = JSON.parse(readFileSync(file, 'utf8')) as RunResult;
  await writeReport(run, file.replace(/\.json$/, ''), plot, false);
  return 0;
}

let options: Options;
try {
  options = parseArgs(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(2);
}

/** The whole run is stopped (everything cleaned up) after this long. */
const WATCHDOG_MS = options.quick ? 300_000 : 1_200_000;
let finishing = false;
const finish = (code: number): void => {
  if (finishing) return;
  finishing = true;
  void cleanUp().finally(() => process.exit(code));
};
const watchdog = setTimeout(() => {
  process.stderr.write(`benchmark still running after ${WATCHDOG_MS / 1000} s: stopping\n`);
  finish(2);
}, WATCHDOG_MS);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    process.stderr.write(`${signal}: stopping\n`);
    finish(130);
  });
}
process.on('exit', killChildrenSync);

const work = options.report !== undefined ? rerender(options.report, options.plot) : main(options);
work.then(
  (code) => {
    clearTimeout(watchdog);
    finish(code);
  },
  (err: unknown) => {
    clearTimeout(watchdog);
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    finish(2);
  },
);
