// Routes to other nodes' pod CIDRs in the node namespace, as @ciliate/datapath-core's
// planNodeRoutes decides them from the CiliumNode objects, and this node's address recorded on
// its own CiliumNode. Our routes carry their own protocol number, so the ones of nodes that went
// away are found and removed without touching anyone else's. What a CiliumNode says is admitted
// first (admitPeers): only pod CIDRs IPAM gave that node, via that node's own address, never a
// default route or anything of this node's; a refusal is logged once per change and counted.
import { CiliateError } from '@ciliate/contracts';
import {
  ROUTE_PROTOCOL,
  VXLAN_DEVICE,
  VXLAN_PORT,
  admitPeers,
  canonicalPrefix,
  planNodeRoutes,
  type CiliumNodeLike,
  type NodeRoute,
  type PeerNode,
  type RouteRefusal,
  type RoutingMode,
} from '@ciliate/datapath-core';
import { Reconciler, type Logger, type RuntimeMetrics } from '@ciliate/runtime';
import { Informer, type ResourceStore } from '@ciliate/store';

import type { RefusedCounter } from '../metrics.js';
import type { Netlink } from '../netlink/netlink.js';
import type { NodeCidrMap } from './assignments.js';

export interface NodeRoutesOptions {
  nl: Netlink;
  store: ResourceStore;
  /** This node's name and underlay address. */
  node: string;
  nodeIP: string;
  routing: RoutingMode;
  log: Logger;
  informerLog: Logger;
  metrics: Pick<RuntimeMetrics, 'informers' | 'controllers'>;
  /** Told the peers after every pass (the ipcache mirror's node entries follow them). */
  onPeers: (peers: PeerNode[]) => void;
  /** IPAM's node-cidrs document (IpamAssignments); `refresh` reads it anew. */
  assignments: { get(): NodeCidrMap; refresh(): Promise<void> };
  /** This node's pod CIDRs as IPAM answered them. */
  podCIDRs: () => readonly string[];
  refused: RefusedCounter;
}

/**
 * The `nodes` reconciler over the CiliumNode informer: each pass installs the routes of the
 * current peers, tells `onPeers`, and puts this node's address back on its CiliumNode when IPAM
 * (which writes the same object) dropped it.
 */
export class NodeRoutes {
  private readonly informer: Informer<'CiliumNode'>;
  private readonly loop: Reconciler;
  private admitted: PeerNode[] = [];
  /** Refusals of the last pass, `node field` -> `value reason`: each is logged once. */
  private refusals = new Map<string, string>();

  constructor(private readonly opts: NodeRoutesOptions) {
    this.informer = new Informer(opts.store, {
      kind: 'CiliumNode',
      resyncMs: 30_000,
      log: opts.informerLog,
      metrics: opts.metrics.informers,
    });
    this.loop = new Reconciler({
      name: 'nodes',
      log: opts.log,
      metrics: opts.metrics.controllers,
      coalesceMs: 0,
      reconcile: () => this.pass(),
    });
  }

  /** The peers as the last pass admitted them. */
  peers(): PeerNode[] {
    return this.admitted;
  }

  /** Resolves after the first pass. */
  async start(): Promise<void> {
    this.informer.on(() => {
      if (this.informer.synced) this.loop.trigger(0);
    });
    await this.informer.start();
    await recordNodeAddress(this.opts.store, this.opts.node, this.opts.nodeIP);
    this.loop.start();
    await this.loop.idle();
  }

  async stop(): Promise<void> {
    await this.informer.stop();
    await this.loop.close();
  }

  private async pass(): Promise<void> {
    const { nl, node, nodeIP, routing, store, assignments } = this.opts;
    const all = this.informer.list();
    // read after the CiliumNodes: IPAM records a node's CIDRs before it writes them there
    await assignments.refresh();
    const assigned = assignments.get();
    const admitted = admitPeers({
      nodes: all,
      self: {
        name: node,
        ip: nodeIP,
        podCIDRs: [...new Set([...(assigned.get(node) ?? []), ...this.opts.podCIDRs()])],
        networks: await nodeNetworks(nl),
      },
      assigned,
      nextHopOnLink: routing === 'native',
    });
    this.report(admitted.refused);
    this.admitted = admitted.peers;
    this.opts.onPeers(admitted.peers);
    await syncRoutes(nl, planNodeRoutes(admitted.peers, { name: node, ip: nodeIP }, routing));
    // IPAM writes the same object and may drop what we recorded: put it back
    const own = admitted.peers.find((p) => p.name === node);
    if (!own || own.ip !== nodeIP) await recordNodeAddress(store, node, nodeIP);
  }

  /** Logs and counts each refusal once, until it changes or goes away. */
  private report(refused: RouteRefusal[]): void {
    const next = new Map<string, string>();
    for (const r of refused) {
      const key = `${r.node}\u0000${r.field}`;
      const what = `${r.value}\u0000${r.reason}`;
      next.set(key, what);
      if (this.refusals.get(key) === what) continue;
      this.opts.refused.inc({ what: 'route', reason: r.reason });
      this.opts.log.warn(
        {
          event: 'routes.refused',
          node: r.node,
          field: r.field,
          value: r.value,
          reason: r.reason,
        },
        r.message,
      );
    }
    this.refusals = next;
  }
}

/**
 * Prefixes of the node namespace's own IPv4 addresses (loopback aside): its networks. IPv4 only,
 * as the routes are (and `-4` leaves out the pods' host veths, which have none).
 */
export async function nodeNetworks(nl: Netlink): Promise<string[]> {
  const links = JSON.parse(await nl.ip(['-j', '-4', 'addr', 'show'])) as {
    ifname?: string;
    addr_info?: { local?: string; prefixlen?: number; scope?: string }[];
  }[];
  const out: string[] = [];
  for (const l of links) {
    for (const a of l.addr_info ?? []) {
      if (a.scope === 'host' || !a.local || a.prefixlen === undefined) continue;
      out.push(`${a.local}/${a.prefixlen}`);
    }
  }
  return out;
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
  // -force: a line the kernel refuses must not keep the lines after it from being applied
  if (lines.length > 0) await nl.batch(lines, undefined, { force: true });
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
