// SPDX-License-Identifier: BSD-2-Clause
/*
 * libmrcache-ucx.so: UCX's registration caches (ucs_rcache, used by its
 * InfiniBand/RoCE memory domain) learn of memory changes from mrcache.
 *
 * UCX drops a cached registration when its ucm layer dispatches
 * UCM_EVENT_VM_UNMAPPED, which it normally raises from its own patched
 * libc calls; those miss a raw munmap system call, page migration and
 * reclaim, and compete with other libraries patching the same functions.
 * Here:
 *
 *  - ucm_set_external_event(UCM_EVENT_VM_UNMAPPED) before UCX creates a
 *    cache (a constructor, so LD_PRELOAD works) tells ucm not to install
 *    its unmap hooks for it ("replace" mode; "add" keeps them and adds
 *    what they miss);
 *  - every range UCX's cache hands out is watched (src/shim/ranges.c) and
 *    a change is delivered with ucm_vm_munmap(addr, len), which runs the
 *    cache's own invalidation;
 *  - delivery is synchronous where UCX looks its cache up: ucs_rcache_get
 *    is called from libuct_ib through the PLT, so this library's
 *    definition runs first, drains whatever changed (one or two loads when
 *    nothing did) and only then calls UCX's. A thread alone would be too
 *    late: munmap, mmap at the same address and a send on one thread
 *    would reach the cache before the thread woke. The thread still
 *    drains for processes that stop sending, so UCX can unpin promptly.
 *
 * Memory pressure has no UCX API: mrcache cannot ask UCX to give pinned
 * memory back (UCX bounds its cache with UCX_RCACHE_MAX_SIZE instead).
 *
 * Known gap, shared with libfabric: UCX pins a new region before this
 * library can watch it, so a change made by another thread exactly then
 * is not seen.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ucm/api/ucm.h>
#include <ucs/memory/rcache.h>

#include "mrcache.h"
#include "mrcache_ucx.h"
#include "shim/ranges.h"

typedef ucs_status_t (*rcache_get_fn)(ucs_rcache_t *, void *, size_t, int,
				      void *, ucs_rcache_region_t **);

static struct mrc_ranges *ranges;
static const char *running;

/*
 * Test only: MRCACHE_UCX_TEST_NO_SYNC=drain|check|all turns off the drain
 * before UCX's lookup, the check after it, or both (only the thread then
 * reports), so test/ucx.sh can show what each one catches.
 */
enum { NO_SYNC_DRAIN = 1, NO_SYNC_CHECK = 2 };
static int no_sync;

static int verbose(void)
{
	const char *level = getenv("UCX_LOG_LEVEL");

	return (level && (!strcasecmp(level, "info") ||
			  !strcasecmp(level, "debug") ||
			  !strncasecmp(level, "trace", 5))) ||
	       getenv("MRCACHE_UCX_VERBOSE");
}

static void deliver(void *arg, void *addr, size_t len)
{
	(void)arg;
	ucm_vm_munmap(addr, len);
}

static rcache_get_fn ucx_rcache_get(void)
{
	static rcache_get_fn real;
	rcache_get_fn fn = __atomic_load_n(&real, __ATOMIC_ACQUIRE);

	if (!fn) {
		fn = (rcache_get_fn)dlsym(RTLD_NEXT, "ucs_rcache_get");
		__atomic_store_n(&real, fn, __ATOMIC_RELEASE);
	}
	return fn;
}

#define STALE_RETRIES 3

/*
 * After UCX's lookup: 0 when @region may be used (watched now, or its
 * watch unchanged), -ESTALE when memory under it changed after the drain
 * (another thread): UCX has been told, the caller releases it and looks
 * up again.
 */
static int watch_region(struct mrc_ranges *r, ucs_rcache_region_t *region)
{
	void *start = (void *)region->super.start;
	size_t len = region->super.end - region->super.start;
	int state = mrc_ranges_check(r, start, len);

	if (state == 1)
		return 0;
	if (state == -ESTALE) {
		if (no_sync & NO_SYNC_CHECK)
			return 0;	/* test only: as UCX returned it */
		mrc_ranges_forget(r, start, len);
		ucm_vm_munmap(start, len);
		return -ESTALE;
	}
	/* Unwatched, it could go stale unseen: UCX drops it after this use. */
	if (mrc_ranges_watch(r, start, len))
		ucm_vm_munmap(start, len);
	return 0;
}

/* UCX's lookup, with what changed delivered first and the result watched. */
ucs_status_t ucs_rcache_get(ucs_rcache_t *rcache, void *address,
			    size_t length, int prot, void *arg,
			    ucs_rcache_region_t **region_p)
{
	struct mrc_ranges *r = __atomic_load_n(&ranges, __ATOMIC_ACQUIRE);
	rcache_get_fn real = ucx_rcache_get();
	ucs_status_t status;

	if (!real)
		return UCS_ERR_UNSUPPORTED;
	for (int tries = 0;; tries++) {
		if (r && !(no_sync & NO_SYNC_DRAIN) && mrc_ranges_pending(r))
			mrc_ranges_drain(r);
		status = real(rcache, address, length, prot, arg, region_p);
		if (status != UCS_OK || !r ||
		    !watch_region(r, *region_p) || tries == STALE_RETRIES)
			return status;
		ucs_rcache_region_put(rcache, *region_p);
	}
}

enum mode { MODE_REPLACE, MODE_ADD, MODE_OFF };

static int read_mode(enum mode *mode)
{
	const char *text = getenv("MRCACHE_UCX_MODE");

	*mode = MODE_REPLACE;
	if (!text || !strcmp(text, "replace"))
		return 0;
	if (!strcmp(text, "add"))
		*mode = MODE_ADD;
	else if (!strcmp(text, "off"))
		*mode = MODE_OFF;
	else
		return -EINVAL;
	return 0;
}

static void read_no_sync(void)
{
	const char *text = getenv("MRCACHE_UCX_TEST_NO_SYNC");

	if (!text)
		return;
	if (!strcmp(text, "drain"))
		no_sync = NO_SYNC_DRAIN;
	else if (!strcmp(text, "check"))
		no_sync = NO_SYNC_CHECK;
	else if (!strcmp(text, "all"))
		no_sync = NO_SYNC_DRAIN | NO_SYNC_CHECK;
	else
		fprintf(stderr, "mrcache-ucx: MRCACHE_UCX_TEST_NO_SYNC=%s is not drain, check or all: ignored\n",
			text);
	if (no_sync)
		fprintf(stderr, "mrcache-ucx: test only: MRCACHE_UCX_TEST_NO_SYNC=%s, UCX may get stale registrations\n",
			text);
}

static int init_once(void)
{
	enum mode mode;
	struct mrc_ranges *r;
	int ret = read_mode(&mode);

	if (ret) {
		fprintf(stderr, "mrcache-ucx: MRCACHE_UCX_MODE=%s is not replace, add or off\n",
			getenv("MRCACHE_UCX_MODE"));
		return ret;
	}
	if (mode == MODE_OFF)
		return 0;
	read_no_sync();
	ret = mrc_ranges_open(&r, deliver, NULL, 1);
	if (ret) {
		fprintf(stderr, "mrcache-ucx: cannot watch memory for UCX (%s); UCX keeps its own hooks\n",
			mrc_last_error());
		return ret;
	}
	if (mode == MODE_REPLACE)
		ucm_set_external_event(UCM_EVENT_VM_UNMAPPED);
	running = mrc_ranges_monitor(r);
	__atomic_store_n(&ranges, r, __ATOMIC_RELEASE);
	if (verbose())
		fprintf(stderr, "mrcache-ucx: UCX's unmap events come from mrcache (%s), %s\n",
			running, mode == MODE_REPLACE ? "UCX's own unmap hooks off" :
			"UCX's own unmap hooks kept");
	return 0;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int init_result;

static void init(void)
{
	init_result = init_once();
}

int mrc_ucx_init(void)
{
	pthread_once(&once, init);
	return init_result;
}

const char *mrc_ucx_monitor(void)
{
	return __atomic_load_n(&ranges, __ATOMIC_ACQUIRE) ? running : NULL;
}

__attribute__((constructor)) static void preload_init(void)
{
	mrc_ucx_init();
}
