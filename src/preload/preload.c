// SPDX-License-Identifier: BSD-2-Clause
/*
 * libmrcache-preload: LD_PRELOAD it and an unmodified ibverbs program's
 * per-message ibv_reg_mr()/ibv_dereg_mr() become cache hits.
 *
 * What is wrapped. In rdma-core 44 every registration ends in
 * ibv_reg_mr_iova2@IBVERBS_1.8: ibv_reg_mr@IBVERBS_1.1 and
 * ibv_reg_mr_iova@IBVERBS_1.7 jump to it through libibverbs' PLT, the
 * header's inline __ibv_reg_mr() calls it for optional access flags, and
 * the IBVERBS_1.0 compatibility ibv_reg_mr() calls it too. So only it is
 * wrapped, and every application call is seen exactly once, whichever
 * symbol and version the application linked. ibv_dereg_mr@IBVERBS_1.1 is
 * wrapped the same way (the 1.0 one calls it), and ibv_dealloc_pd to
 * release that PD's idle registrations first, and ibv_rereg_mr@IBVERBS_1.1
 * so it refuses the preload's own MRs (they are copies libibverbs cannot
 * re-register; emulating it is left to do). The wrappers carry the
 * versions of the symbols they replace (preload.map), so a versioned
 * reference binds to them. The real functions come from dlvsym().
 *
 * What is cached: a registration with identity iova, no remote access
 * (unless MRCACHE_PRELOAD_REMOTE=1), and none of ON_DEMAND, ZERO_BASED,
 * MW_BIND; not in a forked child. Everything else passes straight
 * through to libibverbs, as does a cache failure (so the application
 * gets libibverbs' own errno).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mrcache.h"
#include "preload.h"

struct preload_real preload_real;
int preload_forked;

static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;
static int resolve_ret;
static int allow_remote;

#define REMOTE_ACCESS (IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ | \
		       IBV_ACCESS_REMOTE_ATOMIC)
#define UNCACHEABLE (IBV_ACCESS_ON_DEMAND | IBV_ACCESS_ZERO_BASED | \
		     IBV_ACCESS_MW_BIND)

static void *real_symbol(const char *name, const char *version)
{
	void *f = dlvsym(RTLD_NEXT, name, version);

	if (!f)
		f = dlsym(RTLD_NEXT, name);
	if (!f)
		fprintf(stderr, "mrcache-preload: cannot find %s@%s in libibverbs: %s\n",
			name, version, dlerror());
	return f;
}

static void after_fork_child(void)
{
	preload_forked = 1;
}

static void env_bool(const char *name, int *value)
{
	const char *v = getenv(name);

	*value = v && (!strcmp(v, "1") || !strcmp(v, "yes") ||
		       !strcmp(v, "on") || !strcmp(v, "true"));
}

static void resolve(void)
{
	preload_real.reg_mr_iova2 = real_symbol("ibv_reg_mr_iova2", "IBVERBS_1.8");
	preload_real.dereg_mr = real_symbol("ibv_dereg_mr", "IBVERBS_1.1");
	preload_real.dealloc_pd = real_symbol("ibv_dealloc_pd", "IBVERBS_1.1");
	preload_real.rereg_mr = real_symbol("ibv_rereg_mr", "IBVERBS_1.1");
	if (!preload_real.reg_mr_iova2 || !preload_real.dereg_mr ||
	    !preload_real.dealloc_pd || !preload_real.rereg_mr)
		resolve_ret = -ENOSYS;
	env_bool("MRCACHE_PRELOAD_REMOTE", &allow_remote);
	pthread_atfork(NULL, NULL, after_fork_child);
}

static int ready(void)
{
	pthread_once(&resolve_once, resolve);
	if (resolve_ret)
		errno = ENOSYS;
	return resolve_ret == 0;
}

static int cacheable(struct ibv_pd *pd, void *addr, size_t length,
		     uint64_t iova, unsigned int access)
{
	if (!pd || !addr || !length || iova != (uintptr_t)addr)
		return 0;
	if ((access & UNCACHEABLE) || preload_forked)
		return 0;
	if (!(access & REMOTE_ACCESS))
		return 1;
	/*
	 * Remote access opted in: exact, page-aligned ranges only. The cache
	 * registers whole pages, and the rkey must reach exactly what the
	 * application registered.
	 */
	return allow_remote && !(((uintptr_t)addr | length) &
				 ((uintptr_t)sysconf(_SC_PAGESIZE) - 1));
}

/* A cached range wider than asked would widen what a peer reaches. */
static int too_wide(const struct mrc_region *r, void *addr, size_t length,
		    unsigned int access)
{
	return (access & REMOTE_ACCESS) &&
	       (mrc_region_addr(r) != addr || mrc_region_length(r) != length);
}

static struct ibv_mr *cached_reg(struct ibv_pd *pd, void *addr,
				 size_t length, unsigned int access)
{
	struct mrc_cache *cache = preload_cache_get(pd, access);
	struct mrc_region *r;
	struct preload_mr *p;

	if (!cache || mrc_get(cache, addr, length, access, &r))
		return NULL;
	p = too_wide(r, addr, length, access) ? NULL : malloc(sizeof(*p));
	if (!p) {
		mrc_put(cache, r);
		return NULL;
	}
	p->mr = *mrc_region_mr(r);
	p->mr.addr = addr;
	p->mr.length = length;
	p->cache = cache;
	p->region = r;
	preload_mr_insert(p);
	return &p->mr;
}

struct ibv_mr *ibv_reg_mr_iova2(struct ibv_pd *pd, void *addr, size_t length,
				uint64_t iova, unsigned int access)
{
	struct ibv_mr *mr;

	if (!ready())
		return NULL;
	if (cacheable(pd, addr, length, iova, access)) {
		mr = cached_reg(pd, addr, length, access);
		if (mr)
			return mr;
	}
	preload_count_passthrough();
	return preload_real.reg_mr_iova2(pd, addr, length, iova, access);
}

int ibv_dereg_mr(struct ibv_mr *mr)
{
	struct preload_mr *p;
	int ret = 0;

	if (!ready())
		return ENOSYS;
	p = mr ? preload_mr_remove(mr) : NULL;
	if (!p)
		return preload_real.dereg_mr(mr);
	/* In a forked child the parent's cache is closed: only free. */
	if (!preload_forked && mrc_put(p->cache, p->region))
		ret = EINVAL;
	free(p);
	return ret;
}

int ibv_dealloc_pd(struct ibv_pd *pd)
{
	if (!ready())
		return ENOSYS;
	if (pd && !preload_forked)
		preload_caches_flush_pd(pd);
	return preload_real.dealloc_pd(pd);
}

/*
 * The preload's MRs are copies, not libibverbs objects: refuse them with
 * the "bad input, MR unchanged" answer rather than let the real function
 * read past the copy. Everything else passes through.
 */
int ibv_rereg_mr(struct ibv_mr *mr, int flags, struct ibv_pd *pd, void *addr,
		 size_t length, int access)
{
	if (!ready())
		return IBV_REREG_MR_ERR_INPUT;
	if (mr && preload_mr_is_ours(mr)) {
		errno = EOPNOTSUPP;
		return IBV_REREG_MR_ERR_INPUT;
	}
	return preload_real.rereg_mr(mr, flags, pd, addr, length, access);
}
