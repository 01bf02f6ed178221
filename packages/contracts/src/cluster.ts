// The cluster dimension of the wire: which cluster a service belongs to, Cilium's rules for its
// name and ID, and how records and subjects from another cluster are told apart and swept
// (docs/wire.md, "Clusters"). Nothing crosses clusters yet; every service carries its own.
import { PROJECT } from './version.js';

/** One cluster: its name (the `io.cilium.k8s.policy.cluster` label) and mesh ID. */
export interface ClusterRef {
  readonly name: string;
  /** 0: not part of a mesh; 1..maxConnectedClusters otherwise. */
  readonly id: number;
  readonly maxConnectedClusters: MaxConnectedClusters;
}

export type MaxConnectedClusters = 255 | 511;

export const DEFAULT_CLUSTER: ClusterRef = { name: 'default', id: 0, maxConnectedClusters: 255 };

export const CLUSTER_NAME_MAX_LENGTH = 32;
const CLUSTER_NAME = /^([a-z0-9][-a-z0-9]*)?[a-z0-9]$/;

/** What is wrong with a cluster setting, naming the field (`name`, `id`, `maxConnectedClusters`). */
export interface ClusterProblem {
  readonly field: 'name' | 'id' | 'maxConnectedClusters';
  readonly value: unknown;
  readonly reason: string;
}

/**
 * Cilium's rules: a name of at most 32 characters matching `^([a-z0-9][-a-z0-9]*)?[a-z0-9]$`,
 * not `default` once an ID is set (a mesh needs names that tell clusters apart); an ID in
 * 0..maxConnectedClusters; maxConnectedClusters 255 or 511.
 */
export function clusterProblem(input: {
  name?: unknown;
  id?: unknown;
  maxConnectedClusters?: unknown;
}): ClusterProblem | undefined {
  const max = input.maxConnectedClusters ?? DEFAULT_CLUSTER.maxConnectedClusters;
  if (max !== 255 && max !== 511) {
    return {
      field: 'maxConnectedClusters',
      value: max,
      reason: 'supported values are 255 and 511',
    };
  }
  const id = input.id ?? DEFAULT_CLUSTER.id;
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > max) {
    return { field: 'id', value: id, reason: `must be an integer in 0-${max}` };
  }
  const name = input.name ?? DEFAULT_CLUSTER.name;
  if (typeof name !== 'string' || name.length === 0) {
    return { field: 'name', value: name, reason: 'the cluster needs a name' };
  }
  if (name.length > CLUSTER_NAME_MAX_LENGTH) {
    return {
      field: 'name',
      value: name,
      reason: `must be at most ${CLUSTER_NAME_MAX_LENGTH} characters`,
    };
  }
  if (!CLUSTER_NAME.test(name)) {
    return {
      field: 'name',
      value: name,
      reason:
        'must consist of lower case alphanumeric characters or "-", and start and end with an alphanumeric character',
    };
  }
  if (name === 'default' && id !== 0) {
    return {
      field: 'name',
      value: name,
      reason: `a cluster with an ID (${id}) needs a name other than "default"`,
    };
  }
  return undefined;
}

/**
 * Records another cluster's services wrote live in buckets of their own, one per origin:
 * `<bucket>--<cluster>` (a base bucket name never holds `--`, a cluster name never starts with
 * `-`, so the split is unambiguous). Keys inside are the origin's own keys, unchanged. A reader
 * knows a record's origin from the bucket it came from, and sweeping a disconnected peer is
 * deleting its buckets.
 */
export function originBucket(bucket: string, cluster: string): string {
  const p = clusterProblem({ name: cluster });
  if (p !== undefined) throw new Error(`cluster name "${cluster}": ${p.reason}`);
  if (bucket.includes('--')) throw new Error(`bucket "${bucket}" is already an origin bucket`);
  return `${bucket}--${cluster}`;
}

/** The base bucket and origin cluster of an origin bucket; undefined for a local bucket. */
export function parseOriginBucket(name: string): { bucket: string; cluster: string } | undefined {
  const i = name.indexOf('--');
  if (i <= 0) return undefined;
  const cluster = name.slice(i + 2);
  if (clusterProblem({ name: cluster }) !== undefined) return undefined;
  return { bucket: name.slice(0, i), cluster };
}

/**
 * Subjects another cluster publishes are imported under `ciliate.c.<cluster>.` followed by the
 * origin's own subject (a NATS import with a prefix), so a tap narrows on the origin with one
 * token and the local cluster's subjects need no cluster token at all.
 */
export function originSubjectPrefix(cluster: string): string {
  const p = clusterProblem({ name: cluster });
  if (p !== undefined) throw new Error(`cluster name "${cluster}": ${p.reason}`);
  return `${PROJECT}.c.${cluster}.`;
}

/** How long a disconnected peer's records are kept before its origin buckets are deleted. */
export const ORIGIN_SWEEP_AFTER_MS = 5 * 60_000;
