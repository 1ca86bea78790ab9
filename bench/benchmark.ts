/**
 * What every benchmark in bench/ is: a named run that returns rows of numbers
 * (printed as a table, written as JSON with --out) and notes saying what
 * they mean or why a part was skipped.
 */
import { cpus, hostname, loadavg, release, totalmem } from 'node:os';

/** One row of a result table: column name to value. */
export type ResultRow = Readonly<Record<string, string | number | boolean>>;

export interface BenchmarkResult {
  readonly name: string;
  readonly title: string;
  readonly rows: readonly ResultRow[];
  /** Findings, answers checked, parts skipped and why. */
  readonly notes: readonly string[];
  /** Wall time of the whole benchmark, seconds. */
  readonly seconds: number;
}

/** Settings shared by every benchmark. */
export interface BenchmarkContext {
  /** Scales every request count (1 = the documented counts). */
  readonly scale: number;
  /** Prints a progress line (stderr, so stdout stays the report). */
  progress(line: string): void;
}

export interface Benchmark {
  /** Short lower-case-dashed name, used by --only. */
  readonly name: string;
  readonly title: string;
  run(context: BenchmarkContext): Promise<Omit<BenchmarkResult, 'name' | 'title' | 'seconds'>>;
}

/** The machine and runtime the numbers were measured on. */
export interface MachineInfo {
  readonly date: string;
  readonly host: string;
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly node: string;
  readonly uid: number;
  /** 1, 5 and 15 minute load averages when the run started (other work on the machine skews the numbers). */
  readonly loadAverage: readonly number[];
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    date: new Date().toISOString(),
    host: hostname(),
    cpus: list.length,
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
    uid: process.getuid?.() ?? -1,
    loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

/** Renders rows as an aligned text table (numbers right-aligned). */
export function renderTable(rows: readonly ResultRow[]): string {
  if (rows.length === 0) return '(no rows)\n';
  const columns: string[] = [];
  for (const row of rows) for (const key of Object.keys(row)) if (!columns.includes(key)) columns.push(key);
  const cells = rows.map((row) => columns.map((c) => format(row[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => (r[i] ?? '').length)));
  const numeric = columns.map((c) => rows.every((r) => r[c] === undefined || typeof r[c] === 'number'));
  const line = (values: readonly string[]): string =>
    values
      .map((v, i) => (numeric[i] ? v.padStart(widths[i] ?? 0) : v.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n') + '\n';
}

function format(value: string | number | boolean | undefined): string {
  if (value === undefined) return '';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : value.toFixed(2);
  return String(value);
}
