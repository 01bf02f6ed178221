/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Trace and drop notifications on the events ring buffer. The header and the field order
 * follow Cilium's monitor messages (type, subtype, source endpoint, hash, original and captured
 * length, version), so a consumer can decode both the same way; the first CAPTURE_LEN bytes of
 * the packet travel inside the record. */
#pragma once

#include "common.h"
#include "config.h"
#include "drop.h"
#include "maps.h"

/* Monitor message types (Cilium's numbering). */
#define NOTIFY_TYPE_DROP 1
#define NOTIFY_TYPE_DEBUG 2
#define NOTIFY_TYPE_CAPTURE 3
#define NOTIFY_TYPE_TRACE 4
#define NOTIFY_TYPE_POLICY_VERDICT 5

/* Trace observation points (subtype of a trace notification). */
#define TRACE_TO_LXC 0
#define TRACE_TO_PROXY 1
#define TRACE_TO_HOST 2
#define TRACE_TO_STACK 3
#define TRACE_TO_OVERLAY 4
#define TRACE_FROM_LXC 5
#define TRACE_FROM_PROXY 6
#define TRACE_FROM_HOST 7
#define TRACE_FROM_STACK 8
#define TRACE_FROM_OVERLAY 9
#define TRACE_FROM_NETWORK 10
#define TRACE_TO_NETWORK 11

/* Trace reasons: the conntrack state of the packet. */
#define TRACE_REASON_CT_NEW 0
#define TRACE_REASON_CT_ESTABLISHED 1
#define TRACE_REASON_CT_REPLY 2
#define TRACE_REASON_CT_RELATED 3
#define TRACE_REASON_UNKNOWN 255

#define NOTIFY_VERSION 1
#define CAPTURE_LEN 128

#define NOTIFY_F_IPV6 0x1

#define NOTIFY_CAPTURE_HDR \
	__u8 type;         \
	__u8 subtype;      \
	__u16 source;      \
	__u32 hash;        \
	__u32 len_orig;    \
	__u16 len_cap;     \
	__u16 version;     \
	__u64 ktime;

struct trace_notify {
	NOTIFY_CAPTURE_HDR
	__u32 src_identity;
	__u32 dst_identity;
	__u16 dst_id;       /* destination endpoint id, 0 if not a local endpoint */
	__u8 reason;        /* TRACE_REASON_* */
	__u8 flags;         /* NOTIFY_F_* */
	__u32 ifindex;
	__u8 data[CAPTURE_LEN];
};

struct drop_notify {
	NOTIFY_CAPTURE_HDR
	__u32 src_identity;
	__u32 dst_identity;
	__u32 dst_id;
	__u16 line;         /* source line of the drop, for debugging */
	__u8 file;          /* FILE_* */
	__s8 ext_error;
	__u32 ifindex;
	__u32 pad;
	__u8 data[CAPTURE_LEN];
};

/* Ring buffer records have no BTF of their own (a ring buffer map has no value type, and
 * locals are not described), so these unused pointers put both layouts into the object's BTF
 * for the loader's layout check. */
#define BTF_EXPORT_TYPE(t) const struct t *const __btf_##t __attribute__((used)) = 0
BTF_EXPORT_TYPE(trace_notify);
BTF_EXPORT_TYPE(drop_notify);

static __always_inline void count_event(int lost)
{
	__u32 zero = 0;
	struct event_stats *s = bpf_map_lookup_elem(&cil_evstat_v1, &zero);

	if (!s)
		return;
	if (lost)
		s->lost += 1;
	else
		s->submitted += 1;
}

static __always_inline __u32 capture_len(const struct __sk_buff *skb)
{
	__u32 len = skb->len;

	return len > CAPTURE_LEN ? CAPTURE_LEN : len;
}

struct notify_ctx {
	__u16 source;       /* endpoint id observed */
	__u32 src_identity;
	__u32 dst_identity;
	__u32 dst_id;
	__u32 ifindex;
};

static __always_inline void send_trace(struct __sk_buff *skb, __u8 point, __u8 reason,
				       const struct notify_ctx *c)
{
	struct trace_notify *n;
	__u32 cap;

	if (cfg_trace_mode == TRACE_MODE_OFF)
		return;
	if (cfg_trace_mode == TRACE_MODE_NEW && reason != TRACE_REASON_CT_NEW)
		return;

	n = bpf_ringbuf_reserve(&cil_events_v1, sizeof(*n), 0);
	if (!n) {
		count_event(1);
		return;
	}
	cap = capture_len(skb);
	n->type = NOTIFY_TYPE_TRACE;
	n->subtype = point;
	n->source = c->source;
	n->hash = bpf_get_hash_recalc(skb);
	n->len_orig = skb->len;
	n->len_cap = cap;
	n->version = NOTIFY_VERSION;
	n->ktime = bpf_ktime_get_ns();
	n->src_identity = c->src_identity;
	n->dst_identity = c->dst_identity;
	n->dst_id = c->dst_id;
	n->reason = reason;
	n->flags = 0;
	n->ifindex = c->ifindex;
	if (cap < 1 || bpf_skb_load_bytes(skb, 0, n->data, cap) < 0)
		n->len_cap = 0;
	bpf_ringbuf_submit(n, 0);
	count_event(0);
}

static __always_inline void send_drop(struct __sk_buff *skb, __u8 reason, __u8 dir, __u8 file,
				      __u16 line, const struct notify_ctx *c)
{
	struct drop_notify *n;
	__u32 cap;

	update_metrics(skb->len, dir, reason);
	if (cfg_trace_mode == TRACE_MODE_OFF)
		return;

	n = bpf_ringbuf_reserve(&cil_events_v1, sizeof(*n), 0);
	if (!n) {
		count_event(1);
		return;
	}
	cap = capture_len(skb);
	n->type = NOTIFY_TYPE_DROP;
	n->subtype = reason;
	n->source = c->source;
	n->hash = bpf_get_hash_recalc(skb);
	n->len_orig = skb->len;
	n->len_cap = cap;
	n->version = NOTIFY_VERSION;
	n->ktime = bpf_ktime_get_ns();
	n->src_identity = c->src_identity;
	n->dst_identity = c->dst_identity;
	n->dst_id = c->dst_id;
	n->line = line;
	n->file = file;
	n->ext_error = 0;
	n->ifindex = c->ifindex;
	n->pad = 0;
	if (cap < 1 || bpf_skb_load_bytes(skb, 0, n->data, cap) < 0)
		n->len_cap = 0;
	bpf_ringbuf_submit(n, 0);
	count_event(0);
}

/* Reports the drop and returns the tc verdict, so call sites read `return DROP(...)`. */
#define DROP(skb, reason, dir, c) \
	(send_drop(skb, reason, dir, THIS_FILE, __LINE__, c), TC_ACT_SHOT)
/* The same from a shared header function: the caller passes its program's FILE_*. */
#define DROP_FILE(skb, reason, dir, c, file) \
	(send_drop(skb, reason, dir, file, __LINE__, c), TC_ACT_SHOT)
