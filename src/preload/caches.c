// SPDX-License-Identifier: BSD-2-Clause
/*
 * One cache per (protection domain, access flags), made at the first
 * registration that needs it. Its provider calls the real libibverbs
 * functions, never the wrappers, so a miss does not come back into the
 * preload. Caches with remote access never merge: a merged registration
 * would let a peer reach memory the application did not register.
 *
 * MRCACHE_STATS=1 prints one line at exit with the sums over every cache
 * (and MRCACHE_PRELOAD_STATS_FILE=PATH appends the same line to PATH).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mrcache.h"
#include "lookup.h"
#include "preload.h"
#include "threadrefs/mode.h"

struct preload_cache {
	struct ibv_pd *pd;
	unsigned int access;
	struct mrc_cache *cache;
	struct preload_cache *next;
};

static struct preload_cache *caches;
static pthread_mutex_t caches_lock = PTHREAD_MUTEX_INITIALIZER;
/* Counters of caches already destroyed, and of calls passed through. */
static struct mrc_stats gone;
static uint64_t passthrough;

#define REMOTE_ACCESS (IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ | \
		       IBV_ACCESS_REMOTE_ATOMIC)

static int real_reg(void *ctx, void *addr, size_t len, uint32_t access,
		    void **handle)
{
	struct ibv_mr *mr;

	errno = 0;
	mr = preload_real.reg_mr_iova2(ctx, addr, len, (uintptr_t)addr,
				       access);
	if (!mr)
		return errno ? -errno : -EIO;
	*handle = mr;
	return 0;
}

static int real_dereg(void *ctx, void *handle)
{
	int ret = preload_real.dereg_mr(handle);

	(void)ctx;
	return ret > 0 ? -ret : ret;
}

/*
 * The preload's defaults, where the environment says nothing: a progress
 * thread, and idle registrations released after PRELOAD_IDLE_TIMEOUT_MS,
 * so a program that registered a large buffer once does not keep it
 * pinned (and counted against RLIMIT_MEMLOCK) for the rest of its life.
 * The program cannot say anything here: it does not know about the cache.
 */
#define PRELOAD_IDLE_TIMEOUT_MS 10000

static void default_unpinning(struct mrc_cache_attr *attr)
{
	/* MRCACHE_PROGRESS_THREAD=0 turns off the default idle bound too. */
	if (getenv("MRCACHE_PROGRESS_THREAD"))
		return;
	attr->comp_mask |= MRC_ATTR_PROGRESS_THREAD;
	attr->progress_thread = 1;
	if (!getenv("MRCACHE_IDLE_TIMEOUT")) {
		attr->comp_mask |= MRC_ATTR_IDLE_TIMEOUT;
		attr->idle_timeout_ms = PRELOAD_IDLE_TIMEOUT_MS;
	}
}

static struct mrc_cache *cache_create(struct ibv_pd *pd, unsigned int access)
{
	struct mrc_provider provider = {
		.name = "verbs",
		.reg = real_reg,
		.dereg = real_dereg,
		.ctx = pd,
	};
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_DEFAULT_ACCESS | MRC_ATTR_PRINT_STATS,
		.default_access = access,
		.print_stats = 0,	/* one line for all caches, at exit */
	};
	struct mrc_cache *cache;

	default_unpinning(&attr);
	if (access & REMOTE_ACCESS) {
		attr.comp_mask |= MRC_ATTR_MERGE;
		attr.merge = MRC_MERGE_NONE;
	}
	if (mrc_cache_create(&provider, &attr, &cache)) {
		fprintf(stderr, "mrcache-preload: no cache for PD %p, registrations pass through: %s\n",
			(void *)pd, mrc_last_error());
		return NULL;
	}
	return cache;
}

static struct preload_cache *find_locked(struct ibv_pd *pd,
					 unsigned int access)
{
	struct preload_cache *c;

	for (c = caches; c; c = c->next)
		if (c->pd == pd && c->access == access)
			return c;
	return NULL;
}

/* Under caches_lock: the cache for @pd and @access, made if needed; or NULL. */
static struct mrc_cache *get_locked(struct ibv_pd *pd, unsigned int access)
{
	struct preload_cache *c = find_locked(pd, access);

	if (!c) {
		c = calloc(1, sizeof(*c));
		if (c)
			c->cache = cache_create(pd, access);
		if (!c || !c->cache) {
			free(c);
			return NULL;
		}
		c->pd = pd;
		c->access = access;
		c->next = caches;
		caches = c;
	}
	/* Found without a lock only once fork safety covers it. */
	if (preload_fork_handler_ready())
		preload_lookup_add(pd, access, c->cache);
	return c->cache;
}

/* preload_cache_get() when the index does not have it. */
__attribute__((noinline, cold))
static struct mrc_cache *cache_get_slow(struct ibv_pd *pd, unsigned int access)
{
	struct mrc_cache *cache;

	pthread_mutex_lock(&caches_lock);
	cache = get_locked(pd, access);
	pthread_mutex_unlock(&caches_lock);
	if (cache)
		preload_fork_handler_install();
	return cache;
}

/*
 * Return: the cache for @pd and @access, made now if needed; or NULL.
 * Without a lock when the index has it (lookup.c), else from the list.
 */
struct mrc_cache *preload_cache_get(struct ibv_pd *pd, unsigned int access)
{
	struct mrc_cache *cache = preload_lookup(pd, access);

	return cache ? cache : cache_get_slow(pd, access);
}

static void add_stats(struct mrc_stats *sum, const struct mrc_stats *s)
{
	sum->hits += s->hits;
	sum->misses += s->misses;
	sum->invalidations += s->invalidations;
	sum->evictions += s->evictions;
	sum->reg_calls += s->reg_calls;
	sum->dereg_calls += s->dereg_calls;
	if (!sum->monitor[0])
		memcpy(sum->monitor, s->monitor, sizeof(sum->monitor));
}

typedef int (*cache_match_fn)(const struct preload_cache *c,
			      const void *what);

/*
 * Destroy every cache @match picks, deregistering what it kept. Return: 0,
 * or -EBUSY when the application still holds MRs of one (that cache
 * stays; the real call then fails as it would have without the preload).
 */
static int flush_matching(cache_match_fn match, const void *what)
{
	struct preload_cache **pp, *c;
	struct mrc_stats s;
	int ret = 0;

	pthread_mutex_lock(&caches_lock);
	for (pp = &caches; (c = *pp);) {
		if (!match(c, what) || mrc_cache_stats(c->cache, &s)) {
			pp = &c->next;
			continue;
		}
		/* Out of the hit path's index first: new lookups lock and wait. */
		preload_lookup_remove(c->pd, c->access, c->cache);
		if (mrc_cache_destroy(c->cache)) {
			preload_lookup_add(c->pd, c->access, c->cache);
			ret = -EBUSY;
			pp = &c->next;
			continue;
		}
		add_stats(&gone, &s);
		*pp = c->next;
		free(c);
	}
	pthread_mutex_unlock(&caches_lock);
	return ret;
}

static int on_pd(const struct preload_cache *c, const void *pd)
{
	return c->pd == pd;
}

static int on_context(const struct preload_cache *c, const void *context)
{
	return c->pd->context == context;
}

/* Before ibv_dealloc_pd(): the PD's caches go, so it is not EBUSY. */
int preload_caches_flush_pd(struct ibv_pd *pd)
{
	return flush_matching(on_pd, pd);
}

/* Before ibv_close_device(): every cache of a PD of @context goes. */
void preload_caches_flush_context(struct ibv_context *context)
{
	flush_matching(on_context, context);
}

/* Before fork(): every cache drops its idle registrations. */
void preload_caches_flush_idle(void)
{
	pthread_mutex_lock(&caches_lock);
	for (struct preload_cache *c = caches; c; c = c->next)
		mrc_cache_flush_idle(c->cache);
	pthread_mutex_unlock(&caches_lock);
}

void preload_count_passthrough(void)
{
	__atomic_fetch_add(&passthrough, 1, __ATOMIC_RELAXED);
}

static int stats_wanted(void)
{
	const char *v = getenv("MRCACHE_STATS");

	return v && (!strcmp(v, "1") || !strcasecmp(v, "yes") ||
		     !strcasecmp(v, "on") || !strcasecmp(v, "true"));
}

static void print_line(FILE *f, const struct mrc_stats *sum)
{
	fprintf(f, "mrcache-preload: pid %d monitor %s refs %s: hits %" PRIu64
		" misses %" PRIu64 " invalidations %" PRIu64
		" evictions %" PRIu64 " reg %" PRIu64 " dereg %" PRIu64
		" passthrough %" PRIu64 "\n",
		(int)getpid(), sum->monitor[0] ? sum->monitor : "none",
		mrc_trefs_expected() ? "thread" : "cas", sum->hits, sum->misses,
		sum->invalidations, sum->evictions,
		sum->reg_calls, sum->dereg_calls,
		__atomic_load_n(&passthrough, __ATOMIC_RELAXED));
}

/* The caches are left alone at exit: the kernel releases their pins. */
__attribute__((destructor)) static void preload_print_stats(void)
{
	const char *path = getenv("MRCACHE_PRELOAD_STATS_FILE");
	struct mrc_stats sum = gone, s;
	struct preload_cache *c;
	FILE *f;

	if (!stats_wanted() || preload_forked)
		return;
	pthread_mutex_lock(&caches_lock);
	for (c = caches; c; c = c->next)
		if (!mrc_cache_stats(c->cache, &s))
			add_stats(&sum, &s);
	pthread_mutex_unlock(&caches_lock);
	print_line(stderr, &sum);
	f = path ? fopen(path, "a") : NULL;
	if (f) {
		print_line(f, &sum);
		fclose(f);
	}
}
