// When a running endpoint's identity follows its Pod, as in Cilium: the Pod fields an identity
// is derived from (labels and service account) are compared with what the endpoint's identity
// was allocated from. The identity service decides which labels count, so the node compares only
// what it sent.

/** The Pod fields an identity is allocated from. Which labels count is the identity service's
 * decision (Cilium's label filter); the node only needs to know when they change, to ask again. */
export interface IdentityInputs {
  podLabels: Record<string, string>;
  serviceAccount?: string;
}

/** The Pod fields an identity is derived from (a `Pod` from the store fits). */
export interface PodLike {
  metadata?: { labels?: Record<string, string> | undefined };
  spec?: { serviceAccountName?: string | undefined; serviceAccount?: string | undefined };
}

export function identityInputsOf(pod: PodLike | undefined): IdentityInputs {
  const sa = pod?.spec?.serviceAccountName ?? pod?.spec?.serviceAccount;
  return { podLabels: { ...(pod?.metadata?.labels ?? {}) }, ...(sa ? { serviceAccount: sa } : {}) };
}

export function sameIdentityInputs(a: IdentityInputs, b: IdentityInputs): boolean {
  // an absent service account is Kubernetes' `default` (the identity service reads it so)
  if ((a.serviceAccount ?? 'default') !== (b.serviceAccount ?? 'default')) return false;
  const ka = Object.keys(a.podLabels);
  if (ka.length !== Object.keys(b.podLabels).length) return false;
  return ka.every((k) => Object.hasOwn(b.podLabels, k) && b.podLabels[k] === a.podLabels[k]);
}

/**
 * The Pod fields to allocate from when `endpoint` needs a new identity for `pod`, else
 * undefined. No Pod object: nothing to follow (it is being deleted, or the runtime is not
 * Kubernetes). An endpoint recorded without the fields (an older state file) asks once.
 */
export function newIdentityInputs(
  endpoint: { identityFrom?: IdentityInputs | undefined },
  pod: PodLike | undefined,
): IdentityInputs | undefined {
  if (!pod) return undefined;
  const now = identityInputsOf(pod);
  if (endpoint.identityFrom && sameIdentityInputs(endpoint.identityFrom, now)) return undefined;
  return now;
}

export type PodLookup = (namespace: string, name: string) => PodLike | undefined;

/** The fields of an endpoint the plan reads (the datapath's EndpointState fits). */
export interface FollowedEndpoint {
  owner: { namespace: string; pod: string };
  identityFrom?: IdentityInputs | undefined;
  previousIdentities?: number[] | undefined;
}

export interface IdentityFollowPlan<E extends FollowedEndpoint> {
  /** Endpoints whose Pod fields changed, with the fields to allocate from. */
  relabel: { endpoint: E; from: IdentityInputs }[];
  /** Endpoints still holding references to identities they had before. */
  retire: E[];
}

export function planIdentityFollow<E extends FollowedEndpoint>(
  endpoints: readonly E[],
  pod: PodLookup,
): IdentityFollowPlan<E> {
  const plan: IdentityFollowPlan<E> = { relabel: [], retire: [] };
  for (const endpoint of endpoints) {
    const from = newIdentityInputs(endpoint, pod(endpoint.owner.namespace, endpoint.owner.pod));
    if (from) plan.relabel.push({ endpoint, from });
    if (endpoint.previousIdentities?.length) plan.retire.push(endpoint);
  }
  return plan;
}
