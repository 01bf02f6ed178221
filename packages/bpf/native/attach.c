// SPDX-License-Identifier: Apache-2.0
/* Attaching programs: tc clsact filters (direct action) and XDP, through libbpf's netlink
 * helpers. Both kinds of attachment belong to the interface, not to this process: they keep
 * forwarding after the agent exits, which is the point. An optional network namespace path
 * runs the netlink calls there (interfaces of pods and of test "nodes" live in their own). */
#define _GNU_SOURCE
#include "addon.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

struct tc_args {
	uint32_t ifindex;
	enum bpf_tc_attach_point point;
	uint32_t handle, priority;
	int32_t prog_fd;
	bool replace;
	char *netns;
};

/* { ifindex, attachPoint: 'ingress'|'egress', handle?, priority?, progFd?, replace?, netns? } */
static bool parse_tc_args(napi_env env, napi_value o, struct tc_args *a, bool need_prog)
{
	napi_value v;
	char *point;

	memset(a, 0, sizeof(*a));
	a->prog_fd = -1;
	if (!get_u32(env, get_prop(env, o, "ifindex"), "ifindex", &a->ifindex))
		return false;
	point = get_string(env, get_prop(env, o, "attachPoint"), "attachPoint");
	if (!point)
		return false;
	if (strcmp(point, "ingress") == 0) {
		a->point = BPF_TC_INGRESS;
	} else if (strcmp(point, "egress") == 0) {
		a->point = BPF_TC_EGRESS;
	} else {
		throw_arg(env, "attachPoint: must be \"ingress\" or \"egress\", got \"%s\"", point);
		free(point);
		return false;
	}
	free(point);
	v = get_prop(env, o, "handle");
	if (!is_nullish(env, v) && !get_u32(env, v, "handle", &a->handle))
		return false;
	v = get_prop(env, o, "priority");
	if (!is_nullish(env, v) && !get_u32(env, v, "priority", &a->priority))
		return false;
	if (a->priority > 0xffff) {
		throw_arg(env, "priority: must be 0..65535");
		return false;
	}
	v = get_prop(env, o, "replace");
	if (!is_nullish(env, v) && !get_bool(env, v, "replace", &a->replace))
		return false;
	if (need_prog && !get_i32(env, get_prop(env, o, "progFd"), "progFd", &a->prog_fd))
		return false;
	return get_opt_string(env, get_prop(env, o, "netns"), "netns", &a->netns);
}

/* tcAttach(args) -> { handle, priority, progId } */
static napi_value tc_attach(napi_env env, napi_callback_info info)
{
	napi_value argv[1], res;
	struct tc_args a;
	int saved, err;

	if (!arg_count(env, info, 1, argv, NULL) || !parse_tc_args(env, argv[0], &a, true))
		return NULL;
	log_reset();
	err = netns_enter(a.netns, &saved);
	if (err) {
		free(a.netns);
		throw_errno(env, "setns", err);
		return NULL;
	}
	{
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)a.ifindex, .attach_point = a.point);
		LIBBPF_OPTS(bpf_tc_opts, opts, .handle = a.handle, .priority = a.priority,
			    .prog_fd = a.prog_fd, .flags = a.replace ? BPF_TC_F_REPLACE : 0);
		const char *op = "bpf_tc_hook_create";

		/* The clsact qdisc may be there already (other filters, an earlier run). */
		err = bpf_tc_hook_create(&hook);
		if (err == -EEXIST)
			err = 0;
		if (!err) {
			op = "bpf_tc_attach";
			err = bpf_tc_attach(&hook, &opts);
		}
		netns_leave(saved);
		free(a.netns);
		if (err) {
			throw_errno(env, op, err);
			return NULL;
		}
		NAPI_CALL(env, napi_create_object(env, &res));
		set_named(env, res, "handle", make_u32(env, opts.handle));
		set_named(env, res, "priority", make_u32(env, opts.priority));
		set_named(env, res, "progId", make_u32(env, opts.prog_id));
	}
	return res;
}

/* tcDetach(args): args.handle and args.priority identify the filter. */
static napi_value tc_detach(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	struct tc_args a;
	int saved, err;

	if (!arg_count(env, info, 1, argv, NULL) || !parse_tc_args(env, argv[0], &a, false))
		return NULL;
	if (!a.handle || !a.priority) {
		free(a.netns);
		throw_arg(env, "handle and priority are required to detach a tc program");
		return NULL;
	}
	log_reset();
	err = netns_enter(a.netns, &saved);
	if (err) {
		free(a.netns);
		throw_errno(env, "setns", err);
		return NULL;
	}
	{
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)a.ifindex, .attach_point = a.point);
		LIBBPF_OPTS(bpf_tc_opts, opts, .handle = a.handle, .priority = a.priority);

		err = bpf_tc_detach(&hook, &opts);
	}
	netns_leave(saved);
	free(a.netns);
	if (err) {
		throw_errno(env, "bpf_tc_detach", err);
		return NULL;
	}
	return make_undefined(env);
}

/* tcQuery(args) -> progId or null when no such filter */
static napi_value tc_query(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	struct tc_args a;
	int saved, err;
	uint32_t id = 0;

	if (!arg_count(env, info, 1, argv, NULL) || !parse_tc_args(env, argv[0], &a, false))
		return NULL;
	log_reset();
	err = netns_enter(a.netns, &saved);
	if (err) {
		free(a.netns);
		throw_errno(env, "setns", err);
		return NULL;
	}
	{
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)a.ifindex, .attach_point = a.point);
		LIBBPF_OPTS(bpf_tc_opts, opts, .handle = a.handle, .priority = a.priority);

		err = bpf_tc_query(&hook, &opts);
		id = opts.prog_id;
	}
	netns_leave(saved);
	free(a.netns);
	if (err == -ENOENT || err == -EINVAL)
		return make_null(env);
	if (err) {
		throw_errno(env, "bpf_tc_query", err);
		return NULL;
	}
	return make_u32(env, id);
}

/* tcHookDestroy(ifindex, netns?): removes the clsact qdisc with every filter on it. */
static napi_value tc_hook_destroy(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	uint32_t ifindex;
	char *netns;
	int saved, err;

	if (!arg_count(env, info, 2, argv, NULL) || !get_u32(env, argv[0], "ifindex", &ifindex) ||
	    !get_opt_string(env, argv[1], "netns", &netns))
		return NULL;
	log_reset();
	err = netns_enter(netns, &saved);
	free(netns);
	if (err) {
		throw_errno(env, "setns", err);
		return NULL;
	}
	{
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)ifindex,
			    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);

		err = bpf_tc_hook_destroy(&hook);
	}
	netns_leave(saved);
	if (err && err != -ENOENT && err != -EINVAL) {
		throw_errno(env, "bpf_tc_hook_destroy", err);
		return NULL;
	}
	return make_bool(env, err == 0);
}

/* xdpAttach(ifindex, progFd, flags, netns?) */
static napi_value xdp_attach(napi_env env, napi_callback_info info)
{
	napi_value argv[4];
	uint32_t ifindex, flags;
	int32_t fd;
	char *netns;
	int saved, err;

	if (!arg_count(env, info, 4, argv, NULL) || !get_u32(env, argv[0], "ifindex", &ifindex) ||
	    !get_i32(env, argv[1], "progFd", &fd) || !get_u32(env, argv[2], "flags", &flags) ||
	    !get_opt_string(env, argv[3], "netns", &netns))
		return NULL;
	log_reset();
	err = netns_enter(netns, &saved);
	free(netns);
	if (err) {
		throw_errno(env, "setns", err);
		return NULL;
	}
	err = bpf_xdp_attach((int)ifindex, fd, flags, NULL);
	netns_leave(saved);
	if (err) {
		throw_errno(env, "bpf_xdp_attach", err);
		return NULL;
	}
	return make_undefined(env);
}

/* xdpDetach(ifindex, flags, netns?) */
static napi_value xdp_detach(napi_env env, napi_callback_info info)
{
	napi_value argv[3];
	uint32_t ifindex, flags;
	char *netns;
	int saved, err;

	if (!arg_count(env, info, 3, argv, NULL) || !get_u32(env, argv[0], "ifindex", &ifindex) ||
	    !get_u32(env, argv[1], "flags", &flags) || !get_opt_string(env, argv[2], "netns", &netns))
		return NULL;
	log_reset();
	err = netns_enter(netns, &saved);
	free(netns);
	if (err) {
		throw_errno(env, "setns", err);
		return NULL;
	}
	err = bpf_xdp_detach((int)ifindex, flags, NULL);
	netns_leave(saved);
	if (err) {
		throw_errno(env, "bpf_xdp_detach", err);
		return NULL;
	}
	return make_undefined(env);
}

/* xdpQuery(ifindex, flags, netns?) -> attached program id, 0 for none */
static napi_value xdp_query(napi_env env, napi_callback_info info)
{
	napi_value argv[3];
	uint32_t ifindex, flags;
	__u32 id = 0;
	char *netns;
	int saved, err;

	if (!arg_count(env, info, 3, argv, NULL) || !get_u32(env, argv[0], "ifindex", &ifindex) ||
	    !get_u32(env, argv[1], "flags", &flags) || !get_opt_string(env, argv[2], "netns", &netns))
		return NULL;
	log_reset();
	err = netns_enter(netns, &saved);
	free(netns);
	if (err) {
		throw_errno(env, "setns", err);
		return NULL;
	}
	err = bpf_xdp_query_id((int)ifindex, (int)flags, &id);
	netns_leave(saved);
	if (err) {
		throw_errno(env, "bpf_xdp_query_id", err);
		return NULL;
	}
	return make_u32(env, id);
}

/* tcx (kernel 6.6+): tc hooks as BPF links. The uapi headers of Debian bookworm (6.1) and its
 * libbpf 1.1 predate them, so the attach types are spelled out; bpf_link_create passes them
 * through. A link detaches when its last reference goes: pin it to outlive the process. */
#define CIL_BPF_TCX_INGRESS 46
#define CIL_BPF_TCX_EGRESS 47

/* tcxAttach(ifindex, progFd, attachPoint, netns?) -> link fd */
static napi_value tcx_attach(napi_env env, napi_callback_info info)
{
	napi_value argv[4];
	uint32_t ifindex;
	int32_t prog_fd;
	char *point, *netns;
	int saved, err, fd, type;

	if (!arg_count(env, info, 4, argv, NULL) || !get_u32(env, argv[0], "ifindex", &ifindex) ||
	    !get_i32(env, argv[1], "progFd", &prog_fd))
		return NULL;
	point = get_string(env, argv[2], "attachPoint");
	if (!point)
		return NULL;
	if (strcmp(point, "ingress") == 0) {
		type = CIL_BPF_TCX_INGRESS;
	} else if (strcmp(point, "egress") == 0) {
		type = CIL_BPF_TCX_EGRESS;
	} else {
		throw_arg(env, "attachPoint: must be \"ingress\" or \"egress\", got \"%s\"", point);
		free(point);
		return NULL;
	}
	free(point);
	if (!get_opt_string(env, argv[3], "netns", &netns))
		return NULL;
	log_reset();
	/* the interface index is looked up in the calling thread's namespace */
	err = netns_enter(netns, &saved);
	free(netns);
	if (err) {
		throw_errno(env, "setns", err);
		return NULL;
	}
	fd = bpf_link_create(prog_fd, (int)ifindex, type, NULL);
	err = fd < 0 ? errno : 0;
	netns_leave(saved);
	if (fd < 0) {
		throw_errno(env, "bpf_link_create(tcx)", err);
		return NULL;
	}
	return make_i32(env, fd);
}

/* linkUpdate(linkFd, progFd): swaps the program of a link atomically */
static napi_value link_update(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	int32_t link_fd, prog_fd;

	if (!arg_count(env, info, 2, argv, NULL) || !get_i32(env, argv[0], "linkFd", &link_fd) ||
	    !get_i32(env, argv[1], "progFd", &prog_fd))
		return NULL;
	if (bpf_link_update(link_fd, prog_fd, NULL)) {
		throw_errno(env, "bpf_link_update", errno);
		return NULL;
	}
	return make_undefined(env);
}

/* linkDetach(linkFd): detaches the program even while the link is pinned elsewhere */
static napi_value link_detach(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	int32_t link_fd;

	if (!arg_count(env, info, 1, argv, NULL) || !get_i32(env, argv[0], "linkFd", &link_fd))
		return NULL;
	if (bpf_link_detach(link_fd)) {
		throw_errno(env, "bpf_link_detach", errno);
		return NULL;
	}
	return make_undefined(env);
}

/* linkInfo(linkFd) -> { id, progId, type } */
static napi_value link_info(napi_env env, napi_callback_info info)
{
	napi_value argv[1], res;
	struct bpf_link_info li;
	__u32 len = sizeof(li);
	int32_t link_fd;

	if (!arg_count(env, info, 1, argv, NULL) || !get_i32(env, argv[0], "linkFd", &link_fd))
		return NULL;
	memset(&li, 0, sizeof(li));
	if (bpf_obj_get_info_by_fd(link_fd, &li, &len)) {
		throw_errno(env, "bpf_obj_get_info_by_fd", errno);
		return NULL;
	}
	NAPI_CALL(env, napi_create_object(env, &res));
	set_named(env, res, "id", make_u32(env, li.id));
	set_named(env, res, "progId", make_u32(env, li.prog_id));
	set_named(env, res, "type", make_u32(env, li.type));
	return res;
}

/* ifIndex(name, netns?) -> index */
static napi_value if_index(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	char *name, *netns;
	unsigned int idx;
	int saved, err;

	if (!arg_count(env, info, 2, argv, NULL))
		return NULL;
	name = get_string(env, argv[0], "name");
	if (!name)
		return NULL;
	if (!get_opt_string(env, argv[1], "netns", &netns)) {
		free(name);
		return NULL;
	}
	log_reset();
	err = netns_enter(netns, &saved);
	free(netns);
	if (err) {
		free(name);
		throw_errno(env, "setns", err);
		return NULL;
	}
	idx = if_nametoindex(name);
	err = idx ? 0 : errno;
	netns_leave(saved);
	if (!idx) {
		char op[64];

		snprintf(op, sizeof(op), "if_nametoindex(%.*s)", 40, name);
		free(name);
		throw_errno(env, op, err);
		return NULL;
	}
	free(name);
	return make_u32(env, idx);
}

void register_attach(napi_env env, napi_value exports)
{
	export_fn(env, exports, "tcAttach", tc_attach);
	export_fn(env, exports, "tcDetach", tc_detach);
	export_fn(env, exports, "tcQuery", tc_query);
	export_fn(env, exports, "tcHookDestroy", tc_hook_destroy);
	export_fn(env, exports, "xdpAttach", xdp_attach);
	export_fn(env, exports, "xdpDetach", xdp_detach);
	export_fn(env, exports, "xdpQuery", xdp_query);
	export_fn(env, exports, "ifIndex", if_index);
	export_fn(env, exports, "tcxAttach", tcx_attach);
	export_fn(env, exports, "linkUpdate", link_update);
	export_fn(env, exports, "linkDetach", link_detach);
	export_fn(env, exports, "linkInfo", link_info);
}
