// IPv4 and IPv6 addresses and prefixes, for every part of Ciliate that reads or prints one.
//
// An address is a family and a bigint; text exists only at the edges and is always canonical:
// dotted quad without leading zeros, RFC 5952 for IPv6, and `::ffff:a.b.c.d` for IPv4-mapped
// addresses (what Go's net/netip prints, so keys and labels match Cilium's). The parser is
// strict the way netip is: no leading zeros in an octet, no zones, one `::` at most. It never
// throws; callers turn a reason into the error type of their own domain, naming their field.

export type IpFamily = 4 | 6;

export interface IpAddress {
  readonly family: IpFamily;
  readonly value: bigint;
}

export interface IpPrefix {
  readonly family: IpFamily;
  /** The network address: every bit past `length` is zero. */
  readonly network: bigint;
  readonly length: number;
}

export type Parsed<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

export function familyBits(family: IpFamily): 32 | 128 {
  return family === 4 ? 32 : 128;
}

const MAX: Record<IpFamily, bigint> = { 4: (1n << 32n) - 1n, 6: (1n << 128n) - 1n };

export function maxAddress(family: IpFamily): bigint {
  return MAX[family];
}

/** The mask of a prefix of `length` bits: ones in the network part. */
export function prefixMask(family: IpFamily, length: number): bigint {
  return MAX[family] ^ ((1n << BigInt(familyBits(family) - length)) - 1n);
}

// ---------------------------------------------------------------------------------------------
// Parsing

const NOT_DOTTED_QUAD = 'must be a dotted-quad IPv4 address';

/** Hand-rolled rather than a regular expression: this runs for every address of every load. */
function parseV4(text: string): Parsed<bigint> {
  let n = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  let start = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46; // a final virtual "."
    if (c === 46) {
      if (digits === 0 || dots > 3) return { ok: false, reason: NOT_DOTTED_QUAD };
      if (digits > 1 && text.charCodeAt(start) === 48) {
        // Leading zeros are read as octal by some tools and decimal by others; refuse them.
        return { ok: false, reason: `octet "${text.slice(start, i)}" has a leading zero` };
      }
      if (octet > 255) return { ok: false, reason: `octet ${octet} is larger than 255` };
      n = n * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
      start = i + 1;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      octet = octet * 10 + (c - 48);
      digits++;
    } else {
      return { ok: false, reason: NOT_DOTTED_QUAD };
    }
  }
  if (dots !== 4) return { ok: false, reason: NOT_DOTTED_QUAD };
  return { ok: true, value: BigInt(n) };
}

const HEX_GROUP_RE = /^[0-9a-fA-F]{1,4}$/;

function parseGroups(s: string): Parsed<number[]> {
  if (s === '') return { ok: true, value: [] };
  const out: number[] = [];
  for (const g of s.split(':')) {
    if (!HEX_GROUP_RE.test(g)) {
      return { ok: false, reason: g === '' ? 'empty group' : `group "${g}" is not 1-4 hex digits` };
    }
    out.push(parseInt(g, 16));
  }
  return { ok: true, value: out };
}

function parseV6(text: string): Parsed<bigint> {
  if (text.includes('%')) return { ok: false, reason: 'zone index is not allowed' };
  let head = text;
  let v4Tail: bigint | undefined;
  const lastColon = text.lastIndexOf(':');
  if (lastColon >= 0 && text.indexOf('.', lastColon) > lastColon) {
    const v4 = parseV4(text.slice(lastColon + 1));
    if (!v4.ok) return { ok: false, reason: `embedded IPv4 part: ${v4.reason}` };
    v4Tail = v4.value;
    // Keep the colon so that "::1.2.3.4" still ends in "::"; a lone trailing ':' left by the
    // cut stands for the boundary, not an empty group.
    head = text.slice(0, lastColon + 1);
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const groupsWanted = v4Tail === undefined ? 8 : 6;
  const dbl = head.indexOf('::');
  if (dbl >= 0 && head.indexOf('::', dbl + 1) >= 0) {
    return { ok: false, reason: '"::" may appear only once' };
  }
  let groups: number[];
  if (dbl >= 0) {
    const left = parseGroups(head.slice(0, dbl));
    if (!left.ok) return left;
    const right = parseGroups(head.slice(dbl + 2));
    if (!right.ok) return right;
    const missing = groupsWanted - left.value.length - right.value.length;
    if (missing < 1) return { ok: false, reason: 'too many groups' };
    groups = [...left.value, ...new Array<number>(missing).fill(0), ...right.value];
  } else {
    const all = parseGroups(head);
    if (!all.ok) return all;
    if (all.value.length !== groupsWanted) {
      const where = v4Tail === undefined ? '' : ' before the IPv4 part';
      return { ok: false, reason: `has ${all.value.length} groups, want ${groupsWanted}${where}` };
    }
    groups = all.value;
  }
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(g);
  if (v4Tail !== undefined) value = (value << 32n) | v4Tail;
  return { ok: true, value };
}

/** Parses an IPv4 or IPv6 address (no zone, no prefix length). */
export function parseIp(text: string): Parsed<IpAddress> {
  if (typeof text !== 'string') return { ok: false, reason: 'must be a string' };
  if (text === '') return { ok: false, reason: 'must not be empty' };
  if (text.includes(':')) {
    const r = parseV6(text);
    return r.ok ? { ok: true, value: { family: 6, value: r.value } } : r;
  }
  const r = parseV4(text);
  return r.ok ? { ok: true, value: { family: 4, value: r.value } } : r;
}

/** Parses an address, or returns undefined. */
export function tryParseIp(text: string): IpAddress | undefined {
  const r = parseIp(text);
  return r.ok ? r.value : undefined;
}

export interface ParsePrefixOptions {
  /** A bare address is a host prefix (/32 or /128). Off: the length is required. */
  readonly bareAddress?: boolean;
  /**
   * Clear host bits (`10.0.0.1/8` is `10.0.0.0/8`), as netip.Prefix.Masked() does. Off: host
   * bits are refused, because a typo in a pool should not be silently widened.
   */
  readonly clearHostBits?: boolean;
}

export type PrefixFailure =
  | { readonly ok: false; readonly kind: 'syntax' | 'address' | 'length'; readonly reason: string }
  | {
      readonly ok: false;
      readonly kind: 'host-bits';
      readonly reason: string;
      /** The prefix with host bits cleared, for the message. */
      readonly network: IpPrefix;
    };

/** Parses `address/length`; what failed is in `kind`, so callers can word it their own way. */
export function parsePrefix(
  text: string,
  options: ParsePrefixOptions = {},
): { readonly ok: true; readonly value: IpPrefix } | PrefixFailure {
  if (typeof text !== 'string') return { ok: false, kind: 'syntax', reason: 'must be a string' };
  const slash = text.indexOf('/');
  if (slash < 0 && options.bareAddress !== true) {
    return { ok: false, kind: 'syntax', reason: 'must be in CIDR notation (address/prefix)' };
  }
  const addr = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!addr.ok) return { ok: false, kind: 'address', reason: addr.reason };
  const { family, value } = addr.value;
  const bits = familyBits(family);
  let length: number = bits;
  if (slash >= 0) {
    const lenText = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText) || Number(lenText) > bits) {
      return { ok: false, kind: 'length', reason: `prefix length must be 0-${bits}` };
    }
    length = Number(lenText);
  }
  const network = value & prefixMask(family, length);
  const prefix = { family, network, length };
  if (network !== value && options.clearHostBits !== true) {
    return {
      ok: false,
      kind: 'host-bits',
      reason: `host bits are set (the network is ${formatPrefix(prefix)})`,
      network: prefix,
    };
  }
  return { ok: true, value: prefix };
}

// ---------------------------------------------------------------------------------------------
// Formatting

function formatV4(value: bigint): string {
  const n = Number(value);
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function formatV6(value: bigint): string {
  // RFC 5952 section 5: IPv4-mapped addresses keep the dotted quad.
  if (value >> 32n === 0xffffn) return `::ffff:${formatV4(value & 0xffffffffn)}`;
  const groups = new Array<number>(8);
  let v = value;
  for (let i = 7; i >= 0; i--) {
    groups[i] = Number(v & 0xffffn);
    v >>= 16n;
  }
  // Longest run of two or more zero groups; the first one wins a tie (RFC 5952 section 4.2).
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number | undefined): string => (g ?? 0).toString(16);
  if (bestStart < 0) return groups.map(hex).join(':');
  const left = groups.slice(0, bestStart).map(hex).join(':');
  const right = groups
    .slice(bestStart + bestLen)
    .map(hex)
    .join(':');
  return `${left}::${right}`;
}

/** The canonical text of an address. */
export function formatAddress(family: IpFamily, value: bigint): string {
  return family === 4 ? formatV4(value) : formatV6(value);
}

export function formatIp(ip: IpAddress): string {
  return formatAddress(ip.family, ip.value);
}

export function formatPrefix(prefix: IpPrefix): string {
  return `${formatAddress(prefix.family, prefix.network)}/${prefix.length}`;
}

// ---------------------------------------------------------------------------------------------
// Bytes (network order), as kernel structures and BPF map keys hold them

/** Writes the address into `out` at `offset` (4 or 16 bytes); returns `out`. */
export function addressToBytes<T extends Uint8Array>(
  family: IpFamily,
  value: bigint,
  out: T,
  offset = 0,
): T {
  if (family === 4) {
    const v = Number(value);
    out[offset] = (v >>> 24) & 255;
    out[offset + 1] = (v >>> 16) & 255;
    out[offset + 2] = (v >>> 8) & 255;
    out[offset + 3] = v & 255;
    return out;
  }
  let v = value;
  for (let i = 15; i >= 0; i--) {
    out[offset + i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** Reads 4 (family 4) or 16 (family 6) bytes at `offset`. */
export function addressFromBytes(family: IpFamily, bytes: Uint8Array, offset = 0): bigint {
  if (family === 4) {
    return BigInt(
      ((bytes[offset]! << 24) |
        (bytes[offset + 1]! << 16) |
        (bytes[offset + 2]! << 8) |
        bytes[offset + 3]!) >>>
        0,
    );
  }
  let v = 0n;
  for (let i = 0; i < 16; i++) v = (v << 8n) | BigInt(bytes[offset + i]!);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Relations

/** True when `ip` lies inside `prefix` (same family, network bits equal). */
export function prefixContainsIp(prefix: IpPrefix, ip: IpAddress): boolean {
  return (
    prefix.family === ip.family &&
    (ip.value & prefixMask(prefix.family, prefix.length)) === prefix.network
  );
}

/** True when `inner` lies entirely inside `outer`. */
export function prefixContainsPrefix(outer: IpPrefix, inner: IpPrefix): boolean {
  return (
    outer.family === inner.family &&
    inner.length >= outer.length &&
    (inner.network & prefixMask(outer.family, outer.length)) === outer.network
  );
}
