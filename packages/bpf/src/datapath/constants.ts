// Numbers shared with bpf/lib/*.h. Drop reasons, trace observation points and message types use
// Cilium's numbering so that monitor and Hubble tooling reads them. Reserved identities are the
// vocabulary's (@ciliate/contracts); datapath/reserved.test.ts holds the header to them.

/** Versioned map names (bpf/lib/maps.h). A layout change bumps the version. */
export const MapNames = {
  endpoints: 'cil_ep_v1',
  ipcache: 'cil_ipcache_v1',
  ct4: 'cil_ct4_v1',
  metrics: 'cil_metrics_v1',
  events: 'cil_events_v1',
  eventStats: 'cil_evstat_v1',
} as const;

/** Object files built from bpf/*.c and their entry programs. */
export const Programs = {
  lxc: { object: 'bpf_lxc', fromContainer: 'cil_from_container', toContainer: 'cil_to_container' },
  host: { object: 'bpf_host', fromNetdev: 'cil_from_netdev', toNetdev: 'cil_to_netdev' },
  overlay: { object: 'bpf_overlay', fromOverlay: 'cil_from_overlay', toOverlay: 'cil_to_overlay' },
  xdp: { object: 'bpf_xdp', entry: 'cil_xdp_entry' },
} as const;

export const Family = { IPV4: 1, IPV6: 2 } as const;

export const EndpointFlags = { HOST: 0x1 } as const;
export const IpcacheFlags = { TUNNEL_IPV6: 0x1, SKIP_TUNNEL: 0x2 } as const;

/** Which side of the endpoint a conntrack tuple was seen on. */
export const TupleFlags = { OUT: 0x1, IN: 0x2 } as const;
export const CtFlags = {
  TX_CLOSING: 0x1,
  RX_CLOSING: 0x2,
  SEEN_NON_SYN: 0x4,
  SEEN_REPLY: 0x8,
  /** First packet delivered by the node's stack: replies go back through it (NAT undone). */
  VIA_STACK: 0x10,
} as const;
export const CtVerdict = { ALLOWED: 0 } as const;

export const MetricDir = { INGRESS: 1, EGRESS: 2 } as const;
export const METRIC_REASON_FORWARDED = 0;

export const NotifyType = { DROP: 1, DEBUG: 2, CAPTURE: 3, TRACE: 4, POLICY_VERDICT: 5 } as const;

export const TraceObservationPoint = {
  TO_LXC: 0,
  TO_PROXY: 1,
  TO_HOST: 2,
  TO_STACK: 3,
  TO_OVERLAY: 4,
  FROM_LXC: 5,
  FROM_PROXY: 6,
  FROM_HOST: 7,
  FROM_STACK: 8,
  FROM_OVERLAY: 9,
  FROM_NETWORK: 10,
  TO_NETWORK: 11,
} as const;

/** Hubble's names of the observation points, by number. */
export const TRACE_POINT_NAMES: Readonly<Record<number, string>> = {
  0: 'to-endpoint',
  1: 'to-proxy',
  2: 'to-host',
  3: 'to-stack',
  4: 'to-overlay',
  5: 'from-endpoint',
  6: 'from-proxy',
  7: 'from-host',
  8: 'from-stack',
  9: 'from-overlay',
  10: 'from-network',
  11: 'to-network',
};

export const TraceReason = {
  CT_NEW: 0,
  CT_ESTABLISHED: 1,
  CT_REPLY: 2,
  CT_RELATED: 3,
  UNKNOWN: 255,
} as const;
export const TRACE_REASON_NAMES: Readonly<Record<number, string>> = {
  0: 'new',
  1: 'established',
  2: 'reply',
  3: 'related',
  255: 'unknown',
};

export const TraceMode = { off: 0, new: 1, all: 2 } as const;
export const TunnelMode = { native: 0, vxlan: 1 } as const;
/** bpf: pod traffic crosses the node without the stack (FIB lookup and redirect on the way out,
 * bpf_redirect_peer into the pod on the way in); legacy: the stack forwards, arriving packets
 * pass the host veth. bpf/lib/config.h HOST_ROUTING_*. */
export const HostRouting = { legacy: 0, bpf: 1 } as const;

export const SourceFile: Readonly<Record<number, string>> = {
  1: 'bpf_lxc.c',
  2: 'bpf_host.c',
  3: 'bpf_overlay.c',
  4: 'bpf_xdp.c',
};

export const CAPTURE_LEN = 128;
export const NOTIFY_VERSION = 1;

/** Drop reasons: code -> [Hubble enum name, Cilium's text]. */
export const DROP_REASONS: Readonly<Record<number, readonly [string, string]>> = {
  130: ['INVALID_SOURCE_MAC', 'Invalid source mac'],
  131: ['INVALID_DESTINATION_MAC', 'Invalid destination mac'],
  132: ['INVALID_SOURCE_IP', 'Invalid source ip'],
  133: ['POLICY_DENIED', 'Policy denied'],
  134: ['INVALID_PACKET_DROPPED', 'Invalid packet'],
  135: ['CT_TRUNCATED_OR_INVALID_HEADER', 'CT: Truncated or invalid header'],
  136: ['CT_MISSING_TCP_ACK_FLAG', 'Fragmentation needed'],
  137: ['CT_UNKNOWN_L4_PROTOCOL', 'CT: Unknown L4 protocol'],
  138: ['CT_CANNOT_CREATE_ENTRY_FROM_PACKET', "CT: Can't create entry from packet"],
  139: ['UNSUPPORTED_L3_PROTOCOL', 'Unsupported L3 protocol'],
  140: ['MISSED_TAIL_CALL', 'Missed tail call'],
  141: ['ERROR_WRITING_TO_PACKET', 'Error writing to packet'],
  142: ['UNKNOWN_L4_PROTOCOL', 'Unknown L4 protocol'],
  143: ['UNKNOWN_ICMPV4_CODE', 'Unknown ICMPv4 code'],
  144: ['UNKNOWN_ICMPV4_TYPE', 'Unknown ICMPv4 type'],
  145: ['UNKNOWN_ICMPV6_CODE', 'Unknown ICMPv6 code'],
  146: ['UNKNOWN_ICMPV6_TYPE', 'Unknown ICMPv6 type'],
  147: ['ERROR_RETRIEVING_TUNNEL_KEY', 'Error retrieving tunnel key'],
  148: ['ERROR_RETRIEVING_TUNNEL_OPTIONS', 'Error retrieving tunnel options'],
  149: ['INVALID_GENEVE_OPTION', 'Invalid Geneve option'],
  150: ['UNKNOWN_L3_TARGET_ADDRESS', 'Unknown L3 target address'],
  151: ['STALE_OR_UNROUTABLE_IP', 'Stale or unroutable IP'],
  152: ['NO_MATCHING_LOCAL_CONTAINER_FOUND', 'No matching local container found'],
  153: ['ERROR_WHILE_CORRECTING_L3_CHECKSUM', 'Error while correcting L3 checksum'],
  154: ['ERROR_WHILE_CORRECTING_L4_CHECKSUM', 'Error while correcting L4 checksum'],
  155: ['CT_MAP_INSERTION_FAILED', 'CT: Map insertion failed'],
  156: ['INVALID_IPV6_EXTENSION_HEADER', 'Invalid IPv6 extension header'],
  157: ['IP_FRAGMENTATION_NOT_SUPPORTED', 'IP fragmentation not supported'],
  158: ['SERVICE_BACKEND_NOT_FOUND', 'Service backend not found'],
  160: ['NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT', 'No tunnel/encapsulation endpoint'],
  161: ['FAILED_TO_INSERT_INTO_PROXYMAP', 'Failed to insert into proxymap'],
  162: ['REACHED_EDT_RATE_LIMITING_DROP_HORIZON', 'Reached EDT rate-limiting drop horizon'],
  163: ['UNKNOWN_CONNECTION_TRACKING_STATE', 'Unknown connection tracking state'],
  164: ['LOCAL_HOST_IS_UNREACHABLE', 'Local host is unreachable'],
  165: [
    'NO_CONFIGURATION_AVAILABLE_TO_PERFORM_POLICY_DECISION',
    'No configuration available to perform policy decision',
  ],
  166: ['UNSUPPORTED_L2_PROTOCOL', 'Unsupported L2 protocol'],
  167: ['NO_MAPPING_FOR_NAT_MASQUERADE', 'No mapping for NAT masquerade'],
  168: ['UNSUPPORTED_PROTOCOL_FOR_NAT_MASQUERADE', 'Unsupported protocol for NAT masquerade'],
  169: ['FIB_LOOKUP_FAILED', 'FIB lookup failed'],
  170: ['ENCAPSULATION_TRAFFIC_IS_PROHIBITED', 'Encapsulation traffic is prohibited'],
  171: ['INVALID_IDENTITY', 'Invalid identity'],
  172: ['UNKNOWN_SENDER', 'Unknown sender'],
  173: ['NAT_NOT_NEEDED', 'NAT not needed'],
  174: ['IS_A_CLUSTERIP', 'Is a ClusterIP'],
  175: ['FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND', 'First logical datagram fragment not found'],
  176: ['FORBIDDEN_ICMPV6_MESSAGE', 'Forbidden ICMPv6 message'],
  177: ['DENIED_BY_LB_SRC_RANGE_CHECK', 'Denied by LB src range check'],
  178: ['SOCKET_LOOKUP_FAILED', 'Socket lookup failed'],
  179: ['SOCKET_ASSIGN_FAILED', 'Socket assign failed'],
  180: [
    'PROXY_REDIRECTION_NOT_SUPPORTED_FOR_PROTOCOL',
    'Proxy redirection not supported for protocol',
  ],
  181: ['POLICY_DENY', 'Policy denied by denylist'],
  182: ['VLAN_FILTERED', 'VLAN traffic disallowed by VLAN filter'],
  183: ['INVALID_VNI', 'Incorrect VNI from VTEP'],
  184: ['INVALID_TC_BUFFER', 'Failed to update or lookup TC buffer'],
  185: ['NO_SID', 'No SID was found for the IP address'],
  186: ['MISSING_SRV6_STATE', 'SRv6 state was removed during tail call'],
  187: ['NAT46', 'L3 translation from IPv4 to IPv6 failed (NAT46)'],
  188: ['NAT64', 'L3 translation from IPv6 to IPv4 failed (NAT64)'],
  189: ['AUTH_REQUIRED', 'Authentication required'],
  190: ['CT_NO_MAP_FOUND', 'No conntrack map found'],
  191: ['SNAT_NO_MAP_FOUND', 'No nat map found'],
  192: ['INVALID_CLUSTER_ID', 'Invalid ClusterID'],
  193: ['UNSUPPORTED_PROTOCOL_FOR_DSR_ENCAP', 'Unsupported packet protocol for DSR encapsulation'],
  194: ['NO_EGRESS_GATEWAY', 'No egress gateway found'],
  195: ['UNENCRYPTED_TRAFFIC', 'Traffic is unencrypted'],
  196: ['TTL_EXCEEDED', 'TTL exceeded'],
  197: ['NO_NODE_ID', 'No node ID found'],
};

/** The drop reasons bpf/lib/drop.h uses, by their C names. */
export const DropReason = {
  INVALID_SMAC: 130,
  INVALID_DMAC: 131,
  INVALID_SIP: 132,
  POLICY: 133,
  INVALID: 134,
  CT_INVALID_HDR: 135,
  FRAG_NEEDED: 136,
  CT_UNKNOWN_PROTO: 137,
  UNKNOWN_L3: 139,
  MISSED_TAIL_CALL: 140,
  WRITE_ERROR: 141,
  UNKNOWN_L4: 142,
  NO_TUNNEL_KEY: 147,
  UNROUTABLE: 151,
  NO_LXC: 152,
  CSUM_L3: 153,
  CSUM_L4: 154,
  CT_CREATE_FAILED: 155,
  FRAG_NOSUPPORT: 157,
  NO_SERVICE: 158,
  NO_TUNNEL_ENDPOINT: 160,
  UNKNOWN_CT: 163,
  INVALID_IDENTITY: 171,
  POLICY_DENY: 181,
  INVALID_VNI: 183,
  TTL_EXCEEDED: 196,
} as const;

export function dropReasonName(code: number): string {
  return DROP_REASONS[code]?.[0] ?? `DROP_REASON_${code}`;
}

export function dropReasonText(code: number): string {
  return DROP_REASONS[code]?.[1] ?? `Unknown drop reason ${code}`;
}
