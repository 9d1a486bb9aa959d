// SPDX-License-Identifier: BSD-2-Clause
/*
 * libmrcache-ofi.so: an imported libfabric memory monitor (fi_ext.h,
 * struct fid_mem_monitor) backed by an mrc_watcher.
 *
 * How libfabric 1.17 drives it (prov/util/src/util_mem_monitor.c and
 * util_mr_cache.c): start when the first domain's MR cache is created,
 * stop after the last is closed; subscribe(addr, len) after a registration
 * is cached and valid(addr, len) at each cache hit, both under libfabric's
 * mm_lock; unsubscribe never for host memory. Changes go back through
 * import_ops->notify, which takes mm_lock itself: so notify is only ever
 * called from the drain thread (src/shim/ranges.c), never from inside
 * subscribe or valid, and never with our own lock held.
 *
 * valid() first asks whether the shim has settled (src/shim/ranges.c: no
 * change pending in the watcher and no drain under way, a few loads): then
 * every change seen so far has gone through notify, which took the entry
 * out of libfabric's cache under mm_lock, so the entry being looked up
 * (under mm_lock) cannot have changed. Otherwise it is the watcher's
 * check of the range's own watch, found in the shim's lock-free index: with
 * the kernel monitor a generation load that moved before the page tables
 * changed, so a hit can never use pages the application no longer sees,
 * whoever changed them (a raw system call, migration, reclaim).
 *
 * Known gap, libfabric's: it pins pages before it subscribes, so a change
 * between the two is seen by no monitor.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rdma/fabric.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_ext.h>

#include "mrcache.h"
#include "mrcache_ofi.h"
#include "shim/ranges.h"

static struct fid_mem_monitor monitor;
static struct mrc_ranges *ranges;	/* while libfabric runs us */
static const struct mrc_ranges_settle *settle;	/* its settled check's words */
static const char *running;		/* the watcher's monitor, or NULL */

/* Info lines only when libfabric's own log would show its info lines. */
static int verbose(void)
{
	const char *level = getenv("FI_LOG_LEVEL");

	return (level && (!strcasecmp(level, "info") ||
			  !strcasecmp(level, "debug") ||
			  !strcasecmp(level, "trace"))) ||
	       getenv("MRCACHE_OFI_VERBOSE");
}

static void notify(void *arg, void *addr, size_t len)
{
	(void)arg;
	monitor.import_ops->notify(&monitor, addr, len);
}

static int ofi_start(struct fid_mem_monitor *m)
{
	int ret;

	(void)m;
	if (ranges)
		return 0;
	ret = mrc_ranges_open(&ranges, notify, NULL, 1);
	if (ret) {
		fprintf(stderr, "mrcache-ofi: cannot start the memory monitor: %s\n",
			mrc_last_error());
		return ret == -ENOMEM ? -FI_ENOMEM : -FI_ENODEV;
	}
	settle = mrc_ranges_settle_of(ranges);
	__atomic_store_n(&running, mrc_ranges_monitor(ranges), __ATOMIC_RELEASE);
	if (verbose())
		fprintf(stderr, "mrcache-ofi: libfabric's memory monitor is mrcache (%s)\n",
			running);
	return 0;
}

static void ofi_stop(struct fid_mem_monitor *m)
{
	(void)m;
	if (!ranges)
		return;
	__atomic_store_n(&running, NULL, __ATOMIC_RELEASE);
	mrc_ranges_close(ranges);
	ranges = NULL;
	settle = NULL;
}

static int ofi_subscribe(struct fid_mem_monitor *m, const void *addr,
			 size_t len)
{
	int ret;

	(void)m;
	ret = mrc_ranges_watch(ranges, addr, len);
	if (ret == -ENOSPC || ret == -ENOMEM)
		return -FI_ENOSPC;
	return ret ? -FI_EINVAL : 0;
}

static void ofi_unsubscribe(struct fid_mem_monitor *m, const void *addr,
			    size_t len)
{
	(void)m;
	mrc_ranges_unwatch(ranges, addr, len);
}

static bool ofi_valid(struct fid_mem_monitor *m, const void *addr,
		      size_t len)
{
	(void)m;
	/* Inline: at every cache hit, settled is the answer. */
	return mrc_ranges_settle_done(settle) ||
	       mrc_ranges_check(ranges, addr, len) == 1;
}

static struct fi_ops_mem_monitor export_ops = {
	.size = sizeof(struct fi_ops_mem_monitor),
	.start = ofi_start,
	.stop = ofi_stop,
	.subscribe = ofi_subscribe,
	.unsubscribe = ofi_unsubscribe,
	.valid = ofi_valid,
};

/* A user's FI_MR_CACHE_MONITOR naming another monitor wins. */
static int user_chose_another(void)
{
	const char *choice = getenv("FI_MR_CACHE_MONITOR");

	if (!choice || !*choice || !strcasecmp(choice, "mrcache"))
		return 0;
	if (verbose())
		fprintf(stderr, "mrcache-ofi: FI_MR_CACHE_MONITOR=%s: libfabric keeps its own monitor\n",
			choice);
	return 1;
}

static int import_once(void)
{
	int ret;

	if (user_chose_another())
		return 1;
	monitor.fid.fclass = FI_CLASS_MEM_MONITOR;
	monitor.export_ops = &export_ops;
	ret = fi_import(FI_VERSION(1, 13), "mr_cache", NULL, 0, 0,
			&monitor.fid, NULL);
	if (ret)
		fprintf(stderr, "mrcache-ofi: fi_import of the memory monitor failed: %s (libfabric keeps its own)\n",
			fi_strerror(-ret));
	else if (verbose())
		fprintf(stderr, "mrcache-ofi: imported as libfabric's memory monitor\n");
	return ret;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int import_result;

static void import_init(void)
{
	import_result = import_once();
}

int mrc_ofi_import(void)
{
	pthread_once(&once, import_init);
	return import_result;
}

const char *mrc_ofi_monitor(void)
{
	return __atomic_load_n(&running, __ATOMIC_ACQUIRE);
}

/* LD_PRELOAD: in place before the program opens its first domain. */
__attribute__((constructor)) static void preload_import(void)
{
	if (!getenv("MRCACHE_OFI_NO_AUTO_IMPORT"))
		mrc_ofi_import();
}
