/**
 * What each croot command does, in-process (local-view.ts, required only
 * then: it loads inversify and the engines) or through --socket
 * (remote-view.ts: no engine). Output goes through output.ts; a failure is
 * thrown as a CrootError and croot.ts turns it into a message, a hint and
 * an exit status.
 */
import { CrootError, Errno } from '../core/errors/croot-error.js';
import {
  SCHEMA_VERSION,
  sortContainers,
  sortEngines,
  type AnchorReport,
  type ContainerReport,
  type CrootDocument,
  type EngineReport,
} from '../core/protocol/croot-extension.js';
import type { ContainerField } from '../core/registry/container-view.js';
import { completionScript } from './completion.js';
import { ENGINE_IDS } from './engine-table.js';
import { ExitCode } from './exit-codes.js';
import type { EventOptions, GlobalOptions, ListOptions } from './croot.js';
import type { LocalView } from './local-view.js';
import {
  eventPasses,
  filterContainers,
  filterEngines,
  renderContainers,
  renderEngines,
  renderEvent,
  renderIds,
  renderJson,
  renderShow,
  renderStatus,
  type Format,
} from './output.js';
import type { Question } from './remote-view.js';

/* eslint-disable @typescript-eslint/no-require-imports */
const remote = (): typeof import('./remote-view.js') => require('./remote-view.js') as typeof import('./remote-view.js');
const local = (): typeof import('./local-view.js') => require('./local-view.js') as typeof import('./local-view.js');
/* eslint-enable @typescript-eslint/no-require-imports */

function formatOf(opts: GlobalOptions): Format {
  return opts.json || opts.format === 'json' ? 'json' : 'table';
}

function print(text: string): void {
  if (text.length > 0) process.stdout.write(`${text}\n`);
}

function warn(text: string): void {
  process.stderr.write(`croot: warning: ${text}\n`);
}

/** The engine an ENGINE:NAME reference names, when it is a built-in engine's id. */
function engineOf(ref: string): string | undefined {
  const colon = ref.indexOf(':');
  if (colon <= 0) return undefined;
  const engine = ref.slice(0, colon);
  return ENGINE_IDS.includes(engine) ? engine : undefined;
}

/**
 * Opens the in-process view (for a lookup of `ref`: only the engine of
 * ENGINE:NAME when it has one, and only engines holding some container),
 * runs `body`, stops the engines.
 */
async function inProcess<T>(opts: GlobalOptions, ref: string | undefined, body: (view: LocalView) => Promise<T>): Promise<T> {
  const engine = ref === undefined ? undefined : engineOf(ref);
  const view = await local().openLocalView({
    ...(opts.config !== undefined ? { config: opts.config } : {}),
    ...(engine !== undefined ? { engines: [engine] } : {}),
    lookup: ref !== undefined,
  });
  for (const w of view.warnings) warn(w);
  try {
    return await body(view);
  } catch (err) {
    throw await explainMiss(err, view);
  } finally {
    await view.close();
  }
}

/**
 * A name croot did not find in-process, run by a user who could not read
 * some engine's state: the container may well be there. Says so, with the
 * engines' reasons, as a permission error.
 */
async function explainMiss(err: unknown, view: LocalView): Promise<unknown> {
  if (!CrootError.is(err) || err.code !== 'ERR_NO_CONTAINER' || process.getuid?.() === 0) return err;
  const denied = (await view.engines()).filter((e) => !e.available && /EACCES|EPERM|permission denied/i.test(e.reason));
  if (denied.length === 0) return err;
  return new CrootError(
    'ERR_NOT_PERMITTED',
    `${err.message} among what this user can read: permission denied reading the state of ${denied.map((e) => e.engine).join(', ')} (croot engines says where)`,
    { status: -Errno.EACCES, cause: err },
  );
}

function document(parts: Omit<CrootDocument, 'schemaVersion'>): CrootDocument {
  return { schemaVersion: SCHEMA_VERSION, ...parts };
}

// ------------------------------------------------------------ hostname, pid, cgroup

export async function question(q: Question, name: string, opts: GlobalOptions): Promise<void> {
  let report: ContainerReport;
  let value: string | number;
  if (opts.socket !== undefined) {
    const answer = await remote().askQuestion(opts.socket, q, name);
    value = answer.value;
    report = { engine: null, id: null, names: [name], state: null, pid: answer.pid, ...(q === 'pid' ? {} : { [q]: answer.value }) };
  } else {
    report = await inProcess(opts, name, (view) => view.inspect(name, [q as ContainerField]));
    const error = report.errors?.[q];
    if (error !== undefined) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { errorFromReport } = require('../core/registry/container-view.js') as typeof import('../core/registry/container-view.js');
      throw errorFromReport(error);
    }
    value = report[q] as string | number;
  }
  print(formatOf(opts) === 'json' ? renderJson(document({ containers: [report] })) : String(value));
}

// ------------------------------------------------------------ show

export async function show(name: string, opts: GlobalOptions): Promise<void> {
  let doc: CrootDocument;
  if (opts.socket !== undefined) {
    doc = (await remote().showRemote(opts.socket, name)).document;
  } else {
    doc = document({ containers: [await inProcess(opts, name, (view) => view.inspect(name, ['pid', 'hostname', 'cgroup']))] });
  }
  const container = doc.containers?.[0];
  if (container === undefined) throw new CrootError('ERR_PROTOCOL', 'the server sent no container');
  print(formatOf(opts) === 'json' ? renderJson(document({ containers: [container] })) : renderShow(container));
}

// ------------------------------------------------------------ list, engines, status

interface Listing {
  readonly engines: readonly EngineReport[];
  readonly containers: readonly ContainerReport[];
  /** Engines in-process left out because this host has nothing for them. */
  readonly notLoaded: readonly string[];
  /** How init processes are held (absent from a crootd that does not say). */
  readonly anchor?: AnchorReport;
}

async function listing(opts: GlobalOptions, withContainers: boolean): Promise<Listing> {
  if (opts.socket !== undefined) {
    const doc = await remote().askExtension(opts.socket, { op: withContainers ? 'list' : 'engines' });
    return {
      engines: sortEngines(doc.engines ?? []),
      containers: sortContainers(doc.containers ?? []),
      notLoaded: [],
      ...(doc.anchor !== undefined ? { anchor: doc.anchor } : {}),
    };
  }
  return inProcess(opts, undefined, async (view) => ({
    engines: await view.engines(),
    containers: withContainers ? await view.containers() : [],
    notLoaded: view.notLoaded,
    anchor: view.anchor(),
  }));
}

/** Exit 9 when no engine is up: an empty list would otherwise look like "no containers". */
function noEngineStatus(engines: readonly EngineReport[]): void {
  if (engines.some((e) => e.available)) return;
  process.stderr.write(`croot: no engine is available${engines.length > 0 ? ` (${engines.map((e) => e.engine).join(', ')} are down)` : ''}\n`);
  process.exitCode = ExitCode.NO_ENGINE;
}

export async function list(opts: GlobalOptions, listOpts: ListOptions): Promise<void> {
  for (const e of listOpts.engine) if (!ENGINE_IDS.includes(e) && opts.socket === undefined) warn(`--engine ${e}: not a built-in engine id (${ENGINE_IDS.join(', ')})`);
  const { engines, containers, notLoaded } = await listing(opts, true);
  const shown = filterContainers(containers, { engines: listOpts.engine, states: listOpts.state });
  const truncate = listOpts.trunc;
  if (formatOf(opts) === 'json') {
    print(renderJson(document({ engines: filterEngines(engines, listOpts.engine), containers: shown })));
  } else if (listOpts.quiet) {
    print(renderIds(shown, { truncate }));
  } else {
    print(renderContainers(shown, { truncate }));
    // An engine this host has nothing for is not news; one that is there and down is.
    for (const e of filterEngines(engines, listOpts.engine)) if (!e.available && !notLoaded.includes(e.engine)) warn(`engine ${e.engine} is down: ${e.reason}`);
  }
  noEngineStatus(filterEngines(engines, listOpts.engine));
}

export async function engines(opts: GlobalOptions, only: string[]): Promise<void> {
  const { engines: all, anchor } = await listing(opts, false);
  const shown = filterEngines(all, only);
  const held = anchor !== undefined ? { anchor } : {};
  print(formatOf(opts) === 'json' ? renderJson(document({ ...held, engines: shown })) : renderEngines(shown, anchor));
  noEngineStatus(shown);
}

export async function status(opts: GlobalOptions): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const socket = opts.socket ?? (require('../core/config/croot-config.js') as typeof import('../core/config/croot-config.js')).defaultSocketPath();
  const doc = await remote().askExtension(socket, { op: 'status' });
  if (doc.server === undefined) throw new CrootError('ERR_PROTOCOL', `${socket} sent no server status`);
  const engineList = sortEngines(doc.engines ?? []);
  const held = doc.anchor !== undefined ? { anchor: doc.anchor } : {};
  print(
    formatOf(opts) === 'json' ? renderJson(document({ server: doc.server, ...held, engines: engineList })) : renderStatus(doc.server, engineList, doc.anchor),
  );
}

// ------------------------------------------------------------ events

/**
 * Streams the changes croot sees, one line (or one JSON document) each,
 * until SIGINT/SIGTERM, `--count` events, or the end of `--until-exit`'s
 * container. In-process it loads the engines (only those of `--engine` when
 * all are built-in ones) and watches them itself; with `--socket` it
 * subscribes to crootd.
 */
export async function events(opts: GlobalOptions, eventOpts: EventOptions): Promise<void> {
  const only = eventOpts.engine.length > 0 && eventOpts.engine.every((e) => ENGINE_IDS.includes(e)) ? eventOpts.engine : undefined;
  if (opts.socket === undefined) for (const e of eventOpts.engine) if (!ENGINE_IDS.includes(e)) warn(`--engine ${e}: not a built-in engine id (${ENGINE_IDS.join(', ')})`);
  let view: LocalView | undefined;
  let stream;
  if (opts.socket !== undefined) {
    stream = await remote().subscribeEvents(opts.socket);
  } else {
    view = await local().openLocalView({ ...(opts.config !== undefined ? { config: opts.config } : {}), ...(only !== undefined ? { engines: only } : {}) });
    for (const w of view.warnings) warn(w);
    stream = view.events();
  }
  const stop = (): void => stream.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // Nothing else may keep the event loop alive in-process (a declared container only): this does, until the end.
  const alive = setInterval(() => undefined, 1 << 30);
  try {
    const until = eventOpts.untilExit === undefined ? undefined : exitTarget(eventOpts.untilExit, stream.first);
    if (until !== undefined && !until.running) return;
    const json = formatOf(opts) === 'json';
    const filter = { engines: eventOpts.engine, states: eventOpts.state };
    let shown = 0;
    if (eventOpts.count === 0) return;
    for (;;) {
      const doc = await stream.next();
      if (doc === undefined) return;
      const event = doc.event;
      if (event === undefined) continue;
      if (eventPasses(event, filter)) {
        print(json ? JSON.stringify(document({ event })) : renderEvent(event, { truncate: eventOpts.trunc }));
        shown += 1;
        if (eventOpts.count !== undefined && shown >= eventOpts.count) return;
      }
      const c = event.container;
      if (until !== undefined && c !== undefined && c.engine === until.engine && c.id === until.id && (event.action === 'removed' || c.state === 'stopped')) return;
    }
  } finally {
    clearInterval(alive);
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    stream.close();
    await view?.close();
  }
}

/** The container `--until-exit NAME` designates among those there were when the stream began (the naming rule of every command). */
function exitTarget(ref: string, first: CrootDocument): { engine: string; id: string; running: boolean } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { NameMatcher } = require('../core/registry/name-matcher.js') as typeof import('../core/registry/name-matcher.js');
  const reports = (first.containers ?? []).filter((c): c is ContainerReport & { engine: string; id: string } => c.engine !== null && c.id !== null);
  const engineIds = [...new Set([...(first.engines ?? []).map((e) => e.engine), ...reports.map((c) => c.engine)])];
  const records = reports.map((c) => ({ engine: c.engine, id: c.id, names: c.names, running: c.state !== 'stopped' }));
  const found = new NameMatcher().match(ref, records, engineIds);
  return { engine: found.engine, id: found.id, running: found.running };
}

export function completion(shell: string): void {
  print(completionScript(shell, ENGINE_IDS).trimEnd());
}
