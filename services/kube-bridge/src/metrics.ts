import { Counter, Gauge, type Registry } from '@ciliate/runtime';

export interface BridgeMetrics {
  leader: Gauge;
  apiObjects: Gauge<'kind'>;
  storeObjects: Gauge<'kind'>;
  kindAvailable: Gauge<'kind'>;
  events: Counter<'kind' | 'type'>;
  lists: Counter<'kind'>;
  relists: Counter<'kind' | 'reason'>;
  invalid: Counter<'kind'>;
  unknownFields: Counter<'kind'>;
  conflicts: Counter<'kind'>;
  storeWrites: Counter<'kind' | 'op'>;
  writebacks: Counter<'kind' | 'op' | 'outcome'>;
  apiRequests: Counter<'verb' | 'resource' | 'code'>;
  reconcileErrors: Counter<'kind'>;
  queueDepth: Gauge;
  leaseTransitions: Counter;
}

/** The bridge's metrics, `ciliate_kube_bridge_*`, on the service's registry. */
export function createBridgeMetrics(registry: Registry): BridgeMetrics {
  const registers = [registry];
  return {
    leader: new Gauge({
      name: 'ciliate_kube_bridge_leader',
      help: '1 while this replica holds the Kubernetes Lease and writes',
      registers,
    }),
    apiObjects: new Gauge({
      name: 'ciliate_kube_bridge_api_objects',
      help: 'Objects in the API, per kind, as this replica last saw them (list and watch)',
      labelNames: ['kind'],
      registers,
    }),
    storeObjects: new Gauge({
      name: 'ciliate_kube_bridge_synced_objects',
      help: 'Objects in the resource store imported from Kubernetes, per kind',
      labelNames: ['kind'],
      registers,
    }),
    kindAvailable: new Gauge({
      name: 'ciliate_kube_bridge_kind_available',
      help: '1 when the API serves the kind, 0 when it does not (its CRD is missing)',
      labelNames: ['kind'],
      registers,
    }),
    events: new Counter({
      name: 'ciliate_kube_bridge_watch_events_total',
      help: 'Watch events received from the API, per kind and type',
      labelNames: ['kind', 'type'],
      registers,
    }),
    lists: new Counter({
      name: 'ciliate_kube_bridge_lists_total',
      help: 'Full lists of a kind (initial, after 410 Gone, periodic resync)',
      labelNames: ['kind'],
      registers,
    }),
    relists: new Counter({
      name: 'ciliate_kube_bridge_relists_total',
      help: 'Lists after the first, per kind and reason (gone, resync)',
      labelNames: ['kind', 'reason'],
      registers,
    }),
    invalid: new Counter({
      name: 'ciliate_kube_bridge_invalid_objects_total',
      help: 'API objects refused by validation (not written to the store), per kind',
      labelNames: ['kind'],
      registers,
    }),
    unknownFields: new Counter({
      name: 'ciliate_kube_bridge_unknown_fields_total',
      help: 'Fields of API objects that Ciliate does not model and dropped, per kind',
      labelNames: ['kind'],
      registers,
    }),
    conflicts: new Counter({
      name: 'ciliate_kube_bridge_conflicts_total',
      help: 'Objects present both in the API and, from another source, in the store (left alone)',
      labelNames: ['kind'],
      registers,
    }),
    storeWrites: new Counter({
      name: 'ciliate_kube_bridge_store_writes_total',
      help: 'Writes to the resource store, per kind and operation (put, delete, status)',
      labelNames: ['kind', 'op'],
      registers,
    }),
    writebacks: new Counter({
      name: 'ciliate_kube_bridge_writebacks_total',
      help: 'Writes to the API (status, create, update, delete), per kind, operation and outcome',
      labelNames: ['kind', 'op', 'outcome'],
      registers,
    }),
    apiRequests: new Counter({
      name: 'ciliate_kube_bridge_api_requests_total',
      help: 'Requests to the Kubernetes API, per RBAC verb, resource and HTTP status (0: no answer)',
      labelNames: ['verb', 'resource', 'code'],
      registers,
    }),
    reconcileErrors: new Counter({
      name: 'ciliate_kube_bridge_reconcile_errors_total',
      help: 'Failed reconciliations of one object (retried with backoff), per kind',
      labelNames: ['kind'],
      registers,
    }),
    queueDepth: new Gauge({
      name: 'ciliate_kube_bridge_queue_depth',
      help: 'Objects waiting to be reconciled',
      registers,
    }),
    leaseTransitions: new Counter({
      name: 'ciliate_kube_bridge_leader_transitions_total',
      help: 'Times this replica became or stopped being the leader',
      registers,
    }),
  };
}
