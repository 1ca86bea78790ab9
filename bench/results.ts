/** The numbers one run collects, as written to bench/results/*.json. */
import type { ChangeResult } from './change-latency.js';
import type { ClientKind, LoadResult, RequestOp } from './load-clients.js';
import type { EngineName } from './real-containers.js';
import type { FloorServerKind, ServerRole } from './servers.js';

export type RefKind = 'name' | 'full id' | '12-char prefix';

/** One lookup measured against every server that could answer it. */
export interface LookupMeasure {
  readonly engine: EngineName;
  readonly op: RequestOp;
  readonly ref: RefKind;
  readonly client: ClientKind;
  readonly clients: number;
  readonly croot?: LoadResult;
  readonly pcp?: LoadResult;
  /** Why a server has no result for this row (it failed, or its time budget was spent). */
  readonly crootError?: string;
  readonly pcpError?: string;
  /** The Node floor measured in this row, beside the servers (rows by name). */
  readonly floor?: LoadResult;
  readonly floorError?: string;
}

/** How one server started and idled in a scenario. */
export interface ServerMeasure {
  /** ms from spawn to the first right answer. */
  readonly firstAnswerMs: number;
  /** VmRSS after loading and 10 s idle, before any load. */
  readonly rssLoadedMb: number;
  /** VmRSS after all the lookups. */
  readonly rssAfterMb: number;
  /** CPU over the idle window, % of one core. */
  readonly idleCpuPct: number;
}

export interface ChangeMeasure {
  readonly engine: EngineName;
  /** created, renamed, stopped, restarted, removed. */
  readonly event: string;
  readonly results: readonly ChangeResult[];
}

/** One command of the CLI start-up section (cli-startup.ts), in the real scenario. */
export interface CliMeasure {
  /** `version`, `socket-pid`, `pid`, `pid-docker`, `node` (the floor), `docker-inspect`. */
  readonly command: string;
  readonly label: string;
  readonly argv: readonly string[];
  /** Timed runs (after the warm-up). */
  readonly runs: number;
  /** Wall time of each timed run, spawn to exit, ms. */
  readonly wallMs: readonly number[];
  readonly medianMs: number;
  /** The child's CPU (user + system), mean over the timed runs, ms. */
  readonly cpuMs: number;
  /** CommonJS modules loaded (one extra untimed run; Node commands only). */
  readonly modules?: number;
  /** Runs (warm-up included) with a wrong answer or a non-zero exit. */
  readonly wrong: number;
  readonly firstWrong?: string;
  /** Set when the command could not be run at all. */
  readonly error?: string;
}

export interface ScenarioResult {
  /** `real` or `synthetic`. */
  readonly kind: 'real' | 'synthetic';
  /** Containers made for it (real: ours only). */
  readonly containers: number;
  readonly label: string;
  servers: Partial<Record<ServerRole, ServerMeasure>>;
  readonly lookups: LookupMeasure[];
  readonly changes: ChangeMeasure[];
  /** The CLI's start-up (the real scenario only). */
  cli?: CliMeasure[];
  readonly notes: string[];
  readonly seconds: number;
  /** Set when the scenario stopped early. */
  error?: string;
}

export type { FloorServerKind } from './servers.js';

/** The floors, measured once per run. */
export interface FloorMeasure {
  readonly client: ClientKind;
  readonly op: RequestOp | 'socketpair';
  readonly clients: number;
  readonly result: LoadResult;
  /** Which floor server answered: the Node floor (also when absent, in older runs) or the C floor. */
  readonly server?: FloorServerKind;
}

export interface RunResult {
  readonly machine: Record<string, unknown>;
  readonly options: Record<string, unknown>;
  readonly crootd: { readonly path: string; readonly build: string };
  /** The croot CLI of the start-up section (absent in runs from before it). */
  readonly croot?: { readonly path: string; readonly build: string };
  readonly pcp: string;
  readonly loadAverage: { start: number[]; end: number[] };
  readonly floors: FloorMeasure[];
  readonly scenarios: ScenarioResult[];
  readonly notes: string[];
  readonly seconds: number;
}
