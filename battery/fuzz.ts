/**
 * `npm run fuzz`: a live fuzzer of the root protocol against the built
 * crootd on a private socket. crootd serves four declared containers (real
 * processes in UTS namespaces of their own, static engine only) and a
 * pmcd.conf of three harmless agents; unprivileged clients (uid 65534, so
 * STARTPMDA is held to those agents) send random and mutated PDUs in every
 * way the protocol allows and some it does not. Checked throughout:
 *
 * - crash: crootd stays up, still answers right at the end, exits 0 on SIGTERM;
 * - reply-or-close: every complete request gets a well-formed reply of its
 *   type, in order, or the connection is closed; nothing hangs;
 * - half-close: requests sent before the client shut down its write side
 *   are all answered (as PCP's pmdaroot does);
 * - wrong-container: a status-0 answer is the container the name designates
 *   under the naming rule, with its own pid, hostname and cgroup;
 * - policy: the unprivileged client starts only pmcd.conf's agents;
 * - fd-leak: crootd's fds afterwards are those it had before;
 * - zombie: no child of crootd stays a zombie for 3 s (it reaps every 200 ms);
 * - rss: crootd's RSS stays under its start-up RSS + 128 MiB;
 * - log: the log grows by at most 128 KiB per started minute.
 *
 *   npm run build && npm run fuzz -- [--pdus 1000000] [--workers 2] [--concurrency 8] [--seed N] [--json]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { startNamespacedSleeper, stopAllChildren, type StartedChild } from '../bench/bench-processes.js';
import type { KnownContainer, KnownProcess, Truth } from './container-oracle.js';
import { built, cgroupPaths, fdDifference, sampleProcess, startCrootdUnderTest, type CrootdUnderTest, type ProcessSample } from './crootd-under-test.js';
import type { Violation } from './fuzz-connection.js';
import type { WorkerReport } from './fuzz-worker.js';
import type { AllowedAgent, Corpus } from './pdu-corpus.js';
import { HOSTNAME_REQ, containerAnswer, containerRequest, replies } from './root-wire.js';

export const UNPRIVILEGED_UID = 65534;
const RSS_HEADROOM_KIB = 128 * 1024;
const LOG_BYTES_PER_MINUTE = 128 * 1024;

export interface FuzzOptions {
  readonly pdus: number;
  readonly workers: number;
  readonly concurrency: number;
  readonly seed: number;
  readonly containers: number;
  /** Progress lines go here (default: nowhere). */
  readonly progress?: (line: string) => void;
}

export interface FuzzReport {
  readonly seed: number;
  readonly durationMs: number;
  readonly pdus: number;
  readonly connections: number;
  readonly requests: number;
  readonly answered: number;
  readonly closedUnanswered: number;
  readonly scenarios: Record<string, number>;
  readonly statuses: Record<string, number>;
  readonly rssKiB: { readonly start: number; readonly peak: number; readonly end: number };
  readonly fds: { readonly before: number; readonly after: number; readonly added: readonly string[] };
  readonly logBytes: number;
  /** The slowest answer to the watch's once-a-second HOSTNAME, ms. */
  readonly slowestProbeMs: number;
  /** Violations by invariant; empty when every invariant held. */
  readonly violations: Record<string, number>;
  readonly examples: readonly Violation[];
}

/** The battery's agents: pmcd.conf lines and what a client sends to start each. */
export const BATTERY_AGENTS: ReadonlyArray<AllowedAgent & { readonly line: string }> = [
  { label: 'bat-cat', ipctype: 2, args: '/bin/cat', line: 'bat-cat 240 pipe binary /bin/cat' },
  { label: 'bat-true', ipctype: 2, args: '/bin/true', line: 'bat-true 241 pipe binary /bin/true' },
  { label: 'bat-sleep', ipctype: 1, args: '/bin/sleep 1', line: 'bat-sleep 242 socket inet 9 /bin/sleep 1' },
];

/** Declared containers on real sandboxes; the first two ids share a 6-digit prefix, so short prefixes are ambiguous. */
export async function startContainers(count: number, tag: string): Promise<{ containers: KnownContainer[]; sandboxes: StartedChild[] }> {
  const sandboxes: StartedChild[] = [];
  const containers: KnownContainer[] = [];
  const shared = randomBytes(3).toString('hex');
  for (let i = 0; i < count; i++) {
    const host = `bat${i}-${tag}`;
    const sandbox = await startNamespacedSleeper(host, 3600);
    sandboxes.push(sandbox);
    const id = i < 2 ? `${shared}${randomBytes(29).toString('hex')}` : randomBytes(32).toString('hex');
    containers.push({ name: `bat${i}-${tag}`, id, pid: sandbox.pid, hostname: host, cgroups: cgroupPaths(sandbox.pid) });
  }
  return { containers, sandboxes };
}

/** One HOSTNAME request as root; the answer's pid and value, or the status. */
export function askHostname(socketPath: string, name: string): Promise<{ status: number; pid: number; value: string }> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    let data = Buffer.alloc(0);
    socket.on('connect', () => socket.write(containerRequest(HOSTNAME_REQ, Buffer.from(name))));
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const [reply] = replies(data.subarray(24)).replies;
      if (data.length >= 24 && reply !== undefined) {
        socket.destroy();
        resolve({ status: reply.status, ...containerAnswer(reply) });
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error('closed without a reply')));
  });
}

function runWorkerProcess(args: readonly string[]): Promise<WorkerReport> {
  return new Promise((resolve, reject) => {
    const child = spawn('setpriv', ['--reuid', String(UNPRIVILEGED_UID), '--regid', String(UNPRIVILEGED_UID), '--clear-groups', process.execPath, built('battery/fuzz-worker.js'), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`fuzz worker exited ${code}: ${err}`));
      else resolve(JSON.parse(out) as WorkerReport);
    });
  });
}

/** How long a child of crootd may stay a zombie (crootd reaps every 200 ms; a loaded machine can delay that). */
const ZOMBIE_GRACE_MS = 3000;

/**
 * Watches crootd once a second: liveness, RSS, zombies that outlive
 * ZOMBIE_GRACE_MS, and how long a root HOSTNAME takes (a slow answer shows
 * a starved event loop or a loaded machine).
 */
export class Watch {
  readonly samples: ProcessSample[] = [];
  readonly violations: Violation[] = [];
  /** Slowest probe answer, ms. */
  slowestProbeMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly zombieSince = new Map<number, number>();

  constructor(
    private readonly pid: number,
    private readonly probe?: () => Promise<unknown>,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.sample();
      if (this.probe !== undefined) {
        const t0 = Date.now();
        this.probe().then(
          () => (this.slowestProbeMs = Math.max(this.slowestProbeMs, Date.now() - t0)),
          () => undefined,
        );
      }
    }, 1000);
  }

  sample(): ProcessSample {
    const s = sampleProcess(this.pid);
    this.samples.push(s);
    if (!s.alive && !this.violations.some((v) => v.invariant === 'crash')) this.violations.push({ invariant: 'crash', detail: `crootd (pid ${this.pid}) is gone` });
    const zombies = new Set(s.children.filter((c) => c.state === 'Z').map((c) => c.pid));
    for (const pid of [...this.zombieSince.keys()]) if (!zombies.has(pid)) this.zombieSince.delete(pid);
    for (const pid of zombies) {
      const since = this.zombieSince.get(pid) ?? s.at;
      this.zombieSince.set(pid, since);
      if (s.at - since >= ZOMBIE_GRACE_MS && since !== -1) {
        let comm = '?';
        try {
          comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
        } catch {
          // reaped meanwhile
        }
        this.violations.push({ invariant: 'zombie', detail: `child ${pid} (${comm}) of crootd a zombie for ${s.at - since} ms` });
        this.zombieSince.set(pid, -1); // reported once
      }
    }
    return s;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const say = options.progress ?? ((): void => undefined);
  const started = Date.now();
  const tag = randomBytes(3).toString('hex');
  const dir = mkdtempSync(join(tmpdir(), 'croot-t-fuzz-'));
  // The unprivileged clients reach the socket (0777) and read the corpus through it.
  chmodSync(dir, 0o711);
  let crootd: CrootdUnderTest | undefined;
  const sandboxes: StartedChild[] = [];
  try {
    const made = await startContainers(options.containers, tag);
    sandboxes.push(...made.sandboxes);
    const { containers } = made;
    const processes: KnownProcess[] = [...containers.map((c) => ({ pid: c.pid, hostname: c.hostname, cgroups: c.cgroups })), { pid: 1, hostname: hostname(), cgroups: cgroupPaths(1) }];
    const truth: Truth = { containers, processes, engines: ['static'] };
    writeFileSync(join(dir, 'croot.json'), JSON.stringify({ disabledEngines: ['docker', 'podman', 'containerd', 'lxc'], containers: containers.map((c) => ({ name: c.name, id: c.id, pid: c.pid })) }));
    writeFileSync(join(dir, 'pmcd.conf'), `${BATTERY_AGENTS.map((a) => a.line).join('\n')}\n[access]\nallow "local:*" : all;\n`);
    const corpus: Corpus = { truth, agents: BATTERY_AGENTS.map(({ label, ipctype, args }) => ({ label, ipctype, args })) };
    writeFileSync(join(dir, 'corpus.json'), JSON.stringify(corpus), { mode: 0o644 });
    crootd = await startCrootdUnderTest({
      dir,
      args: ['--config', join(dir, 'croot.json'), '--no-pcp-user', '--allow-uid', String(UNPRIVILEGED_UID), '--socket-mode', '0777'],
      env: { ...process.env, PCP_PMCDCONF_PATH: join(dir, 'pmcd.conf') },
    });
    // crootd's own process, known to the oracle too (its hostname is the host's).
    processes.push({ pid: crootd.pid, hostname: hostname(), cgroups: cgroupPaths(crootd.pid) });
    writeFileSync(join(dir, 'corpus.json'), JSON.stringify(corpus), { mode: 0o644 });
    const first = containers[0] as KnownContainer;
    await askHostname(crootd.socketPath, first.name);
    const socketPath = crootd.socketPath;
    const watch = new Watch(crootd.pid, () => askHostname(socketPath, first.name));
    const before = watch.sample();
    const logBefore = crootd.logBytes();
    watch.start();
    say(`fuzz: crootd pid ${crootd.pid}, ${containers.length} containers, ${options.workers}×${options.concurrency} connections, ${options.pdus} PDUs, seed ${options.seed}`);

    const share = Math.ceil(options.pdus / options.workers);
    const reports = await Promise.all(
      Array.from({ length: options.workers }, (_, i) =>
        runWorkerProcess(['--socket', crootd?.socketPath ?? '', '--corpus', join(dir, 'corpus.json'), '--pdus', String(share), '--seed', String((options.seed + i * 7919) >>> 0), '--concurrency', String(options.concurrency)]),
      ),
    );

    // Settle: connections closed, children reaped.
    const violations: Violation[] = [];
    const settleUntil = Date.now() + 10000;
    let after = watch.sample();
    while (Date.now() < settleUntil && (after.children.length > 0 || fdDifference(before.fds, after.fds).added.length > 0)) {
      await new Promise((r) => setTimeout(r, 200));
      after = watch.sample();
    }
    watch.stop();
    const answer = await askHostname(crootd.socketPath, first.name).catch((err: Error) => ({ status: NaN, pid: 0, value: err.message }));
    if (answer.status !== 0 || answer.value !== first.hostname || answer.pid !== first.pid) {
      violations.push({ invariant: 'crash', detail: `after the fuzz, HOSTNAME ${first.name} answered ${JSON.stringify(answer)}` });
    }
    const added = fdDifference(before.fds, after.fds).added;
    if (added.length > 0) violations.push({ invariant: 'fd-leak', detail: `fds added: ${added.join(', ')}` });
    if (after.children.length > 0) violations.push({ invariant: 'zombie', detail: `children left: ${JSON.stringify(after.children)}` });
    const peak = Math.max(...watch.samples.map((s) => s.rssKiB));
    if (peak > before.rssKiB + RSS_HEADROOM_KIB) violations.push({ invariant: 'rss', detail: `RSS peaked at ${peak} KiB, start ${before.rssKiB} KiB` });
    const exit = await crootd.stop();
    if (exit.code !== 0) violations.push({ invariant: 'crash', detail: `crootd exited ${exit.code ?? exit.signal} on SIGTERM: ${crootd.stderr()}` });
    const logBytes = crootd.logBytes() - logBefore;
    const minutes = Math.ceil((Date.now() - started) / 60000);
    if (logBytes > LOG_BYTES_PER_MINUTE * minutes) violations.push({ invariant: 'log', detail: `log grew ${logBytes} bytes in ${minutes} min` });

    const sum = (f: (r: WorkerReport) => number): number => reports.reduce((a, r) => a + f(r), 0);
    const merge = (f: (r: WorkerReport) => Record<string, number>): Record<string, number> => {
      const out: Record<string, number> = {};
      for (const r of reports) for (const [k, v] of Object.entries(f(r))) out[k] = (out[k] ?? 0) + v;
      return out;
    };
    const all = [...watch.violations, ...violations];
    const counts = merge((r) => r.violations);
    for (const v of all) counts[v.invariant] = (counts[v.invariant] ?? 0) + 1;
    return {
      seed: options.seed,
      durationMs: Date.now() - started,
      pdus: sum((r) => r.pdus),
      connections: sum((r) => r.connections),
      requests: sum((r) => r.requests),
      answered: sum((r) => r.answered),
      closedUnanswered: sum((r) => r.closedUnanswered),
      scenarios: merge((r) => r.scenarios),
      statuses: merge((r) => r.statuses),
      rssKiB: { start: before.rssKiB, peak, end: after.rssKiB },
      fds: { before: before.fds.length, after: after.fds.length, added },
      logBytes,
      slowestProbeMs: watch.slowestProbeMs,
      violations: counts,
      examples: [...all, ...reports.flatMap((r) => r.examples)].slice(0, 40),
    };
  } finally {
    if (crootd !== undefined) await crootd.stop(2000);
    // Each sandbox ends its sleeper itself (a grandchild, which killing unshare would orphan).
    for (const sandbox of sandboxes) await sandbox.stop();
    await stopAllChildren();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A report as text: what ran, then each invariant and whether it held. */
export function describeFuzz(report: FuzzReport): string {
  const invariants = ['crash', 'reply-or-close', 'half-close', 'wrong-container', 'policy', 'fd-leak', 'zombie', 'rss', 'log'];
  const lines = [
    `fuzz: ${report.pdus} PDUs, ${report.requests} complete requests, ${report.answered} answered, ${report.connections} connections (${Object.entries(report.scenarios).map(([k, v]) => `${k} ${v}`).join(', ')}) in ${(report.durationMs / 1000).toFixed(0)} s, seed ${report.seed}`,
    `      closed by crootd with requests unanswered: ${report.closedUnanswered} connections`,
    `      RSS ${report.rssKiB.start} KiB at start, ${report.rssKiB.peak} KiB peak, ${report.rssKiB.end} KiB at the end; fds ${report.fds.before} before, ${report.fds.after} after; log +${report.logBytes} bytes; slowest probe ${report.slowestProbeMs} ms`,
    ...invariants.map((name) => `  ${(report.violations[name] ?? 0) === 0 ? 'held  ' : 'BROKEN'} ${name}${report.violations[name] ? ` (${report.violations[name]} times)` : ''}`),
    ...report.examples.map((v) => `    ${v.invariant}: ${v.detail}`),
  ];
  return lines.join('\n');
}

async function main(argv: readonly string[]): Promise<number> {
  const program = new Command('fuzz')
    .description("a live fuzzer of croot's root protocol against the built crootd")
    .option('--pdus <n>', 'PDUs to send in all', Number, 1_000_000)
    .option('--workers <n>', 'client processes (uid 65534)', Number, 2)
    .option('--concurrency <n>', 'connections at once per client process', Number, 8)
    .option('--containers <n>', 'declared containers (sandboxes)', Number, 4)
    .option('--seed <n>', 'generator seed (default: random)', Number)
    .option('--json', 'print the report as JSON')
    .exitOverride();
  program.parse(argv, { from: 'user' });
  const o = program.opts<{ pdus: number; workers: number; concurrency: number; containers: number; seed?: number; json?: boolean }>();
  if (process.getuid?.() !== 0) throw new Error('the fuzzer needs root (sandboxes, setpriv, crootd)');
  const report = await runFuzz({
    pdus: o.pdus,
    workers: o.workers,
    concurrency: o.concurrency,
    containers: o.containers,
    seed: o.seed ?? randomBytes(4).readUInt32LE(0),
    progress: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : `${describeFuzz(report)}\n`);
  return Object.keys(report.violations).length === 0 ? 0 : 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`fuzz: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(2);
    },
  );
}

