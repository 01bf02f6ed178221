/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* ARP responder on the host-side veth: a pod asking for any address but its own gets the
 * veth's MAC, so its default gateway resolves without a neighbour entry set from outside. */
#pragma once

#include "common.h"
#include "maps.h"

struct arp_eth_ipv4 {
	__be16 ar_hrd;
	__be16 ar_pro;
	__u8 ar_hln;
	__u8 ar_pln;
	__be16 ar_op;
	__u8 ar_sha[6];
	__be32 ar_sip;
	__u8 ar_tha[6];
	__be32 ar_tip;
} __attribute__((packed));

/* Returns 1 when the packet was turned into a reply to send back, 0 to let it pass, or a
 * negated drop reason. */
static __always_inline int arp_respond(struct __sk_buff *skb, const struct endpoint_info *ep_hint)
{
	struct arp_eth_ipv4 arp;
	struct endpoint_info *ep;
	struct ethhdr eth;
	__be32 tip;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &arp, sizeof(arp)) < 0)
		return 0;
	if (arp.ar_op != bpf_htons(ARPOP_REQUEST) || arp.ar_hrd != bpf_htons(ARPHRD_ETHER) ||
	    arp.ar_pro != bpf_htons(ETH_P_IP) || arp.ar_hln != 6 || arp.ar_pln != 4)
		return 0;
	/* Only answer for known endpoints, on their own interface. */
	ep = ep_hint ? (struct endpoint_info *)ep_hint : lookup_endpoint4(arp.ar_sip);
	if (!ep || ep->ifindex != skb->ifindex)
		return 0;
	tip = arp.ar_tip;
	if (tip == arp.ar_sip)
		return 0; /* duplicate address detection: nobody else owns it */

	__builtin_memcpy(arp.ar_tha, arp.ar_sha, 6);
	arp.ar_tip = arp.ar_sip;
	__builtin_memcpy(arp.ar_sha, ep->node_mac, 6);
	arp.ar_sip = tip;
	arp.ar_op = bpf_htons(ARPOP_REPLY);
	__builtin_memcpy(eth.h_dest, arp.ar_tha, 6);
	__builtin_memcpy(eth.h_source, ep->node_mac, 6);
	eth.h_proto = bpf_htons(ETH_P_ARP);
	if (bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_HLEN, &arp, sizeof(arp), 0) < 0)
		return -DROP_WRITE_ERROR;
	return 1;
}
