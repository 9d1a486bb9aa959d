/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The out-of-band messages' layouts, as arrays of 64-bit words (oob.c
 * makes them big-endian). One place says where each field sits, for the
 * client (peer.c) and the server (server.c) alike.
 */
#ifndef MRCACHE_BENCH_WIRE_H
#define MRCACHE_BENCH_WIRE_H

#include <string.h>

#include "endpoint.h"
#include "oob.h"
#include "peer.h"

#define EP_ADDR_WORDS 6
#define HELLO_WORDS (3 + EP_ADDR_WORDS)		/* version, src_len, dst_len, QP */
#define WELCOME_WORDS (EP_ADDR_WORDS + 3)	/* QP, target addr, len, rkey */
#define WRITE_REQ_WORDS 5

static inline void ep_addr_pack(const struct ep_addr *a, uint64_t *w)
{
	w[0] = a->qpn;
	w[1] = a->psn;
	w[2] = a->lid;
	w[3] = a->mtu;
	/* The GID's bytes travel as they are: packed and unpacked alike. */
	memcpy(&w[4], a->gid, 16);
}

static inline void ep_addr_unpack(const uint64_t *w, struct ep_addr *a)
{
	a->qpn = (uint32_t)w[0];
	a->psn = (uint32_t)w[1];
	a->lid = (uint16_t)w[2];
	a->mtu = (uint32_t)w[3];
	memcpy(a->gid, &w[4], 16);
}

static inline void hello_pack(uint64_t src_len, uint64_t dst_len,
			      const struct ep_addr *a, uint64_t *w)
{
	w[0] = OOB_VERSION;
	w[1] = src_len;
	w[2] = dst_len;
	ep_addr_pack(a, w + 3);
}

static inline void write_req_pack(const struct write_req *r, uint64_t *w)
{
	w[0] = r->addr;
	w[1] = r->len;
	w[2] = r->src_off;
	w[3] = r->msgno;
	w[4] = r->rkey;
}

static inline void write_req_unpack(const uint64_t *w, struct write_req *r)
{
	*r = (struct write_req){ .addr = w[0], .len = w[1], .src_off = w[2],
				 .msgno = w[3], .rkey = (uint32_t)w[4] };
}

static inline void slot_log_pack(const struct slot_log *s, uint64_t *w)
{
	w[0] = s->off;
	w[1] = s->len;
	w[2] = s->msgno;
	w[3] = s->id;
	w[4] = s->gen;
}

static inline void slot_log_unpack(const uint64_t *w, struct slot_log *s)
{
	*s = (struct slot_log){ .off = w[0], .len = w[1], .msgno = w[2],
				.id = (uint32_t)w[3], .gen = (uint32_t)w[4] };
}

#endif
