// The IPAM service's wire: endpoint names, request/reply schemas and the keys of its KV bucket.
// Addresses travel as canonical text; families as Kubernetes spells them in podCIDRs order.
import { z } from 'zod';

import { NodeNameSchema } from './nodes.js';
import { subjects } from './subjects.js';

export const IPAM_COMPONENT = 'ipam';

/** The endpoints of the IPAM micro service. */
export const ipamEndpoints = {
  allocate: 'allocate',
  release: 'release',
  list: 'list',
  nodeCidrs: 'node-cidrs',
  status: 'status',
} as const;

/** Endpoints a node's datapath calls for itself: node-scoped subjects (subjects.nodeEndpoint). */
export const IPAM_NODE_ENDPOINTS = [
  ipamEndpoints.allocate,
  ipamEndpoints.release,
  ipamEndpoints.nodeCidrs,
] as const;
export type IpamNodeEndpoint = (typeof IPAM_NODE_ENDPOINTS)[number];
/** Endpoints about the whole cluster: readers (the CLI, status pages) call these. */
export const IPAM_CLUSTER_ENDPOINTS = [ipamEndpoints.list, ipamEndpoints.status] as const;
export type IpamClusterEndpoint = (typeof IPAM_CLUSTER_ENDPOINTS)[number];

export function ipamSubject(endpoint: IpamClusterEndpoint): string {
  return subjects.endpoint(IPAM_COMPONENT, endpoint);
}

/** The subject of a node-scoped IPAM endpoint, for requests about `node`. */
export function ipamNodeSubject(endpoint: IpamNodeEndpoint, node: string): string {
  return subjects.nodeEndpoint(IPAM_COMPONENT, node, endpoint);
}

/** Keys inside buckets.ipam(). A node name is a DNS subdomain, which is a valid key suffix. */
export const ipamKeys = {
  /** The cluster's per-node pod CIDRs (one document). */
  nodeCidrs: 'node-cidrs',
  /** LB-IPAM state, written only by the lease holder (the record carries its token). */
  lb: 'lb',
  /** One node's pod IP allocations (both families in one document). */
  podIps(node: string): string {
    return `pods.${node}`;
  },
  podIpsPrefix: 'pods.',
} as const;

const ownerPart = z
  .string()
  .min(1, 'must be a non-empty string')
  .max(253)
  .regex(/^[^/\s]+$/, 'must not contain "/" or spaces');

const nodeName = NodeNameSchema;

export const IpFamilySchema = z.enum(['ipv4', 'ipv6']);
export type IpFamilyName = z.infer<typeof IpFamilySchema>;

/** One pod interface, as a CNI ADD names it. */
export const PodOwnerSchema = z.strictObject({
  namespace: ownerPart,
  pod: ownerPart,
  containerID: ownerPart,
  ifname: ownerPart,
});
export type PodOwnerWire = z.infer<typeof PodOwnerSchema>;

const FamilyAddresses = z.strictObject({
  ipv4: z.string().optional(),
  ipv6: z.string().optional(),
});

export const IpamAllocateRequestSchema = z.strictObject({
  node: nodeName,
  owner: PodOwnerSchema,
  /** One family only; default: every family the node has a pod CIDR for. */
  family: IpFamilySchema.optional(),
});
export const IpamAllocateReplySchema = z.object({
  node: z.string(),
  ips: FamilyAddresses,
  /** The node's pod CIDRs the addresses come from (the CNI result's subnets). */
  cidrs: FamilyAddresses,
  /**
   * The router address of each pod CIDR: the pods' default gateway, so that an agent needs no
   * IPAM code to know it. Optional: an IPAM older than this field leaves it out.
   */
  gateways: FamilyAddresses.optional(),
  /** False when the owner already held these addresses (a retried CNI ADD). */
  created: z.boolean(),
});
export type IpamAllocateRequest = z.infer<typeof IpamAllocateRequestSchema>;
export type IpamAllocateReply = z.infer<typeof IpamAllocateReplySchema>;

export const IpamReleaseRequestSchema = z.strictObject({
  owner: PodOwnerSchema,
  /** The node the pod ran on; without it every node's allocations are searched (slow). */
  node: nodeName.optional(),
});
export const IpamReleaseReplySchema = z.object({
  /** Empty when the owner held nothing (a retried CNI DEL is not an error). */
  released: FamilyAddresses,
  node: z.string().optional(),
});
export type IpamReleaseRequest = z.infer<typeof IpamReleaseRequestSchema>;
export type IpamReleaseReply = z.infer<typeof IpamReleaseReplySchema>;

export const IpamListRequestSchema = z.strictObject({ node: nodeName.optional() });
export const IpamAllocationSchema = z.object({
  node: z.string(),
  family: IpFamilySchema,
  ip: z.string(),
  /** `namespace/pod/containerID/ifname`, or `router` / `health`. */
  owner: z.string(),
});
export const IpamListReplySchema = z.object({ allocations: z.array(IpamAllocationSchema) });
export type IpamListRequest = z.infer<typeof IpamListRequestSchema>;
export type IpamListReply = z.infer<typeof IpamListReplySchema>;
export type IpamAllocation = z.infer<typeof IpamAllocationSchema>;

export const IpamNodeCidrsRequestSchema = z.strictObject({ node: nodeName });
export const IpamNodeCidrsReplySchema = z.object({
  node: z.string(),
  mode: z.enum(['cluster-pool', 'kubernetes']),
  cidrs: FamilyAddresses,
  /** As CiliumNode spec.ipam.podCIDRs holds them (IPv4 first). */
  podCIDRs: z.array(z.string()),
  /** The router address of each pod CIDR (the pods' gateway); optional as in the allocate reply. */
  gateways: FamilyAddresses.optional(),
  created: z.boolean(),
});
export type IpamNodeCidrsRequest = z.infer<typeof IpamNodeCidrsRequestSchema>;
export type IpamNodeCidrsReply = z.infer<typeof IpamNodeCidrsReplySchema>;

const PoolUsageSchema = z.object({
  pool: z.string(),
  family: z.string(),
  capacity: z.number(),
  used: z.number(),
  available: z.number(),
  conflicting: z.boolean(),
  disabled: z.boolean(),
  /** Why the pool allocates nothing or what it conflicts with, when it does. */
  detail: z.string().optional(),
});

export const IpamStatusRequestSchema = z.strictObject({});
export const IpamStatusReplySchema = z.object({
  mode: z.enum(['cluster-pool', 'kubernetes']),
  /** The cluster pool's per-node CIDRs per family (cluster-pool mode). */
  clusterPool: z.array(
    z.object({
      family: IpFamilySchema,
      maskSize: z.number(),
      cidrs: z.array(z.string()),
      capacity: z.number(),
      used: z.number(),
      available: z.number(),
    }),
  ),
  /** LB-IPAM pools as the last reconcile saw them. */
  pools: z.array(PoolUsageSchema),
  nodes: z.array(
    z.object({
      node: z.string(),
      cidrs: FamilyAddresses,
      /** Pod addresses in use / usable per family, router included. */
      used: z.number(),
      capacity: z.number(),
    }),
  ),
  /** Stored node CIDRs the configuration cannot account for. */
  issues: z.array(z.string()),
  lb: z.object({
    leader: z.string().nullable(),
    services: z.number(),
    unsatisfied: z.number(),
  }),
});
export type IpamStatusReply = z.infer<typeof IpamStatusReplySchema>;
