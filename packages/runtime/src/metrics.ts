import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

import { createReconcilerMetrics, type ReconcilerMetrics } from './controller/reconciler.js';

export { Counter, Gauge, Histogram, Registry };

/** The metrics the runtime keeps for every service, registered on the service's own registry. */
export interface RuntimeMetrics {
  registry: Registry;
  natsConnected: Gauge;
  ready: Gauge;
  requests: Counter<'endpoint' | 'outcome'>;
  requestSeconds: Histogram<'endpoint'>;
  /** Requests answered at once because of a limit: `inflight` (busy) or `size` (too_large). */
  refused: Counter<'endpoint' | 'reason'>;
  /** Requests being handled now, all endpoints together (what --max-inflight-requests caps). */
  inflight: Gauge;
  natsReconnects: Counter;
  /** Shared by every reconcile loop of the service (label `controller`). */
  controllers: ReconcilerMetrics;
  /** What the service's informers could not use, by kind. */
  informers: { invalidObjects: Counter<'kind'>; handlerErrors: Counter<'kind'> };
}

export function createRuntimeMetrics(
  labels: { component: string; node: string },
  sources: { inflight?: () => number } = {},
): RuntimeMetrics {
  const registry = new Registry();
  registry.setDefaultLabels(labels);
  collectDefaultMetrics({ register: registry, prefix: 'ciliate_' });
  return {
    registry,
    natsConnected: new Gauge({
      name: 'ciliate_runtime_nats_connected',
      help: '1 while the NATS connection is up',
      registers: [registry],
    }),
    ready: new Gauge({
      name: 'ciliate_runtime_ready',
      help: '1 while every readiness check passes',
      registers: [registry],
    }),
    requests: new Counter({
      name: 'ciliate_runtime_requests_total',
      help: 'Requests handled by this service, by endpoint and outcome (ok or an error code)',
      labelNames: ['endpoint', 'outcome'],
      registers: [registry],
    }),
    requestSeconds: new Histogram({
      name: 'ciliate_runtime_request_duration_seconds',
      help: 'Time to handle one request',
      labelNames: ['endpoint'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    refused: new Counter({
      name: 'ciliate_rpc_refused_total',
      help: 'Requests answered at once without being handled, by endpoint and the limit they hit (inflight: --max-inflight-requests, size: --max-request-bytes)',
      labelNames: ['endpoint', 'reason'],
      registers: [registry],
    }),
    inflight: new Gauge({
      name: 'ciliate_rpc_inflight_requests',
      help: 'Requests being handled now, all endpoints together',
      registers: [registry],
      collect() {
        if (sources.inflight) this.set(sources.inflight());
      },
    }),
    natsReconnects: new Counter({
      name: 'ciliate_runtime_nats_reconnects_total',
      help: 'Times the NATS connection was re-established',
      registers: [registry],
    }),
    controllers: createReconcilerMetrics(registry),
    informers: {
      invalidObjects: new Counter({
        name: 'ciliate_informer_invalid_objects_total',
        help: 'Stored objects an informer ignored because they failed validation, by kind',
        labelNames: ['kind'],
        registers: [registry],
      }),
      handlerErrors: new Counter({
        name: 'ciliate_informer_handler_errors_total',
        help: 'Informer event handlers that threw, by kind',
        labelNames: ['kind'],
        registers: [registry],
      }),
    },
  };
}
