/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The destination endpoint's ingress side: conntrack in the endpoint's inbound direction, the
 * ingress policy point, the MAC rewrite for the pod's interface, metrics and the to-lxc trace.
 * One implementation for both places that deliver to a pod: the endpoint program on the host
 * veth's egress (to-container), and, with BPF host routing, the node program on the underlay,
 * which then hands the packet to the pod's namespace with bpf_redirect_peer and never passes
 * the host veth. */
#pragma once

#include "common.h"
#include "config.h"
#include "conntrack.h"
#include "maps.h"
#include "notify.h"
#include "pkt.h"
#include "policy.h"

/* Returns TC_ACT_OK when the packet may go to `ep` (it has been rewritten, accounted and
 * traced), or TC_ACT_SHOT once the drop is reported. `file` is the calling program's FILE_*:
 * the drop's line is this header's. `ct_flags` (CT_F_*) go into the conntrack entry if the
 * packet starts a connection. */
static __always_inline int ipv4_to_endpoint(struct __sk_buff *skb, const struct pkt4 *p,
					    const struct endpoint_info *ep, __u32 src_identity,
					    __u16 ct_flags, __u8 file)
{
	struct notify_ctx nc = {
		.source = ep->endpoint_id,
		.src_identity = src_identity,
		.dst_identity = ep->identity,
		.dst_id = ep->endpoint_id,
		/* the endpoint's interface, wherever the program runs (as Cilium reports it) */
		.ifindex = ep->ifindex,
	};
	struct policy_verdict pv;
	struct ct4_key tuple;
	enum ct_status ct;
	__u32 now;
	int ret;

	/* identities travel between our programs in the mark; the pod must not see it */
	skb->mark = 0;

	if (p->is_fragment)
		return DROP_FILE(skb, DROP_FRAG_NOSUPPORT, METRIC_DIR_INGRESS, &nc, file);

	now = now_seconds();
	ct = ct4_lookup(p, TUPLE_F_IN, skb->len, &tuple, now, 0);
	if (ct == CT_NEW) {
		pv = policy_can_ingress4(ep, src_identity, &tuple);
		if (pv.reason)
			return DROP_FILE(skb, pv.reason, METRIC_DIR_INGRESS, &nc, file);
		ret = ct4_create(&tuple, p, skb->len, src_identity, ep->ifindex, pv.verdict, now,
				 ct_flags);
		if (ret < 0)
			return DROP_FILE(skb, -ret, METRIC_DIR_INGRESS, &nc, file);
	}

	if (!mac_is_zero(ep->mac)) {
		ret = rewrite_macs(skb, ep->mac, ep->node_mac);
		if (ret < 0)
			return DROP_FILE(skb, -ret, METRIC_DIR_INGRESS, &nc, file);
	}

	update_metrics(skb->len, METRIC_DIR_INGRESS, 0);
	send_trace(skb, TRACE_TO_LXC, ct, &nc);
	return TC_ACT_OK;
}
