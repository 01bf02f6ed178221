// Cilium's reserved security identities (pkg/identity/numericidentity.go, bpf/lib/identity.h),
// numbered as Cilium numbers them so that identities travel in VXLAN VNIs, skb marks and Hubble
// flows next to real Cilium ones. The identity service allocates around them, the datapath writes
// them into the ipcache map, and policy matches their `reserved:` labels: one table for all.
import { LabelSource, label, labelSetKey, type Label } from './labels.js';

/** Not a valid endpoint identity; in a BPF policy map key, the wildcard "any identity". */
export const UNKNOWN_IDENTITY = 0;
export const MIN_RESERVED_IDENTITY = 1;
/** 1..255 is reserved (1-99 system, 100-115 well-known, 128-255 user-reserved). */
export const MAX_RESERVED_IDENTITY = 255;

export const RESERVED_IDENTITIES = {
  host: 1,
  world: 2,
  unmanaged: 3,
  health: 4,
  init: 5,
  'remote-node': 6,
  'kube-apiserver': 7,
  ingress: 8,
  'world-ipv4': 9,
  'world-ipv6': 10,
} as const;

export type ReservedIdentityName = keyof typeof RESERVED_IDENTITIES;

/** Whether a numeric identity lies in the reserved range (never allocated, never released). */
export function isReservedIdentity(id: number): boolean {
  return id >= MIN_RESERVED_IDENTITY && id <= MAX_RESERVED_IDENTITY;
}

export interface ReservedIdentity {
  readonly id: number;
  readonly name: ReservedIdentityName;
  /** Sorted label set; kube-apiserver carries remote-node too, as in Cilium. */
  readonly labels: readonly Label[];
  /** world-ipv4/ipv6 exist only when both families are enabled. */
  readonly dualStackOnly: boolean;
}

/** `reserved:<name>`. */
export function reservedLabel(name: string): Label {
  return label(LabelSource.reserved, name, '');
}

const RESERVED_LIST: readonly ReservedIdentity[] = Object.entries(RESERVED_IDENTITIES).map(
  ([name, id]) => ({
    id,
    name: name as ReservedIdentityName,
    labels:
      name === 'kube-apiserver'
        ? [reservedLabel('kube-apiserver'), reservedLabel('remote-node')]
        : [reservedLabel(name)],
    dualStackOnly: name === 'world-ipv4' || name === 'world-ipv6',
  }),
);

/** All reserved identities in numeric order. */
export function reservedIdentities(): readonly ReservedIdentity[] {
  return RESERVED_LIST;
}

export function reservedIdentity(id: number): ReservedIdentity | undefined {
  return RESERVED_LIST.find((r) => r.id === id);
}

const RESERVED_BY_KEY = new Map(RESERVED_LIST.map((r) => [labelSetKey(r.labels), r]));

/**
 * The reserved identity a label set stands for, following Cilium's rules: anything carrying
 * `reserved:host` is the host (it may also carry kube-apiserver or node labels);
 * otherwise the set must equal a reserved identity's labels exactly.
 */
export function reservedIdentityForLabels(labels: readonly Label[]): ReservedIdentity | undefined {
  if (labels.some((l) => l.source === LabelSource.reserved && l.key === 'host')) {
    return RESERVED_LIST[0];
  }
  if (!labels.some((l) => l.source === LabelSource.reserved)) return undefined;
  return RESERVED_BY_KEY.get(labelSetKey(labels));
}

/** The identity of traffic to or from outside the cluster for one address family. */
export function worldIdentity(family: 4 | 6, dualStack: boolean): number {
  if (!dualStack) return RESERVED_IDENTITIES.world;
  return family === 4 ? RESERVED_IDENTITIES['world-ipv4'] : RESERVED_IDENTITIES['world-ipv6'];
}
