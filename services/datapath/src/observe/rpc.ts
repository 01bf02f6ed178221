// The datapath service's node-scoped request/reply endpoints (`ciliate.v1.datapath.node.<node>.
// endpoint-list|ipcache-list|ct-list`): what `ciliate endpoint list`, `ciliate bpf ipcache list`
// and `ciliate bpf ct list` show. The conversions from map entries and endpoint records to the
// wire are pure and exported; the endpoints only read the maps.
import { isIP } from 'node:net';

import {
  CtFlags,
  TupleFlags,
  monotonicSeconds,
  type Ct4Key,
  type CtEntry,
  type IpcacheKey,
  type IpcacheValue,
} from '@ciliate/bpf';
import {
  BpfCtListReplySchema,
  BpfCtListRequestSchema,
  BpfIpcacheListReplySchema,
  BpfIpcacheListRequestSchema,
  EndpointListReplySchema,
  EndpointListRequestSchema,
  datapathEndpoints,
  datapathSubjects,
  type BpfCtEntry,
  type BpfCtListReply,
  type BpfIpcacheEntry,
  type EndpointInfo,
} from '@ciliate/contracts';
import type { EndpointDefinition } from '@ciliate/runtime';
import type { z } from 'zod';

import type { EndpointState } from '../endpoints/manager.js';
import { protoName, tcpFlagNames } from '../events/packet-text.js';

// ---- endpoints -------------------------------------------------------------------------------

/** The fields of an endpoint record the listing needs. */
export type EndpointRecord = Pick<
  EndpointState,
  | 'containerId'
  | 'ifname'
  | 'owner'
  | 'labels'
  | 'ip'
  | 'hostIfname'
  | 'hostIfindex'
  | 'mac'
  | 'endpointId'
  | 'identity'
>;

/** `{ "k8s:app": "web" }` -> `["k8s:app=web"]`, sorted. */
export function labelList(labels: Readonly<Record<string, string>>): string[] {
  return Object.entries(labels)
    .map(([k, v]) => (v === '' ? k : `${k}=${v}`))
    .sort();
}

/**
 * One recorded endpoint as `ciliate endpoint list` shows it. A record exists only once its
 * wiring is complete, so its state is `ready` unless the caller knows better (restoring,
 * disconnecting). A container a plain runtime created (no Kubernetes arguments: the owner is
 * named after the container in namespace `cni`) has no pod.
 */
export function endpointInfoFromRecord(
  r: EndpointRecord,
  opts: { node: string; state?: EndpointInfo['state']; labels?: readonly string[] },
): EndpointInfo {
  const plain = r.owner.namespace === 'cni' && r.owner.pod === r.containerId;
  const family = isIP(r.ip);
  return {
    id: r.endpointId,
    node: opts.node,
    ...(plain ? {} : { namespace: r.owner.namespace, pod: r.owner.pod }),
    containerID: r.containerId,
    ifname: r.ifname,
    interface: r.hostIfname,
    ifindex: r.hostIfindex,
    mac: r.mac,
    ...(family === 4 ? { ipv4: r.ip } : family === 6 ? { ipv6: r.ip } : {}),
    identity: r.identity,
    labels: opts.labels ? [...opts.labels].sort() : labelList(r.labels),
    state: opts.state ?? 'ready',
  };
}

/** Every record as EndpointInfo, by endpoint id. */
export function endpointInfos(records: Iterable<EndpointRecord>, node: string): EndpointInfo[] {
  return [...records].map((r) => endpointInfoFromRecord(r, { node })).sort((a, b) => a.id - b.id);
}

// ---- ipcache -----------------------------------------------------------------------------------

export function ipcacheEntryToWire(key: IpcacheKey, value: IpcacheValue): BpfIpcacheEntry {
  return { prefix: key.prefix, identity: value.identity, tunnelEndpoint: value.tunnelEndpoint };
}

function ipv4Number(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

/** Orders prefixes by address, IPv4 before IPv6, then by length. */
export function comparePrefixes(a: string, b: string): number {
  const [aa = '', al = '0'] = a.split('/');
  const [ba = '', bl = '0'] = b.split('/');
  const an = ipv4Number(aa);
  const bn = ipv4Number(ba);
  if (an !== undefined && bn !== undefined && an !== bn) return an - bn;
  if (an !== undefined && bn === undefined) return -1;
  if (an === undefined && bn !== undefined) return 1;
  if (an === undefined && aa !== ba) return aa < ba ? -1 : 1;
  return Number(al) - Number(bl);
}

export function ipcacheListToWire(
  entries: Iterable<readonly [IpcacheKey, IpcacheValue]>,
): BpfIpcacheEntry[] {
  return [...entries]
    .map(([k, v]) => ipcacheEntryToWire(k, v))
    .sort((a, b) => comparePrefixes(a.prefix, b.prefix));
}

// ---- conntrack ---------------------------------------------------------------------------------

const CT_STATE_FLAGS: readonly (readonly [number, string])[] = [
  [CtFlags.SEEN_NON_SYN, 'SeenNonSyn'],
  [CtFlags.SEEN_REPLY, 'SeenReply'],
  [CtFlags.TX_CLOSING, 'TxClosing'],
  [CtFlags.RX_CLOSING, 'RxClosing'],
  [CtFlags.VIA_STACK, 'ViaStack'],
];

/** TCP flags seen in either direction, then the entry's state flags (`SYN ACK SeenNonSyn`). */
export function ctFlagsText(
  entry: Pick<CtEntry, 'flags' | 'txFlagsSeen' | 'rxFlagsSeen'>,
  proto: number,
): string {
  const tcp = proto === 6 ? tcpFlagNames(entry.txFlagsSeen | entry.rxFlagsSeen) : [];
  const state = CT_STATE_FLAGS.filter(([bit]) => (entry.flags & bit) !== 0).map(([, n]) => n);
  return [...tcp, ...state].join(' ');
}

/**
 * One conntrack entry on the wire. The tuple is the one the programs stored (the packet that
 * created the entry, seen leaving (`out`) or entering (`in`) an endpoint); tx counts that
 * direction, rx its replies, as Cilium counts them.
 */
export function ctEntryToWire(key: Ct4Key, entry: CtEntry, nowSeconds: number): BpfCtEntry {
  return {
    proto: protoName(key.nexthdr),
    src: key.saddr,
    sport: key.sport,
    dst: key.daddr,
    dport: key.dport,
    direction: (key.flags & TupleFlags.IN) !== 0 ? 'in' : 'out',
    expiresIn: entry.lifetime - Math.floor(nowSeconds),
    rxPackets: Number(entry.packetsRev),
    rxBytes: Number(entry.bytesRev),
    txPackets: Number(entry.packetsFwd),
    txBytes: Number(entry.bytesFwd),
    flags: ctFlagsText(entry, key.nexthdr),
    srcIdentity: entry.srcIdentity,
    revNat: entry.revNatIndex,
  };
}

function compareCt(a: BpfCtEntry, b: BpfCtEntry): number {
  return (
    comparePrefixes(a.src, b.src) ||
    comparePrefixes(a.dst, b.dst) ||
    a.proto.localeCompare(b.proto) ||
    a.sport - b.sport ||
    a.dport - b.dport ||
    a.direction.localeCompare(b.direction)
  );
}

export const DEFAULT_CT_LIMIT = 1000;

/** At most `limit` entries, ordered by address; reads one entry past the limit to know whether
 * there are more, and never more than that. */
export function ctListToWire(
  entries: Iterable<readonly [Ct4Key, CtEntry]>,
  opts: { nowSeconds: number; limit?: number },
): Pick<BpfCtListReply, 'entries' | 'truncated'> {
  const limit = opts.limit ?? DEFAULT_CT_LIMIT;
  const out: BpfCtEntry[] = [];
  let truncated = false;
  for (const [k, v] of entries) {
    if (out.length >= limit) {
      truncated = true;
      break;
    }
    out.push(ctEntryToWire(k, v, opts.nowSeconds));
  }
  return { entries: out.sort(compareCt), truncated };
}

// ---- the endpoints ---------------------------------------------------------------------------

/** Adds request/reply endpoints to a micro service (a service's ServiceContext is one). */
export interface EndpointRegistrar {
  endpoint<Req extends z.ZodType, Res extends z.ZodType>(def: EndpointDefinition<Req, Res>): void;
}

/** The maps the endpoints read (a Datapath has them). */
export interface DatapathMaps {
  ipcache: { entries(): Iterable<[IpcacheKey, IpcacheValue]> };
  ct4: { entries(): Iterable<[Ct4Key, CtEntry]> };
}

export interface DatapathEndpointsOptions {
  node: string;
  datapath: DatapathMaps;
  /** The node's endpoints now (see endpointInfos). */
  endpoints: () => EndpointInfo[] | Promise<EndpointInfo[]>;
  /** CLOCK_MONOTONIC seconds, the clock of conntrack lifetimes (tests). */
  monotonicNow?: () => number;
}

/** Registers endpoint-list, ipcache-list and ct-list on this node's subjects. */
export function addDatapathEndpoints(
  target: EndpointRegistrar,
  opts: DatapathEndpointsOptions,
): void {
  const { node, datapath } = opts;
  const clock = opts.monotonicNow ?? monotonicSeconds;
  target.endpoint({
    name: datapathEndpoints.endpointList,
    subject: datapathSubjects.endpoint(node, datapathEndpoints.endpointList),
    request: EndpointListRequestSchema,
    reply: EndpointListReplySchema,
    handler: async () => ({ node, endpoints: await opts.endpoints() }),
  });
  target.endpoint({
    name: datapathEndpoints.ipcacheList,
    subject: datapathSubjects.endpoint(node, datapathEndpoints.ipcacheList),
    request: BpfIpcacheListRequestSchema,
    reply: BpfIpcacheListReplySchema,
    handler: () => ({ node, entries: ipcacheListToWire(datapath.ipcache.entries()) }),
  });
  target.endpoint({
    name: datapathEndpoints.ctList,
    subject: datapathSubjects.endpoint(node, datapathEndpoints.ctList),
    request: BpfCtListRequestSchema,
    reply: BpfCtListReplySchema,
    handler: (req) => ({
      node,
      ...ctListToWire(datapath.ct4.entries(), {
        nowSeconds: clock(),
        ...(req.limit !== undefined ? { limit: req.limit } : {}),
      }),
    }),
  });
}
