// SPDX-License-Identifier: BSD-2-Clause
/*
 * The hooked libc functions (see hooks.h).
 *
 * Each hook computes the range its call may change, records it
 * (mrc_record_before: the event word moves before the call), calls the
 * original through the trampoline, and lets mrc_record_after record it
 * again when a registration began meanwhile. Nothing here may allocate,
 * lock, or call a function we patch other than through its trampoline;
 * the break is read with a raw system call. errno is left as the original
 * set it.
 *
 * madvise: only advice that can make the application see other pages
 * than the ones a registration pinned is recorded: MADV_DONTNEED and
 * MADV_DONTNEED_LOCKED (anonymous pages become zero-fill), MADV_FREE (the
 * kernel may drop them at any time), MADV_REMOVE (the backing store is
 * punched). MADV_DONTFORK/DOFORK/WIPEONFORK change only what a child
 * inherits, and ibv_reg_mr itself calls MADV_DONTFORK on the range it
 * registers (ibv_fork_init): recording it would make every such
 * registration race with itself. MADV_COLD/PAGEOUT cannot move a pinned
 * page (reclaim skips it; a fault maps the same page back).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "error.h"
#include "hooks/hooks.h"
#include "hooks/patch.h"
#include "hooks/raw_syscall.h"
#include "hooks/record.h"
#include "hooks/shm_range.h"

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif

#define PAGE_MASK_4K 4095ull	/* the smallest x86-64 page: rounds out enough */

enum {
	P_MUNMAP, P_MREMAP, P_MADVISE, P_BRK, P_SBRK, P_SHMDT, P_MMAP,
	P_SYSCALL,
	P_COUNT
};

typedef int (*munmap_fn)(void *, size_t);
typedef void *(*mremap_fn)(void *, size_t, size_t, int, ...);
typedef int (*madvise_fn)(void *, size_t, int);
typedef int (*brk_fn)(void *);
typedef void *(*sbrk_fn)(intptr_t);
typedef int (*shmdt_fn)(const void *);
typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);
typedef long (*syscall_fn)(long, ...);

/* [addr, addr + len) rounded out to pages, clamped at the top. */
MRC_HOOK_PATH static void page_range(uint64_t addr, uint64_t len, uint64_t *start,
		       uint64_t *end)
{
	uint64_t e;

	*start = addr & ~PAGE_MASK_4K;
	if (__builtin_add_overflow(addr, len, &e) ||
	    __builtin_add_overflow(e, PAGE_MASK_4K, &e))
		e = UINT64_MAX;
	else
		e &= ~PAGE_MASK_4K;
	*end = e;
}

MRC_HOOK_PATH static void before(struct mrc_hook_call *c, uint64_t addr, uint64_t len)
{
	uint64_t start, end;

	page_range(addr, len, &start, &end);
	mrc_record_before(c, start, end);
}

MRC_HOOK_PATH static int destroys_pages(int advice)
{
	return advice == MADV_DONTNEED || advice == MADV_FREE ||
	       advice == MADV_REMOVE || advice == MADV_DONTNEED_LOCKED;
}

/*
 * The range brk(@addr) gives back: from @addr to the current break (read
 * without libc), or an empty range when the break grows or stays.
 */
MRC_HOOK_PATH static void brk_range(uint64_t addr, uint64_t *len)
{
	uint64_t cur = (uint64_t)mrc_raw_syscall3(SYS_brk, 0, 0, 0);

	*len = addr && addr < cur ? cur - addr : 0;
}

struct range {
	uint64_t addr;
	uint64_t len;
};

/* The ranges system call @nr with arguments @a may change: 0, 1 or 2. */
MRC_HOOK_PATH static int changed_ranges(long nr, const long a[5], struct range r[2])
{
	r[0] = (struct range){ (uint64_t)a[0], (uint64_t)a[1] };
	switch (nr) {
	case SYS_munmap:
		return 1;
	case SYS_mremap:	/* old, old_size, new_size, flags, new */
		if (!(a[3] & MREMAP_FIXED))
			return 1;
		r[1] = (struct range){ (uint64_t)a[4], (uint64_t)a[2] };
		return 2;
	case SYS_madvise:
		return destroys_pages((int)a[2]);
	case SYS_brk:
		brk_range(r[0].addr, &r[0].len);
		return r[0].len != 0;
	case SYS_shmdt:
		r[0].len = mrc_shm_detach_len(r[0].addr);
		return 1;
	case SYS_mmap:		/* MAP_FIXED replaces what was there */
		return (a[3] & MAP_FIXED) != 0;
	default:
		return 0;
	}
}

MRC_HOOK_PATH static inline int record_before(long nr, const long a[5],
				struct mrc_hook_call c[2])
{
	struct range r[2];
	int n;

	if (mrc_likely(!mrc_record_wanted()))
		return 0;
	n = changed_ranges(nr, a, r);
	for (int i = 0; i < n; i++)
		before(&c[i], r[i].addr, r[i].len);
	return n;
}

MRC_HOOK_PATH static inline void record_after(const struct mrc_hook_call c[2], int n)
{
	for (int i = 0; i < n; i++)
		mrc_record_after(&c[i]);
}

static struct mrc_patch patches[P_COUNT];

#define ORIG(i) mrc_load_acquire(&patches[i].orig)
#define ARGS(...) (const long[5]){ __VA_ARGS__ }

MRC_HOOK_PATH static int hook_munmap(void *addr, size_t len)
{
	struct mrc_hook_call c[2];
	int n = record_before(SYS_munmap, ARGS((long)addr, (long)len), c);
	int ret = ((munmap_fn)ORIG(P_MUNMAP))(addr, len);

	record_after(c, n);
	return ret;
}

MRC_HOOK_PATH static void *hook_mremap(void *old, size_t old_len, size_t new_len,
			 int flags, void *new_addr)
{
	struct mrc_hook_call c[2];
	int n = record_before(SYS_mremap, ARGS((long)old, (long)old_len,
				(long)new_len, flags, (long)new_addr), c);
	void *ret = ((mremap_fn)ORIG(P_MREMAP))(old, old_len, new_len, flags,
						 new_addr);

	record_after(c, n);
	return ret;
}

MRC_HOOK_PATH static int hook_madvise(void *addr, size_t len, int advice)
{
	struct mrc_hook_call c[2];
	int n = record_before(SYS_madvise,
			      ARGS((long)addr, (long)len, advice), c);
	int ret = ((madvise_fn)ORIG(P_MADVISE))(addr, len, advice);

	record_after(c, n);
	return ret;
}

MRC_HOOK_PATH static int hook_brk(void *addr)
{
	struct mrc_hook_call c[2];
	int n = record_before(SYS_brk, ARGS((long)addr), c);
	int ret = ((brk_fn)ORIG(P_BRK))(addr);

	record_after(c, n);
	return ret;
}

/*
 * sbrk calls brk in glibc, but another library's sbrk hook (UCX's) may
 * move the break with its own system call: sbrk is hooked too.
 */
MRC_HOOK_PATH static void *hook_sbrk(intptr_t incr)
{
	struct mrc_hook_call c[2];
	uint64_t cur;
	void *ret;
	int n = 0;

	if (incr < 0 && mrc_record_wanted()) {
		cur = (uint64_t)mrc_raw_syscall3(SYS_brk, 0, 0, 0);
		n = record_before(SYS_brk, ARGS((long)(cur + (uint64_t)incr)), c);
	}
	ret = ((sbrk_fn)ORIG(P_SBRK))(incr);

	record_after(c, n);
	return ret;
}

MRC_HOOK_PATH static int hook_shmdt(const void *addr)
{
	struct mrc_hook_call c[2];
	int n = record_before(SYS_shmdt, ARGS((long)addr), c);
	int ret = ((shmdt_fn)ORIG(P_SHMDT))(addr);

	record_after(c, n);
	return ret;
}

MRC_HOOK_PATH static void *hook_mmap(void *addr, size_t len, int prot, int flags, int fd,
		       off_t off)
{
	struct mrc_hook_call c[2];
	int n = record_before(SYS_mmap, ARGS((long)addr, (long)len, prot, flags), c);
	void *ret = ((mmap_fn)ORIG(P_MMAP))(addr, len, prot, flags, fd, off);

	record_after(c, n);
	return ret;
}

/* syscall(2): a variadic caller passes what a 7-argument callee reads. */
MRC_HOOK_PATH static long hook_syscall(long nr, long a1, long a2, long a3, long a4, long a5,
			 long a6)
{
	struct mrc_hook_call c[2];
	int n = record_before(nr, ARGS(a1, a2, a3, a4, a5), c);
	long ret = ((syscall_fn)ORIG(P_SYSCALL))(nr, a1, a2, a3, a4, a5, a6);

	record_after(c, n);
	return ret;
}

static struct mrc_patch patches[P_COUNT] = {
	[P_MUNMAP] = { .symbol = "munmap", .hook = (void *)hook_munmap },
	[P_MREMAP] = { .symbol = "mremap", .hook = (void *)hook_mremap },
	[P_MADVISE] = { .symbol = "madvise", .hook = (void *)hook_madvise },
	[P_BRK] = { .symbol = "brk", .hook = (void *)hook_brk },
	[P_SBRK] = { .symbol = "sbrk", .hook = (void *)hook_sbrk },
	[P_SHMDT] = { .symbol = "shmdt", .hook = (void *)hook_shmdt },
	[P_MMAP] = { .symbol = "mmap", .hook = (void *)hook_mmap },
	[P_SYSCALL] = { .symbol = "syscall", .hook = (void *)hook_syscall },
};

static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * Install what is missing and put back what was overwritten. Any failure
 * leaves the patches already made in place (each works on its own) and is
 * reported: a monitor must not start with part of its events unseen.
 */
int mrc_hooks_install(void)
{
	int ret = 0;

	pthread_mutex_lock(&install_lock);
	for (int i = 0; i < P_COUNT && !ret; i++) {
		ret = mrc_patch_install(&patches[i]);
		if (!ret)
			ret = mrc_patch_repair(&patches[i]);
	}
	pthread_mutex_unlock(&install_lock);
	return ret;
}

int mrc_hooks_intact(void)
{
	for (int i = 0; i < P_COUNT; i++)
		if (!patches[i].installed || !mrc_patch_intact(&patches[i]))
			return 0;
	return 1;
}
