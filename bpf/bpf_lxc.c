// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The endpoint program, attached to each pod's host-side veth.
 *   cil_from_container: tc ingress of the host veth = packets the pod sends (its egress).
 *   cil_to_container:   tc egress of the host veth  = packets delivered to the pod (its ingress).
 * One loaded object serves every endpoint of the node: the endpoint is found by address in the
 * endpoints map, so adding a pod needs only map entries and an attach, never a recompile. */

#include "lib/common.h"
#include "lib/config.h"
#include "lib/maps.h"
#include "lib/drop.h"
#include "lib/notify.h"
#include "lib/pkt.h"
#include "lib/conntrack.h"
#include "lib/policy.h"
#include "lib/lb.h"
#include "lib/tunnel.h"
#include "lib/arp.h"
#include "lib/fib.h"
#include "lib/lxc.h"

#define THIS_FILE FILE_BPF_LXC

static __always_inline int handle_ipv4_from_lxc(struct __sk_buff *skb)
{
	struct notify_ctx nc = { .ifindex = skb->ifindex };
	struct endpoint_info *ep, *dst_ep;
	struct ipcache_value *info;
	struct policy_verdict pv;
	struct ct4_key tuple;
	enum ct_status ct;
	struct pkt4 p;
	__u32 dst_identity, now;
	__u16 ct_flags;
	int ret;

	ret = parse_ipv4(skb, &p);
	if (ret < 0)
		return DROP(skb, -ret, METRIC_DIR_EGRESS, &nc);

	/* The source address must be the one this interface's endpoint owns: no spoofing. */
	ep = lookup_endpoint4(p.saddr);
	if (!ep || ep->ifindex != skb->ifindex)
		return DROP(skb, DROP_INVALID_SIP, METRIC_DIR_EGRESS, &nc);
	nc.source = ep->endpoint_id;
	nc.src_identity = ep->identity;

	if (p.is_fragment)
		return DROP(skb, DROP_FRAG_NOSUPPORT, METRIC_DIR_EGRESS, &nc);

	/* Service translation would happen here, before conntrack sees the backend address. */
	if (lb4_lookup_service(&p))
		return DROP(skb, DROP_NO_SERVICE, METRIC_DIR_EGRESS, &nc);

	dst_ep = lookup_endpoint4(p.daddr);
	info = lookup_ipcache4(p.daddr, cfg_cluster_id);
	if (dst_ep)
		dst_identity = dst_ep->identity;
	else if (info)
		dst_identity = info->identity;
	else
		dst_identity = IDENTITY_WORLD;
	nc.dst_identity = dst_identity;
	nc.dst_id = dst_ep ? dst_ep->endpoint_id : 0;

	now = now_seconds();
	ct = ct4_lookup(&p, TUPLE_F_OUT, skb->len, &tuple, now, &ct_flags);
	if (ct == CT_NEW) {
		pv = policy_can_egress4(ep, dst_identity, &tuple);
		if (pv.reason)
			return DROP(skb, pv.reason, METRIC_DIR_EGRESS, &nc);
		ret = ct4_create(&tuple, &p, skb->len, ep->identity, ep->ifindex, pv.verdict, now, 0);
		if (ret < 0)
			return DROP(skb, -ret, METRIC_DIR_EGRESS, &nc);
	}

	update_metrics(skb->len, METRIC_DIR_EGRESS, 0);
	send_trace(skb, TRACE_FROM_LXC, ct, &nc);

	/* A reply on a connection that the node's stack delivered to this endpoint (no identity
	 * mark: see handle_ipv4_to_lxc): netfilter may have translated it on the way in (portmap's
	 * hostPort DNAT) and only the stack undoes that, so the reply goes back through the stack,
	 * whatever the destination (another node, the tunnel or a pod on this node). */
	if (ct_flags & CT_F_VIA_STACK) {
		send_trace(skb, TRACE_TO_STACK, ct, &nc);
		return TC_ACT_OK;
	}

	if (dst_ep) {
		/* Local delivery: straight to the other pod's host veth, whose to-container program
		 * applies the destination's side (conntrack, policy, MACs). */
		ret = ipv4_dec_ttl(skb, p.ttl);
		if (ret < 0)
			return DROP(skb, -ret, METRIC_DIR_EGRESS, &nc);
		skb->mark = identity_to_mark(ep->identity);
		return bpf_redirect(dst_ep->ifindex, 0);
	}

	if (cfg_tunnel_mode == TUNNEL_MODE_VXLAN && info && info->tunnel_endpoint.ip4 &&
	    !(info->flags & (IPCACHE_F_SKIP_TUNNEL | IPCACHE_F_TUNNEL_IPV6))) {
		ret = tunnel_encap4(skb, info->tunnel_endpoint.ip4, ep->identity);
		if (ret < 0)
			return DROP(skb, -ret, METRIC_DIR_EGRESS, &nc);
		send_trace(skb, TRACE_TO_OVERLAY, ct, &nc);
		return bpf_redirect(cfg_tunnel_ifindex, 0);
	}

	/* Native routing. With BPF host routing the node's FIB is read here and the packet goes
	 * straight out of the egress device (whose to-netdev program still sees it); the node
	 * itself and whatever the FIB does not forward still go to the stack. Only destinations
	 * the ipcache knows as cluster endpoints or nodes take this path: anything else (world,
	 * a Service address no program here translates) goes through the stack, whose netfilter
	 * may translate it (kube-proxy's Service DNAT, masquerading to the outside). */
	if (host_routing_bpf() && info && dst_identity != IDENTITY_WORLD &&
	    dst_identity != IDENTITY_WORLD_IPV4) {
		struct bpf_fib_lookup fib = {};

		ret = fib_lookup4(skb, &p, &fib);
		if (ret < 0)
			return DROP(skb, -ret, METRIC_DIR_EGRESS, &nc);
		if (ret != FIB_FWD_STACK) {
			nc.ifindex = fib.ifindex;
			send_trace(skb, TRACE_TO_NETWORK, ct, &nc);
			return fib_redirect4(&fib, ret);
		}
	}

	send_trace(skb, TRACE_TO_STACK, ct, &nc);
	return TC_ACT_OK;
}

SEC("tc")
int cil_from_container(struct __sk_buff *skb)
{
	struct notify_ctx nc = { .ifindex = skb->ifindex };
	__be16 proto;
	int ret;

	if (load_eth_proto(skb, &proto) < 0)
		return DROP(skb, DROP_INVALID, METRIC_DIR_EGRESS, &nc);

	switch (proto) {
	case bpf_htons(ETH_P_IP):
		return handle_ipv4_from_lxc(skb);
	case bpf_htons(ETH_P_ARP):
		if (!cfg_arp_responder)
			return TC_ACT_OK;
		ret = arp_respond(skb, 0);
		if (ret < 0)
			return DROP(skb, -ret, METRIC_DIR_EGRESS, &nc);
		if (ret == 1)
			return bpf_redirect(skb->ifindex, 0);
		return TC_ACT_OK;
	default:
		/* IPv6 comes with dual stack; until then it is refused, as Cilium does with IPv6
		 * disabled. */
		return DROP(skb, DROP_UNKNOWN_L3, METRIC_DIR_EGRESS, &nc);
	}
}

/* Packets that reach the pod through its host veth: from local pods, from the node and the
 * stack, from the overlay, and from the underlay with legacy host routing. */
static __always_inline int handle_ipv4_to_lxc(struct __sk_buff *skb)
{
	struct notify_ctx nc = { .ifindex = skb->ifindex };
	struct endpoint_info *ep, *src_ep;
	struct ipcache_value *info;
	struct pkt4 p;
	__u32 src_identity;
	__u16 ct_flags = 0;
	int ret;

	ret = parse_ipv4(skb, &p);
	if (ret < 0)
		return DROP(skb, -ret, METRIC_DIR_INGRESS, &nc);

	ep = lookup_endpoint4(p.daddr);
	if (!ep || ep->ifindex != skb->ifindex)
		return DROP(skb, DROP_NO_LXC, METRIC_DIR_INGRESS, &nc);

	/* Who sent it: our own programs leave the identity in the mark (from another local pod,
	 * from the overlay or the underlay); otherwise the ipcache knows the address. */
	src_identity = identity_from_mark(skb->mark);
	if (src_identity == IDENTITY_UNKNOWN) {
		/* No mark: the node's stack delivered it (the node itself, or a packet the node
		 * forwarded, possibly after netfilter translated it). Replies must take the same way
		 * back; the conntrack entry this creates remembers it. */
		ct_flags = CT_F_VIA_STACK;
		src_ep = lookup_endpoint4(p.saddr);
		if (src_ep) {
			src_identity = src_ep->identity;
		} else {
			info = lookup_ipcache4(p.saddr, cfg_cluster_id);
			src_identity = info ? info->identity : IDENTITY_WORLD;
		}
	}
	return ipv4_to_endpoint(skb, &p, ep, src_identity, ct_flags, THIS_FILE);
}

SEC("tc")
int cil_to_container(struct __sk_buff *skb)
{
	struct notify_ctx nc = { .ifindex = skb->ifindex };
	__be16 proto;

	if (load_eth_proto(skb, &proto) < 0)
		return DROP(skb, DROP_INVALID, METRIC_DIR_INGRESS, &nc);

	switch (proto) {
	case bpf_htons(ETH_P_IP):
		return handle_ipv4_to_lxc(skb);
	case bpf_htons(ETH_P_ARP):
		/* the node resolving the pod, or our own ARP replies on their way back */
		return TC_ACT_OK;
	default:
		return DROP(skb, DROP_UNKNOWN_L3, METRIC_DIR_INGRESS, &nc);
	}
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
