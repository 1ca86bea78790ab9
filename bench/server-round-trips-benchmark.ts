/**
 * Server round-trips: croot's RootServer in this process (native module +
 * static engine declaring one real process: a `sleep` in its own UTS
 * namespace) on a temp unix socket, asked by croot's RootClient over the Node
 * transport and over the native one, with 1, 8 and 32 connections at once,
 * for each request type. Every answer is checked against /proc.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCrootContainer } from '../core/create-container.js';
import { EngineRegistry } from '../core/engine-registry.js';
import { nodeSocketTransport } from '../core/node-socket-transport.js';
import { PduType } from '../core/protocol.js';
import { RootClient, type RootTransportFactory } from '../core/root-client.js';
import { RootServer } from '../core/root-server.js';
import { staticEngineModule } from '../engines/static/index.js';
import { loadNative } from '../native/load-native.js';
import { nativeModule } from '../native/native-module.js';
import { nativeTransport } from '../native/native-transport.js';
import { startNamespacedSleeper } from './bench-processes.js';
import type { Benchmark, BenchmarkContext, ResultRow } from './benchmark.js';
import { measureConcurrent } from './latency-stats.js';

const CONCURRENCY = [1, 8, 32] as const;

export const REQUEST_TYPES = [
  ['PROCESSID', PduType.PROCESSID_REQ],
  ['HOSTNAME', PduType.HOSTNAME_REQ],
  ['CGROUPNAME', PduType.CGROUPNAME_REQ],
] as const;

/** The cgroup paths of `pid` (v1 and v2 lines), without their leading `/`. */
export function cgroupPaths(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.slice(l.indexOf(':', l.indexOf(':') + 1) + 1).replace(/^\//, ''));
}

/** Why this benchmark cannot run here, or undefined. */
function missing(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (setns for HOSTNAME, unshare for the container)';
  try {
    loadNative();
  } catch (err) {
    return `native module not loaded: ${(err as Error).message.split('\n')[0]}`;
  }
  return undefined;
}

export const serverRoundTripsBenchmark: Benchmark = {
  name: 'server-round-trips',
  title: 'Server round-trips (in-process RootServer, RootClient over both transports)',
  async run(context: BenchmarkContext) {
    const why = missing();
    if (why !== undefined) return { rows: [], notes: [`skipped: ${why}`] };
    const rows: ResultRow[] = [];
    const count = Math.max(100, Math.round(2000 * context.scale));
    const serverWarmup = Math.max(500, Math.round(6000 * context.scale));
    const work = mkdtempSync(join(tmpdir(), 'croot-bench-rt-'));
    const name = `croot-b-${process.pid}`;
    const hostname = `${name}-h`;
    const sleeper = await startNamespacedSleeper(hostname);
    const socketPath = join(work, 'pmcd', 'root.socket');
    const container = createCrootContainer({
      config: { socketPath, allowUids: [0], staticContainers: [{ name, pid: sleeper.pid }], disabledEngines: [] },
      modules: [nativeModule, staticEngineModule],
    });
    container.bind(RootServer).toSelf().inSingletonScope();
    const server = container.get(RootServer);
    try {
      await server.listen(socketPath);
      // Untimed, before any row: enough requests of every type for the JIT to settle (see the notes).
      const warmer = await RootClient.connect(socketPath, { transport: nodeSocketTransport, timeoutMs: 10000 });
      try {
        for (let i = 0; i < serverWarmup; i++) await warmer.containerQuery((REQUEST_TYPES[i % REQUEST_TYPES.length] as (typeof REQUEST_TYPES)[number])[1], name);
      } finally {
        warmer.close();
      }
      const cgroups = cgroupPaths(sleeper.pid);
      const expected: Record<string, (answer: { value: string; pid: number }) => boolean> = {
        PROCESSID: (a) => a.pid === sleeper.pid,
        HOSTNAME: (a) => a.pid === sleeper.pid && a.value === hostname,
        CGROUPNAME: (a) => a.pid === sleeper.pid && cgroups.includes(a.value),
      };
      const transports: [string, RootTransportFactory][] = [
        ['node', nodeSocketTransport],
        ['native', nativeTransport],
      ];
      for (const [transportName, transport] of transports) {
        for (const connections of CONCURRENCY) {
          const clients = await Promise.all(Array.from({ length: connections }, () => RootClient.connect(socketPath, { transport, timeoutMs: 10000 })));
          try {
            for (const [typeName, type] of REQUEST_TYPES) {
              context.progress(`server-round-trips: ${transportName} transport, ${connections} connections, ${typeName}`);
              const check = expected[typeName] as (a: { value: string; pid: number }) => boolean;
              const stats = await measureConcurrent({ count, warmup: Math.min(200, count), capMs: 2500 }, connections, async (w) => {
                const answer = await (clients[w] as RootClient).containerQuery(type, name);
                if (!check(answer)) throw new Error(`${typeName} of ${name} answered ${JSON.stringify(answer)}`);
              });
              rows.push({
                transport: transportName,
                connections,
                request: typeName,
                requests: stats.count,
                'req/s': stats.opsPerSecond,
                'p50 µs': stats.p50Us,
                'p99 µs': stats.p99Us,
                'max µs': stats.maxUs,
                capped: stats.capped,
              });
            }
          } finally {
            for (const c of clients) c.close();
          }
        }
      }
    } finally {
      await server.close();
      await container.get<EngineRegistry>(EngineRegistry).stop();
      await sleeper.stop();
      rmSync(work, { recursive: true, force: true });
    }
    return {
      rows,
      notes: [
        `Server and clients share this one Node process and event loop, so every number pays for both sides.`,
        `Before the first row, ${serverWarmup} untimed requests (the three types in turn, one connection, node transport) let V8 finish optimizing the server and client code; without them the first rows paid for the JIT.`,
        `"requests" per row: ${count} measured after ${Math.min(200, count)} warm-up requests, shared over the connections; each connection has one request in flight (RootClient queues); cap 2.5 s per row (warm-up at most a quarter of that).`,
        `req/s is requests / wall time of the row; p50/p99 are per request, as the client saw it (queueing in the server included).`,
        `PROCESSID: registry lookup + one read of /proc/PID/stat (start time check). CGROUPNAME: that + /proc/PID/cgroup. HOSTNAME: that + setns/gethostname on a new thread per request.`,
        `The native transport does each recvmsg on a thread created for it, so every reply costs one thread start on the client side too.`,
      ],
    };
  },
};
