// Node pod CIDRs and pod IP allocations on JetStream KV.
//
// Layout (bucket buckets.ipam()):
//   node-cidrs     one NodeCidrState for the cluster (written when a node joins or leaves)
//   pods.<node>    one NodePodIpsState per node (both families), the hot path
// Every write is a compare-and-set on the revision read, so any number of replicas may serve
// requests: two replicas can never both hand out one address, because only one of two writes
// based on the same revision lands; the other re-reads and recomputes. A per-node document keeps
// the write small and spreads contention over nodes; each replica keeps the last copy it read
// or wrote and re-reads only after a conflict, and batches concurrent requests for one node into
// one write (see KvDocument).
import { ipamKeys, type IpFamilyName } from '@ciliate/contracts';
import { KvDocument } from '@ciliate/runtime';
import type { KV } from '@nats-io/kv';

import {
  IpamError,
  isIpamError,
  allocateNodeCidrs,
  allocateNodePodIps,
  checkNodeCidrState,
  createNodePodIps,
  emptyNodeCidrState,
  listPodIps,
  lookupNodeCidrs,
  lookupPodIp,
  decodeNodePodIps,
  podPoolUsage,
  releaseNodeCidrs,
  releaseNodePodIps,
  restoreNodeCidrs,
  setKubernetesNodeCidrs,
  ROUTER_OWNER,
  type ClusterPoolConfig,
  type NodeCidrIssue,
  type NodeCidrState,
  type NodeCidrs,
  type NodePodIpsState,
  type PodPoolState,
} from '@ciliate/ipam-core';

export type IpamMode = 'cluster-pool' | 'kubernetes';

export interface AllocatorOptions {
  kv: KV;
  mode: IpamMode;
  /** The cluster pool (cluster-pool mode) or the enabled families (kubernetes mode). */
  pool: ClusterPoolConfig;
  onConflict?: () => void;
}

export class NodeCidrAllocator {
  readonly doc: KvDocument<NodeCidrState>;
  private lastIssues: readonly NodeCidrIssue[] = [];

  constructor(private readonly opts: AllocatorOptions) {
    const config = opts.mode === 'cluster-pool' ? opts.pool : undefined;
    this.doc = new KvDocument<NodeCidrState>({
      kv: opts.kv,
      key: ipamKeys.nodeCidrs,
      decode: (v) => {
        const { state, issues } = checkNodeCidrState(v, config);
        this.lastIssues = issues;
        return state;
      },
      what: 'IPAM state',
      passThrough: isIpamError,
      ...(opts.onConflict ? { onConflict: opts.onConflict } : {}),
    });
  }

  get mode(): IpamMode {
    return this.opts.mode;
  }

  get issues(): readonly NodeCidrIssue[] {
    return this.lastIssues;
  }

  private get config(): ClusterPoolConfig | undefined {
    return this.opts.mode === 'cluster-pool' ? this.opts.pool : undefined;
  }

  /**
   * The node's CIDRs. In cluster-pool mode they are carved when missing; in kubernetes mode
   * `podCIDRs` (the Node's spec.podCIDRs, when known) are recorded, else NO_CIDR is thrown.
   */
  async cidrsFor(
    node: string,
    podCIDRs?: readonly string[],
  ): Promise<{ cidrs: NodeCidrs; created: boolean }> {
    const cached = this.doc.last?.state;
    if (cached !== undefined) {
      const known = lookupNodeCidrs(cached, node, this.config);
      if (known !== undefined && this.complete(known)) return { cidrs: known, created: false };
    }
    if (this.opts.mode === 'cluster-pool') {
      const pool = this.opts.pool;
      return this.doc.apply((cur) => {
        const r = allocateNodeCidrs(cur ?? emptyNodeCidrState(), pool, node);
        return { next: r.state, result: { cidrs: r.cidrs, created: r.created } };
      });
    }
    if (podCIDRs !== undefined && podCIDRs.length > 0) return this.setKubernetes(node, podCIDRs);
    const fresh = await this.doc.read();
    const known = fresh.state ? lookupNodeCidrs(fresh.state, node) : undefined;
    if (known === undefined) {
      throw new IpamError(
        'NO_CIDR',
        `node ${node} has no pod CIDR yet (kubernetes mode: Node.spec.podCIDRs is not set or the Node is unknown)`,
        { details: { node } },
      );
    }
    return { cidrs: known, created: false };
  }

  private complete(c: NodeCidrs): boolean {
    if (this.opts.mode === 'kubernetes') return true;
    return (
      (this.opts.pool.ipv4 === undefined || c.ipv4 !== undefined) &&
      (this.opts.pool.ipv6 === undefined || c.ipv6 !== undefined)
    );
  }

  /** kubernetes mode: records Node.spec.podCIDRs (an empty list forgets them). */
  setKubernetes(
    node: string,
    podCIDRs: readonly string[],
  ): Promise<{ cidrs: NodeCidrs; created: boolean }> {
    return this.doc.apply((cur) => {
      const r = setKubernetesNodeCidrs(cur ?? emptyNodeCidrState(), node, podCIDRs);
      return { next: r.state, result: { cidrs: r.cidrs, created: r.created } };
    });
  }

  /** cluster-pool mode: takes CIDRs found on CiliumNodes (a lost or older state) back. */
  restore(entries: ReadonlyArray<{ node: string; podCIDRs: readonly string[] }>): Promise<number> {
    const pool = this.opts.pool;
    return this.doc.apply((cur) => {
      const base = cur ?? emptyNodeCidrState();
      const r = restoreNodeCidrs(base, pool, entries);
      return { next: r.state, result: r.state.nodes.length - base.nodes.length };
    });
  }

  release(node: string): Promise<NodeCidrs | null> {
    const config = this.config;
    return this.doc.apply((cur) => {
      if (cur === undefined) return { next: cur, result: null };
      const r = releaseNodeCidrs(cur, node, config);
      return { next: r.state, result: r.released };
    });
  }

  async read(): Promise<NodeCidrState> {
    return (await this.doc.read()).state ?? emptyNodeCidrState();
  }
}

/** Thrown inside a document operation when the node's document does not exist yet. */
class NeedsCidrs extends Error {}
const NEEDS_CIDRS = new NeedsCidrs('the node has no pod IP document yet');

export interface PodAllocation {
  ips: { ipv4?: string; ipv6?: string };
  cidrs: { ipv4?: string; ipv6?: string };
  /** The router address of each pod CIDR: the pods' default gateway. */
  gateways: { ipv4?: string; ipv6?: string };
  created: boolean;
}

export class PodIpAllocator {
  private readonly docs = new Map<string, KvDocument<NodePodIpsState>>();

  constructor(
    private readonly opts: AllocatorOptions,
    private readonly nodes: NodeCidrAllocator,
  ) {}

  doc(node: string): KvDocument<NodePodIpsState> {
    let d = this.docs.get(node);
    if (d === undefined) {
      d = new KvDocument<NodePodIpsState>({
        kv: this.opts.kv,
        key: ipamKeys.podIps(node),
        decode: decodeNodePodIps,
        what: 'IPAM state',
        passThrough: isIpamError,
        ...(this.opts.onConflict ? { onConflict: this.opts.onConflict } : {}),
      });
      this.docs.set(node, d);
    }
    return d;
  }

  async allocate(
    node: string,
    owner: string,
    family?: IpFamilyName,
    podCIDRs?: readonly string[],
  ): Promise<PodAllocation> {
    const doc = this.doc(node);
    let cidrs: NodeCidrs | undefined;
    for (;;) {
      try {
        return await doc.apply((cur) => {
          let state = cur;
          if (state === undefined) {
            if (cidrs === undefined) throw NEEDS_CIDRS;
            state = createNodePodIps(cidrs);
          }
          const r = allocateNodePodIps(state, owner, family ? [family] : undefined);
          const out: PodAllocation = {
            ips: r.ips,
            cidrs: {
              ...(state.ipv4 ? { ipv4: state.ipv4.cidr } : {}),
              ...(state.ipv6 ? { ipv6: state.ipv6.cidr } : {}),
            },
            gateways: gatewaysOf(r.state),
            created: r.created,
          };
          return { next: r.state, result: out };
        });
      } catch (err) {
        if (err !== NEEDS_CIDRS || cidrs !== undefined) throw err;
        cidrs = (await this.nodes.cidrsFor(node, podCIDRs)).cidrs;
      }
    }
  }

  release(node: string, owner: string): Promise<{ ipv4?: string; ipv6?: string }> {
    return this.doc(node).apply((cur) => {
      if (cur === undefined) return { next: cur, result: {} };
      const r = releaseNodePodIps(cur, owner);
      return { next: r.state, result: r.released };
    });
  }

  /** Removes a node's whole document (the node is gone and its CIDR released). */
  async drop(node: string): Promise<void> {
    await this.doc(node).apply(() => ({ next: undefined, result: undefined }));
    this.docs.delete(node);
  }

  /** Nodes that have a pod IP document. */
  async nodesWithDocuments(): Promise<string[]> {
    const out: string[] = [];
    const keys = await this.opts.kv.keys(`${ipamKeys.podIpsPrefix}>`);
    for await (const k of keys) out.push(k.slice(ipamKeys.podIpsPrefix.length));
    return out.sort();
  }

  /** The stored allocations of one node, read now. */
  async read(node: string): Promise<NodePodIpsState | undefined> {
    return (await this.doc(node).read()).state;
  }
}

export interface AllocationRow {
  node: string;
  family: IpFamilyName;
  ip: string;
  owner: string;
}

export function rowsOf(node: string, state: NodePodIpsState | undefined): AllocationRow[] {
  if (state === undefined) return [];
  const rows: AllocationRow[] = [];
  for (const family of ['ipv4', 'ipv6'] as const) {
    const pool: PodPoolState | undefined = state[family];
    if (pool === undefined) continue;
    for (const a of listPodIps(pool)) rows.push({ node, family, ip: a.ip, owner: a.owner });
  }
  return rows;
}

export function usageOf(state: NodePodIpsState | undefined): { used: number; capacity: number } {
  let used = 0;
  let capacity = 0;
  for (const family of ['ipv4', 'ipv6'] as const) {
    const pool = state?.[family];
    if (pool === undefined) continue;
    const u = podPoolUsage(pool);
    used += u.used;
    capacity += Number(u.capacity);
  }
  return { used, capacity };
}

/** The router address each family's pool holds, read from the state rather than recomputed. */
function gatewaysOf(state: NodePodIpsState): { ipv4?: string; ipv6?: string } {
  const out: { ipv4?: string; ipv6?: string } = {};
  for (const family of ['ipv4', 'ipv6'] as const) {
    const pool = state[family];
    const gw = pool ? lookupPodIp(pool, ROUTER_OWNER) : undefined;
    if (gw !== undefined) out[family] = gw;
  }
  return out;
}
