// The validated object types, their identity in the store, and conversion to storage versions.

import type {
  CiliumBGPAdvertisement,
  CiliumBGPClusterConfig,
  CiliumBGPPeerConfig,
} from './schema/bgp.js';
import type { CiliumEndpoint, CiliumIdentity, CiliumNode } from './schema/cilium.js';
import type { Namespace, Node, Pod, Service } from './schema/core.js';
import type { EndpointSlice } from './schema/discovery.js';
import type { ObjectMeta } from './schema/kit.js';
import type { CiliumL2AnnouncementPolicy, CiliumLoadBalancerIPPool } from './schema/lb.js';
import type { NetworkPolicy } from './schema/networking.js';
import type { CiliumClusterwideNetworkPolicy, CiliumNetworkPolicy } from './schema/policy.js';
import { kindDescriptor, splitApiVersion, storageApiVersion } from './registry.js';

/** Any object Ciliate handles, after validation and defaulting. Narrow on `kind`. */
export type ResourceObject =
  | Pod
  | Namespace
  | Node
  | Service
  | EndpointSlice
  | NetworkPolicy
  | CiliumNetworkPolicy
  | CiliumClusterwideNetworkPolicy
  | CiliumLoadBalancerIPPool
  | CiliumL2AnnouncementPolicy
  | CiliumBGPClusterConfig
  | CiliumBGPPeerConfig
  | CiliumBGPAdvertisement
  | CiliumNode
  | CiliumIdentity
  | CiliumEndpoint;

export type ResourceKind = ResourceObject['kind'];

/** The shape every Kubernetes object shares; enough to route and key an object. */
export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: ObjectMeta;
}

/** Identity of an object: kind, namespace (`''` for cluster-scoped kinds) and name. */
export interface ObjectRef {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

export function objectRef(obj: KubeObject): ObjectRef {
  return { kind: obj.kind, namespace: obj.metadata.namespace ?? '', name: obj.metadata.name ?? '' };
}

/**
 * The store key `Kind/namespace/name`; cluster-scoped objects have an empty namespace
 * (`CiliumNode//worker-1`), so the key always has three parts and `Kind/ns/` is a prefix per
 * namespace. Neither names nor namespaces can contain '/', so the key splits unambiguously.
 */
export function storeKey(obj: KubeObject | ObjectRef): string {
  const ref = 'metadata' in obj ? objectRef(obj) : obj;
  return `${ref.kind}/${ref.namespace}/${ref.name}`;
}

export function parseStoreKey(key: string): ObjectRef | undefined {
  const parts = key.split('/');
  if (parts.length !== 3 || parts[0] === '' || parts[2] === '') return undefined;
  return { kind: parts[0] ?? '', namespace: parts[1] ?? '', name: parts[2] ?? '' };
}

/**
 * Returns the object under its kind's storage version (cilium.io/v2 for the BGP kinds and LB
 * pools), converting where the versions differ. Objects of unknown kinds come back unchanged.
 */
export function toStorageVersion<T extends KubeObject>(obj: T): T {
  const kind = kindDescriptor(obj.kind);
  if (!kind) return obj;
  const { version } = splitApiVersion(obj.apiVersion);
  if (version === kind.storageVersion) return obj;
  const convert = kind.convertToStorage as ((o: T) => T) | undefined;
  return convert ? convert(obj) : { ...obj, apiVersion: storageApiVersion(kind) };
}
