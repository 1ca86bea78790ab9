/**
 * `npm run soak`: the built crootd under steady use for an hour (or
 * `--minutes`): 8 clients asking without pause, half of them PCP's own C
 * client library (test/support/pcp-c-client.c, a new connection per batch of
 * lookups), half croot's RootClient (one long connection each), while
 * containers come and go: declared sandboxes added and dropped through the
 * config file and SIGHUP, and real Docker containers run and removed when
 * Docker is there. Checked:
 *
 * - crash: crootd stays up and exits 0 on SIGTERM;
 * - wrong-container: every status-0 answer is the container asked for (its
 *   pid, the hostname the battery gave it, a cgroup of its /proc/PID/cgroup);
 *   a name that never existed is never answered;
 * - rss: flat: the median RSS of the last three samples is within 10 % of
 *   the median over the stretch right after warm-up (warm-up: the first
 *   10 % of the run, at least 10 s);
 * - fd-leak: once clients and containers are gone, crootd holds the fds it
 *   held before they came (by kind; sockets by kind only);
 * - zombie: no child of crootd stays a zombie for 3 s;
 * - log: the log grows by at most 128 KiB per started minute.
 *
 *   npm run build && npm run soak -- [--minutes 60] [--clients 8] [--no-docker] [--json]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { stopAllChildren } from '../bench/bench-processes.js';
import { nodeSocketTransport } from '../core/client/node-socket-transport.js';
import { RootClient } from '../core/client/root-client.js';
import { fdDifference, repoRoot, startCrootdUnderTest, type CrootdUnderTest } from './crootd-under-test.js';
import type { Violation } from './fuzz-connection.js';
import { Watch, askHostname } from './fuzz.js';
import { SoakContainers, dockerWorks, run, type SoakContainer } from './soak-containers.js';

const LOG_BYTES_PER_MINUTE = 128 * 1024;
const RSS_GROWTH_ALLOWED = 0.1;

export interface SoakOptions {
  readonly minutes: number;
  readonly clients: number;
  /** Run and remove Docker containers too (when `docker info` works). */
  readonly docker: boolean;
  /** Seconds between container changes. Default 5. */
  readonly churnSeconds?: number;
  readonly progress?: (line: string) => void;
}

export interface SoakReport {
  readonly durationMs: number;
  readonly requests: number;
  readonly answered: number;
  readonly byClient: Record<string, number>;
  /** The slowest answer each of croot's clients got, ms (C clients are timed per batch of 20, so not here). */
  readonly slowestMs: Record<string, number>;
  readonly containersStarted: { readonly static: number; readonly docker: number };
  readonly rssKiB: { readonly warm: number; readonly final: number; readonly peak: number; readonly samples: number };
  readonly fds: { readonly before: number; readonly after: number; readonly added: readonly string[] };
  readonly logBytes: number;
  readonly slowestProbeMs: number;
  readonly violations: Record<string, number>;
  readonly examples: readonly Violation[];
}

function buildCClient(dir: string): string | undefined {
  if (!existsSync('/usr/include/pcp/pmdaroot.h')) return undefined;
  const binary = join(dir, 'pcp-c-client');
  execFileSync('gcc', ['-Wall', '-O2', '-o', binary, join(repoRoot(), 'test', 'support', 'pcp-c-client.c'), '-lpcp_pmda', '-l:libpcp.so.3'], { stdio: 'ignore', timeout: 60000 });
  return binary;
}

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const say = options.progress ?? ((): void => undefined);
  const started = Date.now();
  const durationMs = options.minutes * 60000;
  const churnMs = (options.churnSeconds ?? 5) * 1000;
  const dir = mkdtempSync(join(tmpdir(), 'croot-t-soak-'));
  const configPath = join(dir, 'croot.json');
  const violations: Violation[] = [];
  const counts: Record<string, number> = {};
  const violate = (invariant: string, detail: string): void => {
    counts[invariant] = (counts[invariant] ?? 0) + 1;
    if (violations.filter((v) => v.invariant === invariant).length < 5) violations.push({ invariant, detail });
  };
  const containers = new SoakContainers(configPath, options.docker && dockerWorks(), violate);
  const { live } = containers;
  let crootd: CrootdUnderTest | undefined;

  let requests = 0;
  let answered = 0;
  const byClient: Record<string, number> = {};
  /** The slowest answer each croot client got, ms. */
  const slowest: Record<string, number> = {};
  let stopping = false;

  const rootClientLoop = async (id: string): Promise<void> => {
    while (!stopping) {
      let client: RootClient | undefined;
      try {
        client = await RootClient.connect(crootd?.socketPath, { transport: nodeSocketTransport });
        while (!stopping) {
          const name = containers.pickName();
          const kind = Math.floor(Math.random() * 3);
          requests++;
          byClient[id] = (byClient[id] ?? 0) + 1;
          const t0 = Date.now();
          try {
            const value = kind === 0 ? await client.hostname(name) : kind === 1 ? await client.processId(name) : await client.cgroupName(name);
            slowest[id] = Math.max(slowest[id] ?? 0, Date.now() - t0);
            answered++;
            containers.check(id, kind === 0 ? 'hostname' : kind === 1 ? 'pid' : 'cgroup', name, value);
          } catch (err) {
            slowest[id] = Math.max(slowest[id] ?? 0, Date.now() - t0);
            if (typeof (err as { status?: unknown }).status !== 'number') throw err;
          }
        }
      } catch (err) {
        if (!stopping) violate('crash', `${id}: connection failed: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 500));
      } finally {
        client?.close();
      }
    }
  };

  const cClientLoop = async (id: string, binary: string): Promise<void> => {
    while (!stopping) {
      const ops: Array<[string, string]> = [];
      for (let i = 0; i < 20; i++) ops.push([['hostname', 'processid', 'cgroup'][Math.floor(Math.random() * 3)] as string, containers.pickName()]);
      let out: string;
      try {
        out = await run(binary, [crootd?.socketPath ?? '', ...ops.map(([op, name]) => `${op}:${name}`)], 30000);
      } catch (err) {
        if (!stopping) violate('crash', `${id}: ${(err as Error).message}`);
        continue;
      }
      for (const line of out.split('\n').filter(Boolean)) {
        const r = JSON.parse(line) as { op: string; name?: string; sts: number; value?: string };
        if (r.op === 'connect') {
          if (r.sts < 0) violate('crash', `${id}: pmdaRootConnect answered ${r.sts}`);
          continue;
        }
        requests++;
        byClient[id] = (byClient[id] ?? 0) + 1;
        if (r.sts < 0) continue;
        answered++;
        const name = r.name ?? '';
        if (r.op === 'hostname') containers.check(id, 'hostname', name, r.value ?? '');
        else if (r.op === 'processid') containers.check(id, 'pid', name, r.sts);
        else containers.check(id, 'cgroup', name, r.value ?? '');
      }
    }
  };

  let watch: Watch | undefined;
  try {
    const pinned = await containers.makeStatic();
    containers.pinned = pinned;
    for (let i = 0; i < 2; i++) live.push(await containers.makeStatic());
    containers.writeConfig();
    crootd = await startCrootdUnderTest({ dir, args: ['--config', configPath, '--no-pcp-user'] });
    containers.crootd = crootd;
    const probeName = pinned.name;
    const socketPath = crootd.socketPath;
    await new Promise((r) => setTimeout(r, 2000));
    watch = new Watch(crootd.pid, () => askHostname(socketPath, probeName));
    const before = watch.sample();
    const logBefore = crootd.logBytes();
    const cBinary = buildCClient(dir);
    say(`soak: crootd pid ${crootd.pid}, ${options.clients} clients (${cBinary ? 'half' : 'none'} through PCP's C library), docker ${containers.docker ? 'on' : 'off'}, ${options.minutes} min`);
    watch.start();

    const clients: Array<Promise<void>> = [];
    for (let i = 0; i < options.clients; i++) {
      clients.push(cBinary !== undefined && i % 2 === 1 ? cClientLoop(`pcp-c-${i}`, cBinary) : rootClientLoop(`croot-${i}`));
    }
    let lastDocker = 0;
    let lastReport = Date.now();
    while (Date.now() - started < durationMs) {
      await new Promise((r) => setTimeout(r, churnMs));
      if (Date.now() - started >= durationMs) break;
      await containers.addStatic();
      if (containers.declared().length > 4) await containers.dropOldest('static');
      if (containers.docker && Date.now() - lastDocker >= 2 * churnMs) {
        lastDocker = Date.now();
        await containers.addDocker().catch((err: Error) => say(`soak: docker run failed: ${err.message}`));
        if (live.filter((c) => c.engine === 'docker').length > 3) await containers.dropOldest('docker');
      }
      if (Date.now() - lastReport > 60000) {
        lastReport = Date.now();
        const s = watch.samples.at(-1);
        say(`soak: ${Math.round((Date.now() - started) / 1000)} s, ${requests} requests, RSS ${s?.rssKiB} KiB, ${s?.fds.length} fds`);
      }
    }
    stopping = true;
    await Promise.all(clients);
    const running = watch.samples.filter((s) => s.at >= started);
    while (live.length > 0) await containers.dropOldest((live[0] as SoakContainer).engine);
    containers.pinned = undefined;
    containers.writeConfig();
    await containers.reload();
    await pinned.stop();
    // Settle: connections closed, engines caught up.
    let after = watch.sample();
    const settleUntil = Date.now() + 15000;
    while (Date.now() < settleUntil && (fdDifference(before.fds, after.fds).added.length > 0 || after.children.length > 0)) {
      await new Promise((r) => setTimeout(r, 500));
      after = watch.sample();
    }
    watch.stop();

    const warmupMs = Math.max(10000, durationMs * 0.1);
    const windowMs = Math.max(10000, durationMs * 0.1);
    const median = (xs: number[]): number => {
      const sorted = [...xs].sort((a, b) => a - b);
      return sorted[Math.floor(sorted.length / 2)] ?? 0;
    };
    const warm = median(running.filter((s) => s.at - started > warmupMs && s.at - started <= warmupMs + windowMs).map((s) => s.rssKiB));
    const final = median(running.slice(-3).map((s) => s.rssKiB));
    if (warm > 0 && final > warm * (1 + RSS_GROWTH_ALLOWED)) violate('rss', `RSS grew from ${warm} KiB after warm-up to ${final} KiB at the end (> ${RSS_GROWTH_ALLOWED * 100} %)`);
    const added = fdDifference(before.fds, after.fds).added;
    if (added.length > 0) violate('fd-leak', `fds added: ${added.join(', ')}`);
    if (after.children.length > 0) violate('zombie', `children left: ${JSON.stringify(after.children)}`);
    for (const v of watch.violations) violate(v.invariant, v.detail);
    const exit = await crootd.stop();
    if (exit.code !== 0) violate('crash', `crootd exited ${exit.code ?? exit.signal} on SIGTERM: ${crootd.stderr()}`);
    const logBytes = crootd.logBytes() - logBefore;
    const minutes = Math.ceil((Date.now() - started) / 60000);
    if (logBytes > LOG_BYTES_PER_MINUTE * minutes) violate('log', `log grew ${logBytes} bytes in ${minutes} min`);
    return {
      durationMs: Date.now() - started,
      requests,
      answered,
      byClient,
      slowestMs: slowest,
      containersStarted: containers.started,
      rssKiB: { warm, final, peak: Math.max(...running.map((s) => s.rssKiB)), samples: running.length },
      fds: { before: before.fds.length, after: after.fds.length, added },
      logBytes,
      slowestProbeMs: watch.slowestProbeMs,
      violations: counts,
      examples: violations,
    };
  } finally {
    stopping = true;
    watch?.stop();
    if (crootd !== undefined) await crootd.stop(2000);
    for (const c of live.splice(0)) await c.stop();
    await containers.pinned?.stop();
    await stopAllChildren();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function describeSoak(report: SoakReport): string {
  const invariants = ['crash', 'wrong-container', 'rss', 'fd-leak', 'zombie', 'log'];
  return [
    `soak: ${report.requests} requests (${report.answered} answered) in ${(report.durationMs / 1000).toFixed(0)} s; containers started: ${report.containersStarted.static} declared, ${report.containersStarted.docker} docker`,
    `      per client: ${Object.entries(report.byClient).map(([k, v]) => `${k} ${v}`).join(', ')}; slowest answer: ${Object.entries(report.slowestMs).map(([k, v]) => `${k} ${v} ms`).join(', ')}`,
    `      RSS ${report.rssKiB.warm} KiB after warm-up, ${report.rssKiB.final} KiB at the end, ${report.rssKiB.peak} KiB peak (${report.rssKiB.samples} samples); fds ${report.fds.before} before, ${report.fds.after} after; log +${report.logBytes} bytes; slowest probe ${report.slowestProbeMs} ms`,
    ...invariants.map((name) => `  ${(report.violations[name] ?? 0) === 0 ? 'held  ' : 'BROKEN'} ${name}${report.violations[name] ? ` (${report.violations[name]} times)` : ''}`),
    ...report.examples.map((v) => `    ${v.invariant}: ${v.detail}`),
  ].join('\n');
}

async function main(argv: readonly string[]): Promise<number> {
  const program = new Command('soak')
    .description('the built crootd under steady use while containers come and go')
    .option('--minutes <n>', 'how long', Number, 60)
    .option('--clients <n>', 'clients asking at once (half through PCP C client library)', Number, 8)
    .option('--churn-seconds <n>', 'seconds between container changes', Number, 5)
    .option('--no-docker', 'leave Docker out')
    .option('--json', 'print the report as JSON')
    .exitOverride();
  program.parse(argv, { from: 'user' });
  const o = program.opts<{ minutes: number; clients: number; churnSeconds: number; docker: boolean; json?: boolean }>();
  if (process.getuid?.() !== 0) throw new Error('the soak needs root (sandboxes, crootd, docker)');
  const report = await runSoak({ minutes: o.minutes, clients: o.clients, churnSeconds: o.churnSeconds, docker: o.docker, progress: (line) => process.stderr.write(`${line}\n`) });
  process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : `${describeSoak(report)}\n`);
  return Object.keys(report.violations).length === 0 ? 0 : 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`soak: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(2);
    },
  );
}

