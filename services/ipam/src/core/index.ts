// The pure allocation core of the IPAM service: plain data in, plain data out; no NATS, no
// clock, no I/O. The service wires it to JetStream KV (compare-and-set) and the resource store.
export { IPAM_ERROR_CODES, IpamError, isIpamError } from './errors.js';
export type { IpamErrorCode } from './errors.js';

export {
  IP_FAMILIES,
  canonicalCidr,
  canonicalIp,
  cidrContains,
  cidrContainsCidr,
  cidrFirst,
  cidrLast,
  cidrSize,
  cidrsOverlap,
  compareCidrs,
  compareIps,
  compareIpTexts,
  familyBits,
  formatAddress,
  formatCidr,
  formatIp,
  formatRange,
  k8sFamilyName,
  parseCidr,
  parseIp,
  rangeOfCidr,
  rangeSize,
  rangesOverlap,
  tryParseCidr,
  tryParseIp,
} from './ip.js';
export type { Cidr, IpAddress, IpFamily, IpRange, ParseCidrOptions } from './ip.js';

export {
  CLUSTER_POOL_DEFAULTS,
  MAX_CARVE_BITS,
  allocateNodeCidrs,
  carveNodeCidrs,
  checkNodeCidrState,
  clusterPoolConfig,
  emptyNodeCidrState,
  lookupNodeCidrs,
  nodeCidrUsage,
  occupyNodeCidrs,
  podCidrList,
  releaseNodeCidrs,
  restoreNodeCidrs,
  setKubernetesNodeCidrs,
  validateNodePodCidrs,
} from './node-cidrs.js';
export type {
  AllocateNodeCidrsResult,
  CarveNodeCidrsResult,
  ClusterPoolConfig,
  ClusterPoolFamilyConfig,
  ClusterPoolSettings,
  ClusterPoolUsage,
  NodeCidrEntry,
  NodeCidrIssue,
  NodeCidrState,
  NodeCidrUsage,
  NodeCidrs,
  ReleaseNodeCidrsResult,
  RestoreNodeCidrsResult,
} from './node-cidrs.js';

export {
  HEALTH_OWNER,
  ROUTER_OWNER,
  allocateNodePodIps,
  allocatePodIp,
  checkPodPoolState,
  createNodePodIps,
  createPodPool,
  listPodIps,
  lookupPodIp,
  parsePodOwnerKey,
  podOwnerKey,
  podPoolUsage,
  releaseNodePodIps,
  releasePodIp,
  releasePodIpAddress,
} from './pod-ips.js';
export type {
  AllocateNodePodIpsResult,
  AllocatePodIpOptions,
  AllocatePodIpResult,
  CreatePodPoolOptions,
  NodePodCidrs,
  NodePodIpsState,
  PodIpAllocation,
  PodOwner,
  PodPoolState,
  PodPoolUsage,
  ReleasePodIpAddressResult,
  ReleasePodIpResult,
} from './pod-ips.js';

export { compileSelector } from './selector.js';
export type {
  LabelMatcher,
  LabelSelector,
  LabelSelectorOperator,
  LabelSelectorRequirement,
  Labels,
} from './selector.js';

export {
  LB_ANNOTATIONS,
  LB_CLASSES,
  LB_CONDITIONS,
  LB_SERVICE_LABELS,
  emptyLbIpamState,
  lbAddressesOf,
  lbSharingObstacle,
  reconcileLb,
} from './lb-ipam.js';
export type {
  LbCondition,
  LbEvent,
  LbEventKind,
  LbHolding,
  LbIpamOptions,
  LbIpamState,
  LbObjectMeta,
  LbPool,
  LbPoolBlock,
  LbPoolCounts,
  LbPoolResult,
  LbProblem,
  LbReconcileResult,
  LbService,
  LbServicePort,
  LbServiceResult,
  LbUnsatisfiedReason,
} from './lb-ipam.js';
