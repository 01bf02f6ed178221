// Cilium's numeric identity layout (pkg/identity/numericidentity.go), kept bit-for-bit so that
// identities can travel in VXLAN VNIs, skb marks and Hubble flows next to real Cilium ones.
//
//   0                 unknown (wildcard "any" as a policy-map key)
//   1..255            reserved
//   256..65535        cluster-local global identities of cluster 0
//   c<<16 .. +65535   global identities of cluster c (bits 16-23; 15-23 with 511 clusters)
//   1<<24 | n         node-local CIDR/FQDN identities (n in 1..0xFFFFFF), differ per node
//   2<<24 | n         node-local remote-node identities
import {
  CLUSTER_NAME_MAX_LENGTH,
  DEFAULT_CLUSTER,
  clusterProblem,
  type ClusterRef,
  type MaxConnectedClusters,
  MAX_RESERVED_IDENTITY,
  UNKNOWN_IDENTITY,
  reservedIdentity,
  type ReservedIdentityName,
} from '@ciliate/contracts';

import { invalid, required } from './errors.js';

/** Bits of an identity that travel on the wire (VNI, skb mark); CIDR identities live above. */
export const NUMERIC_IDENTITY_BIT_LENGTH = 24;
/** First identity the allocator hands out in cluster 0. */
export const MIN_GLOBAL_IDENTITY = 256;
/** Scope bits: the top byte of the uint32. */
export const IDENTITY_SCOPE_MASK = 0xff000000;
export const IDENTITY_SCOPE_GLOBAL = 0;
export const IDENTITY_SCOPE_LOCAL = 1 << 24;
export const IDENTITY_SCOPE_REMOTE_NODE = 2 << 24;
/** Node-local identities are 1..LOCAL_IDENTITY_MAX ORed with a scope flag. */
export const LOCAL_IDENTITY_MAX = 0xffffff;

// ---------------------------------------------------------------------------------------------
// Clusters

// The cluster itself is contracts' ClusterRef; these names are the identity core's view of it.
export type { MaxConnectedClusters };
export type ClusterConfig = ClusterRef;
export const DEFAULT_CLUSTER_CONFIG: ClusterConfig = DEFAULT_CLUSTER;
export { CLUSTER_NAME_MAX_LENGTH };

/**
 * Validates a cluster setting with Cilium's rules (contracts' clusterProblem): name of at most
 * 32 characters matching `^([a-z0-9][-a-z0-9]*)?[a-z0-9]$`, not `default` once an ID is set; ID
 * an integer in 0..maxConnectedClusters; maxConnectedClusters 255 or 511.
 */
export function validateClusterConfig(
  input: { name?: unknown; id?: unknown; maxConnectedClusters?: unknown },
  field = 'cluster',
): ClusterConfig {
  const p = clusterProblem(input);
  if (p !== undefined) {
    if (p.field === 'name' && (typeof p.value !== 'string' || p.value === '')) {
      throw required('INVALID_CLUSTER_CONFIG', `${field}.name`, p.reason);
    }
    throw invalid('INVALID_CLUSTER_CONFIG', `${field}.${p.field}`, p.value, p.reason);
  }
  return {
    name: (input.name ?? DEFAULT_CLUSTER_CONFIG.name) as string,
    id: (input.id ?? DEFAULT_CLUSTER_CONFIG.id) as number,
    maxConnectedClusters: (input.maxConnectedClusters ??
      DEFAULT_CLUSTER_CONFIG.maxConnectedClusters) as MaxConnectedClusters,
  };
}

/** 16 with 255 clusters (8 cluster bits), 15 with 511 (9 cluster bits). */
export function clusterIdShift(maxConnectedClusters: MaxConnectedClusters = 255): number {
  return maxConnectedClusters === 511 ? 15 : 16;
}

export interface IdentityRange {
  readonly min: number;
  readonly max: number;
}

/**
 * The global identities a cluster allocates from: 256..65535 for cluster 0 (32767 with 511
 * clusters), `id<<shift .. ((id+1)<<shift)-1` for a meshed cluster, which needs no reserved
 * hole since the cluster bits already differ.
 */
export function clusterIdentityRange(
  cluster: Pick<ClusterConfig, 'id'> & { maxConnectedClusters?: MaxConnectedClusters },
): IdentityRange {
  const max = cluster.maxConnectedClusters ?? 255;
  checkClusterId(cluster.id, max);
  const shift = clusterIdShift(max);
  if (cluster.id === 0) return { min: MIN_GLOBAL_IDENTITY, max: 2 ** shift - 1 };
  return { min: cluster.id * 2 ** shift, max: (cluster.id + 1) * 2 ** shift - 1 };
}

export function rangeSize(range: IdentityRange): number {
  return range.max - range.min + 1;
}

function checkClusterId(clusterId: number, max: MaxConnectedClusters, field = 'clusterId'): void {
  if (!Number.isInteger(clusterId) || clusterId < 0 || clusterId > max) {
    throw invalid('INVALID_IDENTITY', field, clusterId, `must be an integer in 0-${max}`);
  }
}

/** Puts a cluster ID into the cluster bits of a cluster-local number. */
export function encodeClusterIdentity(
  clusterId: number,
  localId: number,
  maxConnectedClusters: MaxConnectedClusters = 255,
): number {
  checkClusterId(clusterId, maxConnectedClusters);
  const shift = clusterIdShift(maxConnectedClusters);
  const low = clusterId === 0 ? MIN_GLOBAL_IDENTITY : 0;
  const high = 2 ** shift - 1;
  if (!Number.isInteger(localId) || localId < low || localId > high) {
    throw invalid(
      'INVALID_IDENTITY',
      'localId',
      localId,
      `must be an integer in ${low}-${high} for cluster ${clusterId}`,
    );
  }
  return clusterId * 2 ** shift + localId;
}

/** Splits a global identity into its cluster ID and cluster-local number. */
export function decodeClusterIdentity(
  identity: number,
  maxConnectedClusters: MaxConnectedClusters = 255,
): { clusterId: number; localId: number } {
  if (
    !Number.isInteger(identity) ||
    identity < MIN_GLOBAL_IDENTITY ||
    identity > LOCAL_IDENTITY_MAX
  ) {
    throw invalid(
      'INVALID_IDENTITY',
      'identity',
      identity,
      `a global identity is an integer in ${MIN_GLOBAL_IDENTITY}-${LOCAL_IDENTITY_MAX}`,
    );
  }
  const shift = clusterIdShift(maxConnectedClusters);
  const clusterId = Math.floor(identity / 2 ** shift);
  if (clusterId > maxConnectedClusters) {
    throw invalid(
      'INVALID_IDENTITY',
      'identity',
      identity,
      `cluster bits give ${clusterId}, above max-connected-clusters ${maxConnectedClusters}`,
    );
  }
  return { clusterId, localId: identity % 2 ** shift };
}

export type IdentityClass =
  | { readonly kind: 'unknown' }
  | { readonly kind: 'reserved'; readonly name: ReservedIdentityName | undefined }
  | { readonly kind: 'global'; readonly clusterId: number; readonly localId: number }
  | { readonly kind: 'local'; readonly localId: number }
  | { readonly kind: 'remote-node'; readonly localId: number }
  | { readonly kind: 'invalid' };

/** What a numeric identity is, by range and scope bits. */
export function classifyIdentity(
  identity: number,
  maxConnectedClusters: MaxConnectedClusters = 255,
): IdentityClass {
  if (!Number.isInteger(identity) || identity < 0 || identity > 0xffffffff) {
    return { kind: 'invalid' };
  }
  if (identity === UNKNOWN_IDENTITY) return { kind: 'unknown' };
  if (identity <= MAX_RESERVED_IDENTITY) {
    return { kind: 'reserved', name: reservedIdentity(identity)?.name };
  }
  const scope = Math.floor(identity / 2 ** 24);
  const low = identity % 2 ** 24;
  if (scope === 0) {
    const { clusterId, localId } = decodeClusterIdentity(identity, maxConnectedClusters);
    return { kind: 'global', clusterId, localId };
  }
  if (low === 0) return { kind: 'invalid' };
  if (scope === 1) return { kind: 'local', localId: low };
  if (scope === 2) return { kind: 'remote-node', localId: low };
  return { kind: 'invalid' };
}

/** Node-local identity number for the n-th local label set (n in 1..0xFFFFFF). */
export function localIdentity(n: number, scope: 'cidr' | 'remote-node' = 'cidr'): number {
  if (!Number.isInteger(n) || n < 1 || n > LOCAL_IDENTITY_MAX) {
    throw invalid(
      'INVALID_IDENTITY',
      'localId',
      n,
      `must be an integer in 1-${LOCAL_IDENTITY_MAX}`,
    );
  }
  return (scope === 'cidr' ? IDENTITY_SCOPE_LOCAL : IDENTITY_SCOPE_REMOTE_NODE) + n;
}

/** Refuses anything that is not a valid identity number, naming the field. */
export function checkIdentity(identity: unknown, field = 'identity'): number {
  if (typeof identity !== 'number' || classifyIdentity(identity).kind === 'invalid') {
    throw invalid('INVALID_IDENTITY', field, identity, 'not a valid numeric identity');
  }
  return identity;
}
