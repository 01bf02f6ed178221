// SPDX-License-Identifier: Apache-2.0
/* Program introspection and test runs, and the BPF filesystem. */
#define _GNU_SOURCE
#include "addon.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/vfs.h>

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

/* progInfo(fd) -> { id, name, type, tag } */
static napi_value prog_info(napi_env env, napi_callback_info info)
{
	napi_value argv[1], res;
	struct bpf_prog_info pi;
	__u32 len = sizeof(pi);
	char tag[2 * BPF_TAG_SIZE + 1];
	int32_t fd;

	if (!arg_count(env, info, 1, argv, NULL) || !get_i32(env, argv[0], "fd", &fd))
		return NULL;
	memset(&pi, 0, sizeof(pi));
	if (bpf_obj_get_info_by_fd(fd, &pi, &len)) {
		throw_errno(env, "bpf_obj_get_info_by_fd", errno);
		return NULL;
	}
	for (int i = 0; i < BPF_TAG_SIZE; i++)
		snprintf(tag + 2 * i, 3, "%02x", pi.tag[i]);
	NAPI_CALL(env, napi_create_object(env, &res));
	set_named(env, res, "id", make_u32(env, pi.id));
	set_named(env, res, "name", make_string(env, pi.name));
	set_named(env, res, "type", make_u32(env, pi.type));
	set_named(env, res, "tag", make_string(env, tag));
	return res;
}

/* progTestRun(fd, data, repeat[, ctxIn]) -> { retval, duration, data[, ctx] } (BPF_PROG_TEST_RUN).
 * ctxIn is the program's context as bytes (struct __sk_buff for tc: mark, ifindex, cb, ...);
 * the kernel's context after the run comes back as ctx, of the same size. */
static napi_value prog_test_run(napi_env env, napi_callback_info info)
{
	napi_value argv[4], res, out_v, ctx_v;
	size_t argc = 4, len, ctx_len = 0;
	void *data, *out, *ctx_in = NULL, *ctx_out = NULL;
	uint32_t repeat;
	int32_t fd;

	if (!arg_count(env, info, 3, argv, &argc) || !get_i32(env, argv[0], "fd", &fd) ||
	    !get_buffer(env, argv[1], "data", &data, &len) || !get_u32(env, argv[2], "repeat", &repeat))
		return NULL;
	if (argc > 3 && !is_nullish(env, argv[3])) {
		if (!get_buffer(env, argv[3], "ctxIn", &ctx_in, &ctx_len))
			return NULL;
		ctx_out = calloc(1, ctx_len ? ctx_len : 1);
		if (!ctx_out) {
			throw_errno(env, "progTestRun", ENOMEM);
			return NULL;
		}
	}
	/* Programs may grow the packet (encapsulation); leave room. */
	out = malloc(len + 512);
	if (!out) {
		free(ctx_out);
		throw_errno(env, "progTestRun", ENOMEM);
		return NULL;
	}
	{
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data, .data_size_in = (__u32)len,
			    .data_out = out, .data_size_out = (__u32)len + 512, .repeat = repeat,
			    .ctx_in = ctx_in, .ctx_size_in = (__u32)ctx_len, .ctx_out = ctx_out,
			    .ctx_size_out = (__u32)ctx_len);

		if (bpf_prog_test_run_opts(fd, &opts)) {
			int err = errno;

			free(out);
			free(ctx_out);
			throw_errno(env, "bpf_prog_test_run_opts", err);
			return NULL;
		}
		if (napi_create_buffer_copy(env, opts.data_size_out, out, NULL, &out_v) != napi_ok ||
		    (ctx_out && napi_create_buffer_copy(env, opts.ctx_size_out, ctx_out, NULL,
							&ctx_v) != napi_ok)) {
			free(out);
			free(ctx_out);
			napi_throw_last(env, "napi_create_buffer_copy");
			return NULL;
		}
		free(out);
		free(ctx_out);
		NAPI_CALL(env, napi_create_object(env, &res));
		set_named(env, res, "retval", make_u32(env, opts.retval));
		set_named(env, res, "duration", make_u32(env, opts.duration));
		set_named(env, res, "data", out_v);
		if (ctx_in)
			set_named(env, res, "ctx", ctx_v);
	}
	return res;
}

/* isBpffs(path) -> whether path is on a BPF filesystem */
static napi_value is_bpffs(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	struct statfs st;
	char *path;
	int rc;

	if (!arg_count(env, info, 1, argv, NULL))
		return NULL;
	path = get_string(env, argv[0], "path");
	if (!path)
		return NULL;
	rc = statfs(path, &st);
	free(path);
	if (rc) {
		if (errno == ENOENT)
			return make_bool(env, false);
		throw_errno(env, "statfs", errno);
		return NULL;
	}
	return make_bool(env, (unsigned long)st.f_type == BPF_FS_MAGIC);
}

/* mountBpffs(path) */
static napi_value mount_bpffs(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	char *path;
	int err;

	if (!arg_count(env, info, 1, argv, NULL))
		return NULL;
	path = get_string(env, argv[0], "path");
	if (!path)
		return NULL;
	err = mount("bpf", path, "bpf", 0, "mode=0700") ? errno : 0;
	free(path);
	if (err) {
		throw_errno(env, "mount", err);
		return NULL;
	}
	return make_undefined(env);
}

static napi_value libbpf_version(napi_env env, napi_callback_info info)
{
	(void)info;
	return make_string(env, libbpf_version_string());
}

void register_misc(napi_env env, napi_value exports)
{
	export_fn(env, exports, "progInfo", prog_info);
	export_fn(env, exports, "progTestRun", prog_test_run);
	export_fn(env, exports, "isBpffs", is_bpffs);
	export_fn(env, exports, "mountBpffs", mount_bpffs);
	export_fn(env, exports, "libbpfVersion", libbpf_version);
}
