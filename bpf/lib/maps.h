/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The maps every program shares. They are pinned by name, so each object that includes this
 * header reuses the same kernel map, and the maps (with all state) outlive a reload of the
 * programs and a restart of the agent. A layout change must bump the version in the name:
 * libbpf refuses to reuse a pinned map whose key or value size differs, and a silent
 * reinterpretation of old bytes would be worse.
 *
 * The TypeScript views of these structs live in packages/bpf/src/datapath/layouts.ts; a test
 * compares them with this object's BTF field by field. */
#pragma once

#include "common.h"

#define ENDPOINTS_MAP_SIZE 65535
#define IPCACHE_MAP_SIZE 512000
#define CT_MAP_SIZE 524288
#define METRICS_MAP_SIZE 1024
#define EVENTS_RINGBUF_SIZE (4 * 1024 * 1024)

/* ---- endpoints: local pod address -> where and who it is ------------------------------- */

struct endpoint_key {
	union ip_addr addr;
	__u8 family;
	__u8 pad1;
	__u16 pad2;
};

#define ENDPOINT_F_HOST 0x1 /* the node itself, not a pod */

struct endpoint_info {
	__u32 ifindex;      /* host-side veth */
	__u16 endpoint_id;
	__u16 flags;
	__u8 mac[6];        /* the pod's interface */
	__u8 node_mac[6];   /* the host-side veth */
	__u32 identity;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct endpoint_key);
	__type(value, struct endpoint_info);
	__uint(max_entries, ENDPOINTS_MAP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cil_ep_v1 SEC(".maps");

/* ---- ipcache: prefix -> identity and tunnel endpoint (longest prefix match) ------------ */

/* prefixlen counts the bits after it: cluster_id, pad and family always match (32 bits),
 * then the address prefix. */
#define IPCACHE_STATIC_PREFIX_BITS 32

struct ipcache_key {
	__u32 prefixlen;
	__u16 cluster_id;
	__u8 pad;
	__u8 family;
	union ip_addr addr;
};

#define IPCACHE_F_TUNNEL_IPV6 0x1   /* tunnel_endpoint is IPv6 */
#define IPCACHE_F_SKIP_TUNNEL 0x2   /* reachable natively even in tunnel mode */

struct ipcache_value {
	__u32 identity;
	union ip_addr tunnel_endpoint; /* zero: no tunnel, route natively */
	__u8 flags;
	__u8 encrypt_key;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct ipcache_key);
	__type(value, struct ipcache_value);
	__uint(max_entries, IPCACHE_MAP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cil_ipcache_v1 SEC(".maps");

/* ---- conntrack (IPv4; IPv6 gets its own map with a 16-byte address key) ----------------- */

/* The tuple is stored in the direction of the connection's first packet as seen by one
 * endpoint, with flags telling which side of that endpoint it was on. A connection between two
 * local pods has two entries: the client's egress one and the server's ingress one. */
#define TUPLE_F_OUT 0x1 /* from the endpoint (egress) */
#define TUPLE_F_IN 0x2  /* to the endpoint (ingress) */

struct ct4_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport; /* ICMP echo: the identifier in sport (request) or dport (reply) */
	__be16 dport;
	__u8 nexthdr;
	__u8 flags;
	__u16 pad;
};

#define CT_F_TX_CLOSING 0x1    /* FIN (or RST) seen in the original direction */
#define CT_F_RX_CLOSING 0x2    /* FIN (or RST) seen in the reply direction */
#define CT_F_SEEN_NON_SYN 0x4  /* the handshake completed */
#define CT_F_SEEN_REPLY 0x8
/* The connection's first packet reached the endpoint through the node's stack (no identity
 * mark from our programs): netfilter may have translated it (portmap's hostPort DNAT), so the
 * endpoint's replies go back through the stack, never straight to a local pod, the tunnel or
 * (BPF host routing) the FIB's egress device. */
#define CT_F_VIA_STACK 0x10

/* Policy verdict cached with the flow; only "allowed" exists until policy enforcement lands. */
#define CT_VERDICT_ALLOWED 0

struct ct_entry {
	__u64 packets_fwd;
	__u64 bytes_fwd;
	__u64 packets_rev;
	__u64 bytes_rev;
	__u32 lifetime;       /* bpf monotonic seconds at which the entry expires */
	__u16 flags;          /* CT_F_* */
	__u16 rev_nat_index;  /* service LB: reverse NAT entry to apply to replies; 0 = none */
	__u32 src_identity;   /* identity of the connection's originator */
	__u8 policy_verdict;  /* CT_VERDICT_* cached at creation */
	__u8 tx_flags_seen;   /* TCP flags seen in the original direction */
	__u8 rx_flags_seen;   /* TCP flags seen in the reply direction */
	__u8 pad;
	__u32 ifindex;        /* the endpoint's host-side veth */
	__u32 created;        /* bpf monotonic seconds */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ct4_key);
	__type(value, struct ct_entry);
	__uint(max_entries, CT_MAP_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cil_ct4_v1 SEC(".maps");

/* ---- metrics: per (reason, direction) packet and byte counters -------------------------- */

/* reason 0 counts forwarded packets; anything else is a drop reason (drop.h). */
#define METRIC_DIR_INGRESS 1
#define METRIC_DIR_EGRESS 2

struct metrics_key {
	__u8 reason;
	__u8 dir;
	__u16 pad;
};

struct metrics_value {
	__u64 count;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct metrics_key);
	__type(value, struct metrics_value);
	__uint(max_entries, METRICS_MAP_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cil_metrics_v1 SEC(".maps");

/* ---- events: trace and drop notifications for the agent (and Hubble-style flows) -------- */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EVENTS_RINGBUF_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cil_events_v1 SEC(".maps");

/* Events that could not be reserved because the agent is not reading fast enough. Forwarding
 * never waits for userspace; the loss is counted instead. */
struct event_stats {
	__u64 submitted;
	__u64 lost;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct event_stats);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cil_evstat_v1 SEC(".maps");

/* ---- lookups ----------------------------------------------------------------------------- */

static __always_inline struct endpoint_info *lookup_endpoint4(__be32 addr)
{
	struct endpoint_key key = {};

	key.addr.ip4 = addr;
	key.family = CIL_FAMILY_IPV4;
	return bpf_map_lookup_elem(&cil_ep_v1, &key);
}

static __always_inline struct ipcache_value *lookup_ipcache4(__be32 addr, __u16 cluster_id)
{
	struct ipcache_key key = {};

	key.prefixlen = IPCACHE_STATIC_PREFIX_BITS + 32;
	key.cluster_id = cluster_id;
	key.family = CIL_FAMILY_IPV4;
	key.addr.ip4 = addr;
	return bpf_map_lookup_elem(&cil_ipcache_v1, &key);
}

static __always_inline void update_metrics(__u64 bytes, __u8 dir, __u8 reason)
{
	struct metrics_key key = {};
	struct metrics_value *v;

	key.reason = reason;
	key.dir = dir;
	v = bpf_map_lookup_elem(&cil_metrics_v1, &key);
	if (v) {
		/* per-CPU value: no other CPU writes it */
		v->count += 1;
		v->bytes += bytes;
	} else {
		struct metrics_value nv = { .count = 1, .bytes = bytes };

		bpf_map_update_elem(&cil_metrics_v1, &key, &nv, BPF_NOEXIST);
	}
}
