/**
 * One measured row: N client processes at once against one server, each
 * with one connection and one request at a time, every answer checked.
 *
 * The clients are separate processes: PCP's C client library
 * (bench/pcp-load-client.c), croot's RootClient (bench/root-client-load.ts),
 * or the socketpair floor (bench/socketpair-ping-pong.c). They share one
 * protocol: connect and warm up, print "ready", wait for "go" on stdin, run
 * for the duration and at least a minimum of calls (at most a cap of time
 * and a maximum of calls), print a JSON summary and every
 * latency (ns, CLOCK_MONOTONIC). All clients get "go" at once; throughput is
 * all their calls over the span from the first one's start to the last one's
 * end.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { cpuTimeNs, endChild, spawnTracked } from './bench-processes.js';
import { percentile } from './latency-stats.js';

export type RequestOp = 'processid' | 'hostname' | 'cgroup';

/** How a client can tell the right answer for one reference. */
export interface Expectation {
  /** What is sent: a name, a full id or an id prefix. */
  readonly name: string;
  /** The container's init PID. */
  readonly pid: number;
  /** For HOSTNAME/CGROUPNAME: `eq` one of `values`, `has` (contains) one of them, or `any`. */
  readonly mode: 'eq' | 'has' | 'any';
  readonly values: readonly string[];
}

export type ClientKind = 'pcp-c' | 'croot-node' | 'socketpair';

export interface LoadSpec {
  /** What the row is, for error messages. */
  readonly label: string;
  readonly kind: ClientKind;
  /** The binary (C clients) or script (croot-node). */
  readonly program: string;
  readonly socket: string;
  readonly op: RequestOp;
  /** Asked in turn (socketpair: unused). */
  readonly refs: readonly Expectation[];
  readonly clients: number;
  readonly durationMs: number;
  /** Calls per client, at most. */
  readonly maxCalls: number;
  /** Calls per client at least, unless `capMs` runs out first (a slow server). */
  readonly minCalls: number;
  readonly capMs: number;
  /** Untimed calls per client before "go". */
  readonly warmupCalls: number;
  /** Server process whose CPU time is counted (undefined: none). */
  readonly serverPid: number | undefined;
  /** Folder for the references file. */
  readonly workDir: string;
}

export interface LoadResult {
  readonly calls: number;
  readonly wrong: number;
  readonly firstWrong: string;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
  readonly reqPerSec: number;
  /** Server CPU time over the timed part divided by the calls; NaN without a server. */
  readonly cpuUsPerReq: number;
  readonly seconds: number;
}

interface ClientOutput {
  readonly calls: number;
  readonly wrong: number;
  readonly begin: number;
  readonly end: number;
  readonly firstWrong: string;
  readonly latencies: number[];
}

let refsFiles = 0;

function writeRefs(dir: string, refs: readonly Expectation[]): string {
  const path = join(dir, `refs-${process.pid}-${refsFiles++}.tsv`);
  const lines = refs.map((r) => {
    for (const field of [r.name, ...r.values]) if (/[\t\n|]/.test(field)) throw new Error(`reference field ${JSON.stringify(field)} holds a tab, newline or |`);
    return `${r.name}\t${r.pid}\t${r.mode}\t${r.values.length > 0 ? r.values.join('|') : '-'}\n`;
  });
  writeFileSync(path, lines.join(''));
  return path;
}

/** Runs one row; rejects when a client fails (not when it gets wrong answers: those are counted). */
export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const refsFile = spec.kind === 'socketpair' ? '' : writeRefs(spec.workDir, spec.refs);
  const args =
    spec.kind === 'socketpair'
      ? [String(spec.durationMs), String(spec.maxCalls), String(spec.warmupCalls)]
      : [spec.socket, spec.op, refsFile, String(spec.durationMs), String(spec.maxCalls), String(spec.warmupCalls), String(spec.minCalls), String(spec.capMs)];
  const [command, argv] = spec.kind === 'croot-node' ? [process.execPath, [spec.program, ...args]] : [spec.program, args];
  const procs = Array.from({ length: spec.clients }, () => {
    const child = spawnTracked(command, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const lines: string[] = [];
    let onReady: (() => void) | undefined;
    const ready = new Promise<void>((resolve) => (onReady = resolve));
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      if (line === 'ready' && lines.length === 0) onReady?.();
      else lines.push(line);
    });
    const closed = new Promise<number | null>((resolve) => rl.once('close', () => child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code))));
    return { child, ready, closed, lines, stderr: () => stderr };
  });
  // Generous: a slow server (PCP with 10 000 containers under load) may take seconds a call.
  const hardLimitMs = Math.max(spec.durationMs, spec.capMs) + 180_000;
  let overtime = false;
  const limit = setTimeout(() => {
    overtime = true;
    for (const p of procs) p.child.kill('SIGKILL');
  }, hardLimitMs);
  try {
    const failed = (what: string): Error =>
      new Error(`${spec.label}: ${spec.kind} client ${what}: ${procs.map((p) => `${p.lines.join(' ').slice(0, 300)} ${p.stderr().trim().slice(0, 500)}`).join('; ')}`);
    const early = Promise.race(procs.map((p) => p.closed.then(() => Promise.reject(failed('exited before ready')))));
    early.catch(() => undefined);
    await Promise.race([Promise.all(procs.map((p) => p.ready)), early]).catch((err: unknown) => {
      throw overtime ? new Error(`${spec.label}: still warming up after ${hardLimitMs / 1000} s, stopped`) : err;
    });
    const cpuBefore = spec.serverPid === undefined ? Number.NaN : cpuTimeNs(spec.serverPid);
    for (const p of procs) p.child.stdin!.write('go\n');
    const codes = await Promise.all(procs.map((p) => p.closed));
    const cpuAfter = spec.serverPid === undefined ? Number.NaN : cpuTimeNs(spec.serverPid);
    if (overtime) throw new Error(`${spec.label}: still running after ${hardLimitMs / 1000} s, stopped`);
    if (codes.some((c) => c !== 0)) throw failed(`exited with ${codes.join(',')}`);
    const outputs = procs.map((p) => parseOutput(p.lines, p.stderr()));
    const all = new Float64Array(outputs.reduce((n, o) => n + o.latencies.length, 0));
    let i = 0;
    for (const o of outputs) for (const l of o.latencies) all[i++] = l;
    all.sort();
    const calls = all.length;
    const begin = Math.min(...outputs.map((o) => o.begin));
    const end = Math.max(...outputs.map((o) => o.end));
    const seconds = (end - begin) / 1e9;
    return {
      calls,
      wrong: outputs.reduce((n, o) => n + o.wrong, 0),
      firstWrong: outputs.map((o) => o.firstWrong).find((w) => w !== '') ?? '',
      p50Us: percentile(all, 0.5) / 1000,
      p99Us: percentile(all, 0.99) / 1000,
      maxUs: (all[all.length - 1] ?? 0) / 1000,
      reqPerSec: seconds > 0 ? calls / seconds : 0,
      cpuUsPerReq: calls > 0 ? (cpuAfter - cpuBefore) / 1000 / calls : Number.NaN,
      seconds,
    };
  } finally {
    clearTimeout(limit);
    await Promise.all(procs.map((p) => endChild(p.child, () => p.child.kill('SIGKILL'), 1000)));
  }
}

function parseOutput(lines: readonly string[], stderr: string): ClientOutput {
  const [head, ...rest] = lines;
  if (head === undefined) throw new Error(`client printed nothing: ${stderr}`);
  const summary = JSON.parse(head) as Omit<ClientOutput, 'latencies'> & { error?: string };
  if (summary.error !== undefined) throw new Error(summary.error);
  const latencies = rest.filter((l) => l !== '').map(Number);
  if (latencies.length !== summary.calls) throw new Error(`client reported ${summary.calls} calls but printed ${latencies.length} latencies`);
  return { ...summary, latencies };
}
