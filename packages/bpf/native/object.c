// SPDX-License-Identifier: Apache-2.0
/* BPF objects: open, set load-time constants, choose pin paths, load, describe, close. */
#define _GNU_SOURCE
#include "addon.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct obj_handle {
	struct bpf_object *obj;
	bool loaded;
};

static void obj_finalize(napi_env env, void *data, void *hint)
{
	struct obj_handle *h = data;

	(void)env;
	(void)hint;
	if (h->obj)
		bpf_object__close(h->obj);
	free(h);
}

static struct obj_handle *get_handle(napi_env env, napi_value v)
{
	struct obj_handle *h = NULL;
	napi_valuetype t;

	if (napi_typeof(env, v, &t) != napi_ok || t != napi_external ||
	    napi_get_value_external(env, v, (void **)&h) != napi_ok || !h) {
		throw_arg(env, "object: not an object handle");
		return NULL;
	}
	if (!h->obj) {
		throw_arg(env, "object: already closed");
		return NULL;
	}
	return h;
}

/* openObject(path, { pinRoot?, name? }) */
static napi_value open_object(napi_env env, napi_callback_info info)
{
	napi_value argv[2], result;
	char *path = NULL, *pin_root = NULL, *name = NULL;
	struct obj_handle *h;
	struct bpf_object *obj;
	size_t argc = 2;
	int err;

	if (!arg_count(env, info, 2, argv, &argc))
		return NULL;
	path = get_string(env, argv[0], "path");
	if (!path)
		return NULL;
	if (!get_opt_string(env, get_prop(env, argv[1], "pinRoot"), "pinRoot", &pin_root) ||
	    !get_opt_string(env, get_prop(env, argv[1], "name"), "name", &name)) {
		free(path);
		return NULL;
	}
	{
		LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_root, .object_name = name);

		log_reset();
		obj = bpf_object__open_file(path, &opts);
		err = obj ? 0 : -errno;
	}
	free(path);
	free(pin_root);
	free(name);
	if (!obj) {
		throw_errno(env, "bpf_object__open_file", err);
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		bpf_object__close(obj);
		throw_errno(env, "openObject", ENOMEM);
		return NULL;
	}
	h->obj = obj;
	if (napi_create_external(env, h, obj_finalize, NULL, &result) != napi_ok) {
		bpf_object__close(obj);
		free(h);
		napi_throw_last(env, "napi_create_external");
		return NULL;
	}
	return result;
}

static napi_value close_object(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	struct obj_handle *h = NULL;
	napi_valuetype t;

	if (!arg_count(env, info, 1, argv, NULL))
		return NULL;
	/* Closing twice is harmless. */
	if (napi_typeof(env, argv[0], &t) == napi_ok && t == napi_external &&
	    napi_get_value_external(env, argv[0], (void **)&h) == napi_ok && h && h->obj) {
		bpf_object__close(h->obj);
		h->obj = NULL;
	}
	return make_undefined(env);
}

static struct bpf_map *find_map(napi_env env, struct obj_handle *h, napi_value name_v)
{
	struct bpf_map *map;
	char *name = get_string(env, name_v, "map");

	if (!name)
		return NULL;
	map = bpf_object__find_map_by_name(h->obj, name);
	if (!map)
		throw_arg(env, "map \"%s\" is not in object \"%s\"", name, bpf_object__name(h->obj));
	free(name);
	return map;
}

static struct bpf_map *rodata_map(struct bpf_object *obj)
{
	struct bpf_map *map;

	bpf_object__for_each_map(map, obj) {
		const char *n = bpf_map__name(map);
		size_t len = strlen(n);

		if (bpf_map__is_internal(map) && len >= 7 && strcmp(n + len - 7, ".rodata") == 0)
			return map;
	}
	return NULL;
}

/* Calls fn for every variable of the .rodata section, with its offset and size. */
static int for_each_const(struct bpf_object *obj,
			  int (*fn)(void *ctx, const char *name, uint32_t off, uint32_t size),
			  void *ctx)
{
	struct btf *btf = bpf_object__btf(obj);
	int id, n, ret;

	if (!btf)
		return 0;
	id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	if (id < 0)
		return 0;
	{
		const struct btf_type *sec = btf__type_by_id(btf, id);
		const struct btf_var_secinfo *vs = btf_var_secinfos(sec);

		n = btf_vlen(sec);
		for (int i = 0; i < n; i++, vs++) {
			const struct btf_type *var = btf__type_by_id(btf, vs->type);
			const char *vname = btf__name_by_offset(btf, var->name_off);

			ret = fn(ctx, vname, vs->offset, vs->size);
			if (ret)
				return ret;
		}
	}
	return 0;
}

struct const_list_ctx {
	napi_env env;
	napi_value arr;
	uint32_t i;
};

static int add_const(void *p, const char *name, uint32_t off, uint32_t size)
{
	struct const_list_ctx *c = p;
	napi_value o;

	/* "__" names are not settings (e.g. the BTF anchors of notify.h) */
	if (strncmp(name, "__", 2) == 0)
		return 0;

	napi_create_object(c->env, &o);
	set_named(c->env, o, "name", make_string(c->env, name));
	set_named(c->env, o, "offset", make_u32(c->env, off));
	set_named(c->env, o, "size", make_u32(c->env, size));
	napi_set_element(c->env, c->arr, c->i++, o);
	return 0;
}

/* objectInfo(handle) -> { name, loaded, maps: [...], programs: [...], constants: [...] } */
static napi_value object_info(napi_env env, napi_callback_info info)
{
	napi_value argv[1], res, maps, progs, consts;
	struct obj_handle *h;
	struct bpf_map *map;
	struct bpf_program *prog;
	uint32_t i = 0;

	if (!arg_count(env, info, 1, argv, NULL))
		return NULL;
	h = get_handle(env, argv[0]);
	if (!h)
		return NULL;
	NAPI_CALL(env, napi_create_object(env, &res));
	set_named(env, res, "name", make_string(env, bpf_object__name(h->obj)));
	set_named(env, res, "loaded", make_bool(env, h->loaded));

	NAPI_CALL(env, napi_create_array(env, &maps));
	bpf_object__for_each_map(map, h->obj) {
		napi_value m;
		const char *pin = bpf_map__pin_path(map);

		napi_create_object(env, &m);
		set_named(env, m, "name", make_string(env, bpf_map__name(map)));
		set_named(env, m, "type", make_u32(env, bpf_map__type(map)));
		set_named(env, m, "keySize", make_u32(env, bpf_map__key_size(map)));
		set_named(env, m, "valueSize", make_u32(env, bpf_map__value_size(map)));
		set_named(env, m, "maxEntries", make_u32(env, bpf_map__max_entries(map)));
		set_named(env, m, "flags", make_u32(env, bpf_map__map_flags(map)));
		set_named(env, m, "internal", make_bool(env, bpf_map__is_internal(map)));
		set_named(env, m, "pinPath", pin ? make_string(env, pin) : make_null(env));
		set_named(env, m, "pinned", make_bool(env, bpf_map__is_pinned(map)));
		set_named(env, m, "fd", make_i32(env, h->loaded ? bpf_map__fd(map) : -1));
		napi_set_element(env, maps, i++, m);
	}
	set_named(env, res, "maps", maps);

	i = 0;
	NAPI_CALL(env, napi_create_array(env, &progs));
	bpf_object__for_each_program(prog, h->obj) {
		napi_value p;

		napi_create_object(env, &p);
		set_named(env, p, "name", make_string(env, bpf_program__name(prog)));
		set_named(env, p, "section", make_string(env, bpf_program__section_name(prog)));
		set_named(env, p, "type", make_u32(env, bpf_program__type(prog)));
		set_named(env, p, "fd", make_i32(env, h->loaded ? bpf_program__fd(prog) : -1));
		napi_set_element(env, progs, i++, p);
	}
	set_named(env, res, "programs", progs);

	{
		struct const_list_ctx c = { .env = env, .i = 0 };

		NAPI_CALL(env, napi_create_array(env, &consts));
		c.arr = consts;
		for_each_const(h->obj, add_const, &c);
		set_named(env, res, "constants", consts);
	}
	return res;
}

struct const_find_ctx {
	const char *name;
	uint32_t off, size;
	bool found;
};

static int find_const(void *p, const char *name, uint32_t off, uint32_t size)
{
	struct const_find_ctx *c = p;

	if (strcmp(name, c->name) != 0)
		return 0;
	c->off = off;
	c->size = size;
	c->found = true;
	return 1;
}

/* setConstant(handle, name, bytes): before load only. */
static napi_value set_constant(napi_env env, napi_callback_info info)
{
	napi_value argv[3];
	struct const_find_ctx c = { 0 };
	struct obj_handle *h;
	struct bpf_map *map;
	char *name;
	void *bytes, *data;
	size_t len, size = 0;

	if (!arg_count(env, info, 3, argv, NULL))
		return NULL;
	h = get_handle(env, argv[0]);
	if (!h)
		return NULL;
	if (h->loaded) {
		throw_arg(env, "constants can only be set before the object is loaded");
		return NULL;
	}
	name = get_string(env, argv[1], "name");
	if (!name)
		return NULL;
	if (!get_buffer(env, argv[2], "value", &bytes, &len)) {
		free(name);
		return NULL;
	}
	c.name = name;
	map = rodata_map(h->obj);
	if (!map || !for_each_const(h->obj, find_const, &c) || !c.found) {
		throw_arg(env, "constant \"%s\" is not a volatile const global of object \"%s\"", name,
			  bpf_object__name(h->obj));
		free(name);
		return NULL;
	}
	if (len != c.size) {
		throw_arg(env, "constant \"%s\" is %u bytes, got %zu", name, c.size, len);
		free(name);
		return NULL;
	}
	free(name);
	/* Before load, libbpf keeps .rodata's initial image in writable memory. */
	data = (void *)bpf_map__initial_value(map, &size);
	if (!data || c.off + c.size > size) {
		throw_errno(env, "bpf_map__initial_value", EINVAL);
		return NULL;
	}
	memcpy((char *)data + c.off, bytes, len);
	return make_undefined(env);
}

/* setMapPinPath(handle, map, path|null) */
static napi_value set_map_pin_path(napi_env env, napi_callback_info info)
{
	napi_value argv[3];
	struct obj_handle *h;
	struct bpf_map *map;
	char *path;
	int err;

	if (!arg_count(env, info, 3, argv, NULL))
		return NULL;
	h = get_handle(env, argv[0]);
	if (!h)
		return NULL;
	map = find_map(env, h, argv[1]);
	if (!map)
		return NULL;
	if (!get_opt_string(env, argv[2], "path", &path))
		return NULL;
	log_reset();
	err = bpf_map__set_pin_path(map, path);
	free(path);
	if (err) {
		throw_errno(env, "bpf_map__set_pin_path", err);
		return NULL;
	}
	return make_undefined(env);
}

/* setMapMaxEntries(handle, map, n) */
static napi_value set_map_max_entries(napi_env env, napi_callback_info info)
{
	napi_value argv[3];
	struct obj_handle *h;
	struct bpf_map *map;
	uint32_t n;
	int err;

	if (!arg_count(env, info, 3, argv, NULL))
		return NULL;
	h = get_handle(env, argv[0]);
	if (!h)
		return NULL;
	map = find_map(env, h, argv[1]);
	if (!map || !get_u32(env, argv[2], "maxEntries", &n))
		return NULL;
	log_reset();
	err = bpf_map__set_max_entries(map, n);
	if (err) {
		throw_errno(env, "bpf_map__set_max_entries", err);
		return NULL;
	}
	return make_undefined(env);
}

/* reuseMapFd(handle, map, fd): the object uses an already open map instead of creating one. */
static napi_value reuse_map_fd(napi_env env, napi_callback_info info)
{
	napi_value argv[3];
	struct obj_handle *h;
	struct bpf_map *map;
	int32_t fd;
	int err;

	if (!arg_count(env, info, 3, argv, NULL))
		return NULL;
	h = get_handle(env, argv[0]);
	if (!h)
		return NULL;
	map = find_map(env, h, argv[1]);
	if (!map || !get_i32(env, argv[2], "fd", &fd))
		return NULL;
	log_reset();
	err = bpf_map__reuse_fd(map, fd);
	if (err) {
		throw_errno(env, "bpf_map__reuse_fd", err);
		return NULL;
	}
	return make_undefined(env);
}

/* loadObject(handle): creates (or reuses pinned) maps, then verifies and loads programs. */
static napi_value load_object(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	struct obj_handle *h;
	int err;

	if (!arg_count(env, info, 1, argv, NULL))
		return NULL;
	h = get_handle(env, argv[0]);
	if (!h)
		return NULL;
	if (h->loaded) {
		throw_arg(env, "object \"%s\" is already loaded", bpf_object__name(h->obj));
		return NULL;
	}
	log_reset();
	err = bpf_object__load(h->obj);
	if (err) {
		throw_errno(env, "bpf_object__load", err);
		return NULL;
	}
	h->loaded = true;
	return make_undefined(env);
}

/* btfStruct(handle, name) -> { name, size, members: [{ name, offset, bitOffset, bitSize,
 * size, kind, typeName }] } or null: the C layout as the compiler recorded it. */
static const char *kind_name(int kind)
{
	switch (kind) {
	case BTF_KIND_INT: return "int";
	case BTF_KIND_PTR: return "ptr";
	case BTF_KIND_ARRAY: return "array";
	case BTF_KIND_STRUCT: return "struct";
	case BTF_KIND_UNION: return "union";
	case BTF_KIND_ENUM: return "enum";
	default: return "other";
	}
}

static napi_value describe_composite(napi_env env, const struct btf *btf, int id);

static napi_value describe_type(napi_env env, const struct btf *btf, int id)
{
	napi_value o;
	const struct btf_type *t;
	int rid = btf__resolve_type(btf, id);
	long long size;

	if (rid < 0)
		return make_null(env);
	t = btf__type_by_id(btf, rid);
	size = btf__resolve_size(btf, rid);
	napi_create_object(env, &o);
	set_named(env, o, "kind", make_string(env, kind_name(btf_kind(t))));
	set_named(env, o, "name", make_string(env, btf__name_by_offset(btf, t->name_off)));
	set_named(env, o, "size", make_u32(env, size < 0 ? 0 : (uint32_t)size));
	if (btf_is_array(t)) {
		const struct btf_array *a = btf_array(t);

		set_named(env, o, "length", make_u32(env, a->nelems));
		set_named(env, o, "element", describe_type(env, btf, a->type));
	} else if (btf_is_composite(t)) {
		set_named(env, o, "members", get_prop(env, describe_composite(env, btf, rid), "members"));
	}
	return o;
}

static napi_value describe_composite(napi_env env, const struct btf *btf, int id)
{
	const struct btf_type *t = btf__type_by_id(btf, id);
	const struct btf_member *m = btf_members(t);
	napi_value o, members;
	int n = btf_vlen(t);

	napi_create_object(env, &o);
	set_named(env, o, "kind", make_string(env, kind_name(btf_kind(t))));
	set_named(env, o, "name", make_string(env, btf__name_by_offset(btf, t->name_off)));
	set_named(env, o, "size", make_u32(env, t->size));
	napi_create_array(env, &members);
	for (int i = 0; i < n; i++, m++) {
		napi_value mo;
		uint32_t bit_off = btf_member_bit_offset(t, i);

		napi_create_object(env, &mo);
		set_named(env, mo, "name", make_string(env, btf__name_by_offset(btf, m->name_off)));
		set_named(env, mo, "offset", make_u32(env, bit_off / 8));
		set_named(env, mo, "bitOffset", make_u32(env, bit_off));
		set_named(env, mo, "bitSize", make_u32(env, btf_member_bitfield_size(t, i)));
		set_named(env, mo, "type", describe_type(env, btf, m->type));
		napi_set_element(env, members, (uint32_t)i, mo);
	}
	set_named(env, o, "members", members);
	return o;
}

static napi_value btf_struct(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	struct obj_handle *h;
	struct btf *btf;
	char *name;
	int id;

	if (!arg_count(env, info, 2, argv, NULL))
		return NULL;
	h = get_handle(env, argv[0]);
	if (!h)
		return NULL;
	name = get_string(env, argv[1], "name");
	if (!name)
		return NULL;
	btf = bpf_object__btf(h->obj);
	id = btf ? btf__find_by_name_kind(btf, name, BTF_KIND_STRUCT) : -1;
	if (id < 0 && btf)
		id = btf__find_by_name_kind(btf, name, BTF_KIND_UNION);
	free(name);
	if (id < 0)
		return make_null(env);
	return describe_composite(env, btf, id);
}

void register_object(napi_env env, napi_value exports)
{
	export_fn(env, exports, "openObject", open_object);
	export_fn(env, exports, "closeObject", close_object);
	export_fn(env, exports, "objectInfo", object_info);
	export_fn(env, exports, "setConstant", set_constant);
	export_fn(env, exports, "setMapPinPath", set_map_pin_path);
	export_fn(env, exports, "setMapMaxEntries", set_map_max_entries);
	export_fn(env, exports, "reuseMapFd", reuse_map_fd);
	export_fn(env, exports, "loadObject", load_object);
	export_fn(env, exports, "btfStruct", btf_struct);
}
