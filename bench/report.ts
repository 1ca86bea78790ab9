/**
 * The table of record: one row per measure, crootd and PCP's pmdaroot side
 * by side with the floors, their ratios, and the targets of issue 7 checked
 * where one applies. Rendered as an aligned Markdown table.
 */
import type { ClientKind, LoadResult, RequestOp } from './load-clients.js';
import type { CliMeasure, FloorMeasure, LookupMeasure, RunResult, ScenarioResult } from './results.js';

export interface TableRow {
  readonly containers: string;
  readonly measure: string;
  readonly client: string;
  readonly unit: string;
  readonly croot?: number;
  readonly pcp?: number;
  readonly nodeFloor?: number;
  readonly kernelFloor?: number;
  readonly crootPerPcp?: number;
  readonly crootPerFloor?: number;
  readonly crootP99?: number;
  readonly pcpP99?: number;
  readonly crootCpuUs?: number;
  readonly pcpCpuUs?: number;
  /** Timed calls, crootd / PCP (few calls: a slow server, read its numbers with care). */
  readonly calls?: string;
  /** Wrong answers, crootd / PCP. */
  readonly wrong?: string;
  readonly target: string;
  /** PASS, FAIL, WRONG (crootd gave wrong answers), n/a (not measurable here), or '' (no target). */
  readonly check: string;
}

const OP_LABEL: Record<RequestOp, string> = { processid: 'PID', hostname: 'hostname', cgroup: 'cgroup' };
const CLIENT_LABEL: Record<ClientKind, string> = { 'pcp-c': 'PCP C lib', 'croot-node': 'RootClient', socketpair: 'socketpair' };

function verdict(ok: boolean | undefined): string {
  return ok === undefined ? 'n/a' : ok ? 'PASS' : 'FAIL';
}

function finite(n: number | undefined): number | undefined {
  return n !== undefined && Number.isFinite(n) ? n : undefined;
}

/** The headline number of a load row: p50 µs for one client, aggregate req/s for several. */
function headline(r: LoadResult | undefined, clients: number): number | undefined {
  if (r === undefined) return undefined;
  return clients === 1 ? r.p50Us : r.reqPerSec;
}

function floorOf(floors: readonly FloorMeasure[], client: ClientKind, op: RequestOp | 'socketpair', clients: number): LoadResult | undefined {
  return floors.find((f) => f.server !== 'c' && f.client === client && f.op === op && f.clients === clients)?.result;
}

function findLookup(scenario: ScenarioResult | undefined, m: Pick<LookupMeasure, 'engine' | 'op' | 'ref' | 'client' | 'clients'>): LookupMeasure | undefined {
  return scenario?.lookups.find((l) => l.engine === m.engine && l.op === m.op && l.ref === m.ref && l.client === m.client && l.clients === m.clients);
}

interface Target {
  readonly text: string;
  readonly ok: boolean | undefined;
}

/** The targets of issue 7 that apply to one lookup row. */
function lookupTargets(run: RunResult, scenario: ScenarioResult, l: LookupMeasure, nodeFloor: LoadResult | undefined): Target[] {
  const out: Target[] = [];
  const c = l.croot;
  const p = l.pcp;
  if (l.client !== 'pcp-c' || c === undefined) return out;
  const ratio = (a: number | undefined, b: number | undefined): number | undefined => (a !== undefined && b !== undefined && b > 0 ? a / b : undefined);
  if (l.clients === 1 && scenario.kind === 'real' && l.engine === 'docker' && l.ref === 'name') {
    const limit = l.op === 'hostname' ? 0.6 : 0.5;
    const r = ratio(c.p50Us, p?.p50Us);
    out.push({ text: `≤ ${limit}× PCP`, ok: r === undefined ? undefined : r <= limit });
    if (l.op === 'processid') {
      const f = ratio(c.p50Us, nodeFloor?.p50Us);
      out.push({ text: '≤ 1.3× Node floor', ok: f === undefined ? undefined : f <= 1.3 });
    }
  }
  if (l.clients === 1 && scenario.kind === 'synthetic' && scenario.containers === 10000) {
    const at10 = findLookup(run.scenarios.find((s) => s.kind === 'synthetic' && s.containers === 10), l)?.croot;
    const r = ratio(c.p50Us, at10?.p50Us);
    out.push({ text: `≤ 1.3× at 10 (${at10 ? fmt(at10.p50Us) : '?'} µs)`, ok: r === undefined ? undefined : r <= 1.3 });
  }
  if (l.clients === 1 && scenario.kind === 'synthetic' && scenario.containers === 1000) {
    const r = ratio(p?.p50Us, c.p50Us);
    // pmdaroot opens a full id's folder directly instead of scanning: its time does not grow with the count,
    // and 300× its few µs would be under the kernel's own round trip. There croot must simply not be slower.
    if (l.ref === 'full id') out.push({ text: '≤ 1× PCP (no scan by full id)', ok: r === undefined ? undefined : r >= 1 });
    else out.push({ text: '≥ 300× faster than PCP', ok: r === undefined ? undefined : r >= 300 });
  }
  if (l.clients === 8) {
    const r = ratio(c.reqPerSec, p?.reqPerSec);
    out.push({ text: '≥ 2× PCP req/s', ok: r === undefined ? undefined : r >= 2 });
  }
  return out;
}

/** Issue 10's start-up targets (seconds, median wall time) by CLI command key (cli-startup.ts). */
const CLI_TARGETS: Readonly<Record<string, number>> = { version: 0.15, 'socket-pid': 0.25, pid: 0.4, 'pid-docker': 0.4 };

/** The target and check of one CLI start-up command. */
function cliTarget(c: CliMeasure): { target: string; check: string } {
  const limit = CLI_TARGETS[c.command];
  if (limit === undefined) return { target: '', check: '' };
  const target = `≤ ${limit} s`;
  if (c.wrong > 0) return { target, check: 'WRONG' };
  return { target, check: verdict(c.runs === 0 || !Number.isFinite(c.medianMs) ? undefined : c.medianMs / 1000 <= limit) };
}

/** The `node -e 0` floor of the CLI section, if it was measured. */
function cliFloor(cli: readonly CliMeasure[]): number | undefined {
  const f = cli.find((c) => c.command === 'node');
  return f !== undefined && f.runs > 0 && Number.isFinite(f.medianMs) && f.medianMs > 0 ? f.medianMs : undefined;
}

function combine(targets: readonly Target[], crootWrong: number): { target: string; check: string } {
  if (crootWrong > 0) return { target: targets.map((t) => t.text).join('; '), check: 'WRONG' };
  if (targets.length === 0) return { target: '', check: '' };
  const oks = targets.map((t) => t.ok);
  const check = oks.some((o) => o === false) ? 'FAIL' : oks.some((o) => o === undefined) ? 'n/a' : 'PASS';
  return { target: targets.map((t) => t.text).join('; '), check };
}

export function buildTable(run: RunResult): TableRow[] {
  const rows: TableRow[] = [];
  for (const scenario of run.scenarios) {
    const containers = scenario.label;
    const sc = scenario.servers.croot;
    const sp = scenario.servers.pcp;
    if (sc !== undefined || sp !== undefined) {
      const firstLimit = scenario.kind === 'synthetic' ? (scenario.containers === 10 ? 0.5 : scenario.containers === 10000 ? 2 : undefined) : undefined;
      const first = finite(sc?.firstAnswerMs);
      rows.push({
        containers,
        measure: 'first right answer after start',
        client: 'RootClient',
        unit: 's',
        ...opt('croot', first === undefined ? undefined : first / 1000),
        ...opt('pcp', sp ? sp.firstAnswerMs / 1000 : undefined),
        ...ratioOf(first, sp?.firstAnswerMs),
        ...(firstLimit === undefined ? { target: '', check: '' } : { target: `≤ ${firstLimit} s`, check: verdict(first === undefined ? undefined : first / 1000 <= firstLimit) }),
      });
      const rssTarget = scenario.kind === 'synthetic' && scenario.containers === 10000;
      rows.push({
        containers,
        measure: 'RSS after loading (idle)',
        client: '',
        unit: 'MB',
        ...opt('croot', finite(sc?.rssLoadedMb)),
        ...opt('pcp', finite(sp?.rssLoadedMb)),
        ...ratioOf(finite(sc?.rssLoadedMb), finite(sp?.rssLoadedMb)),
        ...(rssTarget ? { target: '≤ 80 MB', check: verdict(sc === undefined ? undefined : sc.rssLoadedMb <= 80) } : { target: '', check: '' }),
      });
      rows.push({
        containers,
        measure: 'RSS after the lookups',
        client: '',
        unit: 'MB',
        ...opt('croot', finite(sc?.rssAfterMb)),
        ...opt('pcp', finite(sp?.rssAfterMb)),
        ...ratioOf(finite(sc?.rssAfterMb), finite(sp?.rssAfterMb)),
        target: '',
        check: '',
      });
      rows.push({
        containers,
        measure: 'idle CPU, no requests',
        client: '',
        unit: '% core',
        ...opt('croot', finite(sc?.idleCpuPct)),
        ...opt('pcp', finite(sp?.idleCpuPct)),
        target: '≤ 1 %',
        check: verdict(sc === undefined || !Number.isFinite(sc.idleCpuPct) ? undefined : sc.idleCpuPct <= 1),
      });
    }
    for (const l of scenario.lookups) {
      // The floor of the row itself when it was measured there, else the run-start one.
      const nodeFloor = l.floor ?? floorOf(run.floors, l.client, l.op, l.clients);
      const kernelFloor = floorOf(run.floors, 'socketpair', 'socketpair', l.clients);
      const c = headline(l.croot, l.clients);
      const p = headline(l.pcp, l.clients);
      const f = headline(nodeFloor, l.clients);
      const { target, check } = combine(lookupTargets(run, scenario, l, nodeFloor), l.croot?.wrong ?? 0);
      const engine = l.engine === 'docker' ? '' : `${l.engine} `;
      rows.push({
        containers,
        measure: `${engine}${OP_LABEL[l.op]} by ${l.ref}${l.clients > 1 ? `, ${l.clients} clients` : ''}`,
        client: CLIENT_LABEL[l.client],
        unit: l.clients === 1 ? 'µs p50' : 'req/s',
        ...opt('croot', c),
        ...opt('pcp', p),
        ...opt('nodeFloor', f),
        ...opt('kernelFloor', headline(kernelFloor, l.clients)),
        ...ratioOf(c, p),
        ...(c !== undefined && f !== undefined && f > 0 ? { crootPerFloor: c / f } : {}),
        ...opt('crootP99', l.croot?.p99Us),
        ...opt('pcpP99', l.pcp?.p99Us),
        ...opt('crootCpuUs', finite(l.croot?.cpuUsPerReq)),
        ...opt('pcpCpuUs', finite(l.pcp?.cpuUsPerReq)),
        calls: `${l.croot?.calls ?? '-'} / ${l.pcp?.calls ?? '-'}`,
        wrong: `${l.croot?.wrong ?? (l.crootError ? 'no result' : '-')} / ${l.pcp?.wrong ?? (l.pcpError ? 'no result' : '-')}`,
        target,
        check,
      });
    }
    for (const ch of scenario.changes) {
      const croot = ch.results.find((r) => r.role === 'croot');
      const pcp = ch.results.find((r) => r.role === 'pcp');
      const crootMs = finite(croot?.ms);
      const seen = croot !== undefined && crootMs !== undefined;
      rows.push({
        containers,
        measure: `${ch.engine} container ${ch.event} → shows`,
        client: 'RootClient',
        unit: 'ms',
        ...opt('croot', crootMs),
        ...opt('pcp', finite(pcp?.ms)),
        ...ratioOf(crootMs, finite(pcp?.ms)),
        wrong: `${croot ? `${croot.flaps} flaps` : '-'} / ${pcp ? `${pcp.flaps} flaps` : '-'}`,
        target: '≤ 250 ms, no flap',
        check: croot === undefined ? 'n/a' : verdict(seen && (crootMs as number) <= 250 && croot.flaps === 0),
      });
    }
    const floor = cliFloor(scenario.cli ?? []);
    for (const c of scenario.cli ?? []) {
      const median = c.runs > 0 ? finite(c.medianMs) : undefined;
      rows.push({
        containers,
        measure: `start-up: ${c.label}`,
        client: 'spawn',
        unit: 'ms',
        ...opt('croot', median),
        ...opt('nodeFloor', floor),
        ...(median !== undefined && floor !== undefined ? { crootPerFloor: median / floor } : {}),
        ...opt('crootCpuUs', finite(c.cpuMs * 1000)),
        calls: `${c.runs} / -`,
        wrong: `${c.error ? 'no result' : c.wrong} / -`,
        ...cliTarget(c),
      });
    }
  }
  return rows;
}

function opt<K extends keyof TableRow>(key: K, value: number | undefined): Partial<Pick<TableRow, K>> {
  return value === undefined || !Number.isFinite(value) ? {} : ({ [key]: value } as Partial<Pick<TableRow, K>>);
}

function ratioOf(croot: number | undefined, pcp: number | undefined): Partial<TableRow> {
  return croot !== undefined && pcp !== undefined && Number.isFinite(croot) && Number.isFinite(pcp) && pcp > 0 ? { crootPerPcp: croot / pcp } : {};
}

/** A number as the table shows it: 3 significant digits, grouped thousands. */
export function fmt(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '';
  const abs = Math.abs(n);
  if (abs > 0 && abs < 0.01) return String(Number(n.toPrecision(2)));
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  const [int, frac] = n.toFixed(digits).split('.');
  const grouped = (int as string).replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
  return frac === undefined ? grouped : `${grouped}.${frac}`;
}

function fmtRatio(n: number | undefined): string {
  return n === undefined ? '' : `${fmt(n)}×`;
}

type Column = readonly [string, (r: TableRow) => string, boolean];

const COLUMNS: readonly Column[] = [
  ['containers', (r) => r.containers, false],
  ['measure', (r) => r.measure, false],
  ['client', (r) => r.client, false],
  ['unit', (r) => r.unit, false],
  ['croot', (r) => fmt(r.croot), true],
  ['PCP', (r) => fmt(r.pcp), true],
  ['Node floor', (r) => fmt(r.nodeFloor), true],
  ['kernel floor', (r) => fmt(r.kernelFloor), true],
  ['croot/PCP', (r) => fmtRatio(r.crootPerPcp), true],
  ['croot/floor', (r) => fmtRatio(r.crootPerFloor), true],
  ['croot p99 µs', (r) => fmt(r.crootP99), true],
  ['PCP p99 µs', (r) => fmt(r.pcpP99), true],
  ['croot CPU µs/req', (r) => fmt(r.crootCpuUs), true],
  ['PCP CPU µs/req', (r) => fmt(r.pcpCpuUs), true],
  ['calls croot/PCP', (r) => r.calls ?? '', true],
  ['wrong croot/PCP', (r) => r.wrong ?? '', false],
  ['target', (r) => r.target, false],
  ['check', (r) => r.check, false],
];

/** The rows as an aligned Markdown table (all columns, or those named). */
export function renderMarkdown(rows: readonly TableRow[], only?: readonly string[]): string {
  const columns = only === undefined ? COLUMNS : COLUMNS.filter(([name]) => only.includes(name));
  const cells = rows.map((r) => columns.map(([, get]) => get(r)));
  const widths = columns.map(([name], i) => Math.max(name.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (values: readonly string[]): string =>
    `| ${values.map((v, i) => (columns[i]?.[2] ? v.padStart(widths[i] ?? 0) : v.padEnd(widths[i] ?? 0))).join(' | ')} |`;
  const rule = `|${columns.map(([, , right], i) => `${'-'.repeat((widths[i] ?? 1) + 1)}${right ? ':' : '-'}`).join('|')}|`;
  return [line(columns.map(([name]) => name)), rule, ...cells.map(line)].join('\n') + '\n';
}

const HEADLINE_MEASURES = /^(first right answer|RSS after loading|idle CPU|(PID|hostname|cgroup) by name(, 8 clients)?$|docker container created|start-up: )/;

/**
 * The headline: the rows issue 7's figures are about (start, memory, idle,
 * lookups by name with PCP's client, 8 clients, a new Docker container),
 * with the columns that compare. The full table has the rest.
 */
export function renderHeadline(rows: readonly TableRow[]): string {
  const picked = rows.filter((r) => HEADLINE_MEASURES.test(r.measure) && (r.client !== 'RootClient' || /^(first right answer|docker container created)/.test(r.measure)));
  return renderMarkdown(picked, ['containers', 'measure', 'unit', 'croot', 'PCP', 'Node floor', 'croot/PCP', 'croot/floor', 'calls croot/PCP', 'target', 'check']);
}

/** The floors as a small table (they are also the floor columns of the big one). */
export function renderFloors(floors: readonly FloorMeasure[]): string {
  const rows = floors.map((f) => [
    f.client === 'socketpair' ? 'kernel socketpair, 24 B each way' : `${f.server === 'c' ? 'C' : 'Node'} floor, ${OP_LABEL[f.op as RequestOp]}`,
    CLIENT_LABEL[f.client],
    String(f.clients),
    fmt(f.result.p50Us),
    fmt(f.result.p99Us),
    fmt(f.result.reqPerSec),
    fmt(finite(f.result.cpuUsPerReq)),
    String(f.result.wrong),
  ]);
  const head = ['floor', 'client', 'clients', 'p50 µs', 'p99 µs', 'req/s', 'server CPU µs/req', 'wrong'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (v: readonly string[]): string => `| ${v.map((x, i) => (i >= 2 ? x.padStart(widths[i] ?? 0) : x.padEnd(widths[i] ?? 0))).join(' | ')} |`;
  return [line(head), `|${widths.map((w, i) => `${'-'.repeat(w + 1)}${i >= 2 ? ':' : '-'}`).join('|')}|`, ...rows.map(line)].join('\n') + '\n';
}

/**
 * The CLI start-up section as a table of its own: per command the runs,
 * median/min/max wall time, the child's CPU, the ratio to `node -e 0` in the
 * same run, the modules it loaded, and its target; '' when the run has none.
 */
export function renderCli(run: RunResult): string {
  const rows: string[][] = [];
  for (const scenario of run.scenarios) {
    const floor = cliFloor(scenario.cli ?? []);
    for (const c of scenario.cli ?? []) {
      const { target, check } = cliTarget(c);
      const has = c.runs > 0;
      rows.push([
        c.label,
        String(c.runs),
        has ? fmt(c.medianMs) : '',
        has ? fmt(Math.min(...c.wallMs)) : '',
        has ? fmt(Math.max(...c.wallMs)) : '',
        has ? fmt(finite(c.cpuMs)) : '',
        has && floor !== undefined ? fmtRatio(c.medianMs / floor) : '',
        c.modules === undefined ? '' : String(c.modules),
        c.error ? `no result: ${c.error.slice(0, 80)}` : String(c.wrong),
        target,
        check,
      ]);
    }
  }
  if (rows.length === 0) return '';
  const head = ['command', 'runs', 'median ms', 'min ms', 'max ms', 'CPU ms/run', '× node -e 0', 'modules', 'wrong', 'target', 'check'];
  const right = (i: number): boolean => i >= 1 && i <= 7;
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (v: readonly string[]): string => `| ${v.map((x, i) => (right(i) ? x.padStart(widths[i] ?? 0) : x.padEnd(widths[i] ?? 0))).join(' | ')} |`;
  return [line(head), `|${widths.map((w, i) => `${'-'.repeat(w + 1)}${right(i) ? ':' : '-'}`).join('|')}|`, ...rows.map(line)].join('\n') + '\n';
}

/** PASS/FAIL/n/a counts of the rows with a target. */
export function summarize(rows: readonly TableRow[]): Record<string, number> {
  const out: Record<string, number> = { PASS: 0, FAIL: 0, WRONG: 0, 'n/a': 0 };
  for (const r of rows) if (r.check !== '') out[r.check] = (out[r.check] ?? 0) + 1;
  return out;
}

/** Why rows have no numbers for a server (failures, spent budgets), one line each. */
export function rowErrors(run: RunResult): string[] {
  const out: string[] = [];
  for (const scenario of run.scenarios) {
    for (const l of scenario.lookups) {
      const what = `${scenario.label}, ${l.engine === 'docker' ? '' : `${l.engine} `}${OP_LABEL[l.op]} by ${l.ref}, ${CLIENT_LABEL[l.client]} x${l.clients}`;
      if (l.crootError) out.push(`${what}: crootd: ${l.crootError}`);
      if (l.pcpError) out.push(`${what}: PCP: ${l.pcpError}`);
    }
  }
  return out;
}
