// ciliate_identity_* metrics, registered on the service's own registry.
import { Counter, Gauge, type Registry } from '@ciliate/runtime';

export interface IdentityMetrics {
  allocations: Counter<'outcome'>;
  frees: Counter;
  collisionsAvoided: Counter;
  gcRuns: Counter<'result'>;
  releases: Counter<'result'>;
  expiredNodes: Counter;
  ipcacheWrites: Counter<'op'>;
  claimsRefused: Counter<'reason'>;
  mirrorWrites: Counter<'op'>;
  /** Requests refused at a cap: `nodes`, `holds_per_node`, `ipcache_claims`. */
  limited: Counter<'limit'>;
}

export function createIdentityMetrics(
  registry: Registry,
  gauges: {
    inUse: () => number;
    reservations: () => number;
    references: () => number;
    nodes: () => number;
    gcLeader: () => number;
    invalidRecords: () => number;
  },
): IdentityMetrics {
  const gauge = (name: string, help: string, read: () => number): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  };
  gauge(
    'ciliate_identity_identities_in_use',
    'Label sets bound to a number (this replica’s view of the store)',
    gauges.inUse,
  );
  gauge(
    'ciliate_identity_reservations',
    'Numbers reserved but bound to nothing (in flight or orphaned), as the GC leader last found them; 0 on other replicas',
    gauges.reservations,
  );
  gauge(
    'ciliate_identity_references',
    'Node references to identities (ref.<N>.<node> keys)',
    gauges.references,
  );
  gauge('ciliate_identity_nodes', 'Nodes with a lease record', gauges.nodes);
  gauge(
    'ciliate_identity_gc_leader',
    '1 while this replica holds the identity-gc lease',
    gauges.gcLeader,
  );
  gauge(
    'ciliate_identity_invalid_records',
    'Malformed records skipped in the identity bucket',
    gauges.invalidRecords,
  );
  return {
    allocations: new Counter({
      name: 'ciliate_identity_allocations_total',
      help: 'Allocation requests answered, by outcome (created, converged, existing, revived, reserved)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    frees: new Counter({
      name: 'ciliate_identity_frees_total',
      help: 'Identities freed by the garbage collector',
      registers: [registry],
    }),
    collisionsAvoided: new Counter({
      name: 'ciliate_identity_collisions_avoided_total',
      help: 'Compare-and-set conflicts met and resolved while allocating (duplicates avoided)',
      registers: [registry],
    }),
    gcRuns: new Counter({
      name: 'ciliate_identity_gc_runs_total',
      help: 'Garbage collection passes, by result (ok, skipped-unsynced, failed)',
      labelNames: ['result'],
      registers: [registry],
    }),
    releases: new Counter({
      name: 'ciliate_identity_gc_releases_total',
      help: 'Release machines run by the GC, by result (freed, revived, gone, failed, fenced)',
      labelNames: ['result'],
      registers: [registry],
    }),
    expiredNodes: new Counter({
      name: 'ciliate_identity_expired_nodes_total',
      help: 'Nodes whose lease expired and whose references were dropped',
      registers: [registry],
    }),
    claimsRefused: new Counter({
      name: 'ciliate_identity_node_claims_refused_total',
      help: "ipcache claims a node made for an address that is not its own pod's, by reason",
      labelNames: ['reason'],
      registers: [registry],
    }),
    ipcacheWrites: new Counter({
      name: 'ciliate_identity_ipcache_writes_total',
      help: 'Writes to the ipcache bucket, by operation (upsert, delete)',
      labelNames: ['op'],
      registers: [registry],
    }),
    mirrorWrites: new Counter({
      name: 'ciliate_identity_ciliumidentity_writes_total',
      help: 'CiliumIdentity objects written to the resource store, by operation (apply, delete)',
      labelNames: ['op'],
      registers: [registry],
    }),
    limited: new Counter({
      name: 'ciliate_identity_limited_total',
      help: 'Requests refused (exhausted) at a cap, by limit (nodes: --max-nodes, holds_per_node: --max-identities-per-node, ipcache_claims: --max-ipcache-claims)',
      labelNames: ['limit'],
      registers: [registry],
    }),
  };
}
