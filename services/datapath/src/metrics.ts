// The datapath's own metrics beside the runtime's (ciliate_datapath_events_total lives with the
// event publisher).
import { Counter, type Registry } from '@ciliate/runtime';

export const REFUSED_METRIC = 'ciliate_datapath_refused_total';

/** What crossed a trust boundary and was refused: a CiliumNode's route, a CNI request. */
export type RefusedWhat = 'route' | 'cni_request';

export type RefusedCounter = Counter<'what' | 'reason'>;

/** `ciliate_datapath_refused_total{what,reason}` on the service's registry (one per registry). */
export function refusedCounter(registry: Registry): RefusedCounter {
  const existing = registry.getSingleMetric(REFUSED_METRIC);
  if (existing) return existing as RefusedCounter;
  return new Counter({
    name: REFUSED_METRIC,
    help: 'Input refused at a trust boundary, by what it was (route, cni_request) and why',
    labelNames: ['what', 'reason'],
    registers: [registry],
  });
}
