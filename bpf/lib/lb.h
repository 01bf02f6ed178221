/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Service load balancing hook. from-container calls lb4_lookup_service() before conntrack, the
 * place where a ClusterIP/NodePort frontend is translated to a backend (and the conntrack entry
 * gets its rev_nat_index so that replies are translated back). There are no service maps yet,
 * so no packet is a service packet. */
#pragma once

#include "common.h"
#include "pkt.h"

struct lb4_service {
	__u16 rev_nat_index;
	__u16 count;
};

static __always_inline const struct lb4_service *lb4_lookup_service(const struct pkt4 *p)
{
	(void)p;
	return 0;
}
