/**
 * croot's PDU codec against PDUs recorded between PCP 6.0.3's real pmcd and
 * two real libpcp_pmda agents (pmdaroot, pmdasample); see
 * __golden__/README.md. The truths: the bytes themselves (every PDU decodes
 * and re-encodes to exactly them), and what PCP's own libpcp made of the
 * agents' replies (queries.out.txt, printed by PCP's Python binding), and
 * the constants of pmdasample's metrics (its help text).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GOLDEN_DIR, readTranscript, type TranscriptEntry } from '../test/support/golden-transcript.js';
import { Attribute, MetricType, PM_IN_NULL, TextKind, indom, pmid, unpackUnits } from './identifiers.js';
import { PduFlag, PduType, readHeader } from './pdu-framer.js';
import { attrText, decodePdu, encodePdu, hostOrderTextIdent, type Pdu } from './pdus.js';
import { PM_ERR_INDOM, PM_ERR_INST, PM_ERR_NOTCONN, PM_ERR_PMID, PM_ERR_TEXT } from './pm-status.js';
import { decodeValue } from './values.js';

const transcripts = { pmdaroot: readTranscript('pmdaroot.pdus'), pmdasample: readTranscript('pmdasample.pdus') };

/** libpcp's answers, one line per call: `<label>: <python repr>`. */
const answers = new Map(
  readFileSync(join(GOLDEN_DIR, 'queries.out.txt'), 'utf8')
    .split('\n')
    .filter((l) => l.includes(': '))
    .map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)] as [string, string]),
);

/** The PDUs (decoded) one call caused, in order. */
function during(entries: readonly TranscriptEntry[], marker: string): { dir: TranscriptEntry['direction']; pdu: Pdu }[] {
  const found = entries.filter((e) => e.marker === marker).map((e) => ({ dir: e.direction, pdu: decodePdu(e.bytes) }));
  if (found.length === 0) throw new Error(`no PDUs after marker "${marker}"`);
  return found;
}

function reply<K extends Pdu['kind']>(entries: readonly TranscriptEntry[], marker: string, kind: K): Extract<Pdu, { kind: K }> {
  const hit = during(entries, marker).find((e) => e.dir === 'toPmcd' && e.pdu.kind === kind);
  if (hit === undefined) throw new Error(`no ${kind} reply after "${marker}"`);
  return hit.pdu as Extract<Pdu, { kind: K }>;
}

describe('PDU codec against PDUs recorded from PCP 6.0.3', () => {
  for (const [agent, entries] of Object.entries(transcripts)) {
    describe(`${agent}'s transcript`, () => {
      it('has PDUs both ways', () => {
        expect(entries.filter((e) => e.direction === 'toAgent').length).toBeGreaterThan(20);
        expect(entries.filter((e) => e.direction === 'toPmcd').length).toBeGreaterThan(20);
      });

      it('decodes every PDU and re-encodes it to the same bytes', () => {
        const mismatches = entries
          .map((e) => ({ line: e.line, hex: e.bytes.toString('hex'), again: encodePdu(decodePdu(e.bytes)).toString('hex') }))
          .filter((x) => x.hex !== x.again);
        expect(mismatches).toEqual([]);
      });

      it('models every PDU type it holds (nothing left as raw bytes)', () => {
        expect(entries.map((e) => decodePdu(e.bytes).kind).filter((k) => k === 'other')).toEqual([]);
      });
    });
  }

  describe('the credentials exchange', () => {
    it('starts with the agent: version 2, pmdaroot with no feature flags, pmdasample with AUTH', () => {
      const [root0, root1] = transcripts.pmdaroot.map((e) => ({ dir: e.direction, pdu: decodePdu(e.bytes) }));
      expect(root0).toEqual({ dir: 'toPmcd', pdu: expect.objectContaining({ kind: 'creds', creds: [{ type: 1, version: 2, flags: 0 }] }) });
      expect(root1).toEqual({ dir: 'toAgent', pdu: expect.objectContaining({ kind: 'creds', creds: [{ type: 1, version: 2, flags: 0 }] }) });
      const sample = transcripts.pmdasample.map((e) => decodePdu(e.bytes)).filter((p) => p.kind === 'creds');
      expect(sample[0]).toMatchObject({ creds: [{ type: 1, version: 2, flags: PduFlag.AUTH }] });
      // The agent's pid in `from`; pmcd answers with its own.
      expect(readHeader(transcripts.pmdaroot[0]?.bytes as Buffer).from).toBeGreaterThan(1);
    });

    it('is followed by PM_ERR_NOTCONN errors when pmcd’s clients go away', () => {
      const errors = transcripts.pmdaroot.map((e) => decodePdu(e.bytes)).filter((p) => p.kind === 'error' && p.code === PM_ERR_NOTCONN);
      expect(errors.length).toBeGreaterThan(0);
    });
  });

  describe('pmdaroot’s replies, as libpcp read them', () => {
    for (let item = 0; item < 7; item++) {
      it(`gives the descriptor of 1.0.${item} that libpcp decoded`, () => {
        const desc = reply(transcripts.pmdaroot, `root desc 1.0.${item}`, 'desc').desc;
        const m = /^\((\d+), (\d+), '0x([0-9a-f]+)'\)$/.exec(answers.get(`root desc 1.0.${item}`) ?? '');
        expect(m).not.toBeNull();
        expect({ type: desc.type, sem: desc.sem, indom: desc.indom }).toEqual({ type: Number(m?.[1]), sem: Number(m?.[2]), indom: parseInt(m?.[3] ?? '', 16) });
        expect(desc.pmid).toBe(pmid(1, 0, item));
        expect(unpackUnits(desc.units)).toEqual({ dimSpace: 0, dimTime: 0, dimCount: 0, scaleSpace: 0, scaleTime: 0, scaleCount: 0 });
      });

      it(`gives the one-line text of 1.0.${item}, its ident in the agent's byte order`, () => {
        const text = reply(transcripts.pmdaroot, `root text oneline 1.0.${item}`, 'text');
        expect(`b'${text.text}'`).toBe(answers.get(`root text oneline 1.0.${item}`));
        expect(text.identWord).toBe(hostOrderTextIdent(pmid(1, 0, item)));
      });

      it(`answers the help text of 1.0.${item} with an empty text (libpcp then asks for the one-liner)`, () => {
        const [req, first] = during(transcripts.pmdaroot, `root text help 1.0.${item}`);
        expect(req?.pdu).toMatchObject({ kind: 'textReq', ident: pmid(1, 0, item), type: TextKind.PMID | TextKind.HELP });
        expect(first?.pdu).toMatchObject({ kind: 'text', text: '' });
      });
    }

    it('gives the instance domain’s help text', () => {
      const text = reply(transcripts.pmdaroot, 'root text help indom 1.0', 'text');
      expect(`b'${text.text.replace(/\n/g, '\\n')}'`).toBe(answers.get('root text help indom 1.0'));
      expect(text.identWord).toBe(hostOrderTextIdent(indom(1, 0)));
    });

    it.each([
      ['root desc 1.0.99 (no such item)', PM_ERR_PMID],
      ['root desc 1.3.0 (no such cluster)', PM_ERR_PMID],
      ['root text oneline 1.0.99 (no such item)', PM_ERR_TEXT],
      ['root text oneline indom 1.7 (no such indom)', PM_ERR_TEXT],
      ['root name of instance 999999 (no such instance)', PM_ERR_INST],
      ['root instance named nosuch (no such instance)', PM_ERR_INST],
      ['root instances of indom 1.7 (no such indom)', PM_ERR_INDOM],
    ])('answers "%s" with a PDU_ERROR of %d', (marker, code) => {
      expect(reply(transcripts.pmdaroot, marker, 'error')).toMatchObject({ from: 0, code });
    });

    it('lists the instances libpcp listed', () => {
      const inst = reply(transcripts.pmdaroot, 'root instances of indom 1.0', 'instance');
      const m = /^\(\[([\d, ]+)\], \[(.*)\]\)$/.exec(answers.get('root instances of indom 1.0') ?? '');
      expect(inst.instances.map((e) => e.inst)).toEqual((m?.[1] ?? '').split(', ').map(Number));
      expect(inst.instances.map((e) => `'${e.name ?? ''}'`).join(', ')).toBe(m?.[2]);
    });

    it('answers a lookup by number with the name only, and by name with the number only', () => {
      const byNumber = transcripts.pmdaroot.map((e) => ({ m: e.marker, p: decodePdu(e.bytes) })).find((x) => x.m.startsWith('root name of instance 0'));
      expect(byNumber).toBeDefined();
      const named = during(transcripts.pmdaroot, byNumber?.m ?? '').find((x) => x.dir === 'toPmcd')?.pdu;
      expect(named).toMatchObject({ kind: 'instance', instances: [{ inst: PM_IN_NULL, name: expect.stringMatching(/^[0-9a-f]{64}$/) }] });
      const marker = transcripts.pmdaroot.find((e) => e.marker.startsWith('root instance named ') && !e.marker.includes('nosuch'))?.marker ?? '';
      expect(reply(transcripts.pmdaroot, marker, 'instance').instances).toEqual([{ inst: 0 }]);
    });

    it('puts an error status in place of the values of an unknown metric in a fetch', () => {
      const result = reply(transcripts.pmdaroot, 'root fetch 1.0.0 and 1.0.99 (no such item)', 'result');
      expect(result.vsets.map((v) => v.numval)).toEqual([result.vsets[0]?.values.length, PM_ERR_PMID]);
      expect(result.vsets[0]?.values.map((v) => decodeValue(MetricType.STRING, v))).toEqual(expect.arrayContaining(['docker', 'podman']));
    });

    it('honours the profile pmcd sent before the fetch (one instance only)', () => {
      const calls = during(transcripts.pmdaroot, 'root fetch all seven with that profile');
      expect(calls[0]?.pdu).toMatchObject({ kind: 'profile', indoms: [{ indom: indom(1, 0), state: 1, instances: [0] }] });
      const result = calls.find((c) => c.pdu.kind === 'result')?.pdu;
      expect(result?.kind === 'result' && result.vsets.every((v) => v.numval === 1 && v.values[0]?.inst === 0)).toBe(true);
    });

    it('answers every label request with no label sets (pmdaroot is a PMDA_INTERFACE_6 agent)', () => {
      const labels = during(transcripts.pmdaroot, 'root labels of 1.0.0').filter((e) => e.pdu.kind === 'label');
      expect(labels.length).toBeGreaterThan(0);
      for (const l of labels) expect(l.pdu).toMatchObject({ kind: 'label', sets: [] });
    });
  });

  describe('pmdasample’s replies', () => {
    it('carries every value type the way libpcp lays it out', () => {
      const result = reply(transcripts.pmdasample, 'sample fetch every type', 'result');
      const [i32, u32, i64, u64, float, double, string, aggregate] = result.vsets;
      // sample's help: the ".one" metrics are 1, "hullo" is "hullo world!".
      expect(decodeValue(MetricType.I32, i32?.values[0] ?? { inst: 0 })).toBe(1);
      expect(decodeValue(MetricType.U32, u32?.values[0] ?? { inst: 0 })).toBe(1);
      expect(decodeValue(MetricType.I64, i64?.values[0] ?? { inst: 0 })).toBe(1n);
      expect(decodeValue(MetricType.U64, u64?.values[0] ?? { inst: 0 })).toBe(1n);
      expect(decodeValue(MetricType.FLOAT, float?.values[0] ?? { inst: 0 })).toBe(1);
      expect(decodeValue(MetricType.DOUBLE, double?.values[0] ?? { inst: 0 })).toBe(1);
      expect(decodeValue(MetricType.STRING, string?.values[0] ?? { inst: 0 })).toBe('hullo world!');
      expect(Buffer.from(decodeValue(MetricType.AGGREGATE, aggregate?.values[0] ?? { inst: 0 }) as Uint8Array).toString()).toBe('hullo world!');
      expect([i32, u32].map((v) => v?.valfmt)).toEqual([0, 0]);
      expect([i64, u64, float, double, string, aggregate].map((v) => v?.valfmt)).toEqual([1, 1, 1, 1, 1, 1]);
    });

    it('gets the client’s container name and credentials as attributes (it asked with AUTH)', () => {
      const marker = transcripts.pmdasample.find((e) => e.marker.startsWith('pminfo --container='))?.marker ?? '';
      const attrs = during(transcripts.pmdasample, marker).filter((e) => e.pdu.kind === 'attr').map((e) => e.pdu);
      const container = attrs.find((a) => a.kind === 'attr' && a.attr === Attribute.CONTAINER);
      expect(container?.kind === 'attr' && attrText(container.value)).toBe(marker.slice('pminfo --container='.length).split(' ')[0]);
      expect(container?.kind === 'attr' && container.value[container.value.length - 1]).toBe(0);
      expect(attrs.some((a) => a.kind === 'attr' && a.attr === Attribute.USERID)).toBe(true);
    });

    it('answers names with ids, and children with names and leaf statuses', () => {
      expect(reply(transcripts.pmdasample, 'sample name to pmid sample.secret.foo.bar.max.redirect', 'ids')).toMatchObject({ status: 0, pmids: [pmid(2, 4, 1)] });
      expect(reply(transcripts.pmdasample, 'sample children of sample.secret', 'names')).toEqual({ kind: 'names', from: 0, names: ['foo', 'bar'] });
      expect(reply(transcripts.pmdasample, 'sample children and status of sample.secret', 'names')).toEqual({ kind: 'names', from: 0, names: ['foo', 'bar'], statuses: [1, 0] });
      const traverse = reply(transcripts.pmdasample, 'sample traverse sample.secret', 'names');
      expect(traverse.names).toEqual(expect.arrayContaining(['sample.secret.bar', 'sample.secret.foo.one', 'sample.secret.foo.bar.max.redirect']));
    });

    it('labels its domain with JSON and an index into it', () => {
      const labels = during(transcripts.pmdasample, 'sample labels of sample.colour').map((e) => e.pdu);
      const domain = labels.find((p) => p.kind === 'label' && p.type === 2);
      expect(domain).toMatchObject({ kind: 'label', ident: 29, sets: [{ inst: PM_IN_NULL, nlabels: 2, json: '{"agent":"sample","role":"testing"}' }] });
      const set = domain?.kind === 'label' ? domain.sets[0] : undefined;
      const pairs = set?.labels.map((l) => [set.json.substr(l.name, l.namelen), set.json.substr(l.value, l.valuelen), l.flags]);
      expect(pairs).toEqual([
        ['agent', '"sample"', 2],
        ['role', '"testing"', 2],
      ]);
    });
  });

  it('knows every PDU type in the transcripts by name', () => {
    const types = new Set([...transcripts.pmdaroot, ...transcripts.pmdasample].map((e) => readHeader(e.bytes).type));
    expect([...types].every((t) => Object.values(PduType).includes(t as PduType))).toBe(true);
  });
});
