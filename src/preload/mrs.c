// SPDX-License-Identifier: BSD-2-Clause
/*
 * The preload's struct ibv_mr copies, in arenas of their own, so that
 * ibv_dereg_mr() tells them from MRs made by libibverbs (which pass
 * through) by the address alone: a range check over the arenas, never a
 * read of the memory a foreign pointer points at.
 *
 * A copy is never given back: after ibv_dereg_mr() it stays in its arena,
 * dead, until a later registration reuses it. So a second ibv_dereg_mr()
 * of the same MR finds it dead and fails with EINVAL instead of handing
 * libibverbs a freed copy whose handle is still the cached registration's
 * (which would deregister it behind the cache's back, and free the copy
 * twice). The memory kept is the peak number of MRs the program held at
 * once (rounded up to the arenas' doubling sizes).
 *
 * No lock on the hit path. A copy's state moves LIVE -> BUSY by one
 * compare-and-swap (claim), so of two racing deregistrations exactly one
 * wins; BUSY -> LIVE (publish) and -> DEAD (recycle) are release stores.
 * Dead copies wait on a lock-free stack (Treiber's) whose head packs a
 * copy's index with a tag bumped at every change, so a head popped and
 * pushed back meanwhile (ABA) fails the swap. The stack reads a copy's
 * next index while another thread may take the copy: harmless, the copy
 * is never unmapped and the tag rejects the stale read. Only growing the
 * arenas takes a mutex.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "preload.h"

#define ARENA0 32u		/* copies in the first arena; arena k: ARENA0 << k */
#define MAX_ARENAS 24		/* ARENA0 << 24 copies is past any program */
#define NO_MR UINT32_MAX
#define TAG_ONE (UINT64_C(1) << 32)

/* Arena k holds the copies of index ARENA0 * (2^k - 1) onwards. */
static struct preload_mr *arena[MAX_ARENAS];
static unsigned int arenas;	/* published: store-release, load-acquire */
static uint32_t carved;		/* copies handed out of the newest arena */
static pthread_mutex_t grow_lock = PTHREAD_MUTEX_INITIALIZER;

/* The dead stack: tag << 32 | index of its top copy (NO_MR: empty). */
static uint64_t dead_top = NO_MR;

static size_t arena_len(unsigned int k)
{
	return (size_t)(ARENA0 << k);
}

static struct preload_mr *at(uint32_t index)
{
	uint32_t n = index / ARENA0 + 1;
	unsigned int k = 31 - (unsigned int)__builtin_clz(n);

	return &arena[k][index - ARENA0 * ((1u << k) - 1)];
}

static struct preload_mr *pop(void)
{
	/* Acquire: pairs with push()'s release, so the copy's fields are seen. */
	uint64_t top = __atomic_load_n(&dead_top, __ATOMIC_ACQUIRE), next;
	struct preload_mr *p;

	do {
		if ((uint32_t)top == NO_MR)
			return NULL;
		p = at((uint32_t)top);
		next = ((top >> 32) + 1) << 32 |
		       __atomic_load_n(&p->dead_next, __ATOMIC_RELAXED);
	} while (!__atomic_compare_exchange_n(&dead_top, &top, next, 1,
					      __ATOMIC_ACQUIRE,
					      __ATOMIC_ACQUIRE));
	return p;
}

static void push(struct preload_mr *p)
{
	uint64_t top = __atomic_load_n(&dead_top, __ATOMIC_RELAXED), next;

	do {
		__atomic_store_n(&p->dead_next, (uint32_t)top, __ATOMIC_RELAXED);
		next = ((top >> 32) + 1) << 32 | p->index;
	} while (!__atomic_compare_exchange_n(&dead_top, &top, next, 1,
					      __ATOMIC_RELEASE,
					      __ATOMIC_RELAXED));
}

/* Under grow_lock: the next never used copy, a new arena mapped if needed. */
static struct preload_mr *carve_locked(void)
{
	unsigned int k = arenas;
	struct preload_mr *p;

	if (!k || carved == arena_len(k - 1)) {
		if (k == MAX_ARENAS)
			return NULL;
		p = mmap(NULL, arena_len(k) * sizeof(*p), PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return NULL;
		arena[k] = p;
		/* Release: pairs with ours()'s acquire; the arena is seen whole. */
		__atomic_store_n(&arenas, ++k, __ATOMIC_RELEASE);
		carved = 0;
	}
	p = &arena[k - 1][carved];
	p->index = ARENA0 * ((1u << (k - 1)) - 1) + carved++;
	return p;	/* zeroed by mmap: PRELOAD_MR_DEAD */
}

/* Return: a dead copy to fill in (not yet live), or NULL. */
struct preload_mr *preload_mr_alloc(void)
{
	struct preload_mr *p = pop();

	if (p)
		return p;
	pthread_mutex_lock(&grow_lock);
	p = carve_locked();
	pthread_mutex_unlock(&grow_lock);
	return p;
}

/* The copy is filled in: hand it out (again). */
void preload_mr_publish(struct preload_mr *p)
{
	/* Release: pairs with preload_mr_claim()'s acquire. */
	__atomic_store_n(&p->state, PRELOAD_MR_LIVE, __ATOMIC_RELEASE);
}

/* Nobody holds it (again): back on the dead stack for reuse. */
void preload_mr_recycle(struct preload_mr *p)
{
	__atomic_store_n(&p->state, PRELOAD_MR_DEAD, __ATOMIC_RELAXED);
	push(p);
}

/*
 * Return: @mr's copy when @mr is in an arena (ERR_PRELOAD_MR_DEAD when it
 * points inside one but not at a copy), NULL when it is not the preload's.
 * Arenas are only ever added, so one published is there for good.
 */
static struct preload_mr *ours(const struct ibv_mr *mr)
{
	unsigned int n = __atomic_load_n(&arenas, __ATOMIC_ACQUIRE);

	for (unsigned int k = 0; k < n; k++) {
		uintptr_t off = (uintptr_t)mr - (uintptr_t)arena[k];

		if (off >= arena_len(k) * sizeof(struct preload_mr))
			continue;
		if (off % sizeof(struct preload_mr))
			return ERR_PRELOAD_MR_DEAD;
		return (struct preload_mr *)(uintptr_t)mr;
	}
	return NULL;
}

/*
 * Claim a live copy for deregistration or re-registration: it is BUSY
 * until published or recycled, so a racing second call fails cleanly.
 * Return: the copy; NULL when @mr is not the preload's (pass it
 * through); or ERR_PRELOAD_MR_DEAD when it was, and is no longer live.
 */
struct preload_mr *preload_mr_claim(const struct ibv_mr *mr)
{
	struct preload_mr *p = ours(mr);
	int live = PRELOAD_MR_LIVE;

	if (!p || p == ERR_PRELOAD_MR_DEAD)
		return p;
	/* Acquire: pairs with preload_mr_publish()'s release. */
	if (!__atomic_compare_exchange_n(&p->state, &live, PRELOAD_MR_BUSY, 0,
					 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return ERR_PRELOAD_MR_DEAD;
	return p;
}
