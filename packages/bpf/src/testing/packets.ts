// Crafted frames for the packet tests, and a parser to read back what a program made of them.
// Pure code: Ethernet, ARP, IPv4, IPv6, TCP, UDP, ICMP echo and VXLAN, with real checksums, so a
// program that checks or rewrites them is tested against what a kernel would send. Builders
// take overrides for the fields a test breaks on purpose (IHL, total length, fragment offset).
import { ipBytes, ipFromBytes, ipv4Bytes, mac } from '../codec.js';
import { invalidValue } from '../errors.js';

export const EtherType = { IPV4: 0x0800, ARP: 0x0806, IPV6: 0x86dd } as const;
export const IpProto = { ICMP: 1, TCP: 6, UDP: 17, ICMPV6: 58 } as const;
export const TcpFlag = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10 } as const;
export const IcmpType = { ECHO_REPLY: 0, ECHO_REQUEST: 8 } as const;
export const ArpOp = { REQUEST: 1, REPLY: 2 } as const;
/** IANA's VXLAN port, the one Linux VXLAN devices use with `dstport 4789`. */
export const VXLAN_PORT = 4789;

const ETH_HLEN = 14;

/** RFC 1071 ones' complement sum over the buffers, as one stream. */
export function internetChecksum(...parts: Buffer[]): number {
  let sum = 0;
  let odd: number | undefined;
  for (const p of parts) {
    for (const byte of p) {
      if (odd === undefined) odd = byte;
      else {
        sum += (odd << 8) | byte;
        odd = undefined;
      }
    }
  }
  if (odd !== undefined) sum += odd << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function macBytes(value: string, path: string): Buffer {
  const b = Buffer.alloc(6);
  mac.write(value, b, 0, path);
  return b;
}

function port(value: number, path: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff) {
    throw invalidValue(path, value, 'must be an integer 0-65535');
  }
  return value;
}

// ---- builders ----------------------------------------------------------------------------------

export interface EthernetSpec {
  src: string;
  dst: string;
  /** EtherType; default from the payload builder the frame helpers use. */
  type: number;
}

export function ethernet(eth: EthernetSpec, payload: Buffer): Buffer {
  const h = Buffer.alloc(ETH_HLEN);
  macBytes(eth.dst, 'eth.dst').copy(h, 0);
  macBytes(eth.src, 'eth.src').copy(h, 6);
  h.writeUInt16BE(eth.type, 12);
  return Buffer.concat([h, payload]);
}

export interface Ipv4Spec {
  src: string;
  dst: string;
  protocol: number;
  ttl?: number;
  tos?: number;
  id?: number;
  dontFragment?: boolean;
  moreFragments?: boolean;
  /** In 8-byte units; non-zero makes a non-first fragment. */
  fragmentOffset?: number;
  /** Overrides for malformed headers: the checksum is still computed over what is written. */
  version?: number;
  ihl?: number;
  totalLength?: number;
}

export function ipv4(spec: Ipv4Spec, payload: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h[0] = ((spec.version ?? 4) << 4) | (spec.ihl ?? 5);
  h[1] = spec.tos ?? 0;
  h.writeUInt16BE(spec.totalLength ?? 20 + payload.length, 2);
  h.writeUInt16BE(spec.id ?? 0, 4);
  const frag =
    (spec.dontFragment ? 0x4000 : 0) |
    (spec.moreFragments ? 0x2000 : 0) |
    ((spec.fragmentOffset ?? 0) & 0x1fff);
  h.writeUInt16BE(frag, 6);
  h[8] = spec.ttl ?? 64;
  h[9] = spec.protocol;
  ipv4Bytes(spec.src, 'ipv4.src').copy(h, 12);
  ipv4Bytes(spec.dst, 'ipv4.dst').copy(h, 16);
  h.writeUInt16BE(internetChecksum(h), 10);
  return Buffer.concat([h, payload]);
}

export interface Ipv6Spec {
  src: string;
  dst: string;
  nextHeader: number;
  hopLimit?: number;
}

function ipv6Bytes(value: string, path: string): Buffer {
  const { family, bytes } = ipBytes(value, path);
  if (family !== 2) throw invalidValue(path, value, 'must be an IPv6 address');
  return bytes;
}

export function ipv6(spec: Ipv6Spec, payload: Buffer): Buffer {
  const h = Buffer.alloc(40);
  h.writeUInt32BE(0x6000_0000, 0);
  h.writeUInt16BE(payload.length, 4);
  h[6] = spec.nextHeader;
  h[7] = spec.hopLimit ?? 64;
  ipv6Bytes(spec.src, 'ipv6.src').copy(h, 8);
  ipv6Bytes(spec.dst, 'ipv6.dst').copy(h, 24);
  return Buffer.concat([h, payload]);
}

/** The addresses an L4 checksum covers (IPv4 or IPv6, told apart by the text). */
export interface L4Addresses {
  src: string;
  dst: string;
}

function pseudoHeader(ip: L4Addresses, protocol: number, length: number): Buffer {
  const src = ipBytes(ip.src, 'ip.src');
  const dst = ipBytes(ip.dst, 'ip.dst');
  if (src.family !== dst.family)
    throw invalidValue('ip.dst', ip.dst, 'must be of the family of ip.src');
  if (src.family === 1) {
    const p = Buffer.alloc(12);
    src.bytes.copy(p, 0, 0, 4);
    dst.bytes.copy(p, 4, 0, 4);
    p[9] = protocol;
    p.writeUInt16BE(length, 10);
    return p;
  }
  const p = Buffer.alloc(40);
  src.bytes.copy(p, 0);
  dst.bytes.copy(p, 16);
  p.writeUInt32BE(length, 32);
  p[39] = protocol;
  return p;
}

export interface TcpSpec {
  sport: number;
  dport: number;
  flags: number;
  seq?: number;
  ack?: number;
  window?: number;
  payload?: Buffer;
}

export function tcp(spec: TcpSpec, ip: L4Addresses): Buffer {
  const payload = spec.payload ?? Buffer.alloc(0);
  const h = Buffer.alloc(20);
  h.writeUInt16BE(port(spec.sport, 'tcp.sport'), 0);
  h.writeUInt16BE(port(spec.dport, 'tcp.dport'), 2);
  h.writeUInt32BE((spec.seq ?? 1) >>> 0, 4);
  h.writeUInt32BE((spec.ack ?? 0) >>> 0, 8);
  h[12] = 5 << 4;
  h[13] = spec.flags;
  h.writeUInt16BE(spec.window ?? 65535, 14);
  const seg = Buffer.concat([h, payload]);
  seg.writeUInt16BE(internetChecksum(pseudoHeader(ip, IpProto.TCP, seg.length), seg), 16);
  return seg;
}

export interface UdpSpec {
  sport: number;
  dport: number;
  payload?: Buffer;
}

export function udp(spec: UdpSpec, ip: L4Addresses): Buffer {
  const payload = spec.payload ?? Buffer.alloc(0);
  const h = Buffer.alloc(8);
  h.writeUInt16BE(port(spec.sport, 'udp.sport'), 0);
  h.writeUInt16BE(port(spec.dport, 'udp.dport'), 2);
  h.writeUInt16BE(8 + payload.length, 4);
  const dgram = Buffer.concat([h, payload]);
  // 0 means "no checksum" in UDP over IPv4, so a computed 0 is sent as 0xffff
  dgram.writeUInt16BE(
    internetChecksum(pseudoHeader(ip, IpProto.UDP, dgram.length), dgram) || 0xffff,
    6,
  );
  return dgram;
}

export interface IcmpEchoSpec {
  type: (typeof IcmpType)[keyof typeof IcmpType];
  id: number;
  seq: number;
  payload?: Buffer;
}

export function icmpEcho(spec: IcmpEchoSpec): Buffer {
  const m = Buffer.concat([Buffer.alloc(8), spec.payload ?? Buffer.alloc(0)]);
  m[0] = spec.type;
  m.writeUInt16BE(port(spec.id, 'icmp.id'), 4);
  m.writeUInt16BE(port(spec.seq, 'icmp.seq'), 6);
  m.writeUInt16BE(internetChecksum(m), 2);
  return m;
}

export interface ArpSpec {
  op: (typeof ArpOp)[keyof typeof ArpOp];
  senderMac: string;
  senderIp: string;
  /** Default 00:00:00:00:00:00, as in a request. */
  targetMac?: string;
  targetIp: string;
}

export function arp(spec: ArpSpec): Buffer {
  const a = Buffer.alloc(28);
  a.writeUInt16BE(1, 0); // Ethernet
  a.writeUInt16BE(EtherType.IPV4, 2);
  a[4] = 6;
  a[5] = 4;
  a.writeUInt16BE(spec.op, 6);
  macBytes(spec.senderMac, 'arp.senderMac').copy(a, 8);
  ipv4Bytes(spec.senderIp, 'arp.senderIp').copy(a, 14);
  macBytes(spec.targetMac ?? '00:00:00:00:00:00', 'arp.targetMac').copy(a, 18);
  ipv4Bytes(spec.targetIp, 'arp.targetIp').copy(a, 24);
  return a;
}

/** The 8-byte VXLAN header (RFC 7348: flags with the I bit, 24-bit VNI) before the inner frame. */
export function vxlan(vni: number, innerFrame: Buffer): Buffer {
  if (!Number.isInteger(vni) || vni < 0 || vni > 0xffffff) {
    throw invalidValue('vxlan.vni', vni, 'must be an integer 0-16777215');
  }
  const h = Buffer.alloc(8);
  h[0] = 0x08;
  h.writeUInt32BE(vni << 8, 4);
  return Buffer.concat([h, innerFrame]);
}

export type L4Spec =
  | { tcp: TcpSpec }
  | { udp: UdpSpec }
  | { icmp: IcmpEchoSpec }
  | { raw: { protocol: number; payload: Buffer } };

export interface Ipv4FrameSpec {
  eth: Omit<EthernetSpec, 'type'>;
  ip: Omit<Ipv4Spec, 'protocol'>;
  l4: L4Spec;
}

/** Ethernet + IPv4 + one L4 header, every checksum right. */
export function ipv4Frame(spec: Ipv4FrameSpec): Buffer {
  const { protocol, payload } = l4Bytes(spec.l4, spec.ip);
  return ethernet({ ...spec.eth, type: EtherType.IPV4 }, ipv4({ ...spec.ip, protocol }, payload));
}

function l4Bytes(l4: L4Spec, ip: L4Addresses): { protocol: number; payload: Buffer } {
  if ('tcp' in l4) return { protocol: IpProto.TCP, payload: tcp(l4.tcp, ip) };
  if ('udp' in l4) return { protocol: IpProto.UDP, payload: udp(l4.udp, ip) };
  if ('icmp' in l4) return { protocol: IpProto.ICMP, payload: icmpEcho(l4.icmp) };
  return l4.raw;
}

/** An ARP frame: requests go to broadcast unless `eth.dst` says otherwise. */
export function arpFrame(spec: ArpSpec & { ethDst?: string }): Buffer {
  return ethernet(
    { src: spec.senderMac, dst: spec.ethDst ?? 'ff:ff:ff:ff:ff:ff', type: EtherType.ARP },
    arp(spec),
  );
}

/** Ethernet + IPv6 + UDP. */
export function ipv6UdpFrame(spec: {
  eth: Omit<EthernetSpec, 'type'>;
  ip: Omit<Ipv6Spec, 'nextHeader'>;
  udp: UdpSpec;
}): Buffer {
  return ethernet(
    { ...spec.eth, type: EtherType.IPV6 },
    ipv6({ ...spec.ip, nextHeader: IpProto.UDP }, udp(spec.udp, spec.ip)),
  );
}

/** An outer Ethernet/IPv4/UDP/VXLAN frame around `inner`, as a VXLAN device sends it. */
export function vxlanFrame(spec: {
  eth: Omit<EthernetSpec, 'type'>;
  ip: Omit<Ipv4Spec, 'protocol'>;
  sport?: number;
  vni: number;
  inner: Buffer;
}): Buffer {
  return ipv4Frame({
    eth: spec.eth,
    ip: spec.ip,
    l4: {
      udp: { sport: spec.sport ?? 49152, dport: VXLAN_PORT, payload: vxlan(spec.vni, spec.inner) },
    },
  });
}

// ---- parser ------------------------------------------------------------------------------------

export interface ParsedIpv4 {
  version: number;
  ihl: number;
  tos: number;
  totalLength: number;
  id: number;
  dontFragment: boolean;
  moreFragments: boolean;
  fragmentOffset: number;
  ttl: number;
  protocol: number;
  checksum: number;
  /** The header checksum verifies. */
  checksumOk: boolean;
  src: string;
  dst: string;
}

export interface ParsedIpv6 {
  payloadLength: number;
  nextHeader: number;
  hopLimit: number;
  src: string;
  dst: string;
}

export interface ParsedTcp {
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  checksumOk: boolean;
  payload: Buffer;
}

export interface ParsedUdp {
  sport: number;
  dport: number;
  length: number;
  /** True as well when the sender left it out (0 over IPv4). */
  checksumOk: boolean;
  payload: Buffer;
}

export interface ParsedIcmp {
  type: number;
  code: number;
  id: number;
  seq: number;
  checksumOk: boolean;
}

export interface ParsedArp {
  op: number;
  senderMac: string;
  senderIp: string;
  targetMac: string;
  targetIp: string;
}

export interface ParsedFrame {
  eth: { dst: string; src: string; type: number };
  arp?: ParsedArp;
  ipv4?: ParsedIpv4;
  ipv6?: ParsedIpv6;
  tcp?: ParsedTcp;
  udp?: ParsedUdp;
  icmp?: ParsedIcmp;
  /** UDP to the VXLAN port: the header and the inner frame, parsed the same way. */
  vxlan?: { flags: number; vni: number; inner: ParsedFrame };
}

/**
 * Reads what is there; a header cut short is left out rather than guessed. Throws only when
 * the frame has no Ethernet header.
 */
export function parseFrame(frame: Buffer): ParsedFrame {
  if (frame.length < ETH_HLEN) {
    throw invalidValue('frame', `${frame.length} bytes`, 'shorter than an Ethernet header');
  }
  const out: ParsedFrame = {
    eth: { dst: mac.read(frame, 0), src: mac.read(frame, 6), type: frame.readUInt16BE(12) },
  };
  const l3 = frame.subarray(ETH_HLEN);
  if (out.eth.type === EtherType.ARP && l3.length >= 28) {
    out.arp = {
      op: l3.readUInt16BE(6),
      senderMac: mac.read(l3, 8),
      senderIp: ipFromBytes(Buffer.concat([l3.subarray(14, 18), Buffer.alloc(12)]), 1),
      targetMac: mac.read(l3, 18),
      targetIp: ipFromBytes(Buffer.concat([l3.subarray(24, 28), Buffer.alloc(12)]), 1),
    };
  } else if (out.eth.type === EtherType.IPV4 && l3.length >= 20) {
    const ihl = l3[0]! & 0x0f;
    const hlen = ihl * 4;
    const frag = l3.readUInt16BE(6);
    const ip: ParsedIpv4 = {
      version: l3[0]! >> 4,
      ihl,
      tos: l3[1]!,
      totalLength: l3.readUInt16BE(2),
      id: l3.readUInt16BE(4),
      dontFragment: (frag & 0x4000) !== 0,
      moreFragments: (frag & 0x2000) !== 0,
      fragmentOffset: frag & 0x1fff,
      ttl: l3[8]!,
      protocol: l3[9]!,
      checksum: l3.readUInt16BE(10),
      checksumOk: hlen >= 20 && l3.length >= hlen && internetChecksum(l3.subarray(0, hlen)) === 0,
      src: `${l3[12]}.${l3[13]}.${l3[14]}.${l3[15]}`,
      dst: `${l3[16]}.${l3[17]}.${l3[18]}.${l3[19]}`,
    };
    out.ipv4 = ip;
    if (
      ip.fragmentOffset === 0 &&
      hlen >= 20 &&
      ip.totalLength >= hlen &&
      l3.length >= ip.totalLength
    ) {
      const pseudo = (len: number) => pseudoHeader(ip, ip.protocol, len);
      parseL4(out, ip.protocol, l3.subarray(hlen, ip.totalLength), pseudo);
    }
  } else if (out.eth.type === EtherType.IPV6 && l3.length >= 40) {
    const ip: ParsedIpv6 = {
      payloadLength: l3.readUInt16BE(4),
      nextHeader: l3[6]!,
      hopLimit: l3[7]!,
      src: ipFromBytes(l3.subarray(8, 24), 2),
      dst: ipFromBytes(l3.subarray(24, 40), 2),
    };
    out.ipv6 = ip;
    if (l3.length >= 40 + ip.payloadLength) {
      const pseudo = (len: number) => pseudoHeader(ip, ip.nextHeader, len);
      parseL4(out, ip.nextHeader, l3.subarray(40, 40 + ip.payloadLength), pseudo);
    }
  }
  return out;
}

function parseL4(
  out: ParsedFrame,
  protocol: number,
  seg: Buffer,
  pseudo: (len: number) => Buffer,
): void {
  if (protocol === IpProto.TCP && seg.length >= 20) {
    const doff = (seg[12]! >> 4) * 4;
    out.tcp = {
      sport: seg.readUInt16BE(0),
      dport: seg.readUInt16BE(2),
      seq: seg.readUInt32BE(4),
      ack: seg.readUInt32BE(8),
      flags: seg[13]!,
      checksumOk: internetChecksum(pseudo(seg.length), seg) === 0,
      payload: seg.subarray(Math.min(doff, seg.length)),
    };
  } else if (protocol === IpProto.UDP && seg.length >= 8) {
    const u: ParsedUdp = {
      sport: seg.readUInt16BE(0),
      dport: seg.readUInt16BE(2),
      length: seg.readUInt16BE(4),
      checksumOk:
        (out.ipv4 !== undefined && seg.readUInt16BE(6) === 0) ||
        internetChecksum(pseudo(seg.length), seg) === 0,
      payload: seg.subarray(8),
    };
    out.udp = u;
    if (u.dport === VXLAN_PORT && u.payload.length >= 8 + ETH_HLEN) {
      out.vxlan = {
        flags: u.payload[0]!,
        vni: u.payload.readUInt32BE(4) >>> 8,
        inner: parseFrame(u.payload.subarray(8)),
      };
    }
  } else if (protocol === IpProto.ICMP && seg.length >= 8) {
    out.icmp = {
      type: seg[0]!,
      code: seg[1]!,
      id: seg.readUInt16BE(4),
      seq: seg.readUInt16BE(6),
      checksumOk: internetChecksum(seg) === 0,
    };
  }
}
