// SPDX-License-Identifier: GPL-2.0
/*
 * User space scribbles over its whole ring mapping (every byte is
 * writable: header constants, producer, sequence, overflow, pressure,
 * consumer, overflow_seen, pressure_seen, event slots, generations) with
 * random values and hostile consumer indices, while its watched ranges are
 * unmapped and cleared and drop_caches asks for memory back.  Three files
 * watch the same ranges: A without pressure (exact accounting), B with
 * MRC_FEAT_PRESSURE_COUNTER, C with PRESSURE events in the ring.
 *
 * After every round, for every file, the kernel
 *  - changed nothing but its own fields: producer, sequence, overflow and
 *    pressure in the header, the event slots from its producer index on
 *    (learnt from read(), which reports the kernel's private copies) and
 *    the generations of the file's watches; every other byte is still
 *    what user space wrote;
 *  - wrote only valid events into those slots (a watch of this file with
 *    its cookie and a range inside the watch, or a PRESSURE request);
 *  - queued or counted exactly one event per watch that became INVALID
 *    (file A, whose sequence must equal producer + overflow);
 *  - moved the generation of every watch at least once per invalidation,
 *    and wrote the shared generation equal to QUERY's;
 *  - raised a pressure request only when pressure_seen acknowledged the
 *    last one, and only upwards;
 *  - refused REARM with MRC_REARM_EXPECT of a scribbled generation.
 * Then every file gets a well-behaved consumer again and works exactly
 * (one event at the kernel's producer, pressure on drop_caches), a fresh
 * file works, and the module's counters are back where they started.
 * Rounds: 60 x MRCACHE_KFUZZ_SCALE; seed MRCACHE_FUZZ_SEED.
 */
#include "mrc_test.h"

#define NRANGE 8
#define RPAGES 2
#define NFILE 3

struct sfile {
	const char *name;
	uint64_t feat;
	uint32_t entries;
	struct mrct t;
	unsigned char *shadow;		/* what user space wrote last */
	unsigned char *snap;		/* the mapping, when checked */
	uint32_t ids[NRANGE];
	uint64_t gen[NRANGE];		/* kernel generation, round start */
	uint32_t kprod;			/* kernel's producer, round start */
	uint64_t kover;
	uint64_t kpress;		/* last pressure the kernel wrote */
	long raised, pressure_events, posted, overflowed;
};

struct kstate {
	uint32_t prod;
	uint64_t over;
};

static struct sfile files[NFILE] = {
	{ .name = "A", .feat = 0, .entries = 8 },
	{ .name = "B", .entries = 16,
	  .feat = MRC_FEAT_PRESSURE | MRC_FEAT_PRESSURE_COUNTER },
	{ .name = "C", .feat = MRC_FEAT_PRESSURE, .entries = 16 },
};
static char *area;
static long pg;

static char *range_at(int r)
{
	return area + (long)r * RPAGES * pg;
}

static uint32_t *u32_at(struct sfile *f, uint32_t off)
{
	return (uint32_t *)((char *)f->t.map + off);
}

static uint64_t *u64_at(struct sfile *f, uint32_t off)
{
	return (uint64_t *)((char *)f->t.map + off);
}

static uint64_t get64(const unsigned char *m, uint32_t off)
{
	uint64_t v;

	memcpy(&v, m + off, sizeof(v));
	return v;
}

static uint32_t get32(const unsigned char *m, uint32_t off)
{
	uint32_t v;

	memcpy(&v, m + off, sizeof(v));
	return v;
}

/*
 * The kernel's own producer and overflow count: read() reports its
 * private copies; EAGAIN means they equal what user space acknowledged.
 */
static struct kstate kstate(struct sfile *f)
{
	struct mrc_read_info info;
	struct kstate k;
	ssize_t r = read(f->t.fd, &info, sizeof(info));

	if (r == (ssize_t)sizeof(info)) {
		k.prod = info.producer;
		k.over = info.overflow;
		return k;
	}
	CHECK(r < 0 && errno == EAGAIN, "%s: read: %s", f->name,
	      strerror(errno));
	k.prod = *f->t.consumer;
	k.over = *f->t.overflow_seen;
	return k;
}

/* Did the kernel write the pressure counter since we last looked? */
static void observe_pressure(struct sfile *f)
{
	uint32_t off = f->t.api.off.pressure;
	uint64_t now = *u64_at(f, off), then = get64(f->shadow, off);

	if (!(f->feat & MRC_FEAT_PRESSURE_COUNTER) || now == then)
		return;
	CHECK(get64(f->shadow, f->t.api.off.pressure_seen) == f->kpress,
	      "%s: pressure raised to %llu without the last one (%llu) "
	      "acknowledged", f->name, (unsigned long long)now,
	      (unsigned long long)f->kpress);
	CHECK(now > f->kpress, "%s: pressure went from %llu to %llu",
	      f->name, (unsigned long long)f->kpress,
	      (unsigned long long)now);
	f->kpress = now;
	f->raised++;
	memcpy(f->shadow + off, &now, sizeof(now));
}

static uint32_t hostile_consumer(struct sfile *f)
{
	uint32_t e = f->entries;

	switch (t_rnd() % 6) {
	case 0:
		return f->kprod;			/* empty: room for e */
	case 1:
		return f->kprod - e + 1 + t_rnd() % e;	/* some room */
	case 2:
		return f->kprod - e;			/* exactly full */
	case 3:
		return f->kprod + 1 + t_rnd() % 4096;	/* ahead of it */
	case 4:
		return f->kprod - e - t_rnd() % 4096;	/* overrun */
	}
	return t_rnd();
}

static void query_all(struct sfile *f, struct mrc_query *q)
{
	int r;

	for (r = 0; r < NRANGE; r++)
		CHECK(!mrct_query(&f->t, f->ids[r], &q[r]), "%s: query",
		      f->name);
}

static bool kstate_eq(struct kstate a, struct kstate b)
{
	return a.prod == b.prod && a.over == b.over;
}

/* REARM every INVALID watch; a scribbled generation is refused first. */
static void rearm_all(struct sfile *f)
{
	struct mrc_query q;
	int r, ret;

	for (r = 0; r < NRANGE; r++) {
		struct mrc_rearm a = { .id = f->ids[r] };

		CHECK(!mrct_query(&f->t, f->ids[r], &q), "query");
		if (q.state != MRC_STATE_INVALID)
			continue;
		a.flags = MRC_REARM_EXPECT;
		a.expected = f->t.gens[f->ids[r]] + 1 + t_rnd() % 8;
		ret = t_ioctl(f->t.fd, MRC_IOC_REARM, &a);
		CHECK(ret == -ESTALE && a.generation >= q.generation,
		      "%s: REARM expecting a scribbled generation: %d",
		      f->name, ret);
		CHECK(!mrct_query(&f->t, f->ids[r], &q) &&
		      q.state == MRC_STATE_INVALID,
		      "%s: a refused REARM armed the watch", f->name);
		a.flags = 0;
		a.expected = 0;
		CHECK(!t_ioctl(f->t.fd, MRC_IOC_REARM, &a), "REARM");
	}
}

/*
 * Random bytes everywhere, then hostile but sometimes plausible indices.
 * Starts with every watch ARMED and a known kernel producer; retried if
 * the kernel posted something meanwhile (kswapd, NUMA balancing).
 */
static bool scribble_once(struct sfile *f)
{
	struct mrc_ring_offsets *o = &f->t.api.off;
	size_t i, len = f->t.api.mmap_length;
	struct mrc_query q[NRANGE];
	struct kstate k;
	int r;

	rearm_all(f);
	observe_pressure(f);
	k = kstate(f);
	f->kprod = k.prod;
	f->kover = k.over;
	for (i = 0; i < len; i += 8)
		*(uint64_t *)((char *)f->t.map + i) = t_rnd();
	*u32_at(f, o->consumer) = hostile_consumer(f);
	if (t_rnd() % 2)
		*u64_at(f, o->overflow_seen) = f->kover;
	if (t_rnd() % 2)
		*u64_at(f, o->pressure_seen) = f->kpress;
	memcpy(f->shadow, f->t.map, len);
	query_all(f, q);
	for (r = 0; r < NRANGE; r++) {
		if (q[r].state != MRC_STATE_ARMED)
			return false;
		f->gen[r] = q[r].generation;
	}
	return kstate_eq(k, kstate(f));
}

static void scribble(struct sfile *f)
{
	int tries;

	for (tries = 0; !scribble_once(f); tries++)
		CHECK(tries < 10, "%s: the kernel keeps posting", f->name);
}

/*
 * @n invalidations of range @r, each one munmap+mmap or MADV_DONTNEED.
 * Returns the reason of the first.
 */
static int invalidate(int r, int n)
{
	char *p = range_at(r), *q;
	size_t len = RPAGES * pg;
	int first = 0;

	while (n--) {
		if (t_rnd() % 2) {
			CHECK(!madvise(p, len, MADV_DONTNEED), "madvise");
			first = first ? first : MRC_REASON_CLEAR;
		} else {
			first = first ? first : MRC_REASON_UNMAP;
			CHECK(!munmap(p, len), "munmap");
			q = mmap(p, len, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			CHECK(q == p, "mmap back: %s", strerror(errno));
		}
		memset(p, r, len);
	}
	return first;
}

static int watch_index(struct sfile *f, uint32_t id)
{
	int r;

	for (r = 0; r < NRANGE; r++)
		if (f->ids[r] == id)
			return r;
	return -1;
}

/* A slot the kernel wrote: a watch event of this file, or pressure. */
static void check_event(struct sfile *f, const struct mrc_event *ev,
			const struct mrc_query *q, uint32_t slot)
{
	int r = watch_index(f, ev->id);

	if (ev->reason == MRC_REASON_PRESSURE) {
		CHECK(f->feat == MRC_FEAT_PRESSURE && ev->id == MRC_WATCH_NONE &&
		      ev->cookie == 0 && ev->start == 0 && ev->end > 0 &&
		      ev->end <= NRANGE * RPAGES && ev->flags == 0,
		      "%s: slot %u: bad PRESSURE event id %#x end %llu",
		      f->name, slot, ev->id, (unsigned long long)ev->end);
		f->pressure_events++;
		return;
	}
	CHECK(r >= 0, "%s: slot %u: event for id %u, not a watch of the "
	      "file (reason %u)", f->name, slot, ev->id, ev->reason);
	CHECK(ev->cookie == (uint64_t)r + 100 * (f->name[0] - 'A' + 1) &&
	      (ev->reason == MRC_REASON_UNMAP ||
	       ev->reason == MRC_REASON_CLEAR) && ev->flags == 0 &&
	      ev->start < ev->end &&
	      ev->start >= (uintptr_t)range_at(r) &&
	      ev->end <= (uintptr_t)range_at(r) + RPAGES * pg,
	      "%s: slot %u: event id %u cookie %llu %s [%#llx,%#llx)",
	      f->name, slot, ev->id, (unsigned long long)ev->cookie,
	      t_reason(ev->reason), (unsigned long long)ev->start,
	      (unsigned long long)ev->end);
	CHECK(q[r].state == MRC_STATE_INVALID,
	      "%s: event for watch %d, which is still ARMED", f->name, r);
}

static void check_bytes(struct sfile *f, size_t from, size_t to,
			const char *what)
{
	size_t i;

	for (i = from; i < to; i++)
		CHECK(f->snap[i] == f->shadow[i],
		      "%s: the kernel wrote %s at byte %zu (%#x, user "
		      "space wrote %#x)", f->name, what, i, f->snap[i],
		      f->shadow[i]);
}

/* Page 0: only the producer line's kernel fields may have changed. */
static void check_header(struct sfile *f)
{
	struct mrc_ring_offsets *o = &f->t.api.off;
	struct { uint32_t off, len; } k[] = {
		{ o->producer, 4 }, { o->sequence, 4 }, { o->overflow, 8 },
		{ o->pressure, 8 },
	};
	size_t i, j;

	for (i = 0; i < o->events; i++) {
		for (j = 0; j < 4; j++)
			if (i >= k[j].off && i < k[j].off + k[j].len)
				break;
		if (j == 4)
			check_bytes(f, i, i + 1, "into the header");
	}
}

/* Slots [from, from + n) are the kernel's; every other byte is ours. */
static void check_events(struct sfile *f, const struct mrc_query *q,
			 uint32_t from, uint32_t n)
{
	struct mrc_ring_offsets *o = &f->t.api.off;
	uint32_t s, mask = f->entries - 1;
	long seen[NRANGE] = { 0 };

	for (s = 0; s < f->entries; s++) {
		size_t at = o->events + s * sizeof(struct mrc_event);
		const struct mrc_event *ev = (const void *)(f->snap + at);

		if (n < f->entries && ((s - from) & mask) >= n) {
			check_bytes(f, at, at + sizeof(*ev), "an event slot");
			continue;
		}
		check_event(f, ev, q, s);
		if (ev->reason != MRC_REASON_PRESSURE)
			CHECK(++seen[watch_index(f, ev->id)] == 1,
			      "%s: two events for watch %u in one round",
			      f->name, ev->id);
	}
	check_bytes(f, o->events + f->entries * sizeof(struct mrc_event),
		    o->generations, "past the last slot");
}

/* Generations: the watches' may move (to QUERY's value), nothing else. */
static void check_gens(struct sfile *f, const struct mrc_query *q,
		       const int *ops)
{
	struct mrc_ring_offsets *o = &f->t.api.off;
	uint32_t id, slots = f->t.api.watch_slots;
	int r;

	for (id = 0; id < slots; id++) {
		size_t at = o->generations + id * sizeof(uint64_t);

		r = watch_index(f, id);
		if (r < 0 || q[r].generation == f->gen[r]) {
			check_bytes(f, at, at + 8, "a generation");
			continue;
		}
		CHECK(get64(f->snap, at) == q[r].generation,
		      "%s: shared generation %llu, QUERY says %llu", f->name,
		      (unsigned long long)get64(f->snap, at),
		      (unsigned long long)q[r].generation);
	}
	check_bytes(f, o->generations + slots * sizeof(uint64_t),
		    f->t.api.mmap_length, "past the generations");
	for (r = 0; r < NRANGE; r++)
		CHECK(q[r].generation >= f->gen[r] + ops[r],
		      "%s: watch %d: %d invalidations moved the generation "
		      "from %llu to %llu", f->name, r, ops[r],
		      (unsigned long long)f->gen[r],
		      (unsigned long long)q[r].generation);
}

/* Header fields the kernel must have written, given what it did. */
static void check_kernel_fields(struct sfile *f, struct kstate k, long inv)
{
	struct mrc_ring_offsets *o = &f->t.api.off;
	uint32_t posted = k.prod - f->kprod;
	uint64_t over = k.over - f->kover;

	if (posted)
		CHECK(get32(f->snap, o->producer) == k.prod,
		      "%s: producer %u, kernel's %u", f->name,
		      get32(f->snap, o->producer), k.prod);
	if (over)
		CHECK(get64(f->snap, o->overflow) == k.over,
		      "%s: overflow %llu, kernel's %llu", f->name,
		      (unsigned long long)get64(f->snap, o->overflow),
		      (unsigned long long)k.over);
	if (f->feat == 0) {
		CHECK(posted + over == (uint64_t)inv, "%s: %ld watches "
		      "invalidated, %u events queued + %llu counted", f->name,
		      inv, posted, (unsigned long long)over);
		if (posted + over)
			CHECK(get32(f->snap, o->sequence) == k.prod + k.over,
			      "%s: sequence %u, wanted %llu", f->name,
			      get32(f->snap, o->sequence),
			      (unsigned long long)(k.prod + k.over));
	}
	f->posted += posted;
	f->overflowed += over;
}

/*
 * Everything one file shows after a round, checked on a snapshot taken
 * while neither the kernel's producer and overflow nor any generation
 * moved; false if they did (kswapd, NUMA balancing): try again.
 */
static bool check_file(struct sfile *f, const int *ops)
{
	struct mrc_query q[NRANGE], q2[NRANGE];
	struct kstate k = kstate(f);
	long inv = 0;
	int r;

	query_all(f, q);
	memcpy(f->snap, f->t.map, f->t.api.mmap_length);
	query_all(f, q2);
	if (!kstate_eq(k, kstate(f)))
		return false;
	for (r = 0; r < NRANGE; r++) {
		if (q[r].generation != q2[r].generation)
			return false;
		inv += q[r].state == MRC_STATE_INVALID;
	}
	check_header(f);
	check_events(f, q, f->kprod, k.prod - f->kprod);
	check_gens(f, q, ops);
	check_kernel_fields(f, k, inv);
	observe_pressure(f);
	return true;
}

static void round_once(long n, bool drop)
{
	int ops[NRANGE], r, i, tries;

	for (i = 0; i < NFILE; i++)
		scribble(&files[i]);
	for (r = 0; r < NRANGE; r++) {
		ops[r] = t_rnd() % 3;
		invalidate(r, ops[r]);
	}
	if (drop)
		CHECK(!t_drop_slab(), "drop_caches: %s", strerror(errno));
	for (i = 0; i < NFILE; i++) {
		for (tries = 0; !check_file(&files[i], ops); tries++)
			CHECK(tries < 10, "round %ld: file %s keeps changing",
			      n, files[i].name);
	}
}

/* A well-behaved consumer again: acknowledge what the kernel did. */
static void behave(struct sfile *f)
{
	struct kstate k;

	rearm_all(f);
	observe_pressure(f);
	k = kstate(f);
	*f->t.consumer = k.prod;
	*f->t.overflow_seen = k.over;
	*f->t.pressure_seen = *f->t.pressure = f->kpress;
	memcpy(f->shadow, f->t.map, f->t.api.mmap_length);
	f->kprod = k.prod;
	f->kover = k.over;
}

/* ... and everything works exactly: one event where it belongs, pressure. */
static void works_again(void)
{
	struct mrc_event ev;
	long raised;
	int i, reason;

	for (i = 0; i < NFILE; i++)
		behave(&files[i]);
	reason = invalidate(0, 1);
	for (i = 0; i < NFILE; i++) {
		struct sfile *f = &files[i];

		CHECK(*f->t.producer == f->kprod + 1, "%s: producer %u after "
		      "one event, wanted %u", f->name, *f->t.producer,
		      f->kprod + 1);
		mrct_expect(&f->t, f->ids[0], 100 * (i + 1), reason,
			    range_at(0), range_at(0) + RPAGES * pg);
		CHECK(mrct_gen(&f->t, f->ids[0]) > f->gen[0],
		      "%s: generation did not move", f->name);
		CHECK(!mrct_pop(&f->t, &ev) || ev.reason == MRC_REASON_PRESSURE,
		      "%s: a second event", f->name);
		behave(f);
	}
	raised = files[1].raised;
	CHECK(!t_drop_slab(), "drop_caches");
	observe_pressure(&files[1]);
	CHECK(files[1].raised == raised + 1,
	      "B: no pressure request after drop_caches");
	CHECK(mrct_pop(&files[2].t, &ev) && ev.reason == MRC_REASON_PRESSURE,
	      "C: no PRESSURE event after drop_caches");
}

static void fresh_file_works(void)
{
	struct mrct t;
	uint64_t gen;
	uint32_t id;
	char *p = t_anon_guarded(pg);

	mrct_open(&t, 8, 8, 0);
	CHECK(!mrct_watch(&t, p, pg, 7, &id, &gen), "watch");
	CHECK(!munmap(p, pg), "munmap");
	mrct_expect(&t, id, 7, MRC_REASON_UNMAP, p, p + pg);
	CHECK(mrct_gen(&t, id) > gen, "generation");
	mrct_close(&t);
}

int main(void)
{
	long n, rounds, files0 = t_stat("files");
	uint64_t gen;
	int i, r;

	t_name = "t_scribble";
	pg = t_page();
	t_seed(0x5c1bb1e);
	rounds = 60 * t_scale();
	if (access("/proc/sys/vm/drop_caches", W_OK))
		SKIP("needs root (drop_caches)");
	area = t_anon_guarded(NRANGE * RPAGES * pg);
	for (i = 0; i < NFILE; i++) {
		struct sfile *f = &files[i];

		mrct_open(&f->t, f->entries, 4 * NRANGE, f->feat);
		CHECK(fcntl(f->t.fd, F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK");
		f->shadow = calloc(1, f->t.api.mmap_length);
		f->snap = calloc(1, f->t.api.mmap_length);
		CHECK(f->shadow && f->snap, "calloc");
		for (r = 0; r < NRANGE; r++) {
			CHECK(!mrct_watch(&f->t, range_at(r), RPAGES * pg,
					  r + 100 * (i + 1), &f->ids[r], &gen),
			      "watch");
			f->gen[r] = gen;
		}
		memcpy(f->shadow, f->t.map, f->t.api.mmap_length);
	}
	for (n = 0; n < rounds; n++)
		round_once(n, n % 3 == 2);
	works_again();
	for (i = 0; i < NFILE; i++) {
		T_LOG("file %s: %ld events queued, %ld counted as overflow, "
		      "%ld pressure requests, %ld PRESSURE events", files[i].name,
		      files[i].posted, files[i].overflowed, files[i].raised,
		      files[i].pressure_events);
		mrct_close(&files[i].t);
	}
	fresh_file_works();
	if (files0 == 0)
		t_expect_idle();
	T_LOG("PASS (%ld rounds)", rounds);
	return T_PASS;
}
