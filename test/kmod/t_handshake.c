// SPDX-License-Identifier: GPL-2.0
/*
 * Handshake and argument checking: every bad argument gives its
 * documented errno and leaves the fd usable; probing does not consume the
 * file; a second setup is EBUSY; mmap, WATCH, UNWATCH, QUERY validate.
 */
#include "mrc_test.h"

static int api(int fd, struct mrc_api *a)
{
	return t_ioctl(fd, MRC_IOC_API, a);
}

static void bad_api(int fd, const char *what, void (*spoil)(struct mrc_api *))
{
	struct mrc_api a;
	int ret;

	t_api_init(&a, 64, 16, 0);
	spoil(&a);
	ret = api(fd, &a);
	CHECK(ret == -EINVAL, "%s: got %d, wanted -EINVAL", what, ret);
}

static void v0(struct mrc_api *a) { a->abi_version = 0; }
static void v2(struct mrc_api *a) { a->abi_version = MRC_ABI_VERSION + 1; }
static void np2(struct mrc_api *a) { a->ring_entries = 100; }
static void tiny(struct mrc_api *a) { a->ring_entries = 4; }
static void huge(struct mrc_api *a) { a->ring_entries = 1U << 31; }
static void slots(struct mrc_api *a) { a->watch_slots = 0xffffffffU; }
static void feat(struct mrc_api *a) { a->features = 1ULL << 63; }
static void flag(struct mrc_api *a) { a->flags = 1U << 7; }
static void pad(struct mrc_api *a) { a->pad = 1; }
static void resv(struct mrc_api *a) { a->reserved[3] = 1; }

static void handshake(int fd)
{
	long pg = t_page();
	struct mrc_api a;
	void *m;

	bad_api(fd, "abi 0", v0);
	bad_api(fd, "abi 2", v2);
	bad_api(fd, "entries 100", np2);
	bad_api(fd, "entries 4", tiny);
	bad_api(fd, "entries 2^31", huge);
	bad_api(fd, "slots", slots);
	bad_api(fd, "feature 63", feat);
	bad_api(fd, "flag 7", flag);
	bad_api(fd, "pad", pad);
	bad_api(fd, "reserved", resv);
	CHECK(t_ioctl(fd, MRC_IOC_API, (void *)16) == -EFAULT, "bad pointer");

	/* Not set up yet: everything else says EBADFD. */
	m = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m == MAP_FAILED && errno == EBADFD, "mmap before setup");

	/* Probe: answers, unknown features masked, file not consumed. */
	t_api_init(&a, 0, 0, MRC_FEAT_ALL | (1ULL << 40));
	a.flags = MRC_API_PROBE;
	CHECK(!api(fd, &a), "probe");
	CHECK(a.features == MRC_FEAT_ALL && a.supported_features == MRC_FEAT_ALL,
	      "probe features %#llx", (unsigned long long)a.features);
	CHECK(a.ring_entries >= 8 && a.watch_slots > 0 && a.mmap_length > 0,
	      "probe sizes %u %u %llu", a.ring_entries, a.watch_slots,
	      (unsigned long long)a.mmap_length);
	CHECK(a.event_size == sizeof(struct mrc_event), "event_size");
	T_LOG("defaults: %u entries, %u slots, %llu bytes; max %u/%u",
	      a.ring_entries, a.watch_slots, (unsigned long long)a.mmap_length,
	      a.max_ring_entries, a.max_watch_slots);

	/* Real setup, then a second one. */
	t_api_init(&a, 128, 32, MRC_FEAT_PRESSURE);
	CHECK(!api(fd, &a), "setup after failures");
	CHECK(a.ring_entries == 128 && a.watch_slots == 32 &&
	      a.features == MRC_FEAT_PRESSURE, "setup answer");
	CHECK(a.off.events % pg == 0 && a.off.generations % pg == 0 &&
	      a.mmap_length % pg == 0, "offsets not page aligned");
	CHECK(a.off.producer / 64 != a.off.consumer / 64,
	      "producer and consumer share a cache line");
	t_api_init(&a, 128, 32, 0);
	CHECK(api(fd, &a) == -EBUSY, "second setup");

	m = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m == MAP_FAILED && errno == EINVAL, "mmap wrong length");
	t_api_init(&a, 128, 32, 0);
	a.flags = MRC_API_PROBE;
	CHECK(!api(fd, &a), "probe after setup");
	m = mmap(NULL, a.mmap_length, PROT_READ | PROT_WRITE, MAP_PRIVATE,
		 fd, 0);
	CHECK(m == MAP_FAILED && errno == EINVAL, "private mmap");
	m = mmap(NULL, a.mmap_length, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 pg);
	CHECK(m == MAP_FAILED && errno == EINVAL, "mmap offset");
	m = mmap(NULL, a.mmap_length, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED, "mmap: %s", strerror(errno));
	CHECK(*(uint32_t *)((char *)m + a.off.abi_version) == MRC_ABI_VERSION &&
	      *(uint32_t *)((char *)m + a.off.entries) == 128 &&
	      *(uint32_t *)((char *)m + a.off.watch_slots) == 32, "header");
	munmap(m, a.mmap_length);
}

static int watch(int fd, uint64_t start, uint64_t len, uint64_t r0)
{
	struct mrc_watch w = { .start = start, .length = len };

	w.reserved[0] = r0;
	return t_ioctl(fd, MRC_IOC_WATCH, &w);
}

static void watch_args(int fd)
{
	long pg = t_page();
	char *p = t_anon(4 * pg);
	uintptr_t u = (uintptr_t)p;
	struct mrc_unwatch uw = { .id = 0 };
	struct mrc_query q = { .id = 1000 };
	struct mrc_watch w = { .start = u, .length = pg, .flags = 1 };
	uint32_t ids[32];
	int i, ret;

	CHECK(watch(fd, u + 1, pg, 0) == -EINVAL, "unaligned start");
	CHECK(watch(fd, u, pg + 1, 0) == -EINVAL, "unaligned length");
	CHECK(watch(fd, u, 0, 0) == -EINVAL, "zero length");
	CHECK(watch(fd, -(uint64_t)pg, 2 * pg, 0) == -EINVAL, "wrap");
	CHECK(watch(fd, 1ULL << 62, pg, 0) == -EINVAL, "beyond TASK_SIZE");
	CHECK(watch(fd, u, pg, 5) == -EINVAL, "reserved");
	CHECK(t_ioctl(fd, MRC_IOC_WATCH, &w) == -EINVAL, "flags");
	CHECK(t_ioctl(fd, MRC_IOC_WATCH, (void *)8) == -EFAULT, "bad ptr");
	CHECK(t_ioctl(fd, MRC_IOC_UNWATCH, &uw) == -ENOENT, "unwatch free");
	uw.id = 32;
	CHECK(t_ioctl(fd, MRC_IOC_UNWATCH, &uw) == -EINVAL, "unwatch range");
	CHECK(t_ioctl(fd, MRC_IOC_QUERY, &q) == -EINVAL, "query range");
	CHECK(t_ioctl(fd, _IO(MRC_IOC_MAGIC, 0x42), NULL) == -ENOTTY,
	      "unknown ioctl");
	CHECK(t_ioctl(fd, _IOWR(MRC_IOC_MAGIC, 1, uint64_t), &q) == -ENOTTY,
	      "WATCH with the wrong size");

	/* Unmapped but valid addresses are fine: watching needs no pages. */
	for (i = 0; i < 32; i++) {
		struct mrc_watch ok = { .start = u, .length = pg, .cookie = i };

		CHECK(!t_ioctl(fd, MRC_IOC_WATCH, &ok), "watch %d", i);
		ids[i] = ok.id;
	}
	ret = watch(fd, u, pg, 0);
	CHECK(ret == -ENOSPC, "watch beyond the slots: %d", ret);
	for (i = 0; i < 32; i++) {
		uw.id = ids[i];
		CHECK(!t_ioctl(fd, MRC_IOC_UNWATCH, &uw), "unwatch %d", i);
	}
	CHECK(!watch(fd, u, pg, 0), "watch after freeing slots");
}

int main(void)
{
	int fd;
	struct mrc_watch w = { 0 };

	t_name = "t_handshake";
	fd = t_open_dev();
	w.start = 0x100000;
	w.length = 4096;
	CHECK(t_ioctl(fd, MRC_IOC_WATCH, &w) == -EBADFD, "watch before setup");
	handshake(fd);
	watch_args(fd);
	close(fd);
	T_LOG("PASS");
	return T_PASS;
}
