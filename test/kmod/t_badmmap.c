// SPDX-License-Identifier: GPL-2.0
/*
 * Bad mappings of the ring, and what user space can do to a good one.
 *
 * mmap: before setup EBADFD; private, offset != 0 (aligned or not), too
 * long, too short EINVAL; executable EPERM; MAP_SYNC EOPNOTSUPP; PROT_WRITE
 * on an O_RDONLY descriptor EACCES, and any MAP_SHARED of one EINVAL (the
 * mapping is not VM_SHARED).  A read-only or a second mapping is fine.
 *
 * A good mapping: mremap to grow it (also from old_len 0) is EFAULT
 * (VM_DONTEXPAND), MREMAP_DONTUNMAP EINVAL, mprotect(PROT_EXEC) EACCES
 * (VM_MAYEXEC cleared).  Moving it, shrinking it, making it read-only,
 * MADV_DONTNEED on it (then SIGBUS on access), MAP_FIXED over it and
 * mapping it with MAP_FIXED over a watched range of its own file are all
 * allowed and harmless: the kernel writes through its own mapping of the
 * pages, so each of them only changes what this process sees.  After each one the file still
 * posts the next event where a fresh mapping finds it.
 */
#include "mrc_test.h"
#include <setjmp.h>

static void no_map(int fd, size_t len, int prot, int flags, off_t off,
		   int err, const char *what)
{
	void *m = mmap(NULL, len, prot, flags, fd, off);

	CHECK(m == MAP_FAILED, "%s: mapped", what);
	CHECK(errno == err, "%s: %s, wanted %s", what, strerror(errno),
	      strerror(err));
}

/* Free address space of @len bytes (mapped PROT_NONE, to be replaced). */
static char *t_hole(size_t len)
{
	char *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		       0);

	CHECK(p != MAP_FAILED, "mmap hole: %s", strerror(errno));
	return p;
}

static uint32_t hdr32(const void *map, uint32_t off)
{
	return __atomic_load_n((const uint32_t *)((const char *)map + off),
			       __ATOMIC_ACQUIRE);
}

/*
 * The file still works: a new watch, unmapped, posts one UNMAP event
 * that a fresh mapping finds at the producer index, and @old (a mapping
 * still in place, or NULL) sees it too.
 */
static void still_works(struct mrct *t, const void *old, const char *what)
{
	long pg = t_page();
	struct mrct fresh = *t;
	char *p = t_anon_guarded(pg);
	uint64_t gen;
	uint32_t id, prod;

	mrct_map(&fresh);
	prod = hdr32(fresh.map, fresh.api.off.producer);
	CHECK(!mrct_watch(t, p, pg, 0xbeef, &id, &gen), "%s: watch", what);
	CHECK(!munmap(p, pg), "munmap");
	CHECK(hdr32(fresh.map, fresh.api.off.producer) == prod + 1,
	      "%s: producer %u, wanted %u", what,
	      hdr32(fresh.map, fresh.api.off.producer), prod + 1);
	*fresh.consumer = prod;
	mrct_expect(&fresh, id, 0xbeef, MRC_REASON_UNMAP, p, p + pg);
	CHECK(mrct_gen(&fresh, id) > gen, "%s: generation did not move", what);
	if (old)
		CHECK(hdr32(old, t->api.off.producer) == prod + 1,
		      "%s: the old mapping does not see the event", what);
	CHECK(!mrct_unwatch(t, id), "%s: unwatch", what);
	munmap(fresh.map, fresh.api.mmap_length);
}

static void bad_mmaps(struct mrct *t)
{
	size_t len = t->api.mmap_length;
	long pg = t_page();
	int fd = t_open_dev(), rw = PROT_READ | PROT_WRITE;

	no_map(fd, 4 * pg, rw, MAP_SHARED, 0, EBADFD, "before setup");
	close(fd);
	no_map(t->fd, len, rw, MAP_PRIVATE, 0, EINVAL, "private");
	no_map(t->fd, len, PROT_READ, MAP_PRIVATE, 0, EINVAL,
	       "private read-only");
	no_map(t->fd, len, rw | PROT_EXEC, MAP_SHARED, 0, EPERM, "executable");
	no_map(t->fd, len, PROT_READ | PROT_EXEC, MAP_SHARED, 0, EPERM,
	       "read+exec");
	no_map(t->fd, len + pg, rw, MAP_SHARED, 0, EINVAL, "one page long");
	no_map(t->fd, 2 * len, rw, MAP_SHARED, 0, EINVAL, "twice as long");
	no_map(t->fd, len - pg, rw, MAP_SHARED, 0, EINVAL, "one page short");
	no_map(t->fd, pg, rw, MAP_SHARED, 0, EINVAL, "one page");
	no_map(t->fd, 0, rw, MAP_SHARED, 0, EINVAL, "empty");
	no_map(t->fd, len, rw, MAP_SHARED, pg, EINVAL, "offset one page");
	no_map(t->fd, len - pg, rw, MAP_SHARED, pg, EINVAL,
	       "the tail at its own offset");
	no_map(t->fd, len, rw, MAP_SHARED, (off_t)1 << 40, EINVAL,
	       "offset 2^40");
	no_map(t->fd, len, rw, MAP_SHARED, 1, EINVAL, "unaligned offset");
	no_map(t->fd, len, rw, MAP_SHARED_VALIDATE | MAP_SYNC, 0, EOPNOTSUPP,
	       "MAP_SYNC");
}

/*
 * A descriptor opened O_RDONLY cannot map the ring at all: PROT_WRITE is
 * EACCES (generic), and a read-only MAP_SHARED of such a file is not
 * VM_SHARED (the kernel drops it when the file is not writable), so the
 * module refuses it like a private mapping.
 */
static void rdonly_fd(void)
{
	struct mrc_api a;
	int fd = open(MRC_DEVICE_PATH, O_RDONLY | O_CLOEXEC);

	CHECK(fd >= 0, "open O_RDONLY: %s", strerror(errno));
	t_api_init(&a, 8, 8, 0);
	CHECK(!t_ioctl(fd, MRC_IOC_API, &a), "setup on an O_RDONLY fd");
	no_map(fd, a.mmap_length, PROT_READ | PROT_WRITE, MAP_SHARED, 0,
	       EACCES, "writable from an O_RDONLY fd");
	no_map(fd, a.mmap_length, PROT_READ, MAP_SHARED, 0, EINVAL,
	       "read-only from an O_RDONLY fd");
	close(fd);
}

/* mremap and mprotect that must be refused; the mapping stays usable. */
static void refused(struct mrct *t)
{
	size_t len = t->api.mmap_length;
	long pg = t_page();
	char *hole = t_hole(2 * len);
	void *m;

	m = mremap(t->map, len, len + pg, 0);
	CHECK(m == MAP_FAILED && errno == EFAULT, "grow in place: %s",
	      m == MAP_FAILED ? strerror(errno) : "succeeded");
	m = mremap(t->map, len, 2 * len, MREMAP_MAYMOVE | MREMAP_FIXED, hole);
	CHECK(m == MAP_FAILED && errno == EFAULT, "grow and move: %s",
	      m == MAP_FAILED ? strerror(errno) : "succeeded");
	m = mremap(t->map, 0, len, MREMAP_MAYMOVE);
	CHECK(m == MAP_FAILED && errno == EFAULT, "duplicate (old_len 0): %s",
	      m == MAP_FAILED ? strerror(errno) : "succeeded");
	m = mremap(t->map, len, len, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
	CHECK(m == MAP_FAILED && errno == EINVAL, "MREMAP_DONTUNMAP: %s",
	      m == MAP_FAILED ? strerror(errno) : "succeeded");
	CHECK(mprotect(t->map, len, PROT_READ | PROT_EXEC) == -1 &&
	      errno == EACCES, "mprotect(EXEC): %s", strerror(errno));
	CHECK(mprotect(t->map, pg, PROT_EXEC) == -1 && errno == EACCES,
	      "mprotect(EXEC) of the header page: %s", strerror(errno));
	munmap(hole, 2 * len);
	still_works(t, t->map, "after the refused calls");
}

static sigjmp_buf touch_env;

static void touch_handler(int sig)
{
	siglongjmp(touch_env, sig);
}

/*
 * Reading @p raises @sig.  In this process: a forked child would not
 * have the ring mapped at all (VM_DONTCOPY).
 */
static void touch_dies(const void *p, int sig, const char *what)
{
	struct sigaction sa = { .sa_handler = touch_handler }, old;
	int got;

	CHECK(!sigaction(sig, &sa, &old), "sigaction");
	got = sigsetjmp(touch_env, 1);
	if (!got) {
		(void)*(volatile const char *)p;
		CHECK(0, "%s: read it without a signal", what);
	}
	CHECK(got == sig, "%s: signal %d, wanted %d", what, got, sig);
	sigaction(sig, &old, NULL);
}

/* Moves, shrinks and replacements: allowed, and only user space sees them. */
static void harmless(struct mrct *t)
{
	size_t len = t->api.mmap_length;
	long pg = t_page();
	char *hole = t_hole(len), *m, *p;
	unsigned char vec;
	struct mrc_query q;
	uint64_t gen;
	uint32_t id;

	/* Move: the ring lives on at the new address, nothing at the old. */
	m = mremap(t->map, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, hole);
	CHECK(m == hole, "move: %s", strerror(errno));
	CHECK(mincore(t->map, pg, &vec) == -1 && errno == ENOMEM,
	      "old address still mapped after the move");
	t->map = m;
	still_works(t, m, "moved");

	/* Shrink to the header: allowed; growing back is not. */
	CHECK(mremap(m, len, pg, 0) == m, "shrink: %s", strerror(errno));
	CHECK(mremap(m, pg, len, 0) == MAP_FAILED && errno == EFAULT,
	      "grow back after a shrink: %s", strerror(errno));
	still_works(t, m, "shrunk");
	munmap(m, pg);

	/* Read-only: the kernel still posts, user space still sees it. */
	m = mmap(NULL, len, PROT_READ, MAP_SHARED, t->fd, 0);
	CHECK(m != MAP_FAILED, "read-only mapping: %s", strerror(errno));
	still_works(t, m, "read-only");
	CHECK(!mprotect(m, len, PROT_READ | PROT_WRITE), "mprotect(RW): %s",
	      strerror(errno));
	CHECK(!mprotect(m, len, PROT_READ), "mprotect(R): %s",
	      strerror(errno));
	CHECK(!mlock(m, len) && !munlock(m, len), "mlock: %s",
	      strerror(errno));
	still_works(t, m, "made read-only");

	/*
	 * MADV_DONTNEED drops this process's view of the pages, not them:
	 * touching the zapped mapping is SIGBUS (a shared mapping without
	 * a fault handler), the file still works.
	 */
	CHECK(!madvise(m, len, MADV_DONTNEED), "MADV_DONTNEED on the ring: %s",
	      strerror(errno));
	touch_dies(m, SIGBUS, "the ring after MADV_DONTNEED");
	still_works(t, NULL, "after MADV_DONTNEED");

	/* MAP_FIXED over it: the ring is simply no longer there. */
	p = mmap(m, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	CHECK(p == m, "MAP_FIXED over the ring: %s", strerror(errno));
	CHECK(*(volatile uint32_t *)(p + t->api.off.producer) == 0,
	      "anonymous memory over the ring is not zero");
	still_works(t, NULL, "replaced with MAP_FIXED");
	munmap(p, len);

	/*
	 * The ring mapped with MAP_FIXED over a range its own file watches:
	 * the old pages go (UNMAP), then unmapping the ring invalidates
	 * again.  The callback writes into the pages being unmapped; it
	 * does so through the kernel's mapping.
	 */
	p = t_anon_guarded(len);
	CHECK(!mrct_watch(t, p, len, 0x5e1f, &id, &gen), "watch");
	m = mmap(p, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		 t->fd, 0);
	CHECK(m == p, "ring over a watched range: %s", strerror(errno));
	mrct_point(t, m);
	*t->consumer = *t->producer - 1;
	mrct_expect(t, id, 0x5e1f, MRC_REASON_UNMAP, p, p + len);
	CHECK(!munmap(p, len), "munmap the ring over the watched range");
	CHECK(!mrct_query(t, id, &q) && q.generation >= gen + 2 &&
	      q.state == MRC_STATE_INVALID && q.last_reason == MRC_REASON_UNMAP,
	      "generation %llu (from %llu), state %u",
	      (unsigned long long)q.generation, (unsigned long long)gen,
	      q.state);
	CHECK(!mrct_unwatch(t, id), "unwatch");
	still_works(t, NULL, "ring unmapped from a watched range");
}

int main(void)
{
	long files = t_stat("files"), rings = t_stat("ring_bytes");
	struct mrct t, two;

	t_name = "t_badmmap";
	mrct_open(&t, 8, 8, 0);
	bad_mmaps(&t);
	rdonly_fd();

	/* Two mappings of one ring show the same memory. */
	two = t;
	mrct_map(&two);
	*two.consumer = 12345;
	CHECK(*t.consumer == 12345, "a second mapping is not the same memory");
	*t.consumer = *t.producer;
	munmap(two.map, two.api.mmap_length);

	refused(&t);
	harmless(&t);
	close(t.fd);
	if (files >= 0)
		CHECK(t_stat("files") == files && t_stat("ring_bytes") == rings,
		      "files %ld ring_bytes %ld after close, wanted %ld %ld",
		      t_stat("files"), t_stat("ring_bytes"), files, rings);
	T_LOG("PASS");
	return T_PASS;
}
