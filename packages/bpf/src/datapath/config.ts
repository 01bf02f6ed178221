// The datapath's load-time constants (bpf/lib/config.h) from one typed, validated config.
import { tryParseIp } from '@ciliate/netaddr';

import { ipv4Bytes } from '../codec.js';
import { invalidValue } from '../errors.js';
import type { ConstantValue } from '../object.js';
import { HostRouting, TraceMode, TunnelMode } from './constants.js';

export interface CtTimeouts {
  /** Established TCP, seconds (Cilium ≥1.15: 8000; older releases: 21600). */
  tcpEstablished: number;
  /** TCP until the handshake completes. */
  tcpSyn: number;
  /** TCP after FIN in both directions or RST. */
  tcpClose: number;
  /** UDP, ICMP and every other protocol. */
  any: number;
}

export interface DatapathConfig {
  /** native: packets to other nodes go to the stack (routes installed by the agent). */
  tunnelMode: keyof typeof TunnelMode;
  /** ifindex of the collect_md VXLAN device (required in vxlan mode). */
  tunnelIfindex: number;
  /** Native routing: bpf (Cilium's BPF host routing: FIB lookup and redirect on the way out,
   * bpf_redirect_peer into the pod on the way in, netfilter on the node is bypassed for pod
   * traffic) or legacy (the node's stack forwards; arriving packets pass the host veth).
   * VXLAN mode always uses legacy: see effectiveHostRouting(). */
  hostRouting: keyof typeof HostRouting;
  /** This node's underlay IPv4 address. */
  nodeIPv4: string | undefined;
  clusterId: number;
  /** off, new (first packet of each flow direction, and drops), all (every packet). */
  traceMode: keyof typeof TraceMode;
  /** Answer pods' ARP requests for their gateway from the host-side veth. */
  arpResponder: boolean;
  ctTimeouts: CtTimeouts;
}

export const DEFAULT_CT_TIMEOUTS: CtTimeouts = {
  tcpEstablished: 8000,
  tcpSyn: 60,
  tcpClose: 10,
  any: 60,
};

export const DEFAULT_DATAPATH_CONFIG: DatapathConfig = {
  tunnelMode: 'native',
  tunnelIfindex: 0,
  // BPF host routing skips the node's netfilter, so kube-proxy's Service translation would miss
  // the replies: opt-in until the kube-proxy replacement translates Services in the datapath.
  hostRouting: 'legacy',
  nodeIPv4: undefined,
  clusterId: 0,
  traceMode: 'new',
  arpResponder: true,
  ctTimeouts: DEFAULT_CT_TIMEOUTS,
};

function u32Field(path: string, v: unknown, min = 0, max = 0xffff_ffff): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalidValue(path, v, `must be an integer ${min}-${max}`);
  }
  return v;
}

/** Fills defaults and validates; errors name the field (`datapath.tunnelIfindex: ...`). */
export function resolveDatapathConfig(
  partial: Partial<Omit<DatapathConfig, 'ctTimeouts'>> & { ctTimeouts?: Partial<CtTimeouts> } = {},
  path = 'datapath',
): DatapathConfig {
  const cfg: DatapathConfig = {
    ...DEFAULT_DATAPATH_CONFIG,
    ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)),
    ctTimeouts: { ...DEFAULT_CT_TIMEOUTS, ...(partial.ctTimeouts ?? {}) },
  };
  if (!(cfg.tunnelMode in TunnelMode)) {
    throw invalidValue(`${path}.tunnelMode`, cfg.tunnelMode, 'must be "native" or "vxlan"');
  }
  if (!Object.hasOwn(HostRouting, cfg.hostRouting)) {
    throw invalidValue(`${path}.hostRouting`, cfg.hostRouting, 'must be "bpf" or "legacy"');
  }
  if (!(cfg.traceMode in TraceMode)) {
    throw invalidValue(`${path}.traceMode`, cfg.traceMode, 'must be "off", "new" or "all"');
  }
  u32Field(`${path}.tunnelIfindex`, cfg.tunnelIfindex);
  if (cfg.tunnelMode === 'vxlan' && cfg.tunnelIfindex === 0) {
    throw invalidValue(`${path}.tunnelIfindex`, 0, 'required in vxlan mode (the VXLAN device)');
  }
  if (cfg.nodeIPv4 !== undefined && tryParseIp(cfg.nodeIPv4)?.family !== 4) {
    throw invalidValue(`${path}.nodeIPv4`, cfg.nodeIPv4, 'must be an IPv4 address');
  }
  u32Field(`${path}.clusterId`, cfg.clusterId, 0, 511);
  if (typeof cfg.arpResponder !== 'boolean') {
    throw invalidValue(`${path}.arpResponder`, cfg.arpResponder, 'must be a boolean');
  }
  for (const k of Object.keys(DEFAULT_CT_TIMEOUTS) as (keyof CtTimeouts)[]) {
    u32Field(`${path}.ctTimeouts.${k}`, cfg.ctTimeouts[k], 1, 0x7fff_ffff);
  }
  return cfg;
}

/**
 * The host routing the programs apply: BPF host routing is for native routing only. In VXLAN
 * mode what leaves the node outside the tunnel (the world, other nodes) relies on the node's
 * netfilter (masquerading), which FIB redirects would bypass, so the stack forwards there as
 * with legacy host routing (bpf/lib/config.h host_routing_bpf()).
 */
export function effectiveHostRouting(
  cfg: Pick<DatapathConfig, 'tunnelMode' | 'hostRouting'>,
): keyof typeof HostRouting {
  return cfg.tunnelMode === 'native' ? cfg.hostRouting : 'legacy';
}

/** The `volatile const` values of bpf/lib/config.h for this config. */
export function datapathConstants(cfg: DatapathConfig): Record<string, ConstantValue> {
  return {
    cfg_tunnel_mode: TunnelMode[cfg.tunnelMode],
    cfg_tunnel_ifindex: cfg.tunnelIfindex,
    cfg_host_routing: HostRouting[effectiveHostRouting(cfg)],
    // network byte order, as the programs compare it with packet addresses
    cfg_node_ipv4: cfg.nodeIPv4 ? ipv4Bytes(cfg.nodeIPv4) : 0,
    cfg_cluster_id: cfg.clusterId,
    cfg_trace_mode: TraceMode[cfg.traceMode],
    cfg_arp_responder: cfg.arpResponder ? 1 : 0,
    cfg_ct_tcp_established: cfg.ctTimeouts.tcpEstablished,
    cfg_ct_tcp_syn: cfg.ctTimeouts.tcpSyn,
    cfg_ct_tcp_close: cfg.ctTimeouts.tcpClose,
    cfg_ct_any: cfg.ctTimeouts.any,
  };
}
