/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Check assertions around the cache calls every test makes, so a failing
 * call reports the library's own message.
 */
#ifndef MRC_CACHE_CHECK_H
#define MRC_CACHE_CHECK_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mrcache.h"

static inline struct mrc_region *cache_get_ok(struct mrc_cache *cache,
					      const void *addr, size_t len,
					      uint32_t access)
{
	struct mrc_region *r = NULL;
	int ret = mrc_get(cache, addr, len, access, &r);

	ck_assert_msg(ret == 0, "mrc_get(%p, %zu) = %d: %s", addr, len, ret,
		      mrc_last_error());
	return r;
}

static inline void cache_put_ok(struct mrc_cache *cache, struct mrc_region *r)
{
	int ret = mrc_put(cache, r);

	ck_assert_msg(ret == 0, "mrc_put = %d: %s", ret, mrc_last_error());
}

static inline struct mrc_stats cache_stats_ok(struct mrc_cache *cache)
{
	struct mrc_stats s;

	ck_assert_int_eq(mrc_cache_stats(cache, &s), 0);
	return s;
}

/* Run @s and turn the result into an exit status. */
static inline int check_run_suite_as(Suite *s, enum fork_status fork)
{
	SRunner *sr = srunner_create(s);
	int failed;

	if (fork != CK_FORK_GETENV)
		srunner_set_fork_status(sr, fork);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

static inline int check_run_suite(Suite *s)
{
	return check_run_suite_as(s, CK_FORK_GETENV);
}

/* For tests whose cases share threads or state across the process. */
static inline int check_run_suite_nofork(Suite *s)
{
	return check_run_suite_as(s, CK_NOFORK);
}

/*
 * Must every test run here? In the VM (MRCACHE_IN_VM) a test has root, the
 * module, rxe and the NUMA nodes it asked for; MRCACHE_REQUIRE_VM=1 (CI)
 * says nothing may be skipped.
 */
static inline int test_must_run(void)
{
	const char *required = getenv("MRCACHE_REQUIRE_VM");

	return getenv("MRCACHE_IN_VM") || (required && !strcmp(required, "1"));
}

/*
 * A test that cannot run here (@why says what it needs) fails where it
 * must run; elsewhere it says loudly that its pass proves nothing, and the
 * caller returns. Check has no skip status for one test.
 */
#define cannot_run_here(why) do { \
	ck_assert_msg(!test_must_run(), \
		      "%s: cannot run here, and in the VM or with MRCACHE_REQUIRE_VM=1 every test must run", \
		      why); \
	fprintf(stderr, "*** NOT RUN, this pass proves nothing: %s ***\n", why); \
} while (0)

#endif
