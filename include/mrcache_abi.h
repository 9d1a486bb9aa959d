/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR BSD-2-Clause */
/*
 * mrcache_abi.h - user/kernel ABI of the mrcache kernel module (/dev/mrcache)
 *
 * This one header is shared verbatim by kmod/ (the module) and src/ (the
 * library).  It only uses the fixed-width types of <linux/types.h>; user
 * pointers travel as __u64; every struct has explicit padding and reserved
 * fields that the kernel checks are zero.  A new meaning gets a new ioctl
 * number or a new feature bit, never a changed struct.
 *
 * Life of a file (see mrcache(4) for the full text):
 *
 *  1. fd = open("/dev/mrcache", O_RDWR | O_CLOEXEC);
 *     The file is bound to the opener's mm.  Any other mm (a forked child
 *     that inherited the fd, a process that received it over a socket)
 *     gets -EPERM from every ioctl, mmap and read, and EPOLLERR from poll.
 *  2. ioctl(fd, MRC_IOC_API, &api) - handshake; sizes the ring and the
 *     generation array and returns their offsets in the mmap.  A failing
 *     call (or one with MRC_API_PROBE) leaves the file untouched.
 *  3. mmap(NULL, api.mmap_length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
 *  4. ioctl(fd, MRC_IOC_WATCH, &w) for each registered range; the cache
 *     keeps (w.id, w.generation).  An entry is valid while
 *     generations[w.id] == w.generation  (ONE acquire load, no syscall).
 *  5. Consume events from the ring (poll/read to sleep), UNWATCH ranges the
 *     cache dropped.
 */
#ifndef MRCACHE_ABI_H
#define MRCACHE_ABI_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define MRC_DEVICE_PATH		"/dev/mrcache"

/* Bumped only for incompatible changes; additions use feature bits. */
#define MRC_ABI_VERSION		1

/* ioctl type byte; not used by any other UAPI header of Linux 6.1. */
#define MRC_IOC_MAGIC		0xE3

/* ------------------------------------------------------------------ */
/* Features (struct mrc_api.features)                                 */
/* ------------------------------------------------------------------ */

/*
 * Post MRC_REASON_PRESSURE events when the kernel's shrinker asks this
 * file to give memory back; without it the file's watched pages are not
 * counted by the shrinker.
 */
#define MRC_FEAT_PRESSURE	(1ULL << 0)
/*
 * Also deliver the non-invalidating events (PROTECTION_VMA,
 * PROTECTION_PAGE, SOFT_DIRTY) with MRC_EVENT_F_INFO set.  They never
 * bump a generation and never change a watch's state.  Without this
 * feature they are filtered out in the kernel.
 */
#define MRC_FEAT_INFO_EVENTS	(1ULL << 1)

/*
 * The header's `sequence` word moves after everything the kernel tells
 * user space: an event queued, an overflow counted, a pressure request
 * raised.  It is the one word a lock-free reader needs to compare with
 * the value it saw at its last drain; the producer index alone does not
 * move on an overflow, so a reader watching only the producer can miss
 * one for good (see doc/kmod-design.md, "The overflow protocol").
 */
#define MRC_FEAT_SEQUENCE	(1ULL << 2)
/*
 * With MRC_FEAT_PRESSURE: pressure requests are not posted into the ring
 * (where a full ring would turn them into an overflow, which means "an
 * invalidation may have been lost") but added to the header's `pressure`
 * counter (pages, only grows).  A new request is raised only once user
 * space acknowledged the previous one by storing `pressure` into
 * `pressure_seen`.
 */
#define MRC_FEAT_PRESSURE_COUNTER (1ULL << 3)

#define MRC_FEAT_ALL		(MRC_FEAT_PRESSURE | MRC_FEAT_INFO_EVENTS | \
				 MRC_FEAT_SEQUENCE | MRC_FEAT_PRESSURE_COUNTER)

/* ------------------------------------------------------------------ */
/* MRC_IOC_API: handshake                                              */
/* ------------------------------------------------------------------ */

/* struct mrc_api.flags */
/* Validate and answer, but do not set the file up (no allocation). */
#define MRC_API_PROBE		(1U << 0)

/*
 * Byte offsets, from the start of the mmap, of everything user space
 * touches.  Like io_uring's sqring/cqring offsets: user space must use
 * these and never assume a layout.
 */
struct mrc_ring_offsets {
	__u32 abi_version;	/* __u32, == MRC_ABI_VERSION (read-only) */
	__u32 entries;		/* __u32, number of event slots (read-only) */
	__u32 mask;		/* __u32, entries - 1 (read-only) */
	__u32 watch_slots;	/* __u32, length of the generation array */
	__u32 producer;		/* __u32, written by the kernel (release) */
	__u32 consumer;		/* __u32, written by user space (release) */
	__u32 overflow;		/* __u64, events the kernel could not queue */
	__u32 overflow_seen;	/* __u64, written by user space, see poll */
	__u32 events;		/* struct mrc_event[entries] */
	__u32 generations;	/* __u64[watch_slots] */
	__u32 sequence;		/* __u32, written by the kernel (release);
				 * 0 without MRC_FEAT_SEQUENCE */
	__u32 pressure;		/* __u64, pages requested, only grows;
				 * 0 without MRC_FEAT_PRESSURE_COUNTER */
	__u32 pressure_seen;	/* __u64, written by user space */
	__u32 resv[3];		/* zero */
};

struct mrc_api {
	/* in */
	__u32 abi_version;	/* must be MRC_ABI_VERSION */
	__u32 flags;		/* MRC_API_* */
	__u32 ring_entries;	/* in: 0 = module default, else power of two
				 * in [MRC_RING_MIN_ENTRIES, max_ring_entries];
				 * out: actual */
	__u32 watch_slots;	/* in: 0 = module default, else
				 * 1..max_watches; out: actual.  It is also
				 * the per-file watch limit. */
	__u64 features;		/* in: wanted MRC_FEAT_*; out: granted */
	/* out (ignored on input) */
	__u64 supported_features; /* every MRC_FEAT_* this module knows */
	__u64 mmap_length;	/* length to pass to mmap(), page multiple */
	__u32 event_size;	/* sizeof(struct mrc_event) */
	__u32 max_ring_entries;	/* module parameter max_ring_entries */
	__u32 max_watch_slots;	/* module parameter max_watches */
	__u32 pad;		/* in: must be 0 */
	struct mrc_ring_offsets off;
	__u64 reserved[4];	/* in: must be 0 */
};

#define MRC_RING_MIN_ENTRIES	8

/* ------------------------------------------------------------------ */
/* MRC_IOC_WATCH / UNWATCH / QUERY / REARM                            */
/* ------------------------------------------------------------------ */

/* Never a valid watch id; used by events not tied to a watch. */
#define MRC_WATCH_NONE		0xFFFFFFFFU

struct mrc_watch {
	/* in */
	__u64 start;		/* user address, page aligned */
	__u64 length;		/* bytes, page multiple, > 0, no wrap,
				 * start + length <= TASK_SIZE */
	__u64 cookie;		/* opaque, echoed in events */
	__u32 flags;		/* must be 0 */
	/* out */
	__u32 id;		/* index into the generation array */
	__u64 generation;	/* valid while generations[id] == this */
	__u64 reserved[2];	/* in: must be 0 */
};

struct mrc_unwatch {
	__u32 id;		/* in */
	__u32 flags;		/* in: must be 0 */
	__u64 reserved[2];	/* in: must be 0 */
};

/* struct mrc_query.state */
#define MRC_STATE_ARMED		1	/* no invalidation since (re)arm */
#define MRC_STATE_INVALID	2	/* invalidated; no further events */

struct mrc_query {
	/* in */
	__u32 id;
	__u32 flags;		/* must be 0 */
	/* out */
	__u64 start;
	__u64 length;
	__u64 cookie;
	__u64 generation;	/* current value of generations[id] */
	__u32 state;		/* MRC_STATE_* */
	__u32 last_reason;	/* MRC_REASON_* of the first invalidation
				 * since (re)arm, 0 if none */
	__u64 reserved[2];	/* in: must be 0; out: 0 */
};

/*
 * REARM: make an INVALID watch ARMED again (events resume) and return the
 * generation to validate against from now on.  Waits for an invalidation
 * that is still running on the range to finish first.
 *
 * An INVALID watch posts no events but its generation still moves with
 * every invalidation.  A caller that re-registers the range must read the
 * generation *before* it pins the pages and pass it with
 * MRC_REARM_EXPECT: if any invalidation hit the range since, REARM fails
 * with -ESTALE (the watch stays INVALID) and the registration must not be
 * trusted.  Without the flag REARM trusts whatever happened before it.
 */
#define MRC_REARM_EXPECT	(1U << 0)

struct mrc_rearm {
	/* in */
	__u32 id;
	__u32 flags;		/* MRC_REARM_* */
	/* out */
	__u64 generation;
	__u64 expected;		/* in: with MRC_REARM_EXPECT, else 0 */
	__u64 reserved;		/* in: must be 0 */
};

#define MRC_IOC_API	_IOWR(MRC_IOC_MAGIC, 0x00, struct mrc_api)
#define MRC_IOC_WATCH	_IOWR(MRC_IOC_MAGIC, 0x01, struct mrc_watch)
#define MRC_IOC_UNWATCH	_IOW(MRC_IOC_MAGIC, 0x02, struct mrc_unwatch)
#define MRC_IOC_QUERY	_IOWR(MRC_IOC_MAGIC, 0x03, struct mrc_query)
#define MRC_IOC_REARM	_IOWR(MRC_IOC_MAGIC, 0x04, struct mrc_rearm)

/* ------------------------------------------------------------------ */
/* The shared ring                                                     */
/* ------------------------------------------------------------------ */

/*
 * Reason codes.  0 is never used, so an all-zero slot is recognisable.
 * Values 1..8 mirror the kernel's enum mmu_notifier_event, but they are
 * this ABI's own numbers and stay fixed whatever the kernel does.
 */
#define MRC_REASON_UNMAP		1 /* munmap, mremap, brk shrink */
#define MRC_REASON_CLEAR		2 /* madvise(DONTNEED), migration,
					   * COW, reclaim, page-table clear */
#define MRC_REASON_PROTECTION_VMA	3 /* mprotect (info only) */
#define MRC_REASON_PROTECTION_PAGE	4 /* per-page wr-protect, e.g. fork
					   * (info only) */
#define MRC_REASON_SOFT_DIRTY		5 /* soft-dirty reset (info only) */
#define MRC_REASON_RELEASE		6 /* the mm is being torn down */
#define MRC_REASON_MIGRATE		7 /* migrate_vma (device memory) */
#define MRC_REASON_EXCLUSIVE		8 /* device-exclusive access */
#define MRC_REASON_UNKNOWN		15 /* an event this module does not
					   * know; treated as invalidating */
#define MRC_REASON_PRESSURE		16 /* shrinker asks for memory back:
					   * start = 0, end = pages wanted,
					   * id = MRC_WATCH_NONE */

/* struct mrc_event.flags */
#define MRC_EVENT_F_INFO	(1U << 0) /* did not invalidate anything */

/*
 * One ring slot (32 bytes).  For watch events [start, end) is the part of
 * the watched range that the kernel invalidated.
 */
struct mrc_event {
	__u64 cookie;		/* from MRC_IOC_WATCH */
	__u64 start;
	__u64 end;
	__u32 id;		/* watch id or MRC_WATCH_NONE */
	__u16 reason;		/* MRC_REASON_* */
	__u16 flags;		/* MRC_EVENT_F_* */
};

/*
 * read(2) on the file: blocks (unless O_NONBLOCK) until poll would report
 * EPOLLIN, then fills this struct and returns its size.  It consumes
 * nothing; the ring is consumed through the mmap.
 */
struct mrc_read_info {
	__u32 producer;
	__u32 pending;		/* producer - consumer */
	__u64 overflow;
};

#endif /* MRCACHE_ABI_H */
