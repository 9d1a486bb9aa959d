// SPDX-License-Identifier: BSD-2-Clause
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mrcache_abi.h"
#include "fake_kmod.h"

/* Header layout: the kernel's lines and user space's, as in the module. */
enum {
	OFF_ENTRIES = 4, OFF_MASK = 8, OFF_SLOTS = 12,
	OFF_PRODUCER = 64, OFF_SEQUENCE = 68, OFF_OVERFLOW = 72,
	OFF_PRESSURE = 80,
	OFF_CONSUMER = 128, OFF_OVERFLOW_SEEN = 136, OFF_PRESSURE_SEEN = 144,
	OFF_EVENTS = 4096,
	OFF_GENS = OFF_EVENTS + FK_ENTRIES * sizeof(struct mrc_event),
	MAP_LEN = 8192,
};

struct fk_watch {
	uint64_t start, length, cookie;
	int used, armed;
};

static struct {
	pthread_mutex_t lock;
	int fd;
	char *map;
	uint32_t prod, seq;
	uint64_t overflow;
	uint64_t kgen[FK_SLOTS];
	struct fk_watch w[FK_SLOTS];
} fk = { .lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1 };

#define HDR(type, off) ((type *)(fk.map + (off)))

void fk_reset(void)
{
	pthread_mutex_lock(&fk.lock);
	if (fk.map)
		munmap(fk.map, MAP_LEN);
	fk.map = NULL;
	fk.fd = -1;
	fk.prod = fk.seq = 0;
	fk.overflow = 0;
	memset(fk.kgen, 0, sizeof(fk.kgen));
	memset(fk.w, 0, sizeof(fk.w));
	pthread_mutex_unlock(&fk.lock);
}

int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;

	va_start(ap, flags);
	if (flags & (O_CREAT | O_TMPFILE))
		mode = va_arg(ap, mode_t);
	va_end(ap);
	if (strcmp(path, MRC_DEVICE_PATH))
		return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
	fk.fd = memfd_create("fake-mrcache", MFD_CLOEXEC);
	return fk.fd;
}

static void api_answer(struct mrc_api *api)
{
	api->ring_entries = FK_ENTRIES;
	api->watch_slots = FK_SLOTS;
	api->supported_features = MRC_FEAT_ALL;
	api->features &= MRC_FEAT_ALL;
	api->mmap_length = MAP_LEN;
	api->event_size = sizeof(struct mrc_event);
	api->max_ring_entries = FK_ENTRIES;
	api->max_watch_slots = FK_SLOTS;
	api->off = (struct mrc_ring_offsets){
		.entries = OFF_ENTRIES, .mask = OFF_MASK,
		.watch_slots = OFF_SLOTS, .producer = OFF_PRODUCER,
		.consumer = OFF_CONSUMER, .overflow = OFF_OVERFLOW,
		.overflow_seen = OFF_OVERFLOW_SEEN, .events = OFF_EVENTS,
		.generations = OFF_GENS, .sequence = OFF_SEQUENCE,
		.pressure = OFF_PRESSURE, .pressure_seen = OFF_PRESSURE_SEEN,
	};
}

static int api_setup(struct mrc_api *api)
{
	api_answer(api);
	if (api->flags & MRC_API_PROBE)
		return 0;
	if (ftruncate(fk.fd, MAP_LEN))
		return -1;
	fk.map = mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE, MAP_SHARED,
		      fk.fd, 0);
	if (fk.map == MAP_FAILED) {
		fk.map = NULL;
		return -1;
	}
	*HDR(uint32_t, OFF_ENTRIES) = FK_ENTRIES;
	*HDR(uint32_t, OFF_MASK) = FK_ENTRIES - 1;
	*HDR(uint32_t, OFF_SLOTS) = FK_SLOTS;
	return 0;
}

static uint64_t gen_bump(int id)
{
	uint64_t gen = ++fk.kgen[id];

	__atomic_store_n(HDR(uint64_t, OFF_GENS) + id, gen, __ATOMIC_RELEASE);
	return gen;
}

static int watch(struct mrc_watch *w)
{
	for (int id = 0; id < FK_SLOTS; id++) {
		if (fk.w[id].used)
			continue;
		fk.w[id] = (struct fk_watch){ w->start, w->length, w->cookie, 1, 1 };
		w->id = (uint32_t)id;
		w->generation = gen_bump(id);
		return 0;
	}
	errno = ENOSPC;
	return -1;
}

static int unwatch(const struct mrc_unwatch *u)
{
	if (u->id >= FK_SLOTS || !fk.w[u->id].used) {
		errno = ENOENT;
		return -1;
	}
	fk.w[u->id].used = 0;
	gen_bump((int)u->id);
	return 0;
}

static int answer(unsigned long req, void *arg)
{
	switch (req) {
	case MRC_IOC_API:
		return api_setup(arg);
	case MRC_IOC_WATCH:
		return watch(arg);
	case MRC_IOC_UNWATCH:
		return unwatch(arg);
	}
	errno = ENOTTY;
	return -1;
}

int ioctl(int fd, unsigned long req, ...)
{
	void *arg;
	va_list ap;
	int ret;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (fd < 0 || fd != fk.fd)
		return (int)syscall(SYS_ioctl, fd, req, arg);
	pthread_mutex_lock(&fk.lock);
	ret = answer(req, arg);
	pthread_mutex_unlock(&fk.lock);
	return ret;
}

int fk_watch_at(const void *addr)
{
	uint64_t a = (uintptr_t)addr;
	int found = -1;

	pthread_mutex_lock(&fk.lock);
	for (int id = 0; id < FK_SLOTS && found < 0; id++)
		if (fk.w[id].used && fk.w[id].start <= a &&
		    a < fk.w[id].start + fk.w[id].length)
			found = id;
	pthread_mutex_unlock(&fk.lock);
	return found;
}

/* Lock held: the producer's view of free slots, as mrc_ring_full(). */
static bool ring_full(void)
{
	uint32_t cons = __atomic_load_n(HDR(uint32_t, OFF_CONSUMER),
					__ATOMIC_ACQUIRE);

	return fk.prod - cons >= FK_ENTRIES;
}

static void tick(void)
{
	__atomic_store_n(HDR(uint32_t, OFF_SEQUENCE), ++fk.seq,
			 __ATOMIC_RELEASE);
}

static void post(int id)
{
	struct mrc_event ev = {
		.cookie = fk.w[id].cookie, .start = fk.w[id].start,
		.end = fk.w[id].start + fk.w[id].length, .id = (uint32_t)id,
		.reason = MRC_REASON_UNMAP,
	};

	HDR(struct mrc_event, OFF_EVENTS)[fk.prod & (FK_ENTRIES - 1)] = ev;
	__atomic_store_n(HDR(uint32_t, OFF_PRODUCER), ++fk.prod,
			 __ATOMIC_RELEASE);
}

static void count_overflow(void)
{
	__atomic_store_n(HDR(uint64_t, OFF_OVERFLOW), ++fk.overflow,
			 __ATOMIC_RELEASE);
}

bool fk_invalidate_begin(int id)
{
	pthread_mutex_lock(&fk.lock);
	gen_bump(id);
	if (!fk.w[id].armed) {
		pthread_mutex_unlock(&fk.lock);
		return false;
	}
	fk.w[id].armed = 0;
	if (ring_full()) {
		pthread_mutex_unlock(&fk.lock);
		return true;
	}
	post(id);
	tick();
	pthread_mutex_unlock(&fk.lock);
	return false;
}

void fk_invalidate_end(void)
{
	pthread_mutex_lock(&fk.lock);
	count_overflow();
	tick();
	pthread_mutex_unlock(&fk.lock);
}

/*
 * In the module the two halves are a few instructions apart; here they are
 * a few microseconds apart, so that a drain running on another CPU lands
 * between them often enough for a test to see what happens then.
 */
static void widen_window(void)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do
		clock_gettime(CLOCK_MONOTONIC, &t);
	while ((t.tv_sec - t0.tv_sec) * 1000000000L + t.tv_nsec - t0.tv_nsec < 5000);
}

void fk_invalidate(int id)
{
	if (fk_invalidate_begin(id)) {
		widen_window();
		fk_invalidate_end();
	}
}

uint32_t fk_pending(void)
{
	uint32_t cons;

	pthread_mutex_lock(&fk.lock);
	cons = __atomic_load_n(HDR(uint32_t, OFF_CONSUMER), __ATOMIC_ACQUIRE);
	pthread_mutex_unlock(&fk.lock);
	return fk.prod - cons;
}
