// SPDX-License-Identifier: BSD-2-Clause
/* The strategies without a cache, and the table of all of them. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mrcache.h"
#include "strategy.h"

const char *const strategy_names[NSTRATEGIES] = {
	"prereg", "static", "dynamic", "pipelined",
	"mrc_kmod", "mrc_hooks", "mrc_manual", "ucx_rcache", "ofi_cache",
};

int strategy_by_name(const char *name)
{
	for (int i = 0; i < NSTRATEGIES; i++)
		if (!strcmp(name, strategy_names[i]))
			return i;
	return -1;
}

static int reg_mr(struct strategy *s, void *p, size_t len, struct ibv_mr **out)
{
	errno = 0;
	*out = ibv_reg_mr(s->ep->pd, p, len, BENCH_ACCESS);
	if (*out)
		return 0;
	fprintf(stderr, "mrcache-bench: ibv_reg_mr(%p, %zu): %s\n", p, len,
		strerror(errno ? errno : EIO));
	return errno ? -errno : -EIO;
}

static int dynamic_acquire(struct strategy *s, struct wbuf *w, void *p, size_t len,
			   struct reg *r)
{
	struct ibv_mr *mr;
	int ret = reg_mr(s, p, len, &mr);

	(void)w;
	if (!ret)
		*r = (struct reg){ mr->lkey, mr->rkey, mr };
	return ret;
}

static void dynamic_release(struct strategy *s, struct reg *r)
{
	(void)s;
	ibv_dereg_mr(r->handle);
}

/* Pre-registered: the buffer's MR was made when the buffer was. */
static int prereg_attach(struct strategy *s, struct wbuf *w, size_t len)
{
	struct ibv_mr *mr;
	int ret = reg_mr(s, w->p, len, &mr);

	w->owner = ret ? NULL : mr;
	return ret;
}

static void prereg_detach(struct strategy *s, struct wbuf *w, size_t len)
{
	(void)s, (void)len;
	if (w->owner)
		ibv_dereg_mr(w->owner);
	w->owner = NULL;
}

static int prereg_acquire(struct strategy *s, struct wbuf *w, void *p, size_t len,
			  struct reg *r)
{
	struct ibv_mr *mr = w->owner;

	(void)s, (void)p, (void)len;
	*r = (struct reg){ mr->lkey, mr->rkey, mr };
	return 0;
}

static void no_release(struct strategy *s, struct reg *r)
{
	(void)s, (void)r;
}

void strategy_set_prereg(struct strategy *s)
{
	s->attach = prereg_attach;
	s->detach = prereg_detach;
	s->tracks_churn = 1;
}

static void init_plain(struct strategy *s)
{
	s->available = 1;
	switch (s->id) {
	case ST_PREREG:
		s->acquire = prereg_acquire;
		s->release = no_release;
		strategy_set_prereg(s);
		break;
	case ST_DYNAMIC:
	case ST_PIPELINED:
		s->acquire = dynamic_acquire;
		s->release = dynamic_release;
		break;
	default:	/* static: xfer.c copies through the bounce buffer */
		break;
	}
}

void strategy_set_cache(struct strategy *s, void *state, const struct cache_calls *calls)
{
	s->state = state;
	s->available = 1;
	s->acquire = calls->acquire;
	s->release = calls->release;
	s->counts = calls->counts;
	s->fini = calls->fini;
}

int strategy_not_built(struct strategy *s, const char *library, const char *option)
{
	snprintf(s->why, sizeof(s->why), "built without %s (configure %s)", library, option);
	return -ENOTSUP;
}

int strategies_init(struct strategy *all, struct ep *ep, unsigned int mask, int cache_regions)
{
	static const int monitors[] = {
		[ST_MRC_KMOD] = MRC_MONITOR_KMOD, [ST_MRC_HOOKS] = MRC_MONITOR_HOOKS,
		[ST_MRC_MANUAL] = MRC_MONITOR_MANUAL,
	};

	for (int i = 0; i < NSTRATEGIES; i++) {
		struct strategy *s = &all[i];

		*s = (struct strategy){ .id = (enum strategy_id)i, .name = strategy_names[i], .ep = ep };
		if (!(mask & (1u << i))) {
			snprintf(s->why, sizeof(s->why), "not selected");
			continue;
		}
		if (i < ST_MRC_KMOD)
			init_plain(s);
		else if (i < ST_UCX)
			strategy_mrcache_init(s, monitors[i], cache_regions);
		else if (i == ST_UCX)
			strategy_ucx_init(s, cache_regions);
		else if (all[ST_UCX].available)
			snprintf(s->why, sizeof(s->why), "ucx_rcache runs here, and libfabric's "
				 "memhooks would take UCX's unmap events (libc patched twice): "
				 "run -S prereg,ofi_cache");
		else
			strategy_ofi_init(s, cache_regions);
		if (!s->available && mask & (1u << i))
			fprintf(stderr, "mrcache-bench: %s not measured: %s\n", s->name, s->why);
	}
	return 0;
}

void strategies_fini(struct strategy *all)
{
	for (int i = 0; i < NSTRATEGIES; i++)
		if (all[i].available && all[i].fini)
			all[i].fini(&all[i]);
}
