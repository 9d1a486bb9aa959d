// SPDX-License-Identifier: GPL-2.0
/*
 * Random ioctls: numbers (ours with random sizes and directions, and
 * random ones), argument pointers (NULL, kernel addresses, unmapped,
 * misaligned, a buffer of random bytes, a valid struct with one random
 * byte changed), with madvise() invalidations in between, against a set-up and a fresh
 * file.  Nothing may succeed that should not, nothing may crash (the VM
 * runner fails on any kernel WARNING/BUG), and a normal watch/invalidate
 * cycle still works afterwards.  Seed: 12345, or MRCACHE_FUZZ_SEED;
 * iterations: 20000 or MRCACHE_FUZZ_ITERS.
 */
#include "mrc_test.h"

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static unsigned long random_cmd(void)
{
	unsigned int dir = rnd() % 4, nr = rnd() % 8, size = rnd() % 300;

	switch (rnd() % 4) {
	case 0:
		return (unsigned long)rnd();
	case 1:
		return _IOC(dir, MRC_IOC_MAGIC, nr, size);
	default: {
		static const unsigned long ours[] = {
			MRC_IOC_API, MRC_IOC_WATCH, MRC_IOC_UNWATCH,
			MRC_IOC_QUERY, MRC_IOC_REARM,
		};

		return ours[rnd() % 5];
	}
	}
}

/* A valid argument for @cmd with (sometimes) one random byte changed. */
static void *mutated_arg(unsigned long cmd, unsigned char *buf, char *area)
{
	long pg = t_page();
	union {
		struct mrc_api api;
		struct mrc_watch w;
		struct mrc_unwatch u;
	} *a = (void *)buf;

	memset(buf, 0, 256);
	if (cmd == MRC_IOC_API) {
		a->api.abi_version = MRC_ABI_VERSION;
		a->api.ring_entries = 8U << (rnd() % 6);
		a->api.watch_slots = 1 + rnd() % 64;
		a->api.features = rnd() % 4;
	} else if (cmd == MRC_IOC_WATCH) {
		a->w.start = (uintptr_t)area + (rnd() % 16) * pg;
		a->w.length = (1 + rnd() % 16) * pg;
		a->w.cookie = rnd();
	} else {
		a->u.id = rnd() % 70;	/* UNWATCH, QUERY, REARM */
	}
	if (rnd() % 2)
		buf[rnd() % 64] = rnd();
	return buf;
}

static void *random_arg(unsigned long cmd, unsigned char *buf, size_t len,
			void *unmapped, char *area)
{
	size_t i;

	switch (rnd() % 8) {
	case 6:
	case 7:
		return mutated_arg(cmd, buf, area);
	case 0:
		return NULL;
	case 1:
		return (void *)0xffffffff81000000UL;
	case 2:
		return unmapped;
	case 3:
		return (void *)(uintptr_t)rnd();
	default:
		for (i = 0; i < len; i++)
			buf[i] = rnd();
		/* Mostly-zero structs get past the reserved checks. */
		if (rnd() % 2)
			memset(buf + 32, 0, len - 32);
		return buf + rnd() % 8;
	}
}

static void fuzz(int fd, long iters, void *unmapped, char *area, long *ok)
{
	static unsigned char buf[512] __attribute__((aligned(8)));
	long i;

	for (i = 0; i < iters; i++) {
		unsigned long cmd = random_cmd();
		void *arg = random_arg(cmd, buf, 256, unmapped, area);
		int ret = t_ioctl(fd, cmd, arg);

		/* Sometimes invalidate what the fuzzer may have watched. */
		if (rnd() % 64 == 0)
			madvise(area, 32 * t_page(), MADV_DONTNEED);

		CHECK(ret == 0 || ret == -EINVAL || ret == -EFAULT ||
		      ret == -ENOTTY || ret == -ENOENT || ret == -ENOSPC ||
		      ret == -EBUSY || ret == -EBADFD || ret == -ENOMEM,
		      "cmd %#lx: unexpected %d", cmd, ret);
		if (!ret)
			(*ok)++;
	}
}

int main(void)
{
	long pg = t_page(), iters = 20000, ok = 0;
	const char *s;
	struct mrct t;
	uint64_t gen;
	uint32_t id;
	char *p, *unmapped, *area;
	int fd;

	t_name = "t_fuzz";
	rng_state = 12345;
	s = getenv("MRCACHE_FUZZ_SEED");
	if (s && *s)
		rng_state = strtoull(s, NULL, 0) | 1;
	s = getenv("MRCACHE_FUZZ_ITERS");
	if (s && *s)
		iters = strtol(s, NULL, 0);
	T_LOG("seed %#llx, %ld iterations per file",
	      (unsigned long long)rng_state, iters);

	unmapped = t_anon(pg);
	munmap(unmapped, pg);
	area = t_anon_guarded(32 * pg);
	fd = t_open_dev();
	fuzz(fd, iters, unmapped, area, &ok);
	close(fd);
	mrct_open(&t, 64, 64, 0);
	fuzz(t.fd, iters, unmapped, area, &ok);
	mrct_close(&t);

	mrct_open(&t, 64, 64, 0);
	p = t_anon_guarded(2 * pg);
	CHECK(!mrct_watch(&t, p, 2 * pg, 77, &id, &gen), "watch after fuzz");
	CHECK(!munmap(p, 2 * pg), "munmap");
	mrct_expect(&t, id, 77, MRC_REASON_UNMAP, p, p + 2 * pg);
	mrct_close(&t);
	T_LOG("PASS (%ld calls succeeded by chance)", ok);
	return T_PASS;
}
