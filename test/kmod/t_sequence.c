// SPDX-License-Identifier: GPL-2.0
/*
 * The sequence word moves after everything the kernel tells user space,
 * and pressure never takes a ring slot.
 *
 * 1. With the ring full, one more invalidation is counted as overflow:
 *    the producer index stays where it was, the sequence word moves.  A
 *    reader that compared only the producer would miss it for good.
 * 2. Memory pressure while the ring is full raises the pressure counter
 *    and moves the sequence word, but counts no overflow (an overflow
 *    means "invalidations may be lost" and makes the library drop every
 *    registration).  One request is outstanding until pressure_seen
 *    acknowledges it; poll() reports EPOLLIN until then.
 * 3. MRC_FEAT_PRESSURE_COUNTER without MRC_FEAT_PRESSURE is refused.
 */
#include <poll.h>
#include "mrc_test.h"

#define ENTRIES 8
#define NW (ENTRIES + 1)
#define FEATURES (MRC_FEAT_PRESSURE | MRC_FEAT_SEQUENCE | \
		  MRC_FEAT_PRESSURE_COUNTER)

static void drop_slab(void)
{
	CHECK(!t_drop_slab(), "drop_caches: %s", strerror(errno));
}

static int news(struct mrct *t)
{
	struct pollfd pfd = { .fd = t->fd, .events = POLLIN };

	return poll(&pfd, 1, 0);
}

/* Fill the ring with ENTRIES events, then overflow it with one more. */
static void overflow_moves_sequence(struct mrct *t, char *p, long pg)
{
	uint32_t prod, seq;
	int i;

	for (i = 0; i < ENTRIES; i++)
		CHECK(!madvise(p + i * pg, pg, MADV_DONTNEED), "madvise %d", i);
	CHECK(mrct_pending(t) == ENTRIES, "%u pending", mrct_pending(t));
	CHECK(mrct_sequence(t) == ENTRIES, "sequence %u after %d events",
	      mrct_sequence(t), ENTRIES);
	prod = __atomic_load_n(t->producer, __ATOMIC_ACQUIRE);
	seq = mrct_sequence(t);
	CHECK(!madvise(p + ENTRIES * pg, pg, MADV_DONTNEED), "madvise last");
	CHECK(mrct_overflow(t) == 1, "overflow %llu",
	      (unsigned long long)mrct_overflow(t));
	CHECK(*t->producer == prod, "producer moved on an overflow");
	CHECK(mrct_sequence(t) == seq + 1,
	      "sequence %u did not move on an overflow (was %u)",
	      mrct_sequence(t), seq);
}

static void pressure_in_full_ring(struct mrct *t)
{
	long before = t_stat("pressure_events");
	uint32_t seq = mrct_sequence(t);
	uint64_t asked;

	drop_slab();
	asked = __atomic_load_n(t->pressure, __ATOMIC_ACQUIRE);
	CHECK(asked > 0 && asked <= NW, "pressure %llu pages",
	      (unsigned long long)asked);
	CHECK(mrct_overflow(t) == 1, "pressure counted as overflow (%llu)",
	      (unsigned long long)mrct_overflow(t));
	CHECK(mrct_pending(t) == ENTRIES, "pressure took a ring slot");
	CHECK(mrct_sequence(t) == seq + 1, "sequence %u after pressure (was %u)",
	      mrct_sequence(t), seq);
	CHECK(t_stat("pressure_events") == before + 1, "pressure_events %ld",
	      t_stat("pressure_events") - before);

	/* Outstanding: a second request is not raised. */
	drop_slab();
	CHECK(*t->pressure == asked, "second request raised before the ack");
	CHECK(t_stat("pressure_events") == before + 1, "counted twice");

	mrct_drain(t);
	*t->overflow_seen = mrct_overflow(t);
	CHECK(news(t) == 1, "poll quiet with pressure unacknowledged");
	__atomic_store_n(t->pressure_seen, asked, __ATOMIC_RELEASE);
	CHECK(news(t) == 0, "poll reports news after everything was seen");

	drop_slab();
	CHECK(*t->pressure > asked, "no new request after the ack");
	T_LOG("pressure: %llu pages asked with the ring full, no overflow, no slot",
	      (unsigned long long)asked);
}

static void counter_needs_pressure(void)
{
	struct mrc_api api;
	int fd = t_open_dev();

	t_api_init(&api, 0, 0, MRC_FEAT_PRESSURE_COUNTER);
	CHECK(t_ioctl(fd, MRC_IOC_API, &api) == -EINVAL,
	      "PRESSURE_COUNTER without PRESSURE accepted");
	close(fd);
}

int main(void)
{
	long pg = t_page();
	uint64_t gen;
	uint32_t id;
	struct mrct t;
	char *p;
	int i;

	t_name = "t_sequence";
	mrct_open(&t, ENTRIES, 64, FEATURES);
	CHECK(t.api.features == FEATURES, "features %#llx granted",
	      (unsigned long long)t.api.features);
	CHECK(mrct_sequence(&t) == 0, "sequence starts at %u", mrct_sequence(&t));
	p = t_anon_guarded(NW * pg);
	for (i = 0; i < NW; i++)
		CHECK(!mrct_watch(&t, p + i * pg, pg, i, &id, &gen), "watch %d", i);

	overflow_moves_sequence(&t, p, pg);
	pressure_in_full_ring(&t);
	counter_needs_pressure();
	mrct_close(&t);
	T_LOG("PASS");
	return T_PASS;
}
