// SPDX-License-Identifier: BSD-2-Clause
/*
 * libfabric's own MR cache on the real verbs provider (Soft-RoCE in the
 * VM), with libmrcache-ofi.so preloaded or not:
 *
 *   ofi_test shim [MONITOR]   every change gives a fresh registration, and
 *                             the shim runs with MONITOR (kmod, hooks)
 *   ofi_test native           libfabric's own monitor: the changes it
 *                             misses (a raw munmap system call) give the
 *                             stale registration back: what the shim fixes
 *   ofi_test native-with-shim the shim is loaded but FI_MR_CACHE_MONITOR
 *                             chose libfabric's own: as native
 *
 * Each case (mem_changes.h): fi_mr_reg of a buffer and an RDMA write from
 * it to another endpoint, twice (the second is a cache hit: the same key),
 * then a change (new bytes at the same address), then both again: a new key
 * and the new bytes at the target mean libfabric was told and registered
 * the new pages; the old key and the old bytes after munmap mean it handed
 * out a registration of pages the program no longer has. After move_pages the old key is right but keeps the pages pinned
 * (they cannot move); the module reports the attempt and libfabric lets go.
 * Then migration itself (run_migration): once libfabric has let go, a
 * second move_pages moves the pages.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <rdma/fabric.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_errno.h>

#include "mem_changes.h"
#include "ofi_pair.h"

#define LEN (256 * 1024)

static struct ofi_pair pair;
static char *target;		/* the server's buffer, written into */
static struct fid_mr *target_mr;

#define CHECK(call)							\
	do {								\
		int ret_ = (call);					\
		if (ret_) {						\
			fprintf(stderr, "ofi_test: %s: %s\n", #call,	\
				fi_strerror(-ret_));			\
			exit(1);					\
		}							\
	} while (0)

/* Through the domain's MR cache; a hit gives the cached registration. */
static struct fid_mr *reg(void *buf)
{
	struct fid_mr *mr;

	CHECK(fi_mr_reg(pair.domain, buf, LEN, FI_SEND | FI_RECV | FI_READ |
			FI_WRITE | FI_REMOTE_READ | FI_REMOTE_WRITE,
			0, 0, 0, &mr, NULL));
	return mr;
}

/*
 * Register @src, RDMA-write it to the target with that registration,
 * release it (the cache keeps it); return its key and what landed.
 */
static uint64_t write_through_cache(char *src, char *landed)
{
	struct fid_mr *mr = reg(src);
	uint64_t key = fi_mr_key(mr);

	memset(target, 0, LEN);
	ofi_pair_write(&pair, src, LEN, fi_mr_desc(mr), (uintptr_t)target,
		       fi_mr_key(target_mr));
	*landed = target[0];
	for (size_t i = 1; i < LEN; i++)
		if (target[i] != target[0])
			*landed = '?';
	CHECK(fi_close(&mr->fid));
	return key;
}

static const char *shim_monitor;	/* NULL: libfabric's own */

/*
 * Return 1 when the outcome is the expected one: the key (fresh or the
 * cached one) and the bytes the write carried ('B' unless stale).
 */
static int run_case(const struct mem_change *c)
{
	char *p = mem_map(NULL, LEN, 'A');
	char before, hit, after, want_bytes;
	uint64_t k1 = write_through_cache(p, &before);
	uint64_t k2 = write_through_cache(p, &hit), k3;
	int fresh, want = mem_change_seen(c, shim_monitor);
	const char *old = c->stale_if_missed ? "STALE" : "kept";

	if (k1 != k2 || before != 'A' || hit != 'A') {
		printf("FAIL %-28s second registration missed the cache (%#lx, %#lx) or wrote '%c' '%c'\n",
		       c->name, (unsigned long)k1, (unsigned long)k2, before, hit);
		return 0;
	}
	if (c->apply(p, LEN, 'B')) {
		printf("     %s: another thread took the address; again\n", c->name);
		return -1;
	}
	k3 = write_through_cache(p, &after);
	fresh = k3 != k1;
	want_bytes = want || !c->stale_if_missed ? 'B' : 'A';
	printf("%s %-28s key %#lx, after the change %#lx: %s, wrote '%c' (expected %s, '%c')\n",
	       fresh == want && after == want_bytes ? "ok  " : "FAIL", c->name,
	       (unsigned long)k1, (unsigned long)k3, fresh ? "fresh" : old,
	       after, want ? "fresh" : old, want_bytes);
	munmap(p, LEN);
	return fresh == want && after == want_bytes;
}

/*
 * libfabric frees the registrations notify dropped at its next
 * registration; the shim's drain thread notifies asynchronously. So
 * register @q until the pin of @p is gone (VmPin) or for two seconds (as
 * long as the pin stays, for good, without the module).
 */
static void register_until_released(char *q, long pinned)
{
	char landed;

	for (int i = 0; i < 100; i++) {
		write_through_cache(q, &landed);
		if (mem_pinned_kib() < pinned + LEN / 1024)
			return;
		usleep(20000);
	}
}

/*
 * As ucx_test's: the first move_pages of a registered buffer moves nothing
 * (Linux 6.1 keeps DMA-pinned pages); with the module it reaches libfabric
 * (notify), which deregisters at its next registration, and a second
 * attempt moves every page; the write after that carries the new bytes
 * with a fresh key. Without the module the pin and the pages stay.
 */
static int run_migration(void)
{
	char *p = mem_map(NULL, LEN, 'A'), *q = mem_map(NULL, LEN, 'Q');
	int to = !mem_node(p), pages = LEN / sysconf(_SC_PAGESIZE);
	int want = shim_monitor && !strcmp(shim_monitor, "kmod") ? pages : 0;
	char before, after;
	uint64_t k1 = write_through_cache(p, &before), k2;
	long pinned = mem_pinned_kib();
	int tried = mem_move(p, LEN, to), moved, ok;

	register_until_released(q, pinned);
	moved = mem_move(p, LEN, to);
	memset(p, 'B', LEN);
	k2 = write_through_cache(p, &after);
	ok = before == 'A' && after == 'B' && !tried && moved == want &&
	     (k1 != k2) == !!want;
	printf("%s %-28s first try moved %d of %d pages, second %d (expected 0, %d); key %s, wrote '%c' '%c' (expected %s, 'A' 'B')\n",
	       ok ? "ok  " : "FAIL", "migration", tried, pages, moved, want,
	       k1 != k2 ? "fresh" : "kept", before, after,
	       want ? "fresh" : "kept");
	munmap(p, LEN);
	munmap(q, LEN);
	return ok;
}

/* With the shim preloaded: is it libfabric's monitor, with MONITOR? */
static int shim_in_use(const char *want)
{
	const char *(*monitor)(void) = (const char *(*)(void))
		dlsym(RTLD_DEFAULT, "mrc_ofi_monitor");
	const char *name = monitor ? monitor() : NULL;

	printf("ofi_test: mrcache monitor in libfabric: %s\n",
	       name ? name : "(none)");
	shim_monitor = name;
	return name && (!want || !strcmp(name, want));
}

static int check_mode(const char *mode, const char *want)
{
	int loaded = dlsym(RTLD_DEFAULT, "mrc_ofi_monitor") != NULL;

	if (!strcmp(mode, "shim"))
		return shim_in_use(want);
	if (!strcmp(mode, "native"))
		return !loaded;
	if (!strcmp(mode, "native-with-shim"))
		return loaded && !shim_in_use(NULL);
	fprintf(stderr, "usage: ofi_test shim [kmod|hooks] | native | native-with-shim\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int ok = 1;

	const char *addr = getenv("MRCACHE_OFI_ADDR");

	if (argc < 2)
		check_mode("", NULL);
	if (!addr) {
		fprintf(stderr, "ofi_test: set MRCACHE_OFI_ADDR to an IP address of an RDMA device (test/ofi.sh does)\n");
		return 2;
	}
	ofi_pair_open(&pair, addr);
	target = mem_map(NULL, LEN, 0);
	target_mr = reg(target);
	if (!check_mode(argv[1], argc > 2 ? argv[2] : NULL)) {
		fprintf(stderr, "ofi_test: %s: the wrong monitor runs libfabric's cache\n",
			argv[1]);
		return 1;
	}
	for (size_t i = 0; i < n_mem_changes; i++) {
		int ret, tries = 0;

		/* -1: the address was taken in between; a few tries. */
		while ((ret = run_case(&mem_changes[i])) < 0 && ++tries < 5)
			;
		ok &= ret == 1;
	}
	ok &= run_migration();
	CHECK(fi_close(&target_mr->fid));
	ofi_pair_close(&pair);
	return ok ? 0 : 1;
}
