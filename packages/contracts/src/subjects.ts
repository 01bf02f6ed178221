// Every subject Ciliate uses is built here. Layout: ciliate.<wire version>.<area>.<tokens...>,
// with the tokens people filter on (node, component, ...) as whole tokens so that
// `nats sub 'ciliate.v1.health.node-1.>'` narrows on the server.
import { PROJECT, WIRE_VERSION } from './version.js';
import { nodeFromToken, nodeToken } from './nodes.js';
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
  /**
   * A request/reply endpoint a component serves for one node: the node is a subject token, so
   * NATS permissions can let a node's credentials reach only its own subjects. A request's
   * `node` field, when it has one, must name the subject's node (the runtime checks).
   */
  nodeEndpoint(component: string, node: string, name: string): string {
    return `${ROOT}.${token('component', component)}.node.${token('node', nodeToken(node))}.${token('endpoint', name)}`;
  },
  /** The subscription that takes a node-scoped endpoint's requests for every node. */
  nodeEndpointAll(component: string, name: string): string {
    return `${ROOT}.${token('component', component)}.node.*.${token('endpoint', name)}`;
  },
  /** A filter over node-scoped endpoints: one node's or every node's, one endpoint or all. */
  nodeEndpointFilter(component: string, f: { node?: string; endpoint?: string } = {}): string {
    const node = f.node === undefined ? '*' : token('node', nodeToken(f.node));
    const name = f.endpoint === undefined ? '*' : token('endpoint', f.endpoint);
    return `${ROOT}.${token('component', component)}.node.${node}.${name}`;
  },
  /** An event a component publishes: `ciliate.v1.<component>.events.<name>`. */
  event(component: string, name: string): string {
    return `${ROOT}.${token('component', component)}.events.${token('event', name)}`;
  },
} as const;

/** The node of a node-scoped endpoint subject (see subjects.nodeEndpoint), else undefined. */
export function nodeOfEndpointSubject(subject: string): string | undefined {
  const parts = subject.split('.');
  if (parts.length !== 6 || `${parts[0]}.${parts[1]}` !== ROOT || parts[3] !== 'node') {
    return undefined;
  }
  return nodeFromToken(parts[4]!);
}

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
