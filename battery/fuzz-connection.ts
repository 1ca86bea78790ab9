/**
 * One fuzzing connection: a stream of valid and mutated PDUs sent in one of
 * several ways (pipelined, split, one at a time, then half-closed, cut off
 * abruptly, or left with a partial PDU), the server's replies read back and
 * checked against what the protocol says each request must get.
 */
import { createConnection } from 'node:net';
import { wrongAnswer } from './container-oracle.js';
import { misframedPdu, mutatedPdu, validPdu, type Corpus, type Random } from './pdu-corpus.js';
import { INFO, decodeRequest, frames, malformedReply, replies, type FramedRequest, type Reply } from './root-wire.js';

export const SCENARIOS = ['pipelined', 'split', 'lockstep', 'half-close', 'abrupt', 'partial'] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** The invariants a connection can break (crootd-wide ones are checked by the fuzzer). */
export type ConnectionInvariant = 'reply-or-close' | 'half-close' | 'wrong-container' | 'policy';

export interface Violation {
  readonly invariant: string;
  readonly detail: string;
}

export interface ConnectionResult {
  readonly scenario: Scenario;
  /** PDUs generated and (at least partly) sent. */
  readonly pdus: number;
  /** Complete requests the server received (broken ones included). */
  readonly requests: number;
  readonly answered: number;
  /** The server closed the connection with requests unanswered, none of them broken. */
  readonly closedUnanswered: boolean;
  readonly violations: readonly Violation[];
  /** Reply status -> count. */
  readonly statuses: ReadonlyMap<number, number>;
}

export interface ConnectionOptions {
  readonly socketPath: string;
  readonly corpus: Corpus;
  readonly random: Random;
  readonly scenario: Scenario;
  readonly maxPdus: number;
  /** Share of mutated PDUs, 0..1. */
  readonly mutated: number;
  /** Share of connections whose stream ends with a misframed PDU, 0..1. */
  readonly misframed: number;
  /** How long a connection may go without a reply or a close while requests are pending. */
  readonly hangMs: number;
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export async function fuzzConnection(options: ConnectionOptions): Promise<ConnectionResult> {
  const { random, corpus, scenario } = options;
  const count = 1 + random.below(options.maxPdus);
  const pdus: Buffer[] = [];
  for (let i = 0; i < count; i++) pdus.push(random.chance(options.mutated) ? mutatedPdu(random, corpus) : validPdu(random, corpus));
  // Now and then the stream ends with a PDU whose framing lies (everything before it is still read).
  if (random.chance(options.misframed)) pdus.push(misframedPdu(random, corpus));
  let stream = Buffer.concat(pdus);
  if (scenario === 'abrupt') stream = stream.subarray(0, random.below(stream.length + 1));
  // A partial PDU after the rest: its header, or a few bytes of one.
  const tail = scenario === 'partial' ? Buffer.from(random.pick([stream.subarray(0, 10), Buffer.alloc(20, 1)])) : Buffer.alloc(0);
  const expected = frames(Buffer.concat([stream, tail]));
  const brokenAt = expected.findIndex((f) => f.broken);

  const socket = createConnection({ path: options.socketPath, allowHalfOpen: true });
  const violations: Violation[] = [];
  let received: Buffer = Buffer.alloc(0);
  let info = false;
  const got: Reply[] = [];
  let closed = false;
  let serverEnded = false;
  let progress = Date.now();
  let wake: (() => void) | undefined;

  socket.on('data', (chunk: Buffer) => {
    progress = Date.now();
    received = Buffer.concat([received, chunk]);
    if (!info && received.length >= 24) {
      if (received.readInt32LE(0) !== INFO || received.readInt32LE(4) !== 24) violations.push({ invariant: 'reply-or-close', detail: `first PDU is not a 24-byte INFO: ${received.subarray(0, 24).toString('hex')}` });
      info = true;
      received = received.subarray(24);
    }
    if (info) {
      const split = replies(received);
      got.push(...split.replies);
      received = split.rest;
      if (split.bad !== undefined) {
        violations.push({ invariant: 'reply-or-close', detail: `unframeable reply stream: ${split.bad}` });
        socket.destroy();
      }
    }
    wake?.();
  });
  socket.on('end', () => {
    serverEnded = true;
    wake?.();
  });
  socket.on('close', () => {
    closed = true;
    wake?.();
  });
  socket.on('error', () => undefined);

  await new Promise<void>((resolve) => {
    socket.once('connect', () => resolve());
    socket.once('close', () => resolve());
  });

  /** Waits until `done()` or the connection closes, or nothing has happened for hangMs. */
  const waitFor = async (done: () => boolean): Promise<boolean> => {
    progress = Date.now();
    while (!done() && !closed) {
      if (Date.now() - progress > options.hangMs) return false;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 200);
      });
      wake = undefined;
    }
    return true;
  };

  if (!closed) {
    switch (scenario) {
      case 'pipelined':
      case 'half-close':
      case 'abrupt':
      case 'partial':
        socket.write(stream);
        break;
      case 'split':
        for (let at = 0; at < stream.length && !closed; ) {
          const n = 1 + random.below(64);
          socket.write(stream.subarray(at, at + n));
          at += n;
          if (random.chance(0.3)) await tick();
        }
        break;
      case 'lockstep': {
        let sent = 0;
        for (const pdu of pdus) {
          if (closed) break;
          socket.write(pdu);
          sent += pdu.length;
          const complete = frames(stream.subarray(0, sent)).length;
          if (!(await waitFor(() => got.length >= complete))) break;
        }
        break;
      }
    }
    if (scenario === 'abrupt') socket.destroy();
    else {
      if (tail.length > 0) socket.write(tail);
      if (scenario === 'half-close') socket.end();
      const settled = await waitFor(() => got.length >= expected.length && (scenario !== 'half-close' || serverEnded));
      if (!settled) {
        violations.push({ invariant: 'reply-or-close', detail: `${scenario}: ${expected.length - got.length} of ${expected.length} requests neither answered nor closed after ${options.hangMs} ms` });
      }
      socket.destroy();
    }
  }
  if (!closed) await new Promise<void>((resolve) => socket.once('close', () => resolve()));

  return judge(options, scenario, pdus.length, expected, got, brokenAt, serverEnded, violations);
}

/** A successful STARTPMDA with pipe IPC: its reply carries the two pipe fds (SCM_RIGHTS). */
function carriesFds(request: FramedRequest | undefined, reply: Reply | undefined): boolean {
  if (request === undefined || reply === undefined || reply.status !== 0) return false;
  const decoded = decodeRequest(request);
  return decoded?.kind === 'start' && decoded.ipctype === 2;
}

function judge(
  options: ConnectionOptions,
  scenario: Scenario,
  pdus: number,
  expected: readonly FramedRequest[],
  got: readonly Reply[],
  brokenAt: number,
  serverEnded: boolean,
  violations: Violation[],
): ConnectionResult {
  const statuses = new Map<number, number>();
  if (got.length > expected.length) violations.push({ invariant: 'reply-or-close', detail: `${got.length} replies to ${expected.length} requests` });
  for (let i = 0; i < Math.min(got.length, expected.length); i++) {
    const request = expected[i] as FramedRequest;
    const reply = got[i] as Reply;
    statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
    const bad = malformedReply(request, reply);
    if (bad !== undefined) {
      violations.push({ invariant: 'reply-or-close', detail: `request ${i} (${request.bytes.subarray(0, 48).toString('hex')}): ${bad}` });
      continue;
    }
    const decoded = decodeRequest(request);
    if (reply.status === 0 && decoded === undefined) {
      violations.push({ invariant: 'reply-or-close', detail: `malformed request ${request.bytes.subarray(0, 48).toString('hex')} answered with status 0` });
      continue;
    }
    if (decoded?.kind === 'container') {
      const wrong = wrongAnswer(options.corpus.truth, decoded.type, decoded, reply);
      if (wrong !== undefined) violations.push({ invariant: 'wrong-container', detail: wrong });
    }
    if (decoded?.kind === 'start' && reply.status === 0) {
      const allowed = options.corpus.agents.some((a) => a.label === decoded.label && a.ipctype === decoded.ipctype && a.args === decoded.args);
      if (!allowed) violations.push({ invariant: 'policy', detail: `uid ${process.getuid?.()} started "${decoded.label}": ${decoded.args}` });
    }
  }
  const unanswered = got.length < expected.length;
  // Requests after a broken one are never read: the server answers it and closes.
  // And a reply carrying fds (a pipe STARTPMDA) is the last this Node client can vouch for: libuv
  // reads a non-IPC socket with read(2), and what follows such a message can be lost to it at the
  // end of a half-closed stream (a recv(2)-based client, PCP's or test/server-limits.int.test.ts's,
  // gets it all). So what comes after one is not counted here.
  const lastWithFds = got.length > 0 && carriesFds(expected[got.length - 1], got[got.length - 1]);
  const explained = (brokenAt >= 0 && got.length === brokenAt + 1) || lastWithFds;
  if (unanswered && scenario === 'half-close' && !explained) {
    violations.push({ invariant: 'half-close', detail: `after a half-close ${expected.length - got.length} of ${expected.length} requests got no reply${serverEnded ? '' : ' and the server never closed'}` });
  }
  return {
    scenario,
    pdus,
    requests: expected.length,
    answered: Math.min(got.length, expected.length),
    closedUnanswered: unanswered && scenario !== 'abrupt' && !explained,
    violations,
    statuses,
  };
}

