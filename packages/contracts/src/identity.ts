// Messages of the identity service (`ciliate.v1.identity.<endpoint>`): security identities for
// label sets, node references with heartbeats, and the ipcache. Labels travel as Cilium writes
// them: `source:key=value` (`k8s:app=web`, `reserved:host`).
import { z } from 'zod';

import { NodeNameSchema } from './nodes.js';
import { subjects } from './subjects.js';

export const IDENTITY_COMPONENT = 'identity';

/** Endpoint names of the identity micro service. */
export const IDENTITY_ENDPOINTS = [
  'allocate',
  'release',
  'lookup',
  'heartbeat',
  'list',
  'ipcache-upsert',
  'ipcache-delete',
] as const;
export type IdentityEndpoint = (typeof IDENTITY_ENDPOINTS)[number];

/**
 * Endpoints a node's datapath calls for itself (references it holds, its heartbeat, claims for
 * its pods): node-scoped subjects (subjects.nodeEndpoint). The others read the cluster's state.
 */
export const IDENTITY_NODE_ENDPOINTS = [
  'allocate',
  'release',
  'heartbeat',
  'ipcache-upsert',
  'ipcache-delete',
] as const satisfies readonly IdentityEndpoint[];
export type IdentityNodeEndpoint = (typeof IDENTITY_NODE_ENDPOINTS)[number];
/**
 * Cluster-wide endpoints: reads, and ipcache claims of any kind from writers trusted with the
 * whole cluster (an operator, the mesh); a node's claims go through the node-scoped subjects,
 * where only its own pods' addresses are accepted.
 */
export const IDENTITY_CLUSTER_ENDPOINTS = [
  'lookup',
  'list',
  'ipcache-upsert',
  'ipcache-delete',
] as const satisfies readonly IdentityEndpoint[];
export type IdentityClusterEndpoint = (typeof IDENTITY_CLUSTER_ENDPOINTS)[number];

export function identitySubject(endpoint: IdentityClusterEndpoint): string {
  return subjects.endpoint(IDENTITY_COMPONENT, endpoint);
}

/** The subject of a node-scoped identity endpoint, for requests about `node`. */
export function identityNodeSubject(endpoint: IdentityNodeEndpoint, node: string): string {
  return subjects.nodeEndpoint(IDENTITY_COMPONENT, node, endpoint);
}

const nodeName = NodeNameSchema;

/**
 * What one request may carry, so that no caller grows an identity record, the ipcache or the
 * service's memory without bound. Far above what a Kubernetes pod has (label keys at most 317
 * characters, values 63, a few dozen labels); a pod identity derived from the largest maps
 * allowed (2 x 128 entries plus namespace, service account and cluster, each label at most
 * 4 + 36 + 320 + 1 + 128 characters as `k8s:io.cilium.k8s.namespace.labels.<key>=<value>`)
 * still fits the explicit-set limits, so it can be looked up by its labels.
 */
export const IDENTITY_REQUEST_LIMITS = {
  /** Labels in one label set (`labels`). */
  labels: 512,
  /** Characters of one label, `source:key=value`. */
  labelLength: 512,
  /** Entries of `podLabels`, and of `namespaceLabels`. */
  mapEntries: 128,
  /** Characters of a key of `podLabels` or `namespaceLabels` (Kubernetes: 253 + "/" + 63). */
  mapKeyLength: 320,
  /** Characters of a value of `podLabels` or `namespaceLabels` (Kubernetes: 63). */
  mapValueLength: 128,
  /** Characters of `namespace` and `serviceAccount` (Kubernetes: 63 and 253). */
  nameLength: 253,
  /** Characters of an ipcache `prefix` or `hostIP`, in any valid spelling. */
  addressLength: 64,
  /** Characters of an ipcache `ownerKey` (`pod/<namespace>/<name>` is at most 321). */
  ownerKeyLength: 512,
} as const;

const L = IDENTITY_REQUEST_LIMITS;

const labelText = z
  .string()
  .min(1, 'a label is "source:key=value"')
  .max(L.labelLength, `a label is at most ${L.labelLength} characters`);
const labelList = z.array(labelText).max(L.labels, `a label set has at most ${L.labels} labels`);
const identityNumber = z.number().int().min(1).max(0xffffffff);
// One issue per map at most: a map of many bad entries does not make a long answer.
const stringMap = z.record(z.string(), z.string()).superRefine((m, ctx) => {
  const keys = Object.keys(m);
  if (keys.length > L.mapEntries) {
    ctx.addIssue({ code: 'custom', message: `at most ${L.mapEntries} labels, not ${keys.length}` });
    return;
  }
  for (const k of keys) {
    if (k.length > L.mapKeyLength) {
      ctx.addIssue({
        code: 'custom',
        path: [k],
        message: `a label key is at most ${L.mapKeyLength} characters, not ${k.length}`,
      });
      return;
    }
    if (m[k]!.length > L.mapValueLength) {
      ctx.addIssue({
        code: 'custom',
        path: [k],
        message: `a label value is at most ${L.mapValueLength} characters, not ${m[k]!.length}`,
      });
      return;
    }
  }
});
const k8sName = z.string().min(1).max(L.nameLength, `at most ${L.nameLength} characters`);

/**
 * Either an explicit label set (`labels`) or a pod's fields, from which the service derives the
 * identity-relevant labels (namespace labels come from the Namespace object in the store unless
 * `namespaceLabels` is given).
 */
export const IdentityAllocateRequestSchema = z
  .object({
    node: nodeName,
    labels: labelList.optional(),
    podLabels: stringMap.optional(),
    namespace: k8sName.optional(),
    namespaceLabels: stringMap.optional(),
    serviceAccount: k8sName.optional(),
  })
  .superRefine((v, ctx) => {
    const pod =
      v.podLabels !== undefined ||
      v.namespace !== undefined ||
      v.namespaceLabels !== undefined ||
      v.serviceAccount !== undefined;
    if (v.labels !== undefined && pod) {
      ctx.addIssue({
        code: 'custom',
        path: ['labels'],
        message:
          'give either labels or pod fields (podLabels, namespace, serviceAccount), not both',
      });
    } else if (v.labels === undefined && v.namespace === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: pod ? ['namespace'] : ['labels'],
        message: pod
          ? 'a pod identity needs its namespace'
          : 'give labels or pod fields (podLabels, namespace, serviceAccount)',
      });
    }
  });
export type IdentityAllocateRequest = z.infer<typeof IdentityAllocateRequestSchema>;

export const IdentityAllocateReplySchema = z.object({
  id: identityNumber,
  /** The identity's label set, sorted by key, as `source:key=value`. */
  labels: z.array(z.string()),
  /** This request took a number nobody held before. */
  isNew: z.boolean(),
  /** A reserved identity (1-255): answered without allocation or reference. */
  reserved: z.boolean(),
});
export type IdentityAllocateReply = z.infer<typeof IdentityAllocateReplySchema>;

export const IdentityReleaseRequestSchema = z
  .object({
    node: nodeName,
    id: identityNumber.optional(),
    labels: labelList.optional(),
  })
  .superRefine((v, ctx) => {
    if ((v.id === undefined) === (v.labels === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['id'], message: 'give exactly one of id or labels' });
    }
  });
export type IdentityReleaseRequest = z.infer<typeof IdentityReleaseRequestSchema>;

export const IdentityReleaseReplySchema = z.object({
  id: identityNumber,
  /** False when the node held no reference (releasing twice is not an error). */
  released: z.boolean(),
});
export type IdentityReleaseReply = z.infer<typeof IdentityReleaseReplySchema>;

export const IdentityLookupRequestSchema = z
  .object({ id: identityNumber.optional(), labels: labelList.optional() })
  .superRefine((v, ctx) => {
    if ((v.id === undefined) === (v.labels === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['id'], message: 'give exactly one of id or labels' });
    }
  });
export type IdentityLookupRequest = z.infer<typeof IdentityLookupRequestSchema>;

/** One identity as lookup, list and `ciliate identity get` show it. */
export const IdentityInfoSchema = z.object({
  id: identityNumber,
  labels: z.array(z.string()),
  reserved: z.boolean(),
  /** Nodes with a live lease that reference it. */
  references: z.number().int().nonnegative(),
  nodes: z.array(z.string()),
  /** The garbage collector has marked it and frees it unless someone takes a reference. */
  releasing: z.boolean(),
});
export type IdentityInfo = z.infer<typeof IdentityInfoSchema>;

export const IdentityListRequestSchema = z.object({
  /** Only identities with a number above this (paging). */
  after: z.number().int().nonnegative().optional(),
  limit: z.number().int().min(1).max(5000).optional(),
  /** Include the reserved identities (1-10) first; default true on the first page. */
  reserved: z.boolean().optional(),
});
export type IdentityListRequest = z.infer<typeof IdentityListRequestSchema>;

export const IdentityListReplySchema = z.object({
  identities: z.array(IdentityInfoSchema),
  /** Pass as `after` for the next page; absent on the last page. */
  next: z.number().int().optional(),
  /** Allocated (bound) identities in total. */
  total: z.number().int().nonnegative(),
});
export type IdentityListReply = z.infer<typeof IdentityListReplySchema>;

export const IdentityHeartbeatRequestSchema = z.object({
  node: nodeName,
  /** Lease time; the service's --node-lease-ttl when absent. */
  ttlMs: z.number().int().min(1000).max(3_600_000).optional(),
});
export type IdentityHeartbeatRequest = z.infer<typeof IdentityHeartbeatRequestSchema>;

export const IdentityHeartbeatReplySchema = z.object({
  node: z.string(),
  /** Milliseconds since the epoch. */
  expiresAt: z.number().int(),
  /**
   * False when the node had no live lease: references it held before have expired with it and
   * must be taken again (allocate again for every identity it uses).
   */
  renewed: z.boolean(),
});
export type IdentityHeartbeatReply = z.infer<typeof IdentityHeartbeatReplySchema>;

/** The ipcache sources in rank order, weakest first: a claim overwrites only equal or weaker ones. */
export const IPCACHE_SOURCE_NAMES = [
  'unspec',
  'restored',
  'generated',
  'k8s',
  'custom-resource',
  'kvstore',
  'local',
  'kube-apiserver',
] as const;

/** The source of a node agent's claims for its own pods (the only one its subjects accept). */
export const IPCACHE_NODE_SOURCE = 'local' satisfies (typeof IPCACHE_SOURCE_NAMES)[number];

/**
 * Owner keys of ipcache claims (who claims a prefix): `pod/<ns>/<name>`, `node/<name>`,
 * `cidr/<policy>`. A pod's claims are keyed by the pod, not by its interface: a claimant that
 * rewrites them (an agent after restart, a sweep) finds them by this prefix.
 */
export const IPCACHE_POD_OWNER_PREFIX = 'pod/';

/** The owner key of a pod's ipcache claims. */
export function ipcachePodOwnerKey(namespace: string, pod: string): string {
  return `${IPCACHE_POD_OWNER_PREFIX}${namespace}/${pod}`;
}

/** An owner's claim on a prefix: an endpoint IP, a node IP, a CIDR. */
export const IpcacheClaimSchema = z.object({
  prefix: z.string().min(1),
  identity: identityNumber,
  hostIP: z.string().min(1).optional(),
  source: z.enum(IPCACHE_SOURCE_NAMES),
  /** Who claims it (see ipcachePodOwnerKey). */
  ownerKey: z.string().min(1),
  encryptKey: z.number().int().min(0).max(255).optional(),
});
export type IpcacheClaim = z.infer<typeof IpcacheClaimSchema>;

/**
 * The value of one key of the ipcache bucket: the effective entry (the strongest source's
 * claim; the latest among equals) at the top level, every claim in `claims`.
 */
export const IpcacheRecordSchema = IpcacheClaimSchema.extend({
  v: z.literal(1),
  claims: z.array(IpcacheClaimSchema),
});
export type IpcacheRecord = z.infer<typeof IpcacheRecordSchema>;

const address = z.string().min(1).max(L.addressLength, `at most ${L.addressLength} characters`);
const ownerKey = z.string().min(1).max(L.ownerKeyLength, `at most ${L.ownerKeyLength} characters`);

// The limits are on what a writer sends, not on stored records (IpcacheRecordSchema), which are
// read as they are.
export const IpcacheUpsertRequestSchema = IpcacheClaimSchema.extend({
  prefix: address,
  hostIP: address.optional(),
  ownerKey,
});
export const IpcacheDeleteRequestSchema = z.object({ prefix: address, ownerKey });
export type IpcacheDeleteRequest = z.infer<typeof IpcacheDeleteRequestSchema>;

export const IpcacheReplySchema = z.object({
  prefix: z.string(),
  /** What the prefix resolves to now; null when nobody claims it. */
  effective: IpcacheClaimSchema.nullable(),
  /** The effective entry changed. */
  changed: z.boolean(),
});
export type IpcacheReply = z.infer<typeof IpcacheReplySchema>;
