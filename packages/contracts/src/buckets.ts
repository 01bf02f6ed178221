// JetStream KV bucket names and the keys inside them.
import { PROJECT } from './version.js';
import { InvalidTokenError, natsName } from './tokens.js';

export const buckets = {
  /** Desired state: Kubernetes-shaped objects, one key per object (see resourceKey). */
  resources(): string {
    return `${PROJECT}-resources`;
  },
  /** Status written by Ciliate's services for objects (the status channel); same keys. */
  resourceStatus(): string {
    return `${PROJECT}-resource-status`;
  },
  /** Markers that a source (kube-bridge, apply) has completed its initial sync. */
  sources(): string {
    return `${PROJECT}-sources`;
  },
  /** Leases for singleton work (leader election) with fencing tokens. */
  leases(): string {
    return `${PROJECT}-leases`;
  },
  /** IPAM state: node pod CIDRs, pod IP allocations per node, LB-IPAM (keys: ipamKeys). */
  ipam(): string {
    return `${PROJECT}-ipam`;
  },
  /**
   * Security identities: `id.<N>`, `labels.<sha256>`, `ref.<N>.<node>`, `lease.<node>` (layout
   * in services/identity/README.md). Written only by the identity service.
   */
  identities(): string {
    return `${PROJECT}-identities`;
  },
  /**
   * The ipcache view: one key per prefix (`v4.10-0-1-5.32`, `v6.fd00--1.128`) whose value is the
   * effective entry plus every owner's claim (docs/wire.md). Watched by the datapath.
   */
  ipcache(): string {
    return `${PROJECT}-ipcache`;
  },
} as const;

/** KV keys allow letters, digits and "-_/=."; a lease name is one such key. */
const KEY = /^[-/=.\w]+$/;

export function leaseKey(name: string): string {
  if (!KEY.test(name) || name.startsWith('.') || name.endsWith('.')) {
    return natsName('lease', name); // throws with the field named
  }
  return name;
}

/** Namespace token of cluster-scoped objects: "_" is never a valid namespace name. */
export const CLUSTER_SCOPE = '_';

/**
 * KV key of one object: `<Kind>.<namespace or _>.<name>`. Kind and namespace never contain dots,
 * so `<Kind>.>` and `<Kind>.<namespace>.>` select a kind or a namespace on the server; a name may
 * (DNS subdomains do) and takes the rest of the key.
 */
export function resourceKey(ref: { kind: string; namespace: string; name: string }): string {
  if (!/^[A-Za-z][A-Za-z0-9]*$/.test(ref.kind)) {
    throw new InvalidTokenError('kind', ref.kind, 'must be letters and digits');
  }
  const ns = ref.namespace === '' ? CLUSTER_SCOPE : ref.namespace;
  if (ns !== CLUSTER_SCOPE && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(ns)) {
    throw new InvalidTokenError('metadata.namespace', ns, 'must be a DNS label');
  }
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(ref.name) || ref.name.includes('..')) {
    throw new InvalidTokenError('metadata.name', ref.name, 'must be a DNS subdomain');
  }
  return `${ref.kind}.${ns}.${ref.name}`;
}

/** The filter for a kind, optionally one namespace of it; undefined kind means everything. */
export function resourceKeyFilter(kind?: string, namespace?: string): string {
  if (kind === undefined) return '>';
  if (namespace === undefined) return `${kind}.>`;
  return `${kind}.${namespace === '' ? CLUSTER_SCOPE : namespace}.>`;
}

export function parseResourceKey(
  key: string,
): { kind: string; namespace: string; name: string } | undefined {
  const first = key.indexOf('.');
  const second = key.indexOf('.', first + 1);
  if (first <= 0 || second <= first + 1 || second === key.length - 1) return undefined;
  const ns = key.slice(first + 1, second);
  return {
    kind: key.slice(0, first),
    namespace: ns === CLUSTER_SCOPE ? '' : ns,
    name: key.slice(second + 1),
  };
}

/**
 * The subject prefix under which JetStream stores a KV bucket's keys (`$KV.<bucket>.`): watches
 * filter on it and lean writers publish to it. The only place the prefix is spelled.
 */
export function kvSubjectPrefix(bucket: string): string {
  return `$KV.${bucket}.`;
}
