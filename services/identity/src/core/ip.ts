// IPv4/IPv6 addresses and prefixes as bytes, with the canonical text forms Go's net/netip
// prints (RFC 5952 for IPv6, `::ffff:a.b.c.d` for IPv4-mapped addresses), so keys and labels
// made from them match Cilium's.
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

export function bitLength(family: IpFamily): 32 | 128 {
  return family === 4 ? 32 : 128;
}

function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    // Leading zeros are refused as Go does: "010" is octal to some parsers and decimal to others.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseIpv6(text: string): Uint8Array | undefined {
  if (text.includes('%')) return undefined; // zones are link-local detail, not an identity key
  let head: string[];
  let tail: string[];
  const dbl = text.indexOf('::');
  if (dbl >= 0) {
    if (text.indexOf('::', dbl + 1) >= 0) return undefined;
    const left = text.slice(0, dbl);
    const right = text.slice(dbl + 2);
    head = left === '' ? [] : left.split(':');
    tail = right === '' ? [] : right.split(':');
  } else {
    head = text.split(':');
    tail = [];
  }
  const groups: number[] = [];
  const parseGroups = (list: string[], allowV4Last: boolean): number[] | undefined => {
    const out: number[] = [];
    for (let i = 0; i < list.length; i++) {
      const g = list[i]!;
      if (allowV4Last && i === list.length - 1 && g.includes('.')) {
        const v4 = parseIpv4(g);
        if (v4 === undefined) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const h = parseGroups(head, dbl < 0);
  const t = parseGroups(tail, true);
  if (h === undefined || t === undefined) return undefined;
  if (dbl >= 0) {
    const missing = 8 - h.length - t.length;
    if (missing < 1) return undefined;
    groups.push(...h, ...new Array<number>(missing).fill(0), ...t);
  } else {
    if (h.length !== 8) return undefined;
    groups.push(...h);
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = groups[i]! >> 8;
    out[2 * i + 1] = groups[i]! & 0xff;
  }
  return out;
}

/** Parses an IPv4 or IPv6 address (no zone, no prefix length). */
export function parseIp(text: string, field = 'ip'): IpAddress {
  if (typeof text === 'string') {
    if (text.includes(':')) {
      const b = parseIpv6(text);
      if (b !== undefined) return { family: 6, bytes: b };
    } else {
      const b = parseIpv4(text);
      if (b !== undefined) return { family: 4, bytes: b };
    }
  }
  throw invalid('INVALID_PREFIX', field, text, 'must be an IPv4 or IPv6 address');
}

export function tryParseIp(text: string): IpAddress | undefined {
  if (typeof text !== 'string') return undefined;
  const b = text.includes(':') ? parseIpv6(text) : parseIpv4(text);
  return b === undefined ? undefined : { family: text.includes(':') ? 6 : 4, bytes: b };
}

function isV4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** Canonical text of an address (RFC 5952; `::ffff:a.b.c.d` for IPv4-mapped). */
export function formatIp(addr: Pick<IpAddress, 'family' | 'bytes'>): string {
  const b = addr.bytes;
  if (addr.family === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (isV4Mapped(b)) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((b[2 * i]! << 8) | b[2 * i + 1]!);
  // Longest run of at least two zero groups, the first one on a tie.
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
  const hex = (g: number): string => g.toString(16);
  if (bestStart < 0) return groups.map(hex).join(':');
  const left = groups.slice(0, bestStart).map(hex).join(':');
  const right = groups
    .slice(bestStart + bestLen)
    .map(hex)
    .join(':');
  return `${left}::${right}`;
}

/** Zeroes every bit past `length`. */
export function maskBytes(bytes: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, length - i * 8));
    out[i] = out[i]! & ((0xff00 >> keep) & 0xff);
  }
  return out;
}

/**
 * Parses `a.b.c.d/n` or an IPv6 CIDR; a bare address is a host prefix (/32 or /128). Host bits
 * are cleared, as Cilium's ipcache does with netip.Prefix.Masked().
 */
export function parsePrefix(text: string, field = 'prefix'): IpPrefix {
  if (typeof text !== 'string' || text.length === 0) {
    throw invalid('INVALID_PREFIX', field, text, 'must be an IP address or CIDR');
  }
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const addr = tryParseIp(addrText);
  if (addr === undefined) {
    throw invalid('INVALID_PREFIX', field, text, 'must be an IPv4 or IPv6 address or CIDR');
  }
  const bits = bitLength(addr.family);
  let length: number = bits;
  if (slash >= 0) {
    const lenText = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText) || Number(lenText) > bits) {
      throw invalid('INVALID_PREFIX', field, text, `prefix length must be 0-${bits}`);
    }
    length = Number(lenText);
  }
  return { family: addr.family, bytes: maskBytes(addr.bytes, length), length };
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
