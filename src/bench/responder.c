// SPDX-License-Identifier: BSD-2-Clause
/*
 * The passive side's buffers and its two actions: WRITE its source into
 * the client's memory, and check what the client's WRITEs left in its
 * target. Used by the loopback peer directly and by the server loop.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "pattern.h"
#include "peer.h"

static void *map_zeroed(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static struct ibv_mr *reg(struct responder *r, void *p, size_t len, int access)
{
	struct ibv_mr *mr = ibv_reg_mr(r->ep->pd, p, len, access);

	if (!mr)
		snprintf(r->ep->error, sizeof(r->ep->error),
			 "ibv_reg_mr(%zu B) of the peer's buffer: %s", len, strerror(errno));
	return mr;
}

int responder_init(struct responder *r, struct ep *ep, size_t src_len, size_t dst_len)
{
	*r = (struct responder){ .ep = ep, .src_len = src_len, .dst_len = dst_len };
	r->src = map_zeroed(src_len);
	r->dst = map_zeroed(dst_len);
	if (!r->src || !r->dst) {
		snprintf(ep->error, sizeof(ep->error), "no memory for %zu + %zu B", src_len, dst_len);
		return -ENOMEM;
	}
	pattern_fill(r->src, src_len, PEER_SOURCE_ID, 0);
	r->src_mr = reg(r, r->src, src_len, IBV_ACCESS_LOCAL_WRITE);
	r->dst_mr = reg(r, r->dst, dst_len, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	return r->src_mr && r->dst_mr ? 0 : -EIO;
}

void responder_fini(struct responder *r)
{
	if (r->src_mr)
		ibv_dereg_mr(r->src_mr);
	if (r->dst_mr)
		ibv_dereg_mr(r->dst_mr);
	if (r->src)
		munmap(r->src, r->src_len);
	if (r->dst)
		munmap(r->dst, r->dst_len);
	memset(r, 0, sizeof(*r));
}

int responder_post(struct responder *r, const struct write_req *req)
{
	if (req->src_off + req->len > r->src_len)
		return -EINVAL;
	/* The first chunk of a message carries its number. */
	if (req->src_off == 0)
		pattern_stamp(r->src, req->len, req->msgno);
	return ep_post_write(r->ep, r->src + req->src_off, req->len, r->src_mr->lkey,
			     req->addr, (uint32_t)req->rkey);
}

uint64_t responder_verify(const struct responder *r, const struct slot_log *log, size_t n)
{
	uint64_t bad = 0;

	for (size_t i = 0; i < n; i++) {
		const struct slot_log *s = &log[i];

		if (s->off + s->len > r->dst_len ||
		    !pattern_check(r->dst + s->off, s->len, (uint32_t)s->id, (uint32_t)s->gen,
				   s->msgno))
			bad++;
	}
	return bad;
}
