/**
 * The run's picture: lookup latency, RSS and time to the first right answer
 * against the number of containers, crootd and PCP's pmdaroot (log scales).
 * Vega-Lite compiles the spec, Vega renders it to SVG without a browser,
 * resvg turns the SVG into a PNG. All three are ESM-only, hence `import()`.
 */
import { writeFileSync } from 'node:fs';
import type { RunResult } from './results.js';

interface Point {
  readonly containers: number;
  readonly server: string;
  /** The lookup (PID, hostname, cgroup), or '' for the other panels. */
  readonly request: string;
  readonly series: string;
  readonly value: number;
}

const OP_LABEL: Record<string, string> = { processid: 'PID', hostname: 'hostname', cgroup: 'cgroup' };

function points(run: RunResult): { latency: Point[]; rss: Point[]; first: Point[] } {
  const latency: Point[] = [];
  const rss: Point[] = [];
  const first: Point[] = [];
  const client = run.scenarios.some((s) => s.lookups.some((l) => l.client === 'pcp-c')) ? 'pcp-c' : 'croot-node';
  const synthetic = run.scenarios.filter((s) => s.kind === 'synthetic').sort((a, b) => a.containers - b.containers);
  for (const s of synthetic) {
    for (const l of s.lookups) {
      if (l.ref !== 'name' || l.clients !== 1 || l.client !== client) continue;
      for (const [server, r] of [
        ['crootd', l.croot],
        ['pmdaroot', l.pcp],
      ] as const) {
        if (r !== undefined && Number.isFinite(r.p50Us)) latency.push({ containers: s.containers, server, request: OP_LABEL[l.op] ?? l.op, series: `${server} ${OP_LABEL[l.op]}`, value: r.p50Us });
      }
    }
    for (const [server, m] of [
      ['crootd', s.servers.croot],
      ['pmdaroot', s.servers.pcp],
    ] as const) {
      if (m === undefined) continue;
      if (Number.isFinite(m.rssLoadedMb)) rss.push({ containers: s.containers, server, request: '', series: server, value: m.rssLoadedMb });
      if (Number.isFinite(m.firstAnswerMs)) first.push({ containers: s.containers, server, request: '', series: server, value: m.firstAnswerMs / 1000 });
    }
  }
  const floor = run.floors.find((f) => f.server !== 'c' && f.client === client && f.op === 'processid' && f.clients === 1);
  if (floor !== undefined) for (const s of synthetic) latency.push({ containers: s.containers, server: 'Node floor', request: 'PID', series: 'Node floor PID', value: floor.result.p50Us });
  return { latency, rss, first };
}

function panel(title: string, axis: string, values: readonly Point[], dashBy: boolean): unknown {
  return {
    title,
    width: 330,
    height: 260,
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'containers', type: 'quantitative', scale: { type: 'log' }, title: 'containers (on-disk Docker state)' },
      y: { field: 'value', type: 'quantitative', scale: { type: 'log' }, title: axis },
      color: { field: 'server', type: 'nominal', title: 'server', scale: { domain: ['crootd', 'pmdaroot', 'Node floor'], range: ['#1f77b4', '#d62728', '#7f7f7f'] } },
      ...(dashBy
        ? {
            strokeDash: { field: 'request', type: 'nominal', title: 'lookup', scale: { domain: ['PID', 'hostname', 'cgroup'] } },
            shape: { field: 'request', type: 'nominal', title: 'lookup', scale: { domain: ['PID', 'hostname', 'cgroup'] } },
          }
        : {}),
      detail: { field: 'series', type: 'nominal' },
    },
  };
}

/** Writes the PNG; returns why not when there is nothing to plot or a library is missing. */
export async function writePlot(run: RunResult, path: string): Promise<string | undefined> {
  const { latency, rss, first } = points(run);
  if (latency.length === 0 && rss.length === 0) return 'no synthetic scenario was measured';
  const vegaLite = (await import('vega-lite')) as unknown as { compile(spec: unknown): { spec: unknown } };
  const vega = (await import('vega')) as unknown as {
    parse(spec: unknown): unknown;
    View: new (runtime: unknown, options: { renderer: string }) => { toSVG(): Promise<string>; finalize(): void };
  };
  const { Resvg } = (await import('@resvg/resvg-js')) as unknown as {
    Resvg: new (svg: string, options: unknown) => { render(): { asPng(): Buffer } };
  };
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: `crootd (${run.crootd.build}) and PCP's pmdaroot, ${String(run.machine.date).slice(0, 16)}Z`, fontSize: 14 },
    background: 'white',
    padding: 12,
    hconcat: [
      panel('Lookup by name, p50 (1 client, PCP C library)', 'µs', latency, true),
      panel('RSS after loading', 'MB', rss, false),
      panel('First right answer after start', 's', first, false),
    ],
    resolve: { scale: { color: 'shared' } },
  };
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const png = new Resvg(svg, { fitTo: { mode: 'zoom', value: 1.5 }, font: { loadSystemFonts: true }, background: 'white' }).render().asPng();
  writeFileSync(path, png);
  return undefined;
}
