/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Types, constants and small helpers every Ciliate program shares. Only uapi headers and
 * libbpf's helper headers are used, so the build never depends on the running kernel's BTF. */
#pragma once

#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* From linux/if_arp.h, which drags libc headers into a BPF build. */
#define ARPHRD_ETHER 1
#define ARPOP_REQUEST 1
#define ARPOP_REPLY 2
/* From linux/icmp.h, for the same reason. */
#define ICMP_ECHOREPLY 0
#define ICMP_ECHO 8

struct icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	union {
		struct {
			__be16 id;
			__be16 sequence;
		} echo;
		__be32 gateway;
	} un;
};

/* Address families as stored in map keys (not AF_* values: one byte, and 0 means "unset"). */
#define CIL_FAMILY_IPV4 1
#define CIL_FAMILY_IPV6 2

/* Reserved security identities (Cilium's numbering). */
#define IDENTITY_UNKNOWN 0
#define IDENTITY_HOST 1
#define IDENTITY_WORLD 2
#define IDENTITY_UNMANAGED 3
#define IDENTITY_HEALTH 4
#define IDENTITY_INIT 5
#define IDENTITY_REMOTE_NODE 6
#define IDENTITY_WORLD_IPV4 9
/* Only 24 bits of an identity travel in a VNI or an skb mark. */
#define IDENTITY_WIRE_MASK 0x00ffffff

/* skb->mark carrying a source identity between our own programs on one node: low 16 identity
 * bits in mark bits 16-31, identity bits 16-23 (the cluster id) in mark bits 0-7, magic in 8-15
 * (Cilium's MARK_MAGIC_IDENTITY layout). */
#define MARK_MAGIC_MASK 0x0F00
#define MARK_MAGIC_IDENTITY 0x0F00

/* An IPv4 address lives in the first four bytes; the rest is zero. Keys use this union so that
 * IPv6 needs no new layout. */
union ip_addr {
	__be32 ip4;
	__u8 ip6[16];
};

/* Source files, for the `file` field of drop notifications. */
#define FILE_BPF_LXC 1
#define FILE_BPF_HOST 2
#define FILE_BPF_OVERLAY 3
#define FILE_BPF_XDP 4

static __always_inline __u32 identity_from_mark(__u32 mark)
{
	if ((mark & MARK_MAGIC_MASK) != MARK_MAGIC_IDENTITY)
		return IDENTITY_UNKNOWN;
	return (mark >> 16) | ((mark & 0xff) << 16);
}

static __always_inline __u32 identity_to_mark(__u32 identity)
{
	return ((identity & 0xffff) << 16) | MARK_MAGIC_IDENTITY | ((identity >> 16) & 0xff);
}

static __always_inline __u32 now_seconds(void)
{
	return (__u32)(bpf_ktime_get_ns() / 1000000000ULL);
}
