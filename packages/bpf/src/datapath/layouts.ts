// TypeScript views of the structs in bpf/lib/maps.h and bpf/lib/notify.h. Each raw codec
// mirrors its C struct field by field (checked against the object's BTF by layouts.test.ts);
// the exported codecs present friendlier values (addresses as strings, CIDR prefixes).
import {
  be16,
  bytes,
  i8,
  ipAddrBytes,
  ipBytes,
  ipFromBytes,
  ipv4,
  mac,
  pad,
  struct,
  u16,
  u32,
  u64,
  u8,
  view,
  type Codec,
} from '../codec.js';
import { addressToBytes, parsePrefix as parsePrefixText } from '@ciliate/netaddr';

import { invalidValue } from '../errors.js';
import { CAPTURE_LEN, Family, IpcacheFlags, MapNames } from './constants.js';

// ---- endpoints -------------------------------------------------------------------------------

export const endpointKeyRaw = struct('endpoint_key', {
  addr: ipAddrBytes,
  family: u8,
  pad1: pad(1),
  pad2: pad(2),
});

export interface EndpointKey {
  /** The pod's address (IPv4 today; IPv6 fits the same key). */
  ip: string;
}

export const endpointKey: Codec<EndpointKey> = view(
  endpointKeyRaw,
  (raw) => ({ ip: ipFromBytes(raw.addr, raw.family) }),
  (v, path) => {
    const { family, bytes: addr } = ipBytes(v?.ip, `${path}.ip`);
    return { addr, family };
  },
);

export const endpointInfo = struct('endpoint_info', {
  ifindex: u32,
  endpointId: u16,
  flags: u16,
  mac,
  nodeMac: mac,
  identity: u32,
});
export type EndpointInfo = ReturnType<typeof endpointInfo.read>;

// ---- ipcache ---------------------------------------------------------------------------------

/** Bits of the LPM key that always match: cluster_id, pad and family. */
export const IPCACHE_STATIC_PREFIX_BITS = 32;

export const ipcacheKeyRaw = struct('ipcache_key', {
  prefixlen: u32,
  clusterId: u16,
  pad: pad(1),
  family: u8,
  addr: ipAddrBytes,
});

export interface IpcacheKey {
  /** A CIDR ("10.0.1.0/24") or a single address ("10.0.1.5", meaning /32 or /128). */
  prefix: string;
  clusterId?: number;
}

function parsePrefix(
  prefix: unknown,
  path: string,
): { family: 1 | 2; bytes: Buffer; bits: number } {
  if (typeof prefix !== 'string') throw invalidValue(path, prefix, 'must be a CIDR string');
  // host bits are cleared so that equal prefixes give equal keys
  const r = parsePrefixText(prefix, { bareAddress: true, clearHostBits: true });
  if (!r.ok) {
    const reason =
      r.kind === 'length' ? r.reason : `must be ADDRESS or ADDRESS/LENGTH: ${r.reason}`;
    throw invalidValue(path, prefix, reason);
  }
  const { family, network, length } = r.value;
  return {
    family: family === 4 ? Family.IPV4 : Family.IPV6,
    bytes: addressToBytes(family, network, Buffer.alloc(16)),
    bits: length,
  };
}

export const ipcacheKey: Codec<IpcacheKey> = view(
  ipcacheKeyRaw,
  (raw) => ({
    prefix: `${ipFromBytes(raw.addr, raw.family)}/${raw.prefixlen - IPCACHE_STATIC_PREFIX_BITS}`,
    clusterId: raw.clusterId,
  }),
  (v, path) => {
    const p = parsePrefix(v?.prefix, `${path}.prefix`);
    return {
      prefixlen: IPCACHE_STATIC_PREFIX_BITS + p.bits,
      clusterId: v.clusterId ?? 0,
      family: p.family,
      addr: p.bytes,
    };
  },
);

export const ipcacheValueRaw = struct('ipcache_value', {
  identity: u32,
  tunnelEndpoint: ipAddrBytes,
  flags: u8,
  encryptKey: u8,
  pad: pad(2),
});

export interface IpcacheValue {
  identity: number;
  /** Node to tunnel to in VXLAN mode; null routes natively. */
  tunnelEndpoint: string | null;
  /** IpcacheFlags.SKIP_TUNNEL; TUNNEL_IPV6 is derived from tunnelEndpoint. */
  flags?: number;
  encryptKey?: number;
}

export const ipcacheValue: Codec<IpcacheValue> = view(
  ipcacheValueRaw,
  (raw) => {
    const v6 = (raw.flags & IpcacheFlags.TUNNEL_IPV6) !== 0;
    const zero = raw.tunnelEndpoint.every((b) => b === 0);
    return {
      identity: raw.identity,
      tunnelEndpoint: zero ? null : ipFromBytes(raw.tunnelEndpoint, v6 ? Family.IPV6 : Family.IPV4),
      flags: raw.flags,
      encryptKey: raw.encryptKey,
    };
  },
  (v, path) => {
    let flags = (v?.flags ?? 0) & ~IpcacheFlags.TUNNEL_IPV6;
    let tunnel: Buffer = Buffer.alloc(16);
    if (v?.tunnelEndpoint) {
      const t = ipBytes(v.tunnelEndpoint, `${path}.tunnelEndpoint`);
      tunnel = t.bytes;
      if (t.family === Family.IPV6) flags |= IpcacheFlags.TUNNEL_IPV6;
    }
    return { identity: v?.identity, tunnelEndpoint: tunnel, flags, encryptKey: v?.encryptKey ?? 0 };
  },
);

// ---- conntrack -------------------------------------------------------------------------------

export const ct4Key = struct('ct4_key', {
  saddr: ipv4,
  daddr: ipv4,
  /** Host-order port numbers (network order in the map). ICMP echo: the identifier. */
  sport: be16,
  dport: be16,
  nexthdr: u8,
  /** TupleFlags.OUT (seen leaving the endpoint) or IN (entering it). */
  flags: u8,
  pad: pad(2),
});
export type Ct4Key = ReturnType<typeof ct4Key.read>;

export const ctEntry = struct('ct_entry', {
  packetsFwd: u64,
  bytesFwd: u64,
  packetsRev: u64,
  bytesRev: u64,
  /** bpf monotonic seconds (CLOCK_MONOTONIC) at which the entry expires. */
  lifetime: u32,
  flags: u16,
  revNatIndex: u16,
  srcIdentity: u32,
  policyVerdict: u8,
  txFlagsSeen: u8,
  rxFlagsSeen: u8,
  pad: pad(1),
  ifindex: u32,
  created: u32,
});
export type CtEntry = ReturnType<typeof ctEntry.read>;

// ---- metrics and event statistics -----------------------------------------------------------

export const metricsKey = struct('metrics_key', {
  /** 0 for forwarded packets, else a drop reason. */
  reason: u8,
  /** MetricDir.INGRESS or EGRESS. */
  dir: u8,
  pad: pad(2),
});
export type MetricsKey = ReturnType<typeof metricsKey.read>;

export const metricsValue = struct('metrics_value', { count: u64, bytes: u64 });
export type MetricsValue = ReturnType<typeof metricsValue.read>;

export const eventStats = struct('event_stats', { submitted: u64, lost: u64 });
export type EventStats = ReturnType<typeof eventStats.read>;

export const u32Key = u32;

// ---- events ----------------------------------------------------------------------------------

const notifyHeader = {
  type: u8,
  subtype: u8,
  source: u16,
  hash: u32,
  lenOrig: u32,
  lenCap: u16,
  version: u16,
  ktime: u64,
} as const;

export const traceNotify = struct('trace_notify', {
  ...notifyHeader,
  srcIdentity: u32,
  dstIdentity: u32,
  dstId: u16,
  reason: u8,
  flags: u8,
  ifindex: u32,
  data: bytes(CAPTURE_LEN),
});
export type TraceNotify = ReturnType<typeof traceNotify.read>;

export const dropNotify = struct('drop_notify', {
  ...notifyHeader,
  srcIdentity: u32,
  dstIdentity: u32,
  dstId: u32,
  line: u16,
  file: u8,
  extError: i8,
  ifindex: u32,
  pad: pad(4),
  data: bytes(CAPTURE_LEN),
});
export type DropNotify = ReturnType<typeof dropNotify.read>;

// ---- the table the layout test walks ---------------------------------------------------------

export interface MapLayout {
  name: string;
  /** C type names of key and value; undefined for maps without a key (ring buffer). */
  cKey: string | undefined;
  cValue: string | undefined;
  key: Codec<unknown> | undefined;
  value: Codec<unknown> | undefined;
  perCpu: boolean;
}

export const MAP_LAYOUTS: readonly MapLayout[] = [
  {
    name: MapNames.endpoints,
    cKey: 'endpoint_key',
    cValue: 'endpoint_info',
    key: endpointKey,
    value: endpointInfo,
    perCpu: false,
  },
  {
    name: MapNames.ipcache,
    cKey: 'ipcache_key',
    cValue: 'ipcache_value',
    key: ipcacheKey,
    value: ipcacheValue,
    perCpu: false,
  },
  {
    name: MapNames.ct4,
    cKey: 'ct4_key',
    cValue: 'ct_entry',
    key: ct4Key,
    value: ctEntry,
    perCpu: false,
  },
  {
    name: MapNames.metrics,
    cKey: 'metrics_key',
    cValue: 'metrics_value',
    key: metricsKey,
    value: metricsValue,
    perCpu: true,
  },
  {
    name: MapNames.eventStats,
    cKey: undefined,
    cValue: 'event_stats',
    key: u32Key,
    value: eventStats,
    perCpu: true,
  },
  {
    name: MapNames.events,
    cKey: undefined,
    cValue: undefined,
    key: undefined,
    value: undefined,
    perCpu: false,
  },
];

/** Structs that travel on the events ring buffer. */
export const EVENT_LAYOUTS: readonly { cType: string; codec: Codec<unknown> }[] = [
  { cType: 'trace_notify', codec: traceNotify },
  { cType: 'drop_notify', codec: dropNotify },
];
