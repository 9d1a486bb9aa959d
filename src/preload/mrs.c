// SPDX-License-Identifier: BSD-2-Clause
/*
 * The preload's struct ibv_mr copies, and the table that tells them from
 * MRs made by libibverbs (which pass through). Looking a foreign pointer
 * up here never reads the memory it points at.
 *
 * A copy is never given back to malloc: after ibv_dereg_mr() it stays in
 * the table, dead, until a later registration reuses it. So a second
 * ibv_dereg_mr() of the same MR finds it dead and fails with EINVAL
 * instead of handing libibverbs a freed copy whose handle is still the
 * cached registration's (which would deregister it behind the cache's
 * back, and free the copy twice). The memory kept is the peak number of
 * MRs the program held at once.
 *
 * One mutex over a chained hash: taken once per registration and once per
 * deregistration, never inside a cache call.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "preload.h"

#define MR_BUCKETS 4096u

static struct preload_mr *buckets[MR_BUCKETS];
static struct preload_mr *dead_list;	/* dead copies, linked by .free_next */
static pthread_mutex_t mr_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned int bucket_of(const void *p)
{
	uint64_t v = (uint64_t)(uintptr_t)p;

	/* malloc'ed objects: the low 4 bits carry nothing. */
	return (unsigned int)((v >> 4) ^ (v >> 16)) & (MR_BUCKETS - 1);
}

static struct preload_mr *find_locked(const struct ibv_mr *mr)
{
	struct preload_mr *p;

	for (p = buckets[bucket_of(mr)]; p && &p->mr != mr; p = p->next)
		;
	return p;
}

/* Return: a dead copy to fill in (in the table, not yet live), or NULL. */
struct preload_mr *preload_mr_alloc(void)
{
	struct preload_mr *p;
	unsigned int b;

	pthread_mutex_lock(&mr_lock);
	p = dead_list;
	if (p)
		dead_list = p->free_next;
	pthread_mutex_unlock(&mr_lock);
	if (p)
		return p;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	b = bucket_of(&p->mr);
	pthread_mutex_lock(&mr_lock);
	p->next = buckets[b];
	buckets[b] = p;
	pthread_mutex_unlock(&mr_lock);
	return p;
}

/* The copy is filled in: hand it out (again). */
void preload_mr_publish(struct preload_mr *p)
{
	pthread_mutex_lock(&mr_lock);
	p->state = PRELOAD_MR_LIVE;
	pthread_mutex_unlock(&mr_lock);
}

/* Nobody holds it (again): back on the dead list for reuse. */
void preload_mr_recycle(struct preload_mr *p)
{
	pthread_mutex_lock(&mr_lock);
	p->state = PRELOAD_MR_DEAD;
	p->free_next = dead_list;
	dead_list = p;
	pthread_mutex_unlock(&mr_lock);
}

/*
 * Claim a live copy for deregistration or re-registration: it is BUSY
 * until published or recycled, so a racing second call fails cleanly.
 * Return: the copy; NULL when @mr is not the preload's (pass it
 * through); or ERR_PRELOAD_MR_DEAD when it was, and is no longer live.
 */
struct preload_mr *preload_mr_claim(const struct ibv_mr *mr)
{
	struct preload_mr *p;

	pthread_mutex_lock(&mr_lock);
	p = find_locked(mr);
	if (p && p->state != PRELOAD_MR_LIVE)
		p = ERR_PRELOAD_MR_DEAD;
	else if (p)
		p->state = PRELOAD_MR_BUSY;
	pthread_mutex_unlock(&mr_lock);
	return p;
}
