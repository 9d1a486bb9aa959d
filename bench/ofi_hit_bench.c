// SPDX-License-Identifier: BSD-2-Clause
/*
 * ofi_hit_bench - what a hit in libfabric's MR cache costs with its own
 * monitor and with libmrcache-ofi.so (run it with and without LD_PRELOAD,
 * side by side), on the verbs provider.
 *
 *  hit:    fi_mr_reg + fi_close of a 64 KiB buffer already cached, per pair
 *  munmap: munmap of a 64 KiB buffer whose registration is cached (its
 *          mmap, registration and the next lookup outside the timed
 *          part), per call
 *
 * Usage: ofi_hit_bench [runs] ; prints median, min and max of the runs
 * (ns per operation) and which monitor libfabric ran.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <rdma/fabric.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_errno.h>

#define LEN (64 * 1024)
#define HITS 20000
#define UNMAPS 200
#define MAX_RUNS 64

static struct fid_domain *domain;

static void check(int ret, const char *what)
{
	if (ret) {
		fprintf(stderr, "ofi_hit_bench: %s: %s\n", what, fi_strerror(-ret));
		exit(1);
	}
}

static void open_domain(void)
{
	struct fi_info *hints = fi_allocinfo(), *info;
	struct fid_fabric *fabric;

	hints->fabric_attr->prov_name = strdup("verbs");
	hints->ep_attr->type = FI_EP_MSG;
	hints->caps = FI_MSG | FI_RMA;
	hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR |
				      FI_MR_ALLOCATED | FI_MR_PROV_KEY;
	check(fi_getinfo(FI_VERSION(1, 13), NULL, NULL, 0, hints, &info), "fi_getinfo");
	check(fi_fabric(info->fabric_attr, &fabric, NULL), "fi_fabric");
	check(fi_domain(fabric, info, &domain, NULL), "fi_domain");
	fi_freeinfo(info);
	fi_freeinfo(hints);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void reg_release(void *buf)
{
	struct fid_mr *mr;

	check(fi_mr_reg(domain, buf, LEN, FI_SEND | FI_RECV | FI_READ | FI_WRITE |
			FI_REMOTE_READ | FI_REMOTE_WRITE, 0, 0, 0, &mr, NULL),
	      "fi_mr_reg");
	check(fi_close(&mr->fid), "fi_close");
}

static char *fresh_buffer(void)
{
	char *p = mmap(NULL, LEN, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		exit(1);
	memset(p, 1, LEN);
	return p;
}

/* Not inlined: valgrind --tool=callgrind --toggle-collect=hit_ns counts it. */
static __attribute__((noinline)) double hit_ns(char *buf)
{
	uint64_t t0 = now_ns();

	for (int i = 0; i < HITS; i++)
		reg_release(buf);
	return (double)(now_ns() - t0) / HITS;
}

static double munmap_ns(void)
{
	uint64_t total = 0;

	for (int i = 0; i < UNMAPS; i++) {
		char *p = fresh_buffer();
		uint64_t t0;

		reg_release(p);
		t0 = now_ns();
		munmap(p, LEN);
		total += now_ns() - t0;
	}
	return (double)total / UNMAPS;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void print(const char *name, double *v, int n)
{
	qsort(v, n, sizeof(*v), by_value);
	printf("%-7s median %8.1f ns  min %8.1f  max %8.1f  (%d runs)\n",
	       name, v[n / 2], v[0], v[n - 1], n);
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? atoi(argv[1]) : 5;
	const char *(*monitor)(void);
	double hits[MAX_RUNS], unmaps[MAX_RUNS];
	char *buf;

	if (runs < 1 || runs > MAX_RUNS)
		runs = 5;
	open_domain();
	monitor = (const char *(*)(void))dlsym(RTLD_DEFAULT, "mrc_ofi_monitor");
	printf("ofi_hit_bench: monitor %s\n",
	       monitor && monitor() ? monitor() : "libfabric's own");
	buf = fresh_buffer();
	reg_release(buf);
	for (int r = 0; r < runs; r++) {
		hits[r] = hit_ns(buf);
		unmaps[r] = munmap_ns();
	}
	print("hit", hits, runs);
	print("munmap", unmaps, runs);
	return 0;
}
