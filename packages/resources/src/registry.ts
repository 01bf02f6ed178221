// Every kind Ciliate knows: the ones it handles (with their schemas per served version) and the
// ones it knows of but refuses (so `ciliate get cec` or a CiliumEnvoyConfig manifest gets a clear
// "not supported" instead of "unknown"). Names, short names, scopes and versions are Kubernetes'
// and Cilium's own, so kubectl habits carry over.

import type { z } from 'zod';

import {
  bgpClusterConfigToV2,
  ciliumBGPAdvertisementV2,
  ciliumBGPAdvertisementV2alpha1,
  ciliumBGPClusterConfigV2,
  ciliumBGPClusterConfigV2alpha1,
  ciliumBGPPeerConfigV2,
  ciliumBGPPeerConfigV2alpha1,
} from './schema/bgp.js';
import { ciliumEndpointV2, ciliumIdentityV2, ciliumNodeV2 } from './schema/cilium.js';
import {
  applyNamespaceDefaults,
  applyPodDefaults,
  applyServiceDefaults,
  namespaceV1,
  nodeV1,
  podV1,
  serviceV1,
} from './schema/core.js';
import { endpointSliceV1 } from './schema/discovery.js';
import {
  ciliumL2AnnouncementPolicyV2alpha1,
  ciliumLoadBalancerIPPoolV2,
  ciliumLoadBalancerIPPoolV2alpha1,
} from './schema/lb.js';
import { applyNetworkPolicyDefaults, networkPolicyV1 } from './schema/networking.js';
import { ciliumClusterwideNetworkPolicyV2, ciliumNetworkPolicyV2 } from './schema/policy.js';

export interface PrinterColumn {
  readonly name: string;
  readonly type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  readonly jsonPath: string;
  readonly description?: string;
  readonly priority?: number;
}

export interface VersionDescriptor {
  /** The version part of apiVersion: `v2`, `v2alpha1`, `v1`. */
  readonly name: string;
  readonly storage: boolean;
  readonly deprecated?: boolean;
  readonly deprecationWarning?: string;
  readonly schema: z.ZodType;
}

interface KindNames {
  /** API group; `''` for the core group. */
  readonly group: string;
  readonly kind: string;
  readonly plural: string;
  readonly singular: string;
  readonly shortNames: readonly string[];
  readonly namespaced: boolean;
}

export interface KindDescriptor extends KindNames {
  readonly supported: true;
  readonly categories: readonly string[];
  /** Served versions, storage version first. */
  readonly versions: readonly VersionDescriptor[];
  readonly storageVersion: string;
  /** Whether the CRD has a status subresource (Cilium's choice, mirrored in our CRDs). */
  readonly statusSubresource: boolean;
  readonly printerColumns: readonly PrinterColumn[];
  /** Whether Ciliate ships a CRD for it (the cilium.io kinds). */
  readonly crd: boolean;
  /** Defaults the API server would add that depend on other fields (applied after parsing). */
  readonly applyDefaults?: (obj: never) => void;
  /** Converts an object of a non-storage version to the storage version. */
  readonly convertToStorage?: (obj: never) => unknown;
}

export interface UnsupportedKindDescriptor extends KindNames {
  readonly supported: false;
  readonly versions: readonly string[];
  /** Why Ciliate refuses it, and what to use instead where there is something. */
  readonly reason: string;
}

export type KnownKind = KindDescriptor | UnsupportedKindDescriptor;

const AGE: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

const SUPPORTED: readonly KindDescriptor[] = [
  {
    supported: true,
    group: '',
    kind: 'Pod',
    plural: 'pods',
    singular: 'pod',
    shortNames: ['po'],
    categories: ['all'],
    namespaced: true,
    versions: [{ name: 'v1', storage: true, schema: podV1 }],
    storageVersion: 'v1',
    statusSubresource: true,
    printerColumns: [
      { name: 'Status', type: 'string', jsonPath: '.status.phase' },
      { name: 'IP', type: 'string', jsonPath: '.status.podIP' },
      { name: 'Node', type: 'string', jsonPath: '.spec.nodeName' },
      AGE,
    ],
    crd: false,
    applyDefaults: applyPodDefaults,
  },
  {
    supported: true,
    group: '',
    kind: 'Namespace',
    plural: 'namespaces',
    singular: 'namespace',
    shortNames: ['ns'],
    categories: [],
    namespaced: false,
    versions: [{ name: 'v1', storage: true, schema: namespaceV1 }],
    storageVersion: 'v1',
    statusSubresource: true,
    printerColumns: [{ name: 'Status', type: 'string', jsonPath: '.status.phase' }, AGE],
    crd: false,
    applyDefaults: applyNamespaceDefaults,
  },
  {
    supported: true,
    group: '',
    kind: 'Node',
    plural: 'nodes',
    singular: 'node',
    shortNames: ['no'],
    categories: [],
    namespaced: false,
    versions: [{ name: 'v1', storage: true, schema: nodeV1 }],
    storageVersion: 'v1',
    statusSubresource: true,
    printerColumns: [
      {
        name: 'Internal-IP',
        type: 'string',
        jsonPath: '.status.addresses[?(@.type=="InternalIP")].address',
      },
      AGE,
    ],
    crd: false,
  },
  {
    supported: true,
    group: '',
    kind: 'Service',
    plural: 'services',
    singular: 'service',
    shortNames: ['svc'],
    categories: ['all'],
    namespaced: true,
    versions: [{ name: 'v1', storage: true, schema: serviceV1 }],
    storageVersion: 'v1',
    statusSubresource: true,
    printerColumns: [
      { name: 'Type', type: 'string', jsonPath: '.spec.type' },
      { name: 'Cluster-IP', type: 'string', jsonPath: '.spec.clusterIP' },
      { name: 'External-IP', type: 'string', jsonPath: '.status.loadBalancer.ingress[*].ip' },
      AGE,
    ],
    crd: false,
    applyDefaults: applyServiceDefaults,
  },
  {
    supported: true,
    group: 'discovery.k8s.io',
    kind: 'EndpointSlice',
    plural: 'endpointslices',
    singular: 'endpointslice',
    shortNames: [],
    categories: [],
    namespaced: true,
    versions: [{ name: 'v1', storage: true, schema: endpointSliceV1 }],
    storageVersion: 'v1',
    statusSubresource: false,
    printerColumns: [
      { name: 'AddressType', type: 'string', jsonPath: '.addressType' },
      {
        name: 'Service',
        type: 'string',
        jsonPath: '.metadata.labels.kubernetes\\.io/service-name',
      },
      AGE,
    ],
    crd: false,
  },
  {
    supported: true,
    group: 'networking.k8s.io',
    kind: 'NetworkPolicy',
    plural: 'networkpolicies',
    singular: 'networkpolicy',
    shortNames: ['netpol'],
    categories: [],
    namespaced: true,
    versions: [{ name: 'v1', storage: true, schema: networkPolicyV1 }],
    storageVersion: 'v1',
    statusSubresource: false,
    printerColumns: [AGE],
    crd: false,
    applyDefaults: applyNetworkPolicyDefaults,
  },
  {
    supported: true,
    group: 'cilium.io',
    kind: 'CiliumNetworkPolicy',
    plural: 'ciliumnetworkpolicies',
    singular: 'ciliumnetworkpolicy',
    shortNames: ['cnp', 'ciliumnp'],
    categories: ['cilium', 'ciliumpolicy'],
    namespaced: true,
    versions: [{ name: 'v2', storage: true, schema: ciliumNetworkPolicyV2 }],
    storageVersion: 'v2',
    statusSubresource: true,
    printerColumns: [
      AGE,
      { name: 'Valid', type: 'string', jsonPath: '.status.conditions[?(@.type=="Valid")].status' },
    ],
    crd: true,
  },
  {
    supported: true,
    group: 'cilium.io',
    kind: 'CiliumClusterwideNetworkPolicy',
    plural: 'ciliumclusterwidenetworkpolicies',
    singular: 'ciliumclusterwidenetworkpolicy',
    shortNames: ['ccnp'],
    categories: ['cilium', 'ciliumpolicy'],
    namespaced: false,
    versions: [{ name: 'v2', storage: true, schema: ciliumClusterwideNetworkPolicyV2 }],
    storageVersion: 'v2',
    statusSubresource: true,
    printerColumns: [
      AGE,
      { name: 'Valid', type: 'string', jsonPath: '.status.conditions[?(@.type=="Valid")].status' },
    ],
    crd: true,
  },
  {
    supported: true,
    group: 'cilium.io',
    kind: 'CiliumLoadBalancerIPPool',
    plural: 'ciliumloadbalancerippools',
    singular: 'ciliumloadbalancerippool',
    shortNames: ['ippools', 'ippool', 'lbippool', 'lbippools'],
    categories: ['cilium'],
    namespaced: false,
    versions: [
      { name: 'v2', storage: true, schema: ciliumLoadBalancerIPPoolV2 },
      {
        name: 'v2alpha1',
        storage: false,
        deprecated: true,
        deprecationWarning:
          'cilium.io/v2alpha1 CiliumLoadBalancerIPPool is deprecated; use cilium.io/v2',
        schema: ciliumLoadBalancerIPPoolV2alpha1,
      },
    ],
    storageVersion: 'v2',
    statusSubresource: true,
    printerColumns: [
      { name: 'Disabled', type: 'boolean', jsonPath: '.spec.disabled' },
      {
        name: 'Conflicting',
        type: 'string',
        jsonPath: '.status.conditions[?(@.type=="cilium.io/PoolConflict")].status',
      },
      {
        name: 'IPs Available',
        type: 'string',
        jsonPath: '.status.conditions[?(@.type=="cilium.io/IPsAvailable")].message',
      },
      AGE,
    ],
    crd: true,
  },
  {
    supported: true,
    group: 'cilium.io',
    kind: 'CiliumL2AnnouncementPolicy',
    plural: 'ciliuml2announcementpolicies',
    singular: 'ciliuml2announcementpolicy',
    shortNames: ['l2announcement'],
    categories: ['cilium'],
    namespaced: false,
    versions: [{ name: 'v2alpha1', storage: true, schema: ciliumL2AnnouncementPolicyV2alpha1 }],
    storageVersion: 'v2alpha1',
    statusSubresource: true,
    printerColumns: [AGE],
    crd: true,
  },
  {
    supported: true,
    group: 'cilium.io',
    kind: 'CiliumBGPClusterConfig',
    plural: 'ciliumbgpclusterconfigs',
    singular: 'ciliumbgpclusterconfig',
    shortNames: ['cbgpcluster'],
    categories: ['cilium', 'ciliumbgp'],
    namespaced: false,
    versions: [
      { name: 'v2', storage: true, schema: ciliumBGPClusterConfigV2 },
      {
        name: 'v2alpha1',
        storage: false,
        deprecated: true,
        deprecationWarning:
          'cilium.io/v2alpha1 CiliumBGPClusterConfig is deprecated; use cilium.io/v2',
        schema: ciliumBGPClusterConfigV2alpha1,
      },
    ],
    storageVersion: 'v2',
    statusSubresource: true,
    printerColumns: [AGE],
    crd: true,
    convertToStorage: bgpClusterConfigToV2,
  },
  {
    supported: true,
    group: 'cilium.io',
    kind: 'CiliumBGPPeerConfig',
    plural: 'ciliumbgppeerconfigs',
    singular: 'ciliumbgppeerconfig',
    shortNames: ['cbgppeer'],
    categories: ['cilium', 'ciliumbgp'],
    namespaced: false,
    versions: [
      { name: 'v2', storage: true, schema: ciliumBGPPeerConfigV2 },
      {
        name: 'v2alpha1',
        storage: false,
        deprecated: true,
        deprecationWarning:
          'cilium.io/v2alpha1 CiliumBGPPeerConfig is deprecated; use cilium.io/v2',
        schema: ciliumBGPPeerConfigV2alpha1,
      },
    ],
    storageVersion: 'v2',
    statusSubresource: true,
    printerColumns: [AGE],
    crd: true,
  },
  {
    supported: true,
    group: 'cilium.io',
    kind: 'CiliumBGPAdvertisement',
    plural: 'ciliumbgpadvertisements',
    singular: 'ciliumbgpadvertisement',
    shortNames: ['cbgpadvert'],
    categories: ['cilium', 'ciliumbgp'],
    namespaced: false,
    versions: [
      { name: 'v2', storage: true, schema: ciliumBGPAdvertisementV2 },
      {
        name: 'v2alpha1',
        storage: false,
        deprecated: true,
        deprecationWarning:
          'cilium.io/v2alpha1 CiliumBGPAdvertisement is deprecated; use cilium.io/v2',
        schema: ciliumBGPAdvertisementV2alpha1,
      },
    ],
    storageVersion: 'v2',
    statusSubresource: false,
    printerColumns: [AGE],
    crd: true,
  },
  {
    supported: true,
    group: 'cilium.io',
    kind: 'CiliumNode',
    plural: 'ciliumnodes',
    singular: 'ciliumnode',
    shortNames: ['cn', 'ciliumn'],
    categories: ['cilium'],
    namespaced: false,
    versions: [{ name: 'v2', storage: true, schema: ciliumNodeV2 }],
    storageVersion: 'v2',
    statusSubresource: true,
    printerColumns: [
      {
        name: 'CiliumInternalIP',
        type: 'string',
        jsonPath: '.spec.addresses[?(@.type=="CiliumInternalIP")].ip',
        description: 'Cilium internal IP for this node',
      },
      {
        name: 'InternalIP',
        type: 'string',
        jsonPath: '.spec.addresses[?(@.type=="InternalIP")].ip',
        description: 'IP of the node',
      },
      AGE,
    ],
    crd: true,
  },
  {
    supported: true,
    group: 'cilium.io',
    kind: 'CiliumIdentity',
    plural: 'ciliumidentities',
    singular: 'ciliumidentity',
    shortNames: ['ciliumid'],
    categories: ['cilium'],
    namespaced: false,
    versions: [{ name: 'v2', storage: true, schema: ciliumIdentityV2 }],
    storageVersion: 'v2',
    statusSubresource: false,
    printerColumns: [
      {
        name: 'Namespace',
        type: 'string',
        jsonPath: '.metadata.labels.io\\.kubernetes\\.pod\\.namespace',
        description: 'The namespace of the entity',
      },
      AGE,
    ],
    crd: true,
  },
  {
    supported: true,
    group: 'cilium.io',
    kind: 'CiliumEndpoint',
    plural: 'ciliumendpoints',
    singular: 'ciliumendpoint',
    shortNames: ['cep', 'ciliumep'],
    categories: ['cilium'],
    namespaced: true,
    versions: [{ name: 'v2', storage: true, schema: ciliumEndpointV2 }],
    storageVersion: 'v2',
    statusSubresource: false,
    printerColumns: [
      {
        name: 'Security Identity',
        type: 'integer',
        jsonPath: '.status.identity.id',
        description: 'Security Identity',
      },
      {
        name: 'Endpoint State',
        type: 'string',
        jsonPath: '.status.state',
        description: 'Endpoint current state',
      },
      {
        name: 'IPv4',
        type: 'string',
        jsonPath: '.status.networking.addressing[0].ipv4',
        description: 'Endpoint IPv4 address',
      },
      {
        name: 'IPv6',
        type: 'string',
        jsonPath: '.status.networking.addressing[0].ipv6',
        description: 'Endpoint IPv6 address',
      },
    ],
    crd: true,
  },
];

const MESH = 'Envoy-based L7 traffic management (service mesh) is not implemented by Ciliate';

const UNSUPPORTED: readonly UnsupportedKindDescriptor[] = [
  {
    supported: false,
    group: '',
    kind: 'Endpoints',
    plural: 'endpoints',
    singular: 'endpoints',
    shortNames: ['ep'],
    namespaced: true,
    versions: ['v1'],
    reason:
      'Ciliate reads Service backends from discovery.k8s.io/v1 EndpointSlice; use endpointslices',
  },
  {
    supported: false,
    group: 'cilium.io',
    kind: 'CiliumEnvoyConfig',
    plural: 'ciliumenvoyconfigs',
    singular: 'ciliumenvoyconfig',
    shortNames: ['cec'],
    namespaced: true,
    versions: ['v2'],
    reason: MESH,
  },
  {
    supported: false,
    group: 'cilium.io',
    kind: 'CiliumClusterwideEnvoyConfig',
    plural: 'ciliumclusterwideenvoyconfigs',
    singular: 'ciliumclusterwideenvoyconfig',
    shortNames: ['ccec'],
    namespaced: false,
    versions: ['v2'],
    reason: MESH,
  },
  {
    supported: false,
    group: 'cilium.io',
    kind: 'CiliumEgressGatewayPolicy',
    plural: 'ciliumegressgatewaypolicies',
    singular: 'ciliumegressgatewaypolicy',
    shortNames: ['cegp'],
    namespaced: false,
    versions: ['v2'],
    reason: 'egress gateways are not implemented by Ciliate',
  },
  {
    supported: false,
    group: 'cilium.io',
    kind: 'CiliumLocalRedirectPolicy',
    plural: 'ciliumlocalredirectpolicies',
    singular: 'ciliumlocalredirectpolicy',
    shortNames: ['clrp'],
    namespaced: true,
    versions: ['v2'],
    reason: 'local redirect policies are not implemented by Ciliate',
  },
  {
    supported: false,
    group: 'cilium.io',
    kind: 'CiliumCIDRGroup',
    plural: 'ciliumcidrgroups',
    singular: 'ciliumcidrgroup',
    shortNames: ['ccg'],
    namespaced: false,
    versions: ['v2', 'v2alpha1'],
    reason:
      'CIDR groups are not implemented by Ciliate; list the CIDRs in the policy (fromCIDRSet/toCIDRSet)',
  },
  {
    supported: false,
    group: 'cilium.io',
    kind: 'CiliumPodIPPool',
    plural: 'ciliumpodippools',
    singular: 'ciliumpodippool',
    shortNames: ['cpip'],
    namespaced: false,
    versions: ['v2', 'v2alpha1'],
    reason: 'multi-pool IPAM is not implemented by Ciliate',
  },
  {
    supported: false,
    group: 'cilium.io',
    kind: 'CiliumEndpointSlice',
    plural: 'ciliumendpointslices',
    singular: 'ciliumendpointslice',
    shortNames: ['ces'],
    namespaced: false,
    versions: ['v2alpha1'],
    reason:
      'Ciliate distributes endpoints through its own store; CiliumEndpointSlice batching is not used',
  },
  {
    supported: false,
    group: 'cilium.io',
    kind: 'CiliumBGPPeeringPolicy',
    plural: 'ciliumbgppeeringpolicies',
    singular: 'ciliumbgppeeringpolicy',
    shortNames: ['bgpp'],
    namespaced: false,
    versions: ['v2alpha1'],
    reason:
      'the legacy BGP v1 API is not supported; use CiliumBGPClusterConfig, CiliumBGPPeerConfig and CiliumBGPAdvertisement',
  },
  {
    supported: false,
    group: 'cilium.io',
    kind: 'CiliumBGPNodeConfig',
    plural: 'ciliumbgpnodeconfigs',
    singular: 'ciliumbgpnodeconfig',
    shortNames: ['cbgpnode'],
    namespaced: false,
    versions: ['v2', 'v2alpha1'],
    reason:
      'per-node BGP configuration is derived from CiliumBGPClusterConfig, not accepted as input',
  },
  {
    supported: false,
    group: 'cilium.io',
    kind: 'CiliumBGPNodeConfigOverride',
    plural: 'ciliumbgpnodeconfigoverrides',
    singular: 'ciliumbgpnodeconfigoverride',
    shortNames: ['cbgpnodeoverride'],
    namespaced: false,
    versions: ['v2', 'v2alpha1'],
    reason: 'per-node BGP overrides are not implemented by Ciliate',
  },
  {
    supported: false,
    group: 'cilium.io',
    kind: 'CiliumNodeConfig',
    plural: 'ciliumnodeconfigs',
    singular: 'ciliumnodeconfig',
    shortNames: [],
    namespaced: true,
    versions: ['v2', 'v2alpha1'],
    reason: 'per-node agent configuration overrides are not implemented by Ciliate',
  },
];

const ALL: readonly KnownKind[] = [...SUPPORTED, ...UNSUPPORTED];

/** `group/version`, or just `version` for the core group. */
export function apiVersionOf(group: string, version: string): string {
  return group === '' ? version : `${group}/${version}`;
}

export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const i = apiVersion.lastIndexOf('/');
  return i < 0
    ? { group: '', version: apiVersion }
    : { group: apiVersion.slice(0, i), version: apiVersion.slice(i + 1) };
}

/** The kinds Ciliate handles, in a stable order. */
export function supportedKinds(): readonly KindDescriptor[] {
  return SUPPORTED;
}

/** The kinds Ciliate knows of but refuses. */
export function unsupportedKinds(): readonly UnsupportedKindDescriptor[] {
  return UNSUPPORTED;
}

export type KindLookup =
  | {
      readonly status: 'supported';
      readonly kind: KindDescriptor;
      readonly version: VersionDescriptor;
    }
  | { readonly status: 'unsupported'; readonly kind: UnsupportedKindDescriptor }
  | { readonly status: 'version-not-served'; readonly kind: KindDescriptor }
  | { readonly status: 'unknown' };

/** Finds a kind by apiVersion and kind, as written in a manifest. */
export function lookupKind(apiVersion: string, kind: string): KindLookup {
  const { group, version } = splitApiVersion(apiVersion);
  const sameKind = ALL.filter((k) => k.kind === kind);
  const inGroup = sameKind.find((k) => k.group === group);
  if (!inGroup) {
    const supported = sameKind.find((k): k is KindDescriptor => k.supported);
    return supported ? { status: 'version-not-served', kind: supported } : { status: 'unknown' };
  }
  if (!inGroup.supported) return { status: 'unsupported', kind: inGroup };
  const v = inGroup.versions.find((x) => x.name === version);
  return v
    ? { status: 'supported', kind: inGroup, version: v }
    : { status: 'version-not-served', kind: inGroup };
}

/**
 * Resolves what a user types after `get`/`delete`: plural, singular, short name or kind (any
 * case), optionally qualified by group (`ciliumnetworkpolicies.cilium.io`, `cnp.cilium.io`).
 */
export function resolveResource(name: string): KnownKind | undefined {
  const lower = name.toLowerCase();
  const matches = (k: KnownKind, n: string): boolean =>
    k.plural === n || k.singular === n || k.kind.toLowerCase() === n || k.shortNames.includes(n);
  const direct = ALL.find((k) => matches(k, lower));
  if (direct) return direct;
  const dot = lower.indexOf('.');
  if (dot > 0) {
    const base = lower.slice(0, dot);
    const group = lower.slice(dot + 1);
    return ALL.find((k) => k.group === group && matches(k, base));
  }
  return undefined;
}

/** The descriptor of a supported kind by its kind name (`CiliumNode`). */
export function kindDescriptor(kind: string): KindDescriptor | undefined {
  return SUPPORTED.find((k) => k.kind === kind);
}

/** The apiVersion objects of this kind are stored under. */
export function storageApiVersion(kind: KindDescriptor): string {
  return apiVersionOf(kind.group, kind.storageVersion);
}
