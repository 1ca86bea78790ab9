/**
 * croot/pmda: PCP's agent protocol (pmcd <-> daemon PMDA, PCP 6.0.3) in
 * TypeScript, a runtime to write PMDAs with it, and croot's root PMDA.
 * See docs/pmda.md.
 */
export { definePmda, Pmda } from './define-pmda.js';
export { labelSet } from './label-sets.js';
export type { HelpText, IndomDefinition, Instance, Labels, MetricDefinition, PmdaDefinition, RefreshRequest, RequestContext } from './pmda-definition.js';
export type { PmdaSession, PmdaStreams } from './pmda-session.js';
export { InstanceNumbering } from './instance-numbering.js';
export { NameTree, PMNS_LEAF, PMNS_NONLEAF } from './name-tree.js';
export {
  Attribute,
  COUNT_ONE,
  LabelType,
  MetricType,
  PM_ID_NULL,
  PM_INDOM_NULL,
  PM_IN_NULL,
  ProfileState,
  Semantics,
  SpaceScale,
  TextKind,
  TimeScale,
  ValueFormat,
  indom,
  indomParts,
  indomString,
  packUnits,
  pmid,
  pmidParts,
  pmidString,
  unpackUnits,
} from './identifiers.js';
export type { MetricId, Units } from './identifiers.js';
export * from './pm-status.js';
export { FROM_ANON, MAX_PDU_LENGTH, PDU_HEADER_SIZE, PDU_VERSION, PduFlag, PduFramer, PduType, pduTypeName, readHeader } from './pdu-framer.js';
export type { PduHeader } from './pdu-framer.js';
export * as pdus from './pdus.js';
export type { Pdu } from './pdus.js';
export { decodeValue, encodeValue } from './values.js';
export type { EncodedValue, MetricValue } from './values.js';
export { ContainerSnapshotSource } from './container-source.js';
export type { ContainerView } from './container-source.js';
export { RegistrySnapshotSource } from './registry-snapshot-source.js';
export { CONTAINERS_INDOM, PROCESS_CLUSTER, ROOT_DOMAIN, containerInstanceNames, rootPmda } from './root-pmda.js';
export type { RootPmdaOptions } from './root-pmda.js';
export { countPidNamespaces, pidNamespaceOf } from './pid-namespace-counter.js';
export type { NamespaceCounts } from './pid-namespace-counter.js';
export { pmdaFiles, helpFileText } from './pmda-files.js';
export type { PmdaFiles } from './pmda-files.js';
export { addedSubtrees, agentDomains, agentLine, backupOf, installPmda, pcpPaths, pmcdRunning, pmcdService, removePmda, withAgentLine, withoutAgentLine } from './pmcd-install.js';
export type { InstallPmdaOptions, PcpPaths, RemovePmdaOptions } from './pmcd-install.js';
