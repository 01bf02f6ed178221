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
