// SPDX-License-Identifier: BSD-2-Clause
/*
 * The kernel monitor with real verbs: mrc_cache_create_verbs() caches
 * ibv_reg_mr registrations, /dev/mrcache reports changes to the memory
 * under them, and RDMA WRITEs through the cached rkeys and from the cached
 * lkeys (test/rdma_pair.c) show where the bytes really land and which bytes
 * really leave.
 *
 *  - munmap+mmap, brk, mremap, madvise, free+malloc, malloc_trim, shmdt
 *    (a cached neighbour must survive it) and a thread's exit (glibc drops
 *    its stack's pages) behind the cache's back: with the
 *    kernel and hooks monitors the next get registers the new pages: a WRITE lands
 *    in the memory the application sees, and a WRITE from it sends the
 *    bytes the application wrote; with the manual monitor the same
 *    sequence hands out the stale registration: the WRITE lands in the old
 *    pages and a WRITE from it sends the old bytes (the bug the monitor
 *    exists for).
 *  - migration (move_pages, mbind): pinned idle registrations block it; the
 *    kernel monitor drops them so a retry succeeds, the manual one never.
 *  - memory pressure: the module's shrinker makes the cache unpin idle
 *    registrations, so a memory hog can swap them out and succeed.
 *  - a ring overflow drops every region, including one whose event was lost.
 *  - fork and exit; a forked child writing its copy while the parent uses
 *    its cached registration (in the table: nothing may change for the
 *    parent, so every monitor, manual included, must pass it).
 *
 * Needs /dev/mrcache and an RDMA device (test/monitor_verbs.sh runs it in
 * the VM with the module, rxe and two NUMA nodes); exits 77 without them.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "cache_check.h"
#include "mrcache.h"
#include "mrcache_abi.h"
#include "rdma_pair.h"

#define ACCESS (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
		IBV_ACCESS_REMOTE_READ)
#define NPAGES 4			/* the application buffer of most tests */
#define SRC_PAGES 16
/* A change that may reach the module as UNMAP or as CLEAR. */
#define MRC_REASON_ANY 0
#define STATS_DIR "/sys/class/misc/mrcache/stats/"

static struct rdma_pair pair;
static struct mrc_cache *cache;
static size_t page;
/* The source of every WRITE, registered outside the cache. */
static unsigned char *src;
static struct ibv_mr *src_mr;
/* The target of every WRITE from a cached region, outside the cache. */
static unsigned char *dst;
static struct ibv_mr *dst_mr;

/* ------------------------------------------------------------------------
 * Fixture and small helpers
 */

static void make_cache_merge(uint32_t monitor, uint32_t progress_thread,
			     uint32_t merge)
{
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MONITOR | MRC_ATTR_PROGRESS_THREAD |
			     MRC_ATTR_MERGE,
		.monitor = monitor,
		.progress_thread = progress_thread,
		.merge = merge,
	};
	int ret;

	if (cache)
		ck_assert_int_eq(mrc_cache_destroy(cache), 0);
	cache = NULL;
	ret = mrc_cache_create_verbs(pair.pd, ACCESS, &attr, &cache);
	ck_assert_msg(ret == 0, "mrc_cache_create_verbs: %s", mrc_last_error());
}

static void make_cache(uint32_t monitor, uint32_t progress_thread)
{
	make_cache_merge(monitor, progress_thread, MRC_MERGE_ADJACENT);
}

static void setup(void)
{
	int ret;

	page = (size_t)sysconf(_SC_PAGESIZE);
	ret = rdma_pair_open(&pair);
	ck_assert_msg(ret == 0, "rdma_pair_open: %s", rdma_pair_error(&pair));
	src = mmap(NULL, SRC_PAGES * page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(src, MAP_FAILED);
	src_mr = ibv_reg_mr(pair.pd, src, SRC_PAGES * page, IBV_ACCESS_LOCAL_WRITE);
	ck_assert_msg(src_mr, "ibv_reg_mr(source): %s", strerror(errno));
	dst = mmap(NULL, SRC_PAGES * page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(dst, MAP_FAILED);
	dst_mr = ibv_reg_mr(pair.pd, dst, SRC_PAGES * page,
			    IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	ck_assert_msg(dst_mr, "ibv_reg_mr(target): %s", strerror(errno));
	make_cache(MRC_MONITOR_KMOD, 0);
}

static void teardown(void)
{
	if (cache)
		ck_assert_int_eq(mrc_cache_destroy(cache), 0);
	cache = NULL;
	ibv_dereg_mr(src_mr);
	munmap(src, SRC_PAGES * page);
	ibv_dereg_mr(dst_mr);
	munmap(dst, SRC_PAGES * page);
	rdma_pair_close(&pair);
}

static struct mrc_stats stats(void)
{
	return cache_stats_ok(cache);
}

static struct mrc_region *get_ok(const void *addr, size_t len)
{
	return cache_get_ok(cache, addr, len, 0);
}

static void put_ok(struct mrc_region *r)
{
	cache_put_ok(cache, r);
}

static unsigned char *map_anon(void *hint, size_t len, int fixed)
{
	unsigned char *p = mmap(hint, len, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS |
				(fixed ? MAP_FIXED : 0), -1, 0);

	ck_assert_ptr_ne(p, MAP_FAILED);
	return p;
}

static void fill_pattern(unsigned char *p, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(seed * 29 + i * 13 + (i >> 11) + 1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t count_bytes(const unsigned char *p, size_t len, unsigned char v)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += p[i] == v;
	return n;
}

/*
 * RDMA WRITE @len bytes of a fresh pattern to @dst through the rkey of @r;
 * the pattern is left in src for comparisons.
 */
static void write_through(const struct mrc_region *r, void *dst, size_t len,
			  unsigned int seed)
{
	int ret;

	ck_assert_uint_le(len, SRC_PAGES * page);
	fill_pattern(src, len, seed);
	ret = rdma_pair_write(&pair, src, len, src_mr->lkey, (uintptr_t)dst,
			      mrc_region_rkey(r));
	ck_assert_msg(ret == 0, "RDMA WRITE of %zu B to %p: %s", len, dst,
		      rdma_pair_error(&pair));
}

/*
 * The send side: RDMA WRITE @len bytes at @p, read through the lkey of @r,
 * into dst (cleared first), where the test can see which bytes left.
 */
static void write_from(const struct mrc_region *r, const void *p, size_t len)
{
	int ret;

	ck_assert_uint_le(len, SRC_PAGES * page);
	memset(dst, 0, len);
	ret = rdma_pair_write(&pair, p, len, mrc_region_lkey(r),
			      (uintptr_t)dst, dst_mr->rkey);
	ck_assert_msg(ret == 0, "RDMA WRITE of %zu B from %p: %s", len, p,
		      rdma_pair_error(&pair));
}

/* What a WRITE from @r sends is what the application sees at @p. */
static void assert_sends_current(const struct mrc_region *r, const void *p,
				 size_t len, const char *what)
{
	write_from(r, p, len);
	ck_assert_msg(!memcmp(dst, p, len),
		      "%s: a WRITE from the cached lkey did not send the application's bytes",
		      what);
}

static long module_stat(const char *name)
{
	char path[128];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), STATS_DIR "%s", name);
	f = fopen(path, "r");
	ck_assert_msg(f, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(fscanf(f, "%ld", &v), 1);
	fclose(f);
	return v;
}

static const char *reason_name(unsigned int reason)
{
	static const char *const names[] = {
		[MRC_REASON_UNMAP] = "UNMAP", [MRC_REASON_CLEAR] = "CLEAR",
		[MRC_REASON_RELEASE] = "RELEASE", [MRC_REASON_MIGRATE] = "MIGRATE",
		[MRC_REASON_UNKNOWN] = "UNKNOWN", [MRC_REASON_PRESSURE] = "PRESSURE",
	};

	if (reason < sizeof(names) / sizeof(names[0]) && names[reason])
		return names[reason];
	return "?";
}

/*
 * What the module says about the library's watch of [addr, +len): the
 * test looks at the library's /dev/mrcache file through the ABI (QUERY
 * needs no cooperation from the library). Returns 0 when found.
 */
static int query_one_file(int fd, uintptr_t addr, size_t len,
			  struct mrc_query *out)
{
	for (uint32_t id = 0;; id++) {
		struct mrc_query q = { .id = id };

		if (ioctl(fd, MRC_IOC_QUERY, &q)) {
			if (errno == ENOENT)
				continue;
			return -1;	/* EINVAL past the last slot, EPERM ... */
		}
		if (q.start == addr && q.length == len) {
			*out = q;
			return 0;
		}
	}
}

static int query_watch(const void *addr, size_t len, struct mrc_query *out)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char target[64];
	int found = -1;

	ck_assert_ptr_nonnull(d);
	while (found && (e = readdir(d))) {
		ssize_t n;

		n = readlinkat(dirfd(d), e->d_name, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		if (strcmp(target, MRC_DEVICE_PATH))
			continue;
		found = query_one_file(atoi(e->d_name), (uintptr_t)addr, len, out);
	}
	closedir(d);
	return found;
}

/* The library's watch of the range was invalidated, for @reason. */
static void assert_watch_fired(const void *addr, size_t len,
			       unsigned int reason, const char *what)
{
	struct mrc_query q = { 0 };
	/* The cache watches whole pages. */
	uintptr_t start = (uintptr_t)addr & ~(page - 1);
	uintptr_t end = ((uintptr_t)addr + len + page - 1) & ~(page - 1);

	addr = (const void *)start;
	len = end - start;
	ck_assert_msg(query_watch(addr, len, &q) == 0,
		      "%s: the library has no watch of %p+%zu", what, addr, len);
	ck_assert_msg(q.state == MRC_STATE_INVALID &&
		      (q.last_reason == reason || reason == MRC_REASON_ANY),
		      "%s: watch state %u reason %s, expected INVALID/%s", what,
		      q.state, reason_name(q.last_reason), reason_name(reason));
	fprintf(stderr, "%s: module: watch %u INVALID, reason %s\n", what, q.id,
		reason_name(q.last_reason));
}

/* ------------------------------------------------------------------------
 * 1. Changes behind the cache's back
 *
 * A scenario maps a buffer of NPAGES pages filled with 0x11, and later
 * changes the memory at those addresses so that the application now sees
 * 0x22 in [changed_off, changed_off + changed_len) (the rest keeps its
 * pages). @alias, when set, is a second mapping of the original pages.
 */
struct buffer {
	unsigned char *p;
	unsigned char *alias;
	size_t len;
	size_t changed_off, changed_len;
	int memfd;
	unsigned char *brk_top;		/* brk scenario: the break to restore */
	void *guard;			/* malloc_trim scenario: the next chunk */
	unsigned char *neighbour;	/* shmdt scenario: cached, must stay */
	int prepare_regs;		/* prepare's registrations of other memory */
	pid_t child;			/* fork scenario: the writing child */
	volatile int *stop;		/* fork scenario: shared with it */
	pthread_t thread;		/* thread exit scenario */
};

struct scenario {
	const char *name;
	unsigned int reason;		/* the module's reason for the change */
	void (*prepare)(struct buffer *b);
	void (*change)(struct buffer *b);
	void (*release)(struct buffer *b);
	int keeps_pages;	/* the old pages stay: nothing goes stale */
	int glibc_malloc;	/* needs glibc's allocator (not a sanitizer's) */
	int unreported;		/* the pages stay and no monitor reports it */
};

static void prepare_anon(struct buffer *b)
{
	b->p = map_anon(NULL, b->len, 0);
}

static void release_anon(struct buffer *b)
{
	munmap(b->p, b->len);
}

/* munmap + mmap: the old pages are a memfd so the test can still see them. */
static void prepare_memfd(struct buffer *b)
{
	b->memfd = memfd_create("mrcache-old-pages", 0);
	ck_assert_int_ge(b->memfd, 0);
	ck_assert_int_eq(ftruncate(b->memfd, (off_t)b->len), 0);
	b->p = mmap(NULL, b->len, PROT_READ | PROT_WRITE, MAP_SHARED, b->memfd, 0);
	b->alias = mmap(NULL, b->len, PROT_READ | PROT_WRITE, MAP_SHARED,
			b->memfd, 0);
	ck_assert_ptr_ne(b->p, MAP_FAILED);
	ck_assert_ptr_ne(b->alias, MAP_FAILED);
}

static void change_munmap_mmap(struct buffer *b)
{
	ck_assert_int_eq(munmap(b->p, b->len), 0);
	ck_assert_ptr_eq(map_anon(b->p, b->len, 1), b->p);
}

static void release_memfd(struct buffer *b)
{
	munmap(b->p, b->len);
	munmap(b->alias, b->len);
	close(b->memfd);
}

/*
 * The heap: grow the break by the buffer. malloc must not move the break
 * in between (setup_heap() gives it room), else shrinking it would take
 * malloc's memory away.
 */
static void prepare_brk(struct buffer *b)
{
	b->brk_top = sbrk(0);
	b->p = (unsigned char *)(((uintptr_t)b->brk_top + page - 1) & ~(page - 1));
	ck_assert_int_eq(brk(b->p + b->len), 0);
}

static void change_brk(struct buffer *b)
{
	ck_assert_msg(sbrk(0) == b->p + b->len,
		      "something else moved the break: cannot shrink it safely");
	ck_assert_int_eq(brk(b->p), 0);		/* shrink: pages freed */
	ck_assert_int_eq(brk(b->p + b->len), 0);	/* grow: new pages */
}

static void release_brk(struct buffer *b)
{
	ck_assert_int_eq(brk(b->brk_top), 0);
}

static void change_mremap_move(struct buffer *b)
{
	unsigned char *other = map_anon(NULL, b->len, 0);

	memset(other, 0x22, b->len);
	ck_assert_ptr_eq(mremap(other, b->len, b->len,
				MREMAP_MAYMOVE | MREMAP_FIXED, b->p), b->p);
}

/* Shrink to half, then grow back in place: the second half is new. */
static void change_mremap_shrink(struct buffer *b)
{
	size_t half = b->len / 2;

	ck_assert_ptr_eq(mremap(b->p, b->len, half, 0), b->p);
	ck_assert_ptr_eq(mremap(b->p, half, b->len, 0), b->p);
	b->changed_off = half;
	b->changed_len = b->len - half;
}

static void change_madvise(struct buffer *b)
{
	ck_assert_int_eq(madvise(b->p, b->len, MADV_DONTNEED), 0);
}

/*
 * free() of a large block, which malloc served with its own mmap (it is
 * larger than the free room setup_heap() left), then a malloc of the same
 * size, which gets the same address back on new pages: glibc unmaps the
 * freed chunk and the kernel reuses the hole. The buffer is its start.
 */
#define BIG_BLOCK (16 << 20)

static void prepare_malloc(struct buffer *b)
{
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	b->p = malloc(BIG_BLOCK);
	ck_assert_ptr_nonnull(b->p);
}

static void change_free_malloc(struct buffer *b)
{
	unsigned char *again;

	free(b->p);
	again = malloc(BIG_BLOCK);
	ck_assert_msg(again == b->p, "malloc did not give the freed address back (%p, %p)",
		      (void *)again, (void *)b->p);
}

static void release_malloc(struct buffer *b)
{
	free(b->p);
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
}

/*
 * A freed heap chunk between two used ones: malloc_trim(0) gives its whole
 * pages back with madvise(DONTNEED), and the next malloc of that size
 * returns the same chunk, on new pages where it spans whole ones.
 */
static void prepare_heap_chunk(struct buffer *b)
{
	unsigned char *chunk = malloc(b->len + 2 * page);
	/* Whole pages past the free-list links malloc writes into the chunk. */
	uintptr_t first = ((uintptr_t)chunk + 64 + page - 1) & ~(page - 1);
	uintptr_t last = ((uintptr_t)chunk + b->len) & ~(page - 1);

	ck_assert_ptr_nonnull(chunk);
	b->guard = malloc(64);		/* keeps the chunk off the heap's top */
	b->p = chunk;
	b->changed_off = first - (uintptr_t)chunk;
	b->changed_len = last - first;
}

static void change_malloc_trim(struct buffer *b)
{
	unsigned char *again;

	free(b->p);
	ck_assert_int_eq(malloc_trim(0), 1);
	again = malloc(b->len + 2 * page);
	ck_assert_ptr_eq(again, b->p);
}

static void release_heap_chunk(struct buffer *b)
{
	free(b->p);
	free(b->guard);
}

/*
 * System V shared memory: detach, attach another segment at that address.
 * A cached neighbour lies one page beyond the segment (a PROT_NONE gap
 * keeps the two regions from merging): a shmdt must not drop it.
 */
static void prepare_shm(struct buffer *b)
{
	unsigned char *area = mmap(NULL, b->len + 2 * page, PROT_NONE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(area, MAP_FAILED);
	b->memfd = shmget(IPC_PRIVATE, b->len, IPC_CREAT | 0600);
	ck_assert_int_ge(b->memfd, 0);
	b->p = shmat(b->memfd, area, SHM_REMAP);
	ck_assert_ptr_eq(b->p, area);
	shmctl(b->memfd, IPC_RMID, NULL);
	/* In our own reservation: MAP_FIXED replaces only its PROT_NONE. */
	b->neighbour = map_anon(area + b->len + page, page, 1);
	memset(b->neighbour, 0x55, page);
	put_ok(get_ok(b->neighbour, page));
	b->prepare_regs = 1;
}

static void change_shmdt(struct buffer *b)
{
	int other = shmget(IPC_PRIVATE, b->len, IPC_CREAT | 0600);

	ck_assert_int_ge(other, 0);
	ck_assert_int_eq(shmdt(b->p), 0);
	ck_assert_ptr_eq(shmat(other, b->p, 0), b->p);
	shmctl(other, IPC_RMID, NULL);
}

/* The neighbour is still cached: a get of it registers nothing. */
static void release_shm(struct buffer *b)
{
	uint64_t regs = stats().reg_calls;
	struct mrc_region *r = get_ok(b->neighbour, page);

	ck_assert_msg(stats().reg_calls == regs,
		      "shmdt dropped a cached region beyond the segment");
	assert_sends_current(r, b->neighbour, page, "shmdt neighbour");
	put_ok(r);
	shmdt(b->p);
	munmap(b->neighbour - page, 2 * page);
	b->memfd = -1;
}

/*
 * fork: the child writes its copy of the buffer over and over while the
 * parent keeps using its cached registration. The kernel gives the child
 * copies of pinned pages at fork, so the parent's pages and registration
 * stay valid: nothing is reported, the parent hits, and its WRITEs must
 * move the parent's bytes, never the child's.
 */
static void fork_child_writes(struct buffer *b)
{
	while (!*b->stop) {
		memset(b->p, 0x33, b->len);
		if (count_bytes(b->p, b->len, 0x33) != b->len)
			_exit(1);	/* the parent's writes reached our copy */
	}
	_exit(0);
}

static void prepare_fork(struct buffer *b)
{
	prepare_anon(b);
	b->stop = mmap(NULL, page, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne((void *)b->stop, MAP_FAILED);
	*b->stop = 0;
}

static void change_fork(struct buffer *b)
{
	fflush(NULL);
	b->child = fork();
	ck_assert_int_ge(b->child, 0);
	if (b->child == 0)
		fork_child_writes(b);
}

static void release_fork(struct buffer *b)
{
	int status;

	*b->stop = 1;
	ck_assert_int_eq(waitpid(b->child, &status, 0), b->child);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "fork: the child saw the parent's bytes in its copy (status %#x)",
		      status);
	munmap((void *)b->stop, page);
	release_anon(b);
}

/*
 * Thread exit: a thread caches a registration of the bottom of its own
 * stack and exits; glibc then gives the unused part of the stack back
 * with madvise(MADV_DONTNEED) from the exiting thread (before its TLS is
 * gone), and keeps the stack for the next thread. The application (here
 * the main thread, as a new thread would) writes there afterwards.
 */
#define THREAD_STACK ((size_t)1 << 20)

static pthread_barrier_t stack_barrier;

static void *stack_thread(void *arg)
{
	struct buffer *b = arg;
	pthread_attr_t attr;
	size_t size;
	void *low;

	ck_assert_int_eq(pthread_getattr_np(pthread_self(), &attr), 0);
	ck_assert_int_eq(pthread_attr_getstack(&attr, &low, &size), 0);
	pthread_attr_destroy(&attr);
	b->p = (unsigned char *)(((uintptr_t)low + page - 1) & ~(page - 1));
	memset(b->p, 0x11, b->len);
	put_ok(get_ok(b->p, b->len));
	pthread_barrier_wait(&stack_barrier);	/* cached */
	pthread_barrier_wait(&stack_barrier);	/* now exit */
	return NULL;
}

static void prepare_thread_stack(struct buffer *b)
{
	pthread_attr_t attr;

	ck_assert_int_eq(pthread_barrier_init(&stack_barrier, NULL, 2), 0);
	ck_assert_int_eq(pthread_attr_init(&attr), 0);
	ck_assert_int_eq(pthread_attr_setstacksize(&attr, THREAD_STACK), 0);
	ck_assert_int_eq(pthread_create(&b->thread, &attr, stack_thread, b), 0);
	pthread_attr_destroy(&attr);
	pthread_barrier_wait(&stack_barrier);
}

static void change_thread_exit(struct buffer *b)
{
	pthread_barrier_wait(&stack_barrier);
	ck_assert_int_eq(pthread_join(b->thread, NULL), 0);
	pthread_barrier_destroy(&stack_barrier);
}

/* The stack stays in glibc's cache for the next thread: nothing to free. */
static void release_thread_stack(struct buffer *b)
{
	(void)b;
}

static void change_madvise_free(struct buffer *b)
{
	ck_assert_int_eq(madvise(b->p, b->len, MADV_FREE), 0);
}

static const struct scenario scenarios[] = {
	{ "munmap+mmap", MRC_REASON_UNMAP, prepare_memfd, change_munmap_mmap, release_memfd, 0, 0, 0 },
	{ "brk shrink+grow", MRC_REASON_UNMAP, prepare_brk, change_brk, release_brk, 0, 0, 0 },
	{ "mremap onto", MRC_REASON_UNMAP, prepare_anon, change_mremap_move, release_anon, 0, 0, 0 },
	{ "mremap shrink+grow", MRC_REASON_UNMAP, prepare_anon, change_mremap_shrink, release_anon, 0, 0, 0 },
	{ "madvise(DONTNEED)", MRC_REASON_CLEAR, prepare_anon, change_madvise, release_anon, 0, 0, 0 },
	{ "free+malloc", MRC_REASON_UNMAP, prepare_malloc, change_free_malloc, release_malloc, 0, 1, 0 },
	/* DONTNEED inside the heap (CLEAR), or a shrunk break if at its top. */
	{ "malloc_trim", MRC_REASON_ANY, prepare_heap_chunk, change_malloc_trim, release_heap_chunk, 0, 1, 0 },
	{ "shmdt+shmat", MRC_REASON_UNMAP, prepare_shm, change_shmdt, release_shm, 0, 0, 0 },
	/* Pinned pages survive MADV_FREE: nothing goes stale, but it is reported. */
	{ "madvise(FREE)", MRC_REASON_CLEAR, prepare_anon, change_madvise_free, release_anon, 1, 0, 0 },
	/* The parent's pinned pages stay its own: nothing to report. */
	{ "fork, child writes", MRC_REASON_ANY, prepare_fork, change_fork, release_fork, 1, 0, 1 },
	{ "thread exit", MRC_REASON_CLEAR, prepare_thread_stack, change_thread_exit, release_thread_stack, 0, 0, 0 },
};
#define NSCENARIOS ((int)(sizeof(scenarios) / sizeof(scenarios[0])))

/*
 * The scenarios this build runs, as indexes into scenarios[]. Under a
 * sanitizer malloc is the sanitizer's allocator, which never gives memory
 * back on free() or malloc_trim(): those two are glibc's behaviour and run
 * in the plain build only (MRCACHE_SANITIZED, set by Makefile.am). A
 * sanitized build lists what it runs instead of skipping.
 */
static int runnable[NSCENARIOS];
static int nrunnable;

static void choose_scenarios(void)
{
	int sanitized = getenv("MRCACHE_SANITIZED") != NULL;

	for (int i = 0; i < NSCENARIOS; i++)
		if (!(sanitized && scenarios[i].glibc_malloc))
			runnable[nrunnable++] = i;
}

/*
 * Keep malloc off brk while the brk scenario owns the break: leave 8 MiB
 * of free heap at the top (never trimmed) for the mallocs of mrc_get and
 * ibv_reg_mr, so that none of them needs to move the break.
 */
static void setup_heap(void)
{
	void *room;

	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 128 << 20);
	room = malloc(8 << 20);
	ck_assert_ptr_nonnull(room);
	free(room);
}

/* Map, cache an idle registration, and change the memory behind it. */
static struct mrc_region *cache_then_change(const struct scenario *sc,
					    struct buffer *b, uint32_t *rkey)
{
	struct mrc_region *r;

	b->len = NPAGES * page;
	b->changed_off = 0;
	b->changed_len = b->len;
	sc->prepare(b);
	memset(b->p, 0x11, b->len);
	r = get_ok(b->p, b->len);
	*rkey = mrc_region_rkey(r);
	put_ok(r);
	sc->change(b);
	/* What the application now writes into its buffer. */
	memset(b->p + b->changed_off, 0x22, b->changed_len);
	return r;
}

/* A monitor that must catch every scenario: kmod or hooks. */
static void scenario_watched(const struct scenario *sc, uint32_t monitor)
{
	struct buffer b = { .memfd = -1 };
	struct mrc_region *r, *old;
	struct mrc_stats before, after;
	uint32_t old_rkey;
	unsigned int fresh;

	make_cache(monitor, 0);
	/*
	 * Counters before the change: mrc_cache_stats() drains pending
	 * events, so taking them after it would already count this one.
	 */
	before = stats();
	old = cache_then_change(sc, &b, &old_rkey);
	/* The buffer's first registration, and prepare's own. */
	before.reg_calls += 1 + (uint64_t)b.prepare_regs;
	if (monitor == MRC_MONITOR_KMOD && !sc->unreported)
		assert_watch_fired(b.p, b.len, sc->reason, sc->name);
	r = get_ok(b.p, b.len);		/* drains the event first */
	after = stats();
	fresh = !sc->unreported;
	ck_assert_uint_eq(after.invalidations, before.invalidations + fresh);
	ck_assert_uint_eq(after.reg_calls, before.reg_calls + fresh);
	if (!fresh)
		ck_assert_ptr_eq(r, old);
	/* The send side first, while the buffer holds the new bytes. */
	assert_sends_current(r, b.p, b.len, sc->name);
	ck_assert_uint_eq(count_bytes(dst + b.changed_off, b.changed_len, 0x22),
			  b.changed_len);
	write_through(r, b.p, b.len, 7);
	ck_assert_msg(!memcmp(b.p, src, b.len),
		      "%s: the WRITE did not land in the application's memory", sc->name);
	if (b.alias)
		ck_assert_uint_eq(count_bytes(b.alias, b.len, 0x11), b.len);
	fprintf(stderr, "%s: %s: %llu invalidation, %s (rkey %#x -> %#x), a %zu B WRITE from the lkey sent the application's bytes, the %zu B WRITE landed in its pages\n",
		sc->name, after.monitor, (unsigned long long)after.invalidations,
		fresh ? "registered again" : "the same registration (its pages stayed)",
		old_rkey, mrc_region_rkey(r), b.len, b.len);
	put_ok(r);
	sc->release(&b);
}

/* A change that keeps the pages: the reused registration is still right. */
static void manual_still_correct(const struct scenario *sc, struct buffer *b,
				 struct mrc_region *r)
{
	assert_sends_current(r, b->p, b->len, sc->name);
	write_through(r, b->p, b->len, 9);
	ck_assert_msg(!memcmp(b->p, src, b->len),
		      "%s: the WRITE did not land in the application's memory", sc->name);
	fprintf(stderr, "%s: manual: the pages stayed (pinned), so the reused registration moved the right bytes both ways\n",
		sc->name);
	put_ok(r);
	sc->release(b);
}

/* The classic bug: without a monitor the stale registration is handed out. */
static void scenario_manual(const struct scenario *sc)
{
	struct buffer b = { .memfd = -1 };
	struct mrc_region *old, *r;
	struct mrc_stats before;
	size_t untouched, stale_sent;
	uint32_t old_rkey;

	make_cache(MRC_MONITOR_MANUAL, 0);
	old = cache_then_change(sc, &b, &old_rkey);
	before = stats();
	r = get_ok(b.p, b.len);
	ck_assert_ptr_eq(r, old);
	ck_assert_uint_eq(mrc_region_rkey(r), old_rkey);
	ck_assert_uint_eq(stats().reg_calls, before.reg_calls);
	ck_assert_uint_eq(stats().invalidations, 0);
	if (sc->keeps_pages) {
		manual_still_correct(sc, &b, r);
		return;
	}
	/* The send side first, while the old pages still hold the old bytes. */
	write_from(r, b.p, b.len);
	stale_sent = count_bytes(dst + b.changed_off, b.changed_len, 0x11);
	ck_assert_msg(stale_sent == b.changed_len,
		      "%s: manual monitor: a WRITE from the stale lkey sent %zu of %zu changed bytes as they were before the change (first bytes sent %02x %02x %02x %02x)",
		      sc->name, stale_sent, b.changed_len, dst[b.changed_off],
		      dst[b.changed_off + 1], dst[b.changed_off + 2],
		      dst[b.changed_off + 3]);
	write_through(r, b.p, b.len, 9);
	untouched = count_bytes(b.p + b.changed_off, b.changed_len, 0x22);
	ck_assert_msg(untouched == b.changed_len,
		      "%s: manual monitor: %zu of %zu changed bytes received the WRITE",
		      sc->name, b.changed_len - untouched, b.changed_len);
	if (b.alias)
		ck_assert_msg(!memcmp(b.alias, src, b.len),
			      "%s: the WRITE did not reach the old pages", sc->name);
	fprintf(stderr, "%s: manual: stale registration reused, a WRITE from its lkey sent the %zu changed bytes as they were before the change, the %zu B WRITE missed them%s\n",
		sc->name, b.changed_len, b.len,
		b.alias ? " and landed in the old pages" : "");
	put_ok(r);
	sc->release(&b);
}

START_TEST(change_with_kmod_monitor)
{
	setup_heap();
	scenario_watched(&scenarios[runnable[_i]], MRC_MONITOR_KMOD);
}
END_TEST

START_TEST(change_with_hooks_monitor)
{
	setup_heap();
	scenario_watched(&scenarios[runnable[_i]], MRC_MONITOR_HOOKS);
}
END_TEST

/*
 * The userfaultfd monitor refuses System V shared memory (UFFDIO_REGISTER
 * does not take the IPC layer's mapping): a get fails, nothing is cached.
 */
static void uffd_refuses(const struct scenario *sc)
{
	struct buffer b = { .memfd = -1, .len = NPAGES * page };
	struct mrc_region *r;
	uint64_t regions;

	make_cache(MRC_MONITOR_UFFD, 0);
	sc->prepare(&b);
	/* prepare() may cache a neighbour of the segment. */
	regions = stats().regions;
	ck_assert_int_eq(mrc_get(cache, b.p, b.len, 0, &r), -EOPNOTSUPP);
	ck_assert_uint_eq(stats().regions, regions);
	fprintf(stderr, "%s: uffd: refused, as documented: %s\n", sc->name,
		mrc_last_error());
	sc->release(&b);
}

START_TEST(change_with_uffd_monitor)
{
	const struct scenario *sc = &scenarios[runnable[_i]];

	setup_heap();
	if (sc->prepare == prepare_shm)
		uffd_refuses(sc);
	else
		scenario_watched(sc, MRC_MONITOR_UFFD);
}
END_TEST

START_TEST(change_with_manual_monitor)
{
	setup_heap();
	scenario_manual(&scenarios[runnable[_i]]);
}
END_TEST

/* ------------------------------------------------------------------------
 * 1b. Migration. Pinned pages cannot migrate, but every attempt unmaps
 * them for a moment, which the module reports (CLEAR). The kernel monitor
 * then drops the idle registration, so the next attempt succeeds; with the
 * manual monitor the idle registration pins the pages for good.
 */

/* How many of the @n pages at @p are on @node now; the statuses in @where. */
static int pages_on(unsigned char *p, int n, int node, int *where)
{
	void *pages[NPAGES];
	int on = 0;

	ck_assert_int_le(n, NPAGES);
	for (int i = 0; i < n; i++)
		pages[i] = p + (size_t)i * page;
	ck_assert_int_eq(move_pages(0, (unsigned long)n, pages, NULL, where, 0), 0);
	for (int i = 0; i < n; i++)
		on += where[i] == node;
	return on;
}

/* move_pages(2) of the whole buffer: its return value (pages not moved). */
static long move_buffer(unsigned char *p, int node)
{
	void *pages[NPAGES];
	int nodes[NPAGES], status[NPAGES];

	for (int i = 0; i < NPAGES; i++) {
		pages[i] = p + (size_t)i * page;
		nodes[i] = node;
	}
	return move_pages(0, NPAGES, pages, nodes, status, MPOL_MF_MOVE);
}

/* mbind(2) to @node, moving what is there: 0 or -errno (EIO: not moved). */
static long bind_buffer(unsigned char *p, int node)
{
	unsigned long mask = 1UL << node;

	if (mbind(p, NPAGES * page, MPOL_BIND, &mask, sizeof(mask) * 8,
		  MPOL_MF_MOVE | MPOL_MF_STRICT))
		return -errno;
	return 0;
}

static const char *where_str(const int *where, char *buf, size_t size)
{
	size_t n = 0;

	for (int i = 0; i < NPAGES && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%d", i ? "," : "", where[i]);
	return buf;
}

/* A buffer on node 0 with an idle cached registration pinning it. */
static unsigned char *cached_on_node0(void)
{
	unsigned char *p = map_anon(NULL, NPAGES * page, 0);
	struct mrc_region *r;
	int where[NPAGES];

	memset(p, 0x33, NPAGES * page);
	ck_assert_int_eq(move_buffer(p, 0), 0);
	ck_assert_int_eq(pages_on(p, NPAGES, 0, where), NPAGES);
	r = get_ok(p, NPAGES * page);
	put_ok(r);
	return p;
}

typedef long (*migrate_fn)(unsigned char *p, int node);

/* Retry until every page is on node 1, at most @tries times, 20 ms apart. */
static int migrate_retrying(migrate_fn migrate, unsigned char *p, int tries,
			    long *last)
{
	int where[NPAGES];

	for (int i = 1; i <= tries; i++) {
		*last = migrate(p, 1);
		if (pages_on(p, NPAGES, 1, where) == NPAGES)
			return i;
		usleep(20000);
	}
	return 0;
}

/*
 * After the pages moved: a get registers them anew, a WRITE from it sends
 * the bytes now there and a WRITE to it lands.
 */
static void assert_usable_after_move(unsigned char *p, const struct mrc_stats *before)
{
	struct mrc_region *r = get_ok(p, NPAGES * page);
	struct mrc_stats after = stats();
	int where[NPAGES];

	ck_assert_uint_ge(after.invalidations, before->invalidations + 1);
	ck_assert_uint_eq(after.reg_calls, before->reg_calls + 1);
	memset(p, 0x44, NPAGES * page);		/* new bytes in the moved pages */
	assert_sends_current(r, p, NPAGES * page, "after the move");
	write_through(r, p, NPAGES * page, 5);
	ck_assert(!memcmp(p, src, NPAGES * page));
	ck_assert_int_eq(pages_on(p, NPAGES, 1, where), NPAGES);
	put_ok(r);
}

/* Drained by mrc_cache_progress(): the first attempt fails, the next works. */
static void migration_kmod(const char *what, migrate_fn migrate)
{
	unsigned char *p;
	struct mrc_stats before;
	int where[NPAGES], tries;
	char buf[64];
	long first, last;

	make_cache(MRC_MONITOR_KMOD, 0);
	p = cached_on_node0();
	before = stats();
	first = migrate(p, 1);
	ck_assert_msg(pages_on(p, NPAGES, 1, where) == 0,
		      "%s: pinned pages moved (%ld; now on nodes %s)", what, first,
		      where_str(where, buf, sizeof(buf)));
	assert_watch_fired(p, NPAGES * page, MRC_REASON_CLEAR, what);
	ck_assert_int_eq(mrc_cache_progress(cache), 0);
	tries = migrate_retrying(migrate, p, 1, &last);
	ck_assert_msg(tries == 1 && last == 0,
		      "%s: pages not on node 1 after the drain (%ld)", what, last);
	pages_on(p, NPAGES, 1, where);
	fprintf(stderr, "%s: kmod + mrc_cache_progress: while pinned: %ld, pages on node 0; after the drain: 0, pages on nodes %s\n",
		what, first, where_str(where, buf, sizeof(buf)));
	assert_usable_after_move(p, &before);
	munmap(p, NPAGES * page);
}

/*
 * The progress thread drains without any cache call: the application just
 * retries. The thread may even unpin the pages while the kernel is still
 * retrying the first attempt, which then succeeds.
 */
static void migration_progress_thread(const char *what, migrate_fn migrate)
{
	unsigned char *p;
	struct mrc_stats before;
	int where[NPAGES], tries;
	char buf[64];
	long last;

	make_cache(MRC_MONITOR_KMOD, 1);
	p = cached_on_node0();
	before = stats();
	tries = migrate_retrying(migrate, p, 100, &last);
	ck_assert_msg(tries > 0, "%s: pages not on node 1 after 100 attempts (%ld)",
		      what, last);
	pages_on(p, NPAGES, 1, where);
	fprintf(stderr, "%s: kmod + progress thread: moved on attempt %d (%ld), no cache call; pages on nodes %s\n",
		what, tries, last, where_str(where, buf, sizeof(buf)));
	assert_usable_after_move(p, &before);
	munmap(p, NPAGES * page);
}

static void migration_manual(const char *what, migrate_fn migrate)
{
	unsigned char *p;
	int where[NPAGES];
	char buf[64];
	long ret = 0;

	make_cache(MRC_MONITOR_MANUAL, 0);
	p = cached_on_node0();
	for (int i = 0; i < 5; i++) {
		ret = migrate(p, 1);
		ck_assert_int_eq(mrc_cache_progress(cache), 0);
		ck_assert_msg(pages_on(p, NPAGES, 0, where) == NPAGES,
			      "%s: manual monitor: pinned pages moved (%ld; nodes %s)",
			      what, ret, where_str(where, buf, sizeof(buf)));
	}
	ck_assert_uint_eq(stats().invalidations, 0);
	ck_assert_uint_eq(stats().regions, 1);
	fprintf(stderr, "%s: manual: 5 attempts, each %ld, pages stay on nodes %s (pinned by the idle registration)\n",
		what, ret, where_str(where, buf, sizeof(buf)));
	munmap(p, NPAGES * page);
}

START_TEST(move_pages_kmod)
{
	migration_kmod("move_pages", move_buffer);
}
END_TEST

START_TEST(mbind_kmod)
{
	migration_kmod("mbind", bind_buffer);
}
END_TEST

START_TEST(move_pages_kmod_progress_thread)
{
	migration_progress_thread("move_pages", move_buffer);
}
END_TEST

START_TEST(mbind_kmod_progress_thread)
{
	migration_progress_thread("mbind", bind_buffer);
}
END_TEST

START_TEST(move_pages_manual)
{
	migration_manual("move_pages", move_buffer);
}
END_TEST

START_TEST(mbind_manual)
{
	migration_manual("mbind", bind_buffer);
}
END_TEST

/* ------------------------------------------------------------------------
 * 3. Ring overflow. A watch reports only its first invalidation, so the
 * ring overflows when more watched regions are invalidated between two
 * drains than it has entries. The test reads the geometry the library got
 * from the module, fills the ring with the invalidations of idle regions,
 * and then unmaps one more region, which is referenced so pressure cannot
 * evict it: its event is counted as overflow instead of queued, and only
 * the library's overflow handling can drop it.
 *
 * Pressure is not an overflow: with the ring full, a shrinker request
 * evicts idle regions and leaves a referenced one cached (it used to be
 * posted into the ring, counted as an overflow when it did not fit, and
 * made the library drop every region).
 */

/* The library's mapping of /dev/mrcache, from /proc/self/maps. */
static const void *library_ring_map(void)
{
	char line[512];
	const void *map = NULL;
	FILE *f = fopen("/proc/self/maps", "r");

	ck_assert_ptr_nonnull(f);
	while (!map && fgets(line, sizeof(line), f))
		if (strstr(line, MRC_DEVICE_PATH))
			map = (const void *)strtoul(line, NULL, 16);
	fclose(f);
	ck_assert_msg(map, "the library has no %s mapping", MRC_DEVICE_PATH);
	return map;
}

/* Ring entries and watch slots of the cache's file, as the module set them. */
static void library_geometry(uint32_t *entries, uint32_t *slots)
{
	struct mrc_api api = { .abi_version = MRC_ABI_VERSION, .flags = MRC_API_PROBE };
	const char *map = library_ring_map();
	int fd = open(MRC_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	/* A probe sets nothing up; it only tells where the fields are. */
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ioctl(fd, MRC_IOC_API, &api), 0);
	close(fd);
	memcpy(entries, map + api.off.entries, sizeof(*entries));
	memcpy(slots, map + api.off.watch_slots, sizeof(*slots));
}

static void drop_slab_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

	ck_assert_msg(fd >= 0, "drop_caches: %s", strerror(errno));
	ck_assert_int_eq(write(fd, "2", 1), 1);
	close(fd);
}

static void make_unmerged_cache(void)
{
	make_cache_merge(MRC_MONITOR_KMOD, 0, MRC_MERGE_NONE);
}

/*
 * The cache's geometry, which must let the ring overflow: a watch posts one
 * event until it is re-armed, so only more watch slots than ring entries
 * can fill it.
 */
static void overflowable_geometry(uint32_t *entries, uint32_t *slots)
{
	library_geometry(entries, slots);
	ck_assert_msg(*slots > *entries,
		      "%u watch slots, %u ring entries: the ring cannot overflow",
		      *slots, *entries);
}

/*
 * @n idle one-page regions whose unmap leaves the ring exactly full.
 *
 * Reclaim elsewhere in the guest (a sanitizer's shadow memory starts it in
 * the TSan build) can make the module's shrinker ask for pages while they
 * are cached, and the cache rightly releases idle ones: the ring would not
 * fill, or a request still pending would be answered inside the case. Such
 * a try is undone and made again. Regions lost without a shrinker request
 * fail the test.
 */
#define FULL_RING_TRIES 4

static unsigned char *full_ring_pages(long n)
{
	for (int try = 1;; try++) {
		long pressure = module_stat("pressure_events");
		uint64_t before = stats().regions, cached;
		unsigned char *p = map_anon(NULL, (size_t)n * page, 0);

		memset(p, 0x44, (size_t)n * page);
		for (long i = 0; i < n; i++)
			put_ok(get_ok(p + i * page, page));
		cached = stats().regions - before;
		/* Answers a request raised after the last get, if any. */
		ck_assert_int_eq(mrc_cache_progress(cache), 0);
		if (module_stat("pressure_events") == pressure) {
			ck_assert_msg(cached == (uint64_t)n,
				      "%llu of %ld idle regions cached, and no shrinker request",
				      (unsigned long long)cached, n);
			return p;
		}
		ck_assert_msg(try < FULL_RING_TRIES,
			      "the shrinker asked for pages in each of %d tries to fill the ring",
			      try);
		fprintf(stderr, "full ring: the shrinker asked for pages while %ld regions were cached (%llu stayed), reclaim outside the test; try %d\n",
			n, (unsigned long long)(stats().regions - before), try + 1);
		ck_assert_int_eq(munmap(p, (size_t)n * page), 0);
		ck_assert_int_eq(mrc_cache_progress(cache), 0);
		ck_assert_uint_eq(stats().regions, before);
	}
}

START_TEST(ring_overflow_drops_every_region)
{
	long events, overflows, watches, n_idle;
	uint64_t invalidations;
	uint32_t entries, slots;
	unsigned char *p, *last;
	struct mrc_region *held, *r;
	struct mrc_stats s;
	double t0, drain_s;

	make_unmerged_cache();
	overflowable_geometry(&entries, &slots);
	n_idle = (long)entries;
	watches = module_stat("watches");
	p = full_ring_pages(n_idle);
	/* Its own mapping: not merged with p's VMA, not touched by its unmap. */
	last = map_anon(NULL, page, 0);
	memset(last, 0x44, page);
	held = get_ok(last, page);
	events = module_stat("events");
	overflows = module_stat("overflows");
	invalidations = stats().invalidations;

	ck_assert_int_eq(munmap(p, (size_t)n_idle * page), 0);
	ck_assert_int_eq(module_stat("events"), events + entries);
	ck_assert_int_eq(munmap(last, page), 0);		/* lost: overflow */
	ck_assert_int_eq(module_stat("events"), events + entries);
	ck_assert_int_eq(module_stat("overflows"), overflows + 1);
	assert_watch_fired(last, page, MRC_REASON_UNMAP, "overflow");

	ck_assert_ptr_eq(map_anon(last, page, 1), last);
	memset(last, 0x55, page);
	t0 = now_s();
	ck_assert_int_eq(mrc_cache_progress(cache), 0);
	drain_s = now_s() - t0;
	put_ok(held);
	s = stats();
	ck_assert_uint_eq(s.regions, 0);
	ck_assert_uint_eq(s.bytes_pinned, 0);
	ck_assert_uint_eq(s.invalidations - invalidations, (uint64_t)n_idle + 1);
	/*
	 * Every registration made was deregistered. Not n_idle + 1: a
	 * registration that raced a change of its pages (in the VM, pinning
	 * may migrate them first) was deregistered and made again.
	 */
	ck_assert_uint_eq(s.dereg_calls, s.reg_calls - s.reg_failures);
	ck_assert_int_eq(module_stat("watches"), watches);

	/* The cache works on: the new page gets a new registration. */
	r = get_ok(last, page);
	ck_assert_uint_eq(stats().reg_calls, s.reg_calls + 1);
	assert_sends_current(r, last, page, "overflow");
	write_through(r, last, page, 11);
	ck_assert(!memcmp(last, src, page));
	fprintf(stderr, "overflow: ring %u entries, %u watch slots: %ld regions invalidated -> %ld events queued + %ld overflow; after one drain (%.2f s) %llu invalidations, 0 regions, module watches back to %ld; the next get registered anew, its WRITE landed\n",
		entries, slots, n_idle + 1,
		module_stat("events") - events, module_stat("overflows") - overflows,
		drain_s, (unsigned long long)(s.invalidations - invalidations),
		watches);
	put_ok(r);
	munmap(last, page);
}
END_TEST

START_TEST(pressure_in_full_ring_keeps_busy_regions)
{
	long overflows, pressure;
	uint64_t invalidations;
	uint32_t entries, slots;
	unsigned char *p, *busy;
	struct mrc_region *held, *again;
	struct mrc_stats s;

	make_unmerged_cache();
	overflowable_geometry(&entries, &slots);
	busy = map_anon(NULL, page, 0);
	memset(busy, 0x66, page);
	held = get_ok(busy, page);
	p = full_ring_pages((long)entries);
	overflows = module_stat("overflows");
	pressure = module_stat("pressure_events");
	invalidations = stats().invalidations;

	ck_assert_int_eq(munmap(p, (size_t)entries * page), 0);
	drop_slab_caches();
	ck_assert_int_eq(module_stat("pressure_events"), pressure + 1);
	ck_assert_msg(module_stat("overflows") == overflows,
		      "pressure in a full ring counted as an overflow");
	ck_assert_int_eq(mrc_cache_progress(cache), 0);
	s = stats();
	ck_assert_uint_eq(s.invalidations - invalidations, entries);
	ck_assert_uint_eq(s.regions, 1);

	/* The referenced region survived: a hit, and its WRITE lands. */
	again = get_ok(busy, page);
	ck_assert_ptr_eq(again, held);
	ck_assert_uint_eq(stats().reg_calls, s.reg_calls);
	assert_sends_current(again, busy, page, "pressure in a full ring");
	write_through(again, busy, page, 12);
	ck_assert(!memcmp(busy, src, page));
	put_ok(again);
	put_ok(held);
	fprintf(stderr, "pressure in a full ring (%u entries): no overflow, %llu invalidations, the referenced region stayed cached\n",
		entries, (unsigned long long)(s.invalidations - invalidations));
	munmap(busy, page);
}
END_TEST

/* ------------------------------------------------------------------------
 * 2. Memory pressure. Pinned pages cannot be swapped out. The cache pins
 * about half of the guest's available memory in idle registrations of
 * same-filled pages (which zram stores for free once they can be swapped),
 * then another process allocates and mlocks three quarters of it. With
 * the kernel monitor and its progress thread the
 * module's shrinker sends PRESSURE events, the cache deregisters idle
 * regions, the kernel swaps their pages out and the hog completes. With the
 * manual monitor nothing unpins them and the hog is OOM-killed.
 */
#define HOG_CHUNK ((size_t)4 << 20)
#define PIN_REGION ((size_t)4 << 20)
#define HOG_EXIT_OK 0
#define HOG_EXIT_NOMEM 3

static long meminfo_kib(const char *field)
{
	char line[128];
	size_t n = strlen(field);
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	ck_assert_ptr_nonnull(f);
	while (v < 0 && fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n) && line[n] == ':')
			v = atol(line + n + 1);
	fclose(f);
	ck_assert_msg(v >= 0, "no %s in /proc/meminfo", field);
	return v;
}

static void set_oom_score_adj(const char *value)
{
	FILE *f = fopen("/proc/self/oom_score_adj", "w");

	if (f) {
		fputs(value, f);
		fclose(f);
	}
}

/*
 * The hog (this binary run with --hog MiB): allocate and mlock, exit 0.
 * Locked, its pages cannot be swapped out to make room for themselves: all
 * the room must come from other memory.
 */
static int cg_write(const char *dir, const char *file, const char *val);

static int hog_main(const char *mib_text)
{
	size_t target = (size_t)atol(mib_text) << 20;
	const char *cg = getenv("MRCACHE_HOG_CGROUP");

	/* The memcg cases put the hog in a cgroup of its own. */
	if (cg && cg_write(cg, "cgroup.procs", "0"))
		return HOG_EXIT_NOMEM;
	set_oom_score_adj("1000");
	for (size_t done = 0; done < target; done += HOG_CHUNK) {
		unsigned char *p = mmap(NULL, HOG_CHUNK, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED || mlock(p, HOG_CHUNK))
			return HOG_EXIT_NOMEM;
		memset(p, 0x99, HOG_CHUNK);
	}
	return HOG_EXIT_OK;
}

/*
 * How long a hog may take to finish or be OOM-killed. Swapping to zram
 * under TCG is slow: a CI run saw the manual case outlast 180 s in all.
 */
#define HOG_TIMEOUT_S 240

/* Run the hog; its wait status, or -1 when it ran past @timeout_s. */
static int run_hog(long mib, int timeout_s, double *seconds)
{
	char arg[32];
	char *argv[] = { "monitor_verbs_test", "--hog", arg, NULL };
	double t0 = now_s();
	pid_t pid;
	int status;

	snprintf(arg, sizeof(arg), "%ld", mib);
	fflush(NULL);
	/* posix_spawn: no copy of our pinned pages, as fork() would make. */
	ck_assert_int_eq(posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv,
				     environ), 0);
	for (int i = 0; i < timeout_s * 10; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			*seconds = now_s() - t0;
			return status;
		}
		usleep(100000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

struct pinned {
	unsigned char *mem;
	size_t len;
};

/* Pin @len bytes in idle PIN_REGION registrations, one VMA each. */
static struct pinned pin_idle(size_t len)
{
	struct pinned pin = { .len = len / PIN_REGION * PIN_REGION };
	struct mrc_stats s;

	pin.mem = map_anon(NULL, pin.len, 0);
	memset(pin.mem, 0x77, pin.len);

	for (size_t off = 0; off < pin.len; off += PIN_REGION)
		put_ok(get_ok(pin.mem + off, PIN_REGION));
	/*
	 * Pinning this much in a small guest can itself bring the shrinker's
	 * request, and with the progress thread the cache then releases some
	 * of what it just pinned: count those too.
	 */
	s = stats();
	ck_assert_uint_eq(s.bytes_pinned + s.evictions * PIN_REGION, pin.len);
	return pin;
}

static int pressure_allowed(void)
{
	if (getenv("MRCACHE_IN_VM") || getenv("MRCACHE_PRESSURE_OK"))
		return 1;
	cannot_run_here("pressure: puts the machine under memory pressure; runs in the VM or with MRCACHE_PRESSURE_OK=1");
	return 0;
}

/* What became of the hog, for the log line. */
static const char *hog_outcome(int status)
{
	if (status < 0)
		return "still running (killed)";
	if (WIFEXITED(status))
		return WEXITSTATUS(status) ? "failed" : "succeeded";
	return WTERMSIG(status) == SIGKILL ? "killed (OOM)" : "killed by a signal";
}

static const char *monitor_label(uint32_t monitor)
{
	return monitor == MRC_MONITOR_KMOD ? "kmod + progress thread" : "manual";
}

/* The rest of a pressure case's log line: what the hog and the cache did. */
static void log_hog(int status, double secs, long scans, long events,
		    const struct mrc_stats *s)
{
	fprintf(stderr, "%s after %.1f s; %ld shrinker scans, %ld PRESSURE requests, %llu evictions, %llu MiB still pinned\n",
		hog_outcome(status), secs, module_stat("shrinker_scans") - scans,
		module_stat("pressure_events") - events,
		(unsigned long long)s->evictions,
		(unsigned long long)(s->bytes_pinned >> 20));
}

/*
 * With a cache that can unpin, the hog succeeds and something was evicted;
 * with one that cannot, it does not and nothing was. Unmaps the pinned
 * memory.
 */
static void assert_hog_outcome(int status, const struct mrc_stats *s,
			       const struct pinned *pin, int expect_hog_ok)
{
	int ok = status >= 0 && WIFEXITED(status) &&
		 WEXITSTATUS(status) == HOG_EXIT_OK;

	ck_assert_msg(status >= 0, "the hog neither finished nor died in %d s", HOG_TIMEOUT_S);
	if (expect_hog_ok) {
		ck_assert_msg(ok, "the hog failed (status %#x) although the cache could unpin",
			      status);
		ck_assert_uint_gt(s->evictions, 0);
	} else {
		ck_assert_msg(!ok, "the hog succeeded although %zu MiB stayed pinned",
			      pin->len >> 20);
		ck_assert_uint_eq(s->evictions, 0);
	}
	munmap(pin->mem, pin->len);
}

static void pressure_case(uint32_t monitor, int expect_hog_ok)
{
	long avail, scans, events, hog_mib;
	struct pinned pin;
	struct mrc_stats s;
	double secs = 0;
	int status;

	if (!pressure_allowed())
		return;
	ck_assert_msg(meminfo_kib("SwapTotal") > 0, "pressure: needs swap (the VM: --zram)");
	set_oom_score_adj("-1000");
	make_cache_merge(monitor, monitor == MRC_MONITOR_KMOD, MRC_MERGE_NONE);
	avail = meminfo_kib("MemAvailable");
	pin = pin_idle((size_t)avail / 2 << 10);
	hog_mib = avail * 3 / 4 >> 10;
	scans = module_stat("shrinker_scans");
	events = module_stat("pressure_events");
	status = run_hog(hog_mib, HOG_TIMEOUT_S, &secs);
	s = stats();
	fprintf(stderr, "pressure: %s: MemAvailable %ld MiB, %zu MiB pinned idle in %zu regions, hog of %ld MiB: ",
		monitor_label(monitor), avail >> 10, pin.len >> 20,
		pin.len / PIN_REGION, hog_mib);
	log_hog(status, secs, scans, events, &s);
	assert_hog_outcome(status, &s, &pin, expect_hog_ok);
}

START_TEST(pressure_kmod_releases_idle_pins)
{
	pressure_case(MRC_MONITOR_KMOD, 1);
}
END_TEST

START_TEST(pressure_manual_keeps_pins)
{
	pressure_case(MRC_MONITOR_MANUAL, 0);
}
END_TEST

/* ------------------------------------------------------------------------
 * 3. Memory pressure inside memory cgroups (issue 11). The cache pins 64 MiB
 * in idle registrations from inside cgroup A; a hog mlocks 96 MiB.
 *  - Hog in A too, memory.max of A 128 MiB (below the 160 MiB both need):
 *    with the kernel monitor and its progress thread the reclaim at A's
 *    limit reaches the cache's file, the cache unpins idle regions (swapped
 *    to zram) and the hog succeeds; with the manual monitor it is OOM-killed.
 *  - Hog in a sibling B with memory.max 64 MiB: the hog is OOM-killed in B
 *    and the cache in A is never asked to release anything.
 * The global machine has memory to spare, so only a cgroup's limit acts.
 */
#define CG_ROOT "/sys/fs/cgroup"
#define CG_CACHE CG_ROOT "/mrcv_cache"
#define CG_SIBLING CG_ROOT "/mrcv_sibling"
#define CG_PIN_MIB 64
#define CG_HOG_MIB 96

static int cg_write(const char *dir, const char *file, const char *val)
{
	char path[256];
	int fd, ok;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ok = write(fd, val, strlen(val)) == (ssize_t)strlen(val);
	close(fd);
	return ok ? 0 : -1;
}

/* Mount cgroup2 if needed and make @dir with @max; 0, or -1 to skip. */
static int cg_make(const char *dir, const char *max)
{
	if (access(CG_ROOT "/cgroup.controllers", R_OK) &&
	    mount("none", CG_ROOT, "cgroup2", 0, NULL))
		return -1;
	if (cg_write(CG_ROOT, "cgroup.subtree_control", "+memory"))
		return -1;
	rmdir(dir);
	ck_assert_msg(!mkdir(dir, 0755), "mkdir %s: %s", dir, strerror(errno));
	ck_assert_msg(!cg_write(dir, "memory.max", max), "%s memory.max", dir);
	return 0;
}

static void pressure_memcg_case(uint32_t monitor, const char *hog_cg,
				int expect_hog_ok)
{
	long scans, events;
	struct pinned pin;
	struct mrc_stats s;
	double secs = 0;
	int status;

	if (!pressure_allowed())
		return;
	ck_assert_msg(meminfo_kib("SwapTotal") > 0, "pressure: needs swap (the VM: --zram)");
	if (cg_make(CG_CACHE, hog_cg ? "max" : "128M") ||
	    (hog_cg && cg_make(hog_cg, "64M"))) {
		fprintf(stderr, "pressure memcg: SKIPPED: no cgroup v2 memory controller\n");
		return;
	}
	set_oom_score_adj("-1000");
	/* The cache's file belongs to the cgroup it is set up in. */
	ck_assert(!cg_write(CG_CACHE, "cgroup.procs", "0"));
	make_cache_merge(monitor, monitor == MRC_MONITOR_KMOD, MRC_MERGE_NONE);
	pin = pin_idle((size_t)CG_PIN_MIB << 20);
	scans = module_stat("shrinker_scans");
	events = module_stat("pressure_events");
	if (hog_cg)
		setenv("MRCACHE_HOG_CGROUP", hog_cg, 1);
	status = run_hog(CG_HOG_MIB, HOG_TIMEOUT_S, &secs);
	unsetenv("MRCACHE_HOG_CGROUP");
	s = stats();
	fprintf(stderr, "pressure memcg: %s, hog in %s: %zu MiB pinned idle, hog of %d MiB: ",
		monitor_label(monitor),
		hog_cg ? "the sibling cgroup" : "the cache's cgroup",
		pin.len >> 20, CG_HOG_MIB);
	log_hog(status, secs, scans, events, &s);
	assert_hog_outcome(status, &s, &pin, expect_hog_ok);
}

START_TEST(pressure_memcg_kmod_releases_idle_pins)
{
	pressure_memcg_case(MRC_MONITOR_KMOD, NULL, 1);
}
END_TEST

START_TEST(pressure_memcg_manual_keeps_pins)
{
	pressure_memcg_case(MRC_MONITOR_MANUAL, NULL, 0);
}
END_TEST

START_TEST(pressure_memcg_sibling_not_asked)
{
	pressure_memcg_case(MRC_MONITOR_KMOD, CG_SIBLING, 0);
}
END_TEST

/* ------------------------------------------------------------------------
 * 4. fork and exit
 */

/* In a forked child every call but destroy fails with -EPERM. */
static int child_after_fork(const void *addr, size_t len)
{
	struct mrc_region *r = NULL;
	int ret = mrc_get(cache, addr, len, 0, &r);

	if (ret != -EPERM) {
		fprintf(stderr, "fork: child: mrc_get = %d, expected -EPERM\n", ret);
		return 1;
	}
	fprintf(stderr, "fork: child: mrc_get = -EPERM: %s\n", mrc_last_error());
	ret = mrc_cache_destroy(cache);
	if (ret) {
		fprintf(stderr, "fork: child: mrc_cache_destroy = %d\n", ret);
		return 1;
	}
	return 0;
}

static void wait_child_ok(pid_t pid, const char *what)
{
	int status;

	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "%s: child failed (status %#x, see stderr)", what, status);
}

START_TEST(fork_child_eperm_parent_keeps_region)
{
	size_t len = NPAGES * page;
	unsigned char *p = map_anon(NULL, len, 0);
	struct mrc_region *r, *again;
	struct mrc_stats before;
	pid_t pid;

	memset(p, 0x11, len);
	r = get_ok(p, len);
	put_ok(r);
	before = stats();
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(child_after_fork(p, len));
	wait_child_ok(pid, "fork");
	/* The parent's registration survived the fork and its child. */
	again = get_ok(p, len);
	ck_assert_ptr_eq(again, r);
	ck_assert_uint_eq(stats().reg_calls, before.reg_calls);
	ck_assert_uint_eq(stats().invalidations, 0);
	write_through(again, p, len, 3);
	ck_assert(!memcmp(p, src, len));
	fprintf(stderr, "fork: parent: same region after fork, no invalidation, WRITE landed\n");
	put_ok(again);
	munmap(p, len);
}
END_TEST

enum { EXIT_REGIONS = 16 };

/* A process that caches registrations and exits without destroying. */
static int exiting_child(void)
{
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MONITOR | MRC_ATTR_PROGRESS_THREAD,
		.monitor = MRC_MONITOR_KMOD,
		.progress_thread = 1,
	};
	struct rdma_pair own;
	struct mrc_cache *c;
	unsigned char *p;
	int ret;

	if (rdma_pair_open(&own))
		return 2;
	if (mrc_cache_create_verbs(own.pd, ACCESS, &attr, &c))
		return 3;
	p = mmap(NULL, 2 * EXIT_REGIONS * page, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 4;
	for (int i = 0; i < EXIT_REGIONS; i++) {
		struct mrc_region *r;

		ret = mrc_get(c, p + 2 * i * page, page, 0, &r);
		if (ret || mrc_put(c, r))
			return 5;
	}
	return 0;	/* exit with the cache, its watches and its MRs */
}

START_TEST(exit_with_watches_leaves_module_clean)
{
	long files = module_stat("files"), watches = module_stat("watches");
	long pages = module_stat("watched_pages"), ring = module_stat("ring_bytes");
	long released = module_stat("release_events");
	pid_t pid;

	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(exiting_child());
	wait_child_ok(pid, "exit");
	ck_assert_int_eq(module_stat("files"), files);
	ck_assert_int_eq(module_stat("watches"), watches);
	ck_assert_int_eq(module_stat("watched_pages"), pages);
	ck_assert_int_eq(module_stat("ring_bytes"), ring);
	fprintf(stderr, "exit: %d watches at exit, module back to %ld file(s) / %ld watch(es); release_events +%ld\n",
		EXIT_REGIONS, files, watches, module_stat("release_events") - released);
}
END_TEST

/* ------------------------------------------------------------------------
 * Suite
 */

static int probe(void)
{
	struct rdma_pair probe;
	int ret;

	if (access(MRC_DEVICE_PATH, R_OK | W_OK)) {
		printf("monitor_verbs_test: SKIP: %s unavailable (%s)\n",
		       MRC_DEVICE_PATH, strerror(errno));
		return 77;
	}
	ret = rdma_pair_open(&probe);
	if (ret == -ENODEV) {
		printf("monitor_verbs_test: SKIP: %s\n", rdma_pair_error(&probe));
		return 77;
	}
	if (ret) {
		printf("monitor_verbs_test: FAIL: %s\n", rdma_pair_error(&probe));
		return 1;
	}
	printf("monitor_verbs_test: device %s, %d NUMA node(s)\n", probe.device,
	       numa_available() < 0 ? 1 : numa_max_node() + 1);
	rdma_pair_close(&probe);
	return 0;
}

/* The migration tests need two nodes; in the VM (--numa) they must run. */
static int has_two_nodes(void)
{
	if (numa_available() >= 0 && numa_max_node() >= 1)
		return 1;
	printf("monitor_verbs_test: one NUMA node: migration tests SKIPPED%s\n",
	       test_must_run() ? " (in the VM or with MRCACHE_REQUIRE_VM=1: FAIL)" : "");
	if (test_must_run())
		exit(1);
	return 0;
}

/* ------------------------------------------------------------------------
 * 5. Everything at once: worker threads get a buffer, RDMA WRITE into it
 * through the cached rkey and out of it through the cached lkey, check both,
 * and put it, while another thread, in a seeded random order, replaces the
 * buffers' pages (munmap and mmap, mremap away and back), drops them
 * (MADV_DONTNEED) and migrates them to the other NUMA node. A
 * mutex per buffer stands for the application's own synchronization (a
 * buffer is not changed while a transfer uses it); the QP is shared, so
 * its WRITEs are serialized. Every transfer must move the bytes the
 * application sees.
 */
#define RACE_WORKERS 3
#define RACE_BUFS 12
#define RACE_PAGES 2

struct verbs_race {
	unsigned char *buf[RACE_BUFS];
	pthread_mutex_t lock[RACE_BUFS];
	pthread_mutex_t qp_lock;
	atomic_int stop;
	atomic_long transfers, changes, migrations;
	atomic_long holes_taken;	/* see race_remap() */
	atomic_long missed, stale_sent;	/* checked in the main thread */
	unsigned int seed;
};

static void race_write(struct verbs_race *vr, const void *laddr,
		       uint32_t lkey, void *raddr, uint32_t rkey)
{
	int ret;

	pthread_mutex_lock(&vr->qp_lock);
	ret = rdma_pair_write(&pair, laddr, RACE_PAGES * page, lkey,
			      (uintptr_t)raddr, rkey);
	pthread_mutex_unlock(&vr->qp_lock);
	ck_assert_msg(ret == 0, "RDMA WRITE: %s", rdma_pair_error(&pair));
}

/* Both directions through @r, which caches buffer @i. */
static void race_transfer(struct verbs_race *vr, int w, int i,
			  struct mrc_region *r, unsigned int seed)
{
	unsigned char *in = src + (size_t)w * RACE_PAGES * page;
	unsigned char *out = dst + (size_t)w * RACE_PAGES * page;
	size_t len = RACE_PAGES * page;

	fill_pattern(in, len, seed);
	race_write(vr, in, src_mr->lkey, vr->buf[i], mrc_region_rkey(r));
	if (memcmp(vr->buf[i], in, len))
		atomic_fetch_add(&vr->missed, 1);
	fill_pattern(vr->buf[i], len, seed + 1);
	memset(out, 0, len);
	race_write(vr, vr->buf[i], mrc_region_lkey(r), out, dst_mr->rkey);
	if (memcmp(out, vr->buf[i], len))
		atomic_fetch_add(&vr->stale_sent, 1);
}

struct race_worker {
	struct verbs_race *vr;
	int index;
};

static void *race_worker_main(void *arg)
{
	struct race_worker *rw = arg;
	struct verbs_race *vr = rw->vr;
	unsigned int seed = vr->seed + 1000u * (unsigned int)rw->index + 1;

	while (!atomic_load(&vr->stop)) {
		int i = (int)(rand_r(&seed) % RACE_BUFS);
		struct mrc_region *r;

		pthread_mutex_lock(&vr->lock[i]);
		r = get_ok(vr->buf[i], RACE_PAGES * page);
		race_transfer(vr, rw->index, i, r, seed);
		put_ok(r);
		pthread_mutex_unlock(&vr->lock[i]);
		atomic_fetch_add(&vr->transfers, 1);
	}
	return NULL;
}

/*
 * New pages for buffer @i after its old ones left @p: at @p again if the
 * hole is still free, else wherever the kernel puts them. Never MAP_FIXED:
 * between the munmap (or mremap) and this mmap, any other thread's mmap may
 * have taken the hole (the kernel hands out the highest free gap first),
 * for example a sanitizer's per-thread block for dynamic TLS, and
 * MAP_FIXED would silently replace it and the memset below scribble over
 * it (the thread then crashed at exit in DTLS_Destroy under ASan).
 */
static void race_remap(struct verbs_race *vr, int i, unsigned char *p, size_t len)
{
	unsigned char *q = mmap(p, len, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
				-1, 0);

	if (q == MAP_FAILED) {
		ck_assert_int_eq(errno, EEXIST);
		atomic_fetch_add(&vr->holes_taken, 1);
		q = map_anon(NULL, len, 0);
	} else if (q != p) {		/* a kernel without NOREPLACE */
		munmap(q, len);
		atomic_fetch_add(&vr->holes_taken, 1);
		q = map_anon(NULL, len, 0);
	}
	vr->buf[i] = q;
}

/* Replace, move away and back, drop, or migrate the pages of buffer @i. */
static void race_change(struct verbs_race *vr, int i, unsigned int how)
{
	unsigned char *p = vr->buf[i], *away;
	size_t len = RACE_PAGES * page;
	void *pages[RACE_PAGES];
	int nodes[RACE_PAGES], status[RACE_PAGES];

	switch (how % 4) {
	case 0:
		ck_assert_int_eq(munmap(p, len), 0);
		race_remap(vr, i, p, len);
		break;
	case 1:
		away = map_anon(NULL, len, 0);
		ck_assert_ptr_eq(mremap(p, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, away), away);
		race_remap(vr, i, p, len);
		ck_assert_int_eq(munmap(away, len), 0);
		break;
	case 2:
		ck_assert_int_eq(madvise(p, len, MADV_DONTNEED), 0);
		break;
	default:
		if (!has_two_nodes())
			return;
		for (int k = 0; k < RACE_PAGES; k++) {
			pages[k] = p + (size_t)k * page;
			nodes[k] = (int)(how / 4 % 2);
		}
		/* Pinned pages may refuse to move: the event is what counts. */
		(void)move_pages(0, RACE_PAGES, pages, nodes, status, MPOL_MF_MOVE);
		atomic_fetch_add(&vr->migrations, 1);
		return;
	}
	memset(vr->buf[i], 0x99, len);
}

static void *race_changer_main(void *arg)
{
	struct verbs_race *vr = arg;
	unsigned int seed = vr->seed;

	while (!atomic_load(&vr->stop)) {
		int i = (int)(rand_r(&seed) % RACE_BUFS);

		pthread_mutex_lock(&vr->lock[i]);
		race_change(vr, i, rand_r(&seed));
		pthread_mutex_unlock(&vr->lock[i]);
		atomic_fetch_add(&vr->changes, 1);
	}
	return NULL;
}

/* MRCACHE_RACE_SECONDS: default 0, CI's setting; minutes for a soak run. */
static int race_seconds(void)
{
	const char *env = getenv("MRCACHE_RACE_SECONDS");

	return env ? atoi(env) : 0;
}

/* Until enough happened (TCG speed varies), and for race_seconds(). */
static void race_until_enough(struct verbs_race *vr)
{
	double until = now_s() + race_seconds();
	struct timespec tenth = { 0, 100000000 };

	while (atomic_load(&vr->transfers) < 400 ||
	       atomic_load(&vr->changes) < 100 || now_s() < until)
		nanosleep(&tenth, NULL);
}

/* MRCACHE_TEST_SEED, or the time; printed so a failure can be replayed. */
static unsigned int race_seed(void)
{
	const char *env = getenv("MRCACHE_TEST_SEED");
	unsigned int seed = env ? (unsigned int)strtoul(env, NULL, 0) :
			    (unsigned int)time(NULL);

	fprintf(stderr, "threads: seed %u (MRCACHE_TEST_SEED=%u replays it)\n",
		seed, seed);
	return seed;
}

/*
 * The monitors that must keep every transfer right (migration: kmod),
 * in every build: plain, ASan and TSan.
 */
static const uint32_t watching[] = { MRC_MONITOR_KMOD, MRC_MONITOR_HOOKS,
				     MRC_MONITOR_UFFD };
#define NWATCHING ((int)(sizeof(watching) / sizeof(watching[0])))

START_TEST(threads_transfer_while_buffers_change)
{
	struct verbs_race vr = {
		.qp_lock = PTHREAD_MUTEX_INITIALIZER, .seed = race_seed(),
	};
	struct race_worker rw[RACE_WORKERS];
	pthread_t workers[RACE_WORKERS], changer;
	struct mrc_stats s;

	make_cache(watching[_i], 0);

	ck_assert_uint_le(RACE_WORKERS * RACE_PAGES, SRC_PAGES);
	for (int i = 0; i < RACE_BUFS; i++) {
		vr.buf[i] = map_anon(NULL, RACE_PAGES * page, 0);
		pthread_mutex_init(&vr.lock[i], NULL);
	}
	for (int w = 0; w < RACE_WORKERS; w++) {
		rw[w] = (struct race_worker){ &vr, w };
		ck_assert_int_eq(pthread_create(&workers[w], NULL, race_worker_main, &rw[w]), 0);
	}
	ck_assert_int_eq(pthread_create(&changer, NULL, race_changer_main, &vr), 0);
	race_until_enough(&vr);
	atomic_store(&vr.stop, 1);
	for (int w = 0; w < RACE_WORKERS; w++)
		pthread_join(workers[w], NULL);
	pthread_join(changer, NULL);
	s = stats();
	fprintf(stderr, "threads: %s: %ld transfers (both directions, all checked), %ld changes (%ld migrations; %ld holes taken by another mapping meanwhile), %llu invalidations, %llu hits\n",
		s.monitor, atomic_load(&vr.transfers), atomic_load(&vr.changes),
		atomic_load(&vr.migrations), atomic_load(&vr.holes_taken),
		(unsigned long long)s.invalidations, (unsigned long long)s.hits);
	ck_assert_msg(!atomic_load(&vr.missed),
		      "%ld WRITEs through a cached rkey missed the application's pages",
		      atomic_load(&vr.missed));
	ck_assert_msg(!atomic_load(&vr.stale_sent),
		      "%ld WRITEs from a cached lkey sent other bytes than the application's",
		      atomic_load(&vr.stale_sent));
	ck_assert_uint_gt(s.invalidations, 0);
	ck_assert_uint_gt(s.hits, 0);
	for (int i = 0; i < RACE_BUFS; i++)
		munmap(vr.buf[i], RACE_PAGES * page);
}
END_TEST

static Suite *monitor_verbs_suite(void)
{
	Suite *s = suite_create("monitor_verbs");
	TCase *changes = tcase_create("changes");
	TCase *process = tcase_create("process");
	TCase *pressure = tcase_create("pressure");
	TCase *threads = tcase_create("threads");

	choose_scenarios();
	tcase_add_checked_fixture(changes, setup, teardown);
	tcase_set_timeout(changes, 60);
	tcase_add_loop_test(changes, change_with_kmod_monitor, 0, nrunnable);
	tcase_add_loop_test(changes, change_with_hooks_monitor, 0, nrunnable);
	tcase_add_loop_test(changes, change_with_uffd_monitor, 0, nrunnable);
	tcase_add_loop_test(changes, change_with_manual_monitor, 0, nrunnable);
	if (has_two_nodes()) {
		tcase_add_test(changes, move_pages_kmod);
		tcase_add_test(changes, mbind_kmod);
		tcase_add_test(changes, move_pages_kmod_progress_thread);
		tcase_add_test(changes, mbind_kmod_progress_thread);
		tcase_add_test(changes, move_pages_manual);
		tcase_add_test(changes, mbind_manual);
	}
	tcase_add_test(changes, ring_overflow_drops_every_region);
	tcase_add_test(changes, pressure_in_full_ring_keeps_busy_regions);
	tcase_add_checked_fixture(pressure, setup, teardown);
	tcase_set_timeout(pressure, 2 * HOG_TIMEOUT_S);
	/* Sanitized builds leave these out (test/monitor_verbs.sh). */
	tcase_set_tags(pressure, "pressure");
	tcase_add_test(pressure, pressure_kmod_releases_idle_pins);
	tcase_add_test(pressure, pressure_manual_keeps_pins);
	tcase_add_test(pressure, pressure_memcg_kmod_releases_idle_pins);
	tcase_add_test(pressure, pressure_memcg_manual_keeps_pins);
	tcase_add_test(pressure, pressure_memcg_sibling_not_asked);
	suite_add_tcase(s, pressure);
	tcase_add_checked_fixture(threads, setup, teardown);
	tcase_set_timeout(threads, 60 + race_seconds());
	tcase_add_loop_test(threads, threads_transfer_while_buffers_change,
			    0, NWATCHING);
	suite_add_tcase(s, threads);
	tcase_add_checked_fixture(process, setup, teardown);
	tcase_set_timeout(process, 60);
	suite_add_tcase(s, changes);
	tcase_add_test(process, fork_child_eperm_parent_keeps_region);
	tcase_add_test(process, exit_with_watches_leaves_module_clean);
	suite_add_tcase(s, process);
	return s;
}

int main(int argc, char **argv)
{
	SRunner *sr;
	int failed, ret;

	if (argc == 3 && !strcmp(argv[1], "--hog"))
		return hog_main(argv[2]);
	ret = probe();
	if (ret)
		return ret;
	sr = srunner_create(monitor_verbs_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
