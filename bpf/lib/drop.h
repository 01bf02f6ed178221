/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Drop reasons, numbered as Cilium numbers them (pkg/monitor/api/drop.go, Hubble's DropReason)
 * so that tools reading our events speak the same language. A program returns the negated
 * reason to say "drop"; see DROP() in notify.h. */
#pragma once

#define DROP_INVALID_SMAC 130
#define DROP_INVALID_DMAC 131
#define DROP_INVALID_SIP 132
#define DROP_POLICY 133
#define DROP_INVALID 134
#define DROP_CT_INVALID_HDR 135
#define DROP_FRAG_NEEDED 136
#define DROP_CT_UNKNOWN_PROTO 137
#define DROP_NO_SERVICE_CT_ENTRY 138
#define DROP_UNKNOWN_L3 139
#define DROP_MISSED_TAIL_CALL 140
#define DROP_WRITE_ERROR 141
#define DROP_UNKNOWN_L4 142
#define DROP_UNKNOWN_ICMP_CODE 143
#define DROP_UNKNOWN_ICMP_TYPE 144
#define DROP_NO_TUNNEL_KEY 147
#define DROP_UNKNOWN_TARGET 150
#define DROP_UNROUTABLE 151
#define DROP_NO_LXC 152
#define DROP_CSUM_L3 153
#define DROP_CSUM_L4 154
#define DROP_CT_CREATE_FAILED 155
#define DROP_FRAG_NOSUPPORT 157
#define DROP_NO_SERVICE 158
#define DROP_NO_TUNNEL_ENDPOINT 160
#define DROP_UNKNOWN_CT 163
#define DROP_HOST_UNREACHABLE 164
#define DROP_NO_CONFIG 165
#define DROP_UNSUPPORTED_L2 166
#define DROP_FIB_LOOKUP_FAILED 169
#define DROP_INVALID_IDENTITY 171
#define DROP_UNKNOWN_SENDER 172
#define DROP_POLICY_DENY 181
#define DROP_INVALID_VNI 183
#define DROP_INVALID_TC_BUFFER 184
#define DROP_TTL_EXCEEDED 196
