/**
 * Proc reads: what one /proc read costs the server. Every PROCESSID,
 * HOSTNAME and CGROUPNAME answer reads /proc/PID/stat (core/proc.ts
 * readStartTime, a start-time check) and CGROUPNAME also /proc/PID/cgroup
 * (readCgroupName), both with `readFileSync`. This times those calls
 * against other ways of reading the same file, on this process's own pid.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { readCgroupName, readStartTime } from '../core/proc.js';
import type { Benchmark, BenchmarkContext, ResultRow } from './benchmark.js';
import { measureSequential, type LatencyStats } from './latency-stats.js';

const scratch = Buffer.alloc(4096);

/** One open + one read + close through a FileHandle (3 thread-pool trips, not readFile's 5 or more). */
async function readOnce(path: string): Promise<string> {
  const handle = await open(path, 'r');
  try {
    const { bytesRead } = await handle.read(scratch, 0, scratch.length, 0);
    return scratch.toString('utf8', 0, bytesRead);
  } finally {
    await handle.close();
  }
}

function readOnceSync(path: string): string {
  const fd = openSync(path, 'r');
  try {
    return scratch.toString('utf8', 0, readSync(fd, scratch, 0, scratch.length, 0));
  } finally {
    closeSync(fd);
  }
}

export const procReadsBenchmark: Benchmark = {
  name: 'proc-reads',
  title: 'Proc reads (the /proc reads behind every answer)',
  async run(context: BenchmarkContext) {
    const pid = process.pid;
    const stat = `/proc/${pid}/stat`;
    const count = Math.max(200, Math.round(5000 * context.scale));
    const bounds = { count, warmup: 300, capMs: 1000 };
    const cases: [string, string, () => unknown][] = [
      ['readStartTime (core/proc.ts)', 'readFileSync', () => readStartTime('/proc', pid)],
      ['readCgroupName (core/proc.ts)', 'readFileSync', () => readCgroupName('/proc', pid)],
      ['/proc/PID/stat', 'fs/promises readFile', () => readFile(stat, 'utf8')],
      ['/proc/PID/stat', 'FileHandle open+read+close', () => readOnce(stat)],
      ['/proc/PID/stat', 'readFileSync', () => readFileSync(stat, 'utf8')],
      ['/proc/PID/stat', 'openSync+readSync+closeSync', () => readOnceSync(stat)],
    ];
    const rows: ResultRow[] = [];
    const p50: number[] = [];
    for (const [what, how, call] of cases) {
      context.progress(`proc-reads: ${what}, ${how}`);
      const stats: LatencyStats = await measureSequential(bounds, call);
      p50.push(stats.p50Us);
      rows.push({ read: what, how, calls: stats.count, 'ops/s': stats.opsPerSecond, 'p50 µs': stats.p50Us, 'p99 µs': stats.p99Us });
    }
    return {
      rows,
      notes: [
        `Sequential, one call at a time, on an idle event loop. fs/promises readFile of a /proc file (size 0 to stat) is open, fstat, read, read (EOF), close: each a trip to the libuv thread pool. core/proc.ts reads synchronously (readFileSync) instead.`,
        `The server pays this once per PROCESSID/HOSTNAME answer and twice per CGROUPNAME answer: p50 ${p50[0]} µs (stat) and ${p50[1]} µs (cgroup) here, against ${p50[2]} µs for fs/promises readFile of the same file.`,
      ],
    };
  },
};
