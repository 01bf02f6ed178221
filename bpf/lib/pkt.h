/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* IPv4 parsing and the few rewrites the datapath does (MACs, TTL). Bytes are copied out with
 * bpf_skb_load_bytes rather than read through data/data_end: the copies survive the helpers that
 * invalidate packet pointers, and the cost is small next to a veth hop. */
#pragma once

#include "common.h"
#include "drop.h"

struct pkt4 {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 tcp_flags;
	__u8 ttl;
	__u8 is_fragment;    /* a non-first fragment: no L4 header */
	__u8 icmp_type;
	__u8 tos;
	__u32 l4_off;
};

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_PSH 0x08
#define TCP_FLAG_ACK 0x10

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

static __always_inline int load_eth_proto(struct __sk_buff *skb, __be16 *proto)
{
	if (bpf_skb_load_bytes(skb, offsetof(struct ethhdr, h_proto), proto, sizeof(*proto)) < 0)
		return -DROP_INVALID;
	return 0;
}

/* Returns 0 or a negated drop reason. */
static __always_inline int parse_ipv4(struct __sk_buff *skb, struct pkt4 *p)
{
	struct iphdr ip;
	__u32 ihl_len;
	__u16 frag;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return -DROP_INVALID;
	if (ip.version != 4 || ip.ihl < 5)
		return -DROP_INVALID;
	ihl_len = ip.ihl * 4;
	if (bpf_ntohs(ip.tot_len) < ihl_len || ETH_HLEN + bpf_ntohs(ip.tot_len) > skb->len)
		return -DROP_INVALID;

	p->saddr = ip.saddr;
	p->daddr = ip.daddr;
	p->proto = ip.protocol;
	p->ttl = ip.ttl;
	p->tos = ip.tos;
	p->sport = 0;
	p->dport = 0;
	p->tcp_flags = 0;
	p->icmp_type = 0;
	p->l4_off = ETH_HLEN + ihl_len;
	frag = bpf_ntohs(ip.frag_off);
	p->is_fragment = (frag & IP_OFFSET) != 0;
	if (p->is_fragment)
		return 0;

	switch (ip.protocol) {
	case IPPROTO_TCP: {
		struct {
			__be16 sport;
			__be16 dport;
			__be32 seq;
			__be32 ack_seq;
			__u8 doff;
			__u8 flags;
		} tcp;

		if (bpf_skb_load_bytes(skb, p->l4_off, &tcp, sizeof(tcp)) < 0)
			return -DROP_CT_INVALID_HDR;
		p->sport = tcp.sport;
		p->dport = tcp.dport;
		p->tcp_flags = tcp.flags;
		break;
	}
	case IPPROTO_UDP: {
		__be16 ports[2];

		if (bpf_skb_load_bytes(skb, p->l4_off, ports, sizeof(ports)) < 0)
			return -DROP_CT_INVALID_HDR;
		p->sport = ports[0];
		p->dport = ports[1];
		break;
	}
	case IPPROTO_ICMP: {
		struct icmphdr icmp;

		if (bpf_skb_load_bytes(skb, p->l4_off, &icmp, sizeof(icmp)) < 0)
			return -DROP_CT_INVALID_HDR;
		p->icmp_type = icmp.type;
		/* Echo request and reply share a conntrack entry through the identifier: in sport
		 * for requests, in dport for replies, so a reply's reversed tuple is the request's. */
		if (icmp.type == ICMP_ECHO)
			p->sport = icmp.un.echo.id;
		else if (icmp.type == ICMP_ECHOREPLY)
			p->dport = icmp.un.echo.id;
		break;
	}
	default:
		break;
	}
	return 0;
}

static __always_inline int rewrite_macs(struct __sk_buff *skb, const __u8 *dst, const __u8 *src)
{
	__u8 macs[12];

	__builtin_memcpy(macs, dst, 6);
	__builtin_memcpy(macs + 6, src, 6);
	if (bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0) < 0)
		return -DROP_WRITE_ERROR;
	return 0;
}

static __always_inline int mac_is_zero(const __u8 *mac)
{
	return (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]) == 0;
}

/* Forwarding between two L3 hops without the stack: the TTL goes down as a router's would. */
static __always_inline int ipv4_dec_ttl(struct __sk_buff *skb, __u8 ttl)
{
	__u32 off = ETH_HLEN + offsetof(struct iphdr, ttl);
	__u8 new_ttl;
	__be16 old_word, new_word;

	if (ttl <= 1)
		return -DROP_TTL_EXCEEDED;
	new_ttl = ttl - 1;
	/* ttl and protocol form one 16-bit word of the header checksum */
	if (bpf_skb_load_bytes(skb, off, &old_word, sizeof(old_word)) < 0)
		return -DROP_INVALID;
	new_word = old_word;
	((__u8 *)&new_word)[0] = new_ttl;
	if (bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), old_word, new_word,
				sizeof(new_word)) < 0)
		return -DROP_CSUM_L3;
	if (bpf_skb_store_bytes(skb, off, &new_ttl, 1, 0) < 0)
		return -DROP_WRITE_ERROR;
	return 0;
}
