/**
 * How long a change (a container created, renamed, stopped, restarted,
 * removed) takes to show in a server's answers: after the change is made,
 * every server is asked PROCESSID of the container's name in a loop, each on
 * its own connection, until it gives the right answer and keeps giving it
 * for `settleMs`. A wrong answer after the first right one is a flap.
 */
import { delay } from './bench-processes.js';
import { ProbeClient, describeAnswer, type ProbeAnswer } from './probe-client.js';
import type { RunningServer, ServerRole } from './servers.js';

/** What a server should answer once the change shows: this PID, or no longer `oldPid`. */
export type ExpectedAnswer = { readonly pid: number } | { readonly gone: number };

export interface ChangeResult {
  readonly role: ServerRole;
  /** ms from the change to the first right answer; NaN when none came within the timeout. */
  readonly ms: number;
  /** Wrong answers after the first right one. */
  readonly flaps: number;
  readonly polls: number;
  /** The last answer (for notes). */
  readonly last: string;
}

/**
 * Right answers: the PID itself; for a container that is gone, crootd must
 * answer with an error status, while PCP's pmdaroot may answer anything but
 * the old PID (its fuzzy matching can name another container, and a stopped
 * Docker container is answered with pid -1).
 */
export function isRight(role: ServerRole, answer: ProbeAnswer, expected: ExpectedAnswer): boolean {
  if ('pid' in expected) return 'pid' in answer && answer.pid === expected.pid;
  if (role === 'pcp') return !('failure' in answer) && !('pid' in answer && answer.pid === expected.gone);
  return 'status' in answer;
}

interface Sample {
  readonly ms: number;
  readonly answer: ProbeAnswer;
}

function judge(role: ServerRole, samples: readonly Sample[], expected: ExpectedAnswer): { first: number; flaps: number } {
  let first = Number.NaN;
  let flaps = 0;
  for (const s of samples) {
    const right = isRight(role, s.answer, expected);
    if (right && Number.isNaN(first)) first = s.ms;
    else if (!right && !Number.isNaN(first)) flaps++;
  }
  return { first, flaps };
}

export interface ChangeOptions {
  readonly timeoutMs: number;
  /** How long a right answer must hold (default 300 ms). */
  readonly settleMs?: number;
  /** Pause between two questions (default 5 ms). */
  readonly intervalMs?: number;
}

/**
 * Makes `change`, then times how long each server takes to answer PROCESSID
 * of `name` as `expected` says (it may resolve later than the change, e.g.
 * once `docker inspect` tells the new PID; answers are judged once it has).
 */
export async function timeChange(
  servers: readonly RunningServer[],
  name: string,
  change: () => Promise<void> | void,
  expected: () => Promise<ExpectedAnswer> | ExpectedAnswer,
  options: ChangeOptions,
): Promise<ChangeResult[]> {
  const settleMs = options.settleMs ?? 300;
  const intervalMs = options.intervalMs ?? 5;
  const probes = servers.map((s) => new ProbeClient(s.socket));
  try {
    // Connect first, so the time measured is the server's, not a connect.
    await Promise.all(probes.map((p) => p.processId(name)));
    await change();
    const t0 = process.hrtime.bigint();
    let want: ExpectedAnswer | undefined;
    const wanted = Promise.resolve(expected()).then((e) => (want = e));
    const watch = async (server: RunningServer, probe: ProbeClient): Promise<ChangeResult> => {
      const samples: Sample[] = [];
      for (;;) {
        const answer = await probe.processId(name);
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        samples.push({ ms, answer });
        if (want !== undefined) {
          const { first } = judge(server.role, samples, want);
          if (!Number.isNaN(first) && ms - first >= settleMs) break;
        }
        if (ms > options.timeoutMs) break;
        await delay(intervalMs);
      }
      await wanted;
      const { first, flaps } = judge(server.role, samples, want as ExpectedAnswer);
      const last = samples[samples.length - 1];
      return { role: server.role, ms: first, flaps, polls: samples.length, last: last === undefined ? '' : describeAnswer(last.answer) };
    };
    return await Promise.all(servers.map((s, i) => watch(s, probes[i] as ProbeClient)));
  } finally {
    for (const p of probes) p.close();
  }
}
