// SPDX-License-Identifier: BSD-2-Clause
/*
 * libfabric's own MR cache on the real verbs provider (Soft-RoCE in the
 * VM), with libmrcache-ofi.so preloaded or not:
 *
 *   ofi_test shim [MONITOR]   every change gives a fresh registration, and
 *                             the shim runs with MONITOR (kmod, hooks)
 *   ofi_test native           libfabric's own monitor: the changes it
 *                             misses (a raw munmap system call) give the
 *                             stale registration back: what the shim fixes
 *   ofi_test native-with-shim the shim is loaded but FI_MR_CACHE_MONITOR
 *                             chose libfabric's own: as native
 *
 * Each case (mem_changes.h): fi_mr_reg of a buffer twice (the second is a
 * cache hit: the same key), then a change, then fi_mr_reg again: a new key
 * means libfabric was told and registered the new pages; the old key after
 * munmap means it handed out a registration of pages the program no longer
 * has. After move_pages the old key is right but keeps the pages pinned
 * (they cannot move); the module reports the attempt and libfabric lets go.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <rdma/fabric.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_errno.h>

#include "mem_changes.h"

#define LEN (256 * 1024)

static struct fid_fabric *fabric;
static struct fid_domain *domain;

#define CHECK(call)							\
	do {								\
		int ret_ = (call);					\
		if (ret_) {						\
			fprintf(stderr, "ofi_test: %s: %s\n", #call,	\
				fi_strerror(-ret_));			\
			exit(1);					\
		}							\
	} while (0)

static void open_domain(void)
{
	struct fi_info *hints = fi_allocinfo(), *info;

	hints->fabric_attr->prov_name = strdup("verbs");
	hints->ep_attr->type = FI_EP_MSG;
	hints->caps = FI_MSG | FI_RMA;
	hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR |
				      FI_MR_ALLOCATED | FI_MR_PROV_KEY;
	CHECK(fi_getinfo(FI_VERSION(1, 13), NULL, NULL, 0, hints, &info));
	printf("ofi_test: provider %s, domain %s\n",
	       info->fabric_attr->prov_name, info->domain_attr->name);
	CHECK(fi_fabric(info->fabric_attr, &fabric, NULL));
	CHECK(fi_domain(fabric, info, &domain, NULL));
	fi_freeinfo(info);
	fi_freeinfo(hints);
}

/* Register, note the key, release (the cache keeps the registration). */
static uint64_t reg_key(void *buf)
{
	struct fid_mr *mr;
	uint64_t key;

	CHECK(fi_mr_reg(domain, buf, LEN, FI_SEND | FI_RECV | FI_READ |
			FI_WRITE | FI_REMOTE_READ | FI_REMOTE_WRITE,
			0, 0, 0, &mr, NULL));
	key = fi_mr_key(mr);
	CHECK(fi_close(&mr->fid));
	return key;
}

static const char *shim_monitor;	/* NULL: libfabric's own */

/* Return 1 when the outcome is the expected one. */
static int run_case(const struct mem_change *c)
{
	char *p = mem_map(NULL, LEN, 1);
	uint64_t k1 = reg_key(p), k2 = reg_key(p), k3;
	int fresh, want = mem_change_seen(c, shim_monitor);
	const char *old = c->stale_if_missed ? "STALE" : "kept";

	if (k1 != k2) {
		printf("FAIL %-28s second registration missed the cache (%#lx, %#lx)\n",
		       c->name, (unsigned long)k1, (unsigned long)k2);
		return 0;
	}
	c->apply(p, LEN, 2);
	k3 = reg_key(p);
	fresh = k3 != k1;
	printf("%s %-28s hit %#lx, after the change %#lx: %s (expected %s)\n",
	       fresh == want ? "ok  " : "FAIL", c->name,
	       (unsigned long)k1, (unsigned long)k3, fresh ? "fresh" : old,
	       want ? "fresh" : old);
	munmap(p, LEN);
	return fresh == want;
}

/* With the shim preloaded: is it libfabric's monitor, with MONITOR? */
static int shim_in_use(const char *want)
{
	const char *(*monitor)(void) = (const char *(*)(void))
		dlsym(RTLD_DEFAULT, "mrc_ofi_monitor");
	const char *name = monitor ? monitor() : NULL;

	printf("ofi_test: mrcache monitor in libfabric: %s\n",
	       name ? name : "(none)");
	shim_monitor = name;
	return name && (!want || !strcmp(name, want));
}

static int check_mode(const char *mode, const char *want)
{
	int loaded = dlsym(RTLD_DEFAULT, "mrc_ofi_monitor") != NULL;

	if (!strcmp(mode, "shim"))
		return shim_in_use(want);
	if (!strcmp(mode, "native"))
		return !loaded;
	if (!strcmp(mode, "native-with-shim"))
		return loaded && !shim_in_use(NULL);
	fprintf(stderr, "usage: ofi_test shim [kmod|hooks] | native | native-with-shim\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int ok = 1;

	if (argc < 2)
		check_mode("", NULL);
	open_domain();
	if (!check_mode(argv[1], argc > 2 ? argv[2] : NULL)) {
		fprintf(stderr, "ofi_test: %s: the wrong monitor runs libfabric's cache\n",
			argv[1]);
		return 1;
	}
	for (size_t i = 0; i < n_mem_changes; i++)
		ok &= run_case(&mem_changes[i]);
	CHECK(fi_close(&domain->fid));
	CHECK(fi_close(&fabric->fid));
	return ok ? 0 : 1;
}
