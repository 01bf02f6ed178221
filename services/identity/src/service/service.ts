// The identity service: its settings and how its parts are wired (main.ts only runs this).
import {
  IdentityAllocateReplySchema,
  IdentityAllocateRequestSchema,
  IdentityHeartbeatReplySchema,
  IdentityHeartbeatRequestSchema,
  IdentityInfoSchema,
  IdentityListReplySchema,
  IdentityListRequestSchema,
  IdentityLookupRequestSchema,
  IdentityReleaseReplySchema,
  IdentityReleaseRequestSchema,
  IpcacheDeleteRequestSchema,
  IpcacheReplySchema,
  IpcacheUpsertRequestSchema,
  buckets,
  IDENTITY_COMPONENT,
  identitySubject,
  subjects,
} from '@ciliate/contracts';
import {
  ConfigError,
  decodeText,
  setting,
  watchKv,
  type KvWatch,
  type ServiceDefinition,
} from '@ciliate/runtime';
import { Informer, ResourceStore } from '@ciliate/store';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';

import {
  IdentityError,
  createLabelFilter,
  type LabelFilter,
  clusterIdentityRange,
  validateClusterConfig,
  type ClusterConfig,
  type IdentityRange,
} from '@ciliate/identity-core';
import { CiliumIdentityMirror } from './ciliumidentity.js';
import { GarbageCollector } from './gc.js';
import { IdentityAllocator } from './identities.js';
import { IpcacheWriter } from './ipcache.js';
import { NodeClaimCheck } from './node-claims.js';
import { JetStreamKvExecutor, enableAtomicBatches } from './kv.js';
import { createIdentityMetrics } from './metrics.js';
import { IdentityMirror } from './mirror.js';

export const IDENTITY_VERSION = '0.1.0';

export const identitySettings = {
  identityRange: setting.string({
    flag: 'identity-range',
    env: 'CILIATE_IDENTITY_RANGE',
    pattern: /^\d+-\d+$/,
    hint: 'MIN-MAX',
    describe:
      'allocate only from this part of the cluster range (MIN-MAX); default: the whole range',
  }),
  labels: setting.string({
    flag: 'labels',
    env: 'CILIATE_LABELS',
    describe:
      "identity-relevant label prefixes added to Cilium's defaults (Cilium's `labels` setting, space separated)",
  }),
  gcGrace: setting.duration({
    flag: 'gc-grace',
    env: 'CILIATE_IDENTITY_GC_GRACE',
    default: 5 * 60_000,
    describe: 'how long an identity without references lingers before it is freed',
  }),
  gcInterval: setting.duration({
    flag: 'gc-interval',
    env: 'CILIATE_IDENTITY_GC_INTERVAL',
    minMs: 50,
    describe:
      'time between garbage collection passes (default: a quarter of --gc-grace, at most 30s)',
  }),
  gcHold: setting.duration({
    flag: 'gc-hold',
    env: 'CILIATE_IDENTITY_GC_HOLD',
    describe:
      'how long a release holds its mark before deleting (default and minimum: --allocation-deadline + --kv-timeout + 1s)',
  }),
  gcLeaseTtl: setting.duration({
    flag: 'gc-lease-ttl',
    env: 'CILIATE_IDENTITY_GC_LEASE_TTL',
    default: 5000,
    minMs: 300,
    describe: 'lease time of the identity-gc leader lease',
  }),
  allocationDeadline: setting.duration({
    flag: 'allocation-deadline',
    env: 'CILIATE_IDENTITY_ALLOCATION_DEADLINE',
    default: 5000,
    minMs: 100,
    describe: 'an allocation gives up (timeout) rather than act after this long',
  }),
  kvTimeout: setting.duration({
    flag: 'kv-timeout',
    env: 'CILIATE_IDENTITY_KV_TIMEOUT',
    default: 2000,
    minMs: 100,
    describe: 'timeout of one request to the identity bucket',
  }),
  nodeLeaseTtl: setting.duration({
    flag: 'node-lease-ttl',
    env: 'CILIATE_IDENTITY_NODE_LEASE_TTL',
    default: 60_000,
    minMs: 1000,
    describe: "lease a node's heartbeat renews; its references expire with it",
  }),
  mirrorCiliumIdentities: setting.bool({
    flag: 'mirror-ciliumidentities',
    env: 'CILIATE_MIRROR_CILIUMIDENTITIES',
    default: true,
    describe: 'write CiliumIdentity objects to the resource store (kubectl get ciliumidentities)',
  }),
  atomicBatches: setting.bool({
    flag: 'atomic-batches',
    env: 'CILIATE_IDENTITY_ATOMIC_BATCHES',
    default: false,
    describe:
      "claim a new identity (number, binding, the node's reference) with one atomic JetStream batch (nats-server 2.12+) instead of three writes; one round trip instead of three, but nats-server 2.14 stores batches several times slower than single writes (see the benchmark)",
  }),
  maxNodes: setting.int({
    flag: 'max-nodes',
    env: 'CILIATE_IDENTITY_MAX_NODES',
    default: 10_000,
    min: 1,
    describe:
      'nodes with a lease (live or not yet collected); a heartbeat or allocation of one more node is refused (exhausted, field node)',
  }),
  maxIdentitiesPerNode: setting.int({
    flag: 'max-identities-per-node',
    env: 'CILIATE_IDENTITY_MAX_IDENTITIES_PER_NODE',
    default: 8192,
    min: 1,
    describe:
      'identities one node may hold; an allocation of one more is refused (exhausted, field node) until it releases one',
  }),
  maxIpcacheClaims: setting.int({
    flag: 'max-ipcache-claims',
    env: 'CILIATE_IDENTITY_MAX_IPCACHE_CLAIMS',
    default: 64,
    min: 1,
    describe:
      'owners that may claim one ipcache prefix; a claim by one more owner is refused (exhausted, field prefix)',
  }),
  dualStack: setting.bool({
    flag: 'dual-stack',
    env: 'CILIATE_DUAL_STACK',
    default: false,
    describe: 'IPv4 and IPv6: the world entries get world-ipv4 (9) and world-ipv6 (10)',
  }),
};

type IdentitySettings = typeof identitySettings;

/** Cluster, range and filter settings checked together; errors name the setting. */
export function resolveIdentityConfig(config: {
  clusterName: string;
  clusterId: number;
  maxConnectedClusters: '255' | '511';
  identityRange?: string | undefined;
  labels?: string | undefined;
}): { cluster: ClusterConfig; range: IdentityRange; filter: LabelFilter } {
  let cluster: ClusterConfig;
  try {
    cluster = validateClusterConfig({
      name: config.clusterName,
      id: config.clusterId,
      maxConnectedClusters: Number(config.maxConnectedClusters),
    });
  } catch (err) {
    if (!(err instanceof IdentityError)) throw err;
    const setting = err.field?.endsWith('.id') ? 'clusterId' : 'clusterName';
    const flag = setting === 'clusterId' ? 'cluster-id' : 'cluster-name';
    const env = setting === 'clusterId' ? 'CILIATE_CLUSTER_ID' : 'CILIATE_CLUSTER_NAME';
    throw new ConfigError(
      setting,
      `invalid setting --${flag} (${env}) [${setting}]: ${err.message}`,
    );
  }
  const full = clusterIdentityRange(cluster);
  let range = full;
  if (config.identityRange !== undefined) {
    const [min, max] = config.identityRange.split('-').map(Number) as [number, number];
    if (min > max || min < full.min || max > full.max) {
      throw new ConfigError(
        'identityRange',
        `invalid setting --identity-range (CILIATE_IDENTITY_RANGE) [identityRange]: "${config.identityRange}" must lie within cluster ${cluster.id}'s range ${full.min}-${full.max} with MIN <= MAX`,
      );
    }
    range = { min, max };
  }
  let filter: LabelFilter;
  try {
    filter = createLabelFilter(config.labels === undefined ? {} : { prefixes: config.labels });
  } catch (err) {
    throw new ConfigError(
      'labels',
      `invalid setting --labels (CILIATE_LABELS) [labels]: ${(err as Error).message}`,
    );
  }
  return { cluster, range, filter };
}

export const identityService: ServiceDefinition<IdentitySettings> = {
  component: 'identity',
  role: 'identity',
  version: IDENTITY_VERSION,
  description:
    'Security identities: label sets to numeric identities, node references with lease-based garbage collection, and the ipcache',
  httpAddress: '127.0.0.1:9964',
  settings: identitySettings,
  async setup(ctx) {
    const { config } = ctx;
    const { cluster, range, filter } = resolveIdentityConfig(config);
    const holdMin = config.allocationDeadline + config.kvTimeout + 1000;
    const holdMs = config.gcHold ?? holdMin;
    if (holdMs < holdMin) {
      throw new ConfigError(
        'gcHold',
        `invalid setting --gc-hold (CILIATE_IDENTITY_GC_HOLD) [gcHold]: ${holdMs}ms is below --allocation-deadline + --kv-timeout + 1s = ${holdMin}ms; a slow allocation could bind a number being freed`,
      );
    }
    const intervalMs = config.gcInterval ?? Math.max(50, Math.min(30_000, config.gcGrace / 4));
    const log = ctx.logger('identity');
    log.info(
      {
        event: 'identity.config',
        cluster: cluster.name,
        clusterId: cluster.id,
        range,
        graceMs: config.gcGrace,
        holdMs,
        intervalMs,
      },
      'identity configuration',
    );

    // Created with the service's replica count, then reopened with our own request timeout.
    await ctx.kv(buckets.identities(), { history: 1 });
    const js = jetstream(ctx.nc, { timeout: config.kvTimeout });
    const kv = await new Kvm(js).open(buckets.identities());
    const ipcacheKv = await ctx.kv(buckets.ipcache(), { history: 1 });
    const atomic = config.atomicBatches
      ? await enableAtomicBatches(ctx.nc, kv)
      : { enabled: false, reason: 'not asked for (--atomic-batches)' };
    log.info(
      { event: 'identity.atomic-batches', enabled: atomic.enabled, reason: atomic.reason },
      atomic.enabled
        ? 'new identities are claimed with one atomic batch'
        : 'new identities are claimed with single writes',
    );
    const executor = new JetStreamKvExecutor(kv, {
      nc: ctx.nc,
      bucket: buckets.identities(),
      timeoutMs: config.kvTimeout,
      atomic: atomic.enabled,
    });
    // Stopped last (components stop in reverse order): writes in flight fail, none hang.
    ctx.add({ name: 'kv-writer', stop: () => executor.close() });
    const mirror = new IdentityMirror();
    const leading = { gc: undefined as GarbageCollector | undefined };
    const metrics = createIdentityMetrics(ctx.metrics.registry, {
      inUse: () => mirror.table.bindings,
      reservations: () => leading.gc?.reservations ?? 0,
      references: () => mirror.references,
      nodes: () => mirror.nodes,
      gcLeader: () => (leading.gc?.leader === true ? 1 : 0),
      invalidRecords: () => mirror.invalid,
    });

    let watch: KvWatch | undefined;
    const store = await ResourceStore.open(ctx.nc, { replicas: config.kvReplicas });
    const namespaces = new Informer(store, {
      kind: 'Namespace',
      log: ctx.logger('informer'),
      metrics: ctx.metrics.informers,
    });
    const allocator = new IdentityAllocator({
      executor,
      mirror,
      range,
      clusterName: cluster.name,
      filter,
      deadlineMs: config.allocationDeadline,
      nodeLeaseTtlMs: config.nodeLeaseTtl,
      mirrorSynced: () => watch?.isSynced === true,
      namespaceLabels: (ns) => namespaces.get('', ns)?.metadata.labels ?? undefined,
      metrics,
      limits: { maxNodes: config.maxNodes, maxHoldsPerNode: config.maxIdentitiesPerNode },
    });
    const ipcache = new IpcacheWriter(ipcacheKv, {
      maxClaimsPerPrefix: config.maxIpcacheClaims,
      onWrite: (op) => metrics.ipcacheWrites.inc({ op }),
      onLimited: () => metrics.limited.inc({ limit: 'ipcache_claims' }),
    });
    const nodeClaims = new NodeClaimCheck(
      () => new Kvm(js).open(buckets.ipam()),
      (reason) => metrics.claimsRefused.inc({ reason }),
    );
    const crd = config.mirrorCiliumIdentities
      ? new CiliumIdentityMirror(store, mirror, ctx.logger('ciliumidentity'), metrics)
      : undefined;

    const synced = (): boolean => watch?.isSynced === true && namespaces.synced;
    const gc = new GarbageCollector({
      executor,
      mirror,
      graceMs: config.gcGrace,
      holdMs,
      intervalMs,
      synced,
      log: ctx.logger('gc'),
      metrics,
      controllers: ctx.metrics.controllers,
    });
    leading.gc = gc;

    ctx.endpoint({
      name: 'allocate',
      subject: subjects.nodeEndpointAll(IDENTITY_COMPONENT, 'allocate'),
      nodeScoped: true,
      request: IdentityAllocateRequestSchema,
      reply: IdentityAllocateReplySchema,
      handler: (req) => allocator.allocate(req),
    });
    ctx.endpoint({
      name: 'release',
      subject: subjects.nodeEndpointAll(IDENTITY_COMPONENT, 'release'),
      nodeScoped: true,
      request: IdentityReleaseRequestSchema,
      reply: IdentityReleaseReplySchema,
      handler: (req) => allocator.release(req),
    });
    ctx.endpoint({
      name: 'lookup',
      subject: identitySubject('lookup'),
      request: IdentityLookupRequestSchema,
      reply: IdentityInfoSchema,
      handler: (req) => allocator.lookup(req),
    });
    ctx.endpoint({
      name: 'heartbeat',
      subject: subjects.nodeEndpointAll(IDENTITY_COMPONENT, 'heartbeat'),
      nodeScoped: true,
      request: IdentityHeartbeatRequestSchema,
      reply: IdentityHeartbeatReplySchema,
      handler: (req) => allocator.heartbeat(req),
    });
    ctx.endpoint({
      name: 'list',
      subject: identitySubject('list'),
      request: IdentityListRequestSchema.optional().transform((v) => v ?? {}),
      reply: IdentityListReplySchema,
      handler: (req) => allocator.list(req),
    });
    ctx.endpoint({
      name: 'ipcache-upsert',
      subject: identitySubject('ipcache-upsert'),
      request: IpcacheUpsertRequestSchema,
      reply: IpcacheReplySchema,
      handler: (req) => ipcache.upsert(req),
    });
    ctx.endpoint({
      name: 'ipcache-delete',
      subject: identitySubject('ipcache-delete'),
      request: IpcacheDeleteRequestSchema,
      reply: IpcacheReplySchema,
      handler: (req) => ipcache.delete(req.prefix, req.ownerKey),
    });
    // A node's claims: only for addresses IPAM gave its own pods.
    ctx.endpoint({
      name: 'node-ipcache-upsert',
      subject: subjects.nodeEndpointAll(IDENTITY_COMPONENT, 'ipcache-upsert'),
      nodeScoped: true,
      request: IpcacheUpsertRequestSchema,
      reply: IpcacheReplySchema,
      handler: async (req, { node }) => {
        await nodeClaims.check(node!, req, 'upsert');
        return ipcache.upsert(req);
      },
    });
    ctx.endpoint({
      name: 'node-ipcache-delete',
      subject: subjects.nodeEndpointAll(IDENTITY_COMPONENT, 'ipcache-delete'),
      nodeScoped: true,
      request: IpcacheDeleteRequestSchema,
      reply: IpcacheReplySchema,
      handler: async (req, { node }) => {
        await nodeClaims.check(node!, req, 'delete');
        return ipcache.delete(req.prefix, req.ownerKey);
      },
    });

    const gate = ctx.readiness.gate('initial-sync', 'identity bucket and namespaces not loaded');
    ctx.add({
      name: 'identity-watch',
      start: async () => {
        watch = await watchKv(
          js,
          kv,
          { filter: IdentityMirror.WATCH_FILTERS, decode: decodeText },
          (ev) => {
            const id = mirror.apply(ev.key, ev.value, ev.revision, ev.initial);
            if (id !== undefined) crd?.touch(id);
          },
        );
      },
      stop: () => watch?.stop(),
    });
    ctx.add({
      name: 'namespaces',
      start: () => namespaces.start(),
      stop: () => namespaces.stop(),
    });
    ctx.add({
      name: 'initial-sync',
      start: () => {
        void watch!.synced.then(() => {
          gate.done();
          log.info(
            { event: 'identity.synced', identities: mirror.table.bindings },
            'identity bucket loaded',
          );
        });
      },
    });
    ctx.add({
      name: 'gc-lease',
      start: async () => {
        const lease = await ctx.lease('identity-gc', {
          ttlMs: config.gcLeaseTtl,
          onAcquired: (token) => {
            gc.acquired(token);
            // The leader's own writes, retried for as long as it leads.
            void (async () => {
              await watch!.synced;
              for (let attempt = 0; gc.leader; attempt++) {
                try {
                  await ipcache.ensureWorld(config.dualStack);
                  if (gc.leader) await crd?.lead();
                  return;
                } catch (err) {
                  log.warn({ event: 'identity.lead_failed', err }, 'leader start-up work failed');
                  await new Promise((r) => setTimeout(r, Math.min(30_000, 500 * 2 ** attempt)));
                }
              }
            })();
          },
          onLost: () => {
            gc.lost();
            crd?.resign();
          },
        });
        ctx.add({
          name: 'gc-stop',
          stop: async () => {
            await lease.stop();
            await gc.stop();
            await crd?.stop();
          },
        });
        await lease.start();
      },
    });
  },
};
