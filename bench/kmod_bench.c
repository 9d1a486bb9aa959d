// SPDX-License-Identifier: GPL-2.0
/*
 * kmod_bench - what /dev/mrcache costs and how fast its events are.
 *
 *  1. munmap() of an N-page range, touched, that is watched vs not
 *     watched (mmap + touch + [watch] are outside the timed part).
 *  2. Event latency: a second thread spins on the ring's producer index;
 *     for each munmap of a watched page we record when the event became
 *     visible relative to the start and the end of the munmap() call.
 *     The event is posted from invalidate_range_start, so it is visible
 *     before munmap() returns.
 *  3. WATCH + UNWATCH ioctl round trip and the validity check (one load).
 *
 * Needs /dev/mrcache (exit 77 without).  Usage: kmod_bench [iterations]
 * Build: make -C test/kmod kmod_bench (needs include/mrcache_abi.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "mrcache_abi.h"

struct ring {
	int fd;
	struct mrc_api api;
	char *map;
	uint32_t *producer;
	uint32_t *consumer;
	uint64_t *gens;
};

static long pg;

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int ring_open(struct ring *r)
{
	r->fd = open(MRC_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (r->fd < 0)
		return -errno;
	memset(&r->api, 0, sizeof(r->api));
	r->api.abi_version = MRC_ABI_VERSION;
	r->api.ring_entries = 1024;
	r->api.watch_slots = 64;
	if (ioctl(r->fd, MRC_IOC_API, &r->api))
		return -errno;
	r->map = mmap(NULL, r->api.mmap_length, PROT_READ | PROT_WRITE,
		      MAP_SHARED, r->fd, 0);
	if (r->map == MAP_FAILED)
		return -errno;
	r->producer = (uint32_t *)(r->map + r->api.off.producer);
	r->consumer = (uint32_t *)(r->map + r->api.off.consumer);
	r->gens = (uint64_t *)(r->map + r->api.off.generations);
	return 0;
}

static void ring_drain(struct ring *r)
{
	/* Pairs with the kernel's store-release of the producer index. */
	uint32_t prod = __atomic_load_n(r->producer, __ATOMIC_ACQUIRE);

	/* Pairs with the kernel's load-acquire of the consumer index. */
	__atomic_store_n(r->consumer, prod, __ATOMIC_RELEASE);
}

static uint32_t watch(struct ring *r, void *p, size_t len)
{
	struct mrc_watch w = { .start = (uintptr_t)p, .length = len };

	if (ioctl(r->fd, MRC_IOC_WATCH, &w)) {
		perror("watch");
		exit(1);
	}
	return w.id;
}

static void unwatch(struct ring *r, uint32_t id)
{
	struct mrc_unwatch u = { .id = id };

	if (ioctl(r->fd, MRC_IOC_UNWATCH, &u))
		perror("unwatch");
}

static char *touched(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	memset(p, 1, len);
	return p;
}

static double munmap_cost(struct ring *r, size_t pages, int iters, int watched)
{
	double total = 0;
	uint32_t id = 0;
	int i;

	for (i = 0; i < iters; i++) {
		char *p = touched(pages * pg);
		double t0;

		if (watched)
			id = watch(r, p, pages * pg);
		t0 = now_ns();
		munmap(p, pages * pg);
		total += now_ns() - t0;
		if (watched) {
			ring_drain(r);
			unwatch(r, id);
		}
	}
	return total / iters;
}

struct spinner {
	struct ring *r;
	volatile int stop;
	uint32_t seen;
	double when;		/* time the producer index last moved */
};

static void *spin(void *arg)
{
	struct spinner *s = arg;

	while (!s->stop) {
		uint32_t prod = __atomic_load_n(s->r->producer,
						__ATOMIC_ACQUIRE);

		if (prod != __atomic_load_n(&s->seen, __ATOMIC_RELAXED)) {
			s->when = now_ns();
			__atomic_store_n(&s->seen, prod, __ATOMIC_RELEASE);
		}
	}
	return NULL;
}

static void latency(struct ring *r, int iters)
{
	struct spinner s = { .r = r };
	double from_start = 0, before_end = 0;
	int i, inside = 0, at_return = 0;
	pthread_t th;

	ring_drain(r);
	s.seen = *r->producer;
	pthread_create(&th, NULL, spin, &s);
	for (i = 0; i < iters; i++) {
		char *p = touched(pg);
		uint32_t id = watch(r, p, pg), want;
		double t0, t1;

		want = *r->producer + 1;
		t0 = now_ns();
		munmap(p, pg);
		t1 = now_ns();
		/* The event must already be in the ring: one load, no wait. */
		at_return += __atomic_load_n(r->producer, __ATOMIC_ACQUIRE) ==
			     want;
		while (__atomic_load_n(&s.seen, __ATOMIC_ACQUIRE) != want)
			;
		from_start += s.when - t0;
		before_end += t1 - s.when;
		inside += s.when <= t1;
		ring_drain(r);
		unwatch(r, id);
	}
	s.stop = 1;
	pthread_join(th, NULL);
	printf("event latency (1 page, %d runs): visible at munmap return in "
	       "%d/%d; seen by a spinning thread %.0f ns after munmap() was "
	       "called, %.0f ns before it returned (%d/%d inside the call)\n",
	       iters, at_return, iters, from_start / iters, before_end / iters,
	       inside, iters);
}

static void ioctl_costs(struct ring *r, int iters)
{
	char *p = touched(pg);
	double t0, t1, t2;
	uint64_t sum = 0;
	uint32_t id;
	int i;

	t0 = now_ns();
	for (i = 0; i < iters; i++) {
		id = watch(r, p, pg);
		unwatch(r, id);
	}
	t1 = now_ns();
	id = watch(r, p, pg);
	for (i = 0; i < iters * 100; i++)
		sum += __atomic_load_n(&r->gens[id], __ATOMIC_ACQUIRE);
	t2 = now_ns();
	printf("WATCH+UNWATCH: %.0f ns; validity check (one load): %.1f ns "
	       "(sum %llu)\n", (t1 - t0) / iters, (t2 - t1) / (iters * 100.0),
	       (unsigned long long)(sum & 1));
	unwatch(r, id);
	munmap(p, pg);
}

int main(int argc, char **argv)
{
	int iters = argc > 1 ? atoi(argv[1]) : 2000;
	size_t sizes[] = { 1, 16, 256 };
	struct ring r;
	unsigned int i;
	int ret;

	pg = sysconf(_SC_PAGESIZE);
	ret = ring_open(&r);
	if (ret) {
		fprintf(stderr, "kmod_bench: %s: %s\n", MRC_DEVICE_PATH,
			strerror(-ret));
		return 77;
	}
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		double plain = munmap_cost(&r, sizes[i], iters, 0);
		double w = munmap_cost(&r, sizes[i], iters, 1);

		printf("munmap %4zu pages: unwatched %8.0f ns, watched %8.0f ns "
		       "(+%.0f ns, %+.1f%%)\n", sizes[i], plain, w, w - plain,
		       100.0 * (w - plain) / plain);
	}
	latency(&r, iters / 4 ? iters / 4 : 1);
	ioctl_costs(&r, iters);
	return 0;
}
