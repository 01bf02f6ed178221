// The spine every Ciliate service stands on. `createService` builds a service from its
// definition without touching the process (tests call it directly); `runMain` is what a
// service's main.ts calls: it adds signal handling and exit codes.
import { randomUUID } from 'node:crypto';

import {
  CONTRACTS_VERSION,
  buckets,
  clusterProblem,
  inboxPrefix,
  NODE_ROLES,
  type Role,
  type ClusterRef,
  HealthReportSchema,
  serviceMetadataKeys,
  serviceName,
  subjects,
  type HealthReport,
} from '@ciliate/contracts';
import { Kvm, type KV } from '@nats-io/kv';
import { Svcm, type Service } from '@nats-io/services';
import type { NatsConnection } from '@nats-io/transport-node';
import type { DestinationStream } from 'pino';
import { z } from 'zod';

import { commonSettings } from './common-settings.js';
import {
  ConfigError,
  describeSettings,
  loadConfig,
  type ConfigOf,
  type Settings,
} from './config.js';
import { Readiness } from './health.js';
import { startHttp, type HttpListener } from './http.js';
import { Lease } from './lease.js';
import { Lifecycle, type Component } from './lifecycle.js';
import { createLogger, type Logger } from './log.js';
import { createRuntimeMetrics, type RuntimeMetrics } from './metrics.js';
import { connectNats, type NatsLink } from './nats.js';
import {
  RequestGate,
  addEndpoint,
  createRpcClient,
  subscribeEvents,
  type EndpointDefinition,
  type RpcClient,
} from './rpc.js';
import { disabledTracing, setupTracing, tracesExporterFromEnv, type Tracing } from './tracing.js';

type Common = ReturnType<typeof commonSettings>;
export type ServiceConfig<S extends Settings> = ConfigOf<Common> & ConfigOf<S>;

export interface ServiceContext<S extends Settings> {
  readonly component: string;
  readonly version: string;
  readonly instanceId: string;
  readonly config: ServiceConfig<S>;
  /** The cluster this service belongs to (settings clusterName, clusterId), checked at start. */
  readonly cluster: ClusterRef;
  readonly log: Logger;
  /** A child logger for one part of the service, with its `subsys`. */
  logger(subsys: string): Logger;
  readonly metrics: RuntimeMetrics;
  readonly tracing: Tracing;
  readonly nc: NatsConnection;
  readonly rpc: RpcClient;
  readonly readiness: Readiness;
  /** Adds a part that starts after those added before it and stops before them. */
  add(component: Component): void;
  /** Subscribes to JSON events (CONSUMER spans continue the publisher's trace). */
  subscribe<E extends z.ZodType>(
    subject: string,
    schema: E,
    handler: (event: z.output<E>) => Promise<void> | void,
    opts?: { queue?: string },
  ): void;
  /** Adds a request/reply endpoint to this service's micro service. */
  endpoint<Req extends z.ZodType, Res extends z.ZodType>(def: EndpointDefinition<Req, Res>): void;
  /** Opens (or creates) a JetStream KV bucket with this service's replica count. */
  kv(bucket: string, opts?: { history?: number; ttlMs?: number }): Promise<KV>;
  /** A lease for singleton work; start it (or add it as a component) to contend. */
  lease(
    name: string,
    opts: {
      ttlMs: number;
      onAcquired?: (token: number) => void;
      onLost?: (reason: string) => void;
    },
  ): Promise<Lease>;
}

export interface ServiceDefinition<S extends Settings> {
  /** One token: ipam, identity, datapath, ... */
  component: string;
  /** The NATS principal it runs as (node-scoped roles act for --node); see contracts' access. */
  role: Role;
  version: string;
  description: string;
  settings: S;
  /** Default of --http-address (each service has its own port so that they can share a host). */
  httpAddress?: string;
  /** Wires the service's parts; runs after NATS is connected and the micro service exists. */
  setup(ctx: ServiceContext<S>): Promise<void> | void;
}

export interface RunningService {
  readonly instanceId: string;
  readonly httpAddress: string | undefined;
  readonly nc: NatsConnection;
  health(): HealthReport;
  /** Stops every part in reverse order and drains NATS. Safe to call twice. */
  stop(): Promise<void>;
}

export interface ServiceRunOptions {
  argv?: readonly string[];
  env?: Readonly<Record<string, string | undefined>>;
  logDestination?: DestinationStream;
}

const CLUSTER_SETTINGS = {
  name: ['clusterName', 'cluster-name', 'CILIATE_CLUSTER_NAME'],
  id: ['clusterId', 'cluster-id', 'CILIATE_CLUSTER_ID'],
  maxConnectedClusters: [
    'maxConnectedClusters',
    'max-connected-clusters',
    'CILIATE_MAX_CONNECTED_CLUSTERS',
  ],
} as const;

/** The cluster settings as a ClusterRef, by Cilium's rules; a bad one names its setting. */
function clusterOf(config: {
  clusterName: string;
  clusterId: number;
  maxConnectedClusters: string;
}): ClusterRef {
  const input = {
    name: config.clusterName,
    id: config.clusterId,
    maxConnectedClusters: Number(config.maxConnectedClusters),
  };
  const p = clusterProblem(input);
  if (p !== undefined) {
    const [key, flag, env] = CLUSTER_SETTINGS[p.field];
    throw new ConfigError(
      key,
      `invalid setting --${flag} (${env}) [${key}]: ${JSON.stringify(p.value)} ${p.reason}`,
    );
  }
  return input as ClusterRef;
}

export function allSettings<S extends Settings>(def: ServiceDefinition<S>): Common & S {
  return { ...commonSettings({ httpAddress: def.httpAddress ?? '127.0.0.1:0' }), ...def.settings };
}

export async function createService<S extends Settings>(
  def: ServiceDefinition<S>,
  opts: ServiceRunOptions = {},
): Promise<RunningService> {
  const env = opts.env ?? process.env;
  const settings = allSettings(def);
  const config = loadConfig(settings, { argv: opts.argv ?? [], env }) as ServiceConfig<S>;
  const cluster = clusterOf(config);
  // Until the micro service is registered and NATS gives it an id, logs carry a provisional one.
  let instanceId = randomUUID().replaceAll('-', '').slice(0, 22);
  const startedAt = new Date().toISOString();
  const log = createLogger({
    component: def.component,
    node: config.node,
    instanceId: () => instanceId,
    level: config.logLevel,
    ...(opts.logDestination ? { destination: opts.logDestination } : {}),
  });
  // Set up for real once the instance id is known (when the micro service registers).
  let tracing: Tracing = disabledTracing;
  // One gate for every endpoint of the process: the in-flight cap is the service's, not each
  // endpoint's.
  const gate = new RequestGate(
    { maxInflight: config.maxInflightRequests, maxRequestBytes: config.maxRequestBytes },
    def.component,
  );
  const metrics = createRuntimeMetrics(
    { component: def.component, node: config.node },
    { inflight: () => gate.inflight },
  );
  const readiness = new Readiness();
  const lifecycle = new Lifecycle(log.child({ subsys: 'lifecycle' }));

  let http: HttpListener | undefined;
  let link: NatsLink | undefined;
  let service: Service | undefined;

  const health = (): HealthReport => {
    const r = readiness.evaluate();
    return {
      component: def.component,
      instanceId,
      node: config.node,
      version: def.version,
      startedAt,
      alive: true,
      ready: r.ready,
      checks: r.checks,
    };
  };

  // Tracing stops last, so that spans of the final requests are still exported.
  lifecycle.add({ name: 'tracing', stop: () => tracing.shutdown() });
  // The HTTP listener comes first, so /healthz answers while NATS is still being reached.
  lifecycle.add({
    name: 'http',
    start: async () => {
      if (config.httpAddress === '') return;
      http = await startHttp(config.httpAddress, { registry: metrics.registry, readiness });
      log.info(
        { event: 'http.listening', address: http.address },
        'serving /metrics, /healthz, /readyz',
      );
    },
    stop: () => http?.close(),
  });
  lifecycle.add({
    name: 'nats',
    start: async () => {
      const natsLog = log.child({ subsys: 'nats' });
      link = await connectNats(
        {
          servers: config.natsUrl,
          name: `${serviceName(def.component)}@${config.node}`,
          credsFile: config.natsCreds,
          nkeySeedFile: config.natsNkey,
          tlsCaFile: config.natsTlsCa,
          tlsCertFile: config.natsTlsCert,
          tlsKeyFile: config.natsTlsKey,
          inboxPrefix: inboxPrefix(
            NODE_ROLES.has(def.role) ? { role: def.role, node: config.node } : { role: def.role },
          ),
          waitOnFirstConnect: true,
        },
        natsLog,
        {
          onChange: (up) => metrics.natsConnected.set(up ? 1 : 0),
          onReconnect: () => metrics.natsReconnects.inc(),
        },
      );
      readiness.add('nats', () =>
        link?.connected() ? { ok: true } : { ok: false, detail: 'not connected to NATS' },
      );
    },
    stop: async () => {
      if (link && !link.nc.isClosed()) {
        await link.nc.drain().catch(() => link?.nc.close());
      }
      await link?.closed;
    },
  });
  lifecycle.add({
    name: 'micro-service',
    start: async () => {
      service = await new Svcm(link!.nc).add({
        name: serviceName(def.component),
        version: def.version,
        description: def.description,
        metadata: {
          [serviceMetadataKeys.node]: config.node,
          [serviceMetadataKeys.cluster]: cluster.name,
          [serviceMetadataKeys.component]: def.component,
          [serviceMetadataKeys.contracts]: CONTRACTS_VERSION,
          [serviceMetadataKeys.pid]: String(process.pid),
        },
      });
      // One id everywhere: $SRV answers, the health subject, logs and traces.
      instanceId = service.info().id;
      tracing = await setupTracing({
        serviceName: serviceName(def.component),
        serviceVersion: def.version,
        instanceId,
        node: config.node,
        env,
      });
      addEndpoint(
        service,
        {
          name: 'health',
          subject: subjects.health(config.node, def.component, service.info().id),
          queue: '',
          request: z.unknown(),
          reply: HealthReportSchema,
          handler: () => health(),
        },
        { tracing, metrics, gate, counted: false, log: log.child({ subsys: 'rpc' }) },
      );
    },
    stop: async () => {
      await service?.stop();
    },
  });
  let readyGauge: NodeJS.Timeout | undefined;
  lifecycle.add({
    name: 'ready-gauge',
    start: () => {
      readyGauge = setInterval(() => metrics.ready.set(readiness.evaluate().ready ? 1 : 0), 1000);
      readyGauge.unref();
    },
    stop: () => clearInterval(readyGauge),
  });
  // Fail fast on a bad OTEL_* value, before anything starts.
  tracesExporterFromEnv(env);

  const start = async (): Promise<void> => {
    await lifecycle.start();
    const nc = link!.nc;
    const rpc = createRpcClient(nc, tracing);
    const kvm = new Kvm(nc);
    const ctx: ServiceContext<S> = {
      component: def.component,
      version: def.version,
      instanceId,
      config,
      cluster,
      log,
      logger: (subsys) => log.child({ subsys }),
      metrics,
      tracing,
      nc,
      rpc,
      readiness,
      add: (c) => lifecycle.add(c),
      subscribe: (subject, schema, handler, o = {}) => {
        const sub = subscribeEvents(nc, subject, schema, handler, {
          tracing,
          metrics,
          log: log.child({ subsys: 'events' }),
          ...o,
        });
        lifecycle.add({ name: `sub:${subject}`, stop: () => sub.unsubscribe() });
      },
      endpoint: (e) =>
        addEndpoint(service!, e, { tracing, metrics, gate, log: log.child({ subsys: 'rpc' }) }),
      kv: async (bucket, o = {}) =>
        kvm.create(bucket, {
          replicas: config.kvReplicas,
          history: o.history ?? 1,
          ...(o.ttlMs !== undefined ? { ttl: o.ttlMs } : {}),
        }),
      lease: async (name, o) => {
        const kv = await ctx.kv(buckets.leases());
        return new Lease({
          kv,
          name,
          holder: `${config.node}/${instanceId}`,
          log: log.child({ subsys: 'lease' }),
          ...o,
        });
      },
    };
    await def.setup(ctx);
    // Parts added by setup start now, after the spine, and stop before it.
    await lifecycle.start();
    log.info({ event: 'service.started', version: def.version }, `${def.component} started`);
  };

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      log.info({ event: 'service.stopping' }, `${def.component} stopping`);
      await lifecycle.stop();
      log.info({ event: 'service.stopped' }, `${def.component} stopped`);
      log.flush();
    })());

  try {
    await start();
  } catch (err) {
    log.error({ event: 'service.start_failed', err }, 'start-up failed');
    await stop();
    throw err;
  }

  return {
    get instanceId() {
      return instanceId;
    },
    get httpAddress() {
      return http?.address;
    },
    get nc() {
      return link!.nc;
    },
    health,
    stop,
  };
}

/**
 * The whole of a service's main: build it from argv and the environment, stop it on SIGTERM or
 * SIGINT. A bad setting prints its message and exits with code 2 before anything starts.
 */
export async function runMain<S extends Settings>(def: ServiceDefinition<S>): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(
      `ciliate-${def.component} ${def.version}: ${def.description}\n\nSettings (flag, variable):\n${describeSettings(allSettings(def))}\n`,
    );
    return;
  }
  let running: RunningService;
  try {
    running = await createService(def, { argv, env: process.env });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`ciliate-${def.component}: ${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(
      `ciliate-${def.component}: failed to start: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    process.exit(1);
  }
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      process.stderr.write(`ciliate-${def.component}: second ${signal}, exiting at once\n`);
      process.exit(1);
    }
    signalled = true;
    const hardStop = setTimeout(() => process.exit(1), 15_000);
    hardStop.unref();
    running.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
