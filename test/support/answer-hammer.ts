/**
 * Clients that keep asking a crootd about containers while a test breaks
 * things around it, and the judge of what they were told:
 *
 * - `AnswerHammer`: croot's RootClient (one long connection each, reconnecting
 *   when crootd closes it) and PCP's own C client library
 *   (pcp-c-client.c, a new connection per batch of requests), asking HOSTNAME,
 *   PROCESSID and CGROUPNAME of the names a test gives, every answer kept with
 *   the time its request was sent.
 * - `ContainerTruth`: what the test knows from outside croot (the engines'
 *   CLIs, /proc): each container's hostname and every init process it has had
 *   (pid, start time, cgroup as the kernel shows it), and when the test saw
 *   each one gone.
 * - `wrongAnswers`: every answer that was not right for the container asked
 *   for: a name that never was a container, a pid that was never its init,
 *   an init the test had already seen dead when the request was sent, a
 *   hostname or cgroup that is not its own.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Errno, PM_ERR_NOCONTAINER } from '../../core/errors/croot-error.js';
import { nodeSocketTransport } from '../../core/client/node-socket-transport.js';
import { RootClient } from '../../core/client/root-client.js';
import { PduType } from '../../core/protocol/root-pdus.js';
import { cgroupTruth } from './truth.js';

export type Question = 'hostname' | 'pid' | 'cgroup';
const QUESTIONS: readonly Question[] = ['hostname', 'pid', 'cgroup'];

/** One answer with status 0 (or a positive length/pid from the C library). */
export interface Answer {
  readonly client: string;
  readonly question: Question;
  readonly ref: string;
  /** When the request was sent (for the C client: when its batch was started), ms since the epoch. */
  readonly sentAt: number;
  /** The hostname or cgroup answered. */
  readonly value?: string;
  /** The init PID answered (croot's client for every question; the C client for PROCESSID only). */
  readonly pid?: number;
}

/** The statuses a container request may fail with while containers and daemons come and go. */
export const EXPECTED_FAILURES: ReadonlySet<number> = new Set([
  PM_ERR_NOCONTAINER, // no such container (gone, never was)
  -Errno.ESRCH, // ERR_NOT_RUNNING
  -Errno.ESTALE, // ERR_PID_REUSED
  -Errno.EAGAIN, // ERR_ENGINE_LOADING
]);

export interface HammerOptions {
  readonly socketPath: string;
  /** The built pcp-c-client, for the C clients. */
  readonly cClient: string;
  readonly crootClients: number;
  readonly cClients: number;
  /** The name each request asks about. */
  readonly pickRef: () => string;
  /** The questions asked (default all three). */
  readonly questions?: readonly Question[];
  /** Requests per C client connection (default 20). */
  readonly batch?: number;
}

function pick<T>(list: readonly T[]): T {
  return list[Math.floor(Math.random() * list.length)] as T;
}

function tick(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

export class AnswerHammer {
  readonly answers: Answer[] = [];
  /** Failed requests by status. */
  readonly failures = new Map<number, number>();
  /** Requests asked, by client. */
  readonly asked = new Map<string, number>();
  /** Things that must not happen: a connection refused or dropped, a status that is not a PCP error, an unreadable C client line. */
  readonly broken: string[] = [];
  private stopping = false;
  private loops: Promise<void>[] = [];

  constructor(private readonly options: HammerOptions) {}

  start(): this {
    for (let i = 0; i < this.options.crootClients; i++) this.loops.push(this.crootLoop(`croot-${i}`));
    for (let i = 0; i < this.options.cClients; i++) this.loops.push(this.cLoop(`pcp-c-${i}`));
    return this;
  }

  /** Stops asking and waits for every client to finish its request in flight. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
  }

  /** Requests answered or failed, all clients. */
  get total(): number {
    let n = 0;
    for (const v of this.asked.values()) n += v;
    return n;
  }

  private count(client: string): void {
    this.asked.set(client, (this.asked.get(client) ?? 0) + 1);
  }

  private failed(client: string, status: number, what: string): void {
    this.failures.set(status, (this.failures.get(status) ?? 0) + 1);
    if (!EXPECTED_FAILURES.has(status) && this.broken.length < 50) this.broken.push(`${client}: ${what} failed with status ${status}`);
  }

  private async crootLoop(client: string): Promise<void> {
    const questions = this.options.questions ?? QUESTIONS;
    while (!this.stopping) {
      let root: RootClient;
      try {
        root = await RootClient.connect(this.options.socketPath, { transport: nodeSocketTransport, timeoutMs: 20000 });
      } catch (err) {
        if (this.broken.length < 50) this.broken.push(`${client}: connect failed: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      try {
        while (!this.stopping) {
          const ref = this.options.pickRef();
          const question = pick(questions);
          const type = question === 'hostname' ? PduType.HOSTNAME_REQ : question === 'pid' ? PduType.PROCESSID_REQ : PduType.CGROUPNAME_REQ;
          const sentAt = Date.now();
          this.count(client);
          try {
            const reply = await root.containerQuery(type, ref);
            this.answers.push({ client, question, ref, sentAt, pid: reply.pid, ...(question === 'pid' ? {} : { value: reply.value }) });
          } catch (err) {
            const status = (err as { status?: unknown }).status;
            // A timeout or a closed connection leaves the client unusable: that is a broken connection, not an answer.
            if (typeof status !== 'number' || !root.connected) throw err;
            this.failed(client, status, `${question} of "${ref}"`);
          }
          // Room for the rest of the test (its daemons' CLIs, its checks) on this event loop.
          await tick();
        }
      } catch (err) {
        if (!this.stopping && this.broken.length < 50) this.broken.push(`${client}: connection failed: ${(err as Error).message}`);
      } finally {
        root.close();
      }
    }
  }

  private async cLoop(client: string): Promise<void> {
    const questions = this.options.questions ?? QUESTIONS;
    const op: Record<Question, string> = { hostname: 'hostname', pid: 'processid', cgroup: 'cgroup' };
    while (!this.stopping) {
      const batch = Array.from({ length: this.options.batch ?? 20 }, () => ({ question: pick(questions), ref: this.options.pickRef() }));
      const sentAt = Date.now();
      let out: string;
      try {
        out = await new Promise<string>((resolve, reject) =>
          execFile(this.options.cClient, [this.options.socketPath, ...batch.map((b) => `${op[b.question]}:${b.ref}`)], { encoding: 'utf8', timeout: 60000 }, (err, stdout, stderr) =>
            err && stdout.trim() === '' ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(stdout),
          ),
        );
      } catch (err) {
        if (!this.stopping && this.broken.length < 50) this.broken.push(`${client}: ${(err as Error).message}`);
        continue;
      }
      for (const line of out.split('\n').filter((l) => l.trim() !== '')) {
        let r: { op: string; name?: string; sts: number; value?: string };
        try {
          r = JSON.parse(line) as typeof r;
        } catch {
          this.broken.push(`${client}: unreadable line ${JSON.stringify(line)}`);
          continue;
        }
        if (r.op === 'connect') {
          if (r.sts < 0 && this.broken.length < 50) this.broken.push(`${client}: pmdaRootConnect returned ${r.sts}`);
          continue;
        }
        const question: Question = r.op === 'hostname' ? 'hostname' : r.op === 'processid' ? 'pid' : 'cgroup';
        const ref = r.name ?? '';
        this.count(client);
        if (r.sts < 0) this.failed(client, r.sts, `${question} of "${ref}"`);
        else if (question === 'pid') this.answers.push({ client, question, ref, sentAt, pid: r.sts });
        else this.answers.push({ client, question, ref, sentAt, value: r.value ?? '' });
      }
    }
  }
}

/** One init process a container had, as the kernel showed it. */
export interface Incarnation {
  readonly pid: number;
  /** Field 22 of /proc/PID/stat. */
  readonly startTime: number;
  /** Its cgroup as the kernel shows it (truth.ts's rule). */
  readonly cgroup: string;
  /** When the test saw it gone (no such process, a zombie, or another process at its pid). */
  goneAt?: number;
}

/** A container the test made. */
export interface KnownContainer {
  /** The name clients ask for. */
  readonly ref: string;
  readonly hostname: string;
  readonly incarnations: Incarnation[];
}

function statOf(pid: number): { state: string; startTime: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '?', startTime: Number(fields[19]) };
  } catch {
    return undefined;
  }
}

/** Whether the process that was `inc` still runs (not gone, not a zombie, not replaced at its pid). */
export function alive(inc: Pick<Incarnation, 'pid' | 'startTime'>): boolean {
  const s = statOf(inc.pid);
  return s !== undefined && s.state !== 'Z' && s.startTime === inc.startTime;
}

/** What the test knows of its containers, from outside croot. */
export class ContainerTruth {
  readonly containers = new Map<string, KnownContainer>();

  /** A container the test made, before any of its inits is known. */
  add(ref: string, hostname: string): KnownContainer {
    const known: KnownContainer = { ref, hostname, incarnations: [] };
    this.containers.set(ref, known);
    return known;
  }

  get(ref: string): KnownContainer {
    const known = this.containers.get(ref);
    if (known === undefined) throw new Error(`the test does not know ${ref}`);
    return known;
  }

  /**
   * Records that `pid` is now `ref`'s init (an engine's CLI said so), with its
   * start time and cgroup from /proc; no-op when it is known already.
   * Returns the incarnation, or undefined when the process is already gone.
   */
  saw(ref: string, pid: number): Incarnation | undefined {
    const known = this.get(ref);
    const s = statOf(pid);
    if (s === undefined || s.state === 'Z') return undefined;
    const same = known.incarnations.find((i) => i.pid === pid && i.startTime === s.startTime);
    if (same !== undefined) return same;
    let cgroup: string;
    try {
      cgroup = cgroupTruth(pid);
    } catch {
      return undefined;
    }
    if (!alive({ pid, startTime: s.startTime })) return undefined;
    const inc: Incarnation = { pid, startTime: s.startTime, cgroup };
    known.incarnations.push(inc);
    return inc;
  }

  /** The init of `ref` that runs now, as far as /proc tells (undefined: none). */
  running(ref: string): Incarnation | undefined {
    return this.get(ref).incarnations.find((i) => i.goneAt === undefined && alive(i));
  }

  /** Notes the time for every incarnation that /proc shows gone and had no time yet. */
  noteGone(): void {
    const now = Date.now();
    for (const known of this.containers.values()) for (const inc of known.incarnations) if (inc.goneAt === undefined && !alive(inc)) inc.goneAt = now;
  }

  /** Waits until `inc` is gone (at most `timeoutMs`) and notes when. */
  async waitGone(inc: Incarnation, timeoutMs = 30000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (alive(inc)) {
      if (Date.now() > deadline) throw new Error(`pid ${inc.pid} still runs after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
    inc.goneAt ??= Date.now();
  }
}

/** Why `answer` is wrong, or undefined when it is right for the container asked for. */
export function wrongAnswer(truth: ContainerTruth, answer: Answer): string | undefined {
  const known = truth.containers.get(answer.ref);
  const label = `${answer.client}: ${answer.question} of "${answer.ref}"`;
  if (known === undefined) return `${label}, which was never a container, answered ${JSON.stringify(answer.value ?? answer.pid)}`;
  let inc: Incarnation | undefined;
  if (answer.pid !== undefined) {
    inc = known.incarnations.find((i) => i.pid === answer.pid);
    if (inc === undefined) return `${label} answered pid ${answer.pid}, never its init (${known.incarnations.map((i) => i.pid).join(', ') || 'none known'})`;
    if (inc.goneAt !== undefined && answer.sentAt > inc.goneAt) {
      return `${label} answered pid ${answer.pid}, asked ${answer.sentAt - inc.goneAt} ms after the test saw that init gone`;
    }
  }
  if (answer.question === 'hostname' && answer.value !== known.hostname) return `${label} answered "${answer.value ?? ''}", its hostname is "${known.hostname}"`;
  if (answer.question === 'cgroup') {
    const cgroups = (inc !== undefined ? [inc] : known.incarnations).map((i) => i.cgroup);
    if (!cgroups.includes((answer.value ?? '').replace(/^\/+/, ''))) return `${label} answered "${answer.value ?? ''}", its cgroups were ${cgroups.join(', ')}`;
  }
  return undefined;
}

/** Every wrong answer (at most `limit`, with the count of the rest). */
export function wrongAnswers(truth: ContainerTruth, answers: readonly Answer[], limit = 20): string[] {
  const out: string[] = [];
  let more = 0;
  for (const a of answers) {
    const why = wrongAnswer(truth, a);
    if (why === undefined) continue;
    if (out.length < limit) out.push(why);
    else more++;
  }
  if (more > 0) out.push(`… and ${more} more`);
  return out;
}

/** What crootd told both clients about one container: its init's pid, hostname and cgroup, or that it would not answer. */
export type Told = { readonly pid: number; readonly hostname: string; readonly cgroup: string } | 'not answered' | { readonly mixed: readonly string[] };

/**
 * What a test expects crootd to tell about a container: `as it runs` is
 * answered when `current` gives an init, and not answered when it gives none.
 */
export type Expectation = 'answered' | 'not answered' | 'answered or not answered' | 'as it runs';

/**
 * Asks crootd about containers through croot's RootClient and PCP's C
 * client, and waits until what both are told is what the test expects,
 * judged against `current` (the init the engine's CLI or /proc says runs).
 */
export class AnswerChecker {
  private client: RootClient | undefined;

  constructor(
    private readonly socketPath: string,
    private readonly cClient: string,
    private readonly truth: ContainerTruth,
  ) {}

  close(): void {
    this.client?.close();
    this.client = undefined;
  }

  /** PID, hostname and cgroup of `ref` through both clients; 'not answered' when every request failed with a PCP status. */
  async told(ref: string): Promise<Told> {
    this.client ??= await RootClient.connect(this.socketPath, { transport: nodeSocketTransport, timeoutMs: 20000 });
    const client = this.client;
    const seen: string[] = [];
    const failed: number[] = [];
    const croot = async (type: Parameters<RootClient["containerQuery"]>[0]): Promise<{ value: string; pid: number } | undefined> => {
      try {
        return await client.containerQuery(type, ref);
      } catch (err) {
        const status = (err as { status?: unknown }).status;
        if (typeof status !== 'number') {
          this.close();
          throw err;
        }
        failed.push(status);
        return undefined;
      }
    };
    const pid = await croot(PduType.PROCESSID_REQ);
    const hostname = await croot(PduType.HOSTNAME_REQ);
    const cgroup = await croot(PduType.CGROUPNAME_REQ);
    const c = await new Promise<string>((resolve, reject) =>
      execFile(this.cClient, [this.socketPath, `processid:${ref}`, `hostname:${ref}`, `cgroup:${ref}`], { encoding: 'utf8', timeout: 60000 }, (err, stdout, stderr) =>
        err && stdout.trim() === '' ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(stdout),
      ),
    );
    const lines = c
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as { op: string; sts: number; value?: string });
    const byOp = (op: string): { sts: number; value?: string } | undefined => lines.find((l) => l.op === op);
    for (const op of ['processid', 'hostname', 'cgroup']) {
      const sts = byOp(op)?.sts;
      if (sts === undefined) throw new Error(`the C client printed no ${op} line: ${c}`);
      if (sts < 0) failed.push(sts);
    }
    for (const status of failed) if (!EXPECTED_FAILURES.has(status)) seen.push(`status ${status}`);
    if (failed.length === 6 && seen.length === 0) return 'not answered';
    if (failed.length > 0 || pid === undefined || hostname === undefined || cgroup === undefined) {
      return { mixed: [...seen, `${failed.length} of 6 requests failed (${failed.join(', ')})`] };
    }
    const cPid = byOp('processid')?.sts;
    const cHostname = byOp('hostname')?.value;
    const cCgroup = byOp('cgroup')?.value;
    const agree = [pid.pid, hostname.pid, cgroup.pid, cPid].every((p) => p === pid.pid) && cHostname === hostname.value && cCgroup === cgroup.value;
    if (!agree) {
      return { mixed: [`croot's client: pid ${pid.pid}/${hostname.pid}/${cgroup.pid}, ${hostname.value}, ${cgroup.value}`, `PCP's: pid ${cPid}, ${cHostname}, ${cCgroup}`] };
    }
    return { pid: pid.pid, hostname: hostname.value, cgroup: cgroup.value.replace(/^\/+/, '') };
  }

  /**
   * Waits (up to `timeoutMs`) until each container is told about as
   * expected ('answered': the pid `current` gives, its hostname and that
   * init's cgroup; 'not answered': every request fails with a PCP status),
   * then asserts it, so a mismatch shows what was told and what was expected.
   */
  async expectTold(expectations: ReadonlyArray<readonly [string, Expectation]>, current: (ref: string) => Promise<Incarnation | undefined>, timeoutMs = 30000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.truth.noteGone();
      const rows: Array<{ ref: string; expected: unknown; told: unknown }> = [];
      for (const [ref, asked] of expectations) {
        const inc = await current(ref);
        const expectation = asked !== 'as it runs' ? asked : inc === undefined ? 'not answered' : 'answered';
        const right = inc === undefined ? undefined : { pid: inc.pid, hostname: this.truth.get(ref).hostname, cgroup: inc.cgroup };
        const told = await this.told(ref);
        const ok =
          (expectation !== 'answered' && told === 'not answered') ||
          (expectation !== 'not answered' && right !== undefined && JSON.stringify(told) === JSON.stringify(right));
        if (!ok) rows.push({ ref, expected: expectation === 'not answered' ? 'not answered' : (right ?? `${expectation}, but nothing runs`), told });
      }
      if (rows.length === 0) return;
      if (Date.now() > deadline) {
        expect(rows).toEqual([]);
        return;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
