// Per-node pod CIDRs.
//
// `cluster-pool` mode (Cilium's default): the cluster CIDR lists are carved into per-node CIDRs
// of a fixed mask size, one per node and family, recorded on the node's CiliumNode
// (spec.ipam.podCIDRs). Defaults are Cilium's Helm defaults: 10.0.0.0/8 in /24s and
// fd00::/104 in /120s.
//
// `kubernetes` mode: kube-controller-manager already chose Node.spec.podCIDRs; they are
// validated, checked against every other node's, and recorded.
//
// State is plain JSON: a list of {node, ipv4?, ipv6?} entries plus the last CIDR carved per
// family (the next search starts after it, so the CIDR of a node that just left is not reused
// at once while routes to it may still linger). The free set is derived: one bitmap per cluster
// CIDR. A list rather than a node-keyed object because every transition copies it, and copying
// a list of frozen entries is a pointer copy where an object of 5,000 keys costs a millisecond.
import { nodeNameProblem } from '@ciliate/contracts';
import { formatPrefix, prefixContainsPrefix, prefixMask, type IpPrefix } from '@ciliate/netaddr';

import { SlotBitmap } from './bitmap.js';
import { IpamError, invalidValue, requiredValue } from './errors.js';
import {
  type IpFamily,
  IP_FAMILIES,
  cidrsOverlap,
  familyBits,
  familyNumber,
  familyOf,
  k8sFamilyName,
  parseCidr,
  tryParseCidr,
} from './ip.js';
import { IndexCache, deepFreeze } from './memo.js';

// ---------------------------------------------------------------------------------------------
// Configuration

/** Cilium's Helm values and their defaults (`ipam.operator.*`, `ipv4.enabled`, `ipv6.enabled`). */
export interface ClusterPoolSettings {
  readonly enableIPv4?: boolean;
  readonly enableIPv6?: boolean;
  readonly clusterPoolIPv4PodCIDRList?: readonly string[];
  readonly clusterPoolIPv4MaskSize?: number;
  readonly clusterPoolIPv6PodCIDRList?: readonly string[];
  readonly clusterPoolIPv6MaskSize?: number;
}

export const CLUSTER_POOL_DEFAULTS = Object.freeze({
  enableIPv4: true,
  enableIPv6: false,
  clusterPoolIPv4PodCIDRList: Object.freeze(['10.0.0.0/8']),
  clusterPoolIPv4MaskSize: 24,
  clusterPoolIPv6PodCIDRList: Object.freeze(['fd00::/104']),
  clusterPoolIPv6MaskSize: 120,
});

export interface ClusterPoolFamilyConfig {
  /** Canonical cluster CIDRs, in the order they are used. */
  readonly cidrs: readonly string[];
  readonly maskSize: number;
}

/** A validated cluster-pool configuration; a family is enabled when present. */
export interface ClusterPoolConfig {
  readonly ipv4?: ClusterPoolFamilyConfig;
  readonly ipv6?: ClusterPoolFamilyConfig;
}

/**
 * The most slots one cluster CIDR may be carved into (2^24: a 2 MiB bitmap). Kubernetes'
 * cidrset allows a difference of 16 bits for IPv6; IPv4 /8 in /32s would be 24.
 */
export const MAX_CARVE_BITS = 24;

/** Smallest per-node CIDRs that still leave a pod address after network, broadcast, router. */
const MAX_MASK = { ipv4: 30, ipv6: 126 } as const;

/**
 * Validates Helm-style settings, fills Cilium's defaults, and returns the configuration the
 * carving functions take. Errors name the setting (`ipam.operator.clusterPoolIPv4MaskSize`).
 */
export function clusterPoolConfig(
  settings: ClusterPoolSettings = {},
  path = 'ipam.operator',
): ClusterPoolConfig {
  const enable = {
    ipv4: settings.enableIPv4 ?? CLUSTER_POOL_DEFAULTS.enableIPv4,
    ipv6: settings.enableIPv6 ?? CLUSTER_POOL_DEFAULTS.enableIPv6,
  };
  const out: { ipv4?: ClusterPoolFamilyConfig; ipv6?: ClusterPoolFamilyConfig } = {};
  for (const family of IP_FAMILIES) {
    if (!enable[family]) continue;
    const V = family === 'ipv4' ? 'IPv4' : 'IPv6';
    const listKey = `clusterPool${V}PodCIDRList` as const;
    const maskKey = `clusterPool${V}MaskSize` as const;
    const list = settings[listKey] ?? CLUSTER_POOL_DEFAULTS[listKey];
    const mask = settings[maskKey] ?? CLUSTER_POOL_DEFAULTS[maskKey];
    out[family] = familyConfig(family, list, mask, `${path}.${listKey}`, `${path}.${maskKey}`);
  }
  if (out.ipv4 === undefined && out.ipv6 === undefined) {
    throw requiredValue(`${path}`, 'at least one of IPv4 and IPv6 must be enabled');
  }
  return deepFreeze(out);
}

function familyConfig(
  family: IpFamily,
  list: unknown,
  mask: unknown,
  listPath: string,
  maskPath: string,
): ClusterPoolFamilyConfig {
  const bits = familyBits(family);
  if (typeof mask !== 'number' || !Number.isInteger(mask) || mask < 1 || mask > bits) {
    throw invalidValue('INVALID_ARGUMENT', maskPath, mask, `must be an integer 1-${bits}`);
  }
  if (mask > MAX_MASK[family]) {
    throw invalidValue(
      'INVALID_ARGUMENT',
      maskPath,
      mask,
      `must be at most ${MAX_MASK[family]}: a smaller per-node CIDR leaves no pod address after the reserved ones`,
    );
  }
  if (!Array.isArray(list) || list.length === 0) {
    throw requiredValue(listPath, `at least one ${k8sFamilyName(family)} cluster CIDR is needed`);
  }
  const cidrs: IpPrefix[] = [];
  list.forEach((text: unknown, i: number) => {
    const p = `${listPath}[${i}]`;
    const cidr = parseCidr(text, p);
    if (familyOf(cidr) !== family) {
      throw invalidValue('FAMILY_MISMATCH', p, text, `must be an ${k8sFamilyName(family)} CIDR`);
    }
    if (cidr.length > mask) {
      throw invalidValue(
        'INVALID_ARGUMENT',
        p,
        text,
        `is smaller than one per-node CIDR (${maskPath} is ${mask})`,
      );
    }
    if (mask - cidr.length > MAX_CARVE_BITS) {
      throw invalidValue(
        'INVALID_ARGUMENT',
        p,
        text,
        `would be carved into 2^${mask - cidr.length} per-node CIDRs of /${mask}; at most 2^${MAX_CARVE_BITS} are supported`,
      );
    }
    const clash = cidrs.findIndex((c) => cidrsOverlap(c, cidr));
    if (clash >= 0) {
      throw invalidValue(
        'CIDR_CONFLICT',
        p,
        text,
        `overlaps ${listPath}[${clash}] (${formatPrefix(cidrs[clash] as IpPrefix)})`,
      );
    }
    cidrs.push(cidr);
  });
  return { cidrs: cidrs.map(formatPrefix), maskSize: mask };
}

// ---------------------------------------------------------------------------------------------
// State

export interface NodeCidrs {
  readonly ipv4?: string;
  readonly ipv6?: string;
}

export interface NodeCidrEntry extends NodeCidrs {
  readonly node: string;
}

export interface NodeCidrState {
  readonly v: 1;
  /** Every node's pod CIDRs (canonical text), in the order the nodes were first recorded. */
  readonly nodes: readonly NodeCidrEntry[];
  /** The CIDR carved last, per family. */
  readonly last?: { readonly ipv4?: string; readonly ipv6?: string };
}

export function emptyNodeCidrState(): NodeCidrState {
  return deepFreeze({ v: 1, nodes: [] });
}

/** Something in stored state that the current configuration cannot account for. */
export interface NodeCidrIssue {
  readonly node: string;
  readonly cidr: string;
  readonly problem: 'outside_pool' | 'overlap' | 'family_disabled' | 'invalid';
  readonly message: string;
}

interface PoolSlots {
  readonly cidr: IpPrefix;
  readonly text: string;
  /** Bits per node CIDR, as a shift from slot index to address offset. */
  readonly shift: bigint;
  readonly bitmap: SlotBitmap;
}

interface FamilySlots {
  readonly family: IpFamily;
  readonly maskSize: number;
  readonly pools: PoolSlots[];
}

/**
 * Every recorded CIDR of one family, bucketed by prefix length, so "who overlaps this CIDR" is
 * one map lookup per distinct prefix length (usually one) instead of a scan of all nodes.
 */
class CidrOwners {
  private readonly byPrefix = new Map<number, Map<bigint, string>>();

  add(cidr: IpPrefix, node: string): void {
    let m = this.byPrefix.get(cidr.length);
    if (m === undefined) {
      m = new Map();
      this.byPrefix.set(cidr.length, m);
    }
    if (!m.has(cidr.network)) m.set(cidr.network, node);
  }

  remove(cidr: IpPrefix, node: string): void {
    const m = this.byPrefix.get(cidr.length);
    if (m !== undefined && m.get(cidr.network) === node) m.delete(cidr.network);
  }

  /** Nodes other than `except` holding a CIDR that overlaps `cidr`. */
  holders(cidr: IpPrefix, except: string): string[] {
    const out: string[] = [];
    const outerMask = prefixMask(cidr.family, cidr.length);
    for (const [prefix, m] of this.byPrefix) {
      if (m.size === 0) continue;
      if (prefix <= cidr.length) {
        const h = m.get(cidr.network & prefixMask(cidr.family, prefix));
        if (h !== undefined && h !== except) out.push(h);
      } else {
        // Only with mixed prefix lengths: the more specific CIDRs inside `cidr`.
        for (const [network, h] of m) {
          if ((network & outerMask) === cidr.network && h !== except) out.push(h);
        }
      }
    }
    return out;
  }
}

interface CarveIndex {
  readonly config: ClusterPoolConfig | undefined;
  readonly configKey: string;
  /** Slot bitmaps of the cluster CIDRs (cluster-pool mode only). */
  readonly families: { ipv4?: FamilySlots; ipv6?: FamilySlots };
  readonly owners: { readonly ipv4: CidrOwners; readonly ipv6: CidrOwners };
  /** node -> parsed CIDRs. */
  readonly parsed: Map<string, { ipv4?: IpPrefix; ipv6?: IpPrefix }>;
  /** node -> its entry in the state. */
  readonly byNode: Map<string, NodeCidrEntry>;
  /** Problems found in the stored state; while there are any, changes rebuild the index. */
  readonly issues: NodeCidrIssue[];
  /** Whether the state's entries are ours (frozen); entries from parsed JSON are copied once. */
  entriesOwned: boolean;
}

const cache = new IndexCache<NodeCidrState, CarveIndex>();

const KUBERNETES_MODE_KEY = 'kubernetes';

function configKey(config: ClusterPoolConfig | undefined): string {
  return config === undefined ? KUBERNETES_MODE_KEY : JSON.stringify(config);
}

function checkState(state: NodeCidrState, path: string): void {
  if (state === null || typeof state !== 'object') {
    throw invalidValue('INVALID_STATE', path, state, 'must be an object');
  }
  if (state.v !== 1) {
    throw invalidValue('INVALID_STATE', `${path}.v`, state.v, 'unsupported state version');
  }
  if (!Array.isArray(state.nodes)) {
    throw invalidValue('INVALID_STATE', `${path}.nodes`, state.nodes, 'must be a list');
  }
}

function newFamilySlots(family: IpFamily, fc: ClusterPoolFamilyConfig): FamilySlots {
  const bits = familyBits(family);
  return {
    family,
    maskSize: fc.maskSize,
    pools: fc.cidrs.map((text) => {
      const cidr = parseCidr(text);
      return {
        cidr,
        text,
        shift: BigInt(bits - fc.maskSize),
        bitmap: new SlotBitmap(2 ** (fc.maskSize - cidr.length)),
      };
    }),
  };
}

/** The slots of `pool` that `cidr` covers, or undefined when they do not overlap. */
function slotSpan(pool: PoolSlots, cidr: IpPrefix, maskSize: number): [number, number] | undefined {
  if (prefixContainsPrefix(cidr, pool.cidr)) return [0, pool.bitmap.size];
  if (!prefixContainsPrefix(pool.cidr, cidr)) return undefined;
  const start = Number((cidr.network - pool.cidr.network) >> pool.shift);
  const count = cidr.length >= maskSize ? 1 : 2 ** (maskSize - cidr.length);
  return [start, start + count];
}

function markSlots(fs: FamilySlots, cidr: IpPrefix): void {
  for (const pool of fs.pools) {
    const span = slotSpan(pool, cidr, fs.maskSize);
    if (span === undefined) continue;
    for (let s = span[0]; s < span[1]; s++) pool.bitmap.set(s);
  }
}

/** Whether any per-node slot `cidr` touches is in use already. */
function slotsTaken(fs: FamilySlots, cidr: IpPrefix): boolean {
  for (const pool of fs.pools) {
    const span = slotSpan(pool, cidr, fs.maskSize);
    if (span === undefined) continue;
    for (let s = span[0]; s < span[1]; s++) if (pool.bitmap.has(s)) return true;
  }
  return false;
}

/** The per-node slots (as CIDRs) that `cidr` touches, for naming who holds them. */
function touchedSlots(fs: FamilySlots, cidr: IpPrefix): IpPrefix[] {
  if (cidr.length <= fs.maskSize) return [cidr];
  return [
    {
      family: cidr.family,
      network: cidr.network & prefixMask(cidr.family, fs.maskSize),
      length: fs.maskSize,
    },
  ];
}

/** Only valid while no two recorded CIDRs share a slot (no issues). */
function clearSlots(fs: FamilySlots, cidr: IpPrefix): void {
  for (const pool of fs.pools) {
    const span = slotSpan(pool, cidr, fs.maskSize);
    if (span === undefined) continue;
    for (let s = span[0]; s < span[1]; s++) pool.bitmap.clear(s);
  }
}

function insidePool(fs: FamilySlots, cidr: IpPrefix): boolean {
  return fs.pools.some((p) => prefixContainsPrefix(p.cidr, cidr));
}

function recordNode(
  index: CarveIndex,
  node: string,
  cidrs: { ipv4?: IpPrefix; ipv6?: IpPrefix },
): void {
  const prev = index.parsed.get(node) ?? {};
  for (const family of IP_FAMILIES) {
    const cidr = cidrs[family];
    if (cidr === undefined || prev[family] !== undefined) continue;
    index.owners[family].add(cidr, node);
    const fs = index.families[family];
    if (fs !== undefined) markSlots(fs, cidr);
  }
  index.parsed.set(node, { ...prev, ...cidrs });
}

function forgetNode(index: CarveIndex, node: string): void {
  const cidrs = index.parsed.get(node) ?? {};
  for (const family of IP_FAMILIES) {
    const cidr = cidrs[family];
    if (cidr === undefined) continue;
    index.owners[family].remove(cidr, node);
    const fs = index.families[family];
    if (fs !== undefined) clearSlots(fs, cidr);
  }
  index.parsed.delete(node);
}

function buildIndex(
  state: NodeCidrState,
  config: ClusterPoolConfig | undefined,
  path = 'state',
): CarveIndex {
  checkState(state, path);
  const families: CarveIndex['families'] = {};
  if (config !== undefined) {
    for (const family of IP_FAMILIES) {
      const fc = config[family];
      if (fc !== undefined) families[family] = newFamilySlots(family, fc);
    }
  }
  const index: CarveIndex = {
    config,
    configKey: configKey(config),
    families,
    owners: { ipv4: new CidrOwners(), ipv6: new CidrOwners() },
    parsed: new Map(),
    byNode: new Map(),
    issues: [],
    entriesOwned: true,
  };
  state.nodes.forEach((entry: NodeCidrEntry, at: number) => {
    const ep = `${path}.nodes[${at}]`;
    if (entry === null || typeof entry !== 'object') {
      throw invalidValue('INVALID_STATE', ep, entry, 'must be {node, ipv4?, ipv6?}');
    }
    const node = entry.node;
    if (typeof node !== 'string' || node === '') {
      throw invalidValue('INVALID_STATE', `${ep}.node`, node, 'must be a node name');
    }
    if (index.byNode.has(node)) {
      throw invalidValue('INVALID_STATE', `${ep}.node`, node, 'is listed twice');
    }
    if (!Object.isFrozen(entry)) index.entriesOwned = false;
    const parsed: { ipv4?: IpPrefix; ipv6?: IpPrefix } = {};
    for (const family of IP_FAMILIES) {
      const text: unknown = entry[family];
      if (text === undefined) continue;
      const cidr = typeof text === 'string' ? tryParseCidr(text) : undefined;
      const p = `${ep}.${family}`;
      if (cidr === undefined || familyOf(cidr) !== family || formatPrefix(cidr) !== text) {
        throw invalidValue(
          'INVALID_STATE',
          p,
          text,
          `must be a canonical ${k8sFamilyName(family)} CIDR`,
        );
      }
      const t = text;
      parsed[family] = cidr;
      const fs = families[family];
      const others = index.owners[family].holders(cidr, node);
      if (others.length > 0) {
        index.issues.push({
          node,
          cidr: t,
          problem: 'overlap',
          message: `${t} of node ${node} overlaps the pod CIDR of node ${others.join(', ')}`,
        });
      } else if (fs !== undefined && slotsTaken(fs, cidr)) {
        index.issues.push({
          node,
          cidr: t,
          problem: 'overlap',
          message: `${t} of node ${node} shares a /${fs.maskSize} per-node CIDR with another node`,
        });
      }
      if (config === undefined) continue;
      if (fs === undefined) {
        index.issues.push({
          node,
          cidr: t,
          problem: 'family_disabled',
          message: `node ${node} holds ${t} but ${k8sFamilyName(family)} is not enabled`,
        });
      } else if (!insidePool(fs, cidr)) {
        // Still recorded: whatever part of a pool it overlaps must not be carved again.
        index.issues.push({
          node,
          cidr: t,
          problem: 'outside_pool',
          message: `${t} of node ${node} lies outside every cluster CIDR (${fs.pools.map((x) => x.text).join(', ')})`,
        });
      }
    }
    index.byNode.set(node, entry);
    recordNode(index, node, parsed);
  });
  return index;
}

function indexFor(state: NodeCidrState, config: ClusterPoolConfig | undefined): CarveIndex {
  const key = configKey(config);
  const cached = cache.take(state);
  if (cached !== undefined && cached.configKey === key) return cached;
  if (cached !== undefined) cache.put(state, cached);
  return buildIndex(state, config);
}

function peekIndex(state: NodeCidrState, config: ClusterPoolConfig | undefined): CarveIndex {
  const cached = cache.peek(state);
  if (cached !== undefined && cached.configKey === configKey(config)) return cached;
  const built = buildIndex(state, config);
  remember(state, built);
  return built;
}

/** Any index of the state, whatever configuration built it (for lookups by node). */
function anyIndex(state: NodeCidrState, config: ClusterPoolConfig | undefined): CarveIndex {
  return cache.peek(state) ?? peekIndex(state, config);
}

function checkNodeName(node: unknown, path = 'node'): string {
  if (typeof node !== 'string' || node === '') {
    throw requiredValue(path, 'node name must be a non-empty string');
  }
  const problem = nodeNameProblem(node);
  if (problem !== undefined) throw invalidValue('INVALID_ARGUMENT', path, node, problem);
  return node;
}

/** A frozen entry for the state. */
function entryOf(node: string, cidrs: NodeCidrs): NodeCidrEntry {
  return Object.freeze({
    node,
    ...(cidrs.ipv4 === undefined ? {} : { ipv4: cidrs.ipv4 }),
    ...(cidrs.ipv6 === undefined ? {} : { ipv6: cidrs.ipv6 }),
  });
}

/** The CIDRs of an entry without its name. */
function cidrsOf(entry: NodeCidrs | undefined): NodeCidrs {
  if (entry === undefined) return {};
  return {
    ...(entry.ipv4 === undefined ? {} : { ipv4: entry.ipv4 }),
    ...(entry.ipv6 === undefined ? {} : { ipv6: entry.ipv6 }),
  };
}

/** What one transition did to the node list (the index already reflects it). */
interface Changes {
  /** Nodes that were not in the previous state, in the order they were added. */
  readonly added: string[];
  readonly addedSet: Set<string>;
  /** Nodes of the previous state whose entry was replaced or removed. */
  readonly touched: Set<string>;
}

function noChanges(): Changes {
  return { added: [], addedSet: new Set(), touched: new Set() };
}

/** Records the node's new entry (or its removal, with undefined) in the index and `changes`. */
function setEntry(
  index: CarveIndex,
  changes: Changes,
  node: string,
  entry: NodeCidrEntry | undefined,
): void {
  if (changes.addedSet.has(node)) {
    if (entry === undefined) {
      changes.addedSet.delete(node);
      changes.added.splice(changes.added.indexOf(node), 1);
    }
  } else if (changes.touched.has(node) || index.byNode.has(node)) {
    changes.touched.add(node);
  } else if (entry !== undefined) {
    changes.addedSet.add(node);
    changes.added.push(node);
  }
  if (entry === undefined) index.byNode.delete(node);
  else index.byNode.set(node, entry);
}

function changed(changes: Changes): boolean {
  return changes.added.length > 0 || changes.touched.size > 0;
}

/** Builds the next state from the previous one, the index and what changed. */
function commit(
  prev: NodeCidrState,
  index: CarveIndex,
  changes: Changes,
  last: NodeCidrState['last'],
): NodeCidrState {
  let nodes: NodeCidrEntry[];
  const copy = (e: NodeCidrEntry): NodeCidrEntry => (index.entriesOwned ? e : entryOf(e.node, e));
  if (changes.touched.size === 0 && index.entriesOwned) {
    // Spread, not slice(): V8 copies frozen arrays with slice() fifty times slower.
    nodes = [...prev.nodes];
  } else {
    nodes = [];
    for (const e of prev.nodes) {
      if (!changes.touched.has(e.node)) {
        nodes.push(copy(e));
        continue;
      }
      const now = index.byNode.get(e.node);
      if (now !== undefined) nodes.push(now);
    }
    if (!index.entriesOwned) {
      // From now on the index describes our own copies.
      for (const e of nodes) index.byNode.set(e.node, e);
      index.entriesOwned = true;
    }
  }
  for (const node of changes.added) {
    const e = index.byNode.get(node);
    if (e !== undefined) nodes.push(e);
  }
  const hasLast = last !== undefined && (last.ipv4 !== undefined || last.ipv6 !== undefined);
  const next: NodeCidrState = Object.freeze({
    v: 1,
    nodes: Object.freeze(nodes),
    ...(hasLast ? { last: Object.freeze({ ...last }) } : {}),
  });
  // With issues (overlaps, CIDRs outside the pools) incremental bookkeeping is not exact:
  // start over from the new state, which is rare and keeps the fast path simple.
  remember(next, index.issues.length === 0 ? index : buildIndex(next, index.config));
  return next;
}

/** Only states whose every level is ours (frozen) can be trusted not to change under the index. */
function remember(state: NodeCidrState, index: CarveIndex): void {
  if (index.entriesOwned && Object.isFrozen(state.nodes)) cache.put(state, index);
}

/**
 * Validates stored state (read back from the KV bucket) against the configuration. Throws
 * INVALID_STATE for a malformed document; what the configuration cannot account for (CIDRs
 * outside every pool, overlaps) comes back as issues, since refusing to load would strand every
 * node.
 */
export function checkNodeCidrState(
  state: unknown,
  config?: ClusterPoolConfig,
  path = 'state',
): { state: NodeCidrState; issues: readonly NodeCidrIssue[] } {
  const s = state as NodeCidrState;
  const index = buildIndex(s, config, path);
  remember(s, index);
  return { state: s, issues: index.issues };
}

// ---------------------------------------------------------------------------------------------
// cluster-pool: carve, release, restore

export interface AllocateNodeCidrsResult {
  readonly state: NodeCidrState;
  readonly cidrs: NodeCidrs;
  /** False when the node already had a CIDR for every enabled family. */
  readonly created: boolean;
}

function exhausted(fs: FamilySlots): IpamError {
  const total = fs.pools.reduce((n, p) => n + p.bitmap.size, 0);
  const setting =
    fs.family === 'ipv4' ? 'clusterPoolIPv4PodCIDRList' : 'clusterPoolIPv6PodCIDRList';
  return new IpamError(
    'POOL_EXHAUSTED',
    `cluster pool exhausted: all ${total} ${k8sFamilyName(fs.family)} /${fs.maskSize} CIDRs of ${fs.pools.map((p) => p.text).join(', ')} are in use (add CIDRs to ${setting})`,
    { details: { family: fs.family, capacity: total } },
  );
}

/** Finds a free slot after `last`, through the pools in order, wrapping once. */
function findSlot(
  fs: FamilySlots,
  last: string | undefined,
): { pool: PoolSlots; slot: number } | undefined {
  let startPool = 0;
  let startSlot = 0;
  const lastCidr = last === undefined ? undefined : tryParseCidr(last);
  if (lastCidr !== undefined) {
    const i = fs.pools.findIndex((p) => prefixContainsPrefix(p.cidr, lastCidr));
    if (i >= 0) {
      const span = slotSpan(fs.pools[i] as PoolSlots, lastCidr, fs.maskSize);
      if (span !== undefined) {
        startPool = i;
        startSlot = span[1];
      }
    }
  }
  const n = fs.pools.length;
  for (let k = 0; k <= n; k++) {
    const pool = fs.pools[(startPool + k) % n] as PoolSlots;
    const from = k === 0 ? startSlot : 0;
    const to = k === n ? startSlot : pool.bitmap.size;
    const slot = pool.bitmap.findFreeIn(from, to);
    if (slot >= 0) return { pool, slot };
  }
  return undefined;
}

function slotCidr(fs: FamilySlots, pool: PoolSlots, slot: number): IpPrefix {
  return {
    family: familyNumber(fs.family),
    network: pool.cidr.network + (BigInt(slot) << pool.shift),
    length: fs.maskSize,
  };
}

/** Carves into `index` (mutating it); returns the node's CIDRs, or throws before any change. */
function carveInto(
  index: CarveIndex,
  changes: Changes,
  node: string,
  last: { ipv4?: string; ipv6?: string },
): NodeCidrs {
  const current = cidrsOf(index.byNode.get(node));
  const picks: Array<{ fs: FamilySlots; pool: PoolSlots; slot: number }> = [];
  for (const family of IP_FAMILIES) {
    const fs = index.families[family];
    if (fs === undefined || current[family] !== undefined) continue;
    const hit = findSlot(fs, last[family]);
    if (hit === undefined) throw exhausted(fs);
    picks.push({ fs, ...hit });
  }
  if (picks.length === 0) return current;
  const out: { ipv4?: string; ipv6?: string } = { ...current };
  const parsed: { ipv4?: IpPrefix; ipv6?: IpPrefix } = {};
  for (const { fs, pool, slot } of picks) {
    const cidr = slotCidr(fs, pool, slot);
    const text = formatPrefix(cidr);
    out[fs.family] = text;
    last[fs.family] = text;
    parsed[fs.family] = cidr;
  }
  recordNode(index, node, parsed);
  setEntry(index, changes, node, entryOf(node, out));
  return out;
}

/**
 * Gives `node` a pod CIDR for every enabled family it does not have yet. Idempotent per node.
 * All or nothing: when one family is exhausted nothing is carved (POOL_EXHAUSTED).
 */
export function allocateNodeCidrs(
  state: NodeCidrState,
  config: ClusterPoolConfig,
  node: string,
): AllocateNodeCidrsResult {
  checkNodeName(node);
  const current = lookupNodeCidrs(state, node, config) ?? {};
  const missing = IP_FAMILIES.filter((f) => config[f] !== undefined && current[f] === undefined);
  if (missing.length === 0) return { state, cidrs: current, created: false };
  const index = indexFor(state, config);
  const last = { ...(state.last ?? {}) };
  const changes = noChanges();
  let cidrs: NodeCidrs;
  try {
    cidrs = carveInto(index, changes, node, last);
  } catch (err) {
    remember(state, index); // carveInto changes nothing before it has every family's slot
    throw err;
  }
  return { state: commit(state, index, changes, last), cidrs, created: true };
}

export interface CarveNodeCidrsResult {
  readonly state: NodeCidrState;
  readonly cidrs: Readonly<Record<string, NodeCidrs>>;
  readonly errors: ReadonlyArray<{ readonly node: string; readonly error: IpamError }>;
}

/** allocateNodeCidrs for many nodes in one state transition (start-up, large joins). */
export function carveNodeCidrs(
  state: NodeCidrState,
  config: ClusterPoolConfig,
  nodes: readonly string[],
): CarveNodeCidrsResult {
  const index = indexFor(state, config);
  const last = { ...(state.last ?? {}) };
  const changes = noChanges();
  const cidrs: Record<string, NodeCidrs> = {};
  const errors: Array<{ node: string; error: IpamError }> = [];
  nodes.forEach((node, i) => {
    try {
      checkNodeName(node, `nodes[${i}]`);
      cidrs[node] = carveInto(index, changes, node, last);
    } catch (err) {
      if (!(err instanceof IpamError)) throw err;
      errors.push({ node, error: err });
    }
  });
  if (!changed(changes)) {
    remember(state, index);
    return { state, cidrs, errors };
  }
  return { state: commit(state, index, changes, last), cidrs, errors };
}

export interface ReleaseNodeCidrsResult {
  readonly state: NodeCidrState;
  /** What the node held, or null when it held nothing. */
  readonly released: NodeCidrs | null;
}

/**
 * Forgets the node's CIDRs (its node object is gone). Works for both modes; in cluster-pool
 * mode pass the configuration so the index handed on stays usable. The caller must only do
 * this after the initial sync of nodes: a node missing from a partial list is not gone.
 */
export function releaseNodeCidrs(
  state: NodeCidrState,
  node: string,
  config?: ClusterPoolConfig,
): ReleaseNodeCidrsResult {
  checkNodeName(node);
  const held = lookupNodeCidrs(state, node, config);
  if (held === undefined) return { state, released: null };
  const index = indexFor(state, config);
  forgetNode(index, node);
  const changes = noChanges();
  setEntry(index, changes, node, undefined);
  return { state: commit(state, index, changes, state.last), released: held };
}

/** Parses a podCIDRs list: at most two entries, at most one per family. */
export function validatePodCidrList(
  podCIDRs: unknown,
  path: string,
  options: { allowHostBits?: boolean } = {},
): { ipv4?: IpPrefix; ipv6?: IpPrefix } {
  if (!Array.isArray(podCIDRs)) {
    throw invalidValue('INVALID_ARGUMENT', path, podCIDRs, 'must be a list of CIDRs');
  }
  if (podCIDRs.length > 2) {
    throw invalidValue(
      'INVALID_ARGUMENT',
      path,
      podCIDRs,
      'may hold at most two CIDRs (one per family)',
    );
  }
  const out: { ipv4?: IpPrefix; ipv6?: IpPrefix } = {};
  podCIDRs.forEach((text: unknown, i: number) => {
    const cidr = parseCidr(text, `${path}[${i}]`, options);
    if (out[familyOf(cidr)] !== undefined) {
      throw invalidValue(
        'INVALID_ARGUMENT',
        `${path}[${i}]`,
        text,
        `may specify no more than one CIDR for each IP family (${k8sFamilyName(familyOf(cidr))} given twice)`,
      );
    }
    out[familyOf(cidr)] = cidr;
  });
  return out;
}

/** Index of the entry of `family` in a (validated) podCIDRs list, for error paths. */
function entryIndex(list: readonly unknown[], family: IpFamily): number {
  return list.findIndex(
    (t) =>
      typeof t === 'string' &&
      tryParseCidr(t, { allowHostBits: true })?.family === familyNumber(family),
  );
}

/**
 * Records CIDRs a node already holds (read back from its CiliumNode spec.ipam.podCIDRs after a
 * restart or a failover) so they are never carved again. Idempotent. Throws CIDR_OUTSIDE_POOL,
 * CIDR_CONFLICT (another node holds an overlapping CIDR, or this node holds a different one),
 * FAMILY_DISABLED, INVALID_CIDR.
 */
export function occupyNodeCidrs(
  state: NodeCidrState,
  config: ClusterPoolConfig,
  node: string,
  podCIDRs: readonly string[],
  path = 'spec.ipam.podCIDRs',
): AllocateNodeCidrsResult {
  checkNodeName(node);
  const wanted = validatePodCidrList(podCIDRs, path);
  const index = indexFor(state, config);
  const changes = noChanges();
  let got: NodeCidrs | undefined;
  try {
    got = occupyInto(index, changes, node, wanted, podCIDRs, path);
  } catch (err) {
    remember(state, index); // occupyInto checks everything before it changes anything
    throw err;
  }
  if (got === undefined) {
    remember(state, index);
    return { state, cidrs: cidrsOf(index.byNode.get(node)), created: false };
  }
  return { state: commit(state, index, changes, state.last), cidrs: got, created: true };
}

/** Checks everything first, then records; returns undefined when nothing changes. */
function occupyInto(
  index: CarveIndex,
  changes: Changes,
  node: string,
  wanted: { ipv4?: IpPrefix; ipv6?: IpPrefix },
  podCIDRs: readonly string[],
  path: string,
): NodeCidrs | undefined {
  const current = cidrsOf(index.byNode.get(node));
  const out: { ipv4?: string; ipv6?: string } = { ...current };
  const take: { ipv4?: IpPrefix; ipv6?: IpPrefix } = {};
  for (const family of IP_FAMILIES) {
    const cidr = wanted[family];
    if (cidr === undefined) continue;
    const i = entryIndex(podCIDRs, family);
    const p = `${path}[${i}]`;
    const given = podCIDRs[i];
    const text = formatPrefix(cidr);
    const fs = index.families[family];
    if (fs === undefined) {
      throw invalidValue('FAMILY_DISABLED', p, given, `${k8sFamilyName(family)} is not enabled`);
    }
    const held = current[family];
    if (held !== undefined) {
      if (held === text) continue;
      throw invalidValue(
        'CIDR_CONFLICT',
        p,
        given,
        `node ${node} already holds ${held} for ${k8sFamilyName(family)}`,
        { node, held },
      );
    }
    if (!insidePool(fs, cidr)) {
      throw invalidValue(
        'CIDR_OUTSIDE_POOL',
        p,
        given,
        `lies outside every cluster CIDR (${fs.pools.map((x) => x.text).join(', ')})`,
      );
    }
    // A CIDR smaller than the mask size still takes its whole per-node slot: two nodes in one
    // slot would free it for carving when either leaves.
    const taken = slotsTaken(fs, cidr);
    const holders = taken
      ? [...new Set(touchedSlots(fs, cidr).flatMap((c) => index.owners[family].holders(c, node)))]
      : [];
    if (taken && holders.length === 0) holders.push('(unknown)');
    if (holders.length > 0) {
      throw invalidValue(
        'CIDR_CONFLICT',
        p,
        given,
        `overlaps the pod CIDR of node ${holders.join(', ')}`,
        { node, holder: holders[0] ?? null },
      );
    }
    take[family] = cidr;
    out[family] = text;
  }
  if (take.ipv4 === undefined && take.ipv6 === undefined) return undefined;
  recordNode(index, node, take);
  setEntry(index, changes, node, entryOf(node, out));
  return out;
}

export interface RestoreNodeCidrsResult {
  readonly state: NodeCidrState;
  readonly rejected: ReadonlyArray<{ readonly node: string; readonly error: IpamError }>;
}

/**
 * occupyNodeCidrs for every CiliumNode at start-up, in one transition. A node whose CIDRs
 * cannot be taken (conflict, outside the pools) is reported, not fatal; pass the nodes oldest
 * first so the older claim wins a conflict.
 */
export function restoreNodeCidrs(
  state: NodeCidrState,
  config: ClusterPoolConfig,
  entries: ReadonlyArray<{ readonly node: string; readonly podCIDRs: readonly string[] }>,
): RestoreNodeCidrsResult {
  const index = indexFor(state, config);
  const changes = noChanges();
  const rejected: Array<{ node: string; error: IpamError }> = [];
  entries.forEach((entry, i) => {
    const path = `entries[${i}].podCIDRs`;
    try {
      checkNodeName(entry.node, `entries[${i}].node`);
      const wanted = validatePodCidrList(entry.podCIDRs, path);
      occupyInto(index, changes, entry.node, wanted, entry.podCIDRs, path);
    } catch (err) {
      if (!(err instanceof IpamError)) throw err;
      rejected.push({ node: entry.node, error: err });
    }
  });
  if (!changed(changes)) {
    remember(state, index);
    return { state, rejected };
  }
  return { state: commit(state, index, changes, state.last), rejected };
}

// ---------------------------------------------------------------------------------------------
// kubernetes mode

/**
 * Validates Node.spec.podCIDRs (at most two, one per family) and returns them canonical.
 * Host bits are cleared rather than refused: the value comes from kube-controller-manager, and
 * refusing it would leave the node without pod networking.
 */
export function validateNodePodCidrs(podCIDRs: unknown, path = 'spec.podCIDRs'): NodeCidrs {
  const parsed = validatePodCidrList(podCIDRs, path, { allowHostBits: true });
  const out: { ipv4?: string; ipv6?: string } = {};
  for (const family of IP_FAMILIES) {
    const c = parsed[family];
    if (c === undefined) continue;
    const maxPrefix = family === 'ipv4' ? 30 : 127;
    if (c.length > maxPrefix) {
      const i = entryIndex(podCIDRs as unknown[], family);
      throw invalidValue(
        'INVALID_CIDR',
        `${path}[${i}]`,
        (podCIDRs as unknown[])[i],
        `a pod CIDR needs a prefix length of at most ${maxPrefix}`,
      );
    }
    out[family] = formatPrefix(c);
  }
  return out;
}

/**
 * kubernetes mode: records Node.spec.podCIDRs for `node`, refusing (CIDR_CONFLICT) a CIDR that
 * overlaps another node's. An empty list forgets the node's CIDRs (not assigned yet).
 */
export function setKubernetesNodeCidrs(
  state: NodeCidrState,
  node: string,
  podCIDRs: unknown,
  path = 'spec.podCIDRs',
): AllocateNodeCidrsResult {
  checkNodeName(node);
  const cidrs = validateNodePodCidrs(podCIDRs, path);
  const current = lookupNodeCidrs(state, node);
  if (current?.ipv4 === cidrs.ipv4 && current?.ipv6 === cidrs.ipv6) {
    return { state, cidrs: current ?? {}, created: false };
  }
  const index = indexFor(state, undefined);
  const parsed: { ipv4?: IpPrefix; ipv6?: IpPrefix } = {};
  for (const family of IP_FAMILIES) {
    const text = cidrs[family];
    if (text === undefined) continue;
    const cidr = parseCidr(text);
    const others = index.owners[family].holders(cidr, node);
    if (others.length > 0) {
      remember(state, index);
      const i = entryIndex(podCIDRs as unknown[], family);
      throw invalidValue(
        'CIDR_CONFLICT',
        `${path}[${i}]`,
        (podCIDRs as unknown[])[i],
        `overlaps the pod CIDR of node ${others.join(', ')}`,
        { node, holder: others[0] ?? null },
      );
    }
    parsed[family] = cidr;
  }
  forgetNode(index, node);
  const changes = noChanges();
  if (cidrs.ipv4 === undefined && cidrs.ipv6 === undefined) {
    setEntry(index, changes, node, undefined);
  } else {
    recordNode(index, node, parsed);
    setEntry(index, changes, node, entryOf(node, cidrs));
  }
  return { state: commit(state, index, changes, state.last), cidrs, created: true };
}

// ---------------------------------------------------------------------------------------------
// Inspection

export interface ClusterPoolUsage {
  readonly family: IpFamily;
  readonly maskSize: number;
  /** Per-node CIDRs the cluster CIDRs hold. */
  readonly capacity: number;
  readonly used: number;
  readonly free: number;
  readonly pools: ReadonlyArray<{ cidr: string; capacity: number; used: number }>;
}

export interface NodeCidrUsage {
  readonly nodes: number;
  readonly families: { readonly ipv4?: ClusterPoolUsage; readonly ipv6?: ClusterPoolUsage };
  readonly issues: readonly NodeCidrIssue[];
}

/** Capacity, usage and problems, for metrics and `ciliate ipam status`. */
export function nodeCidrUsage(state: NodeCidrState, config?: ClusterPoolConfig): NodeCidrUsage {
  const index = peekIndex(state, config);
  const families: { ipv4?: ClusterPoolUsage; ipv6?: ClusterPoolUsage } = {};
  for (const family of IP_FAMILIES) {
    const fs = index.families[family];
    if (fs === undefined) continue;
    const pools = fs.pools.map((p) => ({
      cidr: p.text,
      capacity: p.bitmap.size,
      used: p.bitmap.used,
    }));
    const capacity = pools.reduce((n, p) => n + p.capacity, 0);
    const used = pools.reduce((n, p) => n + p.used, 0);
    families[family] = {
      family,
      maskSize: fs.maskSize,
      capacity,
      used,
      free: capacity - used,
      pools,
    };
  }
  return { nodes: state.nodes.length, families, issues: [...index.issues] };
}

/** The node's CIDRs, or undefined. Pass the configuration in cluster-pool mode (cheaper). */
export function lookupNodeCidrs(
  state: NodeCidrState,
  node: string,
  config?: ClusterPoolConfig,
): NodeCidrs | undefined {
  const entry = anyIndex(state, config).byNode.get(node);
  return entry === undefined ? undefined : cidrsOf(entry);
}

/** The CIDR list as CiliumNode spec.ipam.podCIDRs holds it (IPv4 first). */
export function podCidrList(cidrs: NodeCidrs): string[] {
  return IP_FAMILIES.flatMap((f) => (cidrs[f] === undefined ? [] : [cidrs[f]]));
}
