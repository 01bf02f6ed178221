/* SPDX-License-Identifier: Apache-2.0 */
/* Shared declarations of the @ciliate/bpf native addon: a thin N-API layer over libbpf. All
 * policy (names, layouts, defaults) lives in TypeScript; this layer only does what JavaScript
 * cannot: syscalls, netlink through libbpf, and a thread that drains ring buffers. */
#pragma once

#define NAPI_VERSION 8
#include <node_api.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Evaluates an N-API call; on failure throws (unless an exception is already pending) and
 * returns NULL from the calling function. */
#define NAPI_CALL(env, call)                                                   \
	do {                                                                   \
		napi_status status_ = (call);                                  \
		if (status_ != napi_ok) {                                      \
			napi_throw_last(env, #call);                           \
			return NULL;                                           \
		}                                                              \
	} while (0)

void napi_throw_last(napi_env env, const char *what);

/* Throws the addon's error class (BpfError once registered): message "<op>: <strerror>",
 * with errno, code (errno name) and op; the libbpf messages printed during the operation are
 * attached as libbpfLog, and a verifier log found in them as verifierLog. */
void throw_errno(napi_env env, const char *op, int err);
/* Throws an argument error (code ERR_INVALID_ARG, no errno). */
void throw_arg(napi_env env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* libbpf output captured since the last log_reset(). */
void log_reset(void);
const char *log_text(void);
void log_install(void);

napi_value set_error_class(napi_env env, napi_callback_info info);

/* Argument helpers; each throws and returns false on a bad argument. arg_count: at least
 * `want` arguments; if argc is given, *argc is argv's capacity on entry, the count on return. */
bool arg_count(napi_env env, napi_callback_info info, size_t want, napi_value *argv, size_t *argc);
bool get_u32(napi_env env, napi_value v, const char *name, uint32_t *out);
bool get_i32(napi_env env, napi_value v, const char *name, int32_t *out);
bool get_bool(napi_env env, napi_value v, const char *name, bool *out);
/* Returns a malloc'd string, or NULL (with an exception pending). */
char *get_string(napi_env env, napi_value v, const char *name);
/* NULL/undefined give *out = NULL and true. */
bool get_opt_string(napi_env env, napi_value v, const char *name, char **out);
bool get_buffer(napi_env env, napi_value v, const char *name, void **data, size_t *len);
bool is_nullish(napi_env env, napi_value v);
napi_value get_prop(napi_env env, napi_value obj, const char *key);

napi_value make_u32(napi_env env, uint32_t v);
napi_value make_i32(napi_env env, int32_t v);
napi_value make_string(napi_env env, const char *s);
napi_value make_bool(napi_env env, bool v);
napi_value make_null(napi_env env);
napi_value make_undefined(napi_env env);
void set_named(napi_env env, napi_value obj, const char *key, napi_value v);

/* Runs network-namespace-bound calls (netlink) inside `path` on the calling thread only. */
int netns_enter(const char *path, int *saved_fd);
void netns_leave(int saved_fd);

/* Module parts. */
void register_object(napi_env env, napi_value exports);
void register_map(napi_env env, napi_value exports);
void register_attach(napi_env env, napi_value exports);
void register_ringbuf(napi_env env, napi_value exports);
void register_misc(napi_env env, napi_value exports);

void export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb);
