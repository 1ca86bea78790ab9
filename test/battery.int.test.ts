/**
 * The battery (battery/, `npm run fuzz` and `npm run soak`) in short: a fuzz
 * of 200 000 PDUs and a 30-second soak against the built crootd, each
 * invariant its own test. Nothing here is timed: each test asserts that an
 * invariant held. First, that the battery's own checks can fail.
 */
import { randomBytes } from 'node:crypto';
import { namedContainer, wrongAnswer, type Truth } from '../battery/container-oracle.js';
import { describeFuzz, runFuzz, type FuzzReport } from '../battery/fuzz.js';
import { Random, misframedPdu, mutatedPdu } from '../battery/pdu-corpus.js';
import { CGROUPNAME_REQ, HOSTNAME_REQ, PROCESSID_REQ, containerRequest, frames, malformedReply, replies, type Reply } from '../battery/root-wire.js';
import { describeSoak, runSoak, type SoakReport } from '../battery/soak.js';
import { commandWorks, describeWith, probes } from './support/components.js';
import { builtBinaries } from './support/crootd-process.js';

const TRUTH: Truth = {
  containers: [
    { name: 'web', id: `abc123${'0'.repeat(58)}`, pid: 100, hostname: 'web-host', cgroups: ['system.slice/web.scope'] },
    { name: 'db', id: `abc124${'1'.repeat(58)}`, pid: 200, hostname: 'db-host', cgroups: ['system.slice/db.scope'] },
  ],
  processes: [{ pid: 100, hostname: 'web-host', cgroups: ['system.slice/web.scope'] }],
  engines: ['static'],
};

/** A container reply as a server would send it. */
function reply(type: number, status: number, pid: number, value = ''): Reply {
  const buf = containerRequest(type, Buffer.from(value), pid);
  buf.writeInt32LE(status, 8);
  const [r] = replies(buf).replies;
  return r as Reply;
}

describe("the battery's own checks", () => {
  it('names containers by exact id, then exact name, then a unique digest prefix, never an ambiguous one', () => {
    expect(namedContainer(TRUTH, 'web')?.pid).toBe(100);
    expect(namedContainer(TRUTH, '/db')?.pid).toBe(200);
    expect(namedContainer(TRUTH, 'static:db')?.pid).toBe(200);
    expect(namedContainer(TRUTH, 'abc124')?.pid).toBe(200);
    expect(namedContainer(TRUTH, 'abc12')).toBeUndefined();
    expect(namedContainer(TRUTH, 'we')).toBeUndefined();
    expect(namedContainer(TRUTH, 'docker:web')).toBeUndefined();
  });

  it('calls a status-0 answer wrong when its pid, hostname or cgroup is not the named container\'s, or nothing is named', () => {
    expect(wrongAnswer(TRUTH, HOSTNAME_REQ, { pid: 0, name: 'web' }, reply(0x9002, 0, 100, 'web-host'))).toBeUndefined();
    expect(wrongAnswer(TRUTH, HOSTNAME_REQ, { pid: 0, name: 'web' }, reply(0x9002, 0, 100, 'db-host'))).toMatch(/hostname "db-host"/);
    expect(wrongAnswer(TRUTH, PROCESSID_REQ, { pid: 0, name: 'web' }, reply(0x9004, 0, 200))).toMatch(/pid 200, expected 100/);
    expect(wrongAnswer(TRUTH, CGROUPNAME_REQ, { pid: 0, name: 'db' }, reply(0x9006, 0, 200, 'system.slice/web.scope'))).toMatch(/cgroup/);
    expect(wrongAnswer(TRUTH, HOSTNAME_REQ, { pid: 0, name: 'abc12' }, reply(0x9002, 0, 100, 'web-host'))).toMatch(/names no single container/);
    expect(wrongAnswer(TRUTH, HOSTNAME_REQ, { pid: 0, name: 'abc12' }, reply(0x9002, -12399, 0))).toBeUndefined();
  });

  it('calls a reply malformed when its type, length, version or body does not fit the request', () => {
    const [request] = frames(containerRequest(HOSTNAME_REQ, Buffer.from('web')));
    if (request === undefined) throw new Error('no frame');
    expect(malformedReply(request, reply(0x9002, -12399, 0))).toBeUndefined();
    expect(malformedReply(request, reply(0x9004, -12399, 0))).toMatch(/reply type/);
    expect(malformedReply(request, reply(0x9002, -12399, 0, 'stale'))).toMatch(/error reply with a 5-byte value/);
    expect(malformedReply(request, reply(0x9002, 7, 0))).toMatch(/positive status/);
  });

  it('keeps the length field of a mutated PDU true, and lets a misframed one lie', () => {
    const random = new Random(42);
    const corpus = { truth: TRUTH, agents: [] };
    for (let i = 0; i < 2000; i++) {
      const pdu = mutatedPdu(random, corpus);
      expect(pdu.readInt32LE(4)).toBe(pdu.length);
    }
    const lies = Array.from({ length: 200 }, () => misframedPdu(random, corpus)).filter((p) => p.length < 8 || p.readInt32LE(4) !== p.length);
    expect(lies.length).toBeGreaterThan(100);
  });
});

const FUZZ_INVARIANTS = ['crash', 'reply-or-close', 'half-close', 'wrong-container', 'policy', 'fd-leak', 'zombie', 'rss', 'log'];
const SOAK_INVARIANTS = ['crash', 'wrong-container', 'rss', 'fd-leak', 'zombie', 'log'];

const fuzzable = (): string | undefined => probes.root() ?? probes.native() ?? builtBinaries() ?? commandWorks('setpriv', ['--version']);

describeWith('root, the native module, the built binaries and setpriv', fuzzable, 'the fuzzer, 200 000 PDUs against the built crootd', () => {
  let report: FuzzReport;

  beforeAll(async () => {
    // 200 000: a leak of one fd in 50 000 PDUs (a paused, ended connection; 2026-12-08) showed in 3 runs of 3 with the code before its fix; 10-25 s.
    report = await runFuzz({ pdus: 200000, workers: 2, concurrency: 4, containers: 4, seed: randomBytes(4).readUInt32LE(0) });
    process.stderr.write(`${describeFuzz(report)}\n`);
  }, 300000);

  it('sent at least 200 000 PDUs, most of them read by crootd as complete requests', () => {
    expect(report.pdus).toBeGreaterThanOrEqual(200000);
    expect(report.requests).toBeGreaterThan(report.pdus / 2);
  });

  it.each(FUZZ_INVARIANTS)('holds the invariant: %s', (invariant) => {
    expect({ invariant, violations: report.violations[invariant] ?? 0, examples: report.examples.filter((v) => v.invariant === invariant) }).toEqual({ invariant, violations: 0, examples: [] });
  });
});

describeWith(
  'root, the native module, the built binaries and PCP client library',
  () => probes.root() ?? probes.native() ?? builtBinaries() ?? probes.pcpClientLib(),
  'the soak, 30 s against the built crootd',
  () => {
    let report: SoakReport;

    beforeAll(async () => {
      report = await runSoak({ minutes: 0.5, clients: 8, docker: probes.docker() === undefined, churnSeconds: 3 });
      process.stderr.write(`${describeSoak(report)}\n`);
    }, 300000);

    it('had all 8 clients asking, and containers coming and going', () => {
      expect(Object.keys(report.byClient)).toHaveLength(8);
      expect(Object.values(report.byClient).every((n) => n > 0)).toBe(true);
      expect(report.containersStarted.static).toBeGreaterThan(3);
    });

    it.each(SOAK_INVARIANTS)('holds the invariant: %s', (invariant) => {
      expect({ invariant, violations: report.violations[invariant] ?? 0, examples: report.examples.filter((v) => v.invariant === invariant) }).toEqual({ invariant, violations: 0, examples: [] });
    });
  },
);
