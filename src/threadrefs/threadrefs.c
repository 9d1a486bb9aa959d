// SPDX-License-Identifier: BSD-2-Clause
/*
 * Per-thread records: claiming one, binding it to a cache, what happens to
 * its references when the thread exits or the process forks, and puts made
 * by a thread other than the one that got the region.
 *
 * Records are allocated once and never freed (a reclaimer may be scanning
 * them), linked on one list; a record whose thread exited is reused by the
 * next new thread. The per-thread state is one record whatever the number
 * of regions or caches: eight slots, a hit count, a 16-entry log and
 * eight front entries.
 */
#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cache.h"
#include "mode.h"
#include "threadrefs.h"

__thread struct mrc_tref *mrc_tref_self __attribute__((tls_model("initial-exec")));

static pthread_mutex_t records_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t records_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;
struct mrc_tref *mrc_trefs_records;
/*
 * Records whose thread may still publish in their slots: read-modify-
 * written (seq_cst) by a claim before the thread's first slot store, by
 * an exit after its last, and by the reclaimer deciding whether it needs
 * the fence (reclaim.c).
 */
uint32_t mrc_trefs_owners;
static int available;

static void tref_lock(struct mrc_tref *t)
{
	uint32_t unlocked = 0;

	while (!__atomic_compare_exchange_n(&t->lock, &unlocked, 1, 0,
					    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
		unlocked = 0;
		sched_yield();
	}
}

static void tref_unlock(struct mrc_tref *t)
{
	__atomic_store_n(&t->lock, 0, __ATOMIC_RELEASE);
}

/*
 * A record's state moves OWNED -> ORPHAN under the record's lock (its
 * thread exiting), and to or from FREE under the records lock as well;
 * claim_free() reads it holding only the records lock (it looks for FREE,
 * which cannot change under it), post_request() holding only the
 * record's: relaxed atomics, so neither read races the other lock's
 * writer.
 */
static uint32_t tref_state(const struct mrc_tref *t)
{
	return mrc_load_relaxed(&t->state);
}

static void tref_set_state(struct mrc_tref *t, enum mrc_tref_state state)
{
	mrc_store_relaxed(&t->state, state);
}

static void thread_exit(void *arg);
static int any_held(const struct mrc_tref *t);
static void before_fork(void);
static void after_fork_parent(void);
static void after_fork_child(void);

/*
 * Registered once per process; without it (old kernel, seccomp) every
 * cache keeps the compare-and-swap references.
 */
static void records_init(void)
{
	if (!mrc_trefs_membarrier_ok() ||
	    syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0))
		return;
	if (pthread_key_create(&exit_key, thread_exit))
		return;
	if (pthread_atfork(before_fork, after_fork_parent, after_fork_child))
		return;
	available = 1;
}

/* 1 when this process can use thread refs (membarrier registered). */
int mrc_trefs_available(void)
{
	pthread_once(&records_once, records_init);
	return available;
}

/*
 * Register when the library is loaded, while the process most likely runs
 * one thread: the kernel registers a process that already runs threads
 * only after an RCU grace period (sync_runqueues_membarrier_state()), and
 * that wait fell on the first mrc_cache_create(): tens of milliseconds
 * with 3 idle threads running, against microseconds with one thread (on
 * the 2-core development guest). A process that opted out at start makes
 * no membarrier call.
 */
__attribute__((constructor)) static void register_at_load(void)
{
	if (!mrc_trefs_env_off(getenv("MRCACHE_THREAD_REFS")))
		mrc_trefs_available();
}

static void reuse_emptied_orphans(void);

static struct mrc_tref *claim_free(void)
{
	reuse_emptied_orphans();
	for (struct mrc_tref *t = mrc_trefs_records; t; t = t->next)
		if (tref_state(t) == MRC_TREF_FREE) {
			tref_set_state(t, MRC_TREF_OWNED);
			return t;
		}
	return NULL;
}

static struct mrc_tref *claim_record(void)
{
	struct mrc_tref *t;

	pthread_mutex_lock(&records_lock);
	t = claim_free();
	if (!t) {
		t = aligned_alloc(_Alignof(struct mrc_tref), sizeof(*t));
		if (t) {
			memset(t, 0, sizeof(*t));
			t->state = MRC_TREF_OWNED;
			t->next = mrc_trefs_records;
			/* Pairs with the scans' acquire of the list head. */
			mrc_store_release(&mrc_trefs_records, t);
		}
	}
	pthread_mutex_unlock(&records_lock);
	if (t)
		__atomic_fetch_add(&mrc_trefs_owners, 1, __ATOMIC_SEQ_CST);
	if (t && pthread_setspecific(exit_key, t))
		t = NULL;	/* leaks one record (still counted) to an owner it never had */
	return t;
}

/* Fold this thread's hits of its cache into the cache's shared count. */
static void flush_hits(struct mrc_tref *t)
{
	struct mrc_cache *c = t->cache;

	if (!c)
		return;
	mrc_store_relaxed(&t->cache, NULL);
	mrc_fetch_add(&c->tref_hits, mrc_load_relaxed(&t->pos) - t->base);
	mrc_store_relaxed(&t->base, t->pos);
}

/**
 * mrc_trefs_bind_slow() - mrc_trefs_bind() when the thread may not hit
 * @cache through its slots yet: no record, puts left for it, or bound to
 * another cache.
 *
 * A thread counts hits for one cache at a time; switching caches folds the
 * count into the old cache (a destroyed cache's object stays, so that is
 * safe).
 */
void mrc_trefs_bind_slow(struct mrc_cache *cache)
{
	struct mrc_tref *t = mrc_tref_self;

	if (!t) {
		t = claim_record();
		if (!t)
			return;
		mrc_tref_self = t;
	}
	if (mrc_load_relaxed(&t->requests))
		mrc_trefs_serve_requests(t);
	if (t->cache != cache) {
		flush_hits(t);
		mrc_store_relaxed(&t->harvested, t->pos);
		/* Front entries name regions of the cache bound so far only. */
		for (unsigned int i = 0; i < MRC_TREF_FRONT; i++)
			t->front[i] = (struct mrc_tref_front){ MRC_TREF_NO_KEY, NULL };
		mrc_store_release(&t->cache, cache);
	}
}

/* Take the remote puts out of the record, under its lock. */
static unsigned int take_requests(struct mrc_tref *t, struct mrc_region **r,
				  struct mrc_cache **c)
{
	unsigned int n = 0;

	tref_lock(t);
	for (unsigned int k = 0; k < MRC_TREF_SLOTS; k++) {
		if (!t->request[k])
			continue;
		r[n] = t->request[k];
		c[n++] = t->request_cache[k];
		/* Cleared before the slot is released: a scan never misses both. */
		mrc_store_release(&t->request[k], NULL);
	}
	mrc_store_relaxed(&t->requests, 0);
	tref_unlock(t);
	return n;
}

/**
 * mrc_trefs_serve_requests() - do the puts other threads left for us.
 *
 * A put of a region this thread holds in a slot, made by another thread,
 * is left here instead of storing to our slot (only the owner stores to
 * its slots, so two puts can never consume the same slot). Each is now
 * made as a put of this thread's own.
 */
void mrc_trefs_serve_requests(struct mrc_tref *t)
{
	struct mrc_region *r[MRC_TREF_SLOTS];
	struct mrc_cache *c[MRC_TREF_SLOTS];
	unsigned int n;

	if (t->serving)
		return;
	t->serving = 1;
	n = take_requests(t, r, c);
	for (unsigned int i = 0; i < n; i++)
		mrc_put(c[i], r[i]);
	t->serving = 0;
}

/* Post @r to @t if @t holds it and no put for it is already waiting. */
static int post_request(struct mrc_cache *cache, struct mrc_tref *t,
			unsigned int k, struct mrc_region *r)
{
	int posted = 0, orphan = 0;

	/*
	 * A record not holding @r is left alone: no lock word written in
	 * every record the put passes (a line of each thread's), no wait on
	 * a record busy with its own puts. The same acquire load as the one
	 * under the lock below: only its owner stores @r into the slot, and
	 * without the lock, so the lock orders nothing about that store.
	 */
	if (mrc_load_acquire(&t->slot[k]) != (uintptr_t)r)
		return 0;
	tref_lock(t);
	if (mrc_load_acquire(&t->slot[k]) == (uintptr_t)r && t->request[k] != r) {
		posted = 1;
		orphan = tref_state(t) == MRC_TREF_ORPHAN;
		if (orphan) {
			/* Its thread is gone (or going, and holds this lock to
			 * touch its slots): release the slot ourselves. */
			mrc_store_release(&t->slot[k], 0);
		} else {
			t->request_cache[k] = cache;
			mrc_store_release(&t->request[k], r);
			mrc_store_release(&t->requests, t->requests + 1);
		}
	}
	tref_unlock(t);
	/*
	 * Either way the slot no longer holds @r for the scan: a dead region
	 * parked for it is ours to get deregistered, as a put through the
	 * slot would (the owner may make no call for a long time).
	 */
	if (posted && (mrc_load_relaxed(&r->state) & MRC_DEAD))
		mrc_cache_nudge(cache);
	return posted;
}

/**
 * mrc_trefs_put_remote() - put a region got through another thread's slot.
 *
 * Return: 0 when some thread held @r in a slot (the put is left to it),
 * -1 when none did (a put with no reference behind it).
 */
int mrc_trefs_put_remote(struct mrc_cache *cache, struct mrc_region *r)
{
	unsigned int k = mrc_tref_slot_of(r);

	for (struct mrc_tref *t = mrc_load_acquire(&mrc_trefs_records); t; t = t->next)
		if (t != mrc_tref_self && post_request(cache, t, k, r))
			return 0;
	return -1;
}

/*
 * A region held by an exiting thread becomes a compare-and-swap reference
 * (references are interchangeable: whoever puts it later drops that). A
 * dead one cannot take a new reference: its slot stays, the record becomes
 * an orphan, and the put that eventually comes releases it.
 */
static void keep_or_convert(struct mrc_tref *t, unsigned int k)
{
	uintptr_t v = mrc_load_relaxed(&t->slot[k]);
	struct mrc_region *r = (struct mrc_region *)v;
	uint64_t s;

	if (!mrc_tref_slot_held(v) || mrc_load_relaxed(&t->request[k]) == r)
		return;
	s = mrc_load_relaxed(&r->state);
	do {
		if (s & MRC_DEAD)
			return;
	} while (!mrc_cas(&r->state, &s, s + 1));
	/* The reference is counted before the slot lets go of it. */
	mrc_store_release(&t->slot[k], 0);
}

static int any_held(const struct mrc_tref *t)
{
	int held = 0;

	for (unsigned int k = 0; k < MRC_TREF_SLOTS; k++)
		held |= mrc_tref_slot_held(mrc_load_relaxed(&t->slot[k]));
	return held;
}

/*
 * From here on, puts for this record's slots are made by the putters
 * themselves (ORPHAN, under the record's lock); the ones posted before
 * are served first. The record is reusable once nothing is held.
 */
static void thread_exit(void *arg)
{
	struct mrc_tref *t = arg;

	tref_lock(t);
	tref_set_state(t, MRC_TREF_ORPHAN);
	tref_unlock(t);
	mrc_trefs_serve_requests(t);
	flush_hits(t);
	for (unsigned int k = 0; k < MRC_TREF_SLOTS; k++) {
		tref_lock(t);
		keep_or_convert(t, k);
		tref_unlock(t);
	}
	mrc_tref_self = NULL;
	/* After this thread's last store to a slot. */
	__atomic_fetch_sub(&mrc_trefs_owners, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&records_lock);
	tref_lock(t);
	if (!any_held(t))
		tref_set_state(t, MRC_TREF_FREE);
	tref_unlock(t);
	pthread_mutex_unlock(&records_lock);
}

/* Orphans whose last held slot was released become reusable. */
static void reuse_emptied_orphans(void)
{
	for (struct mrc_tref *t = mrc_trefs_records; t; t = t->next) {
		tref_lock(t);
		if (tref_state(t) == MRC_TREF_ORPHAN && !any_held(t))
			tref_set_state(t, MRC_TREF_FREE);
		tref_unlock(t);
	}
}

static void before_fork(void)
{
	pthread_mutex_lock(&records_lock);
	reuse_emptied_orphans();
}

static void after_fork_parent(void)
{
	pthread_mutex_unlock(&records_lock);
}

/*
 * In the child only this thread exists and every cache inherited is closed
 * (fork.c): no put of an inherited region will ever succeed, so no slot of
 * any record means anything any more. Empty them all; the child's own
 * caches start from clean records.
 */
static void after_fork_child(void)
{
	for (struct mrc_tref *t = mrc_trefs_records; t; t = t->next) {
		memset(t->slot, 0, sizeof(t->slot));
		memset(t->request, 0, sizeof(t->request));
		t->requests = 0;
		t->lock = 0;
		t->cache = NULL;
		t->serving = 0;
		t->state = t == mrc_tref_self ? MRC_TREF_OWNED : MRC_TREF_FREE;
	}
	mrc_store_relaxed(&mrc_trefs_owners, mrc_tref_self ? 1 : 0);
	pthread_mutex_unlock(&records_lock);
}

/* Hits this cache's bound threads counted and not yet folded. */
uint64_t mrc_trefs_hits(const struct mrc_cache *cache)
{
	uint64_t hits = 0;

	for (struct mrc_tref *t = mrc_load_acquire(&mrc_trefs_records); t; t = t->next)
		if (mrc_load_acquire(&t->cache) == cache)
			hits += mrc_load_acquire(&t->pos) - mrc_load_relaxed(&t->base);
	return hits;
}
