// Decoding trace and drop notifications from the events ring buffer, with a summary of the
// captured packet (addresses, ports, TCP flags) for monitor output and flows.
import { decode } from '../codec.js';
import {
  NotifyType,
  SourceFile,
  TRACE_POINT_NAMES,
  TRACE_REASON_NAMES,
  dropReasonName,
  dropReasonText,
} from './constants.js';
import { dropNotify, traceNotify } from './layouts.js';

export interface PacketSummary {
  srcMac: string;
  dstMac: string;
  ethertype: number;
  ipVersion?: 4;
  srcIp?: string;
  dstIp?: string;
  protocol?: number;
  ttl?: number;
  srcPort?: number;
  dstPort?: number;
  /** TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10). */
  tcpFlags?: number;
  icmpType?: number;
  icmpCode?: number;
}

interface EventCommon {
  /** Endpoint id the event was observed at (0: not an endpoint). */
  source: number;
  hash: number;
  /** Length of the packet on the wire. */
  lenOrig: number;
  /** CLOCK_MONOTONIC nanoseconds when the program ran. */
  ktimeNs: bigint;
  srcIdentity: number;
  dstIdentity: number;
  ifindex: number;
  /** The first bytes of the packet (up to 128). */
  data: Buffer;
  packet: PacketSummary | undefined;
}

export interface TraceEvent extends EventCommon {
  kind: 'trace';
  observationPoint: number;
  /** Hubble's name: to-endpoint, from-endpoint, to-stack, to-overlay, from-overlay, ... */
  observationPointName: string;
  /** Conntrack state: 0 new, 1 established, 2 reply, 255 unknown. */
  reason: number;
  reasonName: string;
  dstEndpoint: number;
}

export interface DropEvent extends EventCommon {
  kind: 'drop';
  /** Cilium's drop reason code (133 policy denied, 132 invalid source ip, ...). */
  reason: number;
  /** Hubble's DropReason enum name. */
  reasonName: string;
  /** Cilium's text ("Invalid source ip"). */
  reasonText: string;
  dstEndpoint: number;
  file: string;
  line: number;
}

export interface UnknownEvent {
  kind: 'unknown';
  type: number;
  data: Buffer;
}

export type DatapathEvent = TraceEvent | DropEvent | UnknownEvent;

function macAt(b: Buffer, off: number): string {
  return [...b.subarray(off, off + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Parses what is there of Ethernet, IPv4 and the L4 header; stops at the captured length. */
export function summarizePacket(data: Buffer): PacketSummary | undefined {
  if (data.length < 14) return undefined;
  const s: PacketSummary = {
    dstMac: macAt(data, 0),
    srcMac: macAt(data, 6),
    ethertype: data.readUInt16BE(12),
  };
  if (s.ethertype !== 0x0800 || data.length < 34) return s;
  const ihl = (data[14]! & 0x0f) * 4;
  s.ipVersion = 4;
  s.ttl = data[22];
  s.protocol = data[23];
  s.srcIp = `${data[26]}.${data[27]}.${data[28]}.${data[29]}`;
  s.dstIp = `${data[30]}.${data[31]}.${data[32]}.${data[33]}`;
  const l4 = 14 + ihl;
  const fragOff = data.readUInt16BE(20) & 0x1fff;
  if (fragOff !== 0) return s;
  if ((s.protocol === 6 || s.protocol === 17) && data.length >= l4 + 4) {
    s.srcPort = data.readUInt16BE(l4);
    s.dstPort = data.readUInt16BE(l4 + 2);
    if (s.protocol === 6 && data.length >= l4 + 14) s.tcpFlags = data[l4 + 13];
  } else if (s.protocol === 1 && data.length >= l4 + 2) {
    s.icmpType = data[l4];
    s.icmpCode = data[l4 + 1];
  }
  return s;
}

export function decodeEvent(buf: Buffer): DatapathEvent {
  const type = buf.length > 0 ? buf[0]! : 0;
  if (type === NotifyType.TRACE && buf.length >= traceNotify.size) {
    const t = decode(traceNotify, buf);
    const data = t.data.subarray(0, Math.min(t.lenCap, t.data.length));
    return {
      kind: 'trace',
      observationPoint: t.subtype,
      observationPointName: TRACE_POINT_NAMES[t.subtype] ?? `point-${t.subtype}`,
      reason: t.reason,
      reasonName: TRACE_REASON_NAMES[t.reason] ?? `reason-${t.reason}`,
      source: t.source,
      hash: t.hash,
      lenOrig: t.lenOrig,
      ktimeNs: t.ktime,
      srcIdentity: t.srcIdentity,
      dstIdentity: t.dstIdentity,
      dstEndpoint: t.dstId,
      ifindex: t.ifindex,
      data,
      packet: summarizePacket(data),
    };
  }
  if (type === NotifyType.DROP && buf.length >= dropNotify.size) {
    const d = decode(dropNotify, buf);
    const data = d.data.subarray(0, Math.min(d.lenCap, d.data.length));
    return {
      kind: 'drop',
      reason: d.subtype,
      reasonName: dropReasonName(d.subtype),
      reasonText: dropReasonText(d.subtype),
      source: d.source,
      hash: d.hash,
      lenOrig: d.lenOrig,
      ktimeNs: d.ktime,
      srcIdentity: d.srcIdentity,
      dstIdentity: d.dstIdentity,
      dstEndpoint: d.dstId,
      ifindex: d.ifindex,
      file: SourceFile[d.file] ?? `file-${d.file}`,
      line: d.line,
      data,
      packet: summarizePacket(data),
    };
  }
  return { kind: 'unknown', type, data: Buffer.from(buf) };
}
