// The IPAM service: wires the allocation core to JetStream KV (compare-and-set), the resource
// store (informers, status channel, CiliumNode) and NATS micro service endpoints.
import {
  IPAM_COMPONENT,
  IpamAllocateReplySchema,
  IpamAllocateRequestSchema,
  IpamListReplySchema,
  IpamListRequestSchema,
  IpamNodeCidrsReplySchema,
  IpamNodeCidrsRequestSchema,
  IpamReleaseReplySchema,
  IpamReleaseRequestSchema,
  IpamStatusReplySchema,
  IpamStatusRequestSchema,
  buckets,
  ipamEndpoints,
  ipamSubject,
  subjects,
  leaseKey,
  type IpamStatusReply,
  type PodOwnerWire,
} from '@ciliate/contracts';
import {
  ConfigError,
  setting,
  type ServiceContext,
  type ServiceDefinition,
} from '@ciliate/runtime';
import { Informer, ResourceStore, StatusInformer } from '@ciliate/store';

import {
  clusterPoolConfig,
  emptyLbIpamState,
  isIpamError,
  nodeCidrUsage,
  podCidrList,
  podGateways,
  podOwnerKey,
  reconcileLb,
  type ClusterPoolConfig,
} from '@ciliate/ipam-core';
import { NodeCidrAllocator, PodIpAllocator, rowsOf, usageOf, type IpamMode } from './allocator.js';
import { toWireError } from './errors.js';
import { LbReconciler, lbInputs, poolFamily } from './lb.js';
import { createIpamMetrics, type IpamMetrics } from './metrics.js';
import { NodeReconciler, recordCiliumNode } from './nodes.js';

export const IPAM_VERSION = '0.1.0';

const list = (o: { flag: string; env: string; describe: string; default: string }) =>
  setting.string({ ...o, pattern: /^[^\s]+(,[^\s]+)*$/, hint: 'comma-separated CIDRs' });

export const ipamSettings = {
  ipamMode: setting.oneOf({
    flag: 'ipam-mode',
    env: 'CILIATE_IPAM_MODE',
    values: ['cluster-pool', 'kubernetes'] as const,
    default: 'cluster-pool',
    describe: "Cilium's ipam.mode: carve per-node CIDRs (cluster-pool) or use Node.spec.podCIDRs",
  }),
  enableIpv4: setting.bool({
    flag: 'enable-ipv4',
    env: 'CILIATE_ENABLE_IPV4',
    default: true,
    describe: 'hand out IPv4 pod CIDRs and addresses (Helm ipv4.enabled)',
  }),
  enableIpv6: setting.bool({
    flag: 'enable-ipv6',
    env: 'CILIATE_ENABLE_IPV6',
    default: false,
    describe: 'hand out IPv6 pod CIDRs and addresses (Helm ipv6.enabled)',
  }),
  clusterPoolIpv4Cidr: list({
    flag: 'cluster-pool-ipv4-cidr',
    env: 'CILIATE_CLUSTER_POOL_IPV4_CIDR',
    default: '10.0.0.0/8',
    describe:
      'cluster CIDRs carved into per-node IPv4 pod CIDRs (ipam.operator.clusterPoolIPv4PodCIDRList)',
  }),
  clusterPoolIpv4MaskSize: setting.int({
    flag: 'cluster-pool-ipv4-mask-size',
    env: 'CILIATE_CLUSTER_POOL_IPV4_MASK_SIZE',
    default: 24,
    min: 1,
    max: 32,
    describe: 'prefix length of a node IPv4 pod CIDR (ipam.operator.clusterPoolIPv4MaskSize)',
  }),
  clusterPoolIpv6Cidr: list({
    flag: 'cluster-pool-ipv6-cidr',
    env: 'CILIATE_CLUSTER_POOL_IPV6_CIDR',
    default: 'fd00::/104',
    describe:
      'cluster CIDRs carved into per-node IPv6 pod CIDRs (ipam.operator.clusterPoolIPv6PodCIDRList)',
  }),
  clusterPoolIpv6MaskSize: setting.int({
    flag: 'cluster-pool-ipv6-mask-size',
    env: 'CILIATE_CLUSTER_POOL_IPV6_MASK_SIZE',
    default: 120,
    min: 1,
    max: 128,
    describe: 'prefix length of a node IPv6 pod CIDR (ipam.operator.clusterPoolIPv6MaskSize)',
  }),
  resyncInterval: setting.duration({
    flag: 'resync-interval',
    env: 'CILIATE_IPAM_RESYNC_INTERVAL',
    default: 30_000,
    minMs: 100,
    describe: 'how often the reconcilers re-check every Node, Pod, Service and pool',
  }),
  leaseTtl: setting.duration({
    flag: 'lease-ttl',
    env: 'CILIATE_IPAM_LEASE_TTL',
    default: 3_000,
    minMs: 300,
    describe: 'lease time of the reconcilers (one replica runs them; failover after about this)',
  }),
  syncSources: setting.string({
    flag: 'sync-sources',
    env: 'CILIATE_IPAM_SYNC_SOURCES',
    default: 'kubernetes',
    describe:
      'resource-store sources whose initial-sync marker allows releasing CIDRs and addresses of objects that are gone (comma separated)',
  }),
  podGc: setting.bool({
    flag: 'pod-gc',
    env: 'CILIATE_IPAM_POD_GC',
    default: true,
    describe: 'free pod addresses whose owner Pod no longer exists (after initial sync)',
  }),
};

type IpamSettings = typeof ipamSettings;

/** The cluster pool from the settings; a bad value fails start-up naming its flag. */
export function poolFromSettings(c: {
  enableIpv4: boolean;
  enableIpv6: boolean;
  clusterPoolIpv4Cidr: string;
  clusterPoolIpv4MaskSize: number;
  clusterPoolIpv6Cidr: string;
  clusterPoolIpv6MaskSize: number;
}): ClusterPoolConfig {
  const flags: Record<string, [string, string]> = {
    clusterPoolIPv4PodCIDRList: ['clusterPoolIpv4Cidr', 'cluster-pool-ipv4-cidr'],
    clusterPoolIPv4MaskSize: ['clusterPoolIpv4MaskSize', 'cluster-pool-ipv4-mask-size'],
    clusterPoolIPv6PodCIDRList: ['clusterPoolIpv6Cidr', 'cluster-pool-ipv6-cidr'],
    clusterPoolIPv6MaskSize: ['clusterPoolIpv6MaskSize', 'cluster-pool-ipv6-mask-size'],
  };
  try {
    return clusterPoolConfig({
      enableIPv4: c.enableIpv4,
      enableIPv6: c.enableIpv6,
      clusterPoolIPv4PodCIDRList: c.clusterPoolIpv4Cidr.split(','),
      clusterPoolIPv4MaskSize: c.clusterPoolIpv4MaskSize,
      clusterPoolIPv6PodCIDRList: c.clusterPoolIpv6Cidr.split(','),
      clusterPoolIPv6MaskSize: c.clusterPoolIpv6MaskSize,
    });
  } catch (err) {
    if (!isIpamError(err)) throw err;
    const key = Object.keys(flags).find((k) => err.path?.includes(k));
    const [setting_, flag] = key ? flags[key]! : ['enableIpv4', 'enable-ipv4'];
    throw new ConfigError(setting_, `invalid setting --${flag}: ${err.message}`);
  }
}

function ownerKeyOf(o: PodOwnerWire): string {
  return podOwnerKey({
    namespace: o.namespace,
    pod: o.pod,
    containerId: o.containerID,
    ifname: o.ifname,
  });
}

/** Runs a handler, turning the core's errors into wire errors; times it when asked. */
async function answer<T>(
  fn: () => Promise<T>,
  timer?: { metrics: IpamMetrics; kind: string },
): Promise<T> {
  const end = timer?.metrics.allocationSeconds.startTimer({ kind: timer.kind });
  try {
    return await fn();
  } catch (err) {
    if (timer && isIpamError(err) && (err.code === 'RANGE_FULL' || err.code === 'POOL_EXHAUSTED')) {
      timer.metrics.exhausted.inc({
        pool: err.code === 'RANGE_FULL' ? 'pod-cidr' : 'cluster-pool',
      });
    }
    throw toWireError(err);
  } finally {
    end?.();
  }
}

export async function setupIpam(ctx: ServiceContext<IpamSettings>): Promise<void> {
  const { config } = ctx;
  const log = ctx.logger('ipam');
  const mode: IpamMode = config.ipamMode;
  const pool = poolFromSettings(config);
  const metrics = createIpamMetrics(ctx.metrics.registry);
  const kv = await ctx.kv(buckets.ipam());
  const store = await ResourceStore.open(ctx.nc, { replicas: config.kvReplicas });
  const onConflict = (): void => metrics.conflicts.inc({ kind: 'cas' });
  const nodeCidrs = new NodeCidrAllocator({ kv, mode, pool, onConflict });
  const podIps = new PodIpAllocator({ kv, mode, pool, onConflict }, nodeCidrs);

  const resyncMs = config.resyncInterval;
  const seen = { log: ctx.logger('informer'), metrics: ctx.metrics.informers };
  const inf = {
    nodes: new Informer(store, { kind: 'Node', resyncMs, ...seen }),
    ciliumNodes: new Informer(store, { kind: 'CiliumNode', ...seen }),
    pods: new Informer(store, { kind: 'Pod', resyncMs, ...seen }),
    pools: new Informer(store, { kind: 'CiliumLoadBalancerIPPool', resyncMs, ...seen }),
    poolStatus: new StatusInformer(store, { kind: 'CiliumLoadBalancerIPPool', ...seen }),
    services: new Informer(store, { kind: 'Service', resyncMs, ...seen }),
    serviceStatus: new StatusInformer(store, { kind: 'Service', ...seen }),
  };

  const lb = new LbReconciler({
    kv,
    store,
    informers: inf,
    log: ctx.logger('lb-ipam'),
    metrics,
    controllers: ctx.metrics.controllers,
    ipv4Enabled: config.enableIpv4,
    ipv6Enabled: config.enableIpv6,
    onConflict,
  });
  const nodes = new NodeReconciler({
    store,
    nodes: inf.nodes,
    ciliumNodes: inf.ciliumNodes,
    pods: inf.pods,
    nodeCidrs,
    podIps,
    log: ctx.logger('nodes'),
    metrics,
    controllers: ctx.metrics.controllers,
    syncSources: config.syncSources
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    podGc: config.podGc,
  });
  // Spec changes and resyncs trigger passes; status events (our own writes) do not.
  inf.pools.on(() => lb.schedule());
  inf.services.on(() => lb.schedule());
  inf.nodes.on(() => nodes.schedule());
  inf.pods.on((ev) => {
    if (ev.type === 'DELETED' || ev.type === 'RESYNC')
      nodes.schedule(ev.type === 'RESYNC' ? 500 : 50);
  });

  const clusterPoolMetrics = async (): Promise<void> => {
    if (mode !== 'cluster-pool') return;
    const usage = nodeCidrUsage(await nodeCidrs.read(), pool);
    for (const fam of ['ipv4', 'ipv6'] as const) {
      const u = usage.families[fam];
      if (u) metrics.setPool('cluster-pool', fam, u.capacity, u.used);
    }
  };

  const gate = ctx.readiness.gate('initial-sync', 'resource store not loaded yet');
  ctx.add({
    name: 'informers',
    start: async () => {
      await Promise.all(Object.values(inf).map((i) => i.start()));
      gate.done();
      log.info({ event: 'ipam.synced', mode }, 'informers synced');
    },
    stop: async () => {
      await Promise.all(Object.values(inf).map((i) => i.stop()));
    },
  });

  // --- endpoints -------------------------------------------------------------------------

  ctx.endpoint({
    name: ipamEndpoints.allocate,
    subject: subjects.nodeEndpointAll(IPAM_COMPONENT, ipamEndpoints.allocate),
    nodeScoped: true,
    request: IpamAllocateRequestSchema,
    reply: IpamAllocateReplySchema,
    handler: (req) =>
      answer(
        async () => {
          const owner = ownerKeyOf(req.owner);
          const podCIDRs =
            mode === 'kubernetes'
              ? (inf.nodes.get('', req.node) as { spec?: { podCIDRs?: string[] } } | undefined)
                  ?.spec?.podCIDRs
              : undefined;
          const r = await podIps.allocate(req.node, owner, req.family, podCIDRs);
          return {
            node: req.node,
            ips: r.ips,
            cidrs: r.cidrs,
            gateways: r.gateways,
            created: r.created,
          };
        },
        { metrics, kind: 'pod' },
      ),
  });

  ctx.endpoint({
    name: ipamEndpoints.release,
    subject: subjects.nodeEndpointAll(IPAM_COMPONENT, ipamEndpoints.release),
    nodeScoped: true,
    request: IpamReleaseRequestSchema,
    reply: IpamReleaseReplySchema,
    handler: (req, { node }) =>
      answer(async () => {
        const released = await podIps.release(node!, ownerKeyOf(req.owner));
        const found = released.ipv4 !== undefined || released.ipv6 !== undefined;
        return found ? { released, node: node! } : { released: {} };
      }),
  });

  ctx.endpoint({
    name: ipamEndpoints.list,
    subject: ipamSubject('list'),
    request: IpamListRequestSchema,
    reply: IpamListReplySchema,
    handler: (req) =>
      answer(async () => {
        const which = req.node ? [req.node] : await podIps.nodesWithDocuments();
        const rows = await Promise.all(which.map(async (n) => rowsOf(n, await podIps.read(n))));
        return { allocations: rows.flat() };
      }),
  });

  ctx.endpoint({
    name: ipamEndpoints.nodeCidrs,
    subject: subjects.nodeEndpointAll(IPAM_COMPONENT, ipamEndpoints.nodeCidrs),
    nodeScoped: true,
    request: IpamNodeCidrsRequestSchema,
    reply: IpamNodeCidrsReplySchema,
    handler: (req) =>
      answer(
        async () => {
          const podCIDRs =
            mode === 'kubernetes'
              ? (inf.nodes.get('', req.node) as { spec?: { podCIDRs?: string[] } } | undefined)
                  ?.spec?.podCIDRs
              : undefined;
          const r = await nodeCidrs.cidrsFor(req.node, podCIDRs);
          // Recorded for whoever reads CiliumNodes; the node reconciler repairs a failed write.
          if (r.created) {
            await recordCiliumNode(store, req.node, r.cidrs).catch((err: unknown) =>
              log.warn(
                { event: 'nodes.record_failed', node: req.node, err },
                'could not record the CIDRs on the CiliumNode',
              ),
            );
          }
          return {
            node: req.node,
            mode,
            cidrs: r.cidrs,
            podCIDRs: podCidrList(r.cidrs),
            gateways: podGateways(r.cidrs),
            created: r.created,
          };
        },
        { metrics, kind: 'node' },
      ),
  });

  const leases = await ctx.kv(buckets.leases());
  ctx.endpoint({
    name: ipamEndpoints.status,
    subject: ipamSubject('status'),
    request: IpamStatusRequestSchema,
    reply: IpamStatusReplySchema,
    handler: () =>
      answer(async (): Promise<IpamStatusReply> => {
        const state = await nodeCidrs.read();
        const usage = nodeCidrUsage(state, mode === 'cluster-pool' ? pool : undefined);
        const clusterPool = (['ipv4', 'ipv6'] as const).flatMap((f) => {
          const u = mode === 'cluster-pool' ? usage.families[f] : undefined;
          return u
            ? [
                {
                  family: f,
                  maskSize: u.maskSize,
                  cidrs: u.pools.map((p) => p.cidr),
                  capacity: u.capacity,
                  used: u.used,
                  available: u.free,
                },
              ]
            : [];
        });
        const nodeRows = await Promise.all(
          state.nodes.map(async (e) => {
            const u = usageOf(await podIps.read(e.node));
            return {
              node: e.node,
              cidrs: {
                ...(e.ipv4 ? { ipv4: e.ipv4 } : {}),
                ...(e.ipv6 ? { ipv6: e.ipv6 } : {}),
              },
              ...u,
            };
          }),
        );
        // The pools as a pass over this replica's view and the stored state would see them.
        const stored = (await lb.doc.read()).state;
        const { pools, services } = lbInputs(inf);
        const r = reconcileLb(pools, services, stored?.state ?? emptyLbIpamState(), {
          now: new Date().toISOString(),
          ipv4Enabled: config.enableIpv4,
          ipv6Enabled: config.enableIpv6,
        });
        const famOf = new Map(pools.map((p) => [p.metadata.name, poolFamily(p)]));
        const leader = await leases.get(leaseKey('ipam-lb'));
        let holder: string | null = null;
        if (leader && leader.operation === 'PUT') {
          try {
            holder = leader.json<{ holder?: string }>().holder ?? null;
          } catch {
            holder = null;
          }
        }
        return {
          mode,
          clusterPool,
          pools: r.pools.map((p) => ({
            pool: p.name,
            family: famOf.get(p.name) ?? 'none',
            capacity: Number(p.counts.total),
            used: Number(p.counts.used),
            available: Number(p.counts.available),
            conflicting: p.conflicting,
            disabled: p.disabled,
            ...(p.invalid
              ? { detail: p.invalid }
              : p.conflicting
                ? {
                    detail:
                      p.conditions.find((c) => c.type === 'cilium.io/PoolConflict')?.message ??
                      'conflicting',
                  }
                : {}),
          })),
          nodes: nodeRows,
          issues: usage.issues.map((i) => `${i.node} ${i.cidr}: ${i.message}`),
          lb: {
            leader: holder,
            services: r.summary.servicesMatching,
            unsatisfied: r.summary.servicesUnsatisfied,
          },
        };
      }),
  });

  // --- singleton reconcilers ---------------------------------------------------------------

  ctx.add({
    name: 'reconcilers',
    start: async () => {
      const lbLease = await ctx.lease('ipam-lb', {
        ttlMs: config.leaseTtl,
        onAcquired: (token) => {
          log.info({ event: 'lb.leading', token }, 'running LB-IPAM');
          lb.lead(token);
        },
        onLost: (reason) => {
          log.info({ event: 'lb.following', reason }, 'LB-IPAM stopped here');
          lb.follow();
        },
      });
      const nodeLease = await ctx.lease('ipam-nodes', {
        ttlMs: config.leaseTtl,
        onAcquired: () => nodes.lead(),
        onLost: () => nodes.follow(),
      });
      ctx.add({
        name: 'leases',
        stop: async () => {
          lb.follow();
          nodes.follow();
          await Promise.all([lbLease.stop(), nodeLease.stop()]);
          await Promise.all([lb.idle(), nodes.idle()]);
        },
      });
      await Promise.all([lbLease.start(), nodeLease.start()]);
      const tick = setInterval(
        () => {
          void clusterPoolMetrics().catch(() => undefined);
        },
        Math.min(resyncMs, 10_000),
      );
      tick.unref();
      ctx.add({ name: 'pool-metrics', stop: () => clearInterval(tick) });
    },
  });
}

export const ipamService: ServiceDefinition<IpamSettings> = {
  component: IPAM_COMPONENT,
  role: 'ipam',
  version: IPAM_VERSION,
  description: 'Pod CIDRs per node, pod IP allocation and LB-IPAM',
  httpAddress: '127.0.0.1:9965',
  settings: ipamSettings,
  setup: setupIpam,
};
