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

/* Requests and slot logs are all 64-bit words: they travel as they are. */
_Static_assert(sizeof(struct write_req) == WRITE_REQ_WORDS * sizeof(uint64_t),
	       "struct write_req is not WRITE_REQ_WORDS words");
_Static_assert(sizeof(struct slot_log) == VERIFY_WORDS * sizeof(uint64_t),
	       "struct slot_log is not VERIFY_WORDS words");

#endif
