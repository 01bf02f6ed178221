// Pod IP allocation inside one node's pod CIDR (Cilium's agent-side "host-scope" allocator).
//
// What is never handed out, as in Cilium (which uses Kubernetes' CIDR range allocator):
//   - the network address (for IPv6 that is the subnet-router anycast address, RFC 4291);
//   - for IPv4 also the broadcast (last) address.
// So a /24 offers 254 addresses and an IPv6 /120 offers 255.
//
// Cilium's agent takes the `cilium_host` ("router") address and, with health checking on, the
// health endpoint's address out of the same range, as ordinary allocations with the owners
// `router` and `health` ("IPAM: IPv4: 2/254 allocated"). They are modelled the same way here:
// `createPodPool` gives ROUTER_OWNER the first usable address by default, and the datapath
// allocates HEALTH_OWNER like any pod when it runs a health endpoint.
//
// State is plain JSON: the CIDR, the list of (owner, address) allocations in the order they
// were made, and the last address handed out. The free set is derived. A list rather than an
// owner-keyed object because every transition copies it: copying a list of frozen entries is a
// pointer copy, while copying an object with hundreds of keys costs ~0.3 µs per key. New addresses are searched round robin after the last one handed
// out, so a just-released address is not reused at once (stale conntrack or ipcache entries of
// the previous pod would otherwise hit the new one).
import { formatPrefix, type IpPrefix } from '@ciliate/netaddr';

import { IpamError, invalidValue, requiredValue } from './errors.js';
import {
  type IpFamily,
  cidrLast,
  compareIpTexts,
  formatAddress,
  formatIp,
  k8sFamilyName,
  parseCidr,
  parseIp,
  tryParseIp,
  familyOf,
} from './ip.js';
import { IndexCache } from './memo.js';

export const ROUTER_OWNER = 'router';
export const HEALTH_OWNER = 'health';

/** The parts that identify one pod interface, as a CNI ADD carries them. */
export interface PodOwner {
  readonly namespace: string;
  readonly pod: string;
  readonly containerId: string;
  readonly ifname: string;
}

const OWNER_PART_RE = /^[^/\s]+$/;
const MAX_OWNER_KEY = 1024;

/** `namespace/pod/containerID/ifname`: the allocation key of a pod interface. */
export function podOwnerKey(owner: PodOwner, path = 'owner'): string {
  for (const field of ['namespace', 'pod', 'containerId', 'ifname'] as const) {
    const v: unknown = owner[field];
    if (typeof v !== 'string' || v === '') {
      throw requiredValue(`${path}.${field}`, 'must be a non-empty string');
    }
    if (!OWNER_PART_RE.test(v)) {
      throw invalidValue(
        'INVALID_ARGUMENT',
        `${path}.${field}`,
        v,
        'must not contain "/" or spaces',
      );
    }
  }
  return `${owner.namespace}/${owner.pod}/${owner.containerId}/${owner.ifname}`;
}

/** Splits a key made by podOwnerKey; undefined for the special owners (router, health, ...). */
export function parsePodOwnerKey(key: string): PodOwner | undefined {
  const parts = key.split('/');
  if (parts.length !== 4 || parts.some((p) => !OWNER_PART_RE.test(p))) return undefined;
  const [namespace, pod, containerId, ifname] = parts as [string, string, string, string];
  return { namespace, pod, containerId, ifname };
}

function checkOwnerKey(owner: unknown, path: string): string {
  if (typeof owner !== 'string' || owner === '') {
    throw requiredValue(path, 'owner must be a non-empty string');
  }
  if (owner.length > MAX_OWNER_KEY || /[\s\u0000-\u001f]/.test(owner)) {
    throw invalidValue(
      'INVALID_ARGUMENT',
      path,
      owner,
      `owner must be at most ${MAX_OWNER_KEY} characters without whitespace or control characters`,
    );
  }
  return owner;
}

export interface PodIpAllocation {
  readonly owner: string;
  /** Canonical address text. */
  readonly ip: string;
}

export interface PodPoolState {
  readonly v: 1;
  /** The node's pod CIDR for one family, canonical text. */
  readonly cidr: string;
  /** The address most recently handed out by a search; the next search starts after it. */
  readonly last?: string;
  /** Who holds what, oldest first. */
  readonly allocations: readonly PodIpAllocation[];
}

export interface PodPoolUsage {
  readonly cidr: string;
  readonly family: IpFamily;
  /** Addresses that can be handed out (the CIDR minus network, and broadcast for IPv4). */
  readonly capacity: bigint;
  readonly used: number;
  readonly free: bigint;
  /** Addresses never handed out. */
  readonly reserved: readonly string[];
}

interface PoolIndex {
  readonly family: IpFamily;
  readonly network: bigint;
  readonly broadcast: bigint;
  readonly first: bigint;
  readonly last: bigint;
  readonly capacity: bigint;
  /** address -> owner */
  readonly used: Map<bigint, string>;
  /** owner -> canonical address */
  readonly byOwner: Map<string, string>;
  /** Whether the state's entries are ours (frozen); entries from parsed JSON are copied once. */
  entriesOwned: boolean;
}

const cache = new IndexCache<PodPoolState, PoolIndex>();

function usableRange(cidr: IpPrefix, path: string): { first: bigint; last: bigint } {
  const maxPrefix = cidr.family === 4 ? 30 : 127;
  if (cidr.length > maxPrefix) {
    throw invalidValue(
      'INVALID_CIDR',
      path,
      formatPrefix(cidr),
      `a pod CIDR needs a prefix length of at most ${maxPrefix} to leave an address after the reserved ones`,
    );
  }
  const first = cidr.network + 1n;
  const last = cidr.family === 4 ? cidrLast(cidr) - 1n : cidrLast(cidr);
  return { first, last };
}

function emptyIndex(cidrText: string, path: string): PoolIndex & { cidr: IpPrefix } {
  const cidr = parseCidr(cidrText, path);
  const { first, last } = usableRange(cidr, path);
  return {
    cidr,
    family: familyOf(cidr),
    network: cidr.network,
    broadcast: cidrLast(cidr),
    first,
    last,
    capacity: last - first + 1n,
    used: new Map(),
    byOwner: new Map(),
    entriesOwned: true,
  };
}

function buildIndex(state: PodPoolState, path = 'state'): PoolIndex {
  if (state === null || typeof state !== 'object') {
    throw invalidValue('INVALID_STATE', path, state, 'must be an object');
  }
  if (state.v !== 1) {
    throw invalidValue('INVALID_STATE', `${path}.v`, state.v, 'unsupported state version');
  }
  let index: PoolIndex;
  try {
    index = emptyIndex(state.cidr, `${path}.cidr`);
  } catch (err) {
    throw asStateError(err);
  }
  if (!Array.isArray(state.allocations)) {
    throw invalidValue('INVALID_STATE', `${path}.allocations`, state.allocations, 'must be a list');
  }
  state.allocations.forEach((entry: PodIpAllocation, i: number) => {
    const p = (): string => `${path}.allocations[${i}]`;
    if (entry === null || typeof entry !== 'object' || typeof entry.owner !== 'string') {
      throw invalidValue('INVALID_STATE', p(), entry, 'must be {owner, ip}');
    }
    const ip = tryParseIp(typeof entry.ip === 'string' ? entry.ip : '');
    if (ip === undefined || familyOf(ip) !== index.family || formatIp(ip) !== entry.ip) {
      throw invalidValue(
        'INVALID_STATE',
        `${p()}.ip`,
        entry.ip,
        `must be a canonical ${k8sFamilyName(index.family)} address`,
      );
    }
    if (ip.value < index.first || ip.value > index.last) {
      throw invalidValue(
        'INVALID_STATE',
        `${p()}.ip`,
        entry.ip,
        `is not a usable address of ${state.cidr}`,
      );
    }
    const holder = index.used.get(ip.value);
    if (holder !== undefined) {
      throw invalidValue(
        'INVALID_STATE',
        `${p()}.ip`,
        entry.ip,
        `is also held by ${JSON.stringify(holder)}`,
      );
    }
    if (index.byOwner.has(entry.owner)) {
      throw invalidValue('INVALID_STATE', `${p()}.owner`, entry.owner, 'holds two addresses');
    }
    index.used.set(ip.value, entry.owner);
    index.byOwner.set(entry.owner, entry.ip);
    if (!Object.isFrozen(entry)) index.entriesOwned = false;
  });
  if (state.last !== undefined) {
    const ip = tryParseIp(typeof state.last === 'string' ? state.last : '');
    if (ip === undefined || familyOf(ip) !== index.family) {
      throw invalidValue(
        'INVALID_STATE',
        `${path}.last`,
        state.last,
        'must be an address of the pool family',
      );
    }
  }
  return index;
}

function asStateError(err: unknown): unknown {
  if (err instanceof IpamError && err.code !== 'INVALID_STATE') {
    return new IpamError('INVALID_STATE', err.message, {
      ...(err.path === undefined ? {} : { path: err.path }),
      value: err.value,
      cause: err,
    });
  }
  return err;
}

/** Only states whose every level is frozen can be trusted not to change under the index. */
function remember(state: PodPoolState, index: PoolIndex): void {
  if (index.entriesOwned && Object.isFrozen(state.allocations)) cache.put(state, index);
}

function peekIndex(state: PodPoolState): PoolIndex {
  const cached = cache.peek(state);
  if (cached !== undefined) return cached;
  const built = buildIndex(state);
  remember(state, built);
  return built;
}

/**
 * The entries of a state as a fresh array of frozen objects of our own (copied once from parsed
 * JSON). Spread, not slice(): V8 copies frozen arrays with slice() fifty times slower.
 */
function ownEntries(state: PodPoolState, index: PoolIndex): PodIpAllocation[] {
  if (index.entriesOwned) return [...state.allocations];
  index.entriesOwned = true;
  return state.allocations.map((a) => Object.freeze({ owner: a.owner, ip: a.ip }));
}

function finish(
  prev: PodPoolState,
  index: PoolIndex,
  allocations: PodIpAllocation[],
  last: string | undefined,
): PodPoolState {
  const next: PodPoolState = Object.freeze({
    v: 1,
    cidr: prev.cidr,
    ...(last === undefined ? {} : { last }),
    allocations: Object.freeze(allocations),
  });
  cache.put(next, index);
  return next;
}

/**
 * Validates stored state (e.g. just read back from the KV bucket) and returns it unchanged.
 * Throws INVALID_STATE naming the broken field.
 */
export function checkPodPoolState(state: unknown, path = 'state'): PodPoolState {
  const s = state as PodPoolState;
  remember(s, buildIndex(s, path));
  return s;
}

export interface CreatePodPoolOptions {
  /** Give ROUTER_OWNER (cilium_host) the first usable address. Default true. */
  readonly reserveRouter?: boolean;
}

/** A fresh pool for a node's pod CIDR (one family). */
export function createPodPool(
  cidr: string,
  options: CreatePodPoolOptions = {},
  path = 'cidr',
): PodPoolState {
  const index = emptyIndex(cidr, path);
  const allocations: PodIpAllocation[] = [];
  if (options.reserveRouter ?? true) {
    const ip = formatAddress(index.family, index.first);
    allocations.push(Object.freeze({ owner: ROUTER_OWNER, ip }));
    index.used.set(index.first, ROUTER_OWNER);
    index.byOwner.set(ROUTER_OWNER, ip);
  }
  const state: PodPoolState = Object.freeze({
    v: 1,
    cidr: formatPrefix(index.cidr),
    allocations: Object.freeze(allocations),
  });
  cache.put(state, index);
  return state;
}

/**
 * The address a pool made from `cidr` reserves for the node's router: the pods' default
 * gateway. IPAM sends it in its replies so that no agent has to know this rule.
 */
export function podGateway(cidr: string, path = 'cidr'): string {
  const index = emptyIndex(cidr, path);
  return formatAddress(index.family, index.first);
}

/** {@link podGateway} for each family a node has a pod CIDR for. */
export function podGateways(cidrs: NodePodCidrs): { ipv4?: string; ipv6?: string } {
  return {
    ...(cidrs.ipv4 !== undefined ? { ipv4: podGateway(cidrs.ipv4, 'podCIDRs.ipv4') } : {}),
    ...(cidrs.ipv6 !== undefined ? { ipv6: podGateway(cidrs.ipv6, 'podCIDRs.ipv6') } : {}),
  };
}

export interface AllocatePodIpOptions {
  /** A specific address (a restore, or a CNI `ips` argument). */
  readonly ip?: string;
}

export interface AllocatePodIpResult {
  readonly state: PodPoolState;
  readonly ip: string;
  /** False when the owner already held this address (a retried CNI ADD). */
  readonly created: boolean;
}

/**
 * Gives `owner` an address. Idempotent: an owner that already holds an address gets the same
 * one back and the state is returned unchanged.
 * Throws RANGE_FULL, IP_IN_USE, IP_RESERVED, IP_OUT_OF_RANGE, OWNER_CONFLICT, INVALID_*.
 */
export function allocatePodIp(
  state: PodPoolState,
  owner: string,
  options: AllocatePodIpOptions = {},
): AllocatePodIpResult {
  checkOwnerKey(owner, 'owner');
  const seen = peekIndex(state);
  let wanted: bigint | undefined;
  if (options.ip !== undefined) {
    const ip = parseIp(options.ip, 'ip');
    if (familyOf(ip) !== seen.family) {
      throw invalidValue(
        'FAMILY_MISMATCH',
        'ip',
        options.ip,
        `the pool ${state.cidr} is ${k8sFamilyName(seen.family)}`,
      );
    }
    wanted = ip.value;
  }
  const existing = seen.byOwner.get(owner);
  if (existing !== undefined) {
    if (wanted !== undefined && formatAddress(seen.family, wanted) !== existing) {
      throw new IpamError(
        'OWNER_CONFLICT',
        `owner ${JSON.stringify(owner)} already holds ${existing}, not ${options.ip}`,
        { details: { owner, held: existing } },
      );
    }
    return { state, ip: existing, created: false };
  }

  let chosen: bigint;
  if (wanted !== undefined) {
    const text = formatAddress(seen.family, wanted);
    if (wanted < seen.first || wanted > seen.last) {
      if (wanted >= seen.network && wanted <= seen.broadcast) {
        throw invalidValue(
          'IP_RESERVED',
          'ip',
          text,
          `is the ${wanted === seen.network ? 'network' : 'broadcast'} address of ${state.cidr} and is never handed out`,
        );
      }
      throw invalidValue('IP_OUT_OF_RANGE', 'ip', text, `is not inside the pod CIDR ${state.cidr}`);
    }
    const holder = seen.used.get(wanted);
    if (holder !== undefined) {
      throw new IpamError('IP_IN_USE', `ip: ${text} is already held by ${JSON.stringify(holder)}`, {
        path: 'ip',
        value: text,
        details: { holder },
      });
    }
    chosen = wanted;
  } else {
    if (BigInt(seen.used.size) >= seen.capacity) {
      throw new IpamError(
        'RANGE_FULL',
        `no free address left in the pod CIDR ${state.cidr} (${seen.capacity} of ${seen.capacity} in use)`,
        { details: { cidr: state.cidr, capacity: Number(seen.capacity) } },
      );
    }
    let candidate = seen.first;
    if (state.last !== undefined) {
      const lastIp = tryParseIp(state.last);
      if (lastIp !== undefined && lastIp.value >= seen.first && lastIp.value < seen.last) {
        candidate = lastIp.value + 1n;
      }
    }
    // Not full, so at most used.size occupied addresses are skipped before a free one.
    while (seen.used.has(candidate)) {
      candidate = candidate >= seen.last ? seen.first : candidate + 1n;
    }
    chosen = candidate;
  }

  // Every check passed: move the index on to the new state.
  const index = cache.take(state) ?? seen;
  const ip = formatAddress(index.family, chosen);
  index.used.set(chosen, owner);
  index.byOwner.set(owner, ip);
  const allocations = ownEntries(state, index);
  allocations.push(Object.freeze({ owner, ip }));
  const next = finish(state, index, allocations, wanted === undefined ? ip : state.last);
  return { state: next, ip, created: true };
}

export interface ReleasePodIpResult {
  readonly state: PodPoolState;
  /** The address released, or null when the owner held none (a retried CNI DEL). */
  readonly ip: string | null;
}

/** Frees the owner's address. Idempotent: releasing twice is not an error. */
export function releasePodIp(state: PodPoolState, owner: string): ReleasePodIpResult {
  checkOwnerKey(owner, 'owner');
  const seen = peekIndex(state);
  const ip = seen.byOwner.get(owner);
  if (ip === undefined) return { state, ip: null };
  const index = cache.take(state) ?? seen;
  const parsed = tryParseIp(ip);
  if (parsed !== undefined) index.used.delete(parsed.value);
  index.byOwner.delete(owner);
  const allocations = ownEntries(state, index);
  const at = allocations.findIndex((a) => a.owner === owner);
  if (at >= 0) allocations.splice(at, 1);
  return { state: finish(state, index, allocations, state.last), ip };
}

export interface ReleasePodIpAddressResult {
  readonly state: PodPoolState;
  /** The owner that held the address, or null when it was free. */
  readonly owner: string | null;
}

/** Frees an address whoever holds it (the reconciler's leak sweep). */
export function releasePodIpAddress(state: PodPoolState, ip: string): ReleasePodIpAddressResult {
  const parsed = parseIp(ip, 'ip');
  const owner = peekIndex(state).used.get(parsed.value);
  if (owner === undefined) return { state, owner: null };
  return { state: releasePodIp(state, owner).state, owner };
}

export function lookupPodIp(state: PodPoolState, owner: string): string | undefined {
  return peekIndex(state).byOwner.get(owner);
}

/** All allocations, in address order. */
export function listPodIps(state: PodPoolState): PodIpAllocation[] {
  peekIndex(state); // validates
  return [...state.allocations].sort((a, b) => compareIpTexts(a.ip, b.ip));
}

export function podPoolUsage(state: PodPoolState): PodPoolUsage {
  const index = peekIndex(state);
  const reserved = [formatAddress(index.family, index.network)];
  if (index.family === 'ipv4') reserved.push(formatAddress(index.family, index.broadcast));
  return {
    cidr: state.cidr,
    family: index.family,
    capacity: index.capacity,
    used: index.used.size,
    free: index.capacity - BigInt(index.used.size),
    reserved,
  };
}

// ---------------------------------------------------------------------------------------------
// Both families of one node in one document, so a dual-stack CNI ADD is one compare-and-set.

export interface NodePodIpsState {
  readonly v: 1;
  readonly ipv4?: PodPoolState;
  readonly ipv6?: PodPoolState;
}

export interface NodePodCidrs {
  readonly ipv4?: string;
  readonly ipv6?: string;
}

export function createNodePodIps(
  cidrs: NodePodCidrs,
  options: CreatePodPoolOptions = {},
): NodePodIpsState {
  const out: { v: 1; ipv4?: PodPoolState; ipv6?: PodPoolState } = { v: 1 };
  for (const family of ['ipv4', 'ipv6'] as const) {
    const cidr = cidrs[family];
    if (cidr === undefined) continue;
    const pool = createPodPool(cidr, options, `podCIDRs.${family}`);
    const fam = familyOf(parseCidr(pool.cidr));
    if (fam !== family) {
      throw invalidValue(
        'FAMILY_MISMATCH',
        `podCIDRs.${family}`,
        cidr,
        `is not ${k8sFamilyName(family)}`,
      );
    }
    out[family] = pool;
  }
  if (out.ipv4 === undefined && out.ipv6 === undefined) {
    throw requiredValue('podCIDRs', 'at least one pod CIDR is needed');
  }
  return Object.freeze(out);
}

export interface AllocateNodePodIpsResult {
  readonly state: NodePodIpsState;
  readonly ips: { readonly ipv4?: string; readonly ipv6?: string };
  readonly created: boolean;
}

/**
 * One address per family the node has (or per family in `families`), all or nothing: when one
 * family is full, the other family's allocation is not kept.
 */
export function allocateNodePodIps(
  state: NodePodIpsState,
  owner: string,
  families?: readonly IpFamily[],
): AllocateNodePodIpsResult {
  const wanted = families ?? (['ipv4', 'ipv6'] as const).filter((f) => state[f] !== undefined);
  if (wanted.length === 0) throw requiredValue('families', 'at least one family is needed');
  const next: { v: 1; ipv4?: PodPoolState; ipv6?: PodPoolState } = { ...state };
  const ips: { ipv4?: string; ipv6?: string } = {};
  let created = false;
  for (const family of wanted) {
    const pool = state[family];
    if (pool === undefined) {
      throw new IpamError('NO_CIDR', `the node has no ${k8sFamilyName(family)} pod CIDR`, {
        details: { family },
      });
    }
    const r = allocatePodIp(pool, owner);
    next[family] = r.state;
    ips[family] = r.ip;
    created ||= r.created;
  }
  return { state: created ? Object.freeze(next) : state, ips, created };
}

export function releaseNodePodIps(
  state: NodePodIpsState,
  owner: string,
): { state: NodePodIpsState; released: { ipv4?: string; ipv6?: string } } {
  const next: { v: 1; ipv4?: PodPoolState; ipv6?: PodPoolState } = { ...state };
  const released: { ipv4?: string; ipv6?: string } = {};
  for (const family of ['ipv4', 'ipv6'] as const) {
    const pool = state[family];
    if (pool === undefined) continue;
    const r = releasePodIp(pool, owner);
    next[family] = r.state;
    if (r.ip !== null) released[family] = r.ip;
  }
  const changed = released.ipv4 !== undefined || released.ipv6 !== undefined;
  return { state: changed ? Object.freeze(next) : state, released };
}

/** A node's pod IP document as stored (JSON), checked; throws INVALID_STATE naming the field. */
export function decodeNodePodIps(v: unknown): NodePodIpsState {
  const s = v as NodePodIpsState;
  if (s === null || typeof s !== 'object' || s.v !== 1) {
    throw new IpamError('INVALID_STATE', 'state.v: Invalid value: unsupported pod IP document');
  }
  if (s.ipv4 !== undefined) checkPodPoolState(s.ipv4, 'state.ipv4');
  if (s.ipv6 !== undefined) checkPodPoolState(s.ipv6, 'state.ipv6');
  return s;
}

/** Who holds `ip` (canonical text) on the node: an owner key, or undefined when nobody does. */
export function nodePodIpHolder(state: NodePodIpsState, ip: string): string | undefined {
  for (const family of ['ipv4', 'ipv6'] as const) {
    const hit = state[family]?.allocations.find((a) => a.ip === ip);
    if (hit !== undefined) return hit.owner;
  }
  return undefined;
}
