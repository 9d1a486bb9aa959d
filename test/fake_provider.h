/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A counting provider for unit tests: records every registration, can be
 * told to fail, and checks that nothing is deregistered twice or leaked.
 */
#ifndef MRC_FAKE_PROVIDER_H
#define MRC_FAKE_PROVIDER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "mrcache.h"

struct fake_reg {
	uint64_t addr;
	uint64_t len;
	uint32_t access;
	int live;
};

/*
 * Registrations overlapping [start, end) with any of @access fail with
 * -EFAULT, as ibv_reg_mr fails over memory it cannot pin (unmapped, or not
 * writable for write access).
 */
struct fake_fault {
	uint64_t start;
	uint64_t end;
	uint32_t access;
};

#define FAKE_MAX_FAULTS 4

struct fake_provider {
	pthread_mutex_t lock;
	struct fake_reg *regs;
	size_t count;		/* registrations ever made */
	size_t capacity;
	size_t live;		/* registered now */
	uint64_t live_bytes;
	size_t deregs;
	size_t double_deregs;	/* must stay 0 */
	int fail_next;		/* -errno returned by the next reg calls */
	int fail_count;		/* ... this many times */
	uint64_t byte_limit;	/* fail with -ENOMEM past this, 0 = none */
	struct fake_fault faults[FAKE_MAX_FAULTS];
	size_t nfaults;
	/* Called at the start of every reg call (under the cache lock). */
	void (*reg_hook)(void *arg);
	void *reg_hook_arg;
	/* Called at the end of every dereg call (under the cache lock). */
	void (*dereg_hook)(void *arg);
	void *dereg_hook_arg;
};

void fake_init(struct fake_provider *fake);
void fake_fini(struct fake_provider *fake);
/* One of @fake's counters (&fake->count, &fake->live), read under its lock. */
size_t fake_read(struct fake_provider *fake, const size_t *counter);
/* mrc_cache_create()'s result with @attr; a cache made is destroyed. */
int fake_create_status(struct fake_provider *fake,
		       const struct mrc_cache_attr *attr);
/* A test's end: destroy @cache (if any), assert nothing leaked or was
 * deregistered twice, fake_fini(). */
void fake_teardown(struct mrc_cache *cache, struct fake_provider *fake);
struct mrc_provider fake_provider(struct fake_provider *fake);
/* The registration behind a region's handle. */
const struct fake_reg *fake_reg_of(struct fake_provider *fake,
				   const struct mrc_region *region);

/* Fail registrations over [addr, +len) that ask for any of @access. */
void fake_add_fault(struct fake_provider *fake, const void *addr, size_t len,
		    uint32_t access);

/* Preallocate room for @n registrations (no realloc under threads). */
int fake_reserve(struct fake_provider *fake, size_t n);
/* Is the registration behind @handle still registered? Takes the lock. */
int fake_handle_live(struct fake_provider *fake, void *handle);

#endif
