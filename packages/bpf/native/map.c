// SPDX-License-Identifier: Apache-2.0
/* Map operations on file descriptors. The TypeScript layer checks sizes against each map's
 * layout, but it is not what keeps memory safe: the kernel reads key_size bytes of every key
 * and writes a whole value (one per possible CPU for per-CPU maps) into the buffer it is given,
 * so a buffer of the wrong size handed to these functions directly would be read or written
 * past its end. Every call therefore asks the kernel for the map's sizes and refuses, before
 * the syscall, any buffer that does not match them, naming the argument and the size. */
#define _GNU_SOURCE
#include "addon.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool get_fd(napi_env env, napi_value v, int *fd)
{
	int32_t i;

	if (!get_i32(env, v, "fd", &i))
		return false;
	if (i < 0) {
		throw_arg(env, "fd: the map or object is closed");
		return false;
	}
	*fd = i;
	return true;
}

static bool get_flags64(napi_env env, napi_value v, uint64_t *out)
{
	uint32_t f = 0;

	*out = 0;
	if (is_nullish(env, v))
		return true;
	if (!get_u32(env, v, "flags", &f))
		return false;
	*out = f;
	return true;
}

/* What the kernel reads per key and writes per value for the map behind fd (its
 * bpf_map_value_size()). Asked on every call, not cached by fd: descriptor numbers are reused,
 * and a cached answer could belong to a map closed since. */
struct elem_sizes {
	uint32_t key;
	uint32_t value;
	bool percpu;
};

static bool map_sizes(napi_env env, int fd, struct elem_sizes *out)
{
	struct bpf_map_info mi;
	__u32 len = sizeof(mi);
	uint64_t value;
	int cpus;

	memset(&mi, 0, sizeof(mi));
	if (bpf_obj_get_info_by_fd(fd, &mi, &len)) {
		throw_errno(env, "bpf_obj_get_info_by_fd", errno);
		return false;
	}
	out->key = mi.key_size;
	out->value = mi.value_size;
	out->percpu = mi.type == BPF_MAP_TYPE_PERCPU_HASH || mi.type == BPF_MAP_TYPE_PERCPU_ARRAY ||
		      mi.type == BPF_MAP_TYPE_LRU_PERCPU_HASH ||
		      mi.type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
	if (out->percpu) {
		cpus = libbpf_num_possible_cpus();
		if (cpus < 0) {
			throw_errno(env, "libbpf_num_possible_cpus", -cpus);
			return false;
		}
		value = (((uint64_t)mi.value_size + 7) & ~(uint64_t)7) * (uint64_t)cpus;
		if (value > UINT32_MAX) {
			throw_arg(env, "map value size %llu does not fit", (unsigned long long)value);
			return false;
		}
		out->value = (uint32_t)value;
	}
	return true;
}

/* `name` (a buffer of `len` bytes, or a size) must be exactly `want` bytes. */
static bool check_size(napi_env env, const char *name, uint64_t len, uint64_t want,
		       const char *what)
{
	if (len == want)
		return true;
	throw_arg(env, "%s: must be %llu bytes (%s), got %llu", name, (unsigned long long)want, what,
		  (unsigned long long)len);
	return false;
}

static bool check_key(napi_env env, const struct elem_sizes *sz, const char *name, size_t len)
{
	return check_size(env, name, len, sz->key, "the map's key_size");
}

static bool check_value(napi_env env, const struct elem_sizes *sz, const char *name, uint64_t len)
{
	return check_size(env, name, len, sz->value,
			  sz->percpu ? "the map's value_size rounded up to 8, times the possible CPUs" :
				       "the map's value_size");
}

/* mapLookup(fd, key, valueSize, flags?) -> Buffer | null */
static napi_value map_lookup(napi_env env, napi_callback_info info)
{
	napi_value argv[4] = { 0 }, out;
	struct elem_sizes sz;
	void *key, *val;
	size_t klen, argc = 4;
	uint32_t vsize;
	uint64_t flags;
	int fd, err;

	if (!arg_count(env, info, 3, argv, &argc))
		return NULL;
	if (!get_fd(env, argv[0], &fd) || !get_buffer(env, argv[1], "key", &key, &klen) ||
	    !get_u32(env, argv[2], "valueSize", &vsize) ||
	    !get_flags64(env, argc > 3 ? argv[3] : NULL, &flags))
		return NULL;
	if (!map_sizes(env, fd, &sz) || !check_key(env, &sz, "key", klen) ||
	    !check_value(env, &sz, "valueSize", vsize))
		return NULL;
	NAPI_CALL(env, napi_create_buffer(env, vsize, &val, &out));
	err = flags ? bpf_map_lookup_elem_flags(fd, key, val, flags) : bpf_map_lookup_elem(fd, key, val);
	if (err) {
		if (errno == ENOENT)
			return make_null(env);
		throw_errno(env, "bpf_map_lookup_elem", errno);
		return NULL;
	}
	return out;
}

/* mapLookupAndDelete(fd, key, valueSize) -> Buffer | null */
static napi_value map_lookup_and_delete(napi_env env, napi_callback_info info)
{
	napi_value argv[3], out;
	struct elem_sizes sz;
	void *key, *val;
	size_t klen;
	uint32_t vsize;
	int fd;

	if (!arg_count(env, info, 3, argv, NULL))
		return NULL;
	if (!get_fd(env, argv[0], &fd) || !get_buffer(env, argv[1], "key", &key, &klen) ||
	    !get_u32(env, argv[2], "valueSize", &vsize))
		return NULL;
	if (!map_sizes(env, fd, &sz) || !check_key(env, &sz, "key", klen) ||
	    !check_value(env, &sz, "valueSize", vsize))
		return NULL;
	NAPI_CALL(env, napi_create_buffer(env, vsize, &val, &out));
	if (bpf_map_lookup_and_delete_elem(fd, key, val)) {
		if (errno == ENOENT)
			return make_null(env);
		throw_errno(env, "bpf_map_lookup_and_delete_elem", errno);
		return NULL;
	}
	return out;
}

/* mapUpdate(fd, key, value, flags?) */
static napi_value map_update(napi_env env, napi_callback_info info)
{
	napi_value argv[4] = { 0 };
	struct elem_sizes sz;
	void *key, *val;
	size_t klen, vlen, argc = 4;
	uint64_t flags;
	int fd;

	if (!arg_count(env, info, 3, argv, &argc))
		return NULL;
	if (!get_fd(env, argv[0], &fd) || !get_buffer(env, argv[1], "key", &key, &klen) ||
	    !get_buffer(env, argv[2], "value", &val, &vlen) ||
	    !get_flags64(env, argc > 3 ? argv[3] : NULL, &flags))
		return NULL;
	if (!map_sizes(env, fd, &sz) || !check_key(env, &sz, "key", klen) ||
	    !check_value(env, &sz, "value", vlen))
		return NULL;
	if (bpf_map_update_elem(fd, key, val, flags)) {
		throw_errno(env, "bpf_map_update_elem", errno);
		return NULL;
	}
	return make_undefined(env);
}

/* mapDelete(fd, key) -> true if an entry was removed */
static napi_value map_delete(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	struct elem_sizes sz;
	void *key;
	size_t klen;
	int fd;

	if (!arg_count(env, info, 2, argv, NULL))
		return NULL;
	if (!get_fd(env, argv[0], &fd) || !get_buffer(env, argv[1], "key", &key, &klen))
		return NULL;
	if (!map_sizes(env, fd, &sz) || !check_key(env, &sz, "key", klen))
		return NULL;
	if (bpf_map_delete_elem(fd, key)) {
		if (errno == ENOENT)
			return make_bool(env, false);
		throw_errno(env, "bpf_map_delete_elem", errno);
		return NULL;
	}
	return make_bool(env, true);
}

/* mapGetNextKey(fd, key | null, keySize) -> Buffer | null at the end */
static napi_value map_get_next_key(napi_env env, napi_callback_info info)
{
	napi_value argv[3], out;
	struct elem_sizes sz;
	void *key = NULL, *next;
	size_t klen = 0;
	uint32_t ksize;
	int fd;

	if (!arg_count(env, info, 3, argv, NULL))
		return NULL;
	if (!get_fd(env, argv[0], &fd) || !get_u32(env, argv[2], "keySize", &ksize))
		return NULL;
	if (!is_nullish(env, argv[1]) && !get_buffer(env, argv[1], "key", &key, &klen))
		return NULL;
	if (!map_sizes(env, fd, &sz) || !check_key(env, &sz, "keySize", ksize) ||
	    (key && !check_key(env, &sz, "key", klen)))
		return NULL;
	NAPI_CALL(env, napi_create_buffer(env, ksize, &next, &out));
	if (bpf_map_get_next_key(fd, key, next)) {
		if (errno == ENOENT)
			return make_null(env);
		throw_errno(env, "bpf_map_get_next_key", errno);
		return NULL;
	}
	return out;
}

/* mapLookupBatch(fd, inBatch | null, keySize, valueSize, count, del, elemFlags)
 *   -> { keys, values, count, nextBatch, done } */
static napi_value map_lookup_batch(napi_env env, napi_callback_info info)
{
	napi_value argv[7], res, keys_v, vals_v, next_v;
	struct elem_sizes sz;
	void *in = NULL, *keys, *vals, *next;
	size_t inlen = 0;
	uint32_t ksize, vsize, count, elem_flags, batch_size;
	bool del;
	int fd, err;

	if (!arg_count(env, info, 7, argv, NULL))
		return NULL;
	if (!get_fd(env, argv[0], &fd) || !get_u32(env, argv[2], "keySize", &ksize) ||
	    !get_u32(env, argv[3], "valueSize", &vsize) || !get_u32(env, argv[4], "count", &count) ||
	    !get_bool(env, argv[5], "delete", &del) || !get_u32(env, argv[6], "elemFlags", &elem_flags))
		return NULL;
	if (!is_nullish(env, argv[1]) && !get_buffer(env, argv[1], "inBatch", &in, &inlen))
		return NULL;
	if (count == 0) {
		throw_arg(env, "count: must be at least 1");
		return NULL;
	}
	if (!map_sizes(env, fd, &sz) || !check_key(env, &sz, "keySize", ksize) ||
	    !check_value(env, &sz, "valueSize", vsize))
		return NULL;
	/* The batch token is opaque; hash maps use a 4-byte bucket index, others the key. */
	batch_size = ksize < 8 ? 8 : ksize;
	if (in && inlen < batch_size) {
		throw_arg(env, "inBatch: must be at least %u bytes", batch_size);
		return NULL;
	}
	NAPI_CALL(env, napi_create_buffer(env, (size_t)ksize * count, &keys, &keys_v));
	NAPI_CALL(env, napi_create_buffer(env, (size_t)vsize * count, &vals, &vals_v));
	NAPI_CALL(env, napi_create_buffer(env, batch_size, &next, &next_v));
	{
		LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = elem_flags);
		__u32 n = count;

		if (del)
			err = bpf_map_lookup_and_delete_batch(fd, in, next, keys, vals, &n, &opts);
		else
			err = bpf_map_lookup_batch(fd, in, next, keys, vals, &n, &opts);
		if (err && errno != ENOENT) {
			throw_errno(env, del ? "bpf_map_lookup_and_delete_batch" : "bpf_map_lookup_batch",
				    errno);
			return NULL;
		}
		NAPI_CALL(env, napi_create_object(env, &res));
		set_named(env, res, "keys", keys_v);
		set_named(env, res, "values", vals_v);
		set_named(env, res, "count", make_u32(env, n));
		set_named(env, res, "nextBatch", next_v);
		set_named(env, res, "done", make_bool(env, err != 0));
	}
	return res;
}

/* mapUpdateBatch(fd, keys, values, count, elemFlags) -> count */
static napi_value map_update_batch(napi_env env, napi_callback_info info)
{
	napi_value argv[5];
	struct elem_sizes sz;
	void *keys, *vals;
	size_t klen, vlen;
	uint32_t count, elem_flags;
	int fd;

	if (!arg_count(env, info, 5, argv, NULL))
		return NULL;
	if (!get_fd(env, argv[0], &fd) || !get_buffer(env, argv[1], "keys", &keys, &klen) ||
	    !get_buffer(env, argv[2], "values", &vals, &vlen) ||
	    !get_u32(env, argv[3], "count", &count) ||
	    !get_u32(env, argv[4], "elemFlags", &elem_flags))
		return NULL;
	if (!map_sizes(env, fd, &sz) ||
	    !check_size(env, "keys", klen, (uint64_t)sz.key * count, "count times the map's key_size") ||
	    !check_size(env, "values", vlen, (uint64_t)sz.value * count,
			"count times the map's value size"))
		return NULL;
	{
		LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = elem_flags);
		__u32 n = count;

		if (bpf_map_update_batch(fd, keys, vals, &n, &opts)) {
			throw_errno(env, "bpf_map_update_batch", errno);
			return NULL;
		}
		return make_u32(env, n);
	}
}

/* mapDeleteBatch(fd, keys, count) -> count */
static napi_value map_delete_batch(napi_env env, napi_callback_info info)
{
	napi_value argv[3];
	struct elem_sizes sz;
	void *keys;
	size_t klen;
	uint32_t count;
	int fd;

	if (!arg_count(env, info, 3, argv, NULL))
		return NULL;
	if (!get_fd(env, argv[0], &fd) || !get_buffer(env, argv[1], "keys", &keys, &klen) ||
	    !get_u32(env, argv[2], "count", &count))
		return NULL;
	if (!map_sizes(env, fd, &sz) ||
	    !check_size(env, "keys", klen, (uint64_t)sz.key * count, "count times the map's key_size"))
		return NULL;
	{
		LIBBPF_OPTS(bpf_map_batch_opts, opts);
		__u32 n = count;

		if (bpf_map_delete_batch(fd, keys, &n, &opts)) {
			throw_errno(env, "bpf_map_delete_batch", errno);
			return NULL;
		}
		return make_u32(env, n);
	}
}

/* mapInfo(fd) -> { id, name, type, keySize, valueSize, maxEntries, flags } */
static napi_value map_info(napi_env env, napi_callback_info info)
{
	napi_value argv[1], res;
	struct bpf_map_info mi;
	__u32 len = sizeof(mi);
	int fd;

	if (!arg_count(env, info, 1, argv, NULL) || !get_fd(env, argv[0], &fd))
		return NULL;
	memset(&mi, 0, sizeof(mi));
	if (bpf_obj_get_info_by_fd(fd, &mi, &len)) {
		throw_errno(env, "bpf_obj_get_info_by_fd", errno);
		return NULL;
	}
	NAPI_CALL(env, napi_create_object(env, &res));
	set_named(env, res, "id", make_u32(env, mi.id));
	set_named(env, res, "name", make_string(env, mi.name));
	set_named(env, res, "type", make_u32(env, mi.type));
	set_named(env, res, "keySize", make_u32(env, mi.key_size));
	set_named(env, res, "valueSize", make_u32(env, mi.value_size));
	set_named(env, res, "maxEntries", make_u32(env, mi.max_entries));
	set_named(env, res, "flags", make_u32(env, mi.map_flags));
	return res;
}

/* objGet(path) -> fd of a pinned map or program */
static napi_value obj_get(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	char *path;
	int fd;

	if (!arg_count(env, info, 1, argv, NULL))
		return NULL;
	path = get_string(env, argv[0], "path");
	if (!path)
		return NULL;
	fd = bpf_obj_get(path);
	free(path);
	if (fd < 0) {
		throw_errno(env, "bpf_obj_get", errno);
		return NULL;
	}
	return make_i32(env, fd);
}

/* objPin(fd, path) */
static napi_value obj_pin(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	char *path;
	int fd, err;

	if (!arg_count(env, info, 2, argv, NULL) || !get_fd(env, argv[0], &fd))
		return NULL;
	path = get_string(env, argv[1], "path");
	if (!path)
		return NULL;
	err = bpf_obj_pin(fd, path) ? errno : 0;
	free(path);
	if (err) {
		throw_errno(env, "bpf_obj_pin", err);
		return NULL;
	}
	return make_undefined(env);
}

static napi_value close_fd(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	int fd;

	if (!arg_count(env, info, 1, argv, NULL) || !get_fd(env, argv[0], &fd))
		return NULL;
	if (close(fd)) {
		throw_errno(env, "close", errno);
		return NULL;
	}
	return make_undefined(env);
}

static napi_value possible_cpus(napi_env env, napi_callback_info info)
{
	int n = libbpf_num_possible_cpus();

	(void)info;
	if (n < 0) {
		throw_errno(env, "libbpf_num_possible_cpus", n);
		return NULL;
	}
	return make_u32(env, (uint32_t)n);
}

void register_map(napi_env env, napi_value exports)
{
	export_fn(env, exports, "mapLookup", map_lookup);
	export_fn(env, exports, "mapLookupAndDelete", map_lookup_and_delete);
	export_fn(env, exports, "mapUpdate", map_update);
	export_fn(env, exports, "mapDelete", map_delete);
	export_fn(env, exports, "mapGetNextKey", map_get_next_key);
	export_fn(env, exports, "mapLookupBatch", map_lookup_batch);
	export_fn(env, exports, "mapUpdateBatch", map_update_batch);
	export_fn(env, exports, "mapDeleteBatch", map_delete_batch);
	export_fn(env, exports, "mapInfo", map_info);
	export_fn(env, exports, "objGet", obj_get);
	export_fn(env, exports, "objPin", obj_pin);
	export_fn(env, exports, "closeFd", close_fd);
	export_fn(env, exports, "possibleCpus", possible_cpus);
}
