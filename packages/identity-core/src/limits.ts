// Caps on the state one caller can make the identity service keep. Without them a client that
// makes up node names grows the node leases (and the replicas' mirrors) without bound, and one
// node that allocates label set after label set grows its holds until the range is spent. Each
// cap is decided here from counts the service keeps, so the decision is plain data in and out.

import { IdentityError } from './errors.js';

export interface NodeLimits {
  /** Nodes with a lease (live or not yet collected). */
  readonly maxNodes: number;
  /** Identities one node holds: references and bindings it created, one per identity. */
  readonly maxHoldsPerNode: number;
}

/** What the service knows of the nodes when a request arrives. */
export interface NodeUsage {
  /** The asking node has a lease already. */
  readonly known: boolean;
  /** Nodes with a lease. */
  readonly nodes: number;
  /** Identities the asking node holds. */
  readonly holds: number;
}

/** A request refused at a cap: which cap, and the error that names the field and the limit. */
export interface NodeLimitRefusal {
  readonly limit: keyof NodeLimits;
  readonly error: IdentityError;
}

/**
 * Why a request of `node` would grow state beyond a cap, or undefined when it may go on.
 * `adds` is what the request would add: `lease` (a heartbeat, an allocation's lease) or `hold`
 * (an allocation of a set the node does not hold yet, which also needs a lease). A node already
 * known, or an allocation that adds no hold, is never refused: the caps stop growth, never the
 * renewal of what a node has.
 */
export function nodeLimitRefusal(
  node: string,
  usage: NodeUsage,
  limits: NodeLimits,
  adds: 'lease' | 'hold',
): NodeLimitRefusal | undefined {
  if (!usage.known && usage.nodes >= limits.maxNodes) {
    const error = new IdentityError(
      'LIMIT_REACHED',
      `node: Too many nodes: ${usage.nodes} nodes have a lease, the limit is ${limits.maxNodes}; ${JSON.stringify(node)} gets one once an expired node has been collected`,
      { field: 'node' },
    );
    return { limit: 'maxNodes', error };
  }
  if (adds === 'hold' && usage.holds >= limits.maxHoldsPerNode) {
    const error = new IdentityError(
      'LIMIT_REACHED',
      `node: Too many identities: ${JSON.stringify(node)} holds ${usage.holds}, the limit is ${limits.maxHoldsPerNode}; it may take another once it releases one`,
      { field: 'node' },
    );
    return { limit: 'maxHoldsPerNode', error };
  }
  return undefined;
}
