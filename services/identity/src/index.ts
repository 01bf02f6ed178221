// @ciliate/identity: the pure identity core (numbering, labels, allocation and GC machines,
// ipcache) and the NATS service that wires it (src/service/, run by src/main.ts).
export { IdentityError, IDENTITY_ERROR_CODES, type IdentityErrorCode } from './core/errors.js';
// Labels, reserved identities and node names are the vocabulary's: @ciliate/contracts.
export { labelSetHash } from './core/labels.js';
export {
  DEFAULT_LABEL_PREFIXES,
  LabelFilter,
  createLabelFilter,
  defaultLabelFilter,
  parseLabelPrefix,
  type LabelFilterConfig,
  type LabelPrefix,
  type LabelPrefixFile,
} from './core/label-filter.js';
export {
  CLUSTER_NAME_MAX_LENGTH,
  DEFAULT_CLUSTER_CONFIG,
  IDENTITY_SCOPE_GLOBAL,
  IDENTITY_SCOPE_LOCAL,
  IDENTITY_SCOPE_MASK,
  IDENTITY_SCOPE_REMOTE_NODE,
  LOCAL_IDENTITY_MAX,
  MIN_GLOBAL_IDENTITY,
  NUMERIC_IDENTITY_BIT_LENGTH,
  checkIdentity,
  classifyIdentity,
  clusterIdShift,
  clusterIdentityRange,
  decodeClusterIdentity,
  encodeClusterIdentity,
  localIdentity,
  rangeSize,
  validateClusterConfig,
  type ClusterConfig,
  type IdentityClass,
  type IdentityRange,
  type MaxConnectedClusters,
} from './core/numeric.js';
export {
  CILIUM_K8S_LABEL_PREFIX,
  CLUSTER_LABEL,
  NAMESPACE_LABELS_PREFIX,
  POD_NAMESPACE_LABEL,
  SERVICE_ACCOUNT_LABEL,
  cidrLabelKey,
  cidrLabels,
  podIdentityLabels,
  prefixFromCidrLabelKey,
  type IdentityLabels,
  type PodIdentityInput,
} from './core/identity-labels.js';
export { canonicalPrefix, parseIp, parsePrefix, prefixContains } from './core/ip.js';
export {
  LocalIdentityAllocator,
  identityScopeForLabels,
  type IdentityScope,
  type LocalAcquireResult,
  type LocalIdentitySnapshot,
} from './core/local-allocator.js';
export {
  KV_PREFIX,
  auditIdentityStore,
  bindingKey,
  bindingKeyForLabels,
  bindingRecord,
  decodeBindingRecord,
  decodeIdentityRecord,
  decodeLeaseRecord,
  decodeReferenceRecord,
  encodeRecord,
  identityKey,
  identityRecord,
  leaseKey,
  leaseRecord,
  parseKey,
  referenceKey,
  referenceRecord,
  referencesOfIdentityFilter,
  referencesOfNodeFilter,
  type BindingRecord,
  type IdentityRecord,
  type LeaseRecord,
  type ParsedKey,
  type StoreAudit,
  type ReferenceRecord,
} from './core/kv.js';
export {
  DEFAULT_ALLOCATION_DEADLINE_MS,
  DEFAULT_ALLOCATION_MAX_STEPS,
  IdentityTable,
  allocationError,
  enforceDeadline,
  planAllocate,
  probeCandidate,
  probeSequence,
  startAllocation,
  stepAllocation,
  type AllocationPhase,
  type AllocationPlan,
  type AllocationResult,
  type AllocationState,
  type AllocationStep,
  type AllocationView,
  type KvOp,
  type KvResult,
  type PlanInput,
  type StartAllocationInput,
} from './core/allocation.js';
export {
  collectGarbage,
  emptyReferenceState,
  liveReferenceCounts,
  startRelease,
  stepRelease,
  withIdentities,
  withLease,
  withReference,
  withoutReference,
  type GcResult,
  type ReferenceState,
  type ReleasePhase,
  type ReleaseState,
  type ReleaseStep,
} from './core/gc.js';
export {
  IPCACHE_SOURCES,
  Ipcache,
  allowOverwrite,
  decodeIpcacheEntry,
  encodeIpcacheEntry,
  ipcacheKey,
  prefixFromIpcacheKey,
  type IpcacheChange,
  type IpcacheEntry,
  type IpcacheSource,
  type IpcacheUpsert,
} from './core/ipcache.js';
export { MemoryKv, runMachine, subjectMatches, type KvListener } from './core/memory-kv.js';
export {
  IDENTITY_VERSION,
  identityService,
  identitySettings,
  resolveIdentityConfig,
} from './service/service.js';
export { IdentityAllocator, type IdentityAllocatorOptions } from './service/identities.js';
export { IdentityMirror, type LeaseView } from './service/mirror.js';
export { GarbageCollector, type GcOptions } from './service/gc.js';
export { IpcacheWriter, WORLD_OWNER } from './service/ipcache.js';
export { CiliumIdentityMirror, ciliumIdentityObject } from './service/ciliumidentity.js';
export { JetStreamKvExecutor, type KvExecutor } from './service/kv.js';
export { toWireError, wireCodeOf } from './service/errors.js';
export { createIdentityMetrics, type IdentityMetrics } from './service/metrics.js';
