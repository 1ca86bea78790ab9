/**
 * The fuzzer's requests: valid HOSTNAME, PROCESSID, CGROUPNAME, STARTPMDA
 * and STOPPMDA PDUs for the battery's own containers and agents, and
 * mutations of them (length, type, version, status, name and argument
 * lengths, pids, flipped, cut and added bytes), from a seeded generator so
 * a run can be repeated exactly.
 */
import type { Truth } from './container-oracle.js';
import { CONTAINER_REQUESTS, MAX_REQUEST, REQUEST_TYPES, containerRequest, startRequest, stopRequest } from './root-wire.js';

/** mulberry32: small, fast, and the same sequence for the same seed. */
export class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)] as T;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.below(256);
    return out;
  }
  /** A 32-bit int that is often at an edge: 0, ±1, limits, sizes near the protocol's. */
  int(): number {
    return this.pick([0, 1, -1, 2, 16, 23, 24, 25, 63, 64, 103, 104, 4095, 4096, 4200, 4201, 0x7fffffff, -0x80000000, this.below(65536), (this.below(2 ** 32) | 0)]);
  }
}

/** An agent the battery's pmcd.conf names, so an unprivileged client may start it. */
export interface AllowedAgent {
  readonly label: string;
  readonly ipctype: number;
  readonly args: string;
}

export interface Corpus {
  readonly truth: Truth;
  readonly agents: readonly AllowedAgent[];
}

/** Names worth asking for: each container's name, id, id prefixes, qualified and slashed forms, and near misses. */
function names(random: Random, corpus: Corpus): Buffer {
  const c = random.pick(corpus.truth.containers);
  const text = random.pick([
    c.name,
    c.id,
    c.id.slice(0, 12),
    c.id.slice(0, 1 + random.below(20)),
    `/${c.name}`,
    `static:${c.name}`,
    `docker:${c.name}`,
    c.name.slice(0, -1),
    `${c.name}x`,
    c.name.toUpperCase(),
    'bat',
    'no-such-container',
    '',
    '/',
    'static:',
    `${c.name}\0garbage`,
  ]);
  const bytes = Buffer.from(text);
  return random.chance(0.5) ? Buffer.concat([bytes, Buffer.alloc(1)]) : bytes;
}

/** A valid request of any kind. */
export function validPdu(random: Random, corpus: Corpus): Buffer {
  // Mostly container requests; STARTPMDA rarely, as each start runs a process (several ms of crootd's time).
  const kind = random.below(100);
  if (kind < 80) {
    const type = random.pick(CONTAINER_REQUESTS);
    if (random.chance(0.15)) {
      const pid = random.pick([...corpus.truth.processes.map((p) => p.pid), 1, 0, -1, 4194305]);
      return containerRequest(type, Buffer.alloc(0), pid);
    }
    return containerRequest(type, names(random, corpus), random.chance(0.8) ? 0 : random.int());
  }
  if (kind < 82 && corpus.agents.length > 0) {
    if (random.chance(0.5)) {
      const agent = random.pick(corpus.agents);
      return startRequest(agent.ipctype, agent.label, agent.args);
    }
    return startRequest(random.pick([1, 2]), random.pick(['x', 'cat', 'evil']), random.pick(['/bin/true', '/bin/cat', '/bin/sh -c id', 'true']));
  }
  return stopRequest(random.pick([-1, 0, 1, random.below(4194304), process.pid]), random.pick([0, 1]));
}

/**
 * A valid request with one to three mutations that keep the length field
 * true, so the server still frames the stream: type, version, status,
 * inner lengths and pids, flipped body bytes, random bodies, long and odd
 * names.
 */
export function mutatedPdu(random: Random, corpus: Corpus): Buffer {
  let pdu = validPdu(random, corpus);
  const rounds = 1 + random.below(3);
  for (let r = 0; r < rounds; r++) pdu = mutate(random, pdu);
  pdu.writeInt32LE(pdu.length, 4);
  return pdu;
}

/**
 * A PDU whose framing lies: a length field below the header or beyond the
 * largest request, shorter or longer than the bytes that follow, a body cut
 * short, or random bytes. What follows it in the stream is read as part of
 * it, or never read.
 */
export function misframedPdu(random: Random, corpus: Corpus): Buffer {
  const pdu = Buffer.from(validPdu(random, corpus));
  switch (random.below(5)) {
    case 0:
      pdu.writeInt32LE(random.int(), 4);
      return pdu;
    case 1:
      pdu.writeInt32LE(pdu.length + random.pick([-8, -4, -1, 1, 4, 8, 4096]), 4);
      return pdu;
    case 2:
      return pdu.subarray(0, Math.max(16, pdu.length - 1 - random.below(Math.max(1, pdu.length - 16))));
    case 3:
      return random.bytes(16 + random.below(64));
    default: {
      const out = Buffer.concat([pdu, random.bytes(1 + random.below(64))]);
      out.writeInt32LE(Math.min(out.length, MAX_REQUEST + 1), 4);
      return out;
    }
  }
}

/** One mutation; the caller sets the length field afterwards. */
function mutate(random: Random, input: Buffer): Buffer {
  const pdu = Buffer.from(input);
  const setInt = (offset: number, value: number): void => {
    if (offset + 4 <= pdu.length) pdu.writeInt32LE(value | 0, offset);
  };
  switch (random.below(9)) {
    case 0: // type: another request, a reply type, anything
      setInt(0, random.pick([...REQUEST_TYPES, 0x9000, 0x9002, 0x9008, 0x900a, 0x900b, 0x8fff, random.int()]));
      return pdu;
    case 1: // version
      setInt(12, random.pick([0, 1, 3, -1, 255, random.int()]));
      return pdu;
    case 2: // status
      setInt(8, random.int());
      return pdu;
    case 3: // pid, namelen, ipctype, label and argument lengths
      setInt(random.pick([16, 20, 24, 28, 32, 36]), random.int());
      return pdu;
    case 4: // flip bits outside the length field
      for (let i = 0, n = 1 + random.below(4); i < n; i++) {
        const at = random.below(pdu.length);
        if (at >= 4 && at < 8) continue;
        pdu[at] = (pdu[at] as number) ^ (1 << random.below(8));
      }
      return pdu;
    case 5: // a body cut or grown (the length field follows)
      return random.chance(0.5) ? pdu.subarray(0, 16 + random.below(pdu.length - 15)) : Buffer.concat([pdu, random.bytes(1 + random.below(64))]);
    case 6: // the header kept, a random body
      return Buffer.concat([pdu.subarray(0, 16), random.bytes(random.below(48))]);
    case 7: // a long name, namelen true to it
      return containerRequest(random.pick(CONTAINER_REQUESTS), Buffer.alloc(random.pick([255, 4095, 4096, 4100]), 0x61));
    default: // names with odd bytes: NULs, invalid UTF-8, control characters
      return containerRequest(random.pick(CONTAINER_REQUESTS), Buffer.concat([Buffer.from('bat'), random.bytes(1 + random.below(12))]));
  }
}
