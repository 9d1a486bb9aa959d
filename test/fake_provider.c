// SPDX-License-Identifier: BSD-2-Clause
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fake_provider.h"

static int faulted(const struct fake_provider *fake, uint64_t addr,
		   uint64_t len, uint32_t access)
{
	for (size_t i = 0; i < fake->nfaults; i++) {
		const struct fake_fault *f = &fake->faults[i];

		if (addr < f->end && addr + len > f->start && (access & f->access))
			return 1;
	}
	return 0;
}

/* Handles are 1-based indices into regs, so a bad handle is detectable. */
static int fake_reg(void *ctx, void *addr, size_t len, uint32_t access,
		    void **handle)
{
	struct fake_provider *fake = ctx;
	int ret = 0;

	if (fake->reg_hook)
		fake->reg_hook(fake->reg_hook_arg);
	pthread_mutex_lock(&fake->lock);
	if (fake->fail_count > 0) {
		fake->fail_count--;
		ret = fake->fail_next;
	} else if (faulted(fake, (uintptr_t)addr, len, access)) {
		ret = -EFAULT;
	} else if (fake->byte_limit && fake->live_bytes + len > fake->byte_limit) {
		ret = -ENOMEM;
	} else if (fake->count == fake->capacity) {
		size_t cap = fake->capacity ? 2 * fake->capacity : 64;
		struct fake_reg *grown = realloc(fake->regs, cap * sizeof(*grown));

		if (!grown) {
			ret = -ENOMEM;
		} else {
			fake->regs = grown;
			fake->capacity = cap;
		}
	}
	if (!ret) {
		fake->regs[fake->count] = (struct fake_reg){
			(uintptr_t)addr, len, access, 1
		};
		*handle = (void *)(uintptr_t)(++fake->count);
		fake->live++;
		fake->live_bytes += len;
	}
	pthread_mutex_unlock(&fake->lock);
	return ret;
}

static int fake_dereg(void *ctx, void *handle)
{
	struct fake_provider *fake = ctx;
	size_t i = (uintptr_t)handle;
	int ret = 0;

	pthread_mutex_lock(&fake->lock);
	if (i == 0 || i > fake->count) {
		ret = -EINVAL;
	} else if (!fake->regs[i - 1].live) {
		fake->double_deregs++;
		ret = -EINVAL;
	} else {
		fake->regs[i - 1].live = 0;
		fake->live--;
		fake->live_bytes -= fake->regs[i - 1].len;
		fake->deregs++;
	}
	pthread_mutex_unlock(&fake->lock);
	if (fake->dereg_hook)
		fake->dereg_hook(fake->dereg_hook_arg);
	return ret;
}

void fake_init(struct fake_provider *fake)
{
	memset(fake, 0, sizeof(*fake));
	pthread_mutex_init(&fake->lock, NULL);
}

void fake_fini(struct fake_provider *fake)
{
	free(fake->regs);
	pthread_mutex_destroy(&fake->lock);
}

size_t fake_read(struct fake_provider *fake, const size_t *counter)
{
	size_t n;

	pthread_mutex_lock(&fake->lock);
	n = *counter;
	pthread_mutex_unlock(&fake->lock);
	return n;
}

int fake_create_status(struct fake_provider *fake,
		       const struct mrc_cache_attr *attr)
{
	struct mrc_provider prov = fake_provider(fake);
	struct mrc_cache *c = NULL;
	int ret = mrc_cache_create(&prov, attr, &c);

	if (!ret)
		mrc_cache_destroy(c);
	return ret;
}

void fake_teardown(struct mrc_cache *cache, struct fake_provider *fake)
{
	if (cache)
		ck_assert_int_eq(mrc_cache_destroy(cache), 0);
	/* Everything registered was deregistered exactly once. */
	ck_assert_uint_eq(fake->live, 0);
	ck_assert_uint_eq(fake->double_deregs, 0);
	fake_fini(fake);
}

struct mrc_provider fake_provider(struct fake_provider *fake)
{
	return (struct mrc_provider){
		.name = "fake", .reg = fake_reg, .dereg = fake_dereg, .ctx = fake,
	};
}

const struct fake_reg *fake_reg_of(struct fake_provider *fake,
				   const struct mrc_region *region)
{
	size_t i = (uintptr_t)mrc_region_handle(region);

	return i && i <= fake->count ? &fake->regs[i - 1] : NULL;
}

void fake_add_fault(struct fake_provider *fake, const void *addr, size_t len,
		    uint32_t access)
{
	struct fake_fault *f;

	pthread_mutex_lock(&fake->lock);
	if (fake->nfaults == FAKE_MAX_FAULTS)
		abort();	/* a test asking for more is wrong */
	f = &fake->faults[fake->nfaults++];
	f->start = (uintptr_t)addr;
	f->end = (uintptr_t)addr + len;
	f->access = access;
	pthread_mutex_unlock(&fake->lock);
}

int fake_reserve(struct fake_provider *fake, size_t n)
{
	struct fake_reg *grown = realloc(fake->regs, n * sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	fake->regs = grown;
	fake->capacity = n;
	return 0;
}

int fake_handle_live(struct fake_provider *fake, void *handle)
{
	size_t i = (uintptr_t)handle;
	int live;

	pthread_mutex_lock(&fake->lock);
	live = i && i <= fake->count && fake->regs[i - 1].live;
	pthread_mutex_unlock(&fake->lock);
	return live;
}
