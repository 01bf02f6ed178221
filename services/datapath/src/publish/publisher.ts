// Local endpoints as the rest of the cluster sees them: an ipcache claim per pod address (so
// other nodes know its identity and, in VXLAN mode, which node it lives on) and a CiliumEndpoint
// object per pod in the resource store. A level-triggered reconciler: desired state comes from
// the endpoint records (@ciliate/datapath-core's desiredPublications), what was published is remembered, and failures (NATS unreachable) are
// retried until they succeed; the datapath itself never waits for any of it.
import {
  CiliateError,
  IPCACHE_POD_OWNER_PREFIX,
  IpcacheReplySchema,
  identityNodeSubject,
} from '@ciliate/contracts';
import { desiredPublications, type IpcacheRecordView } from '@ciliate/datapath-core';
import { Reconciler, type Logger, type ReconcilerMetrics, type RpcClient } from '@ciliate/runtime';
import type { ResourceStore } from '@ciliate/store';

import type { EndpointState } from '../endpoints/manager.js';

export interface EndpointPublisherOptions {
  rpc: RpcClient;
  store: ResourceStore;
  node: string;
  nodeIP: string;
  log: Logger;
  controllers?: ReconcilerMetrics;
  /** A pass at least this often (default 30 s): what was published is checked again. */
  resyncMs?: number;
  endpoints: () => EndpointState[];
  /** The ipcache bucket's records (for the sweep of claims left by a previous run). */
  ipcacheRecords: () => IpcacheRecordView[];
  /**
   * Work that must come before and after a pass's publication (identities following label
   * changes: see identity-follow.ts). Each answers its failures; any makes the pass retried.
   */
  around?: { before(): Promise<unknown[]>; after(): Promise<unknown[]> };
}

export class EndpointPublisher {
  private readonly claims = new Map<string, string>();
  private readonly ceps = new Map<string, string>();
  private swept = false;
  private readonly loop: Reconciler;

  constructor(private readonly opts: EndpointPublisherOptions) {
    this.loop = new Reconciler({
      name: 'publish',
      log: opts.log,
      coalesceMs: 0,
      resyncMs: opts.resyncMs ?? 30_000,
      backoff: { baseMs: 500, maxMs: 5000 },
      ...(opts.controllers ? { metrics: opts.controllers } : {}),
      reconcile: () => this.pass(),
    });
  }

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.close();
  }

  /** True once the claims and objects of a previous run have been swept. */
  get isSwept(): boolean {
    return this.swept;
  }

  /** Runs a pass now (or right after the current one). */
  kick(): void {
    this.loop.trigger(0);
  }

  /** Resolves when no pass is running (tests). */
  idle(): Promise<void> {
    return this.loop.idle();
  }

  private async sweep(): Promise<void> {
    const { node, nodeIP, store } = this.opts;
    for (const r of this.opts.ipcacheRecords()) {
      for (const c of r.claims ?? []) {
        if (c.hostIP === nodeIP && c.ownerKey.startsWith(IPCACHE_POD_OWNER_PREFIX)) {
          this.claims.set(`${r.prefix}|${c.ownerKey}`, 'unknown');
        }
      }
    }
    for (const { object } of await store.list('CiliumEndpoint')) {
      const st = (object as { status?: { networking?: { node?: string } } }).status;
      if (st?.networking?.node !== node) continue;
      const m = object.metadata as { namespace?: string; name: string };
      this.ceps.set(`${m.namespace ?? ''}/${m.name}`, 'unknown');
    }
    this.swept = true;
  }

  private async pass(): Promise<{ changes: number }> {
    const { node, nodeIP, store, rpc } = this.opts;
    let changes = 0;
    if (!this.swept) await this.sweep();
    const failures = (await this.opts.around?.before()) ?? [];
    const want = desiredPublications(this.opts.endpoints(), node, nodeIP);
    for (const [key, claim] of want.claims) {
      const text = JSON.stringify(claim);
      if (this.claims.get(key) === text) continue;
      await rpc.request(identityNodeSubject('ipcache-upsert', node), claim, IpcacheReplySchema, {
        timeoutMs: 3000,
      });
      this.claims.set(key, text);
      changes++;
    }
    for (const [key, cep] of want.ceps) {
      const text = JSON.stringify(cep);
      if (this.ceps.get(key) === text) continue;
      const ref = { kind: 'CiliumEndpoint', namespace: cep.namespace, name: cep.name };
      await store.apply(
        {
          apiVersion: 'cilium.io/v2',
          kind: 'CiliumEndpoint',
          metadata: { name: cep.name, namespace: cep.namespace },
        },
        { source: 'datapath' },
      );
      await store.setStatus(ref, cep.status);
      this.ceps.set(key, text);
      changes++;
    }
    for (const key of [...this.claims.keys()]) {
      if (want.claims.has(key)) continue;
      const [prefix, ownerKey] = key.split('|') as [string, string];
      await rpc.request(
        identityNodeSubject('ipcache-delete', node),
        { prefix, ownerKey },
        IpcacheReplySchema,
        { timeoutMs: 3000 },
      );
      this.claims.delete(key);
      changes++;
    }
    for (const key of [...this.ceps.keys()]) {
      if (want.ceps.has(key)) continue;
      const [namespace, name] = key.split('/') as [string, string];
      const ref = { kind: 'CiliumEndpoint', namespace, name };
      // only ours: a pod moved to another node has its CiliumEndpoint written by that node
      const cur = await store.get(ref);
      const st = (cur?.object as { status?: { networking?: { node?: string } } } | undefined)
        ?.status;
      if (cur && st?.networking?.node === node) {
        try {
          await store.delete(ref, { expectRevision: cur.revision });
        } catch (err) {
          if (!(err instanceof CiliateError && err.code === 'conflict')) throw err;
          continue; // changed meanwhile: looked at again in the next pass
        }
      }
      this.ceps.delete(key);
      changes++;
    }
    failures.push(...((await this.opts.around?.after()) ?? []));
    if (failures.length > 0)
      throw new AggregateError(failures, `${failures.length} endpoint identity step(s) failed`);
    return { changes };
  }
}
