/**
 * croot's root PMDA given exactly the requests real pmcd sent PCP's own
 * pmdaroot (pmda/__golden__/pmdaroot.pdus) answers with exactly pmdaroot's
 * bytes: descriptors, help texts, instance lists and lookups, fetch
 * results with and without a profile, labels, and the errors for unknown
 * metrics, instances and instance domains. The containers it is given are
 * the ones pmdaroot listed in that capture (read from pmdaroot's own fetch
 * reply, not from croot's code).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ContainerView } from './container-source.js';
import { GOLDEN_DIR, readTranscript } from '../test/support/golden-transcript.js';
import { MetricType, pmid } from './identifiers.js';
import { readHeader } from './pdu-framer.js';
import { decodePdu, type InstancePdu, type ResultPdu } from './pdus.js';
import { rootPmda } from './root-pmda.js';
import { decodeValue } from './values.js';

const transcript = readTranscript('pmdaroot.pdus');

/** The containers pmdaroot reported, in its instance order, from its own replies. */
function pmdarootContainers(): ContainerView[] {
  const instances = decodePdu(transcript.find((e) => e.marker === 'root instances of indom 1.0' && e.direction === 'toPmcd')?.bytes as Buffer) as InstancePdu;
  const result = decodePdu(transcript.find((e) => e.marker === 'root fetch all seven' && e.direction === 'toPmcd')?.bytes as Buffer) as ResultPdu;
  const value = (item: number, inst: number): string | number | undefined => {
    const vs = result.vsets.find((v) => v.pmid === pmid(1, 0, item));
    const v = vs?.values.find((x) => x.inst === inst);
    return v === undefined ? undefined : (decodeValue(item === 0 || item === 1 || item === 6 ? MetricType.STRING : MetricType.U32, v) as string | number);
  };
  return instances.instances.map((e) => {
    const cgroup = value(6, e.inst);
    const pid = value(2, e.inst);
    return {
      engine: value(0, e.inst) as string,
      id: e.name as string,
      names: [value(1, e.inst) as string],
      running: value(3, e.inst) === 1,
      paused: value(4, e.inst) === 1,
      restarting: value(5, e.inst) === 1,
      ...(pid !== undefined ? { pid: pid as number } : {}),
      ...(cgroup !== undefined ? { cgroup: (cgroup as string).replace(/^\//, '') } : {}),
    };
  });
}

describe('rootPmda against PCP’s pmdaroot, request for request', () => {
  const containers = pmdarootContainers();

  it('is given the containers pmdaroot listed (running and stopped, two engines)', () => {
    expect(containers.length).toBeGreaterThanOrEqual(3);
    expect(new Set(containers.map((c) => c.engine))).toEqual(new Set(['docker', 'podman']));
    expect(containers.some((c) => !c.running)).toBe(true);
  });

  it('answers every request pmcd sent pmdaroot with pmdaroot’s bytes', async () => {
    const pmda = rootPmda({ source: { containers: () => containers } });
    const ours: string[] = [];
    for (const e of transcript) {
      if (e.direction !== 'toAgent') continue;
      for (const reply of await pmda.handle(e.bytes)) ours.push(`${e.marker}: ${reply.toString('hex')}`);
    }
    const theirs = transcript.filter((e) => e.direction === 'toPmcd').slice(1).map((e) => `${e.marker}: ${e.bytes.toString('hex')}`);
    expect(ours).toEqual(theirs);
  });

  it('sends pmdaroot’s credentials (version 2, no feature flags) but for the pid', () => {
    const first = transcript[0]?.bytes as Buffer;
    expect(rootPmda({ source: { containers: () => [] } }).credentials(readHeader(first).from)).toEqual(first);
  });

  it('prints what pminfo -d and -T print for pmdaroot (recorded with PCP’s pminfo)', () => {
    // The recorded outputs are the truth pminfo under pmcd is compared with in test/pmcd-root-pmda.int.test.ts;
    // here: each of the seven names and one-liners appears with pmdaroot's metadata.
    const text = readFileSync(join(GOLDEN_DIR, 'pmdaroot-pminfo-T.txt'), 'utf8');
    const pmda = rootPmda({ source: { containers: () => [] } });
    for (let item = 0; item < 7; item++) {
      const m = pmda.metric(pmid(1, 0, item));
      expect(text).toContain(`\n${m?.name ?? '?'}\nHelp:\n${m?.help.oneline ?? '?'}\n`);
    }
  });
});
