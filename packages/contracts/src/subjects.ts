// Every subject Ciliate uses is built here. Layout: ciliate.<wire version>.<area>.<tokens...>,
// with the tokens people filter on (node, component, ...) as whole tokens so that
// `nats sub 'ciliate.v1.health.node-1.>'` narrows on the server.
import { PROJECT, WIRE_VERSION } from './version.js';
import { nodeToken } from './nodes.js';
import { natsName, token } from './tokens.js';

const ROOT = `${PROJECT}.${WIRE_VERSION}`;

export const subjects = {
  /** Health of one service instance: request/reply, answered with a HealthReport. */
  health(node: string, component: string, instanceId: string): string {
    return `${ROOT}.health.${token('node', nodeToken(node))}.${token('component', component)}.${token('instanceId', instanceId)}`;
  },
  /** Every health subject (for taps). */
  healthAll(): string {
    return `${ROOT}.health.>`;
  },
  /** A request/reply endpoint of a component's micro service. */
  endpoint(component: string, name: string): string {
    return `${ROOT}.${token('component', component)}.${token('endpoint', name)}`;
  },
  /** An event a component publishes: `ciliate.v1.<component>.events.<name>`. */
  event(component: string, name: string): string {
    return `${ROOT}.${token('component', component)}.events.${token('event', name)}`;
  },
} as const;

/** Micro service names: discoverable through $SRV.PING/INFO/STATS. */
export const SERVICE_NAME_PREFIX = `${PROJECT}-`;

export function serviceName(component: string): string {
  return natsName('component', `${SERVICE_NAME_PREFIX}${component}`);
}

/** The component of a micro service name, or undefined when the service is not Ciliate's. */
export function componentOf(name: string): string | undefined {
  return name.startsWith(SERVICE_NAME_PREFIX) ? name.slice(SERVICE_NAME_PREFIX.length) : undefined;
}

/** Keys of the metadata every Ciliate micro service registers. */
export const serviceMetadataKeys = {
  node: 'ciliate.node',
  cluster: 'ciliate.cluster',
  component: 'ciliate.component',
  contracts: 'ciliate.contracts',
  pid: 'ciliate.pid',
} as const;
