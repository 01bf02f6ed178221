// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The overlay program on the node's collect_md VXLAN device.
 *   cil_from_overlay: tc ingress = decapsulated packets from other nodes. The VNI is the
 *                     sender's security identity; packets for a local pod go to the stack
 *                     with that identity in the mark, which forwards them to the host veth.
 *   cil_to_overlay:   tc egress = packets about to be encapsulated: counted, and given tunnel
 *                     metadata when the node's own stack routed them here (the place for
 *                     encryption and tunnel-side policy later). */

#include "lib/common.h"
#include "lib/config.h"
#include "lib/maps.h"
#include "lib/drop.h"
#include "lib/notify.h"
#include "lib/pkt.h"
#include "lib/tunnel.h"

#define THIS_FILE FILE_BPF_OVERLAY

static __always_inline int handle_ipv4_from_overlay(struct __sk_buff *skb)
{
	struct notify_ctx nc = { .ifindex = skb->ifindex };
	struct endpoint_info *ep;
	__u32 src_identity = 0;
	__be32 remote = 0;
	struct pkt4 p;
	int ret;

	ret = tunnel_source_identity(skb, &src_identity, &remote);
	if (ret < 0)
		return DROP(skb, -ret, METRIC_DIR_INGRESS, &nc);
	/* "host" on another node is remote-node here */
	if (src_identity == IDENTITY_HOST)
		src_identity = IDENTITY_REMOTE_NODE;
	nc.src_identity = src_identity;

	ret = parse_ipv4(skb, &p);
	if (ret < 0)
		return DROP(skb, -ret, METRIC_DIR_INGRESS, &nc);

	ep = lookup_endpoint4(p.daddr);
	if (!ep || (ep->flags & ENDPOINT_F_HOST)) {
		/* For the node itself: the stack takes it from here. */
		send_trace(skb, TRACE_FROM_OVERLAY, TRACE_REASON_UNKNOWN, &nc);
		return TC_ACT_OK;
	}
	nc.dst_identity = ep->identity;
	nc.dst_id = ep->endpoint_id;
	nc.source = ep->endpoint_id;

	send_trace(skb, TRACE_FROM_OVERLAY, TRACE_REASON_UNKNOWN, &nc);
	/* The node's stack forwards to the pod's host veth (whose to-container program takes the
	 * identity from the mark), so netfilter can translate back replies of connections it
	 * translated on the way out (kube-proxy's Service DNAT from a pod on this node). */
	skb->mark = identity_to_mark(src_identity);
	/* The inner frame is addressed to whatever MAC the sender chose, not this device's: tell
	 * the stack it is for this host so that it routes instead of dropping it. */
	bpf_skb_change_type(skb, 0 /* PACKET_HOST */);
	return TC_ACT_OK;
}

SEC("tc")
int cil_from_overlay(struct __sk_buff *skb)
{
	struct notify_ctx nc = { .ifindex = skb->ifindex };
	__be16 proto;

	if (load_eth_proto(skb, &proto) < 0)
		return DROP(skb, DROP_INVALID, METRIC_DIR_INGRESS, &nc);
	switch (proto) {
	case bpf_htons(ETH_P_IP):
		return handle_ipv4_from_overlay(skb);
	case bpf_htons(ETH_P_ARP):
		return TC_ACT_OK;
	default:
		return DROP(skb, DROP_UNKNOWN_L3, METRIC_DIR_INGRESS, &nc);
	}
}

/* Packets the node itself routes into the overlay device (the agent routes remote pod CIDRs
 * there in tunnel mode) arrive without tunnel metadata: the ipcache names the node to tunnel
 * to, and the VNI says "host", which the receiver turns into remote-node. Packets redirected by
 * the endpoint program already carry their metadata and the pod's identity. */
static __always_inline int handle_ipv4_to_overlay(struct __sk_buff *skb)
{
	struct notify_ctx nc = { .ifindex = skb->ifindex };
	struct bpf_tunnel_key key = {};
	struct ipcache_value *info;
	struct endpoint_info *ep;
	struct pkt4 p;
	int ret;

	ret = parse_ipv4(skb, &p);
	if (ret < 0)
		return DROP(skb, -ret, METRIC_DIR_EGRESS, &nc);
	ep = lookup_endpoint4(p.saddr);
	if (ep) {
		nc.source = ep->endpoint_id;
		nc.src_identity = ep->identity;
	}
	if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0) == 0) {
		update_metrics(skb->len, METRIC_DIR_EGRESS, 0);
		return TC_ACT_OK;
	}

	nc.src_identity = IDENTITY_HOST;
	info = lookup_ipcache4(p.daddr, cfg_cluster_id);
	if (!info || !info->tunnel_endpoint.ip4 || (info->flags & IPCACHE_F_TUNNEL_IPV6))
		return DROP(skb, DROP_NO_TUNNEL_ENDPOINT, METRIC_DIR_EGRESS, &nc);
	nc.dst_identity = info->identity;
	ret = tunnel_encap4(skb, info->tunnel_endpoint.ip4, IDENTITY_HOST);
	if (ret < 0)
		return DROP(skb, -ret, METRIC_DIR_EGRESS, &nc);
	update_metrics(skb->len, METRIC_DIR_EGRESS, 0);
	send_trace(skb, TRACE_TO_OVERLAY, TRACE_REASON_UNKNOWN, &nc);
	return TC_ACT_OK;
}

SEC("tc")
int cil_to_overlay(struct __sk_buff *skb)
{
	__be16 proto;

	if (load_eth_proto(skb, &proto) < 0 || proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	return handle_ipv4_to_overlay(skb);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
