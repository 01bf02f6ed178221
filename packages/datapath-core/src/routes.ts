// Other nodes as the datapath needs them (their pod CIDRs, written by IPAM on each CiliumNode,
// and their underlay addresses, written by each node's datapath) and the routes to their pod
// CIDRs that follow.
import { tryParseIp } from '@ciliate/netaddr';

import { canonicalPrefix, type PeerNode, type RoutingMode } from './ipcache.js';

/** rtnetlink protocol of the routes the datapath owns (any value 5-255 that nobody else uses). */
export const ROUTE_PROTOCOL = 193;

/** The collect_md VXLAN device of vxlan mode (Cilium's name). */
export const VXLAN_DEVICE = 'cilium_vxlan';
export const VXLAN_PORT = 8472;
/** Outer IPv4 + UDP + VXLAN + inner Ethernet. */
export const VXLAN_OVERHEAD = 50;

export interface CiliumNodeLike {
  /** A stored object always has its name; the schema allows generateName instead. */
  metadata: { name?: string | undefined; resourceVersion?: string | undefined };
  spec?: {
    addresses?: { type?: string; ip?: string }[];
    ipam?: { podCIDRs?: string[] };
    [k: string]: unknown;
  };
}

/** A CiliumNode as a peer: its first IPv4 InternalIP and its pod CIDRs. */
export function peerOf(cn: CiliumNodeLike): PeerNode {
  const ip = cn.spec?.addresses?.find(
    (a) => a.type === 'InternalIP' && tryParseIp(a.ip ?? '')?.family === 4,
  )?.ip;
  return { name: cn.metadata.name ?? '', ip, podCIDRs: cn.spec?.ipam?.podCIDRs ?? [] };
}

export interface NodeRoute {
  /** Canonical destination CIDR. */
  dst: string;
  via?: string;
  dev?: string;
}

/** Routes to every other node's IPv4 pod CIDRs: via its address, or into the tunnel. */
export function planNodeRoutes(
  peers: Iterable<PeerNode>,
  self: { name: string; ip: string },
  routing: RoutingMode,
): NodeRoute[] {
  const out = new Map<string, NodeRoute>();
  for (const p of peers) {
    if (p.name === self.name || !p.ip || p.ip === self.ip) continue;
    if (tryParseIp(p.ip)?.family !== 4) continue;
    for (const cidr of p.podCIDRs) {
      const dst = canonicalPrefix(cidr);
      if (!dst || dst.includes(':') || out.has(dst)) continue;
      out.set(dst, routing === 'vxlan' ? { dst, dev: VXLAN_DEVICE } : { dst, via: p.ip });
    }
  }
  return [...out.values()].sort((a, b) => a.dst.localeCompare(b.dst));
}
