export { CONTRACTS_VERSION, PROJECT, WIRE_VERSION } from './version.js';
export { InvalidTokenError, natsName, token } from './tokens.js';
export {
  SERVICE_NAME_PREFIX,
  componentOf,
  serviceMetadataKeys,
  serviceName,
  subjects,
} from './subjects.js';
export {
  CLUSTER_SCOPE,
  buckets,
  kvSubjectPrefix,
  leaseKey,
  parseResourceKey,
  resourceKey,
  resourceKeyFilter,
} from './buckets.js';
export { CiliateError, asCiliateError, errorCodes, isErrorCode } from './errors.js';
export type { ErrorCode, WireError } from './errors.js';
export { fieldPath, parseWire } from './validate.js';
export {
  HealthCheckSchema,
  HealthReportSchema,
  LeaseRecordSchema,
  StatusInstanceSchema,
  StatusReportSchema,
  WireErrorSchema,
  jsonSchemaOf,
  wireSchema,
  wireSchemaNames,
} from './schemas.js';
export type {
  HealthReport,
  LeaseRecord,
  StatusInstance,
  StatusReport,
  WireSchemaName,
} from './schemas.js';
export {
  IPAM_COMPONENT,
  IpFamilySchema,
  IpamAllocateReplySchema,
  IpamAllocateRequestSchema,
  IpamAllocationSchema,
  IpamListReplySchema,
  IpamListRequestSchema,
  IpamNodeCidrsReplySchema,
  IpamNodeCidrsRequestSchema,
  IpamReleaseReplySchema,
  IpamReleaseRequestSchema,
  IpamStatusReplySchema,
  IpamStatusRequestSchema,
  PodOwnerSchema,
  ipamEndpoints,
  ipamKeys,
  ipamSubject,
} from './ipam.js';
export type {
  IpFamilyName,
  IpamAllocateReply,
  IpamAllocateRequest,
  IpamAllocation,
  IpamListReply,
  IpamListRequest,
  IpamNodeCidrsReply,
  IpamNodeCidrsRequest,
  IpamReleaseReply,
  IpamReleaseRequest,
  IpamStatusReply,
  PodOwnerWire,
} from './ipam.js';
export {
  IDENTITY_COMPONENT,
  IDENTITY_ENDPOINTS,
  IDENTITY_REQUEST_LIMITS,
  IPCACHE_POD_OWNER_PREFIX,
  IPCACHE_SOURCE_NAMES,
  IdentityAllocateReplySchema,
  IdentityAllocateRequestSchema,
  IdentityHeartbeatReplySchema,
  IdentityHeartbeatRequestSchema,
  IdentityInfoSchema,
  IdentityListReplySchema,
  IdentityListRequestSchema,
  IdentityLookupRequestSchema,
  IdentityReleaseReplySchema,
  IdentityReleaseRequestSchema,
  IpcacheClaimSchema,
  IpcacheDeleteRequestSchema,
  IpcacheRecordSchema,
  IpcacheReplySchema,
  IpcacheUpsertRequestSchema,
  identitySubject,
  ipcachePodOwnerKey,
} from './identity.js';
export type {
  IdentityAllocateReply,
  IdentityAllocateRequest,
  IdentityEndpoint,
  IdentityHeartbeatReply,
  IdentityHeartbeatRequest,
  IdentityInfo,
  IdentityListReply,
  IdentityListRequest,
  IdentityLookupRequest,
  IdentityReleaseReply,
  IdentityReleaseRequest,
  IpcacheClaim,
  IpcacheDeleteRequest,
  IpcacheRecord,
  IpcacheReply,
} from './identity.js';
export {
  BpfCtEntrySchema,
  BpfCtListReplySchema,
  BpfCtListRequestSchema,
  BpfIpcacheEntrySchema,
  BpfIpcacheListReplySchema,
  BpfIpcacheListRequestSchema,
  DATAPATH_COMPONENT,
  DATAPATH_EVENT_TYPES,
  DatapathEventSchema,
  ENDPOINT_STATES,
  EndpointInfoSchema,
  EndpointListReplySchema,
  EndpointListRequestSchema,
  datapathEndpoints,
  datapathSubjects,
} from './datapath.js';
export type {
  BpfCtEntry,
  BpfCtListReply,
  BpfIpcacheEntry,
  BpfIpcacheListReply,
  DatapathEndpoint,
  DatapathEvent,
  DatapathEventType,
  EndpointInfo,
  EndpointListReply,
} from './datapath.js';
export {
  CLUSTER_NAME_MAX_LENGTH,
  DEFAULT_CLUSTER,
  ORIGIN_SWEEP_AFTER_MS,
  clusterProblem,
  originBucket,
  originSubjectPrefix,
  parseOriginBucket,
} from './cluster.js';
export type { ClusterProblem, ClusterRef, MaxConnectedClusters } from './cluster.js';
export {
  LabelSource,
  formatLabel,
  formatLabelForKv,
  label,
  labelSetKey,
  labelsFromMap,
  labelsFromStrings,
  labelsToMap,
  normalizeLabelSet,
  parseLabel,
  parseLabelSetKey,
  parseSourcedKey,
} from './labels.js';
export type { Label, SourcedKey } from './labels.js';
export {
  SELECTOR_OPERATORS,
  compileSelector,
  selectorIsEmpty,
  selectorMatches,
  selectorToString,
} from './selector.js';
export type {
  LabelMatcher,
  LabelSelector,
  LabelSelectorRequirement,
  LabelsInput,
  SelectorOperator,
} from './selector.js';
export {
  MAX_RESERVED_IDENTITY,
  MIN_RESERVED_IDENTITY,
  RESERVED_IDENTITIES,
  UNKNOWN_IDENTITY,
  isReservedIdentity,
  reservedIdentities,
  reservedIdentity,
  reservedIdentityForLabels,
  reservedLabel,
  worldIdentity,
} from './reserved.js';
export type { ReservedIdentity, ReservedIdentityName } from './reserved.js';
export {
  NODE_NAME_MAX_LENGTH,
  NODE_NAME_PATTERN,
  NODE_NAME_RULE,
  NodeNameSchema,
  isNodeName,
  nodeFromToken,
  nodeNameProblem,
  nodeToken,
} from './nodes.js';
