// SPDX-License-Identifier: BSD-2-Clause
/*
 * The hooks monitor next to UCX's own memory hooks (ucm), with the real
 * installed UCX: ucp_init() with its defaults (memory events on) and a ucm
 * VM_UNMAPPED handler. Both must see every event: for munmap, for free()
 * of a large block and for brk shrinking, ucm's callback fires with the
 * range and mrcache drops its registration before the call returns.
 * syscall(SYS_munmap) is checked for mrcache only (ucm does not hook
 * syscall(); the test prints whether ucm saw it).
 *
 * UCX is loaded with dlopen so that each order can be tested in a fresh
 * process (check forks a child per test): UCX loaded and initialized
 * before the first cache (its patches are there when ours go in, and ours
 * chain to them), and after it (UCX writes its patches over ours; ours are
 * put back in front at the next registration or drain).
 */
#include <check.h>
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ucm/api/ucm.h>
#include <ucp/api/ucp.h>

#include "cache_check.h"
#include "fake_provider.h"
#include "mrcache.h"

static struct fake_provider fake;
static struct mrc_cache *cache;
static size_t page;
static ucp_context_h ucp;

/* What ucm reported: unmapped events overlapping the watched range. */
static uint64_t watch_start, watch_end;
static int ucm_seen;

static void on_ucm_event(ucm_event_type_t type, ucm_event_t *ev, void *arg)
{
	uint64_t a = (uintptr_t)ev->vm_unmapped.address;

	(void)arg;
	if (getenv("HOOKS_UCX_DEBUG"))
		fprintf(stderr, "ucm event %d %#lx+%zu\n", type, (unsigned long)a, ev->vm_unmapped.size);
	if (type == UCM_EVENT_VM_UNMAPPED && a < watch_end &&
	    a + ev->vm_unmapped.size > watch_start)
		__atomic_fetch_add(&ucm_seen, 1, __ATOMIC_RELAXED);
}

static void *sym(void *lib, const char *name)
{
	void *f = dlsym(lib, name);

	ck_assert_msg(f != NULL, "%s: %s", name, dlerror());
	return f;
}

/* Load UCX, start a ucp context with its defaults, add a ucm handler. */
static void start_ucx(void)
{
	void *lib = dlopen("libucp.so.0", RTLD_NOW | RTLD_GLOBAL);
	ucs_status_t (*config_read)(const char *, const char *, ucp_config_t **);
	ucs_status_t (*init)(unsigned, unsigned, const ucp_params_t *,
			     const ucp_config_t *, ucp_context_h *);
	void (*config_release)(ucp_config_t *);
	ucs_status_t (*set_handler)(int, int, ucm_event_callback_t, void *);
	ucp_params_t params = {
		.field_mask = UCP_PARAM_FIELD_FEATURES,
		.features = UCP_FEATURE_TAG | UCP_FEATURE_RMA,
	};
	ucp_config_t *config;

	ck_assert_msg(lib != NULL, "dlopen libucp: %s", dlerror());
	config_read = sym(lib, "ucp_config_read");
	init = sym(lib, "ucp_init_version");
	config_release = sym(lib, "ucp_config_release");
	set_handler = sym(lib, "ucm_set_event_handler");
	ck_assert_int_eq(config_read(NULL, NULL, &config), UCS_OK);
	ck_assert_int_eq(init(UCP_API_MAJOR, UCP_API_MINOR, &params, config, &ucp),
			 UCS_OK);
	config_release(config);
	ck_assert_int_eq(set_handler(UCM_EVENT_VM_UNMAPPED, 0, on_ucm_event, NULL),
			 UCS_OK);
}

static void start_cache(void)
{
	struct mrc_provider prov = fake_provider(&fake);
	struct mrc_cache_attr attr = {
		.comp_mask = MRC_ATTR_MONITOR | MRC_ATTR_MERGE,
		.monitor = MRC_MONITOR_HOOKS,
		.merge = MRC_MERGE_NONE,
	};

	ck_assert_msg(mrc_cache_create(&prov, &attr, &cache) == 0, "create: %s",
		      mrc_last_error());
}

static void setup(void)
{
	page = (size_t)sysconf(_SC_PAGESIZE);
	fake_init(&fake);
}

static void teardown(void)
{
	ck_assert_int_eq(mrc_cache_destroy(cache), 0);
	ck_assert_uint_eq(fake.live, 0);
	fake_fini(&fake);
}

static void *cached(void *p, size_t len)
{
	struct mrc_region *r = cache_get_ok(cache, p, len, 1);
	void *h = mrc_region_handle(r);

	cache_put_ok(cache, r);
	return h;
}

static void watch(void *p, size_t len)
{
	watch_start = (uintptr_t)p;
	watch_end = watch_start + len;
	ucm_seen = 0;
}

static void *map(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(p, MAP_FAILED);
	memset(p, 1, len);
	return p;
}

static void remap(void *at, size_t len)
{
	ck_assert_ptr_eq(mmap(at, len, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			      -1, 0), at);
}

static void check_munmap(void)
{
	size_t len = 4 * page;
	char *p = map(len);
	void *h = cached(p, len);

	watch(p, len);
	ck_assert_int_eq(munmap(p, len), 0);
	ck_assert_msg(ucm_seen > 0, "ucm did not see munmap");
	remap(p, len);
	ck_assert_msg(cached(p, len) != h, "mrcache did not see munmap");
	munmap(p, len);
}

static void check_free(void)
{
	size_t len = 1 << 20;
	char *b = malloc(len), *b2;
	void *h;

	ck_assert_ptr_nonnull(b);
	memset(b, 1, len);
	h = cached(b, len);
	watch(b, len);
	if (getenv("HOOKS_UCX_DEBUG"))
		fprintf(stderr, "free %p\n", (void *)b);
	free(b);
	ck_assert_msg(ucm_seen > 0, "ucm did not see free() of a large block");
	b2 = malloc(len);
	ck_assert_msg(b2 == b, "malloc did not reuse the freed block");
	ck_assert_msg(cached(b2, len) != h, "mrcache did not see free()");
	free(b2);
}

static void check_syscall_munmap(void)
{
	size_t len = 4 * page;
	char *p = map(len);
	void *h = cached(p, len);

	watch(p, len);
	ck_assert_int_eq(syscall(SYS_munmap, p, len), 0);
	fprintf(stderr, "syscall(SYS_munmap): ucm %s it\n",
		ucm_seen ? "saw" : "did not see");
	remap(p, len);
	ck_assert_msg(cached(p, len) != h, "mrcache did not see syscall(SYS_munmap)");
	munmap(p, len);
}

/* The break moved down under a registration (what malloc_trim does). */
static void check_brk(void)
{
	char *cur = sbrk(0);
	size_t pad = (page - (uintptr_t)cur % page) % page, len = 4 * page;
	void *h;

	ck_assert_ptr_ne(sbrk((intptr_t)(pad + len)), (void *)-1);
	cur += pad;
	memset(cur, 1, len);
	h = cached(cur, len);
	ck_assert_msg(sbrk(0) == cur + len, "malloc moved the break under the test");
	watch(cur, len);
	ck_assert_ptr_ne(sbrk(-(intptr_t)len), (void *)-1);
	ck_assert_msg(ucm_seen > 0, "ucm did not see brk shrink");
	ck_assert_ptr_ne(sbrk((intptr_t)len), (void *)-1);
	ck_assert_msg(cached(cur, len) != h, "mrcache did not see brk shrink");
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
/* The sanitizer's allocator never unmaps on free(): nothing to see. */
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

#ifdef __SANITIZE_ADDRESS__
/*
 * UCX keeps its context and async thread to the end of the process (the
 * test does not clean up a context whose hooks it is testing), and
 * LeakSanitizer's stop-the-world tracer faults stopping that thread.
 */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "detect_leaks=0";
}
#endif

static void check_all(void)
{
	check_munmap();
	if (!SANITIZED)
		check_free();
	check_syscall_munmap();
	check_brk();
}

START_TEST(ucx_first)
{
	start_ucx();
	start_cache();
	check_all();
}
END_TEST

START_TEST(mrcache_first)
{
	char *p;

	start_cache();
	cached(p = map(page), page);
	start_ucx();
	/* Any registration or drain puts our patches back in front. */
	cached(map(page), page);
	check_all();
	munmap(p, page);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("hooks_ucx");
	TCase *tc = tcase_create("coexistence");

	/* UCX's malloc hooks assume glibc's malloc; fixed thresholds. */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, ucx_first);
	tcase_add_test(tc, mrcache_first);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
