// SPDX-License-Identifier: Apache-2.0
/* Module entry, errors, the libbpf log capture and argument helpers. */
#define _GNU_SOURCE
#include "addon.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- libbpf log capture ------------------------------------------------------------------ */

/* libbpf reports everything (including a rejected program's verifier log, which it fetches
 * itself with a growing buffer) through one print callback. The text of the current operation
 * is kept here so that an error can carry it. The ring buffer thread may print too, hence the
 * lock. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char *log_buf;
static size_t log_len, log_cap;
static bool log_echo_debug;
#define LOG_MAX (64u << 20)

void log_reset(void)
{
	pthread_mutex_lock(&log_lock);
	log_len = 0;
	if (log_buf)
		log_buf[0] = '\0';
	pthread_mutex_unlock(&log_lock);
}

const char *log_text(void)
{
	return log_buf ? log_buf : "";
}

static int log_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	va_list copy;
	int n;

	if (level == LIBBPF_DEBUG && !log_echo_debug)
		return 0;
	if (log_echo_debug) {
		va_copy(copy, args);
		vfprintf(stderr, fmt, copy);
		va_end(copy);
	}
	pthread_mutex_lock(&log_lock);
	va_copy(copy, args);
	n = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (n > 0 && log_len + (size_t)n + 1 <= LOG_MAX) {
		if (log_len + (size_t)n + 1 > log_cap) {
			size_t cap = log_cap ? log_cap : 4096;
			char *nb;

			while (cap < log_len + (size_t)n + 1)
				cap *= 2;
			nb = realloc(log_buf, cap);
			if (!nb) {
				pthread_mutex_unlock(&log_lock);
				return 0;
			}
			log_buf = nb;
			log_cap = cap;
		}
		vsnprintf(log_buf + log_len, (size_t)n + 1, fmt, args);
		log_len += (size_t)n;
	}
	pthread_mutex_unlock(&log_lock);
	return 0;
}

void log_install(void)
{
	const char *dbg = getenv("CILIATE_BPF_DEBUG");

	log_echo_debug = dbg && dbg[0] && strcmp(dbg, "0") != 0;
	libbpf_set_print(log_print);
}

/* ---- errors -------------------------------------------------------------------------------- */

static napi_ref error_class;

napi_value set_error_class(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	size_t argc = 1;

	if (!arg_count(env, info, 1, argv, &argc))
		return NULL;
	if (error_class)
		napi_delete_reference(env, error_class);
	NAPI_CALL(env, napi_create_reference(env, argv[0], 1, &error_class));
	return make_undefined(env);
}

/* Extracts libbpf's "-- BEGIN PROG LOAD LOG --" ... "-- END PROG LOAD LOG --" section. */
static char *verifier_log(const char *text)
{
	static const char begin[] = "-- BEGIN PROG LOAD LOG --\n";
	static const char end[] = "-- END PROG LOAD LOG --";
	const char *b = strstr(text, begin), *e;
	char *out;

	if (!b)
		return NULL;
	b += sizeof(begin) - 1;
	e = strstr(b, end);
	if (!e)
		e = b + strlen(b);
	out = malloc((size_t)(e - b) + 1);
	if (!out)
		return NULL;
	memcpy(out, b, (size_t)(e - b));
	out[e - b] = '\0';
	return out;
}

static void throw_with(napi_env env, const char *message, const char *code, int err,
		       const char *op, bool attach_log)
{
	napi_value ctor, msg, opts, error;
	bool has_class = false;

	napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
	napi_create_object(env, &opts);
	set_named(env, opts, "code", make_string(env, code));
	if (err)
		set_named(env, opts, "errno", make_i32(env, err));
	if (op)
		set_named(env, opts, "op", make_string(env, op));
	if (attach_log) {
		const char *text;
		char *vlog;

		pthread_mutex_lock(&log_lock);
		text = log_text();
		if (text[0])
			set_named(env, opts, "libbpfLog", make_string(env, text));
		vlog = verifier_log(text);
		pthread_mutex_unlock(&log_lock);
		if (vlog) {
			set_named(env, opts, "verifierLog", make_string(env, vlog));
			free(vlog);
		}
	}
	if (error_class && napi_get_reference_value(env, error_class, &ctor) == napi_ok && ctor)
		has_class = true;
	if (has_class) {
		napi_value args[2] = { msg, opts };

		if (napi_new_instance(env, ctor, 2, args, &error) != napi_ok)
			has_class = false;
	}
	if (!has_class) {
		napi_value props;
		napi_value keys;
		uint32_t n = 0;

		napi_create_error(env, NULL, msg, &error);
		props = opts;
		napi_get_property_names(env, props, &keys);
		napi_get_array_length(env, keys, &n);
		for (uint32_t i = 0; i < n; i++) {
			napi_value k, v;

			napi_get_element(env, keys, i, &k);
			napi_get_property(env, props, k, &v);
			napi_set_property(env, error, k, v);
		}
	}
	napi_throw(env, error);
}

void throw_errno(napi_env env, const char *op, int err)
{
	char message[512];
	const char *name;

	if (err < 0)
		err = -err;
	if (err == 0)
		err = EINVAL;
	name = strerrorname_np(err);
	snprintf(message, sizeof(message), "%s: %s", op, strerror(err));
	throw_with(env, message, name ? name : "EUNKNOWN", err, op, true);
}

void throw_arg(napi_env env, const char *fmt, ...)
{
	char message[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	throw_with(env, message, "ERR_INVALID_ARG", 0, NULL, false);
}

void napi_throw_last(napi_env env, const char *what)
{
	const napi_extended_error_info *info = NULL;
	bool pending = false;

	napi_is_exception_pending(env, &pending);
	if (pending)
		return;
	napi_get_last_error_info(env, &info);
	throw_arg(env, "internal N-API failure in %s: %s", what,
		  info && info->error_message ? info->error_message : "unknown");
}

/* ---- argument helpers ------------------------------------------------------------------- */

bool arg_count(napi_env env, napi_callback_info info, size_t want, napi_value *argv, size_t *argc)
{
	/* *argc, when given, is the capacity of argv (for optional trailing arguments) */
	size_t n = argc && *argc > want ? *argc : want;

	if (napi_get_cb_info(env, info, &n, argv, NULL, NULL) != napi_ok) {
		napi_throw_last(env, "napi_get_cb_info");
		return false;
	}
	if (n < want) {
		throw_arg(env, "expected %zu arguments, got %zu", want, n);
		return false;
	}
	if (argc)
		*argc = n;
	return true;
}

bool is_nullish(napi_env env, napi_value v)
{
	napi_valuetype t;

	if (!v || napi_typeof(env, v, &t) != napi_ok)
		return true;
	return t == napi_null || t == napi_undefined;
}

bool get_u32(napi_env env, napi_value v, const char *name, uint32_t *out)
{
	double d;

	if (napi_get_value_double(env, v, &d) != napi_ok || d < 0 || d > 4294967295.0 ||
	    d != (double)(uint32_t)d) {
		throw_arg(env, "%s: must be an integer 0..4294967295", name);
		return false;
	}
	*out = (uint32_t)d;
	return true;
}

bool get_i32(napi_env env, napi_value v, const char *name, int32_t *out)
{
	double d;

	if (napi_get_value_double(env, v, &d) != napi_ok || d < -2147483648.0 || d > 2147483647.0 ||
	    d != (double)(int32_t)d) {
		throw_arg(env, "%s: must be a 32-bit integer", name);
		return false;
	}
	*out = (int32_t)d;
	return true;
}

bool get_bool(napi_env env, napi_value v, const char *name, bool *out)
{
	if (napi_get_value_bool(env, v, out) != napi_ok) {
		throw_arg(env, "%s: must be a boolean", name);
		return false;
	}
	return true;
}

char *get_string(napi_env env, napi_value v, const char *name)
{
	size_t len = 0;
	char *s;

	if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
		throw_arg(env, "%s: must be a string", name);
		return NULL;
	}
	s = malloc(len + 1);
	if (!s) {
		throw_errno(env, name, ENOMEM);
		return NULL;
	}
	napi_get_value_string_utf8(env, v, s, len + 1, &len);
	if (strlen(s) != len) {
		free(s);
		throw_arg(env, "%s: must not contain NUL characters", name);
		return NULL;
	}
	return s;
}

bool get_opt_string(napi_env env, napi_value v, const char *name, char **out)
{
	*out = NULL;
	if (is_nullish(env, v))
		return true;
	*out = get_string(env, v, name);
	return *out != NULL;
}

bool get_buffer(napi_env env, napi_value v, const char *name, void **data, size_t *len)
{
	bool is_buf = false;

	if (napi_is_buffer(env, v, &is_buf) != napi_ok || !is_buf) {
		throw_arg(env, "%s: must be a Buffer", name);
		return false;
	}
	if (napi_get_buffer_info(env, v, data, len) != napi_ok) {
		napi_throw_last(env, "napi_get_buffer_info");
		return false;
	}
	return true;
}

napi_value get_prop(napi_env env, napi_value obj, const char *key)
{
	napi_value v = NULL;

	if (is_nullish(env, obj))
		return NULL;
	if (napi_get_named_property(env, obj, key, &v) != napi_ok)
		return NULL;
	return v;
}

napi_value make_u32(napi_env env, uint32_t v)
{
	napi_value r;

	napi_create_uint32(env, v, &r);
	return r;
}

napi_value make_i32(napi_env env, int32_t v)
{
	napi_value r;

	napi_create_int32(env, v, &r);
	return r;
}

napi_value make_string(napi_env env, const char *s)
{
	napi_value r;

	napi_create_string_utf8(env, s ? s : "", NAPI_AUTO_LENGTH, &r);
	return r;
}

napi_value make_bool(napi_env env, bool v)
{
	napi_value r;

	napi_get_boolean(env, v, &r);
	return r;
}

napi_value make_null(napi_env env)
{
	napi_value r;

	napi_get_null(env, &r);
	return r;
}

napi_value make_undefined(napi_env env)
{
	napi_value r;

	napi_get_undefined(env, &r);
	return r;
}

void set_named(napi_env env, napi_value obj, const char *key, napi_value v)
{
	napi_set_named_property(env, obj, key, v);
}

void export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb)
{
	napi_value fn;

	napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn);
	napi_set_named_property(env, exports, name, fn);
}

/* ---- network namespaces ----------------------------------------------------------------- */

int netns_enter(const char *path, int *saved_fd)
{
	int target, err;

	*saved_fd = -1;
	if (!path)
		return 0;
	*saved_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (*saved_fd < 0)
		return -errno;
	target = open(path, O_RDONLY | O_CLOEXEC);
	if (target < 0) {
		err = -errno;
		close(*saved_fd);
		*saved_fd = -1;
		return err;
	}
	if (setns(target, CLONE_NEWNET) < 0) {
		err = -errno;
		close(target);
		close(*saved_fd);
		*saved_fd = -1;
		return err;
	}
	close(target);
	return 0;
}

void netns_leave(int saved_fd)
{
	if (saved_fd < 0)
		return;
	/* The JavaScript thread must never be left in a pod's or node's namespace: every later
	 * socket it opened would silently land there. There is no safe way on. */
	if (setns(saved_fd, CLONE_NEWNET) < 0) {
		fprintf(stderr, "@ciliate/bpf: cannot return to the original network namespace: %s\n",
			strerror(errno));
		abort();
	}
	close(saved_fd);
}

/* ---- module ------------------------------------------------------------------------------ */

static napi_value init(napi_env env, napi_value exports)
{
	log_install();
	export_fn(env, exports, "setErrorClass", set_error_class);
	register_object(env, exports);
	register_map(env, exports);
	register_attach(env, exports);
	register_ringbuf(env, exports);
	register_misc(env, exports);
	return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
