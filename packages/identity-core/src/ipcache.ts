// The ipcache: which identity owns an IP or CIDR, and behind which node (the tunnel endpoint).
// Several owners may claim one prefix (a pod IP from Kubernetes and from a kvstore peer, a node
// IP from two sources); the claim of the strongest source wins, as in Cilium's pkg/source, and
// when it goes the next one shows through instead of the prefix vanishing.
//
// Lookup is longest-prefix match, the semantics of the BPF LPM trie the datapath mirrors this
// into; this class is the reference that the BPF map is tested against.
import { IPCACHE_SOURCE_NAMES, worldIdentity } from '@ciliate/contracts';
import {
  formatAddress,
  formatIp,
  formatPrefix,
  prefixMask,
  tryParseIp,
  type IpAddress,
  type IpFamily,
  type IpPrefix,
} from '@ciliate/netaddr';

import { IdentityError, invalid } from './errors.js';
import { parseIp, parsePrefix } from './ip.js';
import { decodeRecord } from './kv.js';
import { checkIdentity } from './numeric.js';

/** Sources from weakest to strongest (Cilium's AllowOverwrite is this total order). */
export const IPCACHE_SOURCES = IPCACHE_SOURCE_NAMES;

export type IpcacheSource = (typeof IPCACHE_SOURCES)[number];

const RANK = new Map<string, number>(IPCACHE_SOURCES.map((s, i) => [s, i]));

/** Whether state from `next` may replace state from `existing`. */
export function allowOverwrite(existing: IpcacheSource, next: IpcacheSource): boolean {
  return RANK.get(next)! >= RANK.get(existing)!;
}

export interface IpcacheEntry {
  /** Canonical CIDR; a host address is /32 or /128. */
  readonly prefix: string;
  readonly identity: number;
  /** Node that owns the address (tunnel endpoint); absent for CIDRs outside the cluster. */
  readonly hostIP?: string;
  readonly source: IpcacheSource;
  /** Who claimed it: `pod/<ns>/<name>`, `node/<name>`, `cidr/<policy>`... */
  readonly ownerKey: string;
  /** IPsec/WireGuard key index, 0 = none. */
  readonly encryptKey?: number;
}

export interface IpcacheUpsert {
  readonly prefix: string;
  readonly identity: number;
  readonly hostIP?: string;
  readonly source: IpcacheSource;
  readonly ownerKey: string;
  readonly encryptKey?: number;
}

/** A change of what a prefix resolves to; before/after absent = no entry. */
export interface IpcacheChange {
  readonly prefix: string;
  readonly before?: IpcacheEntry;
  readonly after?: IpcacheEntry;
}

interface Claim {
  readonly entry: IpcacheEntry;
  readonly seq: number;
}

interface Slot {
  readonly prefix: IpPrefix;
  readonly claims: Map<string, Claim>;
  effective: IpcacheEntry | undefined;
}

function sameEntry(a: IpcacheEntry | undefined, b: IpcacheEntry | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return (
    a.prefix === b.prefix &&
    a.identity === b.identity &&
    a.hostIP === b.hostIP &&
    a.source === b.source &&
    a.ownerKey === b.ownerKey &&
    (a.encryptKey ?? 0) === (b.encryptKey ?? 0)
  );
}

function maskV4(n: number, length: number): number {
  return length === 0 ? 0 : (n & (-1 << (32 - length))) >>> 0;
}

// One table per family and length, so the masked address alone is the key: a number for IPv4
// (cheaper to hash than a bigint), the bigint itself for IPv6 (Map compares bigints by value).
function lpmKey(family: IpFamily, value: bigint, length: number): number | bigint {
  return family === 4 ? maskV4(Number(value), length) : value & prefixMask(6, length);
}

export function validateUpsert(input: IpcacheUpsert, field = 'entry'): IpcacheEntry {
  const prefix = parsePrefix(input.prefix, `${field}.prefix`);
  checkIdentity(input.identity, `${field}.identity`);
  if (input.identity === 0) {
    throw invalid(
      'INVALID_IDENTITY',
      `${field}.identity`,
      0,
      'identity 0 (unknown) cannot own an address',
    );
  }
  if (!RANK.has(input.source)) {
    throw invalid(
      'INVALID_ARGUMENT',
      `${field}.source`,
      input.source,
      `must be one of ${IPCACHE_SOURCES.join(', ')}`,
    );
  }
  if (typeof input.ownerKey !== 'string' || input.ownerKey.length === 0) {
    throw invalid('INVALID_ARGUMENT', `${field}.ownerKey`, input.ownerKey, 'must not be empty');
  }
  let hostIP: string | undefined;
  if (input.hostIP !== undefined) hostIP = formatIp(parseIp(input.hostIP, `${field}.hostIP`));
  const key = input.encryptKey ?? 0;
  if (!Number.isInteger(key) || key < 0 || key > 255) {
    throw invalid('INVALID_ARGUMENT', `${field}.encryptKey`, input.encryptKey, 'must be 0-255');
  }
  return {
    prefix: formatPrefix(prefix),
    identity: input.identity,
    ...(hostIP === undefined ? {} : { hostIP }),
    source: input.source,
    ownerKey: input.ownerKey,
    ...(key === 0 ? {} : { encryptKey: key }),
  };
}

export interface IpcacheOptions {
  /**
   * Owners that may claim one prefix. A claim by one more owner is refused (LIMIT_REACHED,
   * naming `entry.prefix`); an owner that has a claim may always change or delete it. Default:
   * no limit.
   */
  readonly maxClaimsPerPrefix?: number;
}

export class Ipcache {
  #maxClaimsPerPrefix: number | undefined;
  readonly #slots = new Map<string, Slot>();
  readonly #byOwner = new Map<string, Set<string>>();
  /** Per family: prefix length -> masked network -> effective entry. */
  readonly #lpm: Record<IpFamily, Map<number, Map<number | bigint, IpcacheEntry>>> = {
    4: new Map(),
    6: new Map(),
  };
  #lengths: Record<IpFamily, number[]> = { 4: [], 6: [] };
  #seq = 0;

  constructor(options: IpcacheOptions = {}) {
    this.#maxClaimsPerPrefix = options.maxClaimsPerPrefix;
  }

  /** Number of prefixes that resolve to an entry. */
  get size(): number {
    let n = 0;
    for (const s of this.#slots.values()) if (s.effective !== undefined) n++;
    return n;
  }

  /**
   * Adds or replaces the claim of `ownerKey` on a prefix. Returns the change of the effective
   * entry, or undefined when what the prefix resolves to did not change (a weaker source
   * claiming under a stronger one, or the same data again).
   */
  upsert(input: IpcacheUpsert): IpcacheChange | undefined {
    const entry = validateUpsert(input);
    let slot = this.#slots.get(entry.prefix);
    const max = this.#maxClaimsPerPrefix;
    if (
      max !== undefined &&
      (slot?.claims.size ?? 0) >= max &&
      slot?.claims.has(entry.ownerKey) !== true
    ) {
      throw new IdentityError(
        'LIMIT_REACHED',
        `entry.prefix: Too many claims: ${JSON.stringify(entry.prefix)} has ${slot?.claims.size ?? 0} owners, the limit is ${max}; ${JSON.stringify(entry.ownerKey)} may claim it once another owner deletes its claim`,
        { field: 'entry.prefix' },
      );
    }
    if (slot === undefined) {
      slot = { prefix: parsePrefix(entry.prefix), claims: new Map(), effective: undefined };
      this.#slots.set(entry.prefix, slot);
    }
    const prev = slot.claims.get(entry.ownerKey);
    // Re-upserting identical data keeps its age, so it does not jump ahead of an equal-ranked
    // claim that arrived in between.
    if (prev === undefined || !sameEntry(prev.entry, entry)) {
      slot.claims.set(entry.ownerKey, { entry, seq: ++this.#seq });
    }
    let owners = this.#byOwner.get(entry.ownerKey);
    if (owners === undefined) this.#byOwner.set(entry.ownerKey, (owners = new Set()));
    owners.add(entry.prefix);
    return this.#resolve(slot);
  }

  /** Removes the claim of `ownerKey` on a prefix. */
  delete(prefix: string, ownerKey: string): IpcacheChange | undefined {
    const canonical = formatPrefix(parsePrefix(prefix));
    const slot = this.#slots.get(canonical);
    if (slot === undefined || !slot.claims.delete(ownerKey)) return undefined;
    const owners = this.#byOwner.get(ownerKey);
    owners?.delete(canonical);
    if (owners?.size === 0) this.#byOwner.delete(ownerKey);
    const change = this.#resolve(slot);
    if (slot.claims.size === 0) this.#slots.delete(canonical);
    return change;
  }

  /** Removes every claim of an owner (a deleted pod or node). */
  deleteOwner(ownerKey: string): IpcacheChange[] {
    const prefixes = [...(this.#byOwner.get(ownerKey) ?? [])].sort();
    const out: IpcacheChange[] = [];
    for (const p of prefixes) {
      const c = this.delete(p, ownerKey);
      if (c !== undefined) out.push(c);
    }
    return out;
  }

  #resolve(slot: Slot): IpcacheChange | undefined {
    let best: Claim | undefined;
    for (const c of slot.claims.values()) {
      if (
        best === undefined ||
        RANK.get(c.entry.source)! > RANK.get(best.entry.source)! ||
        (c.entry.source === best.entry.source && c.seq > best.seq)
      ) {
        best = c;
      }
    }
    const before = slot.effective;
    const after = best?.entry;
    if (sameEntry(before, after)) return undefined;
    slot.effective = after;
    const { family, length, network } = slot.prefix;
    const byLen = this.#lpm[family];
    let table = byLen.get(length);
    if (after === undefined) {
      table?.delete(lpmKey(family, network, length));
      if (table?.size === 0) {
        byLen.delete(length);
        this.#lengths[family] = this.#lengths[family].filter((l) => l !== length);
      }
    } else {
      if (table === undefined) {
        byLen.set(length, (table = new Map<number | bigint, IpcacheEntry>()));
        this.#lengths[family] = [...this.#lengths[family], length].sort((a, b) => b - a);
      }
      table.set(lpmKey(family, network, length), after);
    }
    return {
      prefix: after?.prefix ?? before!.prefix,
      ...(before === undefined ? {} : { before }),
      ...(after === undefined ? {} : { after }),
    };
  }

  /** The effective entry of exactly this prefix. */
  get(prefix: string): IpcacheEntry | undefined {
    return this.#slots.get(formatPrefix(parsePrefix(prefix)))?.effective;
  }

  /** Every claim on a prefix, strongest first. */
  claims(prefix: string): IpcacheEntry[] {
    const slot = this.#slots.get(formatPrefix(parsePrefix(prefix)));
    if (slot === undefined) return [];
    return [...slot.claims.values()]
      .sort((a, b) => RANK.get(b.entry.source)! - RANK.get(a.entry.source)! || b.seq - a.seq)
      .map((c) => c.entry);
  }

  /** Longest-prefix match of an address. */
  lookup(ip: string | IpAddress): IpcacheEntry | undefined {
    const addr = typeof ip === 'string' ? tryParseIp(ip) : ip;
    if (addr === undefined) throw invalid('INVALID_PREFIX', 'ip', ip, 'must be an IP address');
    const byLen = this.#lpm[addr.family];
    for (const length of this.#lengths[addr.family]) {
      const hit = byLen.get(length)?.get(lpmKey(addr.family, addr.value, length));
      if (hit !== undefined) return hit;
    }
    return undefined;
  }

  /** The identity of an address: its longest match, else the world (per family in dual stack). */
  resolveIdentity(ip: string | IpAddress, options: { dualStack?: boolean } = {}): number {
    const addr = typeof ip === 'string' ? parseIp(ip) : ip;
    return this.lookup(addr)?.identity ?? worldIdentity(addr.family, options.dualStack === true);
  }

  /** Effective entries, sorted by family, then address, then length. */
  entries(): IpcacheEntry[] {
    const out: { e: IpcacheEntry; s: Slot }[] = [];
    for (const s of this.#slots.values())
      if (s.effective !== undefined) out.push({ e: s.effective, s });
    return out.sort((a, b) => comparePrefix(a.s.prefix, b.s.prefix)).map((x) => x.e);
  }

  /** Every claim, for persistence; replaying them through upsert() rebuilds the cache. */
  snapshot(): { v: 1; claims: IpcacheEntry[] } {
    const all: Claim[] = [];
    for (const s of this.#slots.values()) all.push(...s.claims.values());
    return { v: 1, claims: all.sort((a, b) => a.seq - b.seq).map((c) => c.entry) };
  }

  /**
   * The cache a snapshot holds. The options apply to what is done with it afterwards: a
   * snapshot with more claims on a prefix than `maxClaimsPerPrefix` (kept under a higher limit)
   * is restored whole, and only a new owner is refused.
   */
  static restore(
    snapshot: { v: 1; claims: readonly IpcacheUpsert[] },
    options: IpcacheOptions = {},
  ): Ipcache {
    if (snapshot?.v !== 1) {
      throw invalid('INVALID_RECORD', 'snapshot.v', snapshot?.v, 'only version 1 is known');
    }
    const c = new Ipcache();
    snapshot.claims.forEach((e, i) => {
      try {
        c.upsert(e);
      } catch (err) {
        if (err instanceof IdentityError) {
          throw new IdentityError('INVALID_RECORD', `snapshot.claims[${i}]: ${err.message}`, {
            field: `snapshot.claims[${i}]`,
            cause: err,
          });
        }
        throw err;
      }
    });
    c.#maxClaimsPerPrefix = options.maxClaimsPerPrefix;
    return c;
  }
}

function comparePrefix(a: IpPrefix, b: IpPrefix): number {
  if (a.family !== b.family) return a.family - b.family;
  if (a.network !== b.network) return a.network < b.network ? -1 : 1;
  return a.length - b.length;
}

// ---------------------------------------------------------------------------------------------
// KV form: one key per prefix holding the effective entry, in its own bucket.

/**
 * `v4.10-0-0-0.8`, `v6.2001-db8--.32`: family, address, length as three subject tokens, so a
 * watcher can narrow to a family (`v4.>`). In the address '.' becomes '-' (IPv4), ':' becomes
 * '-' and '.' becomes '_' (IPv6, which may end in a dotted IPv4 part).
 */
export function ipcacheKey(prefix: string | IpPrefix): string {
  const p = typeof prefix === 'string' ? parsePrefix(prefix) : prefix;
  const addr = formatAddress(p.family, p.network);
  const token =
    p.family === 4 ? addr.replaceAll('.', '-') : addr.replaceAll(':', '-').replaceAll('.', '_');
  return `v${p.family}.${token}.${p.length}`;
}

export function prefixFromIpcacheKey(key: string): string {
  const parts = key.split('.');
  const [fam, token, len] = parts;
  if (parts.length !== 3 || (fam !== 'v4' && fam !== 'v6') || token === undefined) {
    throw invalid(
      'INVALID_PREFIX',
      'key',
      key,
      'not an ipcache key (v4.<addr>.<len> or v6.<addr>.<len>)',
    );
  }
  const addr =
    fam === 'v4' ? token.replaceAll('-', '.') : token.replaceAll('-', ':').replaceAll('_', '.');
  const canonical = formatPrefix(parsePrefix(`${addr}/${len}`, 'key'));
  if (ipcacheKey(canonical) !== key) {
    throw invalid('INVALID_PREFIX', 'key', key, 'not in canonical form');
  }
  return canonical;
}

export function encodeIpcacheEntry(e: IpcacheEntry): string {
  return JSON.stringify({
    v: 1,
    prefix: e.prefix,
    identity: e.identity,
    ...(e.hostIP === undefined ? {} : { hostIP: e.hostIP }),
    source: e.source,
    ownerKey: e.ownerKey,
    ...(e.encryptKey === undefined ? {} : { encryptKey: e.encryptKey }),
  });
}

export function decodeIpcacheEntry(value: unknown, field = 'record'): IpcacheEntry {
  const o = decodeRecord(value, field);
  try {
    return validateUpsert(o as unknown as IpcacheUpsert, field);
  } catch (err) {
    if (err instanceof IdentityError) {
      throw new IdentityError('INVALID_RECORD', err.message, { field: err.field, cause: err });
    }
    throw err;
  }
}
