/**
 * A PMDA in TypeScript: `definePmda({ name, domain, metrics, indoms })`
 * gives an agent that answers pmcd the way a libpcp_pmda daemon agent of
 * PCP 6.0.3 does (pmdaFetch, pmdaInstance, pmdaDesc, pmdaText, pmdaLabel
 * and the PMNS callbacks), over a pair of streams (`run`), or one PDU at a
 * time (`handle`, for tests and embedding).
 *
 * Replies follow libpcp_pmda byte for byte where pmcd can tell: the order
 * of values and instances, PM_IN_NULL for a name-only instance reply, the
 * ident of a PDU_TEXT in the agent's byte order, no reply to PROFILE, ATTR
 * and ERROR PDUs, PM_ERR_PERMISSION for a store. A PMDA that declares no
 * labels answers label requests as PMDA_INTERFACE_6 agents (pmdaroot) do:
 * with no label sets.
 */
import { CrootError, statusOf } from '../core/errors/croot-error.js';
import { SilentLogger, type Logger } from '../core/logging/logger.js';
import {
  LabelType,
  MetricType,
  PM_INDOM_NULL,
  PM_IN_NULL,
  ProfileState,
  Semantics,
  TextKind,
  indom as makeIndom,
  packUnits,
  pmid as makePmid,
  pmidString,
} from './identifiers.js';
import { NameTree } from './name-tree.js';
import { checkLabels, labelSet } from './label-sets.js';
import { FROM_ANON, PDU_HEADER_SIZE, PDU_VERSION, PduFlag, PduType, pduTypeName, readHeader } from './pdu-framer.js';
import {
  CRED_VERSION,
  attrText,
  decodePdu,
  encodeCreds,
  encodeDesc,
  encodeError,
  encodeIdList,
  encodeInstance,
  encodeLabel,
  encodeNameList,
  encodeResult,
  encodeText,
  hostOrderTextIdent,
  type FetchPdu,
  type InstanceEntry,
  type InstanceReqPdu,
  type LabelReqPdu,
  type LabelSet,
  type Pdu,
  type ProfilePdu,
  type TextReqPdu,
  type ValueSet,
} from './pdus.js';
import {
  PM_ERR_INDOM,
  PM_ERR_INST,
  PM_ERR_IPC,
  PM_ERR_NAME,
  PM_ERR_NOTCONN,
  PM_ERR_PERMISSION,
  PM_ERR_PMID,
  PM_ERR_TEXT,
} from './pm-status.js';
import {
  uniqueInstances,
  type HelpText,
  type IndomDefinition,
  type Instance,
  type Labels,
  type MetricDefinition,
  type PmdaDefinition,
  type RequestContext,
} from './pmda-definition.js';
import { startSession, type PmdaSession, type PmdaStreams } from './pmda-session.js';
import { encodeValue } from './values.js';

interface CompiledMetric extends MetricDefinition {
  readonly pmid: number;
  readonly indomId: number;
}

export class Pmda {
  readonly definition: PmdaDefinition;
  readonly names: NameTree;
  private readonly metrics = new Map<number, CompiledMetric>();
  private readonly indoms = new Map<number, IndomDefinition>();
  private readonly hasLabels: boolean;
  private profile: ProfilePdu | undefined;
  private readonly attributes = new Map<number, Map<number, string>>();
  private pmcdVersion: number | undefined;
  private logger: Logger = new SilentLogger();

  constructor(definition: PmdaDefinition) {
    const { domain } = definition;
    if (!Number.isInteger(domain) || domain < 1 || domain > 510) throw new CrootError('ERR_CONFIG', `PMDA domain ${domain} outside 1..510`);
    for (const d of definition.indoms ?? []) {
      const id = makeIndom(domain, d.serial);
      if (this.indoms.has(id)) throw new CrootError('ERR_CONFIG', `instance domain ${domain}.${d.serial} defined twice`);
      checkLabels(d.labels, `instance domain ${domain}.${d.serial}`);
      this.indoms.set(id, d);
    }
    for (const m of definition.metrics) {
      const id = makePmid(domain, m.cluster, m.item);
      const taken = this.metrics.get(id);
      if (taken !== undefined) throw new CrootError('ERR_CONFIG', `"${m.name}" and "${taken.name}" have the same PMID ${pmidString(id)}`);
      if (!Object.values(MetricType).includes(m.type)) throw new CrootError('ERR_CONFIG', `${m.name}: type ${m.type} is not supported`);
      if (!Object.values(Semantics).includes(m.semantics)) throw new CrootError('ERR_CONFIG', `${m.name}: semantics ${m.semantics} unknown`);
      if (m.help.oneline.includes('\n')) throw new CrootError('ERR_CONFIG', `${m.name}: the one-line help holds a newline`);
      packUnits(m.units);
      const indomId = m.indom === undefined ? PM_INDOM_NULL : makeIndom(domain, m.indom);
      if (m.indom !== undefined && !this.indoms.has(indomId)) throw new CrootError('ERR_CONFIG', `${m.name}: instance domain ${domain}.${m.indom} is not defined`);
      checkLabels(m.labels, m.name);
      this.metrics.set(id, { ...m, pmid: id, indomId });
    }
    checkLabels(definition.labels, 'domain');
    this.names = new NameTree([...this.metrics.values()].map((m) => [m.name, m.pmid] as const));
    this.definition = definition;
    this.hasLabels =
      definition.labels !== undefined ||
      definition.metrics.some((m) => m.labels !== undefined) ||
      (definition.indoms ?? []).some((d) => d.labels !== undefined || d.instanceLabels !== undefined);
  }

  get domain(): number {
    return this.definition.domain;
  }

  /** The PDU version pmcd answered in its credentials, once it did. */
  get negotiatedVersion(): number | undefined {
    return this.pmcdVersion;
  }

  /** The credentials PDU an agent sends first (libpcp_pmda's __pmdaSetupPDU). */
  credentials(pid: number = process.pid): Buffer {
    const flags = this.definition.attributes === true ? PduFlag.AUTH | PduFlag.CONTAINER : 0;
    return encodeCreds({ from: pid, creds: [{ type: CRED_VERSION, version: PDU_VERSION, flags }] });
  }

  /**
   * Answers one whole PDU from pmcd: the PDUs to send back, in order (none
   * for PROFILE, ATTR, ERROR and CREDS). Never throws for bad input: a PDU
   * that cannot be decoded is answered with PM_ERR_IPC when pmcd waits for
   * an answer, and logged otherwise.
   */
  async handle(bytes: Buffer): Promise<Buffer[]> {
    if (bytes.length < PDU_HEADER_SIZE) {
      this.logger.error('PDU shorter than its header from pmcd', { bytes: bytes.length });
      return [];
    }
    const type = readHeader(bytes).type;
    let pdu: Pdu;
    try {
      pdu = decodePdu(bytes);
    } catch (err) {
      this.logger.error('undecodable PDU from pmcd', { type: pduTypeName(type), error: (err as Error).message });
      return WANTS_REPLY.has(type) ? [encodeError({ from: FROM_ANON, code: PM_ERR_IPC })] : [];
    }
    try {
      return await this.dispatch(pdu, type);
    } catch (err) {
      this.logger.error('request failed', { type: pduTypeName(type), error: (err as Error).message });
      return WANTS_REPLY.has(type) ? [encodeError({ from: FROM_ANON, code: statusOf(err) })] : [];
    }
  }

  /** Speaks the protocol on `input`/`output`: credentials first, then one answer per request, in order. */
  run(streams: PmdaStreams): PmdaSession {
    this.logger = streams.logger ?? this.logger;
    const session = startSession(streams, { handle: (pdu) => this.handle(pdu), logger: this.logger, credentials: this.credentials(streams.pid) });
    this.logger.info('PMDA connected to pmcd', { agent: this.definition.name, domain: this.domain });
    return session;
  }

  private async dispatch(pdu: Pdu, type: number): Promise<Buffer[]> {
    switch (pdu.kind) {
      case 'creds':
        this.pmcdVersion = pdu.creds.find((c) => c.type === CRED_VERSION)?.version;
        return [];
      case 'error':
        if (pdu.code === PM_ERR_NOTCONN) {
          this.attributes.delete(pdu.from);
          this.definition.endContext?.(pdu.from);
        } else this.logger.warn('error PDU from pmcd', { code: pdu.code });
        return [];
      case 'profile':
        this.profile = pdu;
        return [];
      case 'attr': {
        let attrs = this.attributes.get(pdu.from);
        if (attrs === undefined) {
          attrs = new Map();
          this.attributes.set(pdu.from, attrs);
        }
        attrs.set(pdu.attr, attrText(pdu.value));
        return [];
      }
      case 'fetch':
        return [await this.fetch(pdu)];
      case 'descReq':
        return [this.desc(pdu.pmid)];
      case 'instanceReq':
        return [await this.instance(pdu)];
      case 'textReq':
        return [this.text(pdu)];
      case 'labelReq':
        return [await this.label(pdu)];
      case 'names':
        return [this.pmidOfName(pdu.names)];
      case 'ids':
        return [this.namesOfPmid(pdu.pmids)];
      case 'child':
      case 'traverse':
        return [this.children(pdu.kind, pdu.name, pdu.subtype)];
      case 'result':
        // pmstore: libpcp_pmda's default store callback refuses.
        return [encodeError({ from: FROM_ANON, code: PM_ERR_PERMISSION })];
      default:
        if (type !== PduType.CONTROL_REQ) this.logger.warn('unexpected PDU from pmcd', { type: pduTypeName(type) });
        return [];
    }
  }

  private request(context: number): RequestContext {
    return { context, attributes: this.attributes.get(context) ?? new Map<number, string>() };
  }

  /** __pmInProfile: is `inst` of `indom` in the last profile pmcd sent? */
  private inProfile(indomId: number, inst: number): boolean {
    const p = this.profile;
    if (p === undefined) return true;
    const entry = p.indoms.find((d) => d.indom === indomId);
    if (entry === undefined) return p.state === ProfileState.INCLUDE;
    const listed = entry.instances.includes(inst);
    return entry.state === ProfileState.INCLUDE ? !listed : listed;
  }

  private instancesOf(indomId: number, request: RequestContext, cache: Map<number, readonly Instance[]>): readonly Instance[] {
    let list = cache.get(indomId);
    if (list === undefined) {
      const d = this.indoms.get(indomId);
      list = d === undefined ? [] : uniqueInstances(d.instances(request), (why) => this.logger.warn(why, { indom: indomId }));
      cache.set(indomId, list);
    }
    return list;
  }

  private async fetch(pdu: FetchPdu): Promise<Buffer> {
    const request = this.request(pdu.from);
    await this.definition.refresh?.({ ...request, kind: 'fetch', pmids: pdu.pmids });
    const cache = new Map<number, readonly Instance[]>();
    const vsets = pdu.pmids.map((id): ValueSet => {
      const m = this.metrics.get(id >>> 0);
      if (m === undefined) return { pmid: id, numval: PM_ERR_PMID, values: [] };
      const targets: (Instance | undefined)[] =
        m.indomId === PM_INDOM_NULL ? [undefined] : this.instancesOf(m.indomId, request, cache).filter((i) => this.inProfile(m.indomId, i.id));
      let status = 0;
      let valfmt = 0;
      const values = [];
      for (const instance of targets) {
        try {
          const value = m.fetch(instance, request);
          if (value === undefined) continue;
          const encoded = encodeValue(m.type, value);
          valfmt = encoded.valfmt;
          values.push({ inst: instance?.id ?? PM_IN_NULL, ...(encoded.block !== undefined ? { block: encoded.block } : { lval: encoded.lval ?? 0 }) });
        } catch (err) {
          status = statusOf(err);
          this.logger.debug('no value', { metric: m.name, instance: instance?.name, error: (err as Error).message });
        }
      }
      return values.length > 0 ? { pmid: id, numval: values.length, valfmt, values } : { pmid: id, numval: status, values: [] };
    });
    return encodeResult({ from: FROM_ANON, sec: 0, usec: 0, vsets });
  }

  private desc(id: number): Buffer {
    const m = this.metrics.get(id >>> 0);
    if (m === undefined) return encodeError({ from: FROM_ANON, code: PM_ERR_PMID });
    return encodeDesc({ from: FROM_ANON, desc: { pmid: m.pmid, type: m.type, indom: m.indomId, sem: m.semantics, units: packUnits(m.units) } });
  }

  /** pmdaInstance's answers: all instances, a name for an id, an id for a name. */
  private async instance(pdu: InstanceReqPdu): Promise<Buffer> {
    const d = this.indoms.get(pdu.indom >>> 0);
    if (d === undefined) return encodeError({ from: FROM_ANON, code: PM_ERR_INDOM });
    const request = this.request(pdu.from);
    await this.definition.refresh?.({ ...request, kind: 'instance', pmids: [] });
    const list = this.instancesOf(pdu.indom >>> 0, request, new Map());
    let entries: InstanceEntry[] | undefined;
    if (pdu.name === undefined && pdu.inst === PM_IN_NULL) entries = list.map((i) => ({ inst: i.id, name: i.name }));
    else if (pdu.name === undefined) {
      const hit = list.find((i) => i.id === pdu.inst);
      if (hit !== undefined) entries = [{ inst: PM_IN_NULL, name: hit.name }];
    } else if (pdu.inst === PM_IN_NULL && pdu.name.length > 0) {
      const name = pdu.name;
      // Exact name, else (for a name without spaces) an instance whose name up to its first space is that name.
      const hit = list.find((i) => i.name === name) ?? (name.includes(' ') ? undefined : list.find((i) => i.name.includes(' ') && i.name.slice(0, i.name.indexOf(' ')) === name));
      if (hit !== undefined) entries = [{ inst: hit.id }];
    }
    if (entries === undefined) return encodeError({ from: FROM_ANON, code: PM_ERR_INST });
    return encodeInstance({ from: FROM_ANON, indom: pdu.indom, instances: entries });
  }

  private text(pdu: TextReqPdu): Buffer {
    let help: HelpText | undefined;
    if (pdu.type & TextKind.PMID) help = this.metrics.get(pdu.ident >>> 0)?.help;
    else if (pdu.type & TextKind.INDOM) help = this.indoms.get(pdu.ident >>> 0)?.help;
    if (help === undefined || (pdu.type & (TextKind.ONELINE | TextKind.HELP)) === 0) return encodeError({ from: FROM_ANON, code: PM_ERR_TEXT });
    const text = pdu.type & TextKind.ONELINE ? help.oneline : (help.text ?? '');
    return encodeText({ from: FROM_ANON, identWord: hostOrderTextIdent(pdu.ident), text });
  }

  private async label(pdu: LabelReqPdu): Promise<Buffer> {
    const type = pdu.type & ~(LabelType.COMPOUND | LabelType.OPTIONAL);
    const reply = (sets: LabelSet[]): Buffer => encodeLabel({ from: FROM_ANON, ident: pdu.ident, type: pdu.type, sets });
    if (!this.hasLabels) return reply([]);
    const one = (labels: Labels | undefined): LabelSet[] => (labels === undefined ? [] : [labelSet(PM_IN_NULL, labels, type)]);
    switch (type) {
      case LabelType.DOMAIN:
        return reply(pdu.ident === this.domain ? one(this.definition.labels) : []);
      case LabelType.INDOM:
        return reply(one(this.indoms.get(pdu.ident >>> 0)?.labels));
      case LabelType.ITEM:
        return reply(one(this.metrics.get(pdu.ident >>> 0)?.labels));
      case LabelType.INSTANCES: {
        const d = this.indoms.get(pdu.ident >>> 0);
        if (d?.instanceLabels === undefined) return reply([]);
        const request = this.request(pdu.from);
        await this.definition.refresh?.({ ...request, kind: 'labels', pmids: [] });
        const list = this.instancesOf(pdu.ident >>> 0, request, new Map()).filter((i) => this.inProfile(pdu.ident >>> 0, i.id));
        return reply(list.map((i) => labelSet(i.id, d.instanceLabels?.(i, request) ?? {}, type)));
      }
      default:
        return reply([]);
    }
  }

  private pmidOfName(names: readonly string[]): Buffer {
    const id = names.length === 1 ? this.names.pmidOf(names[0] as string) : undefined;
    if (id === undefined) return encodeError({ from: FROM_ANON, code: names.length === 1 ? PM_ERR_NAME : PM_ERR_IPC });
    return encodeIdList({ from: FROM_ANON, status: 0, pmids: [id] });
  }

  private namesOfPmid(ids: readonly number[]): Buffer {
    const name = ids.length === 1 ? this.names.nameOf(ids[0] as number) : undefined;
    if (name === undefined) return encodeError({ from: FROM_ANON, code: PM_ERR_PMID });
    return encodeNameList({ from: FROM_ANON, names: [name] });
  }

  private children(kind: 'child' | 'traverse', name: string, subtype: number): Buffer {
    if (kind === 'traverse') {
      const names = this.names.traverse(name);
      if (names.length === 0) return encodeError({ from: FROM_ANON, code: PM_ERR_NAME });
      return encodeNameList({ from: FROM_ANON, names });
    }
    const found = this.names.children(name);
    if (found === undefined) return encodeError({ from: FROM_ANON, code: PM_ERR_NAME });
    return encodeNameList({ from: FROM_ANON, names: found.names, ...(subtype === 1 ? { statuses: found.statuses } : {}) });
  }

  /** The metric defined with this PMID. */
  metric(id: number): MetricDefinition | undefined {
    return this.metrics.get(id >>> 0);
  }

  /** Every metric, with its PMID and instance domain ids. */
  get metricList(): readonly (MetricDefinition & { readonly pmid: number; readonly indomId: number })[] {
    return [...this.metrics.values()];
  }

  /** The PMID of a metric of this PMDA, as `1.0.3`. */
  pmidString(name: string): string | undefined {
    const id = this.names.pmidOf(name);
    return id === undefined ? undefined : pmidString(id);
  }
}

/** PDU types pmcd waits for an answer to (all but PROFILE, ATTR, ERROR, CREDS, CONTROL_REQ). */
const WANTS_REPLY = new Set<number>([
  PduType.FETCH,
  PduType.DESC_REQ,
  PduType.INSTANCE_REQ,
  PduType.TEXT_REQ,
  PduType.LABEL_REQ,
  PduType.PMNS_NAMES,
  PduType.PMNS_IDS,
  PduType.PMNS_CHILD,
  PduType.PMNS_TRAVERSE,
  PduType.RESULT,
]);

/** Defines a PMDA; throws a CrootError `ERR_CONFIG` for a definition pmcd could not use. */
export function definePmda(definition: PmdaDefinition): Pmda {
  return new Pmda(definition);
}

