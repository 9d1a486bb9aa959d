// SPDX-License-Identifier: BSD-2-Clause
/*
 * preload_app: an RDMA program that knows nothing of mrcache (linked only
 * against libibverbs) and registers around every transfer, for
 * test/preload.sh to run with and without libmrcache-preload.so.
 *
 *   preload_app reuse  MESSAGES WORKING_SET SIZE
 *       buffers allocated once; message i uses buffer i % WORKING_SET
 *   preload_app free   MESSAGES SIZE
 *       malloc() a source buffer per message, free() it after
 *   preload_app munmap MESSAGES SIZE
 *       mmap() source and target per message, munmap() both after; the
 *       target is registered per message too (remote write)
 *   preload_app idle SIZE MS
 *       one message from a SIZE buffer, then sleep MS milliseconds and
 *       print the process's pinned memory (VmPin) before and after: the
 *       buffer stays allocated, so only an idle bound can unpin it
 *
 * Each message: fill the source with a pattern of its own, register it
 * (local access), RDMA WRITE it into the target, check every byte the
 * application sees in the target, deregister. Exit 0 when every byte
 * arrived, 1 on a wrong byte or an error, 77 without an RDMA device.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "rdma_pair.h"

static struct rdma_pair pair;

static uint8_t pattern(unsigned long msg, size_t j)
{
	return (uint8_t)(msg * 131 + j * 7 + (j >> 12) + 1);
}

static int check(const uint8_t *dst, size_t size, unsigned long msg)
{
	for (size_t j = 0; j < size; j++) {
		if (dst[j] != pattern(msg, j)) {
			fprintf(stderr, "preload_app: message %lu: byte %zu is %#x, sent %#x\n",
				msg, j, dst[j], pattern(msg, j));
			return 1;
		}
	}
	return 0;
}

/* One message from @src into @dst (whose rkey is @rkey). */
static int transfer(uint8_t *src, uint8_t *dst, uint32_t rkey, size_t size,
		    unsigned long msg)
{
	struct ibv_mr *mr;
	int ret;

	for (size_t j = 0; j < size; j++)
		src[j] = pattern(msg, j);
	memset(dst, 0, size);
	mr = ibv_reg_mr(pair.pd, src, size, IBV_ACCESS_LOCAL_WRITE);
	if (!mr) {
		fprintf(stderr, "preload_app: ibv_reg_mr: %s\n", strerror(errno));
		return 1;
	}
	if (mr->addr != src || mr->length != size || mr->pd != pair.pd) {
		fprintf(stderr, "preload_app: the MR says %p+%zu, registered %p+%zu\n",
			mr->addr, mr->length, (void *)src, size);
		return 1;
	}
	ret = rdma_pair_write(&pair, src, size, mr->lkey,
			      (uintptr_t)dst, rkey);
	if (ret)
		fprintf(stderr, "preload_app: %s\n", rdma_pair_error(&pair));
	if (ibv_dereg_mr(mr)) {
		fprintf(stderr, "preload_app: ibv_dereg_mr failed\n");
		return 1;
	}
	return ret ? 1 : check(dst, size, msg);
}

static struct ibv_mr *target(void *buf, size_t size)
{
	struct ibv_mr *mr = ibv_reg_mr(pair.pd, buf, size,
				       IBV_ACCESS_LOCAL_WRITE |
				       IBV_ACCESS_REMOTE_WRITE);

	if (!mr)
		fprintf(stderr, "preload_app: ibv_reg_mr(target): %s\n",
			strerror(errno));
	return mr;
}

static int run_reuse(unsigned long n, unsigned long ws, size_t size)
{
	uint8_t **bufs = calloc(ws, sizeof(*bufs));
	uint8_t *dst = malloc(size);
	struct ibv_mr *tmr = dst ? target(dst, size) : NULL;
	int ret = !bufs || !tmr;

	for (unsigned long i = 0; i < ws && !ret; i++)
		ret = !(bufs[i] = malloc(size));
	for (unsigned long i = 0; i < n && !ret; i++)
		ret = transfer(bufs[i % ws], dst, tmr->rkey, size, i);
	if (tmr)
		ibv_dereg_mr(tmr);
	for (unsigned long i = 0; bufs && i < ws; i++)
		free(bufs[i]);
	free(bufs);
	free(dst);
	return ret;
}

static int run_free(unsigned long n, size_t size)
{
	uint8_t *dst = malloc(size);
	struct ibv_mr *tmr = dst ? target(dst, size) : NULL;
	int ret = !tmr;

	for (unsigned long i = 0; i < n && !ret; i++) {
		uint8_t *src = malloc(size);

		ret = !src || transfer(src, dst, tmr->rkey, size, i);
		free(src);
	}
	if (tmr)
		ibv_dereg_mr(tmr);
	free(dst);
	return ret;
}

static void *map(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int run_munmap(unsigned long n, size_t size)
{
	int ret = 0;

	for (unsigned long i = 0; i < n && !ret; i++) {
		uint8_t *src = map(size), *dst = map(size);
		struct ibv_mr *tmr = dst ? target(dst, size) : NULL;

		ret = !src || !tmr || transfer(src, dst, tmr->rkey, size, i);
		if (tmr && ibv_dereg_mr(tmr))
			ret = 1;
		if (src)
			munmap(src, size);
		if (dst)
			munmap(dst, size);
	}
	return ret;
}

/* The process's pinned memory in kB (ib_umem counts it), or -1. */
static long vm_pin_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmPin: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static int run_idle(size_t size, unsigned long ms)
{
	uint8_t *src = malloc(size), *dst = malloc(size);
	struct ibv_mr *tmr = dst ? target(dst, size) : NULL;
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000 };
	long before;
	int ret = !src || !tmr || transfer(src, dst, tmr->rkey, size, 0);

	if (tmr && ibv_dereg_mr(tmr))
		ret = 1;
	before = vm_pin_kb();
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
	printf("preload_app: idle: VmPin %ld kB after the deregistrations, %ld kB %lu ms later\n",
	       before, vm_pin_kb(), ms);
	free(src);
	free(dst);
	return ret;
}

static int run(int argc, char **argv)
{
	unsigned long n = argc > 2 ? strtoul(argv[2], NULL, 0) : 0;

	if (argc == 5 && !strcmp(argv[1], "reuse"))
		return run_reuse(n, strtoul(argv[3], NULL, 0),
				 strtoul(argv[4], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "free"))
		return run_free(n, strtoul(argv[3], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "munmap"))
		return run_munmap(n, strtoul(argv[3], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "idle"))
		return run_idle(n, strtoul(argv[3], NULL, 0));
	fprintf(stderr, "usage: preload_app reuse MESSAGES WORKING_SET SIZE | free MESSAGES SIZE | munmap MESSAGES SIZE | idle SIZE MS\n");
	return 2;
}

int main(int argc, char **argv)
{
	int ret = rdma_pair_open(&pair);

	if (ret == -ENODEV) {
		fprintf(stderr, "preload_app: SKIP: %s\n", rdma_pair_error(&pair));
		return 77;
	}
	if (ret) {
		fprintf(stderr, "preload_app: %s\n", rdma_pair_error(&pair));
		return 1;
	}
	ret = run(argc, argv);
	rdma_pair_close(&pair);
	if (!ret)
		printf("preload_app: %s: every byte arrived\n", argv[1]);
	return ret;
}
