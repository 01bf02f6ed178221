// Other nodes as the datapath needs them: their pod CIDRs (written by IPAM on each CiliumNode)
// and underlay addresses (written by each node's datapath service on its own CiliumNode), turned
// into routes in the node namespace. Our routes carry their own protocol number, so the ones of
// nodes that went away are found and removed without touching anyone else's.
import { isIP } from 'node:net';

import { CiliateError } from '@ciliate/contracts';
import type { ResourceStore } from '@ciliate/store';

import type { Netlink } from '../netlink/netlink.js';
import { canonicalPrefix, type PeerNode, type RoutingMode } from '../ipcache/mirror.js';

/** rtnetlink protocol of the routes this service owns (any value 5-255 that nobody else uses). */
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
  const ip = cn.spec?.addresses?.find((a) => a.type === 'InternalIP' && isIP(a.ip ?? '') === 4)?.ip;
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
    if (p.name === self.name || !p.ip || p.ip === self.ip || isIP(p.ip) !== 4) continue;
    for (const cidr of p.podCIDRs) {
      const dst = canonicalPrefix(cidr);
      if (!dst || dst.includes(':') || out.has(dst)) continue;
      out.set(dst, routing === 'vxlan' ? { dst, dev: VXLAN_DEVICE } : { dst, via: p.ip });
    }
  }
  return [...out.values()].sort((a, b) => a.dst.localeCompare(b.dst));
}

function routeArgs(r: NodeRoute): string[] {
  return [
    r.dst,
    ...(r.via ? ['via', r.via] : []),
    ...(r.dev ? ['dev', r.dev] : []),
    'proto',
    String(ROUTE_PROTOCOL),
  ];
}

/** Makes the node namespace's routes of our protocol equal to `want`. */
export async function syncRoutes(nl: Netlink, want: NodeRoute[]): Promise<{ changed: number }> {
  const raw = JSON.parse(
    await nl.ip(['-j', '-4', 'route', 'show', 'proto', String(ROUTE_PROTOCOL)]),
  ) as { dst: string; gateway?: string; dev?: string }[];
  const have = new Map(raw.map((r) => [canonicalPrefix(r.dst) ?? r.dst, r]));
  const lines: string[][] = [];
  for (const r of want) {
    const h = have.get(r.dst);
    const same = h && (r.via ? h.gateway === r.via : !h.gateway) && (!r.dev || h.dev === r.dev);
    if (!same) lines.push(['route', 'replace', ...routeArgs(r)]);
  }
  const wanted = new Set(want.map((r) => r.dst));
  for (const [dst] of have)
    if (!wanted.has(dst)) lines.push(['route', 'del', dst, 'proto', String(ROUTE_PROTOCOL)]);
  if (lines.length > 0) await nl.batch(lines);
  return { changed: lines.length };
}

/** Creates the collect_md VXLAN device unless it is there; returns its ifindex. */
export async function ensureVxlanDevice(nl: Netlink): Promise<number> {
  let link = await nl.link(VXLAN_DEVICE);
  if (!link) {
    await nl.ip([
      'link',
      'add',
      VXLAN_DEVICE,
      'type',
      'vxlan',
      'external',
      'dstport',
      String(VXLAN_PORT),
    ]);
    // routed into for remote pod CIDRs: no ARP, the overlay program adds the tunnel metadata
    await nl.ip(['link', 'set', VXLAN_DEVICE, 'arp', 'off', 'up']);
    link = await nl.link(VXLAN_DEVICE);
  } else if (link.operstate === 'DOWN') {
    await nl.ip(['link', 'set', VXLAN_DEVICE, 'arp', 'off', 'up']);
  }
  if (!link) throw new Error(`${VXLAN_DEVICE} vanished after it was created`);
  return link.ifindex;
}

/** The first IPv4 address of a device in the node namespace. */
export async function deviceIPv4(nl: Netlink, dev: string): Promise<string | undefined> {
  const out = JSON.parse(await nl.ip(['-j', '-4', 'addr', 'show', 'dev', dev])) as {
    addr_info?: { local?: string; scope?: string }[];
  }[];
  return out[0]?.addr_info?.find((a) => a.scope !== 'host' && a.local)?.local;
}

/**
 * Records `ip` as the node's InternalIP on its CiliumNode, keeping everything else (IPAM writes
 * the same object): compare-and-set on the revision read, retried on conflict.
 */
export async function recordNodeAddress(
  store: ResourceStore,
  node: string,
  ip: string,
): Promise<boolean> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const cur = await store.get({ kind: 'CiliumNode', namespace: '', name: node });
    const obj = cur?.object as CiliumNodeLike | undefined;
    const addresses = obj?.spec?.addresses ?? [];
    if (addresses.some((a) => a.type === 'InternalIP' && a.ip === ip)) return false;
    const spec = {
      ...(obj?.spec ?? {}),
      addresses: [...addresses.filter((a) => a.type !== 'InternalIP'), { type: 'InternalIP', ip }],
    };
    const meta = { ...(obj?.metadata ?? {}), name: node } as Record<string, unknown>;
    delete meta.resourceVersion;
    try {
      await store.apply(
        { apiVersion: 'cilium.io/v2', kind: 'CiliumNode', metadata: meta, spec },
        { source: 'datapath', expectRevision: cur?.revision ?? 0 },
      );
      return true;
    } catch (err) {
      if (err instanceof CiliateError && err.code === 'conflict') continue;
      throw err;
    }
  }
  throw new CiliateError('conflict', `CiliumNode ${node}: gave up recording spec.addresses`);
}
