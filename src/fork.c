// SPDX-License-Identifier: BSD-2-Clause
/*
 * Fork policy. A child process inherits the parent's caches as copies of
 * memory, but not the right to use the registrations: they belong to the
 * parent's verbs context, and deregistering them from the child would tear
 * down the parent's. So at fork every cache of the process is marked in the
 * child; there, every call but mrc_cache_destroy() fails with -EPERM, and
 * mrc_cache_destroy() only frees the child's memory.
 *
 * Destroyed caches move from the list of live caches to a list of
 * tombstones (cache.c, cache_bury), which keeps them reachable for leak
 * checkers; nothing ever walks it on a call's path.
 */
#include <pthread.h>

#include "cache.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;
static struct mrc_cache *registry_head;
static struct mrc_cache *tombstones;
static int atfork_ret;

/* Holding the lock across fork keeps the list whole in the child. */
static void before_fork(void)
{
	pthread_mutex_lock(&registry_lock);
}

static void after_fork_parent(void)
{
	pthread_mutex_unlock(&registry_lock);
}

/*
 * The hit path does not test the fork flag: it compares the monitor's event
 * word with the value it last drained. In the child that word may live in a
 * mapping fork did not copy (the kernel monitor's ring), so point it at a
 * word that never equals what was drained: every call then takes the path
 * that checks the fork flag.
 */
static const uint32_t never_drained;

static void close_cache(struct mrc_cache *c, int why)
{
	mrc_store_relaxed(&c->closed, why);
	c->monitor_events = &never_drained;
	c->monitor_seen = 1;
}

static void after_fork_child(void)
{
	for (struct mrc_cache *c = registry_head; c; c = c->registry_next)
		close_cache(c, MRC_CLOSED_FORK);
	pthread_mutex_unlock(&registry_lock);
}

static void install_atfork(void)
{
	atfork_ret = -pthread_atfork(before_fork, after_fork_parent,
				     after_fork_child);
}

int mrc_registry_add(struct mrc_cache *cache)
{
	pthread_once(&registry_once, install_atfork);
	if (atfork_ret)
		return atfork_ret;
	pthread_mutex_lock(&registry_lock);
	cache->registry_next = registry_head;
	registry_head = cache;
	pthread_mutex_unlock(&registry_lock);
	return 0;
}

static void unlink_live(struct mrc_cache *cache)
{
	for (struct mrc_cache **p = &registry_head; *p; p = &(*p)->registry_next) {
		if (*p == cache) {
			*p = cache->registry_next;
			break;
		}
	}
}

/**
 * mrc_registry_bury() - turn a released cache into a tombstone.
 *
 * Every later call with it fails in the check it makes for fork: the hit
 * path never matches the event word, and the rest see the closed word.
 */
void mrc_registry_bury(struct mrc_cache *cache)
{
	pthread_mutex_lock(&registry_lock);
	unlink_live(cache);
	close_cache(cache, MRC_CLOSED_DESTROYED);
	cache->deferred = NULL;
	cache->registry_next = tombstones;
	tombstones = cache;
	pthread_mutex_unlock(&registry_lock);
}
