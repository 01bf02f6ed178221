// The datapath service's wire. One instance runs per node, so its request/reply endpoints are
// node-scoped (`ciliate.v1.datapath.node.<node>.<endpoint>`): a caller asks one node, or finds
// every node through $SRV.INFO (metadata `ciliate.node`) and asks each. Events from the eBPF ring
// buffer are published per node and type (`ciliate.v1.datapath.events.<type>.<node>`), so
// `nats sub 'ciliate.v1.datapath.events.drop.>'` taps every node's drops.
import { z } from 'zod';

import { NodeNameSchema, nodeToken } from './nodes.js';
import { subjects } from './subjects.js';
import { token } from './tokens.js';
import { PROJECT, WIRE_VERSION } from './version.js';

export const DATAPATH_COMPONENT = 'datapath';

export const datapathEndpoints = {
  /** Local endpoints, as `ciliate endpoint list` shows them. */
  endpointList: 'endpoint-list',
  /** The node's BPF ipcache map. */
  ipcacheList: 'ipcache-list',
  /** The node's conntrack map. */
  ctList: 'ct-list',
} as const;
export type DatapathEndpoint = (typeof datapathEndpoints)[keyof typeof datapathEndpoints];

export const DATAPATH_EVENT_TYPES = ['drop', 'trace'] as const;
export type DatapathEventType = (typeof DATAPATH_EVENT_TYPES)[number];

const ROOT = `${PROJECT}.${WIRE_VERSION}.${DATAPATH_COMPONENT}`;

export const datapathSubjects = {
  /** A request/reply endpoint of one node's datapath service. */
  endpoint(node: string, endpoint: DatapathEndpoint): string {
    return subjects.nodeEndpoint(DATAPATH_COMPONENT, node, endpoint);
  },
  /** Events of one type from one node. */
  event(type: DatapathEventType, node: string): string {
    return `${ROOT}.events.${token('event', type)}.${token('node', nodeToken(node))}`;
  },
  /** Subscription filter: every event, or one type, or one node. */
  events(filter: { type?: DatapathEventType; node?: string } = {}): string {
    const type = filter.type ? token('event', filter.type) : '*';
    const node = filter.node ? token('node', nodeToken(filter.node)) : '*';
    return `${ROOT}.events.${type}.${node}`;
  },
} as const;

const nodeName = NodeNameSchema;

/** Cilium's endpoint states (the subset a CNI-driven endpoint passes through). */
export const ENDPOINT_STATES = [
  'waiting-for-identity',
  'regenerating',
  'ready',
  'disconnecting',
  'restoring',
] as const;

export const EndpointInfoSchema = z.object({
  /** Endpoint id (the endpoints map's value, unique per node). */
  id: z.number().int().min(1).max(0xffff),
  node: nodeName,
  /** Pod namespace and name; absent for a container a plain runtime created. */
  namespace: z.string().optional(),
  pod: z.string().optional(),
  containerID: z.string().min(1),
  ifname: z.string().min(1),
  /** The host-side veth and its ifindex (in the node's netns). */
  interface: z.string().min(1),
  ifindex: z.number().int().min(1),
  mac: z.string(),
  ipv4: z.string().optional(),
  ipv6: z.string().optional(),
  identity: z.number().int().min(0),
  /** The identity's labels (`k8s:app=web`). */
  labels: z.array(z.string()),
  state: z.enum(ENDPOINT_STATES),
});
export type EndpointInfo = z.infer<typeof EndpointInfoSchema>;

export const EndpointListRequestSchema = z.strictObject({});
export const EndpointListReplySchema = z.object({
  node: nodeName,
  endpoints: z.array(EndpointInfoSchema),
});
export type EndpointListReply = z.infer<typeof EndpointListReplySchema>;

export const BpfIpcacheEntrySchema = z.object({
  /** `10.0.1.5/32` */
  prefix: z.string(),
  identity: z.number().int().min(0),
  /** Underlay address of the node hosting the prefix; null for local or non-tunnelled. */
  tunnelEndpoint: z.string().nullable(),
});
export const BpfIpcacheListRequestSchema = z.strictObject({});
export const BpfIpcacheListReplySchema = z.object({
  node: nodeName,
  entries: z.array(BpfIpcacheEntrySchema),
});
export type BpfIpcacheEntry = z.infer<typeof BpfIpcacheEntrySchema>;
export type BpfIpcacheListReply = z.infer<typeof BpfIpcacheListReplySchema>;

export const BpfCtEntrySchema = z.object({
  /** `TCP`, `UDP`, `ICMP` or the protocol number. */
  proto: z.string(),
  /** Addresses and ports as the tuple is stored (Cilium keys reverse entries swapped). */
  src: z.string(),
  sport: z.number().int().min(0).max(65535),
  dst: z.string(),
  dport: z.number().int().min(0).max(65535),
  /** `out` (created leaving a pod / the node) or `in`. */
  direction: z.enum(['in', 'out']),
  /** Seconds until the entry expires (negative: expired, not yet reclaimed). */
  expiresIn: z.number().int(),
  rxPackets: z.number().int().min(0),
  rxBytes: z.number().int().min(0),
  txPackets: z.number().int().min(0),
  txBytes: z.number().int().min(0),
  /** TCP flags seen in either direction, then the entry's state flags as Cilium names them
   * (`SYN ACK FIN SeenNonSyn TxClosing`); empty when none. */
  flags: z.string(),
  srcIdentity: z.number().int().min(0),
  /** Reverse-NAT index (0 until service load balancing exists). */
  revNat: z.number().int().min(0),
});
export const BpfCtListRequestSchema = z.strictObject({
  /** At most this many entries (default 1000). */
  limit: z.number().int().min(1).max(1_000_000).optional(),
});
export const BpfCtListReplySchema = z.object({
  node: nodeName,
  entries: z.array(BpfCtEntrySchema),
  /** More entries exist than were returned. */
  truncated: z.boolean(),
});
export type BpfCtEntry = z.infer<typeof BpfCtEntrySchema>;
export type BpfCtListReply = z.infer<typeof BpfCtListReplySchema>;

/**
 * One event of the datapath's ring buffer, published as it is read. Drop reasons are Cilium's
 * codes and names (`reason: 133, reasonName: "Policy denied"`); trace observation points are
 * Cilium's (`to-endpoint`, `from-endpoint`, `to-stack`, `to-overlay`, `from-overlay`, ...).
 */
export const DatapathEventSchema = z.object({
  type: z.enum(DATAPATH_EVENT_TYPES),
  node: nodeName,
  /** RFC 3339 with nanoseconds where known. */
  time: z.string(),
  /** Drop: reason code and name; trace: observation point. */
  reason: z.number().int().min(0).optional(),
  reasonName: z.string().optional(),
  observationPoint: z.string().optional(),
  /** Trace: the conntrack state the packet matched (`new`, `established`, `reply`). */
  state: z.string().optional(),
  /** Drop: where in the programs it was decided (`bpf_lxc.c`, line). */
  file: z.string().optional(),
  line: z.number().int().min(0).optional(),
  endpointId: z.number().int().min(0),
  ifindex: z.number().int().min(0),
  srcIdentity: z.number().int().min(0),
  dstIdentity: z.number().int().min(0),
  /** IPv4 tuple when the packet had one. */
  proto: z.string().optional(),
  src: z.string().optional(),
  sport: z.number().int().min(0).max(65535).optional(),
  dst: z.string().optional(),
  dport: z.number().int().min(0).max(65535).optional(),
  /** Original packet length. */
  length: z.number().int().min(0),
  /** Packet summary (`TCP SYN`, `ICMP echo-request`) where decodable. */
  summary: z.string().optional(),
});
export type DatapathEvent = z.infer<typeof DatapathEventSchema>;
