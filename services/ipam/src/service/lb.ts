// LB-IPAM: one replica (the holder of the `ipam-lb` lease) runs reconcileLb over the pools and
// Services the informers hold, on every change and on a periodic resync, and writes Service
// status.loadBalancer and pool conditions to the store's status channel. The state is one KV
// document that carries the lease token of its writer: a holder whose token is lower than the
// stored one has been replaced and stops (fencing), and every write is a compare-and-set.
import { ipamKeys } from '@ciliate/contracts';
import {
  FencedError,
  KvDocument,
  Reconciler,
  type Logger,
  type ReconcilerMetrics,
} from '@ciliate/runtime';
import type { Informer, ResourceStore, StatusInformer } from '@ciliate/store';
import type { KubeObject } from '@ciliate/resources';
import type { KV } from '@nats-io/kv';

import {
  emptyLbIpamState,
  parseCidr,
  reconcileLb,
  tryParseIp,
  type LbIpamState,
  type LbPool,
  type LbReconcileResult,
  type LbService,
  familyOf,
} from '@ciliate/ipam-core';
import type { IpamMetrics } from './metrics.js';

export interface LbRecord {
  /** Fencing token of the lease holder that wrote this state. */
  token: number;
  state: LbIpamState;
}

export interface LbInformers {
  pools: Informer<'CiliumLoadBalancerIPPool'>;
  poolStatus: StatusInformer;
  services: Informer<'Service'>;
  serviceStatus: StatusInformer;
}

export interface LbReconcilerOptions {
  kv: KV;
  store: ResourceStore;
  informers: LbInformers;
  log: Logger;
  metrics: IpamMetrics;
  controllers?: ReconcilerMetrics;
  ipv4Enabled: boolean;
  ipv6Enabled: boolean;
  onConflict?: () => void;
  /** Called when the stored state shows that a newer holder exists. */
  onFenced?: (err: FencedError) => void;
}

function withStatus(obj: KubeObject, status: StatusInformer, namespace: string): unknown {
  const meta = obj.metadata as { name: string };
  const st = status.get(namespace, meta.name);
  return st === undefined ? obj : { ...obj, status: st };
}

/** The informers' view as reconcileLb inputs. */
export function lbInputs(inf: LbInformers): { pools: LbPool[]; services: LbService[] } {
  const pools = inf.pools.list().map((p) => withStatus(p, inf.poolStatus, '') as LbPool);
  const services = inf.services
    .list()
    .map(
      (s) =>
        withStatus(
          s,
          inf.serviceStatus,
          (s.metadata as { namespace?: string }).namespace ?? '',
        ) as LbService,
    );
  return { pools, services };
}

export function poolFamily(pool: LbPool): string {
  const fams = new Set<string>();
  for (const b of pool.spec.blocks ?? []) {
    const text = b.cidr ?? b.start;
    if (text === undefined) continue;
    const ip = text.includes('/') ? undefined : tryParseIp(text);
    const fam = text.includes('/')
      ? safe(() => familyOf(parseCidr(text)))
      : ip === undefined
        ? undefined
        : familyOf(ip);
    if (fam !== undefined) fams.add(fam);
  }
  return fams.size === 1 ? [...fams][0]! : fams.size === 0 ? 'none' : 'dual';
}

function safe<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

export class LbReconciler {
  readonly doc: KvDocument<LbRecord>;
  private token: number | undefined;
  private readonly loop: Reconciler;
  private lastExhausted = new Set<string>();
  private lastConflicting = new Set<string>();
  private lastUnsatisfied = new Set<string>();
  lastResult: LbReconcileResult | undefined;

  constructor(private readonly opts: LbReconcilerOptions) {
    this.doc = new KvDocument<LbRecord>({
      kv: opts.kv,
      key: ipamKeys.lb,
      decode: (v) => v as LbRecord,
      what: 'LB-IPAM state',
      ...(opts.onConflict ? { onConflict: opts.onConflict } : {}),
    });
    this.loop = new Reconciler({
      name: 'lb',
      log: opts.log,
      ...(opts.controllers ? { metrics: opts.controllers } : {}),
      reconcile: async () => {
        const r = await this.pass();
        return { changes: r?.changed === true ? 1 : 0 };
      },
      onFenced: (err) => {
        this.token = undefined;
        opts.onFenced?.(err);
      },
    });
  }

  /** Starts acting as the holder of `token` (the lease's fencing token). */
  lead(token: number): void {
    this.token = token;
    this.doc.invalidate();
    this.loop.start();
  }

  /** Stops acting; a pass in progress finishes its current write at most. */
  follow(): void {
    this.token = undefined;
    this.loop.stop();
  }

  get leading(): boolean {
    return this.token !== undefined;
  }

  /** Runs a pass soon (changes come in bursts: one pass for the burst). */
  schedule(delayMs?: number): void {
    this.loop.trigger(delayMs);
  }

  /** Waits for a pass in progress. */
  idle(): Promise<void> {
    return this.loop.idle();
  }

  /** One reconcile: state in KV first, then the status channel. */
  async pass(): Promise<LbReconcileResult | undefined> {
    const token = this.token;
    if (token === undefined) return undefined;
    const { pools, services } = lbInputs(this.opts.informers);
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const result = await this.doc.apply((cur) => {
      if (cur !== undefined && cur.token > token) {
        throw new FencedError('LB-IPAM state', token, cur.token);
      }
      const r = reconcileLb(pools, services, cur?.state ?? emptyLbIpamState(), {
        now,
        ipv4Enabled: this.opts.ipv4Enabled,
        ipv6Enabled: this.opts.ipv6Enabled,
      });
      const needsWrite = cur === undefined || r.changed || cur.token !== token;
      return { next: needsWrite ? { token, state: r.state } : cur, result: r };
    });
    if (this.token !== token) return result; // lost the lease meanwhile: write no status
    await this.writeStatus(result);
    this.account(result, pools);
    this.lastResult = result;
    return result;
  }

  private async writeStatus(r: LbReconcileResult): Promise<void> {
    const { store, informers } = this.opts;
    const writes: Promise<unknown>[] = [];
    for (const s of r.services) {
      if (s.status !== null && s.statusChanged) {
        writes.push(
          store.setStatus({ kind: 'Service', namespace: s.namespace, name: s.name }, s.status),
        );
      }
    }
    // A Service that left LB-IPAM (type changed, class changed) loses the ingress we gave it.
    const released = new Set(r.events.filter((e) => e.kind === 'released').map((e) => e.service));
    for (const s of r.services) {
      if (s.status !== null || !released.has(s.key)) continue;
      if (informers.services.get(s.namespace, s.name) === undefined) continue; // deleted
      const cur = informers.serviceStatus.get(s.namespace, s.name) as
        { loadBalancer?: unknown; conditions?: unknown[] } | undefined;
      if (cur?.loadBalancer === undefined) continue;
      const { loadBalancer: _lb, ...rest } = cur;
      writes.push(
        store.setStatus(
          { kind: 'Service', namespace: s.namespace, name: s.name },
          {
            ...rest,
            loadBalancer: {},
          },
        ),
      );
    }
    for (const p of r.pools) {
      if (!p.statusChanged) continue;
      if (informers.pools.get('', p.name) === undefined) continue;
      writes.push(
        store.setStatus(
          { kind: 'CiliumLoadBalancerIPPool', namespace: '', name: p.name },
          { conditions: p.conditions },
        ),
      );
    }
    await Promise.all(writes);
  }

  private account(r: LbReconcileResult, pools: LbPool[]): void {
    const { metrics } = this.opts;
    const famOf = new Map(pools.map((p) => [p.metadata.name, poolFamily(p)]));
    for (const p of r.pools) {
      metrics.setPool(
        p.name,
        famOf.get(p.name) ?? 'none',
        Number(p.counts.total),
        Number(p.counts.used),
      );
    }
    // Counters count transitions, not passes: a Service that stays unsatisfied counts once.
    const exhausted = new Set<string>();
    const unsatisfied = new Set<string>();
    for (const s of r.services) {
      for (const p of s.problems) {
        if (p.reason === 'out_of_ips') exhausted.add(s.key);
        if (
          p.reason === 'already_allocated' ||
          p.reason === 'already_allocated_incompatible_service' ||
          p.reason === 'no_pool'
        )
          unsatisfied.add(`${s.key} ${p.reason}`);
      }
    }
    for (const k of exhausted)
      if (!this.lastExhausted.has(k)) metrics.exhausted.inc({ pool: 'lb' });
    for (const k of unsatisfied)
      if (!this.lastUnsatisfied.has(k)) metrics.conflicts.inc({ kind: 'lb_request' });
    const conflicting = new Set(r.pools.filter((p) => p.conflicting).map((p) => p.name));
    for (const k of conflicting)
      if (!this.lastConflicting.has(k)) metrics.conflicts.inc({ kind: 'lb_pool' });
    this.lastExhausted = exhausted;
    this.lastUnsatisfied = unsatisfied;
    this.lastConflicting = conflicting;
  }
}
