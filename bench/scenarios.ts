/**
 * What the scenarios of a run share, and the floors. Each scenario
 * (synthetic-scenario.ts: N on-disk Docker containers with real processes
 * behind them; real-scenario.ts: a few real containers) starts its own
 * crootd and pmdaroot, times their first right answer, lets them idle,
 * measures the lookups row by row (both servers in turn, the order
 * alternating), then times changes to the containers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { delay, rssMb } from './bench-processes.js';
import type { CHelpers } from './c-helpers.js';
import { InitProcesses } from './init-processes.js';
import { runLoad, type ClientKind, type Expectation, type LoadResult, type RequestOp } from './load-clients.js';
import { cgroupPaths, type EngineName } from './real-containers.js';
import type { FloorMeasure, FloorServerKind, LookupMeasure, RefKind, ScenarioResult, ServerMeasure } from './results.js';
import { idleCpu, startCrootd, startFloor, startPmdaroot, type KnownContainer, type RunningServer } from './servers.js';

/** How long and how much: the full run and `--quick` differ only here. */
export interface Settings {
  readonly quick: boolean;
  /** Timed part of one row, per server. */
  readonly rowMs: number;
  /** Calls per client per row, at most. */
  readonly maxCalls: number;
  /** Calls per client per row, at least (unless `rowCapMs` runs out): a row of a slow server still has a distribution. */
  readonly minCalls: number;
  readonly rowCapMs: number;
  /** Untimed calls per client before a row (fewer for a slow server). */
  readonly warmupCalls: number;
  /** Untimed load per request type before a scenario's first row, per server (JIT). */
  readonly serverWarmupMs: number;
  readonly settleMs: number;
  readonly idleMs: number;
  readonly clientCounts: readonly number[];
  readonly changeTimeoutMs: number;
  /** Changes timed on the synthetic tree and on Docker. */
  readonly events: readonly ('created' | 'renamed' | 'stopped' | 'restarted' | 'removed')[];
  readonly firstAnswerTimeoutMs: number;
  /** Time each server may spend on one scenario's lookups; rows after that are skipped. */
  readonly lookupBudgetMs: number;
  /** Engines besides Docker in the real scenario. */
  readonly otherEngines: readonly EngineName[];
  /** Timed runs of each command of the CLI start-up section, after `cliWarmups` untimed rounds. */
  readonly cliRuns: number;
  readonly cliWarmups: number;
}

export interface Tools {
  readonly crootd: string;
  /** The croot CLI whose start-up the real scenario times. */
  readonly croot: string;
  /** The compiled count-modules.js (see cli-startup.ts). */
  readonly countModulesScript: string;
  readonly helpers: CHelpers;
  readonly rootClientScript: string;
  /** The run's temp folder (sockets, logs, reference files). */
  readonly work: string;
  /** Where synthetic Docker trees go: a tmpfs when there is one (see syntheticScenario). */
  readonly treeRoot: string;
  readonly settings: Settings;
  progress(line: string): void;
  /** Reports wrong answers loudly (stderr at once, and in the run's notes). */
  wrong(message: string): void;
  /** The Node floor server, up for the whole run: every by-name row measures it too (see measureLookups). */
  floor?: LiveFloor;
}

const OPS: readonly RequestOp[] = ['processid', 'hostname', 'cgroup'];
const REFS: readonly RefKind[] = ['name', 'full id', '12-char prefix'];

/** What is known about one container for checking answers. */
export interface Truth {
  readonly name: string;
  readonly id: string;
  readonly pid: number;
  readonly hostname: string;
  readonly cgroups: readonly string[];
}

function refOf(t: Truth, kind: RefKind): string {
  return kind === 'name' ? t.name : kind === 'full id' ? t.id : t.id.slice(0, 12);
}

/**
 * The right answers for each server. crootd: the kernel's truth (the init
 * PID, its UTS hostname, one of its /proc/PID/cgroup paths). PCP: the same
 * PID and hostname, and a cgroup path naming the container's id (pmdaroot
 * builds it from the id and its cgroup search, and guesses `docker/<id>`
 * when the folder is not there).
 */
function expectations(truths: readonly Truth[], kind: RefKind, op: RequestOp, role: 'croot' | 'pcp'): Expectation[] {
  return truths.map((t) => {
    const name = refOf(t, kind);
    if (op === 'processid') return { name, pid: t.pid, mode: 'any', values: [] };
    if (op === 'hostname') return { name, pid: t.pid, mode: 'eq', values: [t.hostname] };
    return role === 'croot' ? { name, pid: t.pid, mode: 'eq', values: t.cgroups } : { name, pid: t.pid, mode: 'has', values: [t.id] };
  });
}

function programFor(tools: Tools, client: ClientKind): string | undefined {
  if (client === 'croot-node') return tools.rootClientScript;
  if (client === 'socketpair') return tools.helpers.pingPong;
  return typeof tools.helpers.pcpLoadClient === 'string' ? tools.helpers.pcpLoadClient : undefined;
}

/** Runs one load and reports wrong answers loudly. */
async function load(
  tools: Tools,
  what: string,
  server: RunningServer | undefined,
  client: ClientKind,
  op: RequestOp,
  refs: readonly Expectation[],
  clients: number,
  durationMs: number,
  warmupCalls: number,
): Promise<LoadResult> {
  const program = programFor(tools, client);
  if (program === undefined) throw new Error(`no ${client} client`);
  const s = tools.settings;
  // A Node client needs more calls than a C one before V8 has compiled its path.
  if (client === 'croot-node') warmupCalls *= 5;
  const result = await runLoad({
    label: what,
    kind: client,
    program,
    socket: server?.socket ?? '',
    op,
    refs,
    clients,
    durationMs,
    maxCalls: s.maxCalls,
    minCalls: client === 'socketpair' ? 0 : s.minCalls,
    capMs: Math.max(s.rowCapMs, durationMs),
    warmupCalls,
    serverPid: server?.pid,
    workDir: tools.work,
  });
  if (result.wrong > 0) tools.wrong(`${what}: ${result.wrong} wrong answers of ${result.calls} timed (+ warm-up); first: ${result.firstWrong}`);
  return result;
}

// ------------------------------------------------------------------ floors

/** The Node floor server with the one process it answers for, kept up for the run. */
export interface LiveFloor {
  readonly server: RunningServer;
  /** The right answers of the floor's fixed replies. */
  refs(op: RequestOp): Expectation[];
  stop(): Promise<void>;
}

/**
 * Starts a floor server on a process of its own: the Node floor
 * (bench/floor-server.ts), or its twin in C (bench/c-floor-server.c).
 */
export async function startLiveFloor(tools: Tools, kind: FloorServerKind = 'node'): Promise<LiveFloor> {
  const init = new InitProcesses(tools.helpers.initProcesses);
  const [proc] = await init.spawn(1, 'floor');
  if (proc === undefined) {
    await init.stop();
    throw new Error('no process for the floor');
  }
  const cgroup = cgroupPaths(proc.pid)[0] ?? 'floor';
  const dir = mkdtempSync(join(tools.work, 'floor-'));
  let server: RunningServer;
  try {
    server = await startFloor(kind, tools.helpers.cFloorServer, dir, proc.pid, proc.hostname, cgroup);
  } catch (err) {
    await init.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    server,
    refs: (op) => [
      { name: 'floor', pid: proc.pid, mode: op === 'processid' ? 'any' : 'eq', values: op === 'hostname' ? [proc.hostname] : op === 'cgroup' ? [cgroup] : [] },
    ],
    stop: async () => {
      await server.stop();
      await init.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The Node floor (fixed replies) for every client kind and count, the same
 * fixed replies from the C floor with PCP's client, and the kernel's
 * socketpair round trip, measured at the run's start (the rows by full id
 * and prefix are compared with the Node floor's; the by-name rows measure
 * the Node floor again beside the servers).
 */
export async function measureFloors(tools: Tools, floor: LiveFloor, cFloor?: LiveFloor): Promise<{ floors: FloorMeasure[]; notes: string[] }> {
  const s = tools.settings;
  const floors: FloorMeasure[] = [];
  const notes: string[] = [];
  const clientsFor = (client: ClientKind): readonly number[] =>
    client === 'croot-node' ? s.clientCounts.filter((c) => c === 1 || (c === 8 && !s.quick)) : s.clientCounts;
  for (const client of ['pcp-c', 'croot-node'] as const) {
    if (programFor(tools, client) === undefined) continue;
    for (const clients of clientsFor(client)) {
      for (const op of OPS) {
        // The same rows as the scenarios have (see plans()).
        if ((client === 'croot-node' || clients > 1) && s.quick && op !== 'processid') continue;
        if (client === 'croot-node' && clients > 1 && op !== 'processid') continue;
        tools.progress(`floor: Node floor, ${client}, ${op}, ${clients} client(s)`);
        const result = await load(tools, `Node floor ${op}`, floor.server, client, op, floor.refs(op), clients, s.rowMs, s.warmupCalls);
        floors.push({ client, op, clients, result });
      }
    }
  }
  if (cFloor !== undefined && programFor(tools, 'pcp-c') !== undefined) {
    for (const clients of s.clientCounts) {
      for (const op of OPS) {
        if (clients > 1 && s.quick && op !== 'processid') continue;
        tools.progress(`floor: C floor, pcp-c, ${op}, ${clients} client(s)`);
        const result = await load(tools, `C floor ${op}`, cFloor.server, 'pcp-c', op, cFloor.refs(op), clients, s.rowMs, s.warmupCalls);
        floors.push({ client: 'pcp-c', op, clients, result, server: 'c' });
      }
    }
    notes.push(
      'C floor: the Node floor\'s fixed replies from one C thread (epoll, one read and one write a request; bench/c-floor-server.c), with PCP\'s client, at the run\'s start: what no server on this socket and machine can go below.',
    );
  }
  for (const clients of s.clientCounts) {
    tools.progress(`floor: kernel socketpair, ${clients} pair(s)`);
    const result = await load(tools, 'socketpair floor', undefined, 'socketpair', 'processid', [], clients, s.rowMs, s.warmupCalls);
    floors.push({ client: 'socketpair', op: 'socketpair', clients, result });
  }
  notes.push(
    `Node floor: node ${process.version} on a unix socket, INFO on accept, framing by length, one fixed reply per request in one write (bench/floor-server.ts); measured at the run's start, and again in every by-name row, beside the servers (the row's own is the one its ratios use).`,
  );
  return { floors, notes };
}

// ------------------------------------------------------------------ shared steps

export interface Pair {
  readonly croot: RunningServer;
  readonly pcp: RunningServer | undefined;
}

export async function startPair(
  tools: Tools,
  dir: string,
  known: KnownContainer,
  crootEnv: Record<string, string>,
  pcpEnv: Record<string, string> | undefined,
  pcpEmptyEngines: boolean,
): Promise<Pair> {
  const s = tools.settings;
  tools.progress(`  starting crootd, waiting for its first right answer`);
  const croot = await startCrootd({ crootd: tools.crootd, dir: join(dir, 'croot'), config: {}, env: crootEnv }, known, s.firstAnswerTimeoutMs);
  let pcp: RunningServer | undefined;
  if (pcpEnv !== undefined) {
    tools.progress(`  starting pmdaroot, waiting for its first right answer`);
    try {
      pcp = await startPmdaroot(join(dir, 'pcp'), pcpEnv, pcpEmptyEngines, known, s.firstAnswerTimeoutMs);
    } catch (err) {
      await croot.stop();
      throw err;
    }
  }
  return { croot, pcp };
}

export async function stopPair(pair: Pair): Promise<void> {
  await Promise.all([pair.croot.stop(), pair.pcp?.stop()]);
}

/**
 * Settles, idles, reads RSS; then loads each server untimed (V8's JIT needs
 * thousands of requests) and notes its time per call, which sizes the
 * untimed calls before each row (a server taking 250 ms a call gets one).
 */
export async function idleAndWarm(
  tools: Tools,
  pair: Pair,
  truths: readonly Truth[],
): Promise<{ measures: Map<RunningServer, { idle: number; rss: number }>; callMs: Map<RunningServer, number> }> {
  const s = tools.settings;
  // Idle means after start-up: crootd logs when its start-up work (loading, holding every init process, compacting) is done.
  const startUp = await startUpDone(pair.croot, 60000);
  tools.progress(`  crootd's start-up work: ${startUp === undefined ? 'its end not logged within 60 s' : `done (waited ${(startUp / 1000).toFixed(2)} s for it)`}`);
  await delay(s.settleMs);
  const servers = [pair.croot, ...(pair.pcp ? [pair.pcp] : [])];
  tools.progress(`  idle for ${s.idleMs / 1000} s (no requests)`);
  const idle = await idleCpu(servers, s.idleMs);
  const measures = new Map(servers.map((srv) => [srv, { idle: idle.get(srv) ?? Number.NaN, rss: rssMb(srv.pid) }]));
  const client: ClientKind = programFor(tools, 'pcp-c') !== undefined ? 'pcp-c' : 'croot-node';
  const callMs = new Map<RunningServer, number>();
  for (const server of servers) {
    tools.progress(`  warming ${server.role} up (${OPS.length} x ${s.serverWarmupMs} ms untimed)`);
    let ms = 0;
    for (const op of OPS) {
      const refs = REFS.flatMap((kind) => expectations(truths, kind, op, server.role === 'pcp' ? 'pcp' : 'croot'));
      const r = await load(tools, `${server.role} warm-up ${op}`, server, client, op, refs, 1, s.serverWarmupMs, 1);
      ms = Math.max(ms, r.calls > 0 ? (r.seconds * 1000) / r.calls : s.serverWarmupMs);
      // A server taking this long a call is not waiting for its JIT: its time goes elsewhere.
      if (ms > 100) break;
    }
    callMs.set(server, ms);
  }
  return { measures, callMs };
}

/** ms until `server`'s log says its start-up work is done (from now), or undefined after `timeoutMs`. */
async function startUpDone(server: RunningServer, timeoutMs: number): Promise<number | undefined> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (/ start-up done /.test(server.output())) return Date.now() - t0;
    if (server.exited) return undefined;
    await delay(20);
  }
  return undefined;
}

interface LookupPlan {
  readonly engine: EngineName;
  readonly op: RequestOp;
  readonly ref: RefKind;
  readonly client: ClientKind;
  readonly clients: number;
  readonly truths: readonly Truth[];
  /** False: PCP cannot answer for this engine (containerd). */
  readonly withPcp: boolean;
}

/**
 * The rows of a scenario. Full: every request by name, full id and prefix
 * with PCP's C client; by name with croot's client; by name with 4 and 8
 * clients; PID by name with 8 of croot's clients (`nodeClients8`). `--quick` and the other
 * engines of the real scenario: every request by name, one client (quick
 * adds PID by name with croot's client and with 8 C clients).
 */
export function plans(tools: Tools, engine: EngineName, truths: readonly Truth[], withPcp: boolean, full: boolean, nodeClients8 = false): LookupPlan[] {
  const s = tools.settings;
  const out: LookupPlan[] = [];
  const cKind: ClientKind = programFor(tools, 'pcp-c') !== undefined ? 'pcp-c' : 'croot-node';
  const all = full && !s.quick;
  const row = (op: RequestOp, ref: RefKind, client: ClientKind, clients: number): void => void out.push({ engine, op, ref, client, clients, truths, withPcp });
  for (const op of OPS) for (const ref of all ? REFS : (['name'] as const)) row(op, ref, cKind, 1);
  if (!full) return out;
  if (cKind === 'pcp-c') for (const op of all ? OPS : (['processid'] as const)) row(op, 'name', 'croot-node', 1);
  for (const clients of s.clientCounts.filter((c) => c > 1)) for (const op of all ? OPS : (['processid'] as const)) row(op, 'name', cKind, clients);
  // Eight Node processes take seconds to start and warm up: only where asked (the real scenario).
  if (all && nodeClients8 && cKind === 'pcp-c' && s.clientCounts.includes(8)) row('processid', 'name', 'croot-node', 8);
  return out;
}

/** Rows measured first, so a slow server's time budget covers them: one client by name, then 8 clients. */
function priority(p: LookupPlan): number {
  if (p.clients === 1 && p.ref === 'name' && p.client !== 'croot-node') return 0;
  if (p.clients === 8 && p.client !== 'croot-node') return 1;
  return 2;
}

/**
 * Measures `list` against both servers (the order alternating row by row),
 * pushing each row into `out` as it is done, in the order of `list`. Each
 * server has a time budget per scenario (`lookupBudgetMs`): once spent, its
 * remaining rows are skipped and say so. A row that fails is recorded with
 * its error and the others go on.
 */
export async function measureLookups(
  tools: Tools,
  pair: Pair,
  list: readonly LookupPlan[],
  callMs: ReadonlyMap<RunningServer, number>,
  label: string,
  out: LookupMeasure[],
): Promise<void> {
  const s = tools.settings;
  const spent = new Map<RunningServer, number>();
  const order = list.map((plan, index) => ({ plan, index })).sort((a, b) => priority(a.plan) - priority(b.plan) || a.index - b.index);
  const done: { index: number; measure: LookupMeasure }[] = [];
  let turn = 0;
  for (const { plan, index } of order) {
    const what = `${label} ${plan.engine} ${plan.op} by ${plan.ref}, ${plan.client} x${plan.clients}`;
    tools.progress(`  ${what}`);
    // The floor joins the rows by name, so their croot/floor ratios compare two servers measured moments apart.
    const floor = plan.ref === 'name' ? tools.floor : undefined;
    const servers: RunningServer[] = [pair.croot, ...(plan.withPcp && pair.pcp ? [pair.pcp] : []), ...(floor ? [floor.server] : [])];
    const shift = turn++ % servers.length;
    servers.push(...servers.splice(0, shift));
    const measure: { -readonly [K in keyof LookupMeasure]: LookupMeasure[K] } = { engine: plan.engine, op: plan.op, ref: plan.ref, client: plan.client, clients: plan.clients };
    for (const server of servers) {
      if (floor !== undefined && server === floor.server) {
        try {
          measure.floor = await load(tools, `${what} (Node floor)`, server, plan.client, plan.op, floor.refs(plan.op), plan.clients, s.rowMs, s.warmupCalls);
        } catch (err) {
          measure.floorError = (err as Error).message.slice(0, 500);
        }
        continue;
      }
      const role = server.role === 'pcp' ? 'pcp' : 'croot';
      if ((spent.get(server) ?? 0) > s.lookupBudgetMs) {
        measure[`${role}Error`] = `skipped: ${role}'s ${s.lookupBudgetMs / 1000} s budget for this scenario's lookups was spent`;
        continue;
      }
      const ms = callMs.get(server) ?? 1;
      const warmup = Math.max(1, Math.min(s.warmupCalls, Math.floor(200 / Math.max(ms, 0.001))));
      const refs = expectations(plan.truths, plan.ref, plan.op, role);
      const t0 = Date.now();
      try {
        measure[role] = await load(tools, `${what} (${role})`, server, plan.client, plan.op, refs, plan.clients, s.rowMs, warmup);
      } catch (err) {
        measure[`${role}Error`] = (err as Error).message.slice(0, 500);
        tools.progress(`  ${what} (${role}) FAILED: ${measure[`${role}Error`]}`);
      }
      spent.set(server, (spent.get(server) ?? 0) + Date.now() - t0);
    }
    done.push({ index, measure });
  }
  out.push(...done.sort((a, b) => a.index - b.index).map((d) => d.measure));
}

function serverMeasure(server: RunningServer | undefined, m: Map<RunningServer, { idle: number; rss: number }>): ServerMeasure | undefined {
  if (server === undefined) return undefined;
  const x = m.get(server);
  return { firstAnswerMs: server.firstAnswerMs, rssLoadedMb: x?.rss ?? Number.NaN, rssAfterMb: rssMb(server.pid), idleCpuPct: x?.idle ?? Number.NaN };
}

export function scenarioServers(pair: Pair, m: Map<RunningServer, { idle: number; rss: number }>): ScenarioResult['servers'] {
  const out: { croot?: ServerMeasure; pcp?: ServerMeasure } = {};
  const croot = serverMeasure(pair.croot, m);
  const pcp = serverMeasure(pair.pcp, m);
  if (croot) out.croot = croot;
  if (pcp) out.pcp = pcp;
  return out;
}
