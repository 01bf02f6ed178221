/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The per-endpoint policy decision point. Both directions call it for every new connection
 * (established flows and replies are allowed by conntrack, as in Cilium). Policy enforcement
 * is a later step: it will look the peer identity, protocol and port up in a per-endpoint
 * policy map here and return DROP_POLICY / DROP_POLICY_DENY; until then every flow is allowed,
 * and the verdict is cached in the conntrack entry so that enforcement can be added without a
 * layout change. */
#pragma once

#include "common.h"
#include "conntrack.h"
#include "maps.h"

struct policy_verdict {
	__u8 verdict;  /* CT_VERDICT_* */
	__u8 reason;   /* 0 when allowed, else a drop reason */
};

static __always_inline struct policy_verdict
policy_can_egress4(const struct endpoint_info *ep, __u32 dst_identity, const struct ct4_key *tuple)
{
	struct policy_verdict v = { .verdict = CT_VERDICT_ALLOWED, .reason = 0 };

	(void)ep;
	(void)dst_identity;
	(void)tuple;
	return v;
}

static __always_inline struct policy_verdict
policy_can_ingress4(const struct endpoint_info *ep, __u32 src_identity, const struct ct4_key *tuple)
{
	struct policy_verdict v = { .verdict = CT_VERDICT_ALLOWED, .reason = 0 };

	(void)ep;
	(void)src_identity;
	(void)tuple;
	return v;
}
