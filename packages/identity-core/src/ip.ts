// Addresses and prefixes for the identity core: @ciliate/netaddr's types, parser and canonical
// text (what Go's net/netip prints, so keys and labels made from them match Cilium's), with the
// core's error codes and the ipcache's reading of a bare address as a host prefix.
import {
  parseIp as parseNetIp,
  parsePrefix as parseNetPrefix,
  formatPrefix,
  type IpAddress,
  type IpPrefix,
} from '@ciliate/netaddr';

import { invalid } from './errors.js';

/** Parses an IPv4 or IPv6 address (no zone, no prefix length); throws INVALID_PREFIX naming `field`. */
export function parseIp(text: string, field = 'ip'): IpAddress {
  const r = parseNetIp(text);
  if (r.ok) return r.value;
  throw invalid('INVALID_PREFIX', field, text, `must be an IPv4 or IPv6 address: ${r.reason}`);
}

/**
 * Parses `a.b.c.d/n` or an IPv6 CIDR; a bare address is a host prefix (/32 or /128). Host bits
 * are cleared, as Cilium's ipcache does with netip.Prefix.Masked().
 */
export function parsePrefix(text: string, field = 'prefix'): IpPrefix {
  if (typeof text !== 'string' || text.length === 0) {
    throw invalid('INVALID_PREFIX', field, text, 'must be an IP address or CIDR');
  }
  const r = parseNetPrefix(text, { bareAddress: true, clearHostBits: true });
  if (r.ok) return r.value;
  const reason =
    r.kind === 'length' ? r.reason : `must be an IPv4 or IPv6 address or CIDR: ${r.reason}`;
  throw invalid('INVALID_PREFIX', field, text, reason);
}

/** Canonical text of a CIDR or host address: masked, lower case, with explicit length. */
export function canonicalPrefix(text: string, field = 'prefix'): string {
  return formatPrefix(parsePrefix(text, field));
}
