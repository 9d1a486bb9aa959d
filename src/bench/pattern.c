// SPDX-License-Identifier: BSD-2-Clause
/*
 * Working sets and their bytes. A buffer's content is a function of
 * (id, gen), and each message overwrites its first bytes with the message
 * number: a WRITE that read stale pages (a registration outliving the
 * memory it pinned) delivers the old generation's bytes or an old number,
 * and the check sees it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pattern.h"

const char *const order_names[NORDERS] = { "cyclic", "random" };
const char *const churn_names[NCHURNS] = { "none", "malloc", "mmap" };

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t word_at(uint64_t seed, size_t k)
{
	return seed + k * 0x2545f4914f6cdd1dull;
}

void pattern_fill(void *p, size_t len, uint32_t id, uint32_t gen)
{
	uint64_t seed = mix((uint64_t)id << 32 | gen), w;
	unsigned char *c = p;
	size_t k;

	for (k = 0; (k + 1) * 8 <= len; k++) {
		w = word_at(seed, k);
		memcpy(c + k * 8, &w, 8);
	}
	w = word_at(seed, k);
	memcpy(c + k * 8, &w, len - k * 8);
}

void pattern_stamp(void *p, size_t len, uint64_t msgno)
{
	memcpy(p, &msgno, len < 8 ? len : 8);
}

int pattern_check(const void *p, size_t len, uint32_t id, uint32_t gen, uint64_t msgno)
{
	uint64_t seed = mix((uint64_t)id << 32 | gen), w;
	const unsigned char *c = p;
	size_t head = len < 8 ? len : 8, k;

	if (memcmp(c, &msgno, head))
		return 0;
	for (k = 1; (k + 1) * 8 <= len; k++) {
		w = word_at(seed, k);
		if (memcmp(c + k * 8, &w, 8))
			return 0;
	}
	if (k * 8 >= len)
		return 1;
	w = word_at(seed, k);
	return !memcmp(c + k * 8, &w, len - k * 8);
}

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* munmap+mmap at the same address: new, zeroed pages under the old range. */
static int remap(struct wset *w, struct wbuf *b)
{
	size_t len = w->stride - page_size();

	if (munmap(b->p, len))
		return -errno;
	if (mmap(b->p, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		return -errno;
	return 0;
}

int wset_churn(struct wset *w, struct wbuf *b)
{
	int ret = 0;

	if (w->churn == CHURN_MALLOC) {
		free(b->p);
		b->p = malloc(w->size);
		ret = b->p ? 0 : -ENOMEM;
	} else {
		ret = remap(w, b);
	}
	if (ret)
		return ret;
	b->gen++;
	pattern_fill(b->p, w->size, b->id, b->gen);
	return 0;
}

static int wset_alloc(struct wset *w)
{
	if (w->churn == CHURN_MALLOC) {
		for (int i = 0; i < w->n; i++)
			if (!(w->bufs[i].p = malloc(w->size)))
				return -ENOMEM;
		return 0;
	}
	/* A guard page apart, so caches cannot merge neighbours into one. */
	w->stride = ((w->size + page_size() - 1) & ~(page_size() - 1)) + page_size();
	w->arena = mmap(NULL, w->stride * (size_t)w->n, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (w->arena == MAP_FAILED) {
		w->arena = NULL;
		return -ENOMEM;
	}
	for (int i = 0; i < w->n; i++)
		w->bufs[i].p = w->arena + (size_t)i * w->stride;
	return 0;
}

int wset_create(struct wset *w, int n, size_t size, enum order order, enum churn churn)
{
	int ret;

	*w = (struct wset){ .n = n, .size = size, .order = order, .churn = churn,
			    .rng = 0x853c49e6748fea9bull };
	w->bufs = calloc((size_t)n, sizeof(*w->bufs));
	if (!w->bufs)
		return -ENOMEM;
	ret = wset_alloc(w);
	for (int i = 0; i < n && !ret; i++) {
		w->bufs[i].id = (uint32_t)i;
		pattern_fill(w->bufs[i].p, size, (uint32_t)i, 0);
	}
	if (ret)
		wset_destroy(w);
	return ret;
}

void wset_destroy(struct wset *w)
{
	if (w->bufs && w->churn == CHURN_MALLOC)
		for (int i = 0; i < w->n; i++)
			free(w->bufs[i].p);
	if (w->arena)
		munmap(w->arena, w->stride * (size_t)w->n);
	free(w->bufs);
	memset(w, 0, sizeof(*w));
}

struct wbuf *wset_pick(struct wset *w, uint64_t i)
{
	if (w->order == ORDER_CYCLIC)
		return &w->bufs[i % (uint64_t)w->n];
	w->rng = mix(w->rng);
	return &w->bufs[w->rng % (uint64_t)w->n];
}
