// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* XDP entry on the underlay device: the earliest point to refuse traffic, before an skb is
 * allocated. Today it only drops IPv4 frames whose header cannot be valid (and counts them);
 * it is where a prefilter (CIDR deny lists) and service load balancing acceleration go. */

#include "lib/common.h"
#include "lib/config.h"
#include "lib/maps.h"
#include "lib/drop.h"

SEC("xdp")
int cil_xdp_entry(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u64 len = data_end - data;

	if ((void *)(eth + 1) > data_end)
		goto invalid;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		goto invalid;
	if (ip->version != 4 || ip->ihl < 5 || bpf_ntohs(ip->tot_len) < ip->ihl * 4)
		goto invalid;
	return XDP_PASS;

invalid:
	update_metrics(len, METRIC_DIR_INGRESS, DROP_INVALID);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
