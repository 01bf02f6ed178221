// Finding every running Ciliate service instance over NATS: $SRV.PING for who is there, then
// each instance's health subject for how it is.
import {
  HealthReportSchema,
  componentOf,
  serviceMetadataKeys,
  subjects,
  type HealthReport,
} from '@ciliate/contracts';
import { Svcm } from '@nats-io/services';
import { NoRespondersError, type NatsConnection } from '@nats-io/transport-node';

export interface DiscoveredInstance {
  component: string;
  instanceId: string;
  version: string;
  node: string;
  metadata: Record<string, string>;
}

/** Every Ciliate micro service instance that answers a ping within `maxWaitMs`. */
export async function discoverInstances(
  nc: NatsConnection,
  opts: { maxWaitMs?: number } = {},
): Promise<DiscoveredInstance[]> {
  const client = new Svcm(nc).client({ strategy: 'timer', maxWait: opts.maxWaitMs ?? 1000 });
  const out: DiscoveredInstance[] = [];
  try {
    for await (const s of await client.ping()) {
      const component = componentOf(s.name);
      if (component === undefined) continue;
      const metadata = s.metadata ?? {};
      out.push({
        component,
        instanceId: s.id,
        version: s.version,
        node: metadata[serviceMetadataKeys.node] ?? 'unknown',
        metadata,
      });
    }
  } catch (err) {
    if (!(
      err instanceof NoRespondersError ||
      (err instanceof Error && err.cause instanceof NoRespondersError)
    ))
      throw err;
  }
  return out.sort(
    (a, b) =>
      a.component.localeCompare(b.component) ||
      a.node.localeCompare(b.node) ||
      a.instanceId.localeCompare(b.instanceId),
  );
}

const decoder = new TextDecoder();

/** One instance's health report, or undefined when it does not answer in time. */
export async function fetchHealth(
  nc: NatsConnection,
  inst: DiscoveredInstance,
  timeoutMs = 1000,
): Promise<HealthReport | undefined> {
  try {
    const msg = await nc.request(
      subjects.health(inst.node, inst.component, inst.instanceId),
      undefined,
      { timeout: timeoutMs },
    );
    const parsed = HealthReportSchema.safeParse(JSON.parse(decoder.decode(msg.data)));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
