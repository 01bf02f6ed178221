// How packets and flows are spelled for people: protocol names, TCP flags and ICMP types the
// way `cilium monitor` and `cilium bpf ct list` print them.
import type { PacketSummary } from '@ciliate/bpf';

const PROTOCOLS: Readonly<Record<number, string>> = {
  1: 'ICMP',
  6: 'TCP',
  17: 'UDP',
  58: 'ICMPv6',
  132: 'SCTP',
};

/** `TCP`, `UDP`, `ICMP`, ... or the protocol number. */
export function protoName(proto: number): string {
  return PROTOCOLS[proto] ?? String(proto);
}

const TCP_FLAGS: readonly (readonly [number, string])[] = [
  [0x02, 'SYN'],
  [0x10, 'ACK'],
  [0x01, 'FIN'],
  [0x04, 'RST'],
  [0x08, 'PSH'],
  [0x20, 'URG'],
  [0x40, 'ECE'],
  [0x80, 'CWR'],
];

/** The set bits of a TCP flags byte, SYN and ACK first (`SYN ACK`). */
export function tcpFlagNames(flags: number): string[] {
  return TCP_FLAGS.filter(([bit]) => (flags & bit) !== 0).map(([, name]) => name);
}

const ICMP_TYPES: Readonly<Record<number, string>> = {
  0: 'echo-reply',
  3: 'destination-unreachable',
  5: 'redirect',
  8: 'echo-request',
  11: 'time-exceeded',
};

const ETHERTYPES: Readonly<Record<number, string>> = {
  0x0806: 'ARP',
  0x86dd: 'IPv6',
  0x8100: 'VLAN',
};

/** One-line description of a captured packet (`TCP SYN`, `ICMP echo-request`, `ARP`). */
export function packetSummary(p: PacketSummary): string {
  if (p.ipVersion !== 4 || p.protocol === undefined) {
    return ETHERTYPES[p.ethertype] ?? `ethertype 0x${p.ethertype.toString(16).padStart(4, '0')}`;
  }
  const proto = protoName(p.protocol);
  if (p.protocol === 6 && p.tcpFlags !== undefined) {
    const flags = tcpFlagNames(p.tcpFlags);
    return flags.length > 0 ? `${proto} ${flags.join(' ')}` : proto;
  }
  if (p.protocol === 1 && p.icmpType !== undefined) {
    const name = ICMP_TYPES[p.icmpType] ?? `type ${p.icmpType}`;
    return p.icmpCode ? `${proto} ${name} code ${p.icmpCode}` : `${proto} ${name}`;
  }
  return proto;
}
