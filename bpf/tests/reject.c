// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A program the verifier must refuse: it reads a map value without checking the lookup
 * result for NULL (a hash map: recent kernels know that an array lookup with a constant
 * in-range key cannot fail). Used to show that a rejection comes back with the verifier's log. */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} reject_map SEC(".maps");

SEC("tc")
int reject_null_deref(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&reject_map, &key);

	return (int)*v;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
