// IPv4 and IPv6 addresses and CIDRs are @ciliate/netaddr's IpAddress and IpPrefix: (family,
// bigint) pairs, one representation for both families so the allocators are family-blind. Text
// only exists at the edges, always in canonical form (netaddr parses and prints it) so that the
// same address is always the same string in stored state and on the wire. This module adds
// IPAM's family names (what the wire and stored state spell), its error codes and the range
// arithmetic of pools.
import * as net from '@ciliate/netaddr';
import type { IpAddress, IpPrefix } from '@ciliate/netaddr';

import { IpamError, invalidValue } from './errors.js';

export type IpFamily = 'ipv4' | 'ipv6';

export const IP_FAMILIES: readonly IpFamily[] = ['ipv4', 'ipv6'];

const NAME_OF = { 4: 'ipv4', 6: 'ipv6' } as const;

/**
 * IPAM's (and the wire's) name of the family of an address or prefix (netaddr's, family 4 or 6).
 */
export function familyOf(x: { readonly family: net.IpFamily }): IpFamily {
  return NAME_OF[x.family];
}

const NUMBER_OF = { ipv4: 4, ipv6: 6 } as const;

/** netaddr's family (4 or 6) of an IPAM family name. */
export function familyNumber(family: IpFamily): net.IpFamily {
  return NUMBER_OF[family];
}

export function familyBits(family: IpFamily): 32 | 128 {
  return family === 'ipv4' ? 32 : 128;
}

/** Kubernetes spells families `IPv4` / `IPv6`. */
export function k8sFamilyName(family: IpFamily): 'IPv4' | 'IPv6' {
  return family === 'ipv4' ? 'IPv4' : 'IPv6';
}

// ---------------------------------------------------------------------------------------------
// Parsing and formatting: @ciliate/netaddr, with IPAM's error codes and family names

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
export function parseCidr(text: unknown, path = 'cidr', options: ParseCidrOptions = {}): IpPrefix {
  const r = net.parsePrefix(text as string, { clearHostBits: options.allowHostBits === true });
  if (r.ok) return r.value;
  const reason = r.kind === 'address' ? `not a valid address: ${r.reason}` : r.reason;
  throw invalidValue('INVALID_CIDR', path, text, reason);
}

export function tryParseCidr(text: string, options?: ParseCidrOptions): IpPrefix | undefined {
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

/** The canonical text of an address; throws INVALID_IP. */
export function canonicalIp(text: string, path?: string): string {
  return formatIp(parseIp(text, path));
}

/** The canonical text of a CIDR; throws INVALID_CIDR. */
export function canonicalCidr(text: string, path?: string, options?: ParseCidrOptions): string {
  return net.formatPrefix(parseCidr(text, path, options));
}

// ---------------------------------------------------------------------------------------------
// Arithmetic

/** Number of addresses in the CIDR. */
export function cidrSize(cidr: IpPrefix): bigint {
  return 1n << BigInt(net.familyBits(cidr.family) - cidr.length);
}

export function cidrFirst(cidr: IpPrefix): bigint {
  return cidr.network;
}

export function cidrLast(cidr: IpPrefix): bigint {
  return cidr.network + cidrSize(cidr) - 1n;
}

/** Two CIDRs overlap exactly when one contains the other. */
export function cidrsOverlap(a: IpPrefix, b: IpPrefix): boolean {
  return net.prefixContainsPrefix(a, b) || net.prefixContainsPrefix(b, a);
}

export function compareIps(a: IpAddress, b: IpAddress): number {
  if (a.family !== b.family) return a.family - b.family;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

export function compareCidrs(a: IpPrefix, b: IpPrefix): number {
  if (a.family !== b.family) return a.family - b.family;
  if (a.network !== b.network) return a.network < b.network ? -1 : 1;
  return a.length - b.length;
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

export function rangeOfCidr(cidr: IpPrefix): IpRange {
  return { family: familyOf(cidr), first: cidr.network, last: cidrLast(cidr) };
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
    let length = familyBits(range.family);
    for (let s = size; s > 1n; s >>= 1n) length--;
    return net.formatPrefix({ family: NUMBER_OF[range.family], network: range.first, length });
  }
  return `${formatAddress(range.family, range.first)}-${formatAddress(range.family, range.last)}`;
}
