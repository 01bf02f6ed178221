// LB-IPAM: addresses for Services of type LoadBalancer out of CiliumLoadBalancerIPPools, with
// Cilium's semantics (operator/pkg/lbipam), as one pure reconcile:
//
//   reconcileLb(pools, services, previous, options) -> new state, Service statuses, pool
//   conditions and the changes made.
//
// Semantics, and where they differ from Cilium on purpose:
//  - blocks: `cidr` (host bits are cleared, as Cilium does) or `start`/`stop` (stop optional:
//    one address). `allowFirstLastIPs: No` keeps the first and last address of a CIDR block
//    (not of a start/stop range) out of use, except for /31, /32, /127 and /128 blocks. Unset
//    means Yes (Cilium >= 1.16; 1.15 defaulted to No).
//  - serviceSelector matches the Service labels plus `io.kubernetes.service.namespace` and
//    `io.kubernetes.service.name`; absent or empty matches every Service.
//  - disabled: no new allocations, existing ones stay.
//  - overlapping pools: the newer pool (creationTimestamp, then name) is marked with
//    cilium.io/PoolConflict and allocates nothing; its existing allocations stay, as in Cilium.
//    Pools are ordered the same way for allocation: the oldest matching pool is used first.
//  - a pool with an invalid spec allocates nothing and gets a `ciliate.io/InvalidSpec`
//    condition (Cilium only logs); its existing allocations stay, so a typo in an edit does
//    not take addresses away from running services.
//  - Services are handled when `spec.type` is LoadBalancer and `spec.loadBalancerClass` is
//    unset or one of `io.cilium/l2-announcer`, `io.cilium/bgp-control-plane`.
//  - requested addresses: `spec.loadBalancerIP` and the annotation `lbipam.cilium.io/ips`
//    (legacy `io.cilium/lb-ipam-ips`), comma separated. An address that does not parse is
//    reported in the Service condition (Cilium only logs it).
//  - sharing: `lbipam.cilium.io/sharing-key` (legacy `io.cilium/lb-ipam-sharing-key`). Two
//    Services share an address only with the same key, the same namespace or both allowing
//    the other's namespace in `lbipam.cilium.io/sharing-cross-namespace` (list or `*`), no
//    common port number (the datapath cannot tell protocols apart), the same
//    externalTrafficPolicy, and for `Local` the same non-empty pod selector. A requested
//    address held by an incompatible Service is refused with
//    `already_allocated_incompatible_service`; without a request a Service whose ports clash
//    with every address of its key gets an address of its own (as in Cilium).
//  - every address is held once: a global address -> holders index spans all pools, so even
//    overlapping or conflicting pools cannot hand out one address to two non-sharing Services.
//  - stability: what `previous` holds is kept while it stays valid; addresses in a Service's
//    status.loadBalancer.ingress that nobody holds are adopted (a migration from Cilium keeps
//    its addresses). Requested addresses are served before free-choice ones.
//  - Service conditions: `cilium.io/IPAMRequestSatisfied` with Cilium's reasons (satisfied,
//    no_pool, pool_selector_mismatch, out_of_ips, already_allocated,
//    already_allocated_incompatible_service) plus `invalid_request` and `family_disabled`.
//  - pool conditions: cilium.io/IPsTotal, IPsAvailable, IPsUsed (status Unknown, message = the
//    count), cilium.io/PoolConflict. Total counts allocatable addresses (reserved first/last
//    addresses are not counted; Cilium counts them as used).
import type { LabelMatcher, LabelSelector } from '@ciliate/contracts';
import type { IpAddress } from '@ciliate/netaddr';

import { IpamError, invalidValue } from './errors.js';
import {
  type IpFamily,
  type IpRange,
  IP_FAMILIES,
  compareIps,
  formatIp,
  formatRange,
  k8sFamilyName,
  parseCidr,
  parseIp,
  rangeOfCidr,
  rangeSize,
  rangesOverlap,
  tryParseIp,
  familyOf,
} from './ip.js';
import { compileServiceSelector } from './selector.js';

// ---------------------------------------------------------------------------------------------
// Inputs (shaped like the Kubernetes objects; only the fields LB-IPAM reads)

export interface LbCondition {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration?: number;
  readonly lastTransitionTime: string;
}

export interface LbObjectMeta {
  readonly name: string;
  readonly namespace?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly creationTimestamp?: string;
  readonly generation?: number;
}

export interface LbPoolBlock {
  readonly cidr?: string;
  readonly start?: string;
  readonly stop?: string;
}

export interface LbPool {
  readonly metadata: LbObjectMeta;
  readonly spec: {
    readonly blocks?: readonly LbPoolBlock[];
    readonly serviceSelector?: LabelSelector | null;
    readonly allowFirstLastIPs?: 'Yes' | 'No';
    readonly disabled?: boolean;
  };
  readonly status?: { readonly conditions?: readonly LbCondition[] };
}

export interface LbServicePort {
  readonly port: number;
  readonly protocol?: string;
  readonly name?: string;
}

export interface LbService {
  readonly metadata: LbObjectMeta & { readonly namespace: string };
  readonly spec: {
    readonly type?: string;
    readonly ports?: readonly LbServicePort[];
    readonly selector?: Readonly<Record<string, string>> | null;
    readonly loadBalancerIP?: string;
    readonly loadBalancerClass?: string | null;
    readonly ipFamilies?: readonly string[];
    readonly ipFamilyPolicy?: string;
    readonly externalTrafficPolicy?: string;
  };
  readonly status?: {
    readonly loadBalancer?: {
      readonly ingress?: ReadonlyArray<{ readonly ip?: string; readonly hostname?: string }>;
    };
    readonly conditions?: readonly LbCondition[];
  };
}

// ---------------------------------------------------------------------------------------------
// Names Cilium users already know

export const LB_ANNOTATIONS = Object.freeze({
  ips: 'lbipam.cilium.io/ips',
  ipsLegacy: 'io.cilium/lb-ipam-ips',
  sharingKey: 'lbipam.cilium.io/sharing-key',
  sharingKeyLegacy: 'io.cilium/lb-ipam-sharing-key',
  sharingCrossNamespace: 'lbipam.cilium.io/sharing-cross-namespace',
  sharingCrossNamespaceLegacy: 'io.cilium/lb-ipam-sharing-cross-namespace',
});

export const LB_SERVICE_LABELS = Object.freeze({
  namespace: 'io.kubernetes.service.namespace',
  name: 'io.kubernetes.service.name',
});

export const LB_CLASSES = Object.freeze({
  l2Announcer: 'io.cilium/l2-announcer',
  bgpControlPlane: 'io.cilium/bgp-control-plane',
});

export const LB_CONDITIONS = Object.freeze({
  requestSatisfied: 'cilium.io/IPAMRequestSatisfied',
  ipsTotal: 'cilium.io/IPsTotal',
  ipsAvailable: 'cilium.io/IPsAvailable',
  ipsUsed: 'cilium.io/IPsUsed',
  poolConflict: 'cilium.io/PoolConflict',
  invalidSpec: 'ciliate.io/InvalidSpec',
});

export type LbUnsatisfiedReason =
  | 'no_pool'
  | 'pool_selector_mismatch'
  | 'out_of_ips'
  | 'already_allocated'
  | 'already_allocated_incompatible_service'
  | 'invalid_request'
  | 'family_disabled';

// ---------------------------------------------------------------------------------------------
// State and results

export interface LbHolding {
  /** The pool the address came from. */
  readonly pool: string;
  /** `namespace/name` of every Service holding the address, in the order they joined. */
  readonly services: readonly string[];
}

export interface LbIpamState {
  readonly v: 1;
  /** Canonical address -> holding; sorted by address. */
  readonly ips: Readonly<Record<string, LbHolding>>;
}

export function emptyLbIpamState(): LbIpamState {
  return { v: 1, ips: {} };
}

export interface LbIpamOptions {
  /** RFC 3339 time stamped on conditions that change. */
  readonly now: string;
  readonly ipv4Enabled?: boolean;
  readonly ipv6Enabled?: boolean;
  /** Classes handled besides "no class". Default: the L2 announcer and the BGP control plane. */
  readonly lbClasses?: readonly string[];
  /** Handle Services without a loadBalancerClass (Cilium's defaultLBServiceIPAM=lbipam). */
  readonly handleUnclassed?: boolean;
}

export interface LbProblem {
  readonly reason: LbUnsatisfiedReason;
  readonly message: string;
}

export interface LbServiceResult {
  /** `namespace/name` */
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  /** Whether LB-IPAM is responsible for this Service. */
  readonly managed: boolean;
  /** Why not, when it is not. */
  readonly unmanagedReason?: string;
  /** Addresses held, in ingress order. */
  readonly ips: readonly string[];
  readonly problems: readonly LbProblem[];
  /**
   * The status to write, with our condition merged into the Service's other conditions; null
   * when the status is not ours to touch.
   */
  readonly status: {
    readonly loadBalancer: { readonly ingress: ReadonlyArray<{ readonly ip: string }> };
    readonly conditions: readonly LbCondition[];
  } | null;
  /** Whether `status` differs from the status the Service came with. */
  readonly statusChanged: boolean;
}

export interface LbPoolCounts {
  readonly total: bigint;
  readonly used: bigint;
  readonly available: bigint;
}

export interface LbPoolResult {
  readonly name: string;
  readonly disabled: boolean;
  readonly conflicting: boolean;
  /** Set when the spec is invalid (the pool allocates nothing). */
  readonly invalid?: string;
  readonly counts: LbPoolCounts;
  /** The pool's conditions to write (other conditions it had are kept). */
  readonly conditions: readonly LbCondition[];
  readonly statusChanged: boolean;
}

export type LbEventKind = 'allocated' | 'shared' | 'imported' | 'released' | 'unshared';

export interface LbEvent {
  readonly kind: LbEventKind;
  readonly ip: string;
  readonly service: string;
  readonly pool: string;
  /** Why it was released; for an allocation, why a Service with a sharing key did not share. */
  readonly reason?: string;
}

export interface LbReconcileResult {
  readonly state: LbIpamState;
  /** Whether `state` differs from `previous` (no write needed otherwise). */
  readonly changed: boolean;
  readonly services: readonly LbServiceResult[];
  readonly pools: readonly LbPoolResult[];
  readonly events: readonly LbEvent[];
  /** Cilium's lbipam_* gauges. */
  readonly summary: {
    readonly servicesMatching: number;
    readonly servicesUnsatisfied: number;
    readonly conflictingPools: number;
  };
}

// ---------------------------------------------------------------------------------------------
// Models

interface RangeModel {
  readonly pool: PoolModel;
  readonly range: IpRange;
  readonly text: string;
  readonly reserved: ReadonlySet<bigint>;
  /** No free address below this one (only moves up within a reconcile). */
  cursor: bigint;
}

interface PoolModel {
  readonly name: string;
  readonly input: LbPool;
  readonly created: number;
  readonly ranges: RangeModel[];
  readonly matches: LabelMatcher;
  readonly disabled: boolean;
  invalid?: string;
  conflict?: string;
}

interface ServiceModel {
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  readonly input: LbService;
  readonly created: number;
  readonly managed: boolean;
  readonly unmanagedReason?: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly requested: IpAddress[];
  /** Whether any address was asked for (even one that does not parse). */
  readonly requestGiven: boolean;
  readonly families: { ipv4: boolean; ipv6: boolean };
  readonly sharingKey: string;
  readonly crossNamespaces: readonly string[];
  readonly ports: readonly number[];
  readonly externalTrafficPolicy: string;
  readonly podSelector: Readonly<Record<string, string>>;
  readonly problems: LbProblem[];
}

interface Holding {
  readonly ip: IpAddress;
  readonly pool: string;
  readonly services: ServiceModel[];
}

function timestamp(ts: string | undefined): number {
  if (ts === undefined) return Number.POSITIVE_INFINITY;
  const t = Date.parse(ts);
  return Number.isNaN(t) ? Number.POSITIVE_INFINITY : t;
}

function byAge<T extends { created: number }>(key: (x: T) => string): (a: T, b: T) => number {
  return (a, b) => {
    if (a.created !== b.created) return a.created < b.created ? -1 : 1;
    const ka = key(a);
    const kb = key(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function buildPool(pool: LbPool): PoolModel {
  const name = pool.metadata?.name;
  let matches: LabelMatcher = () => false;
  const model: PoolModel = {
    name,
    input: pool,
    created: timestamp(pool.metadata?.creationTimestamp),
    ranges: [],
    matches: (l) => matches(l),
    disabled: pool.spec?.disabled === true,
  };
  try {
    matches = compileServiceSelector(pool.spec?.serviceSelector, 'spec.serviceSelector');
    const allow: unknown = pool.spec?.allowFirstLastIPs;
    if (allow !== undefined && allow !== 'Yes' && allow !== 'No') {
      throw invalidValue('INVALID_ARGUMENT', 'spec.allowFirstLastIPs', allow, 'must be Yes or No');
    }
    const blocks: unknown = pool.spec?.blocks ?? [];
    if (!Array.isArray(blocks)) {
      throw invalidValue('INVALID_ARGUMENT', 'spec.blocks', blocks, 'must be a list');
    }
    blocks.forEach((block: LbPoolBlock, i: number) => {
      model.ranges.push(buildRange(model, block, `spec.blocks[${i}]`, allow === 'No'));
    });
  } catch (err) {
    if (!(err instanceof IpamError)) throw err;
    model.invalid = err.message;
    model.ranges.length = 0;
    matches = () => false;
  }
  return model;
}

function buildRange(
  pool: PoolModel,
  block: LbPoolBlock,
  path: string,
  reserveEnds: boolean,
): RangeModel {
  if (block === null || typeof block !== 'object') {
    throw invalidValue('INVALID_ARGUMENT', path, block, 'must be an object');
  }
  const hasCidr = block.cidr !== undefined && block.cidr !== '';
  const hasStart = block.start !== undefined && block.start !== '';
  if (hasCidr && (hasStart || (block.stop !== undefined && block.stop !== ''))) {
    throw invalidValue(
      'INVALID_ARGUMENT',
      path,
      block,
      'cidr and start/stop are mutually exclusive',
    );
  }
  if (hasCidr) {
    const cidr = parseCidr(block.cidr, `${path}.cidr`, { allowHostBits: true });
    const range = rangeOfCidr(cidr);
    const reserved = new Set<bigint>();
    // Reserving both ends of a block of one or two addresses would leave nothing.
    if (reserveEnds && range.last - range.first >= 2n) {
      reserved.add(range.first);
      reserved.add(range.last);
    }
    return { pool, range, text: formatRange(range), reserved, cursor: range.first };
  }
  if (!hasStart) {
    throw invalidValue('INVALID_ARGUMENT', path, block, 'needs either cidr or start (and stop)');
  }
  const start = parseIp(block.start, `${path}.start`);
  const stop =
    block.stop === undefined || block.stop === '' ? start : parseIp(block.stop, `${path}.stop`);
  if (stop.family !== start.family) {
    throw invalidValue(
      'FAMILY_MISMATCH',
      `${path}.stop`,
      block.stop,
      'must be of the same family as start',
    );
  }
  if (stop.value < start.value) {
    throw invalidValue(
      'INVALID_ARGUMENT',
      `${path}.stop`,
      block.stop,
      `must not be before start (${block.start})`,
    );
  }
  const range: IpRange = { family: familyOf(start), first: start.value, last: stop.value };
  return { pool, range, text: formatRange(range), reserved: new Set(), cursor: range.first };
}

function settleConflicts(pools: PoolModel[]): void {
  const accepted: PoolModel[] = [];
  for (const pool of pools) {
    if (pool.invalid !== undefined) continue;
    const inner = internalOverlap(pool);
    if (inner !== undefined) {
      pool.conflict = `Pool conflicts since range '${inner[0].text}' overlaps range '${inner[1].text}' from IP Pool '${pool.name}'`;
      continue;
    }
    outer: for (const other of accepted) {
      for (const r of pool.ranges) {
        for (const o of other.ranges) {
          if (rangesOverlap(r.range, o.range)) {
            pool.conflict = `Pool conflicts since range '${r.text}' overlaps range '${o.text}' from IP Pool '${other.name}'`;
            break outer;
          }
        }
      }
    }
    if (pool.conflict === undefined) accepted.push(pool);
  }
}

function internalOverlap(pool: PoolModel): [RangeModel, RangeModel] | undefined {
  for (let i = 0; i < pool.ranges.length; i++) {
    for (let j = i + 1; j < pool.ranges.length; j++) {
      const a = pool.ranges[i] as RangeModel;
      const b = pool.ranges[j] as RangeModel;
      if (rangesOverlap(a.range, b.range)) return [a, b];
    }
  }
  return undefined;
}

function usable(pool: PoolModel): boolean {
  return pool.invalid === undefined && pool.conflict === undefined && !pool.disabled;
}

function annotation(svc: LbService, key: string, legacy: string): string | undefined {
  const a = svc.metadata.annotations ?? {};
  const v = Object.prototype.hasOwnProperty.call(a, key) ? a[key] : undefined;
  if (v !== undefined && v !== '') return v;
  const l = Object.prototype.hasOwnProperty.call(a, legacy) ? a[legacy] : undefined;
  return l !== undefined && l !== '' ? l : undefined;
}

function buildService(svc: LbService, options: Required<Omit<LbIpamOptions, 'now'>>): ServiceModel {
  const namespace = svc.metadata.namespace;
  const name = svc.metadata.name;
  const problems: LbProblem[] = [];
  let managed = svc.spec?.type === 'LoadBalancer';
  let unmanagedReason: string | undefined = managed
    ? undefined
    : `spec.type is ${svc.spec?.type ?? 'ClusterIP'}, not LoadBalancer`;
  const cls = svc.spec?.loadBalancerClass;
  if (managed && (cls === undefined || cls === null || cls === '')) {
    if (!options.handleUnclassed) {
      managed = false;
      unmanagedReason = 'Services without a loadBalancerClass are left to another controller';
    }
  } else if (managed && !options.lbClasses.includes(cls as string)) {
    managed = false;
    unmanagedReason = `spec.loadBalancerClass ${JSON.stringify(cls)} is not handled (handled: ${options.lbClasses.join(', ')})`;
  }

  const requested: IpAddress[] = [];
  let requestGiven = false;
  const addRequest = (text: string, path: string): void => {
    requestGiven = true;
    try {
      const ip = parseIp(text, path);
      if (!requested.some((r) => compareIps(r, ip) === 0)) requested.push(ip);
    } catch (err) {
      problems.push({ reason: 'invalid_request', message: errorMessage(err) });
    }
  };
  const lbIP = svc.spec?.loadBalancerIP;
  if (lbIP !== undefined && lbIP !== '') addRequest(lbIP, 'spec.loadBalancerIP');
  const ipsKey = svc.metadata.annotations?.[LB_ANNOTATIONS.ips]
    ? LB_ANNOTATIONS.ips
    : LB_ANNOTATIONS.ipsLegacy;
  const ipsValue = annotation(svc, LB_ANNOTATIONS.ips, LB_ANNOTATIONS.ipsLegacy);
  if (ipsValue !== undefined) {
    for (const part of ipsValue.split(',')) {
      const t = part.trim();
      if (t !== '') addRequest(t, `metadata.annotations[${ipsKey}]`);
    }
  }

  const families = requestedFamilies(svc, options, problems);
  const cross = annotation(
    svc,
    LB_ANNOTATIONS.sharingCrossNamespace,
    LB_ANNOTATIONS.sharingCrossNamespaceLegacy,
  );
  return {
    key: `${namespace}/${name}`,
    namespace,
    name,
    input: svc,
    created: timestamp(svc.metadata.creationTimestamp),
    managed,
    ...(unmanagedReason === undefined ? {} : { unmanagedReason }),
    labels: {
      ...(svc.metadata.labels ?? {}),
      [LB_SERVICE_LABELS.namespace]: namespace,
      [LB_SERVICE_LABELS.name]: name,
    },
    requested,
    requestGiven,
    families,
    sharingKey: annotation(svc, LB_ANNOTATIONS.sharingKey, LB_ANNOTATIONS.sharingKeyLegacy) ?? '',
    crossNamespaces: (cross ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
    ports: (svc.spec?.ports ?? []).map((p) => p.port),
    externalTrafficPolicy: svc.spec?.externalTrafficPolicy ?? 'Cluster',
    podSelector: svc.spec?.selector ?? {},
    problems,
  };
}

/** Which families a Service wants when it requests no specific address (Cilium's rules). */
function requestedFamilies(
  svc: LbService,
  options: Required<Omit<LbIpamOptions, 'now'>>,
  problems: LbProblem[],
): { ipv4: boolean; ipv6: boolean } {
  const v4on = options.ipv4Enabled;
  const v6on = options.ipv6Enabled;
  const fams = svc.spec?.ipFamilies ?? [];
  const first = fams[0];
  const single = (): { ipv4: boolean; ipv6: boolean } => {
    if (first !== undefined)
      return first === 'IPv6' ? { ipv4: false, ipv6: true } : { ipv4: true, ipv6: false };
    return v4on ? { ipv4: true, ipv6: false } : { ipv4: false, ipv6: v6on };
  };
  switch (svc.spec?.ipFamilyPolicy) {
    case 'PreferDualStack':
      if (fams.length === 0) return { ipv4: v4on, ipv6: v6on };
      return { ipv4: fams.includes('IPv4') && v4on, ipv6: fams.includes('IPv6') && v6on };
    case 'RequireDualStack':
      if (!v4on || !v6on) {
        problems.push({
          reason: 'family_disabled',
          message: `ipFamilyPolicy is RequireDualStack but ${!v4on ? 'IPv4' : 'IPv6'} is not enabled`,
        });
      }
      return { ipv4: v4on, ipv6: v6on };
    default:
      return single();
  }
}

/** Why two Services may not share an address, or undefined when they may. */
function sharingObstacle(a: ServiceModel, b: ServiceModel): string | undefined {
  if (a.sharingKey === '' || b.sharingKey === '') {
    return `${a.sharingKey === '' ? 'this Service has' : 'the holder has'} no sharing key`;
  }
  if (a.sharingKey !== b.sharingKey) return 'different sharing key';
  if (a.namespace !== b.namespace) {
    const aAllows = a.crossNamespaces.includes('*') || a.crossNamespaces.includes(b.namespace);
    const bAllows = b.crossNamespaces.includes('*') || b.crossNamespaces.includes(a.namespace);
    if (!aAllows || !bAllows) return 'different and not permitted namespace';
  }
  const clash = a.ports.filter((p) => b.ports.includes(p));
  if (clash.length > 0) {
    return `same port ${[...new Set(clash)].join(', ')} (ports clash whatever their protocol)`;
  }
  if (a.externalTrafficPolicy !== b.externalTrafficPolicy) return 'different externalTrafficPolicy';
  if (a.externalTrafficPolicy === 'Local') {
    const ak = Object.keys(a.podSelector);
    const bk = Object.keys(b.podSelector);
    if (ak.length === 0 || bk.length === 0) {
      return 'externalTrafficPolicy Local needs a pod selector on both Services';
    }
    if (ak.length !== bk.length || ak.some((k) => a.podSelector[k] !== b.podSelector[k])) {
      return 'externalTrafficPolicy Local with different pod selectors';
    }
  }
  return undefined;
}

function obstacleWithAll(svc: ServiceModel, holders: readonly ServiceModel[]): string | undefined {
  for (const h of holders) {
    if (h === svc) continue;
    const why = sharingObstacle(svc, h);
    if (why !== undefined) return why;
  }
  return undefined;
}

/**
 * Whether two Services may share one address under LB-IPAM's rules, and why not. Exposed for
 * callers that explain decisions (and checked independently by the property tests).
 */
export function lbSharingObstacle(
  a: LbService,
  b: LbService,
  options: Omit<LbIpamOptions, 'now'> = {},
): string | undefined {
  const o = withDefaults(options);
  return sharingObstacle(buildService(a, o), buildService(b, o));
}

function withDefaults(options: Omit<LbIpamOptions, 'now'>): Required<Omit<LbIpamOptions, 'now'>> {
  return {
    ipv4Enabled: options.ipv4Enabled ?? true,
    ipv6Enabled: options.ipv6Enabled ?? false,
    lbClasses: options.lbClasses ?? [LB_CLASSES.l2Announcer, LB_CLASSES.bgpControlPlane],
    handleUnclassed: options.handleUnclassed ?? true,
  };
}

// ---------------------------------------------------------------------------------------------
// The reconcile

class Holdings {
  private readonly byFamily = {
    ipv4: new Map<bigint, Holding>(),
    ipv6: new Map<bigint, Holding>(),
  };
  readonly byService = new Map<ServiceModel, Holding[]>();
  private readonly byKey = new Map<string, Set<Holding>>();

  get(ip: IpAddress): Holding | undefined {
    return this.byFamily[familyOf(ip)].get(ip.value);
  }

  has(family: IpFamily, value: bigint): boolean {
    return this.byFamily[family].has(value);
  }

  add(ip: IpAddress, pool: string, svc: ServiceModel): Holding {
    let h = this.get(ip);
    if (h === undefined) {
      h = { ip, pool, services: [] };
      this.byFamily[familyOf(ip)].set(ip.value, h);
    }
    h.services.push(svc);
    const list = this.byService.get(svc) ?? [];
    list.push(h);
    this.byService.set(svc, list);
    if (svc.sharingKey !== '') {
      const set = this.byKey.get(svc.sharingKey) ?? new Set<Holding>();
      set.add(h);
      this.byKey.set(svc.sharingKey, set);
    }
    return h;
  }

  /** Addresses of `family` held by some Service with this sharing key, in address order. */
  withSharingKey(key: string, family: IpFamily): Holding[] {
    return [...(this.byKey.get(key) ?? [])]
      .filter((h) => familyOf(h.ip) === family)
      .sort((a, b) => compareIps(a.ip, b.ip));
  }

  heldBy(svc: ServiceModel): Holding[] {
    return this.byService.get(svc) ?? [];
  }

  all(): Holding[] {
    return [...this.byFamily.ipv4.values(), ...this.byFamily.ipv6.values()].sort((a, b) =>
      compareIps(a.ip, b.ip),
    );
  }
}

function checkLbState(state: LbIpamState): void {
  if (state === null || typeof state !== 'object') {
    throw invalidValue('INVALID_STATE', 'previous', state, 'must be an object');
  }
  if (state.v !== 1) {
    throw invalidValue('INVALID_STATE', 'previous.v', state.v, 'unsupported state version');
  }
  if (state.ips === null || typeof state.ips !== 'object') {
    throw invalidValue('INVALID_STATE', 'previous.ips', state.ips, 'must be an object');
  }
}

/**
 * One pure LB-IPAM pass over every pool and Service. Deterministic: the same inputs give the
 * same outputs. `previous` is the state the last pass returned (emptyLbIpamState() at first).
 */
export function reconcileLb(
  pools: readonly LbPool[],
  services: readonly LbService[],
  previous: LbIpamState,
  options: LbIpamOptions,
): LbReconcileResult {
  checkLbState(previous);
  if (typeof options?.now !== 'string' || options.now === '') {
    throw invalidValue('INVALID_ARGUMENT', 'options.now', options?.now, 'must be an RFC 3339 time');
  }
  const opts = withDefaults(options);
  const events: LbEvent[] = [];

  // Pools, oldest first: allocation order and conflict precedence.
  const poolModels: PoolModel[] = [];
  const poolByName = new Map<string, PoolModel>();
  pools.forEach((p) => {
    const m = buildPool(p);
    if (typeof m.name !== 'string' || m.name === '') return;
    if (poolByName.has(m.name)) return;
    poolByName.set(m.name, m);
    poolModels.push(m);
  });
  poolModels.sort(byAge((p) => p.name));
  settleConflicts(poolModels);
  const ranges = poolModels.flatMap((p) => p.ranges);

  const inputOrder: ServiceModel[] = [];
  const svcByKey = new Map<string, ServiceModel>();
  for (const s of services) {
    if (typeof s?.metadata?.name !== 'string' || typeof s.metadata.namespace !== 'string') continue;
    const m = buildService(s, opts);
    if (svcByKey.has(m.key)) continue;
    svcByKey.set(m.key, m);
    inputOrder.push(m);
  }
  // Oldest first: when two Services want the same address, the older one gets it.
  const svcModels = [...inputOrder].sort(byAge((s) => s.key));

  const holdings = new Holdings();
  const releasedKeys = new Set<string>();

  // 1. Keep what the previous pass held, while it is still valid.
  const prevEntries = Object.entries(previous.ips)
    .map(([text, holding]) => ({ text, ip: tryParseIp(text), holding }))
    .sort((a, b) =>
      a.ip && b.ip ? compareIps(a.ip, b.ip) : a.ip ? -1 : b.ip ? 1 : a.text < b.text ? -1 : 1,
    );
  for (const { text, ip, holding } of prevEntries) {
    const svcKeys: readonly string[] = Array.isArray(holding?.services) ? holding.services : [];
    const poolName = typeof holding?.pool === 'string' ? holding.pool : '';
    const canonical = ip === undefined ? text : formatIp(ip);
    const dropped: Array<{ key: string; why: string }> = [];
    for (const key of svcKeys) {
      const svc = svcByKey.get(key);
      if (svc !== undefined && ip !== undefined && holdings.get(ip)?.services.includes(svc)) {
        continue; // listed twice in the stored state
      }
      const why =
        ip === undefined || canonical !== text
          ? 'stored address is not canonical'
          : keepReason(svc, ip, poolByName.get(poolName), holdings);
      if (why === undefined && svc !== undefined && ip !== undefined) {
        holdings.add(ip, poolName, svc);
      } else {
        dropped.push({ key, why: why ?? 'unknown' });
      }
    }
    const stillHeld = ip !== undefined && (holdings.get(ip)?.services.length ?? 0) > 0;
    for (const { key, why } of dropped) {
      releasedKeys.add(key);
      events.push({
        kind: stillHeld ? 'unshared' : 'released',
        ip: canonical,
        service: key,
        pool: poolName,
        reason: why,
      });
    }
  }

  const managed = svcModels.filter((s) => s.managed);

  // 2. Adopt addresses a Service's status already shows and nobody holds.
  for (const svc of managed) {
    for (const ingress of svc.input.status?.loadBalancer?.ingress ?? []) {
      const ip = typeof ingress?.ip === 'string' ? tryParseIp(ingress.ip) : undefined;
      if (ip === undefined || holdings.get(ip) !== undefined) continue;
      if (!wantsAddress(svc, ip, holdings)) continue;
      const r = ranges.find(
        (x) =>
          usable(x.pool) &&
          rangeHas(x, ip) &&
          !x.reserved.has(ip.value) &&
          x.pool.matches(svc.labels),
      );
      if (r === undefined) continue;
      holdings.add(ip, r.pool.name, svc);
      events.push({ kind: 'imported', ip: formatIp(ip), service: svc.key, pool: r.pool.name });
    }
  }

  // 3. Satisfy: requested addresses first, so a free choice never takes an address that a
  //    Service asked for by name in the same pass.
  const ordered = [
    ...managed.filter((s) => s.requestGiven),
    ...managed.filter((s) => !s.requestGiven),
  ];
  for (const svc of ordered) {
    if (svc.requestGiven) satisfyRequested(svc, ranges, holdings, events);
    else satisfyGeneric(svc, ranges, holdings, events, poolModels);
  }

  // 4. Results.
  const serviceResults: LbServiceResult[] = [];
  for (const svc of inputOrder) {
    const r = serviceResult(svc, holdings, options.now, releasedKeys.has(svc.key));
    if (r !== undefined) serviceResults.push(r);
  }
  const all = holdings.all();
  const byPool = new Map<string, Holding[]>();
  for (const h of all) {
    const list = byPool.get(h.pool) ?? [];
    list.push(h);
    byPool.set(h.pool, list);
  }
  const poolResults = poolModels.map((p) => poolResult(p, byPool.get(p.name) ?? [], options.now));

  const ips: Record<string, LbHolding> = {};
  for (const h of all) {
    if (h.services.length === 0) continue;
    ips[formatIp(h.ip)] = { pool: h.pool, services: h.services.map((s) => s.key) };
  }
  const state: LbIpamState = { v: 1, ips };
  return {
    state,
    changed: !sameState(previous, state),
    services: serviceResults,
    pools: poolResults,
    events,
    summary: {
      servicesMatching: managed.length,
      servicesUnsatisfied: serviceResults.filter((r) => r.managed && r.problems.length > 0).length,
      conflictingPools: poolModels.filter((p) => p.conflict !== undefined).length,
    },
  };
}

function rangeHas(r: RangeModel, ip: IpAddress): boolean {
  return r.range.family === familyOf(ip) && ip.value >= r.range.first && ip.value <= r.range.last;
}

/** Whether the Service's spec still wants this address (ignoring who else holds it). */
function wantsAddress(svc: ServiceModel, ip: IpAddress, holdings: Holdings): boolean {
  if (svc.requestGiven) return svc.requested.some((r) => compareIps(r, ip) === 0);
  if (!svc.families[familyOf(ip)]) return false;
  return !holdings.heldBy(svc).some((h) => h.ip.family === ip.family);
}

/** Why a previously held address must be released, or undefined to keep it. */
function keepReason(
  svc: ServiceModel | undefined,
  ip: IpAddress,
  pool: PoolModel | undefined,
  holdings: Holdings,
): string | undefined {
  if (svc === undefined) return 'service deleted';
  if (!svc.managed) return svc.unmanagedReason ?? 'service no longer handled';
  if (pool === undefined) return 'pool deleted';
  if (pool.invalid === undefined) {
    // An invalid spec cannot be evaluated; keep what was given until it is fixed.
    if (!pool.ranges.some((r) => rangeHas(r, ip))) return `no longer inside pool ${pool.name}`;
    if (!pool.matches(svc.labels)) return `pool ${pool.name} no longer selects the service`;
  }
  if (svc.requestGiven) {
    if (!svc.requested.some((r) => compareIps(r, ip) === 0)) return 'no longer requested';
  } else {
    if (!svc.families[familyOf(ip)]) return `${k8sFamilyName(familyOf(ip))} no longer requested`;
    if (holdings.heldBy(svc).some((h) => h.ip.family === ip.family)) {
      return `already holds another ${k8sFamilyName(familyOf(ip))} address`;
    }
  }
  const current = holdings.get(ip);
  if (current !== undefined && current.services.length > 0) {
    const why = obstacleWithAll(svc, current.services);
    if (why !== undefined) return `can no longer share: ${why}`;
  }
  return undefined;
}

function describeHolder(svc: ServiceModel, holders: readonly ServiceModel[]): string {
  const h = holders.find((x) => x !== svc);
  if (h === undefined) return 'another service';
  // Names of Services in other namespaces are not shown to this Service's readers.
  return h.namespace === svc.namespace ? `service ${h.key}` : 'a service in another namespace';
}

function satisfyRequested(
  svc: ServiceModel,
  ranges: readonly RangeModel[],
  holdings: Holdings,
  events: LbEvent[],
): void {
  for (const ip of svc.requested) {
    const text = formatIp(ip);
    const current = holdings.get(ip);
    if (current?.services.includes(svc)) continue;
    const containing = ranges.filter((r) => rangeHas(r, ip));
    if (containing.length === 0) {
      svc.problems.push({
        reason: 'no_pool',
        message: `No pool exists with a CIDR containing '${text}'`,
      });
      continue;
    }
    const candidates = containing.filter((r) => usable(r.pool));
    const selecting = candidates.filter((r) => r.pool.matches(svc.labels));
    if (selecting.length === 0) {
      if (candidates.length > 0) {
        const names = [...new Set(candidates.map((r) => r.pool.name))].join("', '");
        svc.problems.push({
          reason: 'pool_selector_mismatch',
          message: `The pool with the CIDR containing '${text}' ('${names}') doesn't select this service`,
        });
      } else {
        const p = (containing[0] as RangeModel).pool;
        const state =
          p.invalid !== undefined
            ? `has an invalid spec (${p.invalid})`
            : p.conflict !== undefined
              ? `is conflicting (${p.conflict})`
              : 'is disabled';
        svc.problems.push({
          reason: 'no_pool',
          message: `The pool '${p.name}' containing '${text}' ${state} and allocates no new addresses`,
        });
      }
      continue;
    }
    const r = selecting[0] as RangeModel;
    if (current !== undefined && current.services.length > 0) {
      if (svc.sharingKey === '') {
        svc.problems.push({
          reason: 'already_allocated',
          message: `The IP '${text}' is already allocated to ${describeHolder(svc, current.services)}`,
        });
        continue;
      }
      const why = obstacleWithAll(svc, current.services);
      if (why !== undefined) {
        svc.problems.push({
          reason: 'already_allocated_incompatible_service',
          message: `The IP '${text}' is already allocated to an incompatible service (${describeHolder(svc, current.services)}). Reason: ${why}`,
        });
        continue;
      }
      holdings.add(ip, current.pool, svc);
      events.push({ kind: 'shared', ip: text, service: svc.key, pool: current.pool });
      continue;
    }
    if (r.reserved.has(ip.value)) {
      svc.problems.push({
        reason: 'already_allocated',
        message: `The IP '${text}' is the first or last address of block ${r.text} of pool '${r.pool.name}', which sets allowFirstLastIPs: No`,
      });
      continue;
    }
    holdings.add(ip, r.pool.name, svc);
    events.push({ kind: 'allocated', ip: text, service: svc.key, pool: r.pool.name });
  }
}

function satisfyGeneric(
  svc: ServiceModel,
  ranges: readonly RangeModel[],
  holdings: Holdings,
  events: LbEvent[],
  pools: readonly PoolModel[],
): void {
  for (const family of IP_FAMILIES) {
    if (!svc.families[family]) continue;
    if (holdings.heldBy(svc).some((h) => familyOf(h.ip) === family)) continue;

    let note: string | undefined;
    if (svc.sharingKey !== '') {
      let clash: string | undefined;
      let joined = false;
      for (const h of holdings.withSharingKey(svc.sharingKey, family)) {
        const pool = pools.find((p) => p.name === h.pool);
        if (pool === undefined || pool.invalid !== undefined || !pool.matches(svc.labels)) continue;
        const why = obstacleWithAll(svc, h.services);
        if (why !== undefined) {
          clash ??= `${formatIp(h.ip)}: ${why}`;
          continue;
        }
        holdings.add(h.ip, h.pool, svc);
        events.push({ kind: 'shared', ip: formatIp(h.ip), service: svc.key, pool: h.pool });
        joined = true;
        break;
      }
      if (joined) continue;
      if (clash !== undefined) {
        note = `sharing key '${svc.sharingKey}' could not share (${clash}); got an address of its own`;
      }
    }

    let sawFull = false;
    let sawMatching = false;
    let got: { ip: IpAddress; pool: string } | undefined;
    for (const r of ranges) {
      if (r.range.family !== family || !usable(r.pool) || !r.pool.matches(svc.labels)) continue;
      sawMatching = true;
      const value = nextFree(r, holdings);
      if (value === undefined) {
        sawFull = true;
        continue;
      }
      got = { ip: { family: family === 'ipv4' ? 4 : 6, value }, pool: r.pool.name };
      break;
    }
    if (got !== undefined) {
      holdings.add(got.ip, got.pool, svc);
      events.push({
        kind: 'allocated',
        ip: formatIp(got.ip),
        service: svc.key,
        pool: got.pool,
        ...(note === undefined ? {} : { reason: note }),
      });
      continue;
    }
    const fam = k8sFamilyName(family);
    svc.problems.push(
      sawFull && sawMatching
        ? {
            reason: 'out_of_ips',
            message: `All enabled CiliumLoadBalancerIPPools that match this service ran out of allocatable ${fam} IPs`,
          }
        : {
            reason: 'no_pool',
            message: `There are no enabled CiliumLoadBalancerIPPools with ${fam} blocks that match this service`,
          },
    );
  }
}

function nextFree(r: RangeModel, holdings: Holdings): bigint | undefined {
  let v = r.cursor;
  while (v <= r.range.last && (r.reserved.has(v) || holdings.has(r.range.family, v))) v++;
  r.cursor = v;
  return v <= r.range.last ? v : undefined;
}

function setCondition(
  existing: readonly LbCondition[] | undefined,
  cond: Omit<LbCondition, 'lastTransitionTime'>,
  now: string,
): LbCondition {
  const prev = existing?.find((c) => c.type === cond.type);
  const lastTransitionTime =
    prev !== undefined && prev.status === cond.status ? prev.lastTransitionTime : now;
  return { ...cond, lastTransitionTime };
}

function sameCondition(a: LbCondition | undefined, b: LbCondition | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return (
    a.type === b.type &&
    a.status === b.status &&
    a.reason === b.reason &&
    a.message === b.message &&
    a.observedGeneration === b.observedGeneration
  );
}

function serviceResult(
  svc: ServiceModel,
  holdings: Holdings,
  now: string,
  lostSomething: boolean,
): LbServiceResult | undefined {
  const input = svc.input;
  const prevIngress = (input.status?.loadBalancer?.ingress ?? [])
    .map((i) => i?.ip)
    .filter((ip): ip is string => typeof ip === 'string');
  const prevConditions = input.status?.conditions ?? [];
  const hadOurs = prevConditions.some((c) => c.type === LB_CONDITIONS.requestSatisfied);
  const base = { key: svc.key, namespace: svc.namespace, name: svc.name };

  if (!svc.managed) {
    if (input.spec?.type !== 'LoadBalancer' && !hadOurs && !lostSomething) return undefined;
    // Only clear what was ours: our condition, or addresses we held until now.
    if (!hadOurs && !lostSomething) {
      return {
        ...base,
        managed: false,
        ...(svc.unmanagedReason === undefined ? {} : { unmanagedReason: svc.unmanagedReason }),
        ips: [],
        problems: [],
        status: null,
        statusChanged: false,
      };
    }
    const conditions = prevConditions.filter((c) => c.type !== LB_CONDITIONS.requestSatisfied);
    return {
      ...base,
      managed: false,
      ...(svc.unmanagedReason === undefined ? {} : { unmanagedReason: svc.unmanagedReason }),
      ips: [],
      problems: [],
      status: { loadBalancer: { ingress: [] }, conditions },
      statusChanged: prevIngress.length > 0 || hadOurs,
    };
  }

  const held = holdings.heldBy(svc).map((h) => h.ip);
  const order = (ip: IpAddress): number => {
    const i = svc.requested.findIndex((r) => compareIps(r, ip) === 0);
    return i >= 0 ? i : svc.requested.length + (ip.family === 4 ? 0 : 1);
  };
  held.sort((a, b) => order(a) - order(b) || compareIps(a, b));
  const ips = held.map(formatIp);
  const problems = svc.problems;
  const generation = input.metadata.generation;
  const cond = setCondition(
    prevConditions,
    {
      type: LB_CONDITIONS.requestSatisfied,
      status: problems.length === 0 ? 'True' : 'False',
      reason: problems.length === 0 ? 'satisfied' : (problems[0] as LbProblem).reason,
      message: problems.length === 0 ? '' : problems.map((p) => p.message).join('; '),
      ...(generation === undefined ? {} : { observedGeneration: generation }),
    },
    now,
  );
  const conditions = [
    ...prevConditions.filter((c) => c.type !== LB_CONDITIONS.requestSatisfied),
    cond,
  ];
  const statusChanged =
    prevIngress.length !== ips.length ||
    prevIngress.some((ip, i) => ip !== ips[i]) ||
    !sameCondition(
      prevConditions.find((c) => c.type === LB_CONDITIONS.requestSatisfied),
      cond,
    );
  return {
    ...base,
    managed: true,
    ips,
    problems,
    status: { loadBalancer: { ingress: ips.map((ip) => ({ ip })) }, conditions },
    statusChanged,
  };
}

function poolResult(pool: PoolModel, held: readonly Holding[], now: string): LbPoolResult {
  let total = 0n;
  for (const r of pool.ranges) total += rangeSize(r.range) - BigInt(r.reserved.size);
  let used = 0n;
  let usedInside = 0n;
  for (const h of held) {
    if (h.services.length === 0) continue;
    used++;
    if (pool.ranges.some((r) => rangeHas(r, h.ip) && !r.reserved.has(h.ip.value))) usedInside++;
  }
  const available = total - usedInside;
  const prev = pool.input.status?.conditions ?? [];
  const generation = pool.input.metadata.generation;
  const gen = generation === undefined ? {} : { observedGeneration: generation };
  const ours: LbCondition[] = [
    setCondition(
      prev,
      {
        type: LB_CONDITIONS.ipsTotal,
        status: 'Unknown',
        reason: 'noreason',
        message: total.toString(),
        ...gen,
      },
      now,
    ),
    setCondition(
      prev,
      {
        type: LB_CONDITIONS.ipsAvailable,
        status: 'Unknown',
        reason: 'noreason',
        message: available.toString(),
        ...gen,
      },
      now,
    ),
    setCondition(
      prev,
      {
        type: LB_CONDITIONS.ipsUsed,
        status: 'Unknown',
        reason: 'noreason',
        message: used.toString(),
        ...gen,
      },
      now,
    ),
    setCondition(
      prev,
      pool.conflict !== undefined
        ? {
            type: LB_CONDITIONS.poolConflict,
            status: 'True',
            reason: 'cidr_overlap',
            message: pool.conflict,
            ...gen,
          }
        : {
            type: LB_CONDITIONS.poolConflict,
            status: 'False',
            reason: 'resolved',
            message: '',
            ...gen,
          },
      now,
    ),
  ];
  if (pool.invalid !== undefined) {
    ours.push(
      setCondition(
        prev,
        {
          type: LB_CONDITIONS.invalidSpec,
          status: 'True',
          reason: 'invalid_spec',
          message: pool.invalid,
          ...gen,
        },
        now,
      ),
    );
  }
  const ourTypes = new Set<string>(Object.values(LB_CONDITIONS));
  const conditions = [...prev.filter((c) => !ourTypes.has(c.type)), ...ours];
  const statusChanged =
    ours.some(
      (c) =>
        !sameCondition(
          prev.find((p) => p.type === c.type),
          c,
        ),
    ) ||
    (pool.invalid === undefined && prev.some((c) => c.type === LB_CONDITIONS.invalidSpec));
  return {
    name: pool.name,
    disabled: pool.disabled,
    conflicting: pool.conflict !== undefined,
    ...(pool.invalid === undefined ? {} : { invalid: pool.invalid }),
    counts: { total, used, available },
    conditions,
    statusChanged,
  };
}

function sameState(a: LbIpamState, b: LbIpamState): boolean {
  const ak = Object.keys(a.ips);
  const bk = Object.keys(b.ips);
  if (ak.length !== bk.length) return false;
  for (const k of bk) {
    const x = Object.prototype.hasOwnProperty.call(a.ips, k) ? a.ips[k] : undefined;
    const y = b.ips[k] as LbHolding;
    if (x === undefined || x.pool !== y.pool) return false;
    if (x.services.length !== y.services.length) return false;
    if (x.services.some((s, i) => s !== y.services[i])) return false;
  }
  return true;
}

/** The address a Service holds per family in a state (for callers and tests). */
export function lbAddressesOf(state: LbIpamState, serviceKey: string): string[] {
  return Object.entries(state.ips)
    .filter(([, h]) => h.services.includes(serviceKey))
    .map(([ip]) => ip);
}
