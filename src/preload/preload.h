/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * libmrcache-preload: the parts shared by its files.
 *
 *   preload.c  the wrapped verbs symbols and the real ones behind them
 *   caches.c   one cache per (PD, access), the provider, the statistics
 *   lookup.c   the caches' lock-free index for the hit path (lookup.h)
 *   mrs.c      the application's struct ibv_mr copies and their arenas
 *   rereg.c    ibv_rereg_mr() emulated on those copies
 *   fork.c     fork safety: idle registrations flushed before fork()
 *   malloc.c   registration-friendly malloc settings (opt-in)
 */
#ifndef MRCACHE_PRELOAD_H
#define MRCACHE_PRELOAD_H

#include <stddef.h>
#include <stdint.h>

#include <infiniband/verbs.h>

struct mrc_cache;
struct mrc_region;

/* The functions of libibverbs the wrappers stand in front of. */
struct preload_real {
	struct ibv_mr *(*reg_mr_iova2)(struct ibv_pd *pd, void *addr,
				       size_t length, uint64_t iova,
				       unsigned int access);
	int (*dereg_mr)(struct ibv_mr *mr);
	int (*dealloc_pd)(struct ibv_pd *pd);
	int (*rereg_mr)(struct ibv_mr *mr, int flags, struct ibv_pd *pd,
			void *addr, size_t length, int access);
	int (*close_device)(struct ibv_context *context);
	int (*fork_init)(void);
	enum ibv_fork_status (*is_fork_initialized)(void);	/* may be NULL */
};

extern struct preload_real preload_real;
extern int preload_forked;	/* set in a forked child: pass through */
extern int preload_resolved;	/* the real functions are all there */

int preload_resolve(void);

/* Return: 1 when the real functions are there; else 0, errno ENOSYS. */
static inline int preload_ready(void)
{
	/* Acquire: pairs with the release in resolve() (preload.c). */
	if (__builtin_expect(__atomic_load_n(&preload_resolved,
					     __ATOMIC_ACQUIRE), 1))
		return 1;
	return preload_resolve();
}

struct mrc_cache *preload_cache_get(struct ibv_pd *pd, unsigned int access);
int preload_caches_flush_pd(struct ibv_pd *pd);
void preload_caches_flush_context(struct ibv_context *context);
void preload_caches_flush_idle(void);
void preload_count_passthrough(void);

/* fork.c: the fork handler goes in after libmrcache's (first cache). */
void preload_fork_handler_install(void);
int preload_fork_handler_ready(void);

enum preload_mr_state {
	PRELOAD_MR_DEAD = 0,	/* deregistered: kept for reuse */
	PRELOAD_MR_LIVE,	/* the program holds it */
	PRELOAD_MR_BUSY,	/* being deregistered or re-registered */
};

/*
 * An application's MR made by the preload: its copy, and what stands
 * behind it: a cache's reference (cache, region), or after an
 * ibv_rereg_mr() to something the caches do not take, a libibverbs MR of
 * its own (real).
 */
struct preload_mr {
	struct ibv_mr mr;	/* first: the application holds &mr */
	struct mrc_cache *cache;
	struct mrc_region *region;
	struct ibv_mr *real;
	unsigned int access;	/* as the program asked */
	int state;		/* enum preload_mr_state, atomic (mrs.c) */
	uint32_t index;		/* in the arenas, for good */
	uint32_t dead_next;	/* index of the next on the dead stack */
};

#define ERR_PRELOAD_MR_DEAD ((struct preload_mr *)(uintptr_t)1)

struct preload_mr *preload_mr_alloc(void);
void preload_mr_publish(struct preload_mr *p);
void preload_mr_recycle(struct preload_mr *p);
struct preload_mr *preload_mr_claim(const struct ibv_mr *mr);

/* preload.c: what stands behind a copy */
int preload_mr_bind(struct preload_mr *p, struct ibv_pd *pd, void *addr,
		    size_t length, unsigned int access);
int preload_mr_unbind(struct preload_mr *p);

#endif /* MRCACHE_PRELOAD_H */
