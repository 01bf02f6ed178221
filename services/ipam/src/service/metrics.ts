// The IPAM service's metrics, registered on the service's own registry.
import { Counter, Gauge, Histogram, type Registry } from '@ciliate/runtime';

export interface IpamMetrics {
  poolCapacity: Gauge<'pool' | 'family'>;
  poolUsed: Gauge<'pool' | 'family'>;
  poolAvailable: Gauge<'pool' | 'family'>;
  allocationSeconds: Histogram<'kind'>;
  exhausted: Counter<'pool'>;
  conflicts: Counter<'kind'>;
  drift: Counter<'kind'>;
  /** Sets the three pool gauges at once. */
  setPool(pool: string, family: string, capacity: number, used: number): void;
}

export function createIpamMetrics(registry: Registry): IpamMetrics {
  const registers = [registry];
  const poolCapacity = new Gauge({
    name: 'ciliate_ipam_pool_capacity',
    help: 'Addresses (LB pools) or per-node CIDRs (cluster pool) a pool can hand out',
    labelNames: ['pool', 'family'],
    registers,
  });
  const poolUsed = new Gauge({
    name: 'ciliate_ipam_pool_used',
    help: 'Addresses or per-node CIDRs of a pool in use',
    labelNames: ['pool', 'family'],
    registers,
  });
  const poolAvailable = new Gauge({
    name: 'ciliate_ipam_pool_available',
    help: 'Addresses or per-node CIDRs of a pool still free',
    labelNames: ['pool', 'family'],
    registers,
  });
  return {
    poolCapacity,
    poolUsed,
    poolAvailable,
    allocationSeconds: new Histogram({
      name: 'ciliate_ipam_allocation_duration_seconds',
      help: 'Time to allocate (pod: a pod address, node: a node pod CIDR), KV write included',
      labelNames: ['kind'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    }),
    exhausted: new Counter({
      name: 'ciliate_ipam_exhausted_total',
      help: 'Allocations refused because the pool (pod CIDR, cluster pool, LB pool) was full',
      labelNames: ['pool'],
      registers,
    }),
    conflicts: new Counter({
      name: 'ciliate_ipam_conflicts_total',
      help: 'Conflicts: cas (another replica wrote first; retried), lb_pool (overlapping pools), lb_request (requested address taken or outside every pool)',
      labelNames: ['kind'],
      registers,
    }),
    drift: new Counter({
      name: 'ciliate_ipam_drift_total',
      help: 'State corrected by a reconciler: pod_ip (owner pod gone), node_cidr (node gone or CIDRs changed), cilium_node (CiliumNode rewritten)',
      labelNames: ['kind'],
      registers,
    }),
    setPool(pool, family, capacity, used) {
      poolCapacity.set({ pool, family }, capacity);
      poolUsed.set({ pool, family }, used);
      poolAvailable.set({ pool, family }, Math.max(0, capacity - used));
    },
  };
}
