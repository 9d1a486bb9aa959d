/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * libmrcache-preload: the parts shared by its files.
 *
 *   preload.c  the wrapped verbs symbols and the real ones behind them
 *   caches.c   one cache per (PD, access), the provider, the statistics
 *   mrs.c      the application's struct ibv_mr copies and their table
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
};

extern struct preload_real preload_real;
extern int preload_forked;	/* set in a forked child: pass through */

struct mrc_cache *preload_cache_get(struct ibv_pd *pd, unsigned int access);
int preload_caches_flush_pd(struct ibv_pd *pd);
void preload_count_passthrough(void);

/* An application's MR made by the preload: its copy and the reference. */
struct preload_mr {
	struct ibv_mr mr;	/* first: the application holds &mr */
	struct mrc_cache *cache;
	struct mrc_region *region;
	struct preload_mr *next;	/* in its table bucket */
};

void preload_mr_insert(struct preload_mr *p);
struct preload_mr *preload_mr_remove(const struct ibv_mr *mr);
int preload_mr_is_ours(const struct ibv_mr *mr);

#endif /* MRCACHE_PRELOAD_H */
