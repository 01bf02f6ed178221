// The node's BPF ipcache as it should be: the cluster's ipcache bucket plus what this node knows
// about nodes (its own address is the host, other nodes' addresses are remote-node, and in VXLAN
// mode other nodes' pod CIDRs lead into the tunnel), and the writes that make the kernel's map
// equal to it.
import { RESERVED_IDENTITIES } from '@ciliate/contracts';
import { formatPrefix, parsePrefix, tryParseIp } from '@ciliate/netaddr';

export type RoutingMode = 'native' | 'vxlan';

/** The fields of an ipcache record the datapath uses. */
export interface IpcacheRecordView {
  prefix: string;
  identity: number;
  hostIP?: string | undefined;
  /** Every owner's claim (the record's `claims`). */
  claims?: { ownerKey: string; hostIP?: string | undefined; identity: number }[];
}

/** Another node as the resource store describes it. */
export interface PeerNode {
  name: string;
  /** Its underlay address (CiliumNode spec.addresses InternalIP). */
  ip?: string | undefined;
  /** Its pod CIDRs (CiliumNode spec.ipam.podCIDRs). */
  podCIDRs: string[];
}

/** An ipcache map value as the planner decides it (@ciliate/bpf's IpcacheValue fits). */
export interface IpcacheEntry {
  identity: number;
  /** Node to tunnel to in VXLAN mode; null routes natively. */
  tunnelEndpoint: string | null;
}

export interface DesiredIpcacheInput {
  records: Iterable<IpcacheRecordView>;
  nodeIP: string;
  routing: RoutingMode;
  peers: Iterable<PeerNode>;
}

export interface IpcacheChange {
  upserts: [string, IpcacheEntry][];
  deletes: string[];
}

/** "10.0.0.5" and "10.0.0.5/32" alike, as the map's keys read back; undefined if invalid. */
export function canonicalPrefix(prefix: string): string | undefined {
  const r = parsePrefix(prefix, { bareAddress: true });
  return r.ok ? formatPrefix(r.value) : undefined;
}

const isIPv4 = (text: string | undefined): boolean => tryParseIp(text ?? '')?.family === 4;

/**
 * What the BPF ipcache should hold. Node entries override records of the same prefix (a node
 * address is host or remote-node whatever else claims it); a remote pod CIDR is only a fallback
 * for pod addresses the bucket does not know yet.
 */
export function desiredIpcache(input: DesiredIpcacheInput): Map<string, IpcacheEntry> {
  const out = new Map<string, IpcacheEntry>();
  const vxlan = input.routing === 'vxlan';
  const peerIPs = new Set<string>();
  for (const p of input.peers) if (p.ip && p.ip !== input.nodeIP) peerIPs.add(p.ip);
  for (const r of input.records) {
    const prefix = canonicalPrefix(r.prefix);
    if (!prefix) continue;
    const remote = r.hostIP !== undefined && r.hostIP !== input.nodeIP;
    out.set(prefix, {
      identity: r.identity,
      tunnelEndpoint: vxlan && remote && isIPv4(r.hostIP) ? r.hostIP! : null,
    });
  }
  if (vxlan) {
    for (const p of input.peers) {
      if (!p.ip || p.ip === input.nodeIP || !isIPv4(p.ip)) continue;
      for (const cidr of p.podCIDRs) {
        const prefix = canonicalPrefix(cidr);
        if (prefix && !prefix.includes(':') && !out.has(prefix))
          out.set(prefix, { identity: RESERVED_IDENTITIES.world, tunnelEndpoint: p.ip });
      }
    }
  }
  for (const ip of peerIPs) {
    const prefix = canonicalPrefix(ip);
    if (prefix)
      out.set(prefix, { identity: RESERVED_IDENTITIES['remote-node'], tunnelEndpoint: null });
  }
  const self = canonicalPrefix(input.nodeIP);
  if (self) out.set(self, { identity: RESERVED_IDENTITIES.host, tunnelEndpoint: null });
  return out;
}

function sameEntry(a: IpcacheEntry, b: IpcacheEntry): boolean {
  return a.identity === b.identity && (a.tunnelEndpoint ?? null) === (b.tunnelEndpoint ?? null);
}

/** The writes that turn `current` into `desired`. */
export function diffIpcache(
  current: ReadonlyMap<string, IpcacheEntry>,
  desired: ReadonlyMap<string, IpcacheEntry>,
): IpcacheChange {
  const upserts: [string, IpcacheEntry][] = [];
  const deletes: string[] = [];
  for (const [k, v] of desired) {
    const cur = current.get(k);
    if (!cur || !sameEntry(cur, v)) upserts.push([k, v]);
  }
  for (const k of current.keys()) if (!desired.has(k)) deletes.push(k);
  return { upserts, deletes };
}
