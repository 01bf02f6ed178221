// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Fixture for the addon's own tests: one map of every kind the datapath uses, a load-time
 * constant, and a program run with BPF_PROG_TEST_RUN that reports through the ring buffer. */
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct test_value {
	__u64 a;
	__u32 b;
	__u16 c;
	__u8 d[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct test_value);
	__uint(max_entries, 4096);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} test_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 64);
} test_percpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 8);
} test_array SEC(".maps");

struct test_lpm_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct test_lpm_key);
	__type(value, __u32);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} test_lpm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} test_events SEC(".maps");

struct test_event {
	__u32 seq;
	__u32 magic;
	__u64 ktime;
};

volatile const __u32 test_magic = 0;
volatile const __u64 test_wide = 0;

__u32 seq = 0;

/* Every run emits one event and returns test_magic, proving the constant was set at load. */
SEC("tc")
int emit_event(struct __sk_buff *skb)
{
	struct test_event *e = bpf_ringbuf_reserve(&test_events, sizeof(*e), 0);
	__u32 key = 0;
	__u64 *count = bpf_map_lookup_elem(&test_array, &key);

	if (count)
		__sync_fetch_and_add(count, 1);
	if (e) {
		e->seq = __sync_fetch_and_add(&seq, 1);
		e->magic = test_magic;
		e->ktime = bpf_ktime_get_ns();
		bpf_ringbuf_submit(e, 0);
	}
	return (int)test_magic + (int)(test_wide >> 32);
}

SEC("xdp")
int xdp_pass_count(struct xdp_md *ctx)
{
	__u32 key = 1;
	__u64 *count = bpf_map_lookup_elem(&test_array, &key);

	if (count)
		__sync_fetch_and_add(count, 1);
	return XDP_PASS;
}

SEC("tc")
int tc_pass_count(struct __sk_buff *skb)
{
	__u32 key = 2;
	__u64 *count = bpf_map_lookup_elem(&test_array, &key);

	if (count)
		__sync_fetch_and_add(count, 1);
	return TC_ACT_OK;
}

/* Reads the context a test run was given and writes into it: the mark becomes cb[0] plus the
 * interface's index, which is also the return value. */
SEC("tc")
int echo_ctx(struct __sk_buff *skb)
{
	skb->mark = skb->cb[0] + skb->ifindex;
	return skb->ifindex;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
