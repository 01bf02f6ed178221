/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Forwarding a pod's packet to another node without the stack (BPF host routing): the node's
 * own FIB, read with bpf_fib_lookup in the node's namespace, picks the egress device and the
 * next hop; the program then does what the stack's forwarding would (TTL, MACs) and redirects.
 * Whatever the FIB does not forward (the node's own addresses, blackhole, prohibit, unreachable,
 * forwarding disabled, a packet too big for the egress MTU) goes to the stack as before, which
 * answers it properly (local delivery, ICMP errors). */
#pragma once

#include "common.h"
#include "drop.h"
#include "pkt.h"

#define CIL_AF_INET 2 /* AF_INET, without libc headers */

enum fib_fwd {
	FIB_FWD_STACK = 0,   /* not for us to forward: TC_ACT_OK */
	FIB_FWD_REDIRECT,    /* neighbour known, MACs written: bpf_redirect(fib->ifindex) */
	FIB_FWD_NEIGH,       /* neighbour unresolved: bpf_redirect_neigh lets the kernel resolve it */
};

/* Returns an enum fib_fwd, or a negated drop reason. On FIB_FWD_REDIRECT/NEIGH the TTL is
 * already decremented and fib->ifindex is the egress device, fib->ipv4_dst the next hop. */
static __always_inline int fib_lookup4(struct __sk_buff *skb, const struct pkt4 *p,
				       struct bpf_fib_lookup *fib)
{
	long rc;
	int ret;

	fib->family = CIL_AF_INET;
	fib->tos = p->tos;
	fib->l4_protocol = p->proto;
	if (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP) {
		fib->sport = p->sport;
		fib->dport = p->dport;
	}
	/* 0: the kernel checks the MTU against the skb itself, GSO-aware */
	fib->tot_len = 0;
	/* the lookup sees the packet as arriving on the host veth, as the stack would */
	fib->ifindex = skb->ifindex;
	fib->ipv4_src = p->saddr;
	fib->ipv4_dst = p->daddr;

	rc = bpf_fib_lookup(skb, fib, sizeof(*fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return FIB_FWD_STACK;

	ret = ipv4_dec_ttl(skb, p->ttl);
	if (ret < 0)
		return ret;
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return FIB_FWD_NEIGH;
	ret = rewrite_macs(skb, fib->dmac, fib->smac);
	if (ret < 0)
		return ret;
	return FIB_FWD_REDIRECT;
}

static __always_inline int fib_redirect4(struct bpf_fib_lookup *fib, int how)
{
	struct bpf_redir_neigh nh = {};

	if (how == FIB_FWD_REDIRECT)
		return bpf_redirect(fib->ifindex, 0);
	nh.nh_family = CIL_AF_INET;
	nh.ipv4_nh = fib->ipv4_dst;
	return bpf_redirect_neigh(fib->ifindex, &nh, sizeof(nh), 0);
}
