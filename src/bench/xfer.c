// SPDX-License-Identifier: BSD-2-Clause
/*
 * Moving one message. Static copies through the bounce buffer (after the
 * WRITE when the buffer is the target); pipelined registers chunk i+1
 * while chunk i is on the wire and deregisters a chunk once its WRITE
 * completed; every other strategy registers the whole buffer
 * (acquire/release) around one WRITE.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "xfer.h"

static int wire_failed(struct bench *b, const char *what, int ret)
{
	fprintf(stderr, "mrcache-bench: %s: %s\n", what, b->ep.error);
	return ret;
}

static int post_source(struct bench *b, const void *p, size_t len, uint32_t lkey,
		       uint64_t raddr)
{
	int ret = ep_post_write(&b->ep, p, len, lkey, raddr, b->target->rkey);

	return ret ? wire_failed(b, "post WRITE", ret) : 0;
}

static int wait_source(struct bench *b)
{
	int ret = ep_wait(&b->ep, 1);

	return ret ? wire_failed(b, "WRITE", ret) : 0;
}

static int post_target(struct bench *b, const void *p, size_t len, size_t off,
		       uint32_t rkey, uint64_t msgno)
{
	struct write_req req = { .addr = (uintptr_t)p, .len = len, .src_off = off,
				 .msgno = msgno, .rkey = rkey };
	int ret = b->peer->ops->post(b->peer, &req);

	if (ret)
		fprintf(stderr, "mrcache-bench: asking the peer to WRITE: %s\n", strerror(-ret));
	return ret;
}

static int wait_target(struct bench *b)
{
	int ret = b->peer->ops->wait(b->peer);

	if (ret)
		fprintf(stderr, "mrcache-bench: the peer's WRITE failed: %s\n", strerror(-ret));
	return ret;
}

/* The two directions as one pair of calls, for the pipelined loop. */
static int post_dir(struct bench *b, int target, const unsigned char *p, size_t len,
		    size_t off, const struct reg *r, uint64_t arg)
{
	if (target)
		return post_target(b, p, len, off, r->rkey, arg);
	return post_source(b, p, len, r->lkey, arg + off);
}

static int wait_dir(struct bench *b, int target)
{
	return target ? wait_target(b) : wait_source(b);
}

/* At most two chunks in flight: chunk i+1 registers while i is on the wire. */
static int pipelined(struct bench *b, struct strategy *s, struct wbuf *w, size_t size,
		     int target, uint64_t arg)
{
	size_t chunk = b->opt.chunk < size ? b->opt.chunk : size;
	size_t n = (size + chunk - 1) / chunk, posted = 0, done = 0;
	struct reg regs[2];
	int ret = 0, r;

	for (size_t i = 0; i < n && !ret; i++) {
		size_t off = i * chunk, len = size - off < chunk ? size - off : chunk;

		ret = s->acquire(s, w, w->p + off, len, &regs[i % 2]);
		if (ret)
			break;
		ret = post_dir(b, target, w->p + off, len, off, &regs[i % 2], arg);
		if (ret) {
			s->release(s, &regs[i % 2]);
			break;
		}
		if (++posted - done == 2) {
			ret = wait_dir(b, target);
			s->release(s, &regs[done++ % 2]);
		}
	}
	while (done < posted) {
		r = wait_dir(b, target);
		s->release(s, &regs[done++ % 2]);
		ret = ret ? ret : r;
	}
	return ret;
}

/* Register the whole buffer, one WRITE, give the registration back. */
static int whole(struct bench *b, struct strategy *s, struct wbuf *w, size_t size,
		 int target, uint64_t arg)
{
	struct reg r;
	int ret = s->acquire(s, w, w->p, size, &r);

	if (ret)
		return ret;
	ret = post_dir(b, target, w->p, size, 0, &r, arg);
	if (!ret)
		ret = wait_dir(b, target);
	s->release(s, &r);
	return ret;
}

int xfer_source(struct bench *b, struct strategy *s, struct wbuf *w, size_t size,
		uint64_t raddr)
{
	int ret;

	if (s->id == ST_STATIC) {
		memcpy(b->bounce, w->p, size);
		ret = post_source(b, b->bounce, size, b->bounce_mr->lkey, raddr);
		return ret ? ret : wait_source(b);
	}
	if (s->id == ST_PIPELINED)
		return pipelined(b, s, w, size, 0, raddr);
	return whole(b, s, w, size, 0, raddr);
}

int xfer_target(struct bench *b, struct strategy *s, struct wbuf *w, size_t size,
		uint64_t msgno)
{
	int ret;

	if (s->id == ST_STATIC) {
		ret = post_target(b, b->bounce, size, 0, b->bounce_mr->rkey, msgno);
		if (!ret && !(ret = wait_target(b)))
			memcpy(w->p, b->bounce, size);
		return ret;
	}
	if (s->id == ST_PIPELINED)
		return pipelined(b, s, w, size, 1, msgno);
	return whole(b, s, w, size, 1, msgno);
}
