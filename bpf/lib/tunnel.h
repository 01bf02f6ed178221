/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* VXLAN through a collect_md ("external") device: the program sets the tunnel metadata and
 * redirects to the device; the kernel builds the outer headers. The 24-bit VNI carries the
 * source security identity, as in Cilium, so the receiving node needs no ipcache lookup to know
 * who sent a packet. */
#pragma once

#include "common.h"
#include "config.h"
#include "drop.h"
#include "maps.h"

#define TUNNEL_TTL 64

static __always_inline int tunnel_encap4(struct __sk_buff *skb, __be32 remote, __u32 src_identity)
{
	struct bpf_tunnel_key key = {};

	if (cfg_tunnel_ifindex == 0)
		return -DROP_NO_TUNNEL_ENDPOINT;
	key.tunnel_id = src_identity & IDENTITY_WIRE_MASK;
	key.remote_ipv4 = bpf_ntohl(remote);
	key.tunnel_ttl = TUNNEL_TTL;
	if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), BPF_F_ZERO_CSUM_TX) < 0)
		return -DROP_WRITE_ERROR;
	return 0;
}

/* The source identity of a decapsulated packet, or a negated drop reason. */
static __always_inline int tunnel_source_identity(struct __sk_buff *skb, __u32 *identity,
						  __be32 *remote)
{
	struct bpf_tunnel_key key = {};

	if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0) < 0)
		return -DROP_NO_TUNNEL_KEY;
	if (key.tunnel_id == 0 || key.tunnel_id > IDENTITY_WIRE_MASK)
		return -DROP_INVALID_VNI;
	*identity = key.tunnel_id;
	*remote = bpf_htonl(key.remote_ipv4);
	return 0;
}
