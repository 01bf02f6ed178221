/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Load-time constants. The loader writes them into .rodata before the object is loaded, so the
 * verifier sees them as constants and prunes dead branches; nothing is recompiled per node.
 * Every name here is part of the loader's contract (packages/bpf/src/datapath/config.ts), and
 * every default equals DEFAULT_DATAPATH_CONFIG there (config-defaults.test.ts holds them to it). */
#pragma once

#include "common.h"

#define TUNNEL_MODE_NATIVE 0
#define TUNNEL_MODE_VXLAN 1

/* How pod traffic crosses the node in native routing (Cilium's "BPF host routing"). */
#define HOST_ROUTING_LEGACY 0
#define HOST_ROUTING_BPF 1

#define TRACE_MODE_OFF 0
/* Only the first packet of each connection direction (CT new) and drops are reported. */
#define TRACE_MODE_NEW 1
#define TRACE_MODE_ALL 2

/* Routing: 0 = native routing (packets to other nodes go to the stack), 1 = VXLAN. */
volatile const __u32 cfg_tunnel_mode = TUNNEL_MODE_NATIVE;
/* ifindex of the collect_md VXLAN device in the node's network namespace. */
volatile const __u32 cfg_tunnel_ifindex = 0;
/* HOST_ROUTING_BPF: the endpoint program forwards pod traffic for other nodes itself (FIB
 * lookup, bpf_redirect/bpf_redirect_neigh) instead of handing it to the stack, and the node
 * program runs the destination endpoint's ingress side and delivers with bpf_redirect_peer
 * straight into the pod's namespace. HOST_ROUTING_LEGACY: the stack forwards, and arriving
 * packets pass the host veth (the endpoint's to-container program). Only native routing uses
 * it: see host_routing_bpf(). Legacy by default: BPF host routing bypasses the node's netfilter,
 * which kube-proxy's Service translation needs. */
volatile const __u32 cfg_host_routing = HOST_ROUTING_LEGACY;
/* This node's underlay IPv4 address (network byte order); 0 when unknown. */
volatile const __u32 cfg_node_ipv4 = 0;
volatile const __u32 cfg_cluster_id = 0;
volatile const __u32 cfg_trace_mode = TRACE_MODE_NEW;
/* Answer every ARP request from a pod (except for its own address) with the host-side veth
 * MAC, so pods need no static neighbour entry for their gateway. */
volatile const __u32 cfg_arp_responder = 1;

/* Conntrack lifetimes in seconds (Cilium's agent defaults since 1.15: established TCP 8000s,
 * SYN 60s, closing 10s, non-TCP 60s). */
volatile const __u32 cfg_ct_tcp_established = 8000;
volatile const __u32 cfg_ct_tcp_syn = 60;
volatile const __u32 cfg_ct_tcp_close = 10;
volatile const __u32 cfg_ct_any = 60;

/* BPF host routing applies to native routing only. In VXLAN mode the pod CIDRs are not routed
 * on the underlay, so what leaves the node outside the tunnel (the world, other nodes) depends
 * on the node's netfilter (a masquerade rule), which FIB redirects would bypass: the stack
 * forwards there, as with legacy host routing. The loader writes LEGACY in VXLAN mode as well;
 * this keeps the programs right whatever the constants say. */
static __always_inline int host_routing_bpf(void)
{
	return cfg_tunnel_mode == TUNNEL_MODE_NATIVE && cfg_host_routing == HOST_ROUTING_BPF;
}
