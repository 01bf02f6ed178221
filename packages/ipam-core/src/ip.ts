// IPv4 and IPv6 addresses and CIDRs as (family, bigint) pairs. One representation for both
// families keeps the allocators family-blind; text only exists at the edges, always in canonical
// form (@ciliate/netaddr parses and prints it) so that the same address is always the same string
// in stored state and on the wire. This module adds IPAM's family names, error codes and the
// range arithmetic of pools.
import * as net from '@ciliate/netaddr';
import type { IpAddress } from '@ciliate/netaddr';

import { IpamError, invalidValue } from './errors.js';

export type IpFamily = 'ipv4' | 'ipv6';

export const IP_FAMILIES: readonly IpFamily[] = ['ipv4', 'ipv6'];

const NAME_OF = { 4: 'ipv4', 6: 'ipv6' } as const;

/** IPAM's (and the wire's) name of the family of an address (netaddr's, family 4 or 6). */
export function familyOf(ip: IpAddress): IpFamily {
  return NAME_OF[ip.family];
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

export function maxAddress(family: IpFamily): bigint {
  return net.maxAddress(family === 'ipv4' ? 4 : 6);
}

// ---------------------------------------------------------------------------------------------
// Parsing and formatting: @ciliate/netaddr, with IPAM's error codes and family names

const NUMBER_OF = { ipv4: 4, ipv6: 6 } as const;

/** Parses an address; throws INVALID_IP naming `path` and the reason. */
export function parseIp(text: unknown, path = 'ip'): IpAddress {
  const r = net.parseIp(text as string);
  if (r.ok) return r.value;
  const reason =
    typeof text === 'string' && text !== '' ? `not a valid IP address: ${r.reason}` : r.reason;
  throw invalidValue('INVALID_IP', path, text, reason);
}

/** Parses an address, or returns undefined. */
export function tryParseIp(text: string): IpAddress | undefined {
  const r = net.parseIp(text);
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
  const r = net.parsePrefix(text as string, { clearHostBits: options.allowHostBits === true });
  if (r.ok) {
    const { family, network, length } = r.value;
    return { family: family === 4 ? 'ipv4' : 'ipv6', network, prefix: length };
  }
  const reason = r.kind === 'address' ? `not a valid address: ${r.reason}` : r.reason;
  throw invalidValue('INVALID_CIDR', path, text, reason);
}

export function tryParseCidr(text: string, options?: ParseCidrOptions): Cidr | undefined {
  try {
    return parseCidr(text, 'cidr', options);
  } catch (err) {
    if (err instanceof IpamError) return undefined;
    throw err;
  }
}

export function formatAddress(family: IpFamily, value: bigint): string {
  return net.formatAddress(NUMBER_OF[family], value);
}

export function formatIp(ip: IpAddress): string {
  return net.formatIp(ip);
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
  return net.prefixMask(NUMBER_OF[family], prefix);
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
  return cidr.family === familyOf(ip) && ip.value >= cidr.network && ip.value <= cidrLast(cidr);
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
  if (a.family !== b.family) return a.family - b.family;
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
  return range.family === familyOf(ip) && ip.value >= range.first && ip.value <= range.last;
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
