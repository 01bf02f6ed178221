/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Connection tracking for IPv4. An endpoint's program looks a packet up in its own direction
 * first (an established flow it started or accepted), then reversed in the other direction (a
 * reply); otherwise the packet is new, policy decides, and an entry is created. Lifetimes follow
 * Cilium's timeouts, taken from load-time constants. Expired entries are ignored and
 * overwritten; the LRU map evicts the rest under pressure. */
#pragma once

#include "common.h"
#include "config.h"
#include "drop.h"
#include "maps.h"
#include "notify.h"
#include "pkt.h"

enum ct_status {
	CT_NEW = TRACE_REASON_CT_NEW,
	CT_ESTABLISHED = TRACE_REASON_CT_ESTABLISHED,
	CT_REPLY = TRACE_REASON_CT_REPLY,
};

static __always_inline void ct4_tuple(const struct pkt4 *p, __u8 dir, struct ct4_key *k)
{
	k->saddr = p->saddr;
	k->daddr = p->daddr;
	k->sport = p->sport;
	k->dport = p->dport;
	k->nexthdr = p->proto;
	k->flags = dir;
	k->pad = 0;
}

static __always_inline void ct4_reverse(const struct ct4_key *k, __u8 dir, struct ct4_key *r)
{
	r->saddr = k->daddr;
	r->daddr = k->saddr;
	r->sport = k->dport;
	r->dport = k->sport;
	r->nexthdr = k->nexthdr;
	r->flags = dir;
	r->pad = 0;
}

static __always_inline __u8 ct_other_dir(__u8 dir)
{
	return dir == TUPLE_F_OUT ? TUPLE_F_IN : TUPLE_F_OUT;
}

static __always_inline __u32 ct_lifetime(const struct ct_entry *e, __u8 proto, __u32 now)
{
	if (proto != IPPROTO_TCP)
		return now + cfg_ct_any;
	if ((e->flags & (CT_F_TX_CLOSING | CT_F_RX_CLOSING)) == (CT_F_TX_CLOSING | CT_F_RX_CLOSING))
		return now + cfg_ct_tcp_close;
	if (e->flags & CT_F_SEEN_NON_SYN)
		return now + cfg_ct_tcp_established;
	return now + cfg_ct_tcp_syn;
}

static __always_inline void ct_account(struct ct_entry *e, const struct pkt4 *p, __u64 bytes,
				       int reply, __u32 now)
{
	__u16 flags = e->flags;

	if (reply) {
		__sync_fetch_and_add(&e->packets_rev, 1);
		__sync_fetch_and_add(&e->bytes_rev, bytes);
		flags |= CT_F_SEEN_REPLY;
	} else {
		__sync_fetch_and_add(&e->packets_fwd, 1);
		__sync_fetch_and_add(&e->bytes_fwd, bytes);
	}
	if (p->proto == IPPROTO_TCP) {
		if (reply)
			e->rx_flags_seen |= p->tcp_flags;
		else
			e->tx_flags_seen |= p->tcp_flags;
		if (!(p->tcp_flags & TCP_FLAG_SYN))
			flags |= CT_F_SEEN_NON_SYN;
		if (p->tcp_flags & TCP_FLAG_RST)
			flags |= CT_F_TX_CLOSING | CT_F_RX_CLOSING;
		else if (p->tcp_flags & TCP_FLAG_FIN)
			flags |= reply ? CT_F_RX_CLOSING : CT_F_TX_CLOSING;
	}
	e->flags = flags;
	e->lifetime = ct_lifetime(e, p->proto, now);
}

/* Finds the packet's flow for an endpoint seen in direction `dir` (TUPLE_F_OUT for packets
 * leaving the endpoint, TUPLE_F_IN for packets entering it). On CT_NEW, `tuple` is the key to
 * create. `flags` (may be NULL) receives the entry's CT_F_* flags, 0 on CT_NEW. */
static __always_inline enum ct_status ct4_lookup(const struct pkt4 *p, __u8 dir, __u64 bytes,
						 struct ct4_key *tuple, __u32 now, __u16 *flags)
{
	struct ct4_key rev;
	struct ct_entry *e;

	if (flags)
		*flags = 0;
	ct4_tuple(p, dir, tuple);
	e = bpf_map_lookup_elem(&cil_ct4_v1, tuple);
	if (e && e->lifetime >= now) {
		/* A fresh SYN on a connection that was closing starts it over: policy is decided
		 * again and the counters restart. */
		if (p->proto == IPPROTO_TCP && (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN &&
		    (e->flags & (CT_F_TX_CLOSING | CT_F_RX_CLOSING)))
			return CT_NEW;
		ct_account(e, p, bytes, 0, now);
		if (flags)
			*flags = e->flags;
		return CT_ESTABLISHED;
	}

	ct4_reverse(tuple, ct_other_dir(dir), &rev);
	e = bpf_map_lookup_elem(&cil_ct4_v1, &rev);
	if (e && e->lifetime >= now) {
		ct_account(e, p, bytes, 1, now);
		if (flags)
			*flags = e->flags;
		return CT_REPLY;
	}
	return CT_NEW;
}

static __always_inline int ct4_create(const struct ct4_key *tuple, const struct pkt4 *p,
				      __u64 bytes, __u32 src_identity, __u32 ifindex, __u8 verdict,
				      __u32 now, __u16 flags)
{
	struct ct_entry e = {};

	e.flags = flags;
	e.src_identity = src_identity;
	e.ifindex = ifindex;
	e.policy_verdict = verdict;
	e.created = now;
	ct_account(&e, p, bytes, 0, now);
	if (bpf_map_update_elem(&cil_ct4_v1, tuple, &e, BPF_ANY) < 0)
		return -DROP_CT_CREATE_FAILED;
	return 0;
}
