// SPDX-License-Identifier: BSD-2-Clause
/*
 * mrc_get() and mrc_put(): the hot path.
 *
 * A hit takes no lock and writes nothing shared but the region's own state
 * word: it finds a candidate through the hint table (or, failing that, a
 * walk of the interval tree with acquire loads), takes a reference with one
 * compare-and-swap (which also counts the hit), and re-checks the region it
 * got. With thread refs (MRCACHE_THREAD_REFS, threadrefs/) the common hit
 * writes nothing shared at all: it publishes the region in this thread's
 * slot instead of taking the compare-and-swap reference. What could make a lock-free answer wrong (a pending monitor event, a
 * region waiting for deregistration, a fork) sends the call to the locked
 * slow path instead, or, for pending events of the kernel monitor, to a
 * check of the region's own watch generation.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "error.h"

static int request_range(const struct mrc_cache *cache, const void *addr,
			 size_t len, uint64_t *start, uint64_t *end)
{
	uint64_t mask = cache->page_mask;
	uint64_t a = (uintptr_t)addr, last, rounded;

	if (mrc_unlikely(!addr))
		return mrc_error(EINVAL, "address is NULL");
	if (mrc_unlikely(!len))
		return mrc_error(EINVAL, "length is zero");
	if (mrc_unlikely(__builtin_add_overflow(a, len, &last) ||
			 __builtin_add_overflow(last, mask, &rounded)))
		return mrc_error(EINVAL, "range %p + %zu wraps around the address space",
				 addr, len);
	*start = a & ~mask;
	*end = rounded & ~mask;
	return 0;
}

enum fast_path {
	FAST_OPEN,		/* nothing pending: any cached region is valid */
	FAST_CHECK_WATCH,	/* events pending: check the region's watch */
	FAST_CLOSED,		/* only the locked path can answer */
};

static inline int monitor_quiet(const struct mrc_cache *cache)
{
	return mrc_load_acquire(cache->monitor_events) ==
	       mrc_load_acquire(&cache->monitor_seen);
}

/*
 * Events are pending. Drain them now if nobody holds the lock; if someone
 * does, a monitor with per-watch generations still lets a hit prove its own
 * region valid with one load instead of waiting for the lock.
 */
static enum fast_path events_pending(struct mrc_cache *cache)
{
	if (pthread_mutex_trylock(&cache->lock) == 0) {
		mrc_cache_sync_locked(cache);
		mrc_cache_unlock(cache);
		if (monitor_quiet(cache) && !mrc_load_relaxed(&cache->deferred))
			return FAST_OPEN;
	}
	return cache->watch_gens ? FAST_CHECK_WATCH : FAST_CLOSED;
}

static inline enum fast_path fast_path_state(struct mrc_cache *cache)
{
	if (mrc_unlikely(mrc_load_relaxed(&cache->deferred) ||
			 mrc_load_relaxed(&cache->closed)))
		return FAST_CLOSED;
	if (mrc_likely(monitor_quiet(cache)))
		return FAST_OPEN;
	return events_pending(cache);
}

/*
 * The kernel bumps a watch's generation before it changes the page tables
 * under it, so an unchanged generation proves the region still maps the
 * pages the application sees, whatever else is pending. Every region of a
 * cache whose monitor has generations is watched, and its watch fields are
 * set before it is published and kept while it is referenced.
 */
static int watch_unchanged(const struct mrc_cache *cache,
			   const struct mrc_region *r)
{
	return (uint32_t)mrc_load_acquire(&cache->watch_gens[r->watch.id]) ==
	       r->watch.gen;
}

static inline int region_serves(const struct mrc_region *r, uint64_t start,
				uint64_t end, uint32_t access)
{
	return mrc_region_start(r) <= start && mrc_region_end(r) >= end &&
	       (mrc_region_access_flags(r) & access) == access;
}

static inline void note_hit(struct mrc_cache *cache, uint64_t old_state)
{
	/* The hit counter in the state word wrapped: carry into the cache. */
	if (mrc_unlikely((old_state >> 32) == UINT32_MAX))
		mrc_fetch_add(&cache->hit_wraps, 1);
}

/*
 * A hit is about to be handed out, every check passed: in paranoid mode,
 * prove its pages are the ones registered. Only here, after the watch
 * check, or a region about to be rejected would be reported as stale.
 */
static inline void hit_out(struct mrc_cache *cache, struct mrc_region *r,
			   struct mrc_region **region)
{
	if (mrc_unlikely(mrc_load_relaxed(&cache->check_pfn)))
		mrc_pfn_verify(cache, r);
	*region = r;
}

/* A reference was dropped, leaving @state: was it a dead region's last? */
static inline void release_if_last(struct mrc_cache *cache,
				   struct mrc_region *r, uint64_t state)
{
	if (mrc_unlikely((state & (MRC_DEAD | MRC_REF_MASK)) == MRC_DEAD))
		mrc_cache_release_dead(cache, r);
}

/* Drop a reference taken by a lookup that did not use it. */
static void unref_unused(struct mrc_cache *cache, struct mrc_region *r)
{
	uint64_t v = mrc_load_relaxed(&r->state);

	while (!mrc_cas(&r->state, &v, v - 1 - MRC_HIT_ONE))
		;
	release_if_last(cache, r, v - 1);
}

/*
 * Take a reference on a region found without the lock, if it serves the
 * request. The pointer may be stale (a hint, or a walk that raced with a
 * writer): trust only what the reference holds.
 */
static inline struct mrc_region *take_if_serves(struct mrc_cache *cache,
						struct mrc_region *r,
						uint64_t start, uint64_t end,
						uint32_t access)
{
	uint64_t old;

	if (!r || !mrc_region_try_ref(r, &old))
		return NULL;
	if (mrc_unlikely(!region_serves(r, start, end, access))) {
		unref_unused(cache, r);
		return NULL;
	}
	note_hit(cache, old);
	return r;
}

/* The request's hint set (its four slots) and the tag its key carries. */
static inline const uint32_t *hint_set(const struct mrc_cache *cache,
				       uint64_t key, uint32_t *tag)
{
	struct mrc_hints *h = mrc_load_acquire(&cache->hints.current);
	uint64_t hash = mrc_hints_hash(h, key);

	*tag = mrc_hints_tag(hash);
	return &h->slot[mrc_hints_set(h, hash)];
}

/*
 * Every way whose tag matches, one at a time: the exact counterpart of
 * hint_candidate(), for when the candidate it gave did not serve.
 */
static struct mrc_region *lookup_hints(struct mrc_cache *cache, uint64_t key,
				       uint64_t start, uint64_t end,
				       uint32_t access)
{
	uint32_t tag;
	const uint32_t *set = hint_set(cache, key, &tag);

	for (int way = 0; way < MRC_HINT_WAYS; way++) {
		/* Pairs with the release in mrc_hints_remember(). */
		uint32_t entry = mrc_load_acquire(&set[way]);
		struct mrc_region *r;

		if (entry >> MRC_HINT_INDEX_BITS != tag)
			continue;
		r = mrc_region_at(&cache->pool, (entry & MRC_HINT_INDEX_MASK) - 1);
		r = take_if_serves(cache, r, start, end, access);
		if (r)
			return r;
	}
	return NULL;
}

static struct mrc_region *lookup_fast(struct mrc_cache *cache, uint64_t key,
				      uint64_t start, uint64_t end,
				      uint32_t access)
{
	struct mrc_region *r;

	r = lookup_hints(cache, key, start, end, access);
	if (r)
		return r;
	r = mrc_node_region(mrc_itree_find_containing(&cache->tree, start, end));
	r = take_if_serves(cache, r, start, end, access);
	if (r)
		mrc_hints_remember(&cache->hints, key, r->index);
	return r;
}

/* Under the lock the tree is stable: any live region that serves is a hit. */
static struct mrc_region *lookup_locked(struct mrc_cache *cache,
					uint64_t start, uint64_t end,
					uint32_t access)
{
	struct mrc_itree_node *n;
	uint64_t old;

	for (n = mrc_itree_first_overlap(&cache->tree, start, end); n;
	     n = mrc_itree_next_overlap(n, start, end)) {
		struct mrc_region *r = mrc_node_region(n);

		if (!region_serves(r, start, end, access))
			continue;
		if (mrc_region_try_ref(r, &old)) {
			note_hit(cache, old);
			return r;
		}
	}
	return NULL;
}

/*
 * Where the largest user address space the architecture allows ends
 * (x86-64 with 5-level paging, arm64 with 52-bit addresses, RISC-V Sv57;
 * on 32 bits, the address space). A range ending above it cannot be this
 * process's memory whatever the kernel's configuration: refuse it before
 * the provider pins anything. A range below it but past what this kernel
 * maps is the provider's to refuse (ibv_reg_mr: EFAULT or EINVAL). Other
 * architectures: only wrapping is refused.
 */
#if UINTPTR_MAX == UINT32_MAX
#define MRC_USER_ADDR_END	((uint64_t)1 << 32)
#elif defined(__x86_64__) || (defined(__riscv) && __riscv_xlen == 64)
#define MRC_USER_ADDR_END	((uint64_t)1 << 56)
#elif defined(__aarch64__)
#define MRC_USER_ADDR_END	((uint64_t)1 << 52)
#else
#define MRC_USER_ADDR_END	UINT64_MAX
#endif

/*
 * Checked on misses only: no region ends past the limit, so a request
 * that does can never hit.
 */
static int check_user_range(uint64_t start, uint64_t end)
{
	if (end <= MRC_USER_ADDR_END)
		return 0;
	return mrc_error(EINVAL, "range %#" PRIx64 "-%#" PRIx64 " ends past %#" PRIx64
			 ", the end of any user address space on this architecture; is the length right?",
			 start, end, MRC_USER_ADDR_END);
}

static int get_slow(struct mrc_cache *cache, uint64_t key, uint64_t start,
		    uint64_t end, uint32_t access, struct mrc_region **region)
{
	struct mrc_region *r;
	int ret;

	if (mrc_load_relaxed(&cache->closed))
		return mrc_closed_error(cache);
	ret = check_user_range(start, end);
	if (ret)
		return ret;
	mrc_cache_lock(cache);
	r = lookup_locked(cache, start, end, access);
	if (r)
		hit_out(cache, r, region);
	else
		ret = mrc_register_range(cache, start, end, access, region);
	if (!ret)
		mrc_hints_remember(&cache->hints, key, (*region)->index);
	mrc_cache_unlock(cache);
	return ret;
}

/*
 * Remember in this thread's front entry that @r served the request of
 * @key, if the thread hits @cache through its slots.
 */
static void remember_front(struct mrc_cache *cache, uint64_t key,
			   struct mrc_region *r)
{
	struct mrc_tref *t = mrc_tref_for(cache);

	if (t)
		mrc_tref_remember(t, key, r);
}

/* Everything but a hit through the fast path of mrc_get() in a quiet cache. */
static __attribute__((noinline)) int get_rest(struct mrc_cache *cache,
					      uint64_t key, uint64_t start,
					      uint64_t end, uint32_t access,
					      struct mrc_region **region)
{
	struct mrc_region *r;
	int ret;

	if (cache->thread_refs)
		mrc_trefs_bind(cache);
	switch (fast_path_state(cache)) {
	case FAST_OPEN:
		r = lookup_fast(cache, key, start, end, access);
		break;
	case FAST_CHECK_WATCH:
		r = lookup_fast(cache, key, start, end, access);
		if (r && !watch_unchanged(cache, r)) {
			unref_unused(cache, r);
			r = NULL;
		}
		break;
	default:
		r = NULL;
	}
	if (r) {
		hit_out(cache, r, region);
	} else {
		ret = get_slow(cache, key, start, end, access, region);
		if (ret)
			return ret;
	}
	remember_front(cache, key, *region);
	return 0;
}

/*
 * Everything the fast path of mrc_get() does not answer, with the
 * caller's own arguments (@addr_end is addr + len, wrapped or not: it
 * gives len back exactly): every check with its message, the request
 * rounded out to pages, then the lookups that may take the lock.
 */
static __attribute__((noinline)) int get_checked(struct mrc_cache *cache,
						 const void *addr, uint64_t addr_end,
						 uint32_t access,
						 struct mrc_region **region)
{
	size_t len = (size_t)(addr_end - (uintptr_t)addr);
	uint64_t start = 0, end = 0;
	int ret;

	if (!cache || !region)
		return mrc_error(EINVAL, "%s is NULL", cache ? "region pointer" : "cache");
	ret = request_range(cache, addr, len, &start, &end);
	if (ret)
		return ret;
	if (!access)
		access = cache->default_access;
	return get_rest(cache, mrc_hints_key((uintptr_t)addr), start, end,
			access, region);
}

typedef uint32_t mrc_u32x4 __attribute__((vector_size(16)));

/*
 * The four ways of a hint set, each as by a load-acquire (pairs with the
 * release in mrc_hints_put()). On x86-64 one aligned 16-byte load: each
 * aligned 4-byte way in it is read atomically, and x86 orders it before
 * every later load, so it is four acquire loads in one instruction
 * instead of four loads and three shuffles. TSan cannot see inside the
 * asm, so its builds (and other targets) load the ways one by one.
 */
static inline mrc_u32x4 hint_ways(const uint32_t *set)
{
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
	mrc_u32x4 e;

	/* The memory clobber makes it an acquire for the compiler too. */
	__asm__("movdqa %1, %0" : "=x"(e) : "m"(*(const mrc_u32x4 *)set) : "memory");
	return e;
#else
	return (mrc_u32x4){
		mrc_load_acquire(&set[0]), mrc_load_acquire(&set[1]),
		mrc_load_acquire(&set[2]), mrc_load_acquire(&set[3]),
	};
#endif
}

/*
 * The pool index of the common hit's candidate for the request of @key:
 * a way of the key's hint set with the key's tag. The four ways are
 * compared at once (one vector compare where the target has vectors),
 * the matching entries kept and ORed together across the vector with two
 * shuffles: no branch, whichever way holds the key. No match gives index
 * -1; two matching ways (rare) mix their indexes into one that is either
 * beyond the pool or names a region the check under the reference
 * rejects. All of these end in the full lookup.
 */
static inline uint32_t hint_candidate(const struct mrc_cache *cache,
				      uint64_t key)
{
	struct mrc_hints *h = mrc_load_acquire(&cache->hints.current);
	uint64_t hash = mrc_hints_hash(h, key);
	mrc_u32x4 e = hint_ways(&h->slot[mrc_hints_set(h, hash)]);
	mrc_u32x4 match = (mrc_u32x4)((e >> MRC_HINT_INDEX_BITS) == mrc_hints_tag(hash));
	mrc_u32x4 hit = e & match;

	hit |= __builtin_shuffle(hit, (mrc_u32x4){ 2, 3, 0, 1 });
	hit |= __builtin_shuffle(hit, (mrc_u32x4){ 1, 0, 3, 2 });
	return (hit[0] & MRC_HINT_INDEX_MASK) - 1;
}

/*
 * A slot hit that failed its check: let go of the slot (nudging the lock
 * holder if the region is dead, since a reclaimer may have parked it
 * while it was published) and look properly.
 */
static __attribute__((noinline)) int unpublish_then_get(struct mrc_cache *cache,
							 const void *addr, uint64_t end,
							 uint32_t access,
							 struct mrc_region **region,
							 struct mrc_region *r)
{
	mrc_tref_release(mrc_tref_self, mrc_tref_slot_of(r), r);
	if (mrc_load_relaxed(&r->state) & MRC_DEAD)
		mrc_cache_nudge(cache);
	return get_checked(cache, addr, end, access, region);
}

/*
 * The hit through this thread's slot: publish, then check. The load of the
 * state word after the slot store is what the reclaimer's fence orders
 * (threadrefs.h); a region not DEAD now cannot be deregistered until the
 * slot is released, nor reused, so the range checked after it is the
 * region's own. The candidate may be anything (a stale front entry or
 * hint): one already dead is published too, and then let go with a nudge
 * (unpublish_then_get).
 */
enum slot_result { SLOT_HIT, SLOT_TAKEN, SLOT_FAILED };

static inline enum slot_result slot_hit(struct mrc_tref *t,
					struct mrc_region *r, uint64_t addr,
					uint64_t end, uint32_t access)
{
	unsigned int k = mrc_tref_slot_of(r);

	/* Held by another region, or this one (a thread holds it once). */
	if (mrc_unlikely(mrc_tref_slot_held(t->slot[k])))
		return SLOT_TAKEN;
	mrc_tref_publish(t, k, r);
	if (mrc_unlikely((mrc_load_acquire(&r->state) & MRC_DEAD) ||
			 !region_serves(r, addr, end, access)))
		return SLOT_FAILED;
	return SLOT_HIT;
}

/* Paranoid mode: prove a hit's pages are the ones registered. */
static __attribute__((noinline)) int verify_hit(struct mrc_cache *cache,
						const struct mrc_region *r)
{
	mrc_pfn_verify(cache, r);
	return 0;
}

/* Every hit ends here: hand out @r (in paranoid mode, checked first). */
static inline __attribute__((always_inline)) int
hand_out(struct mrc_cache *cache, struct mrc_region **region,
	 struct mrc_region *r)
{
	*region = r;
	if (mrc_unlikely(mrc_load_relaxed(&cache->check_pfn)))
		return verify_hit(cache, r);
	return 0;
}

/*
 * The candidate did not serve after all: drop it and look properly. Like
 * unpublish_then_get(), it takes the get's arguments in the registers
 * they arrived in, and the region after them.
 */
static __attribute__((noinline)) int reject_then_get(struct mrc_cache *cache,
						     const void *addr, uint64_t end,
						     uint32_t access,
						     struct mrc_region **region,
						     struct mrc_region *r)
{
	unref_unused(cache, r);
	return get_checked(cache, addr, end, access, region);
}

/*
 * A slot hit through the hint table that also fills the key's front entry
 * (mrc_tref_refresh_front()). Out of line, so the key is not kept live
 * through every hit.
 */
static __attribute__((noinline)) int hit_remembered(struct mrc_cache *cache,
						    const void *addr,
						    struct mrc_region **region,
						    struct mrc_tref *t,
						    struct mrc_region *r)
{
	mrc_tref_remember(t, mrc_hints_key((uintptr_t)addr), r);
	return hand_out(cache, region, r);
}

/*
 * Hand out candidate @r (from a hint, or a front entry whose slot was
 * taken) with a compare-and-swap reference, if it serves.
 */
static inline __attribute__((always_inline)) int
get_counted(struct mrc_cache *cache, const void *addr, uint64_t end,
	    uint32_t access, struct mrc_region **region, struct mrc_region *r)
{
	uint64_t old;

	if (mrc_unlikely(!mrc_region_try_ref(r, &old)))
		return get_checked(cache, addr, end, access, region);
	if (mrc_unlikely(!region_serves(r, (uintptr_t)addr, end, access)))
		return reject_then_get(cache, addr, end, access, region, r);
	note_hit(cache, old);
	return hand_out(cache, region, r);
}

/*
 * This thread's slot for the candidate is taken (it holds another region
 * or this one): the compare-and-swap reference, out of line, so the slot
 * hits keep few enough values live to save no register.
 */
static __attribute__((noinline)) int get_slot_taken(struct mrc_cache *cache,
						    const void *addr, uint64_t end,
						    uint32_t access,
						    struct mrc_region **region,
						    struct mrc_region *r)
{
	return get_counted(cache, addr, end, access, region, r);
}

/*
 * Hand out candidate @r (from a front entry or a hint) through this
 * thread's slot (@t) if it serves. Inlined into its two callers, each a
 * leaf of the hit path. @from_hint: the candidate came from the hint
 * table; such a hit at every MRC_TREF_FRONT_EVERY-th hit of the thread
 * also remembers it in the key's front entry.
 */
static inline __attribute__((always_inline)) int
get_slotted(struct mrc_cache *cache, const void *addr, uint64_t end,
	    uint32_t access, struct mrc_region **region, struct mrc_tref *t,
	    struct mrc_region *r, bool from_hint)
{
	uint64_t pos;

	switch (slot_hit(t, r, (uintptr_t)addr, end, access)) {
	case SLOT_HIT:
		break;
	case SLOT_FAILED:
		return unpublish_then_get(cache, addr, end, access, region, r);
	case SLOT_TAKEN:
		return get_slot_taken(cache, addr, end, access, region, r);
	}
	pos = mrc_tref_count_hit(t, r);
	if (from_hint && mrc_unlikely(mrc_tref_refresh_front(pos)))
		return hit_remembered(cache, addr, region, t, r);
	return hand_out(cache, region, r);
}

/*
 * The hits through the hint table: through this thread's slot when no
 * front entry named a candidate (get_hinted_slot), or with a
 * compare-and-swap reference (get_hinted). Functions of their own,
 * entered by a jump: the front entry's hit then has few enough values
 * live to need no saved register, and neither tests which kind of
 * reference it takes.
 */
/*
 * The region the hint table names for @addr's key, in *@r; false for
 * none. (A bool and not NULL: a region's address is never tested then.)
 */
static inline __attribute__((always_inline)) bool
hinted_region(const struct mrc_cache *cache, const void *addr,
	      struct mrc_region **r)
{
	uint32_t index = hint_candidate(cache, mrc_hints_key((uintptr_t)addr));

	/* Also catches "no candidate": index 0 - 1 wraps to the top. */
	if (mrc_unlikely(index >= mrc_region_pool_capacity(&cache->pool)))
		return false;
	*r = mrc_region_at(&cache->pool, index);
	return true;
}

static __attribute__((noinline)) int get_hinted(struct mrc_cache *cache,
						const void *addr, uint64_t end,
						uint32_t access,
						struct mrc_region **region)
{
	struct mrc_region *r;

	if (mrc_unlikely(!hinted_region(cache, addr, &r)))
		return get_checked(cache, addr, end, access, region);
	return get_counted(cache, addr, end, access, region, r);
}

static __attribute__((noinline)) int get_hinted_slot(struct mrc_cache *cache,
						     const void *addr, uint64_t end,
						     uint32_t access,
						     struct mrc_region **region,
						     struct mrc_tref *t)
{
	struct mrc_region *r;

	if (mrc_unlikely(!hinted_region(cache, addr, &r)))
		return get_checked(cache, addr, end, access, region);
	return get_slotted(cache, addr, end, access, region, t, r, true);
}

/**
 * mrc_get() - a registration covering [addr, addr + len) with @access.
 * @cache: the cache.
 * @addr: start of the range (any alignment).
 * @len: bytes, at least 1.
 * @access: provider access flags (IBV_ACCESS_* for verbs); 0 means the
 *          cache's default. A region with more flags than asked serves too.
 * @region: receives a referenced region; release it with mrc_put().
 *
 * Return: 0; -EINVAL for bad arguments (a range past the end of any user
 * address space among them) or a destroyed cache; -EPERM in a forked
 * child; or the provider's error registering the request's own range and
 * access, after the cache evicted and retried (a merge that fails is never
 * the cause).
 *
 * The fast path below is a leaf: everything it does not answer goes, as
 * the last thing its branch does, to get_checked() or a function ending
 * there, with the caller's arguments. So no value is live across a call
 * and no register needs saving. It checks only what it must to read
 * memory safely (NULL pointers, a range that is empty or wraps: end <= addr
 * catches both); get_checked() repeats every check and gives the message.
 * The request is not rounded out to pages: a region's bounds are page
 * aligned, so it serves [addr, end) exactly when it serves the rounded range.
 */
int mrc_get(struct mrc_cache *cache, const void *addr, size_t len,
	    uint32_t access, struct mrc_region **region)
{
	uint64_t a = (uintptr_t)addr, end = a + len, key;
	struct mrc_tref_front *front;
	struct mrc_tref *t;

	if (mrc_unlikely(!cache || !region || !a || end <= a))
		return get_checked(cache, addr, end, access, region);
	if (!access)
		access = cache->default_access;
	/* A forked child or destroyed cache fails monitor_quiet() (fork.c). */
	if (mrc_unlikely(mrc_load_relaxed(&cache->deferred) ||
			 !monitor_quiet(cache)))
		return get_checked(cache, addr, end, access, region);
	t = mrc_tref_for(cache);
	if (t) {
		key = mrc_hints_key(a);
		front = mrc_tref_front_of(t, key);
		if (front->key == key)
			return get_slotted(cache, addr, end, access, region, t,
					   front->region, false);
		return get_hinted_slot(cache, addr, end, access, region, t);
	}
	if (mrc_unlikely(cache->thread_refs))
		/* Not bound yet, or puts wait for this thread: get_rest() does both. */
		return get_checked(cache, addr, end, access, region);
	return get_hinted(cache, addr, end, access, region);
}

/**
 * mrc_put() - release a reference taken by mrc_get().
 *
 * Return: 0; -EINVAL for NULL arguments, a destroyed cache, a region of
 * another cache, or a region without references (a double put); -EPERM
 * in a forked child.
 */
/*
 * After a slot was released: puts other threads left for this one, and a
 * nudge for the lock holder when the region died meanwhile (it is parked,
 * or about to be, until its slot is released).
 */
static __attribute__((noinline)) int put_slot_tail(struct mrc_cache *cache,
						    struct mrc_tref *t,
						    struct mrc_region *region)
{
	if (mrc_load_relaxed(&region->state) & MRC_DEAD)
		mrc_cache_nudge(cache);
	if (mrc_load_relaxed(&t->requests))
		mrc_trefs_serve_requests(t);
	return 0;
}

/* Drop a compare-and-swap reference; 0 when the region has none. */
static int put_counted(struct mrc_cache *cache, struct mrc_region *region)
{
	uint64_t v = mrc_load_relaxed(&region->state);

	do {
		if (mrc_unlikely(!(v & MRC_REF_MASK)))
			return 0;
	} while (!mrc_cas(&region->state, &v, v - 1));
	release_if_last(cache, region, v - 1);
	return 1;
}

/*
 * A put with no compare-and-swap reference left: the reference is some
 * thread's slot. References are interchangeable, and one can move from a
 * slot to the count meanwhile (its holder got the region again and then
 * put through the slot, or exited): a slot seen released was released
 * after the count went up, so look at the count again before giving up.
 */
static __attribute__((noinline)) int put_unreferenced(struct mrc_cache *cache,
						       struct mrc_region *region)
{
	while (cache->thread_refs) {
		if (!mrc_trefs_put_remote(cache, region))
			return 0;
		if (!(mrc_load_acquire(&region->state) & MRC_REF_MASK))
			break;
		if (put_counted(cache, region))
			return 0;
	}
	return mrc_error(EINVAL, "region %p holds no reference (put twice?)",
			 (void *)region);
}

/*
 * A put of a region not in this thread's slot: drop a compare-and-swap
 * reference, or failing that another thread's slot reference.
 */
static inline int put_count(struct mrc_cache *cache, struct mrc_region *region)
{
	if (mrc_likely(put_counted(cache, region)))
		return 0;
	return put_unreferenced(cache, region);
}

/*
 * The same for a thread with a record, entered by a jump: the put through
 * the slot then does not set up what the loop around the
 * compare-and-swap needs (the state word's address, not at offset 0).
 */
static __attribute__((noinline)) int put_count_far(struct mrc_cache *cache,
						   struct mrc_region *region)
{
	return put_count(cache, region);
}

int mrc_put(struct mrc_cache *cache, struct mrc_region *region)
{
	struct mrc_tref *t = mrc_tref_self;
	unsigned int k;

	if (mrc_unlikely(!cache || !region))
		return mrc_error(EINVAL, "%s is NULL", cache ? "region" : "cache");
	if (mrc_unlikely(mrc_load_relaxed(&cache->closed)))
		return mrc_closed_error(cache);
	if (mrc_unlikely(!mrc_region_pool_owns(&cache->pool, region)))
		return mrc_error(EINVAL, "%p is not a region of this cache (%p); put each region to the cache that gave it",
				 (void *)region, (void *)cache);
	if (!t)
		return put_count(cache, region);
	k = mrc_tref_slot_of(region);
	if (t->slot[k] == (uintptr_t)region) {
		mrc_tref_release(t, k, region);
		/*
		 * After the release: ordered by the reclaimer's fence too.
		 * One test for both (DEAD is bit 31 of the low half).
		 */
		if (mrc_unlikely(((uint32_t)mrc_load_relaxed(&region->state) & MRC_DEAD) |
				 mrc_load_relaxed(&t->requests)))
			return put_slot_tail(cache, t, region);
		return 0;
	}
	return put_count_far(cache, region);
}
