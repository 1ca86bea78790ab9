/**
 * How croot prints: tables for people (ids cut to 12 characters, sorted
 * rows), JSON documents for programs (one schema for every command,
 * docs/cli.md), and the filters of `croot list`.
 */
import type { AnchorReport, ContainerReport, CrootDocument, EngineReport, ErrorReport, EventReport, ServerReport } from '../core/protocol/croot-extension.js';
import { errorText } from '../core/protocol/error-text.js';

export type Format = 'table' | 'json';

export interface ListFilter {
  readonly engines?: readonly string[];
  readonly states?: readonly string[];
}

export function filterContainers(list: readonly ContainerReport[], filter: ListFilter): ContainerReport[] {
  return list.filter(
    (c) =>
      (filter.engines === undefined || filter.engines.length === 0 || (c.engine !== null && filter.engines.includes(c.engine))) &&
      (filter.states === undefined || filter.states.length === 0 || (c.state !== null && filter.states.includes(c.state))),
  );
}

/**
 * Whether `croot events` shows `event` under the filters: `engines` applies
 * to container and engine events alike, `states` to the container's state
 * now (and leaves engine events out).
 */
export function eventPasses(event: EventReport, filter: ListFilter): boolean {
  const engine = event.container?.engine ?? event.engine?.engine ?? null;
  if (filter.engines !== undefined && filter.engines.length > 0 && (engine === null || !filter.engines.includes(engine))) return false;
  if (filter.states !== undefined && filter.states.length > 0) {
    const state = event.container?.state ?? null;
    if (state === null || !filter.states.includes(state)) return false;
  }
  return true;
}

export function filterEngines(list: readonly EngineReport[], engines: readonly string[] | undefined): EngineReport[] {
  return engines === undefined || engines.length === 0 ? [...list] : list.filter((e) => engines.includes(e.engine));
}

/**
 * An id as a table shows it: a digest id (hex, as Docker, Podman and
 * Kubernetes make them) cut to 12 characters, which still names the
 * container (a unique prefix); any other id whole, since a cut name would
 * name nothing.
 */
export function displayId(id: string | null, truncate: boolean): string {
  if (id === null) return '-';
  return truncate && /^[0-9a-f]{16,}$/.test(id) ? id.slice(0, 12) : id;
}

export function renderJson(document: CrootDocument): string {
  return JSON.stringify(document, null, 2);
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function renderContainers(list: readonly ContainerReport[], options: { truncate: boolean }): string {
  return table(
    ['ENGINE', 'ID', 'STATE', 'PID', 'NAMES'],
    list.map((c) => [c.engine ?? '-', displayId(c.id, options.truncate), c.state ?? '-', c.pid === null ? '-' : String(c.pid), c.names.join(',')]),
  );
}

export function renderIds(list: readonly ContainerReport[], options: { truncate: boolean }): string {
  return list.map((c) => displayId(c.id, options.truncate)).join('\n');
}

export function renderEngines(list: readonly EngineReport[], anchor?: AnchorReport): string {
  const engines = table(
    ['ENGINE', 'STATUS', 'REASON'],
    list.map((e) => [e.engine, e.available ? 'up' : 'down', e.reason]),
  );
  return anchor === undefined ? engines : `${engines}\n\ninit processes held by: ${anchorText(anchor)}`;
}

/** How init processes are held, in a few words: `pidfd`, or `/proc start-time checks (why)`. */
export function anchorText(anchor: AnchorReport): string {
  return anchor.mode === 'pidfd' ? 'pidfd' : `/proc start-time checks (${anchor.reason ?? 'no reason given'})`;
}

/**
 * One event as one line: time, what, action, then for a container its
 * engine, id, state, PID and names (and what changed, for an update), for
 * an engine its health and reason.
 */
export function renderEvent(event: EventReport, options: { truncate: boolean }): string {
  const head = `${event.time}  ${event.type.padEnd(9)}  ${event.action.padEnd(7)}`;
  if (event.type === 'engine' || event.container === undefined) {
    const e = event.engine;
    return `${head}  ${e?.engine ?? '-'}  ${e === undefined ? '-' : e.available ? 'up' : 'down'}  ${e?.reason ?? ''}`.trimEnd();
  }
  const c = event.container;
  const pid = (p: number | null): string => (p === null ? '-' : String(p));
  let line = `${head}  ${c.engine ?? '-'}  ${displayId(c.id, options.truncate)}  ${c.state ?? '-'}  ${pid(c.pid)}  ${c.names.join(',')}`;
  const was = event.was;
  if (was !== undefined) {
    const changes: string[] = [];
    if (was.state !== c.state || was.pid !== c.pid) changes.push(`was ${was.state ?? '-'} ${pid(was.pid)}`);
    if (was.names.join(',') !== c.names.join(',')) changes.push(`was named ${was.names.join(',')}`);
    if (changes.length > 0) line += `  (${changes.join('; ')})`;
  }
  return line;
}

function answerText(value: string | number | null | undefined, error: ErrorReport | undefined): string {
  if (value !== null && value !== undefined) return String(value);
  if (error !== undefined) return `- (${errorText(error.status)}: ${error.message})`;
  return '-';
}

export function renderShow(c: ContainerReport): string {
  const rows: Array<[string, string]> = [
    ['engine', c.engine ?? '- (the server does not say)'],
    ['id', c.id ?? '- (the server does not say)'],
    ['names', c.names.join(', ')],
    ['state', c.state ?? '- (the server does not say)'],
    ['pid', answerText(c.pid, c.errors?.pid)],
    ['hostname', answerText(c.hostname, c.errors?.hostname)],
    ['cgroup', answerText(c.cgroup, c.errors?.cgroup)],
  ];
  return rows.map(([k, v]) => `${k.padEnd(9)} ${v}`).join('\n');
}

function duration(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return d > 0 ? `${d}d ${h}h ${m}m` : h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${s}s` : `${s}s`;
}

/** A crootd older than the reply cache does not say. */
function again(answered: number | undefined): string {
  return answered !== undefined && answered > 0 ? `, ${answered} answered again from replies given before` : '';
}

export function renderStatus(server: ServerReport, engines: readonly EngineReport[], anchor?: AnchorReport): string {
  const kinds = Object.entries(server.requests.byKind)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  const peers = server.connections.peers.map((p) => `pid ${p.pid} uid ${p.uid}`).join(', ');
  const rows: Array<[string, string]> = [
    ['server', `crootd ${server.version}, pid ${server.pid}`],
    ['socket', server.socket ?? '-'],
    ['started', `${server.startedAt} (up ${duration(server.uptimeSeconds)})`],
    ['allowed', `uids ${server.allowUids.join(', ')}`],
    ['clients', `${server.connections.open} connected${peers ? ` (${peers})` : ''}`],
    ['requests', `${server.requests.total}${kinds ? ` (${kinds})` : ''}, ${server.requests.failed} failed${again(server.requests.answeredAgain)}`],
    ...(anchor !== undefined ? [['anchor', anchorText(anchor)] as [string, string]] : []),
  ];
  return [...rows.map(([k, v]) => `${k.padEnd(9)} ${v}`), '', renderEngines(engines)].join('\n');
}
