/**
 * The CLI's start-up, measured from outside as a user meets it: a command
 * spawned, timed from just before the spawn until its exit, its output
 * checked against the truth. Run in the real scenario, with crootd serving
 * on its private socket and real Docker containers running:
 *
 * - `croot --version`;
 * - `croot --socket S pid NAME` against that crootd;
 * - `croot pid NAME` and `croot pid docker:NAME` in-process (as root, with
 *   the environment and default config a user's run has);
 * - the floor `node -e 0` (Node's own start), and `docker inspect -f
 *   {{.State.Pid}} NAME` as the familiar reference.
 *
 * The commands run in rounds (a warm-up round, untimed but checked, then N
 * timed ones), each round every command once, starting one later each
 * round, so a burst of load on the shared machine lands on all of them
 * alike. The child's CPU comes from the benchmark's own /proc/self/stat
 * cutime+cstime (the CPU of the children it has reaped): read before each
 * spawn and after its exit, the deltas add up over the runs, so the mean CPU
 * per run is exact to a clock tick over N. An extra untimed run of each Node
 * command with `--require` count-modules.js counts the modules it loaded.
 */
import { readFileSync, realpathSync, accessSync, constants } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { CLOCK_TICKS_PER_SECOND, endChild, spawnTracked } from './bench-processes.js';
import type { CliMeasure } from './results.js';

/** One command of the section. */
export interface CliCommand {
  /** `version`, `socket-pid`, `pid`, `pid-docker`, `node`, `docker-inspect` (report.ts keys its targets on it). */
  readonly key: string;
  /** As the table shows it. */
  readonly label: string;
  readonly file: string;
  readonly args: readonly string[];
  /** stdout, trimmed, of a right answer (exit status 0 too). */
  readonly expected: string;
  /** A Node program whose loaded modules can be counted. */
  readonly node: boolean;
}

export interface CliStartupSpec {
  /** bin/croot of some build (run through its `#!/usr/bin/env node`), or a dist/bin/croot.js. */
  readonly croot: string;
  /** The running crootd's socket. */
  readonly socket: string;
  /** A running Docker container and its init PID as `docker inspect` gives it. */
  readonly name: string;
  readonly pid: number;
  /** Timed runs per command, after `warmups` untimed rounds. */
  readonly runs: number;
  readonly warmups: number;
  /** The compiled count-modules.js. */
  readonly countModulesScript: string;
  /** Where the module counts are written. */
  readonly work: string;
  progress(line: string): void;
  wrong(message: string): void;
}

const RUN_TIMEOUT_MS = 60_000;

/** The `node` a `#!/usr/bin/env node` script runs: the first executable `node` on PATH. */
export function nodeOnPath(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, 'node');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** croot's version as its package says it (the package.json beside its bin/), or undefined. */
function packageVersion(croot: string): string | undefined {
  const real = realpathSync(croot);
  // bin/croot or dist/bin/croot.js
  for (const up of [['..'], ['..', '..']]) {
    try {
      const pkg = JSON.parse(readFileSync(join(dirname(real), ...up, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'croot' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // not there
    }
  }
  return undefined;
}

export function cliCommands(spec: CliStartupSpec, node: string): CliCommand[] {
  const [file, pre] = spec.croot.endsWith('.js') ? [node, [spec.croot]] : [spec.croot, []];
  const pid = String(spec.pid);
  const version = packageVersion(spec.croot);
  return [
    { key: 'version', label: 'croot --version', file, args: [...pre, '--version'], expected: version ?? '', node: true },
    { key: 'socket-pid', label: 'croot --socket S pid NAME', file, args: [...pre, '--socket', spec.socket, 'pid', spec.name], expected: pid, node: true },
    { key: 'pid', label: 'croot pid NAME (in-process)', file, args: [...pre, 'pid', spec.name], expected: pid, node: true },
    { key: 'pid-docker', label: 'croot pid docker:NAME (in-process)', file, args: [...pre, 'pid', `docker:${spec.name}`], expected: pid, node: true },
    { key: 'node', label: 'node -e 0 (the floor)', file: node, args: ['-e', '0'], expected: '', node: true },
    { key: 'docker-inspect', label: "docker inspect -f '{{.State.Pid}}' NAME", file: 'docker', args: ['inspect', '-f', '{{.State.Pid}}', spec.name], expected: pid, node: false },
  ];
}

/** CPU time of the reaped children of this process so far (cutime + cstime), in ms. */
function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[13]) + Number(rest[14])) * 1000) / CLOCK_TICKS_PER_SECOND;
}

interface OneRun {
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Spawns `command` and waits for its exit: the wall time from just before the spawn to the exit, and the CPU it used. */
function runOnce(command: CliCommand, env: NodeJS.ProcessEnv): Promise<OneRun> {
  return new Promise((resolve, reject) => {
    const cpu0 = childrenCpuMs();
    const t0 = process.hrtime.bigint();
    const child = spawnTracked(command.file, command.args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let t1 = 0n;
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => {
      if (stdout.length < 100_000) stdout += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 100_000) stderr += d.toString();
    });
    child.once('exit', () => (t1 = process.hrtime.bigint()));
    const timer = setTimeout(() => void endChild(child, () => child.kill('SIGKILL')), RUN_TIMEOUT_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ wallMs: Number(t1 - t0) / 1e6, cpuMs: childrenCpuMs() - cpu0, status, signal, stdout: stdout.trim(), stderr: stderr.trim() });
    });
  });
}

function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Why a run's answer is wrong, or undefined when it is right. */
function wrongness(command: CliCommand, r: OneRun): string | undefined {
  if (r.status !== 0) return `exit ${r.signal ?? String(r.status)}: ${(r.stderr || r.stdout).slice(0, 300)}`;
  if (command.key === 'version' && command.expected === '') return /^\d+\.\d+\.\d+\S*$/.test(r.stdout) ? undefined : `printed ${JSON.stringify(r.stdout.slice(0, 100))}, not a version`;
  if (r.stdout !== command.expected) return `printed ${JSON.stringify(r.stdout.slice(0, 100))}, expected ${JSON.stringify(command.expected)}`;
  return undefined;
}

/** The modules a Node command loads (one untimed run with count-modules.js preloaded); undefined when it cannot say. */
async function countModules(command: CliCommand, spec: CliStartupSpec, env: NodeJS.ProcessEnv): Promise<number | undefined> {
  const file = join(spec.work, `modules-${command.key}.txt`);
  const preload = `--require ${spec.countModulesScript}`;
  try {
    await runOnce(command, { ...env, NODE_OPTIONS: env.NODE_OPTIONS ? `${env.NODE_OPTIONS} ${preload}` : preload, CROOT_BENCH_MODULES_FILE: file });
    const n = Number(readFileSync(file, 'utf8'));
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Measures every command (see the file's comment); wrong answers are counted, and reported through `spec.wrong` once per command. */
export async function measureCliStartup(spec: CliStartupSpec): Promise<{ measures: CliMeasure[]; notes: string[] }> {
  const notes: string[] = [];
  const node = nodeOnPath() ?? process.execPath;
  if (realpathSync(node) !== realpathSync(process.execPath)) notes.push(`CLI start-up: \`node\` on PATH is ${node}, the benchmark runs on ${process.execPath}.`);
  const commands = cliCommands(spec, node);
  if (commands[0]?.expected === '') notes.push('CLI start-up: no package.json beside croot: `croot --version` is only checked to print a version.');
  const env = { ...process.env };
  const state = commands.map((command) => ({ command, wallMs: [] as number[], cpuMs: [] as number[], wrong: 0, firstWrong: undefined as string | undefined, error: undefined as string | undefined }));
  const rounds = spec.warmups + spec.runs;
  for (let round = 0; round < rounds; round++) {
    const timed = round >= spec.warmups;
    spec.progress(`    CLI start-up: ${timed ? `round ${round - spec.warmups + 1} of ${spec.runs}` : 'warm-up round'}`);
    for (let i = 0; i < state.length; i++) {
      const s = state[(i + round) % state.length] as (typeof state)[number];
      if (s.error !== undefined) continue;
      let r: OneRun;
      try {
        r = await runOnce(s.command, env);
      } catch (err) {
        s.error = `${s.command.file}: ${(err as Error).message}`;
        continue;
      }
      const why = wrongness(s.command, r);
      if (why !== undefined) {
        s.wrong++;
        s.firstWrong ??= why;
      }
      if (timed) {
        s.wallMs.push(r.wallMs);
        s.cpuMs.push(r.cpuMs);
      }
    }
  }
  const measures: CliMeasure[] = [];
  for (const s of state) {
    if (s.wrong > 0) spec.wrong(`CLI start-up, ${s.command.label} (${[s.command.file, ...s.command.args].join(' ')}): ${s.wrong} wrong of ${rounds} runs (warm-up included); first: ${s.firstWrong}`);
    const modules = s.command.node && s.error === undefined ? await countModules(s.command, spec, env) : undefined;
    const cpuTotal = s.cpuMs.reduce((a, b) => a + b, 0);
    measures.push({
      command: s.command.key,
      label: s.command.label,
      argv: [s.command.file, ...s.command.args],
      runs: s.wallMs.length,
      wallMs: s.wallMs,
      medianMs: median(s.wallMs),
      cpuMs: s.cpuMs.length > 0 ? cpuTotal / s.cpuMs.length : Number.NaN,
      wrong: s.wrong,
      ...(modules !== undefined ? { modules } : {}),
      ...(s.firstWrong !== undefined ? { firstWrong: s.firstWrong } : {}),
      ...(s.error !== undefined ? { error: s.error } : {}),
    });
  }
  return { measures, notes };
}
