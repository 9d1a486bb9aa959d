// SPDX-License-Identifier: BSD-2-Clause
/*
 * The cache against real verbs: ibv_reg_mr through mrc_cache_create_verbs(),
 * RDMA WRITEs between two RC QPs of this process (test/rdma_pair.c), eviction
 * when the kernel's RLIMIT_MEMLOCK refuses a registration, and the stale
 * registration that an unreported munmap/mmap leaves behind, and merges
 * with neighbours that ibv_reg_mr refuses.
 *
 * Runs on Soft-RoCE in the VM (test/verbs.sh) or on real hardware; exits 77
 * when there is no RDMA device.
 */
#include <check.h>
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "cache_check.h"
#include "merge_cases.h"
#include "mrcache.h"
#include "rdma_pair.h"

#define ACCESS (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
		IBV_ACCESS_REMOTE_READ)
#define KiB ((size_t)1024)
#define MiB (KiB * KiB)

static struct rdma_pair pair;
static struct mrc_cache *cache;
static size_t page;

/* Caches in these tests watch nothing: only mrc_invalidate() invalidates. */
static int create_cache(struct ibv_pd *pd, struct mrc_cache **out)
{
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MONITOR,
		.monitor = MRC_MONITOR_MANUAL,
	};

	return mrc_cache_create_verbs(pd, ACCESS, &attr, out);
}

static void setup(void)
{
	int ret;

	page = (size_t)sysconf(_SC_PAGESIZE);
	ret = rdma_pair_open(&pair);
	ck_assert_msg(ret == 0, "rdma_pair_open: %s", rdma_pair_error(&pair));
	ret = create_cache(pair.pd, &cache);
	ck_assert_msg(ret == 0, "mrc_cache_create_verbs: %s", mrc_last_error());
}

static void teardown(void)
{
	int ret = mrc_cache_destroy(cache);

	ck_assert_msg(ret == 0, "mrc_cache_destroy: %s", mrc_last_error());
	cache = NULL;
	rdma_pair_close(&pair);
}

static struct mrc_stats stats_now(void)
{
	return cache_stats_ok(cache);
}

static void *map_pages(size_t n)
{
	void *p = mmap(NULL, n * page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(p, MAP_FAILED);
	return p;
}

static struct mrc_region *get_ok(const void *addr, size_t len)
{
	return cache_get_ok(cache, addr, len, 0);
}

static void put_ok(struct mrc_region *r)
{
	cache_put_ok(cache, r);
}

static void write_ok(const void *src, size_t len, const struct mrc_region *from,
		     void *dst, const struct mrc_region *to)
{
	int ret = rdma_pair_write(&pair, src, len, mrc_region_lkey(from),
				  (uintptr_t)dst, mrc_region_rkey(to));

	ck_assert_msg(ret == 0, "RDMA WRITE of %zu B: %s", len,
		      rdma_pair_error(&pair));
}

static void fill_pattern(unsigned char *p, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(seed * 131 + i * 7 + (i >> 12));
}

static int all_bytes(const unsigned char *p, size_t len, unsigned char v)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

/* The mr a region hands out is the one ibv_reg_mr made, and it covers. */
static void assert_mr_covers(const struct mrc_region *r, const void *addr,
			     size_t len)
{
	struct ibv_mr *mr = mrc_region_mr(r);
	const char *a = addr, *m;

	ck_assert_ptr_nonnull(mr);
	m = mr->addr;
	ck_assert_uint_eq(mrc_region_lkey(r), mr->lkey);
	ck_assert_uint_eq(mrc_region_rkey(r), mr->rkey);
	ck_assert_ptr_eq(mr->pd, pair.pd);
	ck_assert_msg(m <= a && m + mr->length >= a + len,
		      "mr [%p, +%zu) does not cover [%p, +%zu)", m, mr->length,
		      a, len);
}

START_TEST(test_registration_and_reuse)
{
	unsigned char *buf = map_pages(16);
	struct mrc_region *r1, *r2;
	struct mrc_stats s;

	r1 = get_ok(buf, 8 * page);
	assert_mr_covers(r1, buf, 8 * page);
	s = stats_now();
	ck_assert_uint_eq(s.reg_calls, 1);
	ck_assert_str_eq(s.provider, "verbs");

	/* An inner range and the same range: the same mr, no ibv_reg_mr. */
	r2 = get_ok(buf + 100, 3 * page);
	ck_assert_ptr_eq(r2, r1);
	put_ok(r2);
	r2 = get_ok(buf, 8 * page);
	ck_assert_ptr_eq(r2, r1);
	s = stats_now();
	ck_assert_uint_eq(s.reg_calls, 1);
	ck_assert_uint_eq(s.hits, 2);
	ck_assert_uint_eq(s.bytes_pinned, 8 * page);

	/* The mr is usable: one end of the region written from the other. */
	fill_pattern(buf, page, 1);
	memset(buf + 7 * page, 0, page);
	write_ok(buf, page, r1, buf + 7 * page, r2);
	ck_assert_mem_eq(buf + 7 * page, buf, page);
	put_ok(r2);
	put_ok(r1);
	munmap(buf, 16 * page);
}
END_TEST

START_TEST(test_merge_covers_union)
{
	unsigned char *buf = map_pages(8), *src = map_pages(1);
	struct mrc_region *a, *b, *m, *rs;
	struct mrc_stats s;

	a = get_ok(buf, 2 * page);		/* pages 0-1 */
	b = get_ok(buf + 3 * page, 2 * page);	/* pages 3-4 */
	ck_assert_ptr_ne(a, b);
	put_ok(a);
	put_ok(b);
	/* Pages 1-3 overlap both: one registration of pages 0-4 replaces them. */
	m = get_ok(buf + page + 10, 2 * page);
	s = stats_now();
	ck_assert_uint_eq(s.reg_calls, 3);
	ck_assert_uint_eq(s.merges, 2);
	ck_assert_uint_eq(s.dereg_calls, 2);
	ck_assert_uint_eq(s.regions, 1);
	ck_assert_ptr_eq(mrc_region_addr(m), buf);
	ck_assert_uint_eq(mrc_region_length(m), 5 * page);
	assert_mr_covers(m, buf, 5 * page);

	/* The merged rkey really reaches both ends of the union. */
	rs = get_ok(src, page);
	fill_pattern(src, page, 2);
	memset(buf, 0, 8 * page);
	write_ok(src, 64, rs, buf, m);
	write_ok(src + 64, 64, rs, buf + 5 * page - 64, m);
	ck_assert_mem_eq(buf, src, 64);
	ck_assert_mem_eq(buf + 5 * page - 64, src + 64, 64);
	ck_assert(all_bytes(buf + 64, 5 * page - 128, 0));
	put_ok(rs);
	put_ok(m);
	munmap(buf, 8 * page);
	munmap(src, page);
}
END_TEST

/* One transfer between cached regions; both sides' bytes around it checked. */
static void transfer_checked(unsigned char *src, unsigned char *dst,
			     size_t off, size_t len, unsigned int seed)
{
	struct mrc_region *rs, *rd;

	rs = get_ok(src + off, len);
	rd = get_ok(dst + off, len);
	fill_pattern(src + off, len, seed);
	memset(dst, 0xee, off + len + page);
	write_ok(src + off, len, rs, dst + off, rd);
	ck_assert_msg(!memcmp(dst + off, src + off, len),
		      "%zu B at offset %zu arrived wrong", len, off);
	ck_assert(all_bytes(dst, off, 0xee));
	ck_assert(all_bytes(dst + off + len, page, 0xee));
	put_ok(rd);
	put_ok(rs);
}

START_TEST(test_rdma_write_cached_both_sides)
{
	static const struct { size_t off, len; } cases[] = {
		{ 0, 1 },
		{ 123, 4 * KiB },	/* unaligned: spans two pages */
		{ 0, 1 * MiB },
	};
	size_t pages = (2 * MiB) / page;
	unsigned char *src = map_pages(pages), *dst = map_pages(pages);
	struct mrc_stats before, after;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		transfer_checked(src, dst, cases[i].off, cases[i].len, (unsigned int)i);
		/* Again with new data: now both registrations are cache hits. */
		before = stats_now();
		transfer_checked(src, dst, cases[i].off, cases[i].len, (unsigned int)i + 10);
		after = stats_now();
		ck_assert_uint_eq(after.reg_calls, before.reg_calls);
		ck_assert_uint_eq(after.hits, before.hits + 2);
	}
	munmap(src, pages * page);
	munmap(dst, pages * page);
}
END_TEST

/*
 * The bug the monitors exist for. The application unmaps a registered
 * buffer and maps fresh memory at the same address without telling the
 * cache. The cached mr still pins the old pages, so a peer's RDMA WRITE
 * through it succeeds, but lands in memory the application no longer sees.
 * The old pages are a memfd here so the test can look at them through a
 * second mapping.
 */
START_TEST(test_stale_registration_manual_monitor)
{
	size_t len = 4 * page;
	unsigned char *src = map_pages(4), *app, *alias, *fresh;
	struct mrc_region *rs, *stale, *r;
	struct mrc_stats s;
	int fd;

	fd = memfd_create("mrcache-stale", 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)len), 0);
	app = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	alias = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(app, MAP_FAILED);
	ck_assert_ptr_ne(alias, MAP_FAILED);
	memset(app, 0x11, len);
	rs = get_ok(src, len);

	r = get_ok(app, len);
	put_ok(r);

	/* Replace the buffer behind the cache's back. */
	ck_assert_int_eq(munmap(app, len), 0);
	fresh = mmap(app, len, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ck_assert_ptr_eq(fresh, app);
	memset(fresh, 0xbb, len);

	/* The cache cannot know: same region, no new registration. */
	s = stats_now();
	stale = get_ok(fresh, len);
	ck_assert_ptr_eq(stale, r);
	ck_assert_uint_eq(stats_now().reg_calls, s.reg_calls);

	memset(src, 0x5a, len);
	write_ok(src, len, rs, fresh, stale);
	ck_assert_msg(all_bytes(fresh, len, 0xbb),
		      "the write through the stale mr reached the new mapping");
	ck_assert_msg(all_bytes(alias, len, 0x5a),
		      "the write through the stale mr did not reach the old pages");
	put_ok(stale);

	/* Told about the change, the cache registers the new pages. */
	ck_assert_int_eq(mrc_invalidate(cache, fresh, len), 0);
	s = stats_now();
	ck_assert_uint_eq(s.invalidations, 1);
	r = get_ok(fresh, len);
	ck_assert_uint_eq(stats_now().reg_calls, s.reg_calls + 1);
	memset(src, 0x6c, len);
	write_ok(src, len, rs, fresh, r);
	ck_assert(all_bytes(fresh, len, 0x6c));
	ck_assert(all_bytes(alias, len, 0x5a));
	put_ok(r);
	put_ok(rs);

	munmap(fresh, len);
	munmap(alias, len);
	munmap(src, 4 * page);
	close(fd);
}
END_TEST

/* ------------------------------------------------------------------------
 * A merge never fails a get that a plain registration would serve. A
 * buffer's neighbour page is cached and then cannot be registered with the
 * buffer's access (read-only, PROT_NONE, unmapped behind the cache's back),
 * or the buffer is read-only and the neighbour is cached writable: the
 * merged registration fails in ibv_reg_mr, and the get must still hand
 * out a working registration of the buffer.
 */

static struct mrc_region *get_access_ok(const void *addr, uint32_t access)
{
	return cache_get_ok(cache, addr, page, access);
}

/* Cache the neighbour as @mc says; the access the buffer's get asks for. */
static uint32_t prepare_neighbour(const struct merge_case *mc,
				  unsigned char *nb, unsigned char *buf,
				  struct mrc_region **cached)
{
	switch (mc->kind) {
	case NB_READ_ONLY:
		ck_assert_int_eq(mprotect(nb, page, PROT_READ), 0);
		*cached = get_access_ok(nb, IBV_ACCESS_REMOTE_READ);
		return ACCESS;
	case NB_PROT_NONE:
		*cached = get_access_ok(nb, ACCESS);
		ck_assert_int_eq(mprotect(nb, page, PROT_NONE), 0);
		return ACCESS;
	case NB_UNMAPPED:
		*cached = get_access_ok(nb, ACCESS);
		unmap_neighbour(nb, page, (buf > nb ? buf : nb) + page);
		return ACCESS;
	default:
		*cached = get_access_ok(nb, ACCESS);
		ck_assert_int_eq(mprotect(buf, page, PROT_READ), 0);
		return IBV_ACCESS_REMOTE_READ;
	}
}

/* Both keys of the buffer's region work: bytes out by lkey, in by rkey. */
static void assert_region_moves_bytes(const struct mrc_region *r,
				      unsigned char *buf, uint32_t access,
				      unsigned char *ext, struct ibv_mr *ext_mr)
{
	int ret;

	memset(ext, 0, page);
	ret = rdma_pair_write(&pair, buf, page, mrc_region_lkey(r),
			      (uintptr_t)ext, ext_mr->rkey);
	ck_assert_msg(ret == 0, "WRITE from the buffer: %s", rdma_pair_error(&pair));
	ck_assert_mem_eq(ext, buf, page);
	if (!(access & IBV_ACCESS_REMOTE_WRITE))
		return;
	fill_pattern(ext + page, page, 5);
	ret = rdma_pair_write(&pair, ext + page, page, ext_mr->lkey,
			      (uintptr_t)buf, mrc_region_rkey(r));
	ck_assert_msg(ret == 0, "WRITE to the buffer: %s", rdma_pair_error(&pair));
	ck_assert_mem_eq(buf, ext + page, page);
}

START_TEST(test_merge_failure_falls_back_to_request)
{
	const struct merge_case *mc = &merge_cases[_i];
	/* Two pages, then room for the decoy hole an unmapped neighbour needs. */
	unsigned char *map = map_pages(2 + DECOY_PAGES), *ext = map_pages(2);
	unsigned char *nb = mc->above ? map + page : map;
	unsigned char *buf = mc->above ? map : map + page;
	struct ibv_mr *ext_mr;
	struct mrc_region *old, *r;
	struct mrc_stats s;
	uint32_t access;

	ext_mr = ibv_reg_mr(pair.pd, ext, 2 * page,
			    IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	ck_assert_msg(ext_mr, "ibv_reg_mr: %s", strerror(errno));
	fill_pattern(buf, page, 3);
	memset(nb, 0x11, page);
	access = prepare_neighbour(mc, nb, buf, &old);
	put_ok(old);
	r = get_access_ok(buf, access);
	ck_assert_msg(mrc_region_addr(r) == buf && mrc_region_length(r) == page,
		      "%s: region %p+%zu, expected the buffer's own page %p",
		      mc->name, mrc_region_addr(r), mrc_region_length(r), (void *)buf);
	assert_mr_covers(r, buf, page);
	assert_region_moves_bytes(r, buf, access, ext, ext_mr);
	s = stats_now();
	ck_assert_uint_eq(s.reg_failures, 1);	/* the merged attempt */
	if (mc->kind == NB_UNMAPPED) {
		assert_still_unmapped(nb, page);
		ck_assert_uint_eq(s.invalidations, 1);
		ck_assert_uint_eq(s.regions, 1);
	} else {
		ck_assert_uint_eq(s.invalidations, 0);
		ck_assert_ptr_eq(get_access_ok(nb, mrc_region_access(old)), old);
		put_ok(old);
	}
	fprintf(stderr, "merge fallback, %s: merged registration refused, buffer registered alone (%llu failure, %llu invalidation), %s moves bytes\n",
		mc->name, (unsigned long long)s.reg_failures,
		(unsigned long long)s.invalidations,
		access & IBV_ACCESS_REMOTE_WRITE ? "lkey and rkey each" : "lkey");
	put_ok(r);
	ibv_dereg_mr(ext_mr);
	munmap(map, (2 + DECOY_PAGES) * page);
	munmap(ext, 2 * page);
}
END_TEST

/* ------------------------------------------------------------------------
 * Memory the provider must refuse: the error is ibv_reg_mr's, with the
 * cache's message, and nothing is cached or left pinned (the kernel's
 * count of pinned pages, VmPin, is back where it was).
 */
static long vm_pinned_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmPin: %ld kB", &kib) == 1)
			break;
	fclose(f);
	ck_assert_int_ge(kib, 0);
	return kib;
}

static void assert_refused(const void *addr, size_t len, uint32_t access,
			   const char *what)
{
	struct mrc_stats before = stats_now(), after;
	long pinned = vm_pinned_kib();
	struct mrc_region *r = NULL;
	int ret = mrc_get(cache, addr, len, access, &r);

	fprintf(stderr, "verbs_test: %s: mrc_get = %d, \"%s\"\n", what, ret,
		mrc_last_error());
	ck_assert_msg(ret == -EFAULT || ret == -EINVAL || ret == -ENOMEM ||
		      ret == -EPERM, "%s: mrc_get = %d (%s)", what, ret,
		      mrc_last_error());
	ck_assert_ptr_null(r);
	ck_assert_msg(strstr(mrc_last_error(), "provider 'verbs' could not register"),
		      "%s: \"%s\" does not say the provider refused", what,
		      mrc_last_error());
	after = stats_now();
	ck_assert_uint_eq(after.regions, before.regions);
	ck_assert_uint_eq(after.bytes_pinned, before.bytes_pinned);
	ck_assert_uint_gt(after.reg_failures, before.reg_failures);
	ck_assert_uint_eq(after.reg_calls - before.reg_calls,
			  after.reg_failures - before.reg_failures);
	ck_assert_int_eq(vm_pinned_kib(), pinned);
}

START_TEST(test_provider_refuses_bad_memory)
{
	unsigned char *none = mmap(NULL, 4 * page, PROT_NONE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *ro = map_pages(8);
	struct mrc_region *held, *r;

	ck_assert_ptr_ne(none, MAP_FAILED);
	ck_assert_int_eq(munmap(ro + 4 * page, 4 * page), 0);	/* a hole after it */
	held = get_ok(ro, page);	/* a cached region the failures must keep */
	put_ok(held);
	ck_assert_int_eq(mprotect(ro, 4 * page, PROT_READ), 0);
	/* A region registered before the change is the caller's to drop. */
	ck_assert_int_eq(mrc_invalidate(cache, ro, 4 * page), 0);

	assert_refused(none, 2 * page, 0, "PROT_NONE memory, write access");
	/*
	 * Not PROT_NONE with read-only access: Linux 6.1's ib_umem_get()
	 * pins read-only registrations with FOLL_FORCE, which reads
	 * PROT_NONE memory like ptrace does, so it succeeds (6.2 dropped
	 * FOLL_FORCE there). Whatever the kernel says is the answer.
	 */
	assert_refused(ro + page, 2 * page, IBV_ACCESS_LOCAL_WRITE,
		       "read-only memory, local write");
	assert_refused(ro + page, 2 * page, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE,
		       "read-only memory, remote write");
	/* Past the end of the mapping, and past this kernel's 47-bit top. */
	assert_refused(ro, 8 * page, IBV_ACCESS_REMOTE_READ,
		       "a length past the end of the mapping");
	assert_refused(ro, ((uintptr_t)1 << 47) - (uintptr_t)ro + page,
		       IBV_ACCESS_REMOTE_READ, "a length past the top of the address space");
	/* Read-only memory with read-only access is fine, and cached. */
	r = cache_get_ok(cache, ro, 4 * page, IBV_ACCESS_REMOTE_READ);
	ck_assert_ptr_eq(cache_get_ok(cache, ro, page, IBV_ACCESS_REMOTE_READ), r);
	put_ok(r);
	put_ok(r);
	munmap(none, 4 * page);
	munmap(ro, 4 * page);
}
END_TEST

/* ------------------------------------------------------------------------
 * Eviction under RLIMIT_MEMLOCK. Runs in a forked child that gives up
 * CAP_IPC_LOCK (with it the kernel ignores the limit), so failures are
 * reported on stderr and through the exit status.
 */
#define MEMLOCK_LIMIT (256 * KiB)
#define BUF_BYTES (64 * KiB)
#define NBUFS 12
#define CHILD_SKIP 77

#define CHILD_CHECK(cond, ...)						\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "memlock child: %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);			\
			fputc('\n', stderr);				\
			_exit(1);					\
		}							\
	} while (0)

static int drop_cap_ipc_lock(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	uint32_t mask = CAP_TO_MASK(CAP_IPC_LOCK);
	int i = CAP_TO_INDEX(CAP_IPC_LOCK);

	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	data[i].effective &= ~mask;
	data[i].permitted &= ~mask;
	data[i].inheritable &= ~mask;
	if (syscall(SYS_capset, &hdr, data))
		return -errno;
	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	return (data[i].effective & mask) ? -EPERM : 0;
}

static int lower_memlock(rlim_t bytes)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_MEMLOCK, &rl))
		return -errno;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < bytes)
		bytes = rl.rlim_max;
	rl.rlim_cur = bytes;
	return setrlimit(RLIMIT_MEMLOCK, &rl) ? -errno : 0;
}

/* Does the kernel now refuse to pin more than the limit? */
static int kernel_enforces_limit(struct ibv_pd *pd, void *mem, size_t len)
{
	struct ibv_mr *mr;

	errno = 0;
	mr = ibv_reg_mr(pd, mem, len, IBV_ACCESS_LOCAL_WRITE);
	if (mr) {
		ibv_dereg_mr(mr);
		return 0;
	}
	return errno == ENOMEM;
}

static struct mrc_stats child_stats(struct mrc_cache *c)
{
	struct mrc_stats s;

	CHILD_CHECK(mrc_cache_stats(c, &s) == 0, "mrc_cache_stats: %s", mrc_last_error());
	return s;
}

static struct mrc_region *child_get(struct mrc_cache *c, void *addr, size_t len)
{
	struct mrc_region *r;
	int ret = mrc_get(c, addr, len, 0, &r);

	CHILD_CHECK(ret == 0, "mrc_get(%p, %zu) = %d: %s", addr, len, ret, mrc_last_error());
	return r;
}

/* Buffer i of the arena; a page between buffers keeps merges away. */
static unsigned char *nth_buf(unsigned char *arena, int i)
{
	return arena + (size_t)i * (BUF_BYTES + page);
}

/* Phase 1: a working set larger than the limit cycles through the cache. */
static void memlock_stays_within(struct mrc_cache *c, unsigned char *arena)
{
	struct mrc_stats s;

	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < NBUFS; i++) {
			unsigned char *b = nth_buf(arena, i);
			struct mrc_region *r = child_get(c, b, BUF_BYTES);
			int ret;

			/* Usable: copy the first page of the buffer to its last. */
			memset(b, i + 1, page);
			ret = rdma_pair_write(&pair, b, page, mrc_region_lkey(r),
					      (uintptr_t)(b + BUF_BYTES - page),
					      mrc_region_rkey(r));
			CHILD_CHECK(ret == 0, "RDMA WRITE: %s", rdma_pair_error(&pair));
			CHILD_CHECK(b[BUF_BYTES - 1] == i + 1, "write did not land");
			mrc_put(c, r);
			s = child_stats(c);
			CHILD_CHECK(s.bytes_pinned <= MEMLOCK_LIMIT,
				    "cache pins %llu B over the %zu B limit",
				    (unsigned long long)s.bytes_pinned, MEMLOCK_LIMIT);
		}
	}
	s = child_stats(c);
	CHILD_CHECK(s.reg_failures == 0 && s.retries == 0,
		    "the cache hit the kernel's limit (%llu failures)",
		    (unsigned long long)s.reg_failures);
	CHILD_CHECK(s.evictions >= 2 * NBUFS - MEMLOCK_LIMIT / BUF_BYTES,
		    "only %llu evictions", (unsigned long long)s.evictions);
	fprintf(stderr, "memlock: %d x %zu KiB through a %zu KiB limit: peak pinned %llu B, %llu registrations, %llu evictions, 0 kernel refusals\n",
		2 * NBUFS, BUF_BYTES / KiB, MEMLOCK_LIMIT / KiB,
		(unsigned long long)s.peak_bytes_pinned,
		(unsigned long long)s.reg_calls, (unsigned long long)s.evictions);
}

/*
 * Phase 2: memory pinned outside the cache leaves the kernel less room than
 * the cache believes it has. The kernel refuses; the cache evicts idle
 * regions, retries, and the get succeeds.
 */
static void memlock_evicts_on_refusal(struct mrc_cache *c, unsigned char *arena)
{
	struct mrc_stats before, s;
	struct mrc_region *r;

	before = child_stats(c);
	for (int i = 0; i < NBUFS / 2; i++) {
		r = child_get(c, nth_buf(arena, i), BUF_BYTES);
		mrc_put(c, r);
	}
	s = child_stats(c);
	CHILD_CHECK(s.retries > before.retries,
		    "no registration was retried (failures %llu)",
		    (unsigned long long)s.reg_failures);
	CHILD_CHECK(s.reg_failures > before.reg_failures, "the kernel never refused");
	fprintf(stderr, "memlock: with %zu KiB pinned outside the cache: %llu kernel refusals, %llu evict-and-retry, every get succeeded\n",
		MEMLOCK_LIMIT / 2 / KiB,
		(unsigned long long)(s.reg_failures - before.reg_failures),
		(unsigned long long)(s.retries - before.retries));
}

/* Phase 3: nothing idle to evict: -ENOMEM with a message saying why. */
static void memlock_all_referenced(struct mrc_cache *c, unsigned char *arena)
{
	struct mrc_region *held[2], *r = NULL;
	int ret;

	held[0] = child_get(c, nth_buf(arena, 0), BUF_BYTES);
	held[1] = child_get(c, nth_buf(arena, 1), BUF_BYTES);
	ret = mrc_get(c, nth_buf(arena, 2), BUF_BYTES, 0, &r);
	CHILD_CHECK(ret == -ENOMEM, "mrc_get with everything referenced returned %d", ret);
	CHILD_CHECK(strstr(mrc_last_error(), "RLIMIT_MEMLOCK") != NULL,
		    "unclear error: \"%s\"", mrc_last_error());
	fprintf(stderr, "memlock: all referenced: mrc_get = -ENOMEM, \"%s\"\n",
		mrc_last_error());
	/* One reference dropped: that region goes and the get succeeds. */
	mrc_put(c, held[1]);
	r = child_get(c, nth_buf(arena, 2), BUF_BYTES);
	mrc_put(c, r);
	mrc_put(c, held[0]);
}

static int memlock_child(void)
{
	size_t arena_len = NBUFS * (BUF_BYTES + page);
	unsigned char *arena;
	void *outside_mem;
	struct ibv_mr *outside;
	struct mrc_cache *c;
	int ret;

	ret = drop_cap_ipc_lock();
	if (!ret)
		ret = lower_memlock(MEMLOCK_LIMIT);
	if (ret && geteuid() != 0) {
		fprintf(stderr, "SKIP memlock test: cannot drop CAP_IPC_LOCK or lower RLIMIT_MEMLOCK (%s)\n",
			strerror(-ret));
		return CHILD_SKIP;
	}
	CHILD_CHECK(!ret, "dropping CAP_IPC_LOCK / lowering RLIMIT_MEMLOCK: %s", strerror(-ret));
	CHILD_CHECK(rdma_pair_open(&pair) == 0, "rdma_pair_open: %s", rdma_pair_error(&pair));
	arena = mmap(NULL, arena_len, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHILD_CHECK(arena != MAP_FAILED, "mmap: %s", strerror(errno));
	memset(arena, 0, arena_len);
	CHILD_CHECK(kernel_enforces_limit(pair.pd, arena, 2 * MEMLOCK_LIMIT),
		    "ibv_reg_mr of %zu B succeeded under a %zu B RLIMIT_MEMLOCK: the limit is not enforced",
		    2 * MEMLOCK_LIMIT, MEMLOCK_LIMIT);
	CHILD_CHECK(create_cache(pair.pd, &c) == 0, "create: %s", mrc_last_error());

	memlock_stays_within(c, arena);
	/* Another component of the application pins half the limit. */
	mrc_invalidate(c, arena, arena_len);
	outside_mem = mmap(NULL, MEMLOCK_LIMIT / 2, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHILD_CHECK(outside_mem != MAP_FAILED, "mmap: %s", strerror(errno));
	outside = ibv_reg_mr(pair.pd, outside_mem, MEMLOCK_LIMIT / 2,
			     IBV_ACCESS_LOCAL_WRITE);
	CHILD_CHECK(outside, "ibv_reg_mr outside the cache: %s", strerror(errno));
	memlock_evicts_on_refusal(c, arena);
	memlock_all_referenced(c, arena);

	CHILD_CHECK(mrc_cache_destroy(c) == 0, "destroy: %s", mrc_last_error());
	ibv_dereg_mr(outside);
	rdma_pair_close(&pair);
	munmap(outside_mem, MEMLOCK_LIMIT / 2);
	munmap(arena, arena_len);
	return 0;
}

START_TEST(test_memlock_eviction)
{
	int status;
	pid_t pid;

	page = (size_t)sysconf(_SC_PAGESIZE);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(memlock_child());
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "memlock child died (status %#x)", status);
	if (WEXITSTATUS(status) == CHILD_SKIP) {
		cannot_run_here("memlock test: cannot drop CAP_IPC_LOCK or lower RLIMIT_MEMLOCK");
		return;
	}
	ck_assert_msg(WEXITSTATUS(status) == 0, "memlock child failed (see stderr)");
}
END_TEST

static Suite *verbs_suite(void)
{
	Suite *s = suite_create("verbs");
	TCase *tc = tcase_create("pair");
	TCase *mem = tcase_create("memlock");

	/* TCG emulation: a 1 MiB write over Soft-RoCE can take seconds. */
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_registration_and_reuse);
	tcase_add_test(tc, test_merge_covers_union);
	tcase_add_test(tc, test_rdma_write_cached_both_sides);
	tcase_add_test(tc, test_stale_registration_manual_monitor);
	tcase_add_loop_test(tc, test_merge_failure_falls_back_to_request, 0,
			    (int)(sizeof(merge_cases) / sizeof(merge_cases[0])));
	tcase_add_test(tc, test_provider_refuses_bad_memory);
	suite_add_tcase(s, tc);
	tcase_set_timeout(mem, 120);
	tcase_add_test(mem, test_memlock_eviction);
	suite_add_tcase(s, mem);
	return s;
}

/* 0 when a device is there and usable, 77 when there is none, 1 otherwise. */
static int probe_device(void)
{
	struct rdma_pair probe;
	int ret = rdma_pair_open(&probe);

	if (ret == -ENODEV) {
		printf("verbs_test: SKIP: %s\n", rdma_pair_error(&probe));
		return 77;
	}
	if (ret) {
		printf("verbs_test: FAIL: an RDMA device exists but two connected QPs could not be set up: %s\n",
		       rdma_pair_error(&probe));
		return 1;
	}
	printf("verbs_test: device %s port %u, GID index %d, MTU %d\n",
	       probe.device, probe.port, probe.gid_index, 128 << probe.mtu);
	rdma_pair_close(&probe);
	return 0;
}

int main(void)
{
	SRunner *sr;
	int failed, ret;

	ret = probe_device();
	if (ret)
		return ret;
	sr = srunner_create(verbs_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
