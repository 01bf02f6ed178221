// Which way each kind flows between the Kubernetes API and the resource store.
//
//   import     API -> store. The API owns the object; the bridge mirrors it into the store,
//              marked `ciliate.io/source: kubernetes`, and deletes it from the store when the API
//              no longer has it. Every supported kind is imported.
//   mirror     store -> API, for CiliumNode, CiliumIdentity and CiliumEndpoint: Ciliate's services
//              write these into the store (anything not marked as imported from Kubernetes), and
//              the bridge creates, updates and deletes their copies in the API, marked
//              `ciliate.io/source: ciliate` there. Objects of these kinds that others made in the
//              API (not so marked) are imported like any other kind; the two never overwrite
//              each other (a name taken on both sides is counted as a conflict and left alone).
//
// Status, per kind:
//   import     Pod, Node, Namespace: the API's status (pod IPs, node addresses, phase) goes to the
//              store's status channel.
//   writeback  Service (status.loadBalancer) and CiliumLoadBalancerIPPool (status.conditions):
//              Ciliate's services write these fields into the status channel and the bridge
//              patches them into the API's status subresource. Only the field Ciliate owns is
//              written; the rest of the API's status is kept.
//   mirror     the mirror kinds: the status channel's value is the status of the API copy.
//   none       everything else (policy and BGP status is not reported to the API yet).
import { kindDescriptor, supportedKinds, type KindDescriptor } from '@ciliate/resources';

export type Direction = 'import' | 'mirror';
export type StatusMode = 'import' | 'writeback' | 'mirror' | 'none';

export interface BridgedKind {
  readonly kind: string;
  readonly group: string;
  readonly plural: string;
  readonly namespaced: boolean;
  /** Versions to try, storage version first (the API may serve only an older one). */
  readonly versions: readonly string[];
  readonly direction: Direction;
  readonly statusMode: StatusMode;
  /** Whether status is written through the /status subresource. */
  readonly statusSubresource: boolean;
  /** The status field Ciliate owns for `writeback` kinds. */
  readonly ownedStatusField?: 'loadBalancer' | 'conditions';
  /** Whether the kind comes from a CRD (may be missing from a cluster). */
  readonly crd: boolean;
  readonly descriptor: KindDescriptor;
}

const MIRRORED = new Set(['CiliumNode', 'CiliumIdentity', 'CiliumEndpoint']);
const STATUS_IMPORTED = new Set(['Pod', 'Node', 'Namespace']);
const STATUS_WRITTEN: Record<string, 'loadBalancer' | 'conditions'> = {
  Service: 'loadBalancer',
  CiliumLoadBalancerIPPool: 'conditions',
};

function bridged(d: KindDescriptor): BridgedKind {
  const direction: Direction = MIRRORED.has(d.kind) ? 'mirror' : 'import';
  const owned = STATUS_WRITTEN[d.kind];
  const statusMode: StatusMode =
    direction === 'mirror'
      ? 'mirror'
      : STATUS_IMPORTED.has(d.kind)
        ? 'import'
        : owned
          ? 'writeback'
          : 'none';
  return {
    kind: d.kind,
    group: d.group,
    plural: d.plural,
    namespaced: d.namespaced,
    versions: [
      d.storageVersion,
      ...d.versions.map((v) => v.name).filter((v) => v !== d.storageVersion),
    ],
    direction,
    statusMode,
    statusSubresource: d.statusSubresource,
    ...(owned ? { ownedStatusField: owned } : {}),
    crd: d.crd,
    descriptor: d,
  };
}

let all: readonly BridgedKind[] | undefined;

/** Every kind the bridge handles: all of @ciliate/resources' supported kinds. */
export function bridgedKinds(): readonly BridgedKind[] {
  return (all ??= supportedKinds().map(bridged));
}

export function bridgedKind(kind: string): BridgedKind | undefined {
  return kindDescriptor(kind) ? bridgedKinds().find((k) => k.kind === kind) : undefined;
}

function prefix(k: BridgedKind, version: string): string {
  return k.group === '' ? `/api/${version}` : `/apis/${k.group}/${version}`;
}

/** The cluster-wide collection (what list and watch use). */
export function collectionPath(k: BridgedKind, version: string, namespace?: string): string {
  const ns = k.namespaced && namespace ? `/namespaces/${namespace}` : '';
  return `${prefix(k, version)}${ns}/${k.plural}`;
}

export function objectPath(
  k: BridgedKind,
  version: string,
  ref: { namespace: string; name: string },
  subresource?: 'status',
): string {
  const ns = k.namespaced ? `/namespaces/${encodeURIComponent(ref.namespace)}` : '';
  const sub = subresource ? `/${subresource}` : '';
  return `${prefix(k, version)}${ns}/${k.plural}/${encodeURIComponent(ref.name)}${sub}`;
}

/** `plural` or `plural.group`, as RBAC rules name resources. */
export function rbacName(k: BridgedKind): string {
  return k.group === '' ? k.plural : `${k.plural}.${k.group}`;
}
