// SPDX-License-Identifier: Apache-2.0
/* Ring buffer reader. A native thread waits on the ring (epoll) and copies records into
 * batches; each batch goes to JavaScript through a thread-safe function, so the event loop
 * only ever runs the callback, never waits for the kernel. The queue to JavaScript is bounded:
 * when JavaScript falls behind, the thread blocks, the ring fills, and the BPF side counts the
 * events it could not reserve; forwarding is never slowed. */
#define _GNU_SOURCE
#include "addon.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define QUEUE_BATCHES 64

struct batch {
	uint32_t count;
	int err;            /* a failure of the reader thread, reported once */
	size_t used, cap;
	uint32_t *lens;
	uint32_t lens_cap;
	uint8_t *data;
};

struct reader {
	struct ring_buffer *rb;
	napi_threadsafe_function tsfn;
	pthread_t thread;
	bool thread_started;
	int wake_fd;
	int epoll_fd;
	atomic_bool stop;
	bool closed;
	uint32_t max_batch;
	struct batch *cur;
	atomic_uint_fast64_t samples, batches;
	struct reader_ref *ref; /* the JavaScript handle, while both exist */
};

struct reader_ref {
	struct reader *r;
};

static void batch_free(struct batch *b)
{
	if (!b)
		return;
	free(b->lens);
	free(b->data);
	free(b);
}

static int batch_add(struct batch *b, const void *data, size_t size)
{
	if (b->count == b->lens_cap) {
		uint32_t cap = b->lens_cap ? b->lens_cap * 2 : 64;
		uint32_t *nl = realloc(b->lens, cap * sizeof(*nl));

		if (!nl)
			return -ENOMEM;
		b->lens = nl;
		b->lens_cap = cap;
	}
	if (b->used + size > b->cap) {
		size_t cap = b->cap ? b->cap : 16384;
		uint8_t *nd;

		while (cap < b->used + size)
			cap *= 2;
		nd = realloc(b->data, cap);
		if (!nd)
			return -ENOMEM;
		b->data = nd;
		b->cap = cap;
	}
	memcpy(b->data + b->used, data, size);
	b->used += size;
	b->lens[b->count++] = (uint32_t)size;
	return 0;
}

/* Hands the current batch to JavaScript. Returns false once the reader is closing. */
static bool flush(struct reader *r)
{
	struct batch *b = r->cur;
	napi_status st;

	if (!b || (b->count == 0 && !b->err))
		return true;
	r->cur = NULL;
	st = napi_call_threadsafe_function(r->tsfn, b, napi_tsfn_blocking);
	if (st != napi_ok) {
		batch_free(b);
		return false;
	}
	atomic_fetch_add(&r->batches, 1);
	return true;
}

static int on_sample(void *ctx, void *data, size_t size)
{
	struct reader *r = ctx;
	int err;

	if (!r->cur) {
		r->cur = calloc(1, sizeof(*r->cur));
		if (!r->cur)
			return -ENOMEM;
	}
	err = batch_add(r->cur, data, size);
	if (err)
		return err;
	atomic_fetch_add(&r->samples, 1);
	if (r->cur->count >= r->max_batch && !flush(r))
		return -ECANCELED;
	return 0;
}

static void report_error(struct reader *r, int err)
{
	if (!r->cur)
		r->cur = calloc(1, sizeof(*r->cur));
	if (r->cur) {
		r->cur->err = err < 0 ? -err : err;
		flush(r);
	}
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct epoll_event evs[2];

	while (!atomic_load(&r->stop)) {
		int n = epoll_wait(r->epoll_fd, evs, 2, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			report_error(r, errno);
			break;
		}
		if (atomic_load(&r->stop))
			break;
		n = ring_buffer__consume(r->rb);
		if (n < 0 && n != -ECANCELED) {
			report_error(r, n);
			break;
		}
		if (!flush(r))
			break;
	}
	batch_free(r->cur);
	r->cur = NULL;
	napi_release_threadsafe_function(r->tsfn, napi_tsfn_release);
	return NULL;
}

static void call_js(napi_env env, napi_value cb, void *context, void *data)
{
	struct batch *b = data;
	napi_value argv[2], undef, arr, result;
	size_t off = 0;
	napi_status st;

	(void)context;
	if (!env || !cb) {
		/* the reader is being torn down: nobody is listening any more */
		batch_free(b);
		return;
	}
	napi_get_undefined(env, &undef);
	if (b->err) {
		napi_value msg, code, err;
		char text[128];

		snprintf(text, sizeof(text), "ring buffer reader: %s", strerror(b->err));
		napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
		napi_create_string_utf8(env, strerrorname_np(b->err) ? strerrorname_np(b->err) : "EIO",
					NAPI_AUTO_LENGTH, &code);
		napi_create_error(env, code, msg, &err);
		set_named(env, err, "errno", make_i32(env, b->err));
		set_named(env, err, "op", make_string(env, "ring_buffer__consume"));
		argv[0] = err;
		argv[1] = make_null(env);
	} else {
		napi_create_array_with_length(env, b->count, &arr);
		for (uint32_t i = 0; i < b->count; i++) {
			napi_value buf;

			napi_create_buffer_copy(env, b->lens[i], b->data + off, NULL, &buf);
			napi_set_element(env, arr, i, buf);
			off += b->lens[i];
		}
		argv[0] = make_null(env);
		argv[1] = arr;
	}
	batch_free(b);
	st = napi_call_function(env, undef, cb, 2, argv, &result);
	if (st == napi_pending_exception) {
		napi_value exc;

		/* Same as an exception in any event callback: the process decides (uncaught). */
		napi_get_and_clear_last_exception(env, &exc);
		napi_fatal_exception(env, exc);
	}
}

static void reader_finalize(napi_env env, void *data, void *hint)
{
	struct reader *r = data;

	uint64_t one = 1;

	(void)env;
	(void)hint;
	/* Normally the thread has stopped and released its reference before this runs; at
	 * environment teardown it may still be waiting, so stop it here. The function stays valid
	 * until this callback returns, so the thread's final release is safe. */
	atomic_store(&r->stop, true);
	if (write(r->wake_fd, &one, sizeof(one)) < 0) {
		/* cannot fail for a fresh eventfd */
	}
	if (r->thread_started)
		pthread_join(r->thread, NULL);
	if (r->ref)
		r->ref->r = NULL;
	ring_buffer__free(r->rb);
	if (r->wake_fd >= 0)
		close(r->wake_fd);
	if (r->epoll_fd >= 0)
		close(r->epoll_fd);
	free(r);
}

static void reader_stop(struct reader *r)
{
	uint64_t one = 1;

	if (r->closed)
		return;
	r->closed = true;
	atomic_store(&r->stop, true);
	if (write(r->wake_fd, &one, sizeof(one)) < 0) {
		/* the eventfd cannot be full with one write; nothing to do */
	}
	/* Wakes the thread if it is blocked on a full queue, and drops queued batches. */
	napi_release_threadsafe_function(r->tsfn, napi_tsfn_abort);
}


static void ref_finalize(napi_env env, void *data, void *hint)
{
	struct reader_ref *ref = data;

	(void)env;
	(void)hint;
	if (ref->r) {
		ref->r->ref = NULL;
		reader_stop(ref->r);
	}
	free(ref);
}

static struct reader_ref *get_ref(napi_env env, napi_value v)
{
	struct reader_ref *ref = NULL;
	napi_valuetype t;

	if (napi_typeof(env, v, &t) != napi_ok || t != napi_external ||
	    napi_get_value_external(env, v, (void **)&ref) != napi_ok || !ref) {
		throw_arg(env, "reader: not a ring buffer reader handle");
		return NULL;
	}
	return ref;
}

/* ringbufOpen(mapFd, callback(err, samples), maxBatch) -> handle */
static napi_value ringbuf_open(napi_env env, napi_callback_info info)
{
	napi_value argv[3], name, handle;
	struct reader *r;
	struct reader_ref *ref;
	struct epoll_event ev = { 0 };
	int32_t fd;
	uint32_t max_batch;
	int err;

	if (!arg_count(env, info, 3, argv, NULL) || !get_i32(env, argv[0], "mapFd", &fd) ||
	    !get_u32(env, argv[2], "maxBatch", &max_batch))
		return NULL;
	if (max_batch == 0)
		max_batch = 1;
	r = calloc(1, sizeof(*r));
	ref = calloc(1, sizeof(*ref));
	if (!r || !ref) {
		free(r);
		free(ref);
		throw_errno(env, "ringbufOpen", ENOMEM);
		return NULL;
	}
	r->wake_fd = r->epoll_fd = -1;
	r->max_batch = max_batch;
	log_reset();
	r->rb = ring_buffer__new(fd, on_sample, r, NULL);
	if (!r->rb) {
		err = errno;
		free(r);
		free(ref);
		throw_errno(env, "ring_buffer__new", err);
		return NULL;
	}
	r->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (r->wake_fd < 0 || r->epoll_fd < 0)
		goto fail_errno;
	ev.events = EPOLLIN;
	ev.data.u32 = 0;
	if (epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, ring_buffer__epoll_fd(r->rb), &ev) < 0)
		goto fail_errno;
	ev.data.u32 = 1;
	if (epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, r->wake_fd, &ev) < 0)
		goto fail_errno;

	napi_create_string_utf8(env, "ciliate-bpf-ringbuf", NAPI_AUTO_LENGTH, &name);
	if (napi_create_threadsafe_function(env, argv[1], NULL, name, QUEUE_BATCHES, 1, r,
					    reader_finalize, r, call_js, &r->tsfn) != napi_ok) {
		ring_buffer__free(r->rb);
		close(r->wake_fd);
		close(r->epoll_fd);
		free(r);
		free(ref);
		napi_throw_last(env, "napi_create_threadsafe_function");
		return NULL;
	}
	/* From here on reader_finalize owns r. The JavaScript side holds its own reference so
	 * that close() can abort the function even while the thread is blocked in a call. */
	napi_acquire_threadsafe_function(r->tsfn);
	err = pthread_create(&r->thread, NULL, reader_main, r);
	if (err) {
		napi_release_threadsafe_function(r->tsfn, napi_tsfn_release);
		napi_release_threadsafe_function(r->tsfn, napi_tsfn_abort);
		free(ref);
		throw_errno(env, "pthread_create", err);
		return NULL;
	}
	r->thread_started = true;
	ref->r = r;
	r->ref = ref;
	if (napi_create_external(env, ref, ref_finalize, NULL, &handle) != napi_ok) {
		r->ref = NULL;
		reader_stop(r);
		free(ref);
		napi_throw_last(env, "napi_create_external");
		return NULL;
	}
	return handle;

fail_errno:
	err = errno;
	ring_buffer__free(r->rb);
	if (r->wake_fd >= 0)
		close(r->wake_fd);
	if (r->epoll_fd >= 0)
		close(r->epoll_fd);
	free(r);
	free(ref);
	throw_errno(env, "ringbufOpen", err);
	return NULL;
}

/* ringbufClose(handle): stops the thread; batches not yet delivered are dropped. */
static napi_value ringbuf_close(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	struct reader_ref *ref;

	if (!arg_count(env, info, 1, argv, NULL))
		return NULL;
	ref = get_ref(env, argv[0]);
	if (!ref)
		return NULL;
	if (ref->r) {
		ref->r->ref = NULL;
		reader_stop(ref->r);
		ref->r = NULL;
	}
	return make_undefined(env);
}

/* ringbufStats(handle) -> { samples, batches } */
static napi_value ringbuf_stats(napi_env env, napi_callback_info info)
{
	napi_value argv[1], res, v;
	struct reader_ref *ref;

	if (!arg_count(env, info, 1, argv, NULL))
		return NULL;
	ref = get_ref(env, argv[0]);
	if (!ref)
		return NULL;
	if (!ref->r) {
		throw_arg(env, "reader: closed");
		return NULL;
	}
	NAPI_CALL(env, napi_create_object(env, &res));
	napi_create_double(env, (double)atomic_load(&ref->r->samples), &v);
	set_named(env, res, "samples", v);
	napi_create_double(env, (double)atomic_load(&ref->r->batches), &v);
	set_named(env, res, "batches", v);
	return res;
}

/* ringbufRef(handle, keepAlive): whether an open reader keeps the process running. */
static napi_value ringbuf_ref(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	struct reader_ref *ref;
	bool keep;

	if (!arg_count(env, info, 2, argv, NULL))
		return NULL;
	ref = get_ref(env, argv[0]);
	if (!ref || !get_bool(env, argv[1], "keepAlive", &keep))
		return NULL;
	if (!ref->r)
		return make_undefined(env);
	if (keep)
		napi_ref_threadsafe_function(env, ref->r->tsfn);
	else
		napi_unref_threadsafe_function(env, ref->r->tsfn);
	return make_undefined(env);
}

void register_ringbuf(napi_env env, napi_value exports)
{
	export_fn(env, exports, "ringbufOpen", ringbuf_open);
	export_fn(env, exports, "ringbufClose", ringbuf_close);
	export_fn(env, exports, "ringbufStats", ringbuf_stats);
	export_fn(env, exports, "ringbufRef", ringbuf_ref);
}
