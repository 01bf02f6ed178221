// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The node program on the underlay device (the node's uplink on the shared segment).
 *   cil_from_netdev: tc ingress. Pod traffic arriving natively routed from another node is
 *                    handed to the destination pod: with BPF host routing the endpoint's
 *                    ingress side runs here and bpf_redirect_peer puts the packet straight
 *                    into the pod's namespace; with legacy host routing it goes to the pod's
 *                    host veth, whose to-container program does that part. Everything else
 *                    (node traffic, VXLAN UDP for the overlay device, ARP, IPv6) goes to the
 *                    stack untouched.
 *   cil_to_netdev:   tc egress. Counts pod traffic leaving the node; the place where
 *                    masquerading and NodePort replies will be handled.
 * The underlay carries traffic that is not ours, so nothing here drops except malformed IPv4. */

#include "lib/common.h"
#include "lib/config.h"
#include "lib/maps.h"
#include "lib/drop.h"
#include "lib/notify.h"
#include "lib/pkt.h"
#include "lib/conntrack.h"
#include "lib/policy.h"
#include "lib/lxc.h"

#define THIS_FILE FILE_BPF_HOST

static __always_inline int handle_ipv4_from_netdev(struct __sk_buff *skb)
{
	struct notify_ctx nc = { .ifindex = skb->ifindex };
	struct ipcache_value *info;
	struct endpoint_info *ep;
	struct pkt4 p;
	int ret;

	ret = parse_ipv4(skb, &p);
	if (ret < 0)
		return DROP(skb, -ret, METRIC_DIR_INGRESS, &nc);

	ep = lookup_endpoint4(p.daddr);
	if (!ep || (ep->flags & ENDPOINT_F_HOST))
		return TC_ACT_OK;

	/* Natively routed: the sender's identity comes from the ipcache. */
	info = lookup_ipcache4(p.saddr, cfg_cluster_id);
	nc.src_identity = info ? info->identity : IDENTITY_WORLD;
	nc.dst_identity = ep->identity;
	nc.dst_id = ep->endpoint_id;
	nc.source = ep->endpoint_id;

	send_trace(skb, TRACE_FROM_NETWORK, TRACE_REASON_UNKNOWN, &nc);
	if (host_routing_bpf()) {
		ret = ipv4_dec_ttl(skb, p.ttl);
		if (ret < 0)
			return DROP(skb, -ret, METRIC_DIR_INGRESS, &nc);
		ret = ipv4_to_endpoint(skb, &p, ep, nc.src_identity, 0, THIS_FILE);
		if (ret != TC_ACT_OK)
			return ret;
		/* into the pod's namespace: the host veth's egress and its program are skipped */
		return bpf_redirect_peer(ep->ifindex, 0);
	}
	/* Legacy host routing: the node's stack forwards to the pod's host veth, whose to-container
	 * program applies the pod's side with the identity carried in the mark. Going through the
	 * stack is what lets netfilter translate back replies of connections it translated on the
	 * way out (kube-proxy's Service DNAT from a pod on this node). */
	skb->mark = identity_to_mark(nc.src_identity);
	return TC_ACT_OK;
}

SEC("tc")
int cil_from_netdev(struct __sk_buff *skb)
{
	struct notify_ctx nc = { .ifindex = skb->ifindex };
	__be16 proto;

	if (load_eth_proto(skb, &proto) < 0)
		return DROP(skb, DROP_INVALID, METRIC_DIR_INGRESS, &nc);
	if (proto == bpf_htons(ETH_P_IP))
		return handle_ipv4_from_netdev(skb);
	return TC_ACT_OK;
}

SEC("tc")
int cil_to_netdev(struct __sk_buff *skb)
{
	struct notify_ctx nc = { .ifindex = skb->ifindex };
	struct endpoint_info *ep;
	__be16 proto;
	__be32 saddr;

	if (load_eth_proto(skb, &proto) < 0 || proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + offsetof(struct iphdr, saddr), &saddr,
			       sizeof(saddr)) < 0)
		return TC_ACT_OK;
	ep = lookup_endpoint4(saddr);
	if (!ep || (ep->flags & ENDPOINT_F_HOST))
		return TC_ACT_OK;
	nc.source = ep->endpoint_id;
	nc.src_identity = ep->identity;
	update_metrics(skb->len, METRIC_DIR_EGRESS, 0);
	send_trace(skb, TRACE_TO_NETWORK, TRACE_REASON_UNKNOWN, &nc);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
