// SPDX-License-Identifier: GPL-2.0
/*
 * Random ioctls, each with the one answer the ABI allows.
 *
 * Numbers: ours, ours with random sizes and directions (ENOTTY), random
 * ones (ENOTTY; the VFS's own ioctl types are left out), with random upper
 * 32 bits (the syscall takes an unsigned int).  Argument pointers: NULL, a
 * kernel address, a non-canonical one, an unmapped page, a struct that
 * runs into a PROT_NONE page (EFAULT), a read-only page (read fine, the
 * answer cannot be written: EFAULT, and WATCH must undo the watch), a
 * good buffer at any alignment, and the file's own ring.  Contents:
 * random bytes, or a valid struct with, half the time, one random byte
 * changed.  MADV_DONTNEED of the watched area in between.
 *
 * A model of the file (set up or not, watch_slots, which slots hold
 * which range, the user's watched pages) says for every call what the
 * module must answer, following the order of its checks (mrc_api.c,
 * mrc_watch.c, doc/mrcache.4): EFAULT, EINVAL, EBADFD, ENOENT, ENOSPC,
 * EBUSY, ESTALE or ENOTTY exactly when the arguments and the state call
 * for it, and success otherwise (ENOMEM is the one resource failure
 * accepted).  Successful answers are checked too: WATCH takes the lowest
 * free slot and echoes the range; generations never go back; QUERY
 * returns what WATCH stored.  After each file the model and the module
 * agree slot by slot and on the global counters.  First a fresh file
 * (which the fuzzer may set up itself), then one set up and mapped.
 * Seed 12345 or MRCACHE_FUZZ_SEED; 20000 calls per file x
 * MRCACHE_KFUZZ_SCALE, or MRCACHE_FUZZ_ITERS.
 */
#include "mrc_test.h"

#define T47 0x7ffffffff000ULL		/* TASK_SIZE, 4-level paging */
#define T57 0xfffffffffff000ULL		/* TASK_SIZE, 5-level paging */

struct mslot {
	bool used;
	uint64_t start, length, cookie;
	uint64_t gen;			/* lower bound of the generation */
};

struct model {
	int fd;
	bool ready;
	uint32_t slots;
	struct mslot *s;
	uint32_t *ids, nwatch;		/* used slots, unordered */
	long pages;			/* of this file's distinct ranges */
	char *ring;			/* mapped ring or NULL */
	size_t ring_len;
};

/* Where the argument lives. */
enum where {
	W_NULL, W_KERNEL, W_NONCANON, W_UNMAPPED, W_STRADDLE, W_RDONLY,
	W_BUF, W_RING, W_MAX
};

static long pg;
static uint64_t task_size;
static long max_ring, max_watches, def_ring, def_slots;
static long max_user_pages, base_pages;
static char *area;			/* 32 watched pages */
static char *guard;			/* a page, then a PROT_NONE page */
static char *ro_rw, *ro;		/* one memfd page: writable, read-only */
static char *unmapped;
static unsigned char buf[512] __attribute__((aligned(64)));
static long stat_ok[6], stat_err;

static bool ours(unsigned int cmd)
{
	return cmd == MRC_IOC_API || cmd == MRC_IOC_WATCH ||
	       cmd == MRC_IOC_UNWATCH || cmd == MRC_IOC_QUERY ||
	       cmd == MRC_IOC_REARM;
}

/* ioctl types the VFS answers before the driver (do_vfs_ioctl). */
static bool vfs_type(unsigned int cmd)
{
	unsigned int type = _IOC_TYPE(cmd);

	return type == 0 || type == 'T' || type == 'f' || type == 'X' ||
	       type == 0x94;
}

static unsigned int random_cmd(void)
{
	static const unsigned int mine[] = {
		MRC_IOC_API, MRC_IOC_WATCH, MRC_IOC_UNWATCH, MRC_IOC_QUERY,
		MRC_IOC_REARM,
	};
	unsigned int cmd;

	switch (t_rnd() % 4) {
	case 0:
		do
			cmd = t_rnd();
		while (vfs_type(cmd));
		return cmd;
	case 1:
		return _IOC(t_rnd() % 4, MRC_IOC_MAGIC, t_rnd() % 8,
			    t_rnd() % 300);
	}
	return mine[t_rnd() % 5];
}

/* ---- the model ---- */

static bool range_watched(struct model *m, uint64_t start, uint64_t len)
{
	uint32_t i;

	for (i = 0; i < m->nwatch; i++) {
		struct mslot *s = &m->s[m->ids[i]];

		if (s->start == start && s->length == len)
			return true;
	}
	return false;
}

static int first_free(struct model *m)
{
	uint32_t i;

	for (i = 0; i < m->slots; i++)
		if (!m->s[i].used)
			return i;
	return -1;
}

static void model_add(struct model *m, uint32_t id, const struct mrc_watch *w)
{
	if (!range_watched(m, w->start, w->length))
		m->pages += w->length / pg;
	m->s[id].used = true;
	m->s[id].start = w->start;
	m->s[id].length = w->length;
	m->s[id].cookie = w->cookie;
	m->ids[m->nwatch++] = id;
}

static void model_del(struct model *m, uint32_t id)
{
	struct mslot *s = &m->s[id];
	uint32_t i;

	for (i = 0; m->ids[i] != id; i++)
		;
	m->ids[i] = m->ids[--m->nwatch];
	s->used = false;
	s->gen++;		/* UNWATCH moves it */
	if (!range_watched(m, s->start, s->length))
		m->pages -= s->length / pg;
}

static void model_ready(struct model *m, uint32_t slots)
{
	m->ready = true;
	m->slots = slots;
	m->s = calloc(slots, sizeof(*m->s));
	m->ids = calloc(slots, sizeof(*m->ids));
	CHECK(m->s && m->ids, "calloc");
}

/* ---- what the module must answer ---- */

static bool readable(enum where w)
{
	return w == W_RDONLY || w == W_BUF || w == W_RING;
}

static bool writable(enum where w)
{
	return w == W_BUF || w == W_RING;
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* EINVAL checks of the handshake; *slots gets the answer. */
static int api_check(const struct mrc_api *a, uint32_t *slots)
{
	bool probe = a->flags & MRC_API_PROBE;
	uint64_t e = a->ring_entries, s = a->watch_slots;
	unsigned int i;

	if (a->abi_version != MRC_ABI_VERSION || a->flags & ~MRC_API_PROBE ||
	    a->pad)
		return -EINVAL;
	for (i = 0; i < 4; i++)
		if (a->reserved[i])
			return -EINVAL;
	if (!probe && (a->features & ~MRC_FEAT_ALL))
		return -EINVAL;
	if (!probe && (a->features & MRC_FEAT_PRESSURE_COUNTER) &&
	    !(a->features & MRC_FEAT_PRESSURE))
		return -EINVAL;
	if (!e)
		e = def_ring < max_ring ? def_ring : max_ring;
	if (!is_pow2(e) || e < MRC_RING_MIN_ENTRIES || e > (uint64_t)max_ring)
		return -EINVAL;
	if (!s)
		s = def_slots < max_watches ? def_slots : max_watches;
	if (s > (uint64_t)max_watches)
		return -EINVAL;
	*slots = s;
	return 0;
}

static int want_api(struct model *m, const struct mrc_api *a, enum where w)
{
	uint32_t slots;
	int ret;

	if (!readable(w))
		return -EFAULT;
	ret = api_check(a, &slots);
	if (ret)
		return ret;
	if (!writable(w))
		return -EFAULT;
	if (a->flags & MRC_API_PROBE)
		return 0;
	return m->ready ? -EBUSY : 0;
}

static int watch_check(const struct mrc_watch *w)
{
	uint64_t end = w->start + w->length;

	if (w->flags || w->reserved[0] || w->reserved[1])
		return -EINVAL;
	if (!w->length || w->start % pg || w->length % pg)
		return -EINVAL;
	if (end < w->start || end > task_size)
		return -EINVAL;
	return 0;
}

static int want_watch(struct model *m, const struct mrc_watch *a,
		      enum where w)
{
	int ret;

	if (!readable(w))
		return -EFAULT;
	ret = watch_check(a);
	if (ret)
		return ret;
	if (!m->ready)
		return -EBADFD;
	if (first_free(m) < 0)
		return -ENOSPC;
	if (!range_watched(m, a->start, a->length) &&
	    base_pages + m->pages + (long)(a->length / pg) > max_user_pages)
		return -ENOSPC;
	return writable(w) ? 0 : -EFAULT;
}

static int lookup(struct model *m, uint32_t id)
{
	if (!m->ready)
		return -EBADFD;
	if (id >= m->slots)
		return -EINVAL;
	return m->s[id].used ? 0 : -ENOENT;
}

/* The generation of a used slot, asked with a clean QUERY of our own. */
static uint64_t current_gen(struct model *m, uint32_t id)
{
	struct mrc_query q = { .id = id };

	CHECK(!t_ioctl(m->fd, MRC_IOC_QUERY, &q), "model QUERY %u", id);
	return q.generation;
}

static int want_id_op(struct model *m, unsigned int cmd, const void *arg,
		      enum where w)
{
	const struct mrc_unwatch *u = arg;
	const struct mrc_query *q = arg;
	const struct mrc_rearm *r = arg;
	int ret;

	if (!readable(w))
		return -EFAULT;
	if (cmd == MRC_IOC_UNWATCH) {
		if (u->flags || u->reserved[0] || u->reserved[1])
			return -EINVAL;
		return lookup(m, u->id);	/* nothing copied out */
	}
	if (cmd == MRC_IOC_QUERY) {
		if (q->flags || q->reserved[0] || q->reserved[1])
			return -EINVAL;
		ret = lookup(m, q->id);
	} else {
		if (r->flags & ~MRC_REARM_EXPECT || r->reserved ||
		    (!(r->flags & MRC_REARM_EXPECT) && r->expected))
			return -EINVAL;
		ret = lookup(m, r->id);
		if (!ret && (r->flags & MRC_REARM_EXPECT) &&
		    r->expected != current_gen(m, r->id))
			ret = -ESTALE;
		if (ret && ret != -ESTALE)
			return ret;
	}
	if (ret && ret != -ESTALE)
		return ret;
	return writable(w) ? ret : -EFAULT;
}

static int want(struct model *m, unsigned int cmd, const void *arg,
		enum where w)
{
	if (!ours(cmd))
		return -ENOTTY;
	if (cmd == MRC_IOC_API)
		return want_api(m, arg, w);
	if (cmd == MRC_IOC_WATCH)
		return want_watch(m, arg, w);
	return want_id_op(m, cmd, arg, w);
}

/* ---- arguments ---- */

/* A valid struct for @cmd; the caller may then change one byte. */
static void valid_arg(struct model *m, unsigned int cmd, void *p)
{
	union {
		struct mrc_api api;
		struct mrc_watch w;
		struct mrc_rearm r;
		struct mrc_unwatch u;
	} *a = p;
	uint32_t nid = (m->ready ? m->slots : 64) + 4;

	memset(p, 0, 256);
	if (cmd == MRC_IOC_API) {
		a->api.abi_version = MRC_ABI_VERSION;
		a->api.ring_entries = 8U << (t_rnd() % 6);
		a->api.watch_slots = 1 + t_rnd() % 64;
		a->api.features = t_rnd() % 16;
		a->api.flags = t_rnd() % 4 ? 0 : MRC_API_PROBE;
	} else if (cmd == MRC_IOC_WATCH) {
		a->w.cookie = t_rnd();
		switch (t_rnd() % 8) {
		case 0:		/* anywhere, up to 4 TiB: TASK_SIZE, pages */
			a->w.start = t_rnd() % (task_size / pg) * pg;
			a->w.length = (1 + t_rnd() % (1UL << 30)) * pg;
			break;
		case 1:		/* at the top of the address space */
			a->w.start = task_size - (t_rnd() % 4) * pg;
			a->w.length = (1 + t_rnd() % 4) * pg;
			break;
		default:
			a->w.start = (uintptr_t)area + (t_rnd() % 16) * pg;
			a->w.length = (1 + t_rnd() % 16) * pg;
		}
	} else {
		a->u.id = t_rnd() % nid;
		if (cmd == MRC_IOC_REARM && t_rnd() % 2) {
			a->r.flags = MRC_REARM_EXPECT;
			if (lookup(m, a->r.id) == 0)
				a->r.expected = current_gen(m, a->r.id) -
						t_rnd() % 2;
		}
	}
}

static void fill_arg(struct model *m, unsigned int cmd, void *p, size_t sz)
{
	size_t i;

	if (ours(cmd) && t_rnd() % 2) {
		valid_arg(m, cmd, p);
		if (t_rnd() % 2)
			((unsigned char *)p)[t_rnd() % sz] = t_rnd();
		return;
	}
	for (i = 0; i < sz; i++)
		((unsigned char *)p)[i] = t_rnd();
	/* Mostly-zero structs get past the reserved checks. */
	if (sz > 32 && t_rnd() % 2)
		memset((char *)p + 32, 0, sz - 32);
}

/*
 * Place an argument of @sz bytes for @cmd: returns the pointer to pass,
 * and in *content where to read what the module read.
 */
static void *place_arg(struct model *m, unsigned int cmd, size_t sz,
		       enum where *w, void **content)
{
	size_t off;
	char *p;

	*w = t_rnd() % W_MAX;
	if (*w == W_RING && !m->ring)
		*w = W_BUF;
	*content = buf;
	fill_arg(m, cmd, buf, sz);
	switch (*w) {
	case W_NULL:
		return NULL;
	case W_KERNEL:
		return (void *)0xffffffff81000000UL;
	case W_NONCANON:
		return (void *)(uintptr_t)(t_rnd() | 1ULL << 63);
	case W_UNMAPPED:
		return unmapped + t_rnd() % pg;
	case W_STRADDLE:	/* 1..sz-1 bytes run into the PROT_NONE page */
		return guard + pg - sz + 1 + t_rnd() % (sz - 1);
	case W_RDONLY:
		off = t_rnd() % (pg - sz);
		memcpy(ro_rw + off, buf, sz);
		*content = ro + off;
		return ro + off;
	case W_RING:
		off = (t_rnd() % ((m->ring_len - sz) / 8)) * 8;
		p = m->ring + off;
		memcpy(p, buf, sz);
		*content = p;
		return p;
	default:
		p = (char *)buf + 256 + t_rnd() % 8;
		memcpy(p, buf, sz);
		*content = p;
		return p;
	}
}

/* ---- answers ---- */

static void gen_at_least(struct model *m, uint32_t id, uint64_t gen,
			 bool moved, const char *what)
{
	uint64_t floor = m->s[id].gen;

	CHECK(gen > floor || (!moved && gen == floor),
	      "%s: slot %u generation %llu, was at least %llu", what, id,
	      (unsigned long long)gen, (unsigned long long)floor);
	m->s[id].gen = gen;
}

static void on_success(struct model *m, unsigned int cmd, const void *in,
		       const void *out)
{
	if (cmd == MRC_IOC_API) {
		const struct mrc_api *a = in;
		uint32_t slots;

		CHECK(!api_check(a, &slots), "API");
		if (!(a->flags & MRC_API_PROBE))
			model_ready(m, slots);
		stat_ok[0]++;
	} else if (cmd == MRC_IOC_WATCH) {
		const struct mrc_watch *a = in, *o = out;
		int id = first_free(m);

		CHECK(o->id == (uint32_t)id && o->start == a->start &&
		      o->length == a->length && o->cookie == a->cookie &&
		      !o->flags && !o->reserved[0] && !o->reserved[1],
		      "WATCH answer: id %u (lowest free %d)", o->id, id);
		gen_at_least(m, id, o->generation, true, "WATCH");
		model_add(m, id, a);
		stat_ok[1]++;
	} else if (cmd == MRC_IOC_UNWATCH) {
		model_del(m, ((const struct mrc_unwatch *)in)->id);
		stat_ok[2]++;
	} else if (cmd == MRC_IOC_QUERY) {
		const struct mrc_query *o = out;
		struct mslot *s = &m->s[o->id];

		CHECK(o->id == ((const struct mrc_query *)in)->id &&
		      o->start == s->start && o->length == s->length &&
		      o->cookie == s->cookie && !o->flags &&
		      (o->state == MRC_STATE_ARMED ||
		       o->state == MRC_STATE_INVALID) &&
		      !o->reserved[0] && !o->reserved[1],
		      "QUERY answer for slot %u", o->id);
		gen_at_least(m, o->id, o->generation, false, "QUERY");
		stat_ok[3]++;
	} else {
		const struct mrc_rearm *o = out;

		gen_at_least(m, o->id, o->generation, false, "REARM");
		stat_ok[4]++;
	}
}

static void one_call(struct model *m)
{
	unsigned int cmd = random_cmd();
	size_t sz = ours(cmd) ? _IOC_SIZE(cmd) : 64;
	unsigned char in[256];
	void *arg, *content;
	enum where w;
	int ret, expect;

	arg = place_arg(m, cmd, sz, &w, &content);
	memcpy(in, buf, sz);	/* what the module reads, if it can */
	expect = want(m, cmd, in, w);
	ret = t_ioctl(m->fd, cmd | (t_rnd() % 4 ? 0 : t_rnd() << 32), arg);
	/* An invalidation between our QUERY and the REARM: fine. */
	if (ret == -ESTALE && !expect && cmd == MRC_IOC_REARM &&
	    current_gen(m, ((struct mrc_rearm *)in)->id) !=
	    ((struct mrc_rearm *)in)->expected)
		expect = -ESTALE;
	if (ret == -ENOMEM && !expect)
		return;
	CHECK(ret == expect, "cmd %#x (%s, %zu bytes) at %d: got %d (%s), "
	      "wanted %d (%s)", cmd, ours(cmd) ? "ours" : "not ours", sz, w,
	      ret, strerror(-ret), expect, strerror(-expect));
	if (ret)
		stat_err++;
	if (!ret || (ret == -ESTALE && writable(w)))
		on_success(m, cmd, in, content);
	if (t_rnd() % 64 == 0)
		madvise(area, 32 * pg, MADV_DONTNEED);
}

/* The module agrees with the model: every slot, and the counters. */
static void agree(struct model *m, long watches0)
{
	struct mrc_query q;
	uint32_t id;
	int ret;

	for (id = 0; m->ready && id < m->slots; id++) {
		memset(&q, 0, sizeof(q));
		q.id = id;
		ret = t_ioctl(m->fd, MRC_IOC_QUERY, &q);
		CHECK(ret == (m->s[id].used ? 0 : -ENOENT),
		      "slot %u: QUERY %d, model says %s", id, ret,
		      m->s[id].used ? "used" : "free");
		CHECK(ret || (q.start == m->s[id].start &&
			      q.length == m->s[id].length), "slot %u range",
		      id);
	}
	if (watches0 >= 0)
		CHECK(t_stat("watches") == watches0 + m->nwatch,
		      "stats/watches %ld, model %ld", t_stat("watches"),
		      watches0 + m->nwatch);
}

static void fuzz(struct model *m, long iters)
{
	long i, watches0 = t_stat("watches") - m->nwatch;

	for (i = 0; i < iters; i++)
		one_call(m);
	agree(m, watches0);
}

/*
 * TASK_SIZE, from the address space rather than from the module under
 * test: above 2^47 only 5-level paging can map anything.
 */
static void find_task_size(void)
{
	void *hi = (void *)(1ULL << 50);
	void *m = mmap(hi, pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
		       MAP_FIXED_NOREPLACE, -1, 0);

	task_size = m == hi ? T57 : T47;
	if (m != MAP_FAILED)
		munmap(m, pg);
}

static void setup_memory(void)
{
	int mfd = memfd_create("t_fuzz", MFD_CLOEXEC);

	unmapped = t_anon(pg);
	munmap(unmapped, pg);
	area = t_anon_guarded(32 * pg);
	guard = t_anon(2 * pg);
	CHECK(!mprotect(guard + pg, pg, PROT_NONE), "mprotect");
	CHECK(mfd >= 0 && !ftruncate(mfd, pg), "memfd");
	ro_rw = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	ro = mmap(NULL, pg, PROT_READ, MAP_SHARED, mfd, 0);
	CHECK(ro_rw != MAP_FAILED && ro != MAP_FAILED, "memfd map");
	close(mfd);
}

int main(void)
{
	long iters, files0, ring0;
	struct model m = { 0 };
	const char *s;
	struct mrct t;
	uint64_t gen;
	uint32_t id;
	char *p;

	t_name = "t_fuzz";
	pg = t_page();
	t_seed(12345);
	iters = 20000 * t_scale();
	s = getenv("MRCACHE_FUZZ_ITERS");
	if (s && *s)
		iters = strtol(s, NULL, 0);
	max_ring = t_param_or("max_ring_entries", 65536);
	max_watches = t_param_or("max_watches", 65536);
	def_ring = t_param_or("default_ring_entries", 4096);
	def_slots = t_param_or("default_watch_slots", 4096);
	max_user_pages = t_param_or("max_user_pages", 1L << 28);
	base_pages = t_stat("watched_pages");
	files0 = t_stat("files");
	ring0 = t_stat("ring_bytes");
	CHECK(base_pages >= 0, "no stats in sysfs (not root?)");
	setup_memory();
	find_task_size();
	T_LOG("%ld calls per file, TASK_SIZE %#llx", iters,
	      (unsigned long long)task_size);

	m.fd = t_open_dev();
	fuzz(&m, iters);
	close(m.fd);
	free(m.s);
	free(m.ids);

	mrct_open(&t, 64, 64, 0);
	memset(&m, 0, sizeof(m));
	m.fd = t.fd;
	model_ready(&m, 64);
	m.ring = t.map;
	m.ring_len = t.api.mmap_length;
	fuzz(&m, iters);
	mrct_close(&t);
	CHECK(t_stat("files") == files0 && t_stat("ring_bytes") == ring0 &&
	      t_stat("watched_pages") == base_pages,
	      "after close: files %ld ring_bytes %ld watched_pages %ld",
	      t_stat("files"), t_stat("ring_bytes"),
	      t_stat("watched_pages"));

	mrct_open(&t, 64, 64, 0);
	p = t_anon_guarded(2 * pg);
	CHECK(!mrct_watch(&t, p, 2 * pg, 77, &id, &gen), "watch after fuzz");
	CHECK(!munmap(p, 2 * pg), "munmap");
	mrct_expect(&t, id, 77, MRC_REASON_UNMAP, p, p + 2 * pg);
	mrct_close(&t);
	T_LOG("PASS: %ld API, %ld WATCH, %ld UNWATCH, %ld QUERY, %ld REARM "
	      "succeeded; %ld calls failed as predicted", stat_ok[0],
	      stat_ok[1], stat_ok[2], stat_ok[3], stat_ok[4], stat_err);
	return T_PASS;
}
