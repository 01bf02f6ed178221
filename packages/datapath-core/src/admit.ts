// Which of another node's CiliumNode facts the datapath may turn into routes. A CiliumNode is
// written through the resource store, which more parties reach than IPAM, so a pod CIDR on it
// is believed only when IPAM gave that node that CIDR (its node-cidrs document), and never when
// it would take over traffic the node needs for itself: a default route, a prefix wide enough to
// act as one, the node's own pod CIDRs, or the node's own networks. The next hop is the node's
// own InternalIP, and only when it is an address a neighbour can have.
import {
  formatPrefix,
  parsePrefix,
  prefixContainsIp,
  prefixContainsPrefix,
  tryParseIp,
  type IpAddress,
  type IpPrefix,
} from '@ciliate/netaddr';

import type { PeerNode } from './ipcache.js';
import type { CiliumNodeLike } from './routes.js';

/** Why a route or its next hop was refused: the `reason` label of the refusal metric. */
export type RouteRefusalReason =
  | 'invalid_cidr'
  | 'default_route'
  | 'too_short'
  | 'overlaps_local'
  | 'covers_node_network'
  | 'not_assigned'
  | 'invalid_next_hop'
  | 'next_hop_is_local'
  | 'next_hop_in_pod_cidr'
  | 'next_hop_not_on_link';

export interface RouteRefusal {
  /** The CiliumNode's name. */
  node: string;
  /** The refused field: `spec.ipam.podCIDRs[1]`, `spec.addresses[0].ip`. */
  field: string;
  /** The field's value as text. */
  value: string;
  reason: RouteRefusalReason;
  message: string;
}

/**
 * The shortest prefix routed to another node, per family. A pod CIDR of one node is a /24 (v4)
 * or /120 (v6) by default and never needs more than a few bits beyond; anything shorter than a
 * /8 (v4) or /32 (v6, a whole provider allocation) is no node's pod range but a way around the
 * default-route refusal: 0.0.0.0/1 plus 128.0.0.0/1 (or ::/1 plus 8000::/1) take every packet
 * the default route would, and beat it by being longer. IPAM also refuses such node CIDRs, so
 * this bound only matters when its document itself is not to be trusted.
 */
export const MIN_ROUTED_PREFIX = { 4: 8, 6: 32 } as const;

export interface AdmitPeersInput {
  /** Every CiliumNode the store holds (this node's own is passed through untouched). */
  nodes: Iterable<CiliumNodeLike>;
  self: {
    name: string;
    /** This node's underlay address. */
    ip: string;
    /** This node's pod CIDRs. */
    podCIDRs: readonly string[];
    /** Prefixes of this node's own addresses (its underlay subnets and host addresses). */
    networks: readonly string[];
  };
  /** IPAM's node-cidrs document as node name -> its pod CIDRs. */
  assigned: ReadonlyMap<string, readonly string[]>;
  /**
   * Native routing: a `via` must be a neighbour on one of `self.networks` (the kernel refuses
   * an unreachable gateway, and one refused route would hold up the rest of the batch).
   */
  nextHopOnLink: boolean;
}

export interface AdmittedPeers {
  /** Every node, with only its admitted pod CIDRs and its address only when admitted. */
  peers: PeerNode[];
  refused: RouteRefusal[];
}

function parsePrefixes(texts: Iterable<string>): IpPrefix[] {
  const out: IpPrefix[] = [];
  for (const t of texts) {
    const r = parsePrefix(t, { bareAddress: true, clearHostBits: true });
    if (r.ok) out.push(r.value);
  }
  return out;
}

const overlaps = (a: IpPrefix, b: IpPrefix): boolean =>
  prefixContainsPrefix(a, b) || prefixContainsPrefix(b, a);

/** IPv4 ranges that are no neighbour's address: this network, loopback, multicast, reserved. */
const NOT_UNICAST_V4 = parsePrefixes(['0.0.0.0/8', '127.0.0.0/8', '224.0.0.0/4', '240.0.0.0/4']);

/** The CiliumNode's first IPv4 InternalIP (as peerOf reads it) and its index. */
function internalIp(
  cn: CiliumNodeLike,
): { ip: IpAddress; text: string; index: number } | undefined {
  const addresses = cn.spec?.addresses;
  if (!Array.isArray(addresses)) return undefined;
  for (let i = 0; i < addresses.length; i++) {
    const a = addresses[i] as { type?: unknown; ip?: unknown } | null | undefined;
    if (a?.type !== 'InternalIP' || typeof a.ip !== 'string') continue;
    const ip = tryParseIp(a.ip);
    if (ip?.family === 4) return { ip, text: a.ip, index: i };
  }
  return undefined;
}

/**
 * Splits every other node's pod CIDRs and next hop into what may be routed and what is refused
 * (each refusal naming the CiliumNode field and the reason). A refused CIDR takes nothing else
 * of its node with it: the node's other CIDRs and its address stand on their own.
 */
export function admitPeers(input: AdmitPeersInput): AdmittedPeers {
  const { self, assigned } = input;
  const selfIp = tryParseIp(self.ip);
  const selfPods = parsePrefixes(self.podCIDRs);
  const networks = parsePrefixes(self.networks);
  const onLink = networks.filter((n) => n.length < (n.family === 4 ? 32 : 128));
  const allPods = [...selfPods, ...parsePrefixes([...assigned.values()].flat())];
  const peers: PeerNode[] = [];
  const refused: RouteRefusal[] = [];

  for (const cn of input.nodes) {
    const name = cn.metadata.name ?? '';
    const hop = internalIp(cn);
    const rawCidrs: unknown = cn.spec?.ipam?.podCIDRs;
    const cidrs: unknown[] = Array.isArray(rawCidrs) ? rawCidrs : [];
    if (name === self.name) {
      peers.push({
        name,
        ip: hop?.text,
        podCIDRs: cidrs.filter((c): c is string => typeof c === 'string'),
      });
      continue;
    }
    const refuse = (field: string, value: string, reason: RouteRefusalReason, why: string) =>
      refused.push({
        node: name,
        field,
        value,
        reason,
        message: `CiliumNode ${name}: ${field}: ${JSON.stringify(value)}: ${why}`,
      });

    let ip: string | undefined;
    if (hop) {
      const field = `spec.addresses[${hop.index}].ip`;
      if (NOT_UNICAST_V4.some((p) => prefixContainsIp(p, hop.ip))) {
        refuse(field, hop.text, 'invalid_next_hop', 'is not a unicast address a node can have');
      } else if (selfIp && hop.ip.family === selfIp.family && hop.ip.value === selfIp.value) {
        refuse(field, hop.text, 'next_hop_is_local', "is this node's own address");
      } else if (allPods.some((p) => prefixContainsIp(p, hop.ip))) {
        refuse(field, hop.text, 'next_hop_in_pod_cidr', 'lies in a pod CIDR, not on the underlay');
      } else if (input.nextHopOnLink && !onLink.some((p) => prefixContainsIp(p, hop.ip))) {
        refuse(
          field,
          hop.text,
          'next_hop_not_on_link',
          `is on none of this node's networks (${onLink.length > 0 ? onLink.map(formatPrefix).join(', ') : 'none'}): native routing needs the node as a neighbour`,
        );
      } else {
        ip = hop.text;
      }
    }

    const mine = new Set(assigned.get(name) ?? []);
    const admitted: string[] = [];
    cidrs.forEach((value, i) => {
      const field = `spec.ipam.podCIDRs[${i}]`;
      const text = typeof value === 'string' ? value : String(JSON.stringify(value));
      const parsed = typeof value === 'string' ? parsePrefix(value) : undefined;
      if (!parsed?.ok) {
        refuse(field, text, 'invalid_cidr', parsed ? parsed.reason : 'must be a CIDR string');
        return;
      }
      const p = parsed.value;
      const canonical = formatPrefix(p);
      if (p.length === 0) {
        refuse(field, text, 'default_route', 'a default route is never taken from a CiliumNode');
      } else if (p.length < MIN_ROUTED_PREFIX[p.family]) {
        refuse(
          field,
          text,
          'too_short',
          `prefix length must be at least ${MIN_ROUTED_PREFIX[p.family]}: no node's pod CIDR is this wide`,
        );
      } else if (selfPods.some((own) => overlaps(own, p))) {
        refuse(
          field,
          text,
          'overlaps_local',
          `overlaps this node's pod CIDR (${self.podCIDRs.join(', ')})`,
        );
      } else if (
        networks.some((n) => overlaps(n, p)) ||
        (selfIp && prefixContainsIp(p, selfIp)) ||
        (hop && prefixContainsIp(p, hop.ip))
      ) {
        refuse(
          field,
          text,
          'covers_node_network',
          "overlaps this node's own networks or a node address: routing it would cut nodes off",
        );
      } else if (!mine.has(canonical)) {
        const given = [...mine];
        refuse(
          field,
          text,
          'not_assigned',
          `is not a pod CIDR IPAM gave node ${name} (IPAM's: ${given.length > 0 ? given.join(', ') : 'none'})`,
        );
      } else if (!admitted.includes(canonical)) {
        admitted.push(canonical);
      }
    });
    peers.push({ name, ip, podCIDRs: admitted });
  }
  return { peers, refused };
}
