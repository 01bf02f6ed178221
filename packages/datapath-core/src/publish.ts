// Local endpoints as the rest of the cluster sees them: an ipcache claim per pod address (so
// other nodes know its identity and, in VXLAN mode, which node it lives on) and a CiliumEndpoint
// object per pod.
import { IPCACHE_NODE_SOURCE, ipcachePodOwnerKey, type IpcacheClaim } from '@ciliate/contracts';

export const IPCACHE_SOURCE = IPCACHE_NODE_SOURCE;

/** The fields of an endpoint that are published (the datapath's EndpointState fits). */
export interface PublishedEndpoint {
  containerId: string;
  owner: { namespace: string; pod: string };
  ip: string;
  endpointId: number;
  identity: number;
  identityLabels?: string[] | undefined;
}

export function claimOf(s: PublishedEndpoint, nodeIP: string): IpcacheClaim {
  return {
    prefix: `${s.ip}/32`,
    identity: s.identity,
    hostIP: nodeIP,
    source: IPCACHE_SOURCE,
    ownerKey: ipcachePodOwnerKey(s.owner.namespace, s.owner.pod),
  };
}

/** Cilium's CiliumEndpoint status for an endpoint. */
export function ciliumEndpointStatus(s: PublishedEndpoint, node: string): Record<string, unknown> {
  return {
    id: s.endpointId,
    identity: { id: s.identity, labels: s.identityLabels ?? [] },
    networking: { addressing: [{ ipv4: s.ip }], node },
    state: 'ready',
    'external-identifiers': {
      'container-id': s.containerId,
      'k8s-namespace': s.owner.namespace,
      'k8s-pod-name': s.owner.pod,
      'pod-name': `${s.owner.namespace}/${s.owner.pod}`,
    },
  };
}

export interface CepDesired {
  namespace: string;
  name: string;
  status: Record<string, unknown>;
}

export interface Publications {
  /** By `prefix|ownerKey`. */
  claims: Map<string, IpcacheClaim>;
  /** By `namespace/name`. */
  ceps: Map<string, CepDesired>;
}

/** Desired claims (by prefix and owner) and CiliumEndpoints (by namespace/name). */
export function desiredPublications(
  endpoints: readonly PublishedEndpoint[],
  node: string,
  nodeIP: string,
): Publications {
  const claims = new Map<string, IpcacheClaim>();
  const ceps = new Map<string, CepDesired>();
  // newest endpoint of a pod name wins (a pod recreated under the same name)
  const sorted = [...endpoints].sort((a, b) => a.endpointId - b.endpointId);
  for (const s of sorted) {
    const c = claimOf(s, nodeIP);
    claims.set(`${c.prefix}|${c.ownerKey}`, c);
    ceps.set(`${s.owner.namespace}/${s.owner.pod}`, {
      namespace: s.owner.namespace,
      name: s.owner.pod,
      status: ciliumEndpointStatus(s, node),
    });
  }
  return { claims, ceps };
}
