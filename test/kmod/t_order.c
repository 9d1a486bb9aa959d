// SPDX-License-Identifier: GPL-2.0
/*
 * The generation moves before the page tables change.
 *
 * A writer thread loops: fault a page in with non-zero contents, publish
 * the watch's generation as it is now, madvise(MADV_DONTNEED) the page.
 * A reader thread loops: load the published generation, the page's first
 * byte, then the watch's generation, each with acquire.  Seeing the zero
 * page that the madvise left behind together with the generation that was
 * current while the page still held data would mean user space could
 * observe new pages with an old generation, i.e. validate a stale
 * registration.  It must never happen.
 */
#include <pthread.h>
#include "mrc_test.h"

#define ROUNDS 3000

struct order {
	struct mrct t;
	volatile unsigned char *page;
	uint32_t id;
	uint64_t published;
	int stop;
	long zeros, violations, reads;
};

static void *writer(void *arg)
{
	struct order *o = arg;

	for (int i = 0; i < ROUNDS; i++) {
		o->page[0] = 1;		/* a fresh page with data */
		__atomic_store_n(&o->published, mrct_gen(&o->t, o->id),
				 __ATOMIC_RELEASE);
		CHECK(!madvise((void *)o->page, t_page(), MADV_DONTNEED),
		      "madvise");
	}
	__atomic_store_n(&o->stop, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *reader(void *arg)
{
	struct order *o = arg;

	while (!__atomic_load_n(&o->stop, __ATOMIC_ACQUIRE)) {
		uint64_t before = __atomic_load_n(&o->published,
						  __ATOMIC_ACQUIRE);
		unsigned char c = __atomic_load_n(&o->page[0],
						  __ATOMIC_ACQUIRE);
		uint64_t gen = mrct_gen(&o->t, o->id);

		o->reads++;
		if (c)
			continue;
		o->zeros++;
		if (gen == before)
			o->violations++;
	}
	return NULL;
}

int main(void)
{
	struct order o = { 0 };
	pthread_t w, r;
	uint64_t gen;

	t_name = "t_order";
	mrct_open(&o.t, 8, 8, 0);
	o.page = (volatile unsigned char *)t_anon_guarded(t_page());
	CHECK(!mrct_watch(&o.t, (void *)o.page, t_page(), 1, &o.id, &gen),
	      "watch");
	o.published = gen;
	CHECK(!pthread_create(&r, NULL, reader, &o), "reader");
	CHECK(!pthread_create(&w, NULL, writer, &o), "writer");
	pthread_join(w, NULL);
	pthread_join(r, NULL);
	CHECK(o.violations == 0,
	      "%ld of %ld zero reads came with the generation of the old page",
	      o.violations, o.zeros);
	CHECK(o.zeros > 0, "the reader never saw a zapped page (%ld reads)",
	      o.reads);
	mrct_close(&o.t);
	T_LOG("PASS (%d madvise rounds, %ld reads, %ld saw the zero page, all with a new generation)",
	      ROUNDS, o.reads, o.zeros);
	return T_PASS;
}
