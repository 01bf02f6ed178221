// IPv4 and IPv6 addresses and CIDRs as (family, bigint) pairs. One representation for both
// families keeps the allocators family-blind; text only exists at the edges, always in canonical
// form (dotted quad without leading zeros; RFC 5952 for IPv6) so that the same address is always
// the same string in stored state and on the wire.
import { IpamError, invalidValue } from './errors.js';

export type IpFamily = 'ipv4' | 'ipv6';

export const IP_FAMILIES: readonly IpFamily[] = ['ipv4', 'ipv6'];

export interface IpAddress {
  readonly family: IpFamily;
  readonly value: bigint;
}

export interface Cidr {
  readonly family: IpFamily;
  /** The network address (host bits always zero). */
  readonly network: bigint;
  readonly prefix: number;
}

export function familyBits(family: IpFamily): 32 | 128 {
  return family === 'ipv4' ? 32 : 128;
}

/** Kubernetes spells families `IPv4` / `IPv6`. */
export function k8sFamilyName(family: IpFamily): 'IPv4' | 'IPv6' {
  return family === 'ipv4' ? 'IPv4' : 'IPv6';
}

const MAX = { ipv4: (1n << 32n) - 1n, ipv6: (1n << 128n) - 1n } as const;

export function maxAddress(family: IpFamily): bigint {
  return MAX[family];
}

// ---------------------------------------------------------------------------------------------
// Parsing

type ParseResult<T> = { ok: true; value: T } | { ok: false; reason: string };

const NOT_DOTTED_QUAD = 'must be a dotted-quad IPv4 address';

/** Hand-rolled rather than a regular expression: this runs for every address of every load. */
function parseV4(text: string): ParseResult<bigint> {
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

function parseV6(text: string): ParseResult<bigint> {
  if (text.includes('%')) return { ok: false, reason: 'zone index is not allowed' };
  let head = text;
  let v4Tail: bigint | undefined;
  const lastColon = text.lastIndexOf(':');
  if (lastColon >= 0 && text.indexOf('.', lastColon) > lastColon) {
    const v4 = parseV4(text.slice(lastColon + 1));
    if (!v4.ok) return { ok: false, reason: `embedded IPv4 part: ${v4.reason}` };
    v4Tail = v4.value;
    // Keep the colon so that "::1.2.3.4" still ends in "::".
    head = text.slice(0, lastColon + 1);
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const groupsWanted = v4Tail === undefined ? 8 : 6;
  const dbl = head.indexOf('::');
  if (dbl >= 0 && head.indexOf('::', dbl + 1) >= 0) {
    return { ok: false, reason: '"::" may appear only once' };
  }
  const parseGroups = (s: string): ParseResult<number[]> => {
    if (s === '') return { ok: true, value: [] };
    const out: number[] = [];
    for (const g of s.split(':')) {
      if (!HEX_GROUP_RE.test(g)) {
        return {
          ok: false,
          reason: g === '' ? 'empty group' : `group "${g}" is not 1-4 hex digits`,
        };
      }
      out.push(parseInt(g, 16));
    }
    return { ok: true, value: out };
  };
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
      return {
        ok: false,
        reason: `has ${all.value.length} groups, want ${groupsWanted}${v4Tail === undefined ? '' : ' before the IPv4 part'}`,
      };
    }
    groups = all.value;
  }
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(g);
  if (v4Tail !== undefined) value = (value << 32n) | v4Tail;
  return { ok: true, value };
}

function parseAny(text: string): ParseResult<IpAddress> {
  if (text.includes(':')) {
    const r = parseV6(text);
    return r.ok ? { ok: true, value: { family: 'ipv6', value: r.value } } : r;
  }
  const r = parseV4(text);
  return r.ok ? { ok: true, value: { family: 'ipv4', value: r.value } } : r;
}

/** Parses an address; throws INVALID_IP naming `path` and the reason. */
export function parseIp(text: unknown, path = 'ip'): IpAddress {
  if (typeof text !== 'string') {
    throw invalidValue('INVALID_IP', path, text, 'must be a string');
  }
  if (text === '') throw invalidValue('INVALID_IP', path, text, 'must not be empty');
  const r = parseAny(text);
  if (!r.ok) throw invalidValue('INVALID_IP', path, text, `not a valid IP address: ${r.reason}`);
  return r.value;
}

/** Parses an address, or returns undefined. */
export function tryParseIp(text: string): IpAddress | undefined {
  const r = parseAny(text);
  return r.ok ? r.value : undefined;
}

export interface ParseCidrOptions {
  /**
   * Accept host bits and clear them (`10.0.0.1/8` -> `10.0.0.0/8`), as Go's net.ParseCIDR users
   * often do. Off by default: a typo in a pool should be refused, not silently widened.
   */
  readonly allowHostBits?: boolean;
}

/** Parses `addr/prefix`; throws INVALID_CIDR naming `path` and the reason. */
export function parseCidr(text: unknown, path = 'cidr', options: ParseCidrOptions = {}): Cidr {
  if (typeof text !== 'string') {
    throw invalidValue('INVALID_CIDR', path, text, 'must be a string');
  }
  const slash = text.indexOf('/');
  if (slash < 0) {
    throw invalidValue('INVALID_CIDR', path, text, 'must be in CIDR notation (address/prefix)');
  }
  const addrText = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  const addr = parseAny(addrText);
  if (!addr.ok) {
    throw invalidValue('INVALID_CIDR', path, text, `not a valid address: ${addr.reason}`);
  }
  const family = addr.value.family;
  const bits = familyBits(family);
  if (!/^\d{1,3}$/.test(prefixText) || (prefixText.length > 1 && prefixText.startsWith('0'))) {
    throw invalidValue('INVALID_CIDR', path, text, `prefix length must be 0-${bits}`);
  }
  const prefix = Number(prefixText);
  if (prefix > bits) {
    throw invalidValue('INVALID_CIDR', path, text, `prefix length must be 0-${bits}`);
  }
  const network = addr.value.value & prefixMask(family, prefix);
  if (network !== addr.value.value && options.allowHostBits !== true) {
    const canonical = formatCidr({ family, network, prefix });
    throw invalidValue(
      'INVALID_CIDR',
      path,
      text,
      `host bits are set (the network is ${canonical})`,
    );
  }
  return { family, network, prefix };
}

export function tryParseCidr(text: string, options?: ParseCidrOptions): Cidr | undefined {
  try {
    return parseCidr(text, 'cidr', options);
  } catch (err) {
    if (err instanceof IpamError) return undefined;
    throw err;
  }
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

export function formatAddress(family: IpFamily, value: bigint): string {
  return family === 'ipv4' ? formatV4(value) : formatV6(value);
}

export function formatIp(ip: IpAddress): string {
  return formatAddress(ip.family, ip.value);
}

export function formatCidr(cidr: Cidr): string {
  return `${formatAddress(cidr.family, cidr.network)}/${cidr.prefix}`;
}

/** The canonical text of an address; throws INVALID_IP. */
export function canonicalIp(text: string, path?: string): string {
  return formatIp(parseIp(text, path));
}

/** The canonical text of a CIDR; throws INVALID_CIDR. */
export function canonicalCidr(text: string, path?: string, options?: ParseCidrOptions): string {
  return formatCidr(parseCidr(text, path, options));
}

// ---------------------------------------------------------------------------------------------
// Arithmetic

export function prefixMask(family: IpFamily, prefix: number): bigint {
  const bits = familyBits(family);
  const hostBits = BigInt(bits - prefix);
  return MAX[family] ^ ((1n << hostBits) - 1n);
}

export function makeCidr(family: IpFamily, address: bigint, prefix: number): Cidr {
  return { family, network: address & prefixMask(family, prefix), prefix };
}

/** Number of addresses in the CIDR. */
export function cidrSize(cidr: Cidr): bigint {
  return 1n << BigInt(familyBits(cidr.family) - cidr.prefix);
}

export function cidrFirst(cidr: Cidr): bigint {
  return cidr.network;
}

export function cidrLast(cidr: Cidr): bigint {
  return cidr.network + cidrSize(cidr) - 1n;
}

export function cidrContains(cidr: Cidr, ip: IpAddress): boolean {
  return cidr.family === ip.family && ip.value >= cidr.network && ip.value <= cidrLast(cidr);
}

/** True when `inner` lies entirely inside `outer`. */
export function cidrContainsCidr(outer: Cidr, inner: Cidr): boolean {
  return (
    outer.family === inner.family &&
    inner.prefix >= outer.prefix &&
    (inner.network & prefixMask(outer.family, outer.prefix)) === outer.network
  );
}

/** Two CIDRs overlap exactly when one contains the other. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrContainsCidr(a, b) || cidrContainsCidr(b, a);
}

export function cidrEquals(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.network === b.network && a.prefix === b.prefix;
}

export function compareIps(a: IpAddress, b: IpAddress): number {
  if (a.family !== b.family) return a.family === 'ipv4' ? -1 : 1;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

export function compareCidrs(a: Cidr, b: Cidr): number {
  if (a.family !== b.family) return a.family === 'ipv4' ? -1 : 1;
  if (a.network !== b.network) return a.network < b.network ? -1 : 1;
  return a.prefix - b.prefix;
}

/** Sorts address texts numerically (IPv4 before IPv6); unparseable texts go last, as text. */
export function compareIpTexts(a: string, b: string): number {
  const pa = tryParseIp(a);
  const pb = tryParseIp(b);
  if (pa && pb) return compareIps(pa, pb);
  if (pa) return -1;
  if (pb) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** An inclusive address range; the unit of LB-IPAM blocks. */
export interface IpRange {
  readonly family: IpFamily;
  readonly first: bigint;
  readonly last: bigint;
}

export function rangeOfCidr(cidr: Cidr): IpRange {
  return { family: cidr.family, first: cidr.network, last: cidrLast(cidr) };
}

export function rangeSize(range: IpRange): bigint {
  return range.last - range.first + 1n;
}

export function rangesOverlap(a: IpRange, b: IpRange): boolean {
  return a.family === b.family && a.first <= b.last && b.first <= a.last;
}

export function rangeContains(range: IpRange, ip: IpAddress): boolean {
  return range.family === ip.family && ip.value >= range.first && ip.value <= range.last;
}

/** `a-b`, or the CIDR text when the range is exactly one CIDR. */
export function formatRange(range: IpRange): string {
  const size = rangeSize(range);
  if ((size & (size - 1n)) === 0n && range.first % size === 0n) {
    let prefix = familyBits(range.family);
    for (let s = size; s > 1n; s >>= 1n) prefix--;
    return formatCidr({ family: range.family, network: range.first, prefix });
  }
  return `${formatAddress(range.family, range.first)}-${formatAddress(range.family, range.last)}`;
}
