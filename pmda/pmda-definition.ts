/**
 * What a PMDA written with definePmda declares: its metrics, instance
 * domains, help texts and labels, and the hooks called around requests.
 */
import type { MetricType, Semantics, Units } from './identifiers.js';
import type { MetricValue } from './values.js';

export interface HelpText {
  /** `pminfo -t`: one line. */
  readonly oneline: string;
  /** `pminfo -T`: the long text; absent gives an empty text, as pmdaroot's metrics have (pminfo then shows the one-liner). */
  readonly text?: string;
}

export interface Instance {
  /** Instance number, >= 0, unique in its domain (see InstanceNumbering). */
  readonly id: number;
  /** External instance name, unique in its domain. */
  readonly name: string;
}

/** Label names and values of one label set (JSON values; names sorted on the wire). */
export type Labels = Readonly<Record<string, string | number | boolean | null>>;

export interface RequestContext {
  /** pmcd's number for the client context the request comes from (the PDU's `from`). */
  readonly context: number;
  /**
   * The client's attributes pmcd sent (PCP_ATTR_* code -> value): only for
   * PMDAs that set `attributes: true`. Attribute.CONTAINER is the
   * container the client named with `--container`.
   */
  readonly attributes: ReadonlyMap<number, string>;
}

export interface MetricDefinition {
  /** Full PMNS name, e.g. `containers.engine`. */
  readonly name: string;
  readonly cluster: number;
  readonly item: number;
  readonly type: MetricType;
  readonly semantics: Semantics;
  readonly units?: Units;
  /** Serial of one of the PMDA's `indoms`; absent for a singular metric. */
  readonly indom?: number;
  readonly help: HelpText;
  readonly labels?: Labels;
  /**
   * The value for one instance (`instance` undefined for a singular metric),
   * called once per instance in the client's profile during a fetch, after
   * the PMDA's `refresh`; it must not block. `undefined` leaves the
   * instance out of the result (PMDA_FETCH_NOVALUES). A thrown error leaves
   * it out too; when no instance has a value, the status of the last error
   * (a CrootError's `status`, else PM_ERR_GENERIC) stands in for the values.
   */
  fetch(instance: Instance | undefined, request: RequestContext): MetricValue | undefined;
}

export interface IndomDefinition {
  readonly serial: number;
  readonly help?: HelpText;
  readonly labels?: Labels;
  /** Every instance now, called per request after `refresh`; must not block. */
  instances(request: RequestContext): readonly Instance[];
  /** Labels of one instance; declaring it makes instance-label requests list every instance. */
  instanceLabels?(instance: Instance, request: RequestContext): Labels | undefined;
}

export interface RefreshRequest extends RequestContext {
  readonly kind: 'fetch' | 'instance' | 'labels';
  /** The metrics of a fetch (empty otherwise). */
  readonly pmids: readonly number[];
}

export interface PmdaDefinition {
  /** The agent's name (pmcd.conf's label), for logs. */
  readonly name: string;
  /** PMDA domain number, 1..510. */
  readonly domain: number;
  readonly metrics: readonly MetricDefinition[];
  readonly indoms?: readonly IndomDefinition[];
  /** Domain labels. */
  readonly labels?: Labels;
  /** Ask pmcd for each client's attributes (sets PDU_FLAG_AUTH and PDU_FLAG_CONTAINER in the credentials). */
  readonly attributes?: boolean;
  /** Called before each fetch, instance and label request is answered; requests wait for it, one at a time. */
  refresh?(request: RefreshRequest): void | Promise<void>;
  /** Called when pmcd says a client context closed. */
  endContext?(context: number): void;
}

/** `list` without the instances pmcd could not tell apart (a bad id, an empty name, an id or name taken), each reported to `warn`. */
export function uniqueInstances(list: readonly Instance[], warn: (why: string) => void): readonly Instance[] {
  const ids = new Set<number>();
  const names = new Set<string>();
  const out: Instance[] = [];
  for (const i of list) {
    if (!Number.isInteger(i.id) || i.id < 0 || i.id > 0x7fffffff || i.name.length === 0) {
      warn(`instance ${i.id} "${i.name}" left out: ids are 0..2^31-1 and names are not empty`);
      continue;
    }
    if (ids.has(i.id) || names.has(i.name)) {
      warn(`instance ${i.id} "${i.name}" left out: its id or name is taken`);
      continue;
    }
    ids.add(i.id);
    names.add(i.name);
    out.push(i);
  }
  return out;
}
