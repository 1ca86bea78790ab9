/**
 * A load client built on croot's own client (`RootClient` over the Node
 * socket transport), run as a process of its own by load-clients.ts; the same
 * interface and output as pcp-load-client.c:
 *
 *   node dist/bench/root-client-load.js SOCKET OP REFS DURATION_MS MAX_CALLS WARMUP_CALLS MIN_CALLS CAP_MS
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { nodeSocketTransport } from '../core/client/node-socket-transport.js';
import { PduType } from '../core/protocol/root-pdus.js';
import { RootClient } from '../core/client/root-client.js';

interface Ref {
  readonly name: string;
  readonly pid: number;
  readonly mode: string;
  readonly values: readonly string[];
}

const TYPES = { processid: PduType.PROCESSID_REQ, hostname: PduType.HOSTNAME_REQ, cgroup: PduType.CGROUPNAME_REQ } as const;

async function main(argv: readonly string[]): Promise<number> {
  const [socket, op, refsPath, duration, max, warm, min, cap] = argv;
  if (
    socket === undefined ||
    refsPath === undefined ||
    duration === undefined ||
    max === undefined ||
    warm === undefined ||
    min === undefined ||
    cap === undefined ||
    !(op === 'processid' || op === 'hostname' || op === 'cgroup')
  ) {
    process.stderr.write('usage: root-client-load SOCKET processid|hostname|cgroup REFS DURATION_MS MAX_CALLS WARMUP_CALLS MIN_CALLS CAP_MS\n');
    return 2;
  }
  const type = TYPES[op];
  const refs: Ref[] = readFileSync(refsPath, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [name = '', pid = '', mode = 'any', values = ''] = l.split('\t');
      return { name, pid: Number(pid), mode, values: values.split('|').filter((v) => v !== '') };
    });
  const durationNs = BigInt(duration) * 1_000_000n;
  const capNs = BigInt(cap) * 1_000_000n;
  const minCalls = Number(min);
  const maxCalls = Number(max);
  const latencies = new Float64Array(Math.max(1, maxCalls));
  let wrong = 0;
  let firstWrong = '';

  let client: RootClient;
  try {
    client = await RootClient.connect(socket, { transport: nodeSocketTransport, timeoutMs: 120000 });
  } catch (err) {
    process.stdout.write(`${JSON.stringify({ error: `connect ${socket}: ${(err as Error).message}` })}\n`);
    return 1;
  }
  const call = async (ref: Ref): Promise<void> => {
    let pid: number;
    let value = '';
    try {
      const answer = await client.containerQuery(type, ref.name);
      pid = answer.pid;
      value = answer.value;
    } catch (err) {
      const status = (err as { status?: number }).status;
      if (typeof status !== 'number') throw err;
      pid = status;
    }
    const right =
      pid === ref.pid &&
      (op === 'processid' || ref.mode === 'any' || ref.values.some((v) => (ref.mode === 'eq' ? value === v : value.includes(v))));
    if (!right && wrong++ === 0) firstWrong = `${ref.name}: pid/status ${pid}, value "${value.slice(0, 300)}" (want pid ${ref.pid})`;
  };

  for (let i = 0; i < Number(warm); i++) await call(refs[i % refs.length] as Ref);
  process.stdout.write('ready\n');
  const go = await new Promise<boolean>((resolve) => {
    const rl = createInterface({ input: process.stdin });
    rl.once('line', () => {
      resolve(true);
      rl.close();
    });
    rl.once('close', () => resolve(false));
  });
  if (!go) return 1;

  const begin = process.hrtime.bigint();
  let n = 0;
  for (; n < maxCalls; n++) {
    const t0 = process.hrtime.bigint();
    if ((t0 - begin >= durationNs && n >= minCalls) || t0 - begin >= capNs) break;
    await call(refs[n % refs.length] as Ref);
    latencies[n] = Number(process.hrtime.bigint() - t0);
  }
  const end = process.hrtime.bigint();
  client.close();
  const out = [JSON.stringify({ calls: n, wrong, begin: Number(begin), end: Number(end), firstWrong })];
  for (let i = 0; i < n; i++) out.push(String(latencies[i]));
  await new Promise<void>((resolve) => process.stdout.write(`${out.join('\n')}\n`, () => resolve()));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(2);
  },
);
