// SPDX-License-Identifier: BSD-2-Clause
/*
 * The table of MRs the preload handed out, so ibv_dereg_mr() can tell its
 * own copies from MRs made by libibverbs (which pass through). Looking a
 * foreign pointer up here never reads the memory it points at.
 *
 * One mutex over a chained hash: taken once per registration and once per
 * deregistration, never inside a cache call.
 */
#include <pthread.h>

#include "preload.h"

#define MR_BUCKETS 4096u

static struct preload_mr *buckets[MR_BUCKETS];
static pthread_mutex_t mr_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned int bucket_of(const void *p)
{
	uint64_t v = (uint64_t)(uintptr_t)p;

	/* malloc'ed objects: the low 4 bits carry nothing. */
	return (unsigned int)((v >> 4) ^ (v >> 16)) & (MR_BUCKETS - 1);
}

void preload_mr_insert(struct preload_mr *p)
{
	unsigned int b = bucket_of(&p->mr);

	pthread_mutex_lock(&mr_lock);
	p->next = buckets[b];
	buckets[b] = p;
	pthread_mutex_unlock(&mr_lock);
}

/* Return: whether @mr is one the preload handed out (and not yet put). */
int preload_mr_is_ours(const struct ibv_mr *mr)
{
	struct preload_mr *p;

	pthread_mutex_lock(&mr_lock);
	for (p = buckets[bucket_of(mr)]; p && &p->mr != mr; p = p->next)
		;
	pthread_mutex_unlock(&mr_lock);
	return p != NULL;
}

/* Return: the preload's MR behind @mr, unlinked; NULL if not ours. */
struct preload_mr *preload_mr_remove(const struct ibv_mr *mr)
{
	struct preload_mr **pp, *p;

	pthread_mutex_lock(&mr_lock);
	for (pp = &buckets[bucket_of(mr)]; (p = *pp); pp = &p->next) {
		if (&p->mr == mr) {
			*pp = p->next;
			break;
		}
	}
	pthread_mutex_unlock(&mr_lock);
	return p;
}
