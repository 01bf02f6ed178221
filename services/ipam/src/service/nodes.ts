// The node and pod reconciler, run by the holder of the `ipam-nodes` lease: every Node gets its
// pod CIDRs (carved in cluster-pool mode, taken from spec.podCIDRs in kubernetes mode) recorded
// on its CiliumNode; a node that is gone releases its CIDRs and its pod address document; a pod
// address whose owner Pod is gone is freed. Nothing is released before the initial sync: the
// informers must have loaded the store and a source (the kube-bridge) must have marked the
// store synced, because a Node missing from a partial view is not gone. A pod must be seen
// missing on two passes in a row before its address is freed, so that a CNI ADD that raced
// ahead of the Pod reaching the store does not lose its address.
import { parsePodOwnerKey, podCidrList, type NodeCidrs } from '@ciliate/ipam-core';
import { Reconciler, type Logger, type ReconcilerMetrics } from '@ciliate/runtime';
import type { Informer, ResourceStore } from '@ciliate/store';
import type { KubeObject } from '@ciliate/resources';

import type { NodeCidrAllocator, PodIpAllocator } from './allocator.js';
import type { IpamMetrics } from './metrics.js';

export interface NodeReconcilerOptions {
  store: ResourceStore;
  nodes: Informer<'Node'>;
  ciliumNodes: Informer<'CiliumNode'>;
  pods: Informer<'Pod'>;
  nodeCidrs: NodeCidrAllocator;
  podIps: PodIpAllocator;
  log: Logger;
  metrics: IpamMetrics;
  controllers?: ReconcilerMetrics;
  /** Sources whose sync marker allows releasing (any one of them). */
  syncSources: readonly string[];
  podGc: boolean;
}

/** What recordCiliumNode keeps of a CiliumNode it rewrites. */
interface CiliumNodeLike extends KubeObject {
  metadata: { name?: string; creationTimestamp?: string; labels?: Record<string, string> };
  spec?: { ipam?: { podCIDRs?: string[] } };
}

export class NodeReconciler {
  private leading = false;
  private readonly loop: Reconciler;
  private missingPods = new Set<string>();
  private syncedSeen = false;

  constructor(private readonly opts: NodeReconcilerOptions) {
    this.loop = new Reconciler({
      name: 'nodes',
      log: opts.log,
      coalesceMs: 50,
      backoff: { baseMs: 500, maxMs: 30_000 },
      ...(opts.controllers ? { metrics: opts.controllers } : {}),
      reconcile: () => this.pass(),
    });
  }

  lead(): void {
    this.leading = true;
    this.missingPods.clear();
    this.opts.nodeCidrs.doc.invalidate();
    this.loop.start();
  }

  follow(): void {
    this.leading = false;
    this.loop.stop();
  }

  schedule(delayMs?: number): void {
    this.loop.trigger(delayMs);
  }

  idle(): Promise<void> {
    return this.loop.idle();
  }

  /** Whether releasing is allowed: informers loaded and a source marked the store synced. */
  async initialSyncDone(): Promise<boolean> {
    if (this.syncedSeen) return true;
    const { nodes, pods, ciliumNodes, store, syncSources } = this.opts;
    if (!nodes.synced || !pods.synced || !ciliumNodes.synced) return false;
    for (const s of syncSources) {
      if (await store.sourceSynced(s)) {
        this.syncedSeen = true;
        return true;
      }
    }
    return false;
  }

  async pass(): Promise<void> {
    if (!this.leading) return;
    const { nodeCidrs, podIps, metrics, log } = this.opts;
    const nodes = this.opts.nodes.list();
    const byName = new Map(nodes.map((n) => [n.metadata.name, n]));
    // A restart after the state was lost: CIDRs on CiliumNodes are taken back, never re-carved.
    if (nodeCidrs.mode === 'cluster-pool') {
      const state = await nodeCidrs.read();
      const known = new Set(state.nodes.map((n) => n.node));
      const orphans = this.opts.ciliumNodes
        .list()
        .filter((c) => !known.has(c.metadata.name) && (c.spec?.ipam?.podCIDRs?.length ?? 0) > 0)
        .sort((a, b) =>
          (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? ''),
        )
        .map((c) => ({ node: c.metadata.name, podCIDRs: c.spec.ipam?.podCIDRs ?? [] }));
      if (orphans.length > 0) {
        const n = await nodeCidrs.restore(orphans);
        log.info({ event: 'nodes.restored', count: n }, 'node CIDRs taken back from CiliumNodes');
      }
    }
    for (const node of nodes) {
      if (!this.leading) return;
      const name = node.metadata.name;
      try {
        const r =
          nodeCidrs.mode === 'kubernetes'
            ? await nodeCidrs.setKubernetes(name, node.spec?.podCIDRs ?? [])
            : await nodeCidrs.cidrsFor(name);
        if (r.created && nodeCidrs.mode === 'kubernetes') metrics.drift.inc({ kind: 'node_cidr' });
        await this.recordOnCiliumNode(name, r.cidrs);
      } catch (err) {
        log.warn({ event: 'nodes.cidr_failed', node: name, err }, 'node has no pod CIDR');
      }
    }
    const synced = await this.initialSyncDone();
    log.debug({ event: 'nodes.pass', nodes: nodes.length, synced }, 'node pass');
    if (!synced) return;
    const state = await nodeCidrs.read();
    for (const entry of state.nodes) {
      if (!this.leading) return;
      if (byName.has(entry.node)) continue;
      await this.releaseNode(entry.node);
    }
    for (const node of await podIps.nodesWithDocuments()) {
      if (!this.leading) return;
      if (!byName.has(node)) await this.releaseNode(node);
    }
    if (this.opts.podGc) await this.sweepPods();
  }

  private async releaseNode(node: string): Promise<void> {
    const { nodeCidrs, podIps, metrics, log, store } = this.opts;
    const released = await nodeCidrs.release(node);
    await podIps.drop(node);
    if (this.opts.ciliumNodes.get('', node) !== undefined) {
      await store.delete({ kind: 'CiliumNode', namespace: '', name: node });
    }
    metrics.drift.inc({ kind: 'node_cidr' });
    log.info({ event: 'nodes.released', node, cidrs: released }, 'node gone: pod CIDRs released');
  }

  private async sweepPods(): Promise<void> {
    const { podIps, metrics, log } = this.opts;
    const missing = new Set<string>();
    for (const node of await podIps.nodesWithDocuments()) {
      const state = await podIps.read(node);
      const owners = new Set<string>();
      for (const fam of ['ipv4', 'ipv6'] as const) {
        for (const a of state?.[fam]?.allocations ?? []) owners.add(a.owner);
      }
      for (const owner of owners) {
        const p = parsePodOwnerKey(owner);
        if (p === undefined) continue; // router, health: the node's own
        if (this.opts.pods.get(p.namespace, p.pod) !== undefined) continue;
        const key = `${node} ${owner}`;
        missing.add(key);
        if (!this.missingPods.has(key)) continue;
        const released = await podIps.release(node, owner);
        metrics.drift.inc({ kind: 'pod_ip' });
        log.info(
          { event: 'pods.leak_freed', node, owner, released },
          'owner pod gone: address freed',
        );
      }
    }
    this.missingPods = missing;
  }

  private async recordOnCiliumNode(node: string, cidrs: NodeCidrs): Promise<void> {
    const want = podCidrList(cidrs);
    const cur = this.opts.ciliumNodes.get('', node);
    const have = cur?.spec?.ipam?.podCIDRs ?? [];
    if (have.length === want.length && have.every((c, i) => c === want[i])) return;
    await recordCiliumNode(this.opts.store, node, cidrs, cur);
    if (cur !== undefined) this.opts.metrics.drift.inc({ kind: 'cilium_node' });
  }
}

/** Writes the node's CIDRs to its CiliumNode spec.ipam.podCIDRs, keeping everything else. */
export async function recordCiliumNode(
  store: ResourceStore,
  node: string,
  cidrs: NodeCidrs,
  current?: KubeObject,
): Promise<void> {
  const cur =
    (current as CiliumNodeLike | undefined) ??
    ((await store.get({ kind: 'CiliumNode', namespace: '', name: node }))?.object as
      CiliumNodeLike | undefined);
  const spec = { ...(cur?.spec ?? {}) } as Record<string, unknown>;
  spec.ipam = { ...(spec.ipam ?? {}), podCIDRs: podCidrList(cidrs) };
  const meta = { ...(cur?.metadata ?? {}), name: node } as Record<string, unknown>;
  delete meta.resourceVersion;
  await store.apply(
    { apiVersion: 'cilium.io/v2', kind: 'CiliumNode', metadata: meta, spec },
    { source: 'ipam' },
  );
}
