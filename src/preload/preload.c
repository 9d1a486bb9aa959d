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
 * wrapped the same way (the 1.0 one calls it); ibv_dealloc_pd and
 * ibv_close_device release the idle registrations the preload keeps on
 * that PD or device first; ibv_rereg_mr is emulated on the preload's own
 * MRs (rereg.c) and ibv_fork_init noted (fork.c). The wrappers carry the
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
int preload_resolved;

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
	preload_real.close_device = real_symbol("ibv_close_device", "IBVERBS_1.1");
	preload_real.fork_init = real_symbol("ibv_fork_init", "IBVERBS_1.1");
	/* Newer than the rest (rdma-core 35): looked for, not required. */
	preload_real.is_fork_initialized =
		dlvsym(RTLD_NEXT, "ibv_is_fork_initialized", "IBVERBS_1.13");
	if (!preload_real.reg_mr_iova2 || !preload_real.dereg_mr ||
	    !preload_real.dealloc_pd || !preload_real.rereg_mr ||
	    !preload_real.close_device || !preload_real.fork_init)
		resolve_ret = -ENOSYS;
	env_bool("MRCACHE_PRELOAD_REMOTE", &allow_remote);
	pthread_atfork(NULL, NULL, after_fork_child);
	/* Release: pairs with preload_ready()'s acquire (preload.h). */
	if (!resolve_ret)
		__atomic_store_n(&preload_resolved, 1, __ATOMIC_RELEASE);
}

/* preload_ready()'s first time (and every time when something is missing). */
int preload_resolve(void)
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

/* A cache's reference behind @p. Return: 0 or a positive errno. */
static int cached_bind(struct preload_mr *p, struct ibv_pd *pd, void *addr,
		       size_t length, unsigned int access)
{
	struct mrc_cache *cache = preload_cache_get(pd, access);
	struct mrc_region *r;
	int ret;

	if (!cache)
		return ENOMEM;
	ret = mrc_get(cache, addr, length, access, &r);
	if (ret)
		return -ret;
	if (too_wide(r, addr, length, access)) {
		mrc_put(cache, r);
		return EPERM;
	}
	p->mr = *mrc_region_mr(r);
	p->mr.addr = addr;
	p->mr.length = length;
	p->cache = cache;
	p->region = r;
	p->real = NULL;
	p->access = access;
	return 0;
}

/* A libibverbs MR of its own behind @p. Return: 0 or a positive errno. */
static int real_bind(struct preload_mr *p, struct ibv_pd *pd, void *addr,
		     size_t length, unsigned int access)
{
	struct ibv_mr *mr;

	errno = 0;
	mr = preload_real.reg_mr_iova2(pd, addr, length, (uintptr_t)addr,
				       access);
	if (!mr)
		return errno ? errno : EIO;
	p->mr = *mr;
	p->cache = NULL;
	p->region = NULL;
	p->real = mr;
	p->access = access;
	return 0;
}

/**
 * preload_mr_bind() - put a registration of [addr, +length) behind @p.
 *
 * A cache's when the registration is cacheable, else a libibverbs MR.
 * @p's application fields become exactly @pd, @addr, @length. Return: 0,
 * or a positive errno with @p's binding fields undefined (the caller
 * works on a copy).
 */
int preload_mr_bind(struct preload_mr *p, struct ibv_pd *pd, void *addr,
		    size_t length, unsigned int access)
{
	if (cacheable(pd, addr, length, (uintptr_t)addr, access) &&
	    !cached_bind(p, pd, addr, length, access))
		return 0;
	return real_bind(p, pd, addr, length, access);
}

/* Release what stands behind @p. Return: 0 or libibverbs' error. */
int preload_mr_unbind(struct preload_mr *p)
{
	if (p->real)
		return preload_real.dereg_mr(p->real);
	/* In a forked child the parent's cache is closed: only forget. */
	if (!preload_forked && mrc_put(p->cache, p->region))
		return EINVAL;
	return 0;
}

struct ibv_mr *ibv_reg_mr_iova2(struct ibv_pd *pd, void *addr, size_t length,
				uint64_t iova, unsigned int access)
{
	struct preload_mr *p;

	if (!preload_ready())
		return NULL;
	if (cacheable(pd, addr, length, iova, access)) {
		p = preload_mr_alloc();
		if (p && !cached_bind(p, pd, addr, length, access)) {
			preload_mr_publish(p);
			return &p->mr;
		}
		if (p)
			preload_mr_recycle(p);
	}
	preload_count_passthrough();
	return preload_real.reg_mr_iova2(pd, addr, length, iova, access);
}

/*
 * A second deregistration of the preload's MR fails with EINVAL, as
 * libibverbs' does when the kernel no longer knows the handle; the copy
 * itself stays readable (mrs.c), so nothing reads freed memory.
 */
int ibv_dereg_mr(struct ibv_mr *mr)
{
	struct preload_mr *p;
	int ret;

	if (!preload_ready())
		return ENOSYS;
	p = mr ? preload_mr_claim(mr) : NULL;
	if (p == ERR_PRELOAD_MR_DEAD)
		return EINVAL;
	if (!p)
		return preload_real.dereg_mr(mr);
	ret = preload_mr_unbind(p);
	if (ret) {
		preload_mr_publish(p);	/* still the program's */
		return ret;
	}
	preload_mr_recycle(p);
	return 0;
}

int ibv_dealloc_pd(struct ibv_pd *pd)
{
	if (!preload_ready())
		return ENOSYS;
	if (pd && !preload_forked)
		preload_caches_flush_pd(pd);
	return preload_real.dealloc_pd(pd);
}

/* The caches' registrations must go while the device can still take them. */
int ibv_close_device(struct ibv_context *context)
{
	if (!preload_ready())
		return -1;
	if (context && !preload_forked)
		preload_caches_flush_context(context);
	return preload_real.close_device(context);
}
