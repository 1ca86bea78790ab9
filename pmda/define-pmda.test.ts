/**
 * definePmda's runtime: against pmdasample's recorded replies (value
 * encoding of every type, labels, PMNS answers: a PMDA defined with
 * sample's metrics answers sample's requests with sample's bytes), and its
 * libpcp_pmda rules (profiles, instance lookups, errors, validation).
 */
import { PassThrough } from 'node:stream';
import { CrootError } from '../core/errors/croot-error.js';
import { definePmda } from './define-pmda.js';
import type { MetricDefinition, PmdaDefinition } from './pmda-definition.js';
import { readTranscript, type TranscriptEntry } from '../test/support/golden-transcript.js';
import { Attribute, LabelType, MetricType, PM_IN_NULL, ProfileState, Semantics, TextKind, indom, pmid } from './identifiers.js';
import { PduFramer, PduFlag } from './pdu-framer.js';
import {
  decodePdu,
  encodeAttr,
  encodeCreds,
  encodeDescReq,
  encodeError,
  encodeFetch,
  encodeInstanceReq,
  encodeLabelReq,
  encodeNameList,
  encodeProfile,
  encodeTextReq,
  type Pdu,
  type ResultPdu,
} from './pdus.js';
import { PM_ERR_INDOM, PM_ERR_INST, PM_ERR_NAME, PM_ERR_NOTCONN, PM_ERR_PMID, PM_ERR_SIGN, PM_ERR_TEXT, PM_ERR_TYPE } from './pm-status.js';
import { decodeValue } from './values.js';

const sample = readTranscript('pmdasample.pdus');

function exchange(marker: string): { requests: TranscriptEntry[]; replies: TranscriptEntry[] } {
  const all = sample.filter((e) => e.marker === marker);
  return { requests: all.filter((e) => e.direction === 'toAgent'), replies: all.filter((e) => e.direction === 'toPmcd') };
}

async function answer(pmda: ReturnType<typeof definePmda>, pdu: Buffer): Promise<Pdu> {
  const replies = await pmda.handle(pdu);
  expect(replies).toHaveLength(1);
  return decodePdu(replies[0] as Buffer);
}

const COLOURS = [
  { id: 0, name: 'red' },
  { id: 1, name: 'green' },
  { id: 2, name: 'blue' },
];

describe('definePmda', () => {
  describe('against pmdasample’s recorded replies', () => {
    it('encodes a result of every value type exactly as libpcp_pmda does', async () => {
      const { requests, replies } = exchange('sample fetch every type');
      const fetch = requests.map((r) => decodePdu(r.bytes)).find((p) => p.kind === 'fetch');
      const theirs = decodePdu(replies[0]?.bytes as Buffer) as ResultPdu;
      const ids = fetch?.kind === 'fetch' ? fetch.pmids : [];
      // Types from pmdasample's descriptors; values from its help (and, for the changing ones, its reply).
      const types = [MetricType.I32, MetricType.U32, MetricType.I64, MetricType.U64, MetricType.FLOAT, MetricType.DOUBLE, MetricType.STRING, MetricType.AGGREGATE, MetricType.I32, MetricType.I32, MetricType.U32];
      const constant = [1, 1, 1n, 1n, 1, 1, 'hullo world!', Buffer.from('hullo world!')];
      const metrics: MetricDefinition[] = ids.map((id, i) => {
        const type = types[i] as MetricType;
        const vs = theirs.vsets[i];
        return {
          name: `sample.m${i}`,
          cluster: (id >>> 10) & 0xfff,
          item: id & 0x3ff,
          type,
          semantics: Semantics.INSTANT,
          help: { oneline: 'x' },
          ...(i === 8 ? { indom: 1 } : {}),
          fetch: (inst) => (i < constant.length ? constant[i] : decodeValue(type, vs?.values.find((v) => v.inst === (inst?.id ?? PM_IN_NULL)) ?? { inst: 0 })),
        };
      });
      const pmda = definePmda({ name: 'sample', domain: 29, metrics, indoms: [{ serial: 1, instances: () => COLOURS }] });
      const ours = [];
      for (const r of requests) ours.push(...(await pmda.handle(r.bytes)));
      expect(ours.map((b) => b.toString('hex'))).toEqual(replies.map((r) => r.bytes.toString('hex')));
    });

    it('labels a domain and an instance domain exactly as libpcp_pmda does', async () => {
      const { requests, replies } = exchange('sample labels of sample.colour');
      const pmda = definePmda({
        name: 'sample',
        domain: 29,
        labels: { role: 'testing', agent: 'sample' },
        indoms: [{ serial: 1, labels: { model: 'RGB' }, instances: () => COLOURS }],
        metrics: [{ name: 'sample.colour', cluster: 0, item: 5, type: MetricType.I32, semantics: Semantics.INSTANT, indom: 1, help: { oneline: 'x' }, fetch: () => 1 }],
      });
      const byType = new Map<number, string>();
      requests.forEach((r, i) => {
        const p = decodePdu(r.bytes);
        if (p.kind === 'labelReq') byType.set(p.type, replies[i]?.bytes.toString('hex') ?? '');
      });
      for (const type of [LabelType.DOMAIN, LabelType.INDOM]) {
        const req = requests.find((r) => {
          const p = decodePdu(r.bytes);
          return p.kind === 'labelReq' && p.type === type;
        });
        expect((await pmda.handle(req?.bytes as Buffer))[0]?.toString('hex')).toBe(byType.get(type));
      }
    });

    it('lists instances with empty label sets as libpcp_pmda does', async () => {
      const { requests, replies } = exchange('sample instance labels of colour');
      const pmda = definePmda({
        name: 'sample',
        domain: 29,
        indoms: [{ serial: 1, instances: () => COLOURS, instanceLabels: () => ({}) }],
        metrics: [{ name: 'sample.colour', cluster: 0, item: 5, type: MetricType.I32, semantics: Semantics.INSTANT, indom: 1, help: { oneline: 'x' }, fetch: () => 1 }],
      });
      const ours = [];
      for (const r of requests) ours.push(...(await pmda.handle(r.bytes)));
      expect(ours.map((b) => b.toString('hex'))).toEqual(replies.map((r) => r.bytes.toString('hex')));
    });

    it('answers PMNS children and traversal requests as libpcp_pmda does', async () => {
      const traverse = decodePdu(exchange('sample traverse sample.secret').replies[0]?.bytes as Buffer);
      const names = traverse.kind === 'names' ? traverse.names : [];
      expect(names.length).toBeGreaterThan(5);
      const pmda = definePmda({
        name: 'sample',
        domain: 29,
        metrics: names.map((name, i) => ({ name, cluster: 0, item: i, type: MetricType.I32, semantics: Semantics.INSTANT, help: { oneline: 'x' }, fetch: () => 0 })),
      });
      for (const marker of ['sample children of sample.secret', 'sample children and status of sample.secret', 'sample traverse sample.secret']) {
        const { requests, replies } = exchange(marker);
        const ours = [];
        for (const r of requests) ours.push(...(await pmda.handle(r.bytes)));
        expect({ marker, ours: ours.map((b) => b.toString('hex')) }).toEqual({ marker, ours: replies.map((r) => r.bytes.toString('hex')) });
      }
    });
  });

  describe('answers', () => {
    const counter = { n: 0 };
    const definition: PmdaDefinition = {
      name: 'test',
      domain: 250,
      attributes: true,
      indoms: [
        {
          serial: 3,
          help: { oneline: 'things', text: 'All the things.' },
          instances: () => [
            { id: 7, name: '1 minute' },
            { id: 9, name: 'five' },
            { id: 11, name: 'eleven' },
          ],
        },
      ],
      metrics: [
        { name: 'test.count', cluster: 0, item: 1, type: MetricType.U32, semantics: Semantics.COUNTER, help: { oneline: 'a count', text: 'Counts.' }, fetch: () => ++counter.n },
        {
          name: 'test.per.thing',
          cluster: 2,
          item: 0,
          type: MetricType.I64,
          semantics: Semantics.INSTANT,
          units: { dimSpace: 1, scaleSpace: 1 },
          indom: 3,
          help: { oneline: 'per thing' },
          fetch: (inst) => {
            if (inst?.id === 11) throw new CrootError('ERR_NO_CONTAINER', 'gone');
            return BigInt(inst?.id ?? 0) * 1000n;
          },
        },
        { name: 'test.bad', cluster: 2, item: 1, type: MetricType.U32, semantics: Semantics.INSTANT, indom: 3, help: { oneline: 'bad' }, fetch: () => -1 },
        { name: 'test.none', cluster: 2, item: 2, type: MetricType.STRING, semantics: Semantics.DISCRETE, indom: 3, help: { oneline: 'none' }, fetch: () => undefined },
        {
          name: 'test.container',
          cluster: 3,
          item: 0,
          type: MetricType.STRING,
          semantics: Semantics.DISCRETE,
          help: { oneline: 'the client’s container' },
          fetch: (_inst, req) => req.attributes.get(Attribute.CONTAINER),
        },
      ],
    };
    const PER_THING = pmid(250, 2, 0);

    it('gives each instance’s value, and the last error’s status when none has a value', async () => {
      const pmda = definePmda(definition);
      const r = (await answer(pmda, encodeFetch({ from: 0, ctxid: 0, pmids: [PER_THING, pmid(250, 2, 1), pmid(250, 2, 2), pmid(250, 9, 9)] }))) as ResultPdu;
      expect(r.vsets[0]?.values.map((v) => [v.inst, decodeValue(MetricType.I64, v)])).toEqual([
        [7, 7000n],
        [9, 9000n],
      ]);
      expect(r.vsets.slice(1).map((v) => v.numval)).toEqual([PM_ERR_SIGN, 0, PM_ERR_PMID]);
    });

    it('fetches only the instances of the profile pmcd sent last', async () => {
      const pmda = definePmda(definition);
      await pmda.handle(encodeProfile({ from: 0, ctxid: 0, state: ProfileState.INCLUDE, indoms: [{ indom: indom(250, 3), state: ProfileState.EXCLUDE, instances: [9] }] }));
      const only9 = (await answer(pmda, encodeFetch({ from: 0, ctxid: 0, pmids: [PER_THING] }))) as ResultPdu;
      expect(only9.vsets[0]?.values.map((v) => v.inst)).toEqual([9]);
      await pmda.handle(encodeProfile({ from: 0, ctxid: 0, state: ProfileState.INCLUDE, indoms: [{ indom: indom(250, 3), state: ProfileState.INCLUDE, instances: [9] }] }));
      const but9 = (await answer(pmda, encodeFetch({ from: 0, ctxid: 0, pmids: [PER_THING] }))) as ResultPdu;
      expect(but9.vsets[0]?.values.map((v) => v.inst)).toEqual([7]);
    });

    it('looks instances up as pmdaInstance does: all, by number, by name, by the name’s first word', async () => {
      const pmda = definePmda(definition);
      const id = indom(250, 3);
      expect(await answer(pmda, encodeInstanceReq({ from: 0, indom: id, inst: PM_IN_NULL }))).toMatchObject({ instances: [{ inst: 7, name: '1 minute' }, { inst: 9 }, { inst: 11 }] });
      expect(await answer(pmda, encodeInstanceReq({ from: 0, indom: id, inst: 9 }))).toMatchObject({ instances: [{ inst: PM_IN_NULL, name: 'five' }] });
      expect(await answer(pmda, encodeInstanceReq({ from: 0, indom: id, inst: PM_IN_NULL, name: 'eleven' }))).toMatchObject({ instances: [{ inst: 11 }] });
      expect(await answer(pmda, encodeInstanceReq({ from: 0, indom: id, inst: PM_IN_NULL, name: '1' }))).toMatchObject({ instances: [{ inst: 7 }] });
      expect(await answer(pmda, encodeInstanceReq({ from: 0, indom: id, inst: PM_IN_NULL, name: 'elev' }))).toMatchObject({ kind: 'error', code: PM_ERR_INST });
      expect(await answer(pmda, encodeInstanceReq({ from: 0, indom: id, inst: 8 }))).toMatchObject({ kind: 'error', code: PM_ERR_INST });
      expect(await answer(pmda, encodeInstanceReq({ from: 0, indom: indom(250, 4), inst: PM_IN_NULL }))).toMatchObject({ kind: 'error', code: PM_ERR_INDOM });
    });

    it('describes metrics with their units, and refuses unknown ones', async () => {
      const pmda = definePmda(definition);
      expect(await answer(pmda, encodeDescReq({ from: 0, pmid: PER_THING }))).toMatchObject({
        desc: { pmid: PER_THING, type: MetricType.I64, indom: indom(250, 3), sem: Semantics.INSTANT, units: 0x10010000 },
      });
      expect(await answer(pmda, encodeDescReq({ from: 0, pmid: pmid(250, 2, 99) }))).toMatchObject({ kind: 'error', code: PM_ERR_PMID });
    });

    it('gives one-line and long help of metrics and instance domains', async () => {
      const pmda = definePmda(definition);
      const text = async (ident: number, type: number): Promise<unknown> => {
        const p = await answer(pmda, encodeTextReq({ from: 0, ident, type }));
        return p.kind === 'text' ? p.text : p.kind === 'error' ? p.code : p.kind;
      };
      expect(await text(pmid(250, 0, 1), TextKind.PMID | TextKind.ONELINE)).toBe('a count');
      expect(await text(pmid(250, 0, 1), TextKind.PMID | TextKind.HELP)).toBe('Counts.');
      expect(await text(PER_THING, TextKind.PMID | TextKind.HELP)).toBe('');
      expect(await text(indom(250, 3), TextKind.INDOM | TextKind.HELP)).toBe('All the things.');
      expect(await text(indom(250, 4), TextKind.INDOM | TextKind.ONELINE)).toBe(PM_ERR_TEXT);
    });

    it('keeps each client context’s attributes until pmcd says it closed', async () => {
      const pmda = definePmda(definition);
      const container = pmid(250, 3, 0);
      await pmda.handle(encodeAttr({ from: 5, attr: Attribute.CONTAINER, value: Buffer.from('web1\0') }));
      const seen = async (from: number): Promise<unknown> => {
        const r = (await answer(pmda, encodeFetch({ from, ctxid: from, pmids: [container] }))) as ResultPdu;
        return r.vsets[0]?.values[0] === undefined ? undefined : decodeValue(MetricType.STRING, r.vsets[0].values[0]);
      };
      expect(await seen(5)).toBe('web1');
      expect(await seen(6)).toBeUndefined();
      expect(await pmda.handle(encodeError({ from: 5, code: PM_ERR_NOTCONN }))).toEqual([]);
      expect(await seen(5)).toBeUndefined();
    });

    it('asks pmcd for attributes in its credentials only when it wants them', () => {
      const creds = (d: PmdaDefinition): Pdu => decodePdu(definePmda(d).credentials(42));
      expect(creds(definition)).toMatchObject({ from: 42, creds: [{ type: 1, version: 2, flags: PduFlag.AUTH | PduFlag.CONTAINER }] });
      expect(creds({ ...definition, attributes: false })).toMatchObject({ creds: [{ flags: 0 }] });
    });

    it('answers a PMNS name with its PMID and an unknown one with PM_ERR_NAME', async () => {
      const pmda = definePmda(definition);
      expect(await answer(pmda, encodeNameList({ from: 0, names: ['test.per.thing'] }))).toMatchObject({ kind: 'ids', status: 0, pmids: [PER_THING] });
      expect(await answer(pmda, encodeNameList({ from: 0, names: ['test.per'] }))).toMatchObject({ kind: 'error', code: PM_ERR_NAME });
    });

    it('answers label requests with no sets when it declares no labels (as pmdaroot)', async () => {
      const pmda = definePmda(definition);
      expect(await answer(pmda, encodeLabelReq({ from: 0, ident: 250, type: LabelType.DOMAIN }))).toMatchObject({ kind: 'label', sets: [] });
    });

    it('answers a request it cannot decode with PM_ERR_IPC, and ignores a broken profile', async () => {
      const pmda = definePmda(definition);
      const fetch = encodeFetch({ from: 0, ctxid: 0, pmids: [PER_THING] });
      fetch.writeInt32BE(5, 24); // numpmid 5, but one PMID follows
      expect(await answer(pmda, fetch)).toMatchObject({ kind: 'error', code: -12366 });
      const profile = encodeProfile({ from: 0, ctxid: 0, state: 0, indoms: [] });
      profile.writeInt32BE(1000, 20);
      expect(await pmda.handle(profile)).toEqual([]);
      expect(await pmda.handle(Buffer.alloc(4))).toEqual([]);
    });

    it('speaks on a pair of streams: credentials first, answers in order, closed when pmcd closes the pipe', async () => {
      const pmda = definePmda(definition);
      const input = new PassThrough();
      const output = new PassThrough();
      const framer = new PduFramer();
      const got: Pdu[] = [];
      output.on('data', (chunk: Buffer) => got.push(...framer.push(chunk).map(decodePdu)));
      const session = pmda.run({ input, output, pid: 77 });
      input.write(encodeCreds({ from: 1, creds: [{ type: 1, version: 2, flags: 0 }] }));
      const two = Buffer.concat([encodeDescReq({ from: 0, pmid: PER_THING }), encodeDescReq({ from: 0, pmid: pmid(250, 0, 1) })]);
      input.write(two.subarray(0, 5));
      input.write(two.subarray(5));
      input.end();
      expect(await session.closed).toBe('pmcd closed the pipe');
      expect(got.map((p) => p.kind)).toEqual(['creds', 'desc', 'desc']);
      expect(got.map((p) => (p.kind === 'desc' ? p.desc.pmid : p.from))).toEqual([77, PER_THING, pmid(250, 0, 1)]);
      expect(pmda.negotiatedVersion).toBe(2);
    });

    it('stops on a stream that is not PDUs', async () => {
      const pmda = definePmda(definition);
      const input = new PassThrough();
      const session = pmda.run({ input, output: new PassThrough() });
      input.write(Buffer.from([0, 0, 0, 3, 1, 2, 3, 4]));
      expect(await session.closed).toMatch(/^protocol error: PDU length 3/);
    });
  });

  describe('refuses definitions pmcd could not use', () => {
    const metric: MetricDefinition = { name: 'a.b', cluster: 0, item: 0, type: MetricType.U32, semantics: Semantics.INSTANT, help: { oneline: 'x' }, fetch: () => 1 };
    it.each<[string, Partial<PmdaDefinition>]>([
      ['a domain beyond 510', { domain: 511 }],
      ['two metrics with one PMID', { metrics: [metric, { ...metric, name: 'a.c' }] }],
      ['two metrics with one name', { metrics: [metric, { ...metric, item: 1 }] }],
      ['a name that is also a branch', { metrics: [metric, { ...metric, name: 'a.b.c', item: 1 }] }],
      ['a name part starting with a digit', { metrics: [{ ...metric, name: 'a.1b' }] }],
      ['an undefined instance domain', { metrics: [{ ...metric, indom: 4 }] }],
      ['units out of range', { metrics: [{ ...metric, units: { dimTime: 9 } }] }],
      ['an unknown type', { metrics: [{ ...metric, type: 9 as MetricType }] }],
      ['a label name with a dash', { labels: { 'a-b': 1 } }],
    ])('%s', (_why, change) => {
      expect(() => definePmda({ name: 't', domain: 100, metrics: [metric], ...change })).toThrow(CrootError);
    });
  });

  it('refuses a value that does not fit its type with PM_ERR_TYPE', async () => {
    const pmda = definePmda({
      name: 't',
      domain: 100,
      metrics: [{ name: 'a.s', cluster: 0, item: 0, type: MetricType.STRING, semantics: Semantics.INSTANT, help: { oneline: 'x' }, fetch: () => 3 }],
    });
    const r = (await answer(pmda, encodeFetch({ from: 0, ctxid: 0, pmids: [pmid(100, 0, 0)] }))) as ResultPdu;
    expect(r.vsets[0]?.numval).toBe(PM_ERR_TYPE);
  });
});
