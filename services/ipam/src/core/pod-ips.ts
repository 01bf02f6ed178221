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
// State is plain JSON: the CIDR, the owner -> address map, and the last address handed out.
// The free set is derived. New addresses are searched round robin after the last one handed
// out, so a just-released address is not reused at once (stale conntrack or ipcache entries of
// the previous pod would otherwise hit the new one).
import { IpamError, invalidValue, requiredValue } from './errors.js';
import {
  type Cidr,
  type IpFamily,
  cidrLast,
  compareIpTexts,
  formatAddress,
  formatCidr,
  k8sFamilyName,
  parseCidr,
  parseIp,
  tryParseIp,
} from './ip.js';
import { IndexCache, copyRecord } from './memo.js';

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

export interface PodPoolState {
  readonly v: 1;
  /** The node's pod CIDR for one family, canonical text. */
  readonly cidr: string;
  /** The address most recently handed out by a search; the next search starts after it. */
  readonly last?: string;
  /** Owner key -> canonical address text. */
  readonly owners: Readonly<Record<string, string>>;
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
  readonly first: bigint;
  readonly last: bigint;
  readonly capacity: bigint;
  /** address -> owner */
  readonly used: Map<bigint, string>;
}

const cache = new IndexCache<PodPoolState, PoolIndex>();

function usableRange(cidr: Cidr, path: string): { first: bigint; last: bigint } {
  const maxPrefix = cidr.family === 'ipv4' ? 30 : 127;
  if (cidr.prefix > maxPrefix) {
    throw invalidValue(
      'INVALID_CIDR',
      path,
      formatCidr(cidr),
      `a pod CIDR needs a prefix length of at most ${maxPrefix} to leave an address after the reserved ones`,
    );
  }
  const first = cidr.network + 1n;
  const last = cidr.family === 'ipv4' ? cidrLast(cidr) - 1n : cidrLast(cidr);
  return { first, last };
}

function indexFromCidr(cidrText: string, path: string): PoolIndex & { cidr: Cidr } {
  const cidr = parseCidr(cidrText, path);
  const { first, last } = usableRange(cidr, path);
  return {
    cidr,
    family: cidr.family,
    first,
    last,
    capacity: last - first + 1n,
    used: new Map(),
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
    index = indexFromCidr(state.cidr, `${path}.cidr`);
  } catch (err) {
    throw asStateError(err);
  }
  if (state.owners === null || typeof state.owners !== 'object') {
    throw invalidValue('INVALID_STATE', `${path}.owners`, state.owners, 'must be an object');
  }
  for (const [owner, ipText] of Object.entries(state.owners)) {
    const p = `${path}.owners[${JSON.stringify(owner)}]`;
    const ip = tryParseIp(typeof ipText === 'string' ? ipText : '');
    if (ip === undefined || ip.family !== index.family) {
      throw invalidValue(
        'INVALID_STATE',
        p,
        ipText,
        `must be an ${k8sFamilyName(index.family)} address`,
      );
    }
    if (ip.value < index.first || ip.value > index.last) {
      throw invalidValue('INVALID_STATE', p, ipText, `is not a usable address of ${state.cidr}`);
    }
    const holder = index.used.get(ip.value);
    if (holder !== undefined) {
      throw invalidValue('INVALID_STATE', p, ipText, `is also held by ${JSON.stringify(holder)}`);
    }
    index.used.set(ip.value, owner);
  }
  if (state.last !== undefined) {
    const ip = tryParseIp(typeof state.last === 'string' ? state.last : '');
    if (ip === undefined || ip.family !== index.family) {
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

function indexOf(state: PodPoolState): PoolIndex {
  return cache.take(state) ?? buildIndex(state);
}

function finish(
  prev: PodPoolState,
  index: PoolIndex,
  owners: Record<string, string>,
  last: string | undefined,
): PodPoolState {
  // Owner values are strings, so freezing the map itself is enough.
  const next: PodPoolState = Object.freeze({
    v: 1,
    cidr: prev.cidr,
    ...(last === undefined ? {} : { last }),
    owners: Object.freeze(owners),
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
  const index = buildIndex(s, path);
  if (Object.isFrozen(s)) cache.put(s, index);
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
  const index = indexFromCidr(cidr, path);
  const canonical = formatCidr(index.cidr);
  const owners: Record<string, string> = {};
  if (options.reserveRouter ?? true) {
    owners[ROUTER_OWNER] = formatAddress(index.family, index.first);
    index.used.set(index.first, ROUTER_OWNER);
  }
  const state: PodPoolState = Object.freeze({
    v: 1,
    cidr: canonical,
    owners: Object.freeze(owners),
  });
  cache.put(state, {
    family: index.family,
    first: index.first,
    last: index.last,
    capacity: index.capacity,
    used: index.used,
  });
  return state;
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
  const existing = Object.prototype.hasOwnProperty.call(state.owners, owner)
    ? state.owners[owner]
    : undefined;
  let wanted: bigint | undefined;
  let index: PoolIndex | undefined;
  if (options.ip !== undefined) {
    const ip = parseIp(options.ip, 'ip');
    index = cache.peek(state) ?? buildIndex(state);
    if (ip.family !== index.family) {
      throw invalidValue(
        'FAMILY_MISMATCH',
        'ip',
        options.ip,
        `the pool ${state.cidr} is ${k8sFamilyName(index.family)}`,
      );
    }
    wanted = ip.value;
  }
  if (existing !== undefined) {
    if (wanted !== undefined && formatAddress(index!.family, wanted) !== existing) {
      throw new IpamError(
        'OWNER_CONFLICT',
        `owner ${JSON.stringify(owner)} already holds ${existing}, not ${options.ip}`,
        { details: { owner, held: existing } },
      );
    }
    return { state, ip: existing, created: false };
  }

  index = cache.take(state) ?? index ?? buildIndex(state);
  let chosen: bigint;
  if (wanted !== undefined) {
    const text = formatAddress(index.family, wanted);
    if (wanted < index.first || wanted > index.last) {
      const cidr = parseCidr(state.cidr);
      const inside = wanted >= cidr.network && wanted <= cidrLast(cidr);
      cache.put(state, index);
      if (inside) {
        throw invalidValue(
          'IP_RESERVED',
          'ip',
          text,
          `is the ${wanted === cidr.network ? 'network' : 'broadcast'} address of ${state.cidr} and is never handed out`,
        );
      }
      throw invalidValue('IP_OUT_OF_RANGE', 'ip', text, `is not inside the pod CIDR ${state.cidr}`);
    }
    const holder = index.used.get(wanted);
    if (holder !== undefined) {
      cache.put(state, index);
      throw new IpamError('IP_IN_USE', `ip: ${text} is already held by ${JSON.stringify(holder)}`, {
        path: 'ip',
        value: text,
        details: { holder },
      });
    }
    chosen = wanted;
  } else {
    if (BigInt(index.used.size) >= index.capacity) {
      cache.put(state, index);
      throw new IpamError(
        'RANGE_FULL',
        `no free address left in the pod CIDR ${state.cidr} (${index.capacity} of ${index.capacity} in use)`,
        { details: { cidr: state.cidr, capacity: Number(index.capacity) } },
      );
    }
    let candidate = index.first;
    if (state.last !== undefined) {
      const lastIp = tryParseIp(state.last);
      if (lastIp !== undefined && lastIp.value >= index.first && lastIp.value < index.last) {
        candidate = lastIp.value + 1n;
      }
    }
    // Not full, so at most used.size occupied addresses are skipped before a free one.
    while (index.used.has(candidate)) {
      candidate = candidate >= index.last ? index.first : candidate + 1n;
    }
    chosen = candidate;
  }

  const ip = formatAddress(index.family, chosen);
  index.used.set(chosen, owner);
  const owners = copyRecord(state.owners, owner, ip);
  const next = finish(state, index, owners, wanted === undefined ? ip : state.last);
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
  if (!Object.prototype.hasOwnProperty.call(state.owners, owner)) return { state, ip: null };
  const ip = state.owners[owner] as string;
  const index = indexOf(state);
  const parsed = tryParseIp(ip);
  if (parsed !== undefined) index.used.delete(parsed.value);
  const owners: Record<string, string> = copyRecord(state.owners);
  delete owners[owner];
  return { state: finish(state, index, owners, state.last), ip };
}

export interface ReleasePodIpAddressResult {
  readonly state: PodPoolState;
  /** The owner that held the address, or null when it was free. */
  readonly owner: string | null;
}

/** Frees an address whoever holds it (the reconciler's leak sweep). */
export function releasePodIpAddress(state: PodPoolState, ip: string): ReleasePodIpAddressResult {
  const parsed = parseIp(ip, 'ip');
  const index = cache.peek(state) ?? buildIndex(state);
  const owner = index.used.get(parsed.value);
  if (owner === undefined) return { state, owner: null };
  return { state: releasePodIp(state, owner).state, owner };
}

export function lookupPodIp(state: PodPoolState, owner: string): string | undefined {
  return Object.prototype.hasOwnProperty.call(state.owners, owner)
    ? state.owners[owner]
    : undefined;
}

export interface PodIpEntry {
  readonly owner: string;
  readonly ip: string;
}

/** All allocations, in address order. */
export function listPodIps(state: PodPoolState): PodIpEntry[] {
  return Object.entries(state.owners)
    .map(([owner, ip]) => ({ owner, ip }))
    .sort((a, b) => compareIpTexts(a.ip, b.ip));
}

export function podPoolUsage(state: PodPoolState): PodPoolUsage {
  const index = cache.peek(state) ?? buildIndex(state);
  const cidr = parseCidr(state.cidr);
  const reserved = [formatAddress(cidr.family, cidr.network)];
  if (cidr.family === 'ipv4') reserved.push(formatAddress(cidr.family, cidrLast(cidr)));
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
    const fam = parseCidr(pool.cidr).family;
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
