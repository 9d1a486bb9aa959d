// SPDX-License-Identifier: BSD-2-Clause
/*
 * ibv_rereg_mr() on the preload's MRs. They are copies libibverbs never
 * made, so the call is emulated: register what the MR is to become (from
 * the cache of the new PD and access when that is cacheable, else a
 * libibverbs MR of its own), and only then release what stood behind it.
 * The program keeps the same struct ibv_mr pointer, now with the new
 * addr, length, pd and keys, as libibverbs updates its own MRs.
 *
 * Return codes are libibverbs' (rdma-core 44, libibverbs/verbs.c): bad
 * flags, CHANGE_TRANSLATION without an address or length, or access flags
 * without CHANGE_ACCESS give IBV_REREG_MR_ERR_INPUT with errno EINVAL
 * before anything changes; a registration that fails gives
 * IBV_REREG_MR_ERR_CMD with its errno. Stricter than libibverbs: on
 * IBV_REREG_MR_ERR_CMD the MR is left exactly as it was, still usable
 * (libibverbs leaves it undefined, to be deregistered).
 *
 * MRs libibverbs made pass straight through.
 */
#include <errno.h>
#include <stdio.h>

#include "preload.h"

/* libibverbs' own checks, made before it asks the driver. */
static int bad_input(int flags, void *addr, size_t length, int access)
{
	if (flags & ~IBV_REREG_MR_FLAGS_SUPPORTED)
		return 1;
	if ((flags & IBV_REREG_MR_CHANGE_TRANSLATION) && (!addr || !length))
		return 1;
	return access && !(flags & IBV_REREG_MR_CHANGE_ACCESS);
}

/* Move the new binding into @p; its arena fields stay. */
static void take_binding(struct preload_mr *p, const struct preload_mr *from)
{
	p->mr = from->mr;
	p->cache = from->cache;
	p->region = from->region;
	p->real = from->real;
	p->access = from->access;
}

static int emulate(struct preload_mr *p, int flags, struct ibv_pd *pd,
		   void *addr, size_t length, int access)
{
	struct preload_mr next = *p;
	int chg_pd = flags & IBV_REREG_MR_CHANGE_PD;
	int chg_tr = flags & IBV_REREG_MR_CHANGE_TRANSLATION;
	struct ibv_pd *npd = chg_pd ? pd : p->mr.pd;
	int ret;

	/* The kernel refuses these (ib_uverbs_rereg_mr): EINVAL. */
	if (!flags || !npd) {
		errno = EINVAL;
		return IBV_REREG_MR_ERR_CMD;
	}
	ret = preload_mr_bind(&next, npd, chg_tr ? addr : p->mr.addr,
			      chg_tr ? length : p->mr.length,
			      flags & IBV_REREG_MR_CHANGE_ACCESS ?
			      (unsigned int)access : p->access);
	if (ret) {
		errno = ret;
		return IBV_REREG_MR_ERR_CMD;
	}
	ret = preload_mr_unbind(p);
	if (ret)
		fprintf(stderr, "mrcache-preload: ibv_rereg_mr: the old registration of %p could not be released (%d); it stays until exit\n",
			p->mr.addr, ret);
	take_binding(p, &next);
	return 0;
}

int ibv_rereg_mr(struct ibv_mr *mr, int flags, struct ibv_pd *pd, void *addr,
		 size_t length, int access)
{
	struct preload_mr *p;
	int ret;

	if (!preload_ready())
		return IBV_REREG_MR_ERR_INPUT;
	p = mr ? preload_mr_claim(mr) : NULL;
	if (p == ERR_PRELOAD_MR_DEAD) {
		errno = EINVAL;
		return IBV_REREG_MR_ERR_INPUT;
	}
	if (!p)
		return preload_real.rereg_mr(mr, flags, pd, addr, length,
					     access);
	if (bad_input(flags, addr, length, access)) {
		errno = EINVAL;
		ret = IBV_REREG_MR_ERR_INPUT;
	} else {
		ret = emulate(p, flags, pd, addr, length, access);
	}
	preload_mr_publish(p);
	return ret;
}
