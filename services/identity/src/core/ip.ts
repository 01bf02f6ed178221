// IPv4/IPv6 addresses and prefixes as bytes, the form the ipcache's keys and containment checks
// want. Parsing and the canonical text (what Go's net/netip prints, so keys and labels made from
// them match Cilium's) are @ciliate/netaddr's.
import * as net from '@ciliate/netaddr';

import { invalid } from './errors.js';

export type IpFamily = 4 | 6;

export interface IpAddress {
  readonly family: IpFamily;
  /** 4 or 16 bytes, network order. */
  readonly bytes: Uint8Array;
}

export interface IpPrefix {
  readonly family: IpFamily;
  /** Network address: bits past `length` are zero. */
  readonly bytes: Uint8Array;
  readonly length: number;
}

function toBytes(ip: net.IpAddress): Uint8Array {
  return net.addressToBytes(ip.family, ip.value, new Uint8Array(ip.family === 4 ? 4 : 16));
}

/** Parses an IPv4 or IPv6 address (no zone, no prefix length). */
export function parseIp(text: string, field = 'ip'): IpAddress {
  const r = net.parseIp(text);
  if (r.ok) return { family: r.value.family, bytes: toBytes(r.value) };
  throw invalid('INVALID_PREFIX', field, text, `must be an IPv4 or IPv6 address: ${r.reason}`);
}

export function tryParseIp(text: string): IpAddress | undefined {
  const r = net.parseIp(text);
  return r.ok ? { family: r.value.family, bytes: toBytes(r.value) } : undefined;
}

/** Canonical text of an address (RFC 5952; `::ffff:a.b.c.d` for IPv4-mapped). */
export function formatIp(addr: Pick<IpAddress, 'family' | 'bytes'>): string {
  return net.formatAddress(addr.family, net.addressFromBytes(addr.family, addr.bytes));
}

/**
 * Parses `a.b.c.d/n` or an IPv6 CIDR; a bare address is a host prefix (/32 or /128). Host bits
 * are cleared, as Cilium's ipcache does with netip.Prefix.Masked().
 */
export function parsePrefix(text: string, field = 'prefix'): IpPrefix {
  if (typeof text !== 'string' || text.length === 0) {
    throw invalid('INVALID_PREFIX', field, text, 'must be an IP address or CIDR');
  }
  const r = net.parsePrefix(text, { bareAddress: true, clearHostBits: true });
  if (r.ok) {
    const { family, network, length } = r.value;
    return { family, bytes: toBytes({ family, value: network }), length };
  }
  const reason =
    r.kind === 'length' ? r.reason : `must be an IPv4 or IPv6 address or CIDR: ${r.reason}`;
  throw invalid('INVALID_PREFIX', field, text, reason);
}

export function formatPrefix(p: IpPrefix): string {
  return `${formatIp(p)}/${p.length}`;
}

/** Whether `addr` lies inside `prefix` (families must match). */
export function prefixContains(prefix: IpPrefix, addr: IpAddress): boolean {
  if (prefix.family !== addr.family) return false;
  const full = Math.floor(prefix.length / 8);
  for (let i = 0; i < full; i++) if (prefix.bytes[i] !== addr.bytes[i]) return false;
  const rest = prefix.length % 8;
  if (rest === 0) return true;
  const mask = (0xff00 >> rest) & 0xff;
  return (addr.bytes[full]! & mask) === prefix.bytes[full];
}

/** Canonical text of a CIDR or host address: masked, lower case, with explicit length. */
export function canonicalPrefix(text: string, field = 'prefix'): string {
  return formatPrefix(parsePrefix(text, field));
}
