/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mrc_internal.h - shared definitions of the mrcache module's files
 *
 * Locking (outer to inner):
 *   mrc_file.mutex     setup, the watch table and the range tree; may
 *                      sleep and allocate.  Never taken by notifier
 *                      callbacks or by reclaim.
 *   mrc_lru lock       the per-memcg, per-node lock of the shrinker's
 *                      list_lru (spinlock, inside list_lru_add/del and
 *                      list_lru_walk_one); the walks take f->lock
 *                      under it.
 *   mrc_file.lock      ring, generation array, watch state and the
 *                      watch lists of the ranges (spinlock).  Taken by
 *                      the invalidate callback and the shrinker, so
 *                      nothing under it may sleep or allocate.
 *   mrc_users_lock     the per-user hash (spinlock); taken at open and
 *                      release only, with no other lock held.
 * Per-user usage counters are atomics and need no lock.
 */
#ifndef MRC_INTERNAL_H
#define MRC_INTERNAL_H

#include <linux/atomic.h>
#include <linux/list.h>
#include <linux/mmu_notifier.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/rbtree.h>
#include <linux/refcount.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/uidgid.h>
#include <linux/wait.h>

#include "mrcache_abi.h"

#if BITS_PER_LONG < 64
#error "mrcache needs single-copy-atomic 64-bit stores for the generation array"
#endif

/* Hard caps on the module parameters, whatever the administrator sets. */
#define MRC_RING_HARD_MAX	(1U << 20)
#define MRC_SLOTS_HARD_MAX	(1U << 20)

/* Separate cache lines for the fields written by each side. */
#define MRC_LINE		64

/*
 * Page 0 of the shared mapping.  User space never sees this struct; it
 * gets offsets into it from MRC_IOC_API.
 */
struct mrc_ring_hdr {
	/* Constant after setup. */
	__u32 abi_version;
	__u32 entries;
	__u32 mask;
	__u32 watch_slots;
	__u32 event_size;
	__u8 pad0[MRC_LINE - 5 * sizeof(__u32)];
	/* Written by the kernel only. */
	__u32 producer;
	__u32 sequence;
	__u64 overflow;
	__u64 pressure;
	__u8 pad2[MRC_LINE - 24];
	/* Written by user space only; never trusted. */
	__u32 consumer;
	__u32 pad3;
	__u64 overflow_seen;
	__u64 pressure_seen;
	__u8 pad4[MRC_LINE - 24];
};

/* Sizes negotiated by the handshake. */
struct mrc_geometry {
	u32 entries;
	u32 slots;
	size_t events_off;
	size_t gens_off;
	size_t length;
};

struct mrc_ring {
	void *mem;			/* vmalloc, shared with user space */
	size_t length;
	struct mrc_ring_hdr *hdr;
	struct mrc_event *events;
	u64 *gens;			/* shared copy */
	u64 *kgens;			/* private copy, authoritative */
	u32 entries;
	u32 mask;
	u32 slots;
	u32 prod;			/* private copy; never read back */
	u32 seq;			/* private copy; never read back */
	u64 overflow;			/* private copy; never read back */
	u64 pressure;			/* private copy; never read back */
};

struct mrc_file;
struct mrc_pressure_item;

/* What one user (effective uid of the opener) holds; see mrc_user.c. */
struct mrc_user {
	struct hlist_node node;		/* in mrc_users, mrc_users_lock */
	kuid_t uid;
	refcount_t ref;			/* one per open file */
	atomic_long_t files;		/* set-up files */
	atomic_long_t watches;
	atomic_long_t pages;		/* pages of distinct ranges */
};

/* The per-user limits, in the order of mrc_user's counters. */
enum mrc_limit {
	MRC_LIMIT_FILES,
	MRC_LIMIT_WATCHES,
	MRC_LIMIT_PAGES,
};

/*
 * One distinct watched range of a file: one mmu_interval_notifier, shared
 * by every watch of exactly that range (duplicates are folded).
 */
struct mrc_range {
	struct mmu_interval_notifier notifier;
	struct rb_node node;		/* in file->ranges, under mutex */
	struct list_head watches;	/* mrc_interval.link; changed under
					 * mutex and lock, walked under lock */
	struct mrc_file *file;
	u64 start;
	u64 length;
};

/* One watch: one slot of the generation array. */
struct mrc_interval {
	struct list_head link;		/* on range->watches */
	struct mrc_range *range;
	u64 cookie;
	u64 serial;			/* unique within the file */
	u32 id;
	u32 state;			/* MRC_STATE_*, under file->lock */
	u32 last_reason;		/* under file->lock */
	u64 armed_gen;			/* generation handed out at (re)arm */
};

struct mrc_file {
	struct mm_struct *mm;		/* mmgrab'ed at open */
	struct mrc_user *user;		/* opener's euid, held until free */
	spinlock_t lock;
	struct mutex mutex;
	wait_queue_head_t wq;
	bool ready;			/* set once, release/acquire */
	u64 features;
	struct mrc_ring ring;
	struct mrc_interval **slots;	/* [ring.slots], under mutex */
	unsigned long *used;		/* bitmap of slots, under mutex */
	struct rb_root ranges;		/* by (start, length), under mutex */
	u64 next_serial;		/* under mutex */
	u32 nwatches;			/* under mutex */
	unsigned long watched_pages;	/* of ranges; written under mutex */
	bool pressure_pending;		/* under lock */
	u32 pressure_pos;		/* ring index of that event */
	/* On the shrinker's list_lru while set; see mrc_shrinker.c. */
	struct mrc_pressure_item *pressure_item;
};

/*
 * Counters shown in /sys/class/misc/mrcache/stats/ (tests and debugging),
 * changed by setup, WATCH and UNWATCH, or (events, overflows,
 * pressure_events) by mrc_ring.c and mrc_shrinker.c.
 */
struct mrc_stats {
	atomic_long_t files;
	atomic_long_t users;		/* live struct mrc_user */
	atomic_long_t watches;
	atomic_long_t ranges;		/* notifiers: distinct ranges */
	atomic_long_t watched_pages;	/* of distinct ranges */
	atomic_long_t pressure_pages;	/* of files with MRC_FEAT_PRESSURE */
	atomic_long_t ring_bytes;
	atomic_long_t shrinker_scans;
	atomic_long_t pressure_events;
	atomic_long_t limit_files;	/* EMFILE: max_user_files */
	atomic_long_t limit_watches;	/* ENOSPC: max_user_watches */
	atomic_long_t limit_pages;	/* ENOSPC: max_user_pages */
};

/*
 * Counters bumped by the invalidate callback on every call: per CPU, so
 * concurrent invalidations of different processes share no cache line;
 * summed only when sysfs reads them.
 */
struct mrc_pcpu_stats {
	unsigned long callbacks;
	unsigned long events;
	unsigned long overflows;
	unsigned long coalesced;
	unsigned long filtered;
	unsigned long release_events;
	unsigned long nonblock_busy;
};

extern struct mrc_stats mrc_stats;
DECLARE_PER_CPU(struct mrc_pcpu_stats, mrc_pcpu_stats);
#define mrc_pcpu_inc(field)	this_cpu_inc(mrc_pcpu_stats.field)

/* Module parameters (validated at load, read-only afterwards). */
extern unsigned int mrc_max_ring_entries;
extern unsigned int mrc_max_watches;
extern unsigned int mrc_default_ring_entries;
extern unsigned int mrc_default_watch_slots;
extern unsigned int mrc_max_user_files;
extern unsigned int mrc_max_user_watches;
extern unsigned long mrc_max_user_pages;

/* mrc_file.c */
extern const struct file_operations mrc_fops;
bool mrc_file_ready(struct mrc_file *f);
void mrc_file_wake(struct mrc_file *f);

/* mrc_api.c */
long mrc_ioctl_api(struct mrc_file *f, void __user *uarg);

/* mrc_ring.c */
int mrc_geometry_compute(struct mrc_geometry *geo, u32 entries, u32 slots);
void mrc_ring_offsets_fill(struct mrc_ring_offsets *off,
			   const struct mrc_geometry *geo);
int mrc_ring_alloc(struct mrc_ring *ring, const struct mrc_geometry *geo);
void mrc_ring_free(struct mrc_ring *ring);
int mrc_ring_mmap(struct mrc_ring *ring, struct vm_area_struct *vma);
bool mrc_ring_post(struct mrc_ring *ring, const struct mrc_event *ev);
bool mrc_ring_raise_pressure(struct mrc_ring *ring, u64 pages);
bool mrc_ring_has_news(struct mrc_ring *ring);
bool mrc_ring_consumed(struct mrc_ring *ring, u32 pos);
u64 mrc_gen_bump(struct mrc_ring *ring, u32 id);
u64 mrc_gen_read(struct mrc_ring *ring, u32 id);

/* mrc_watch.c */
int mrc_watch_table_alloc(struct mrc_file *f, u32 slots);
void mrc_watch_table_free(struct mrc_file *f);
void mrc_watch_remove_all(struct mrc_file *f);
long mrc_ioctl_watch(struct mrc_file *f, void __user *uarg);
long mrc_ioctl_unwatch(struct mrc_file *f, void __user *uarg);
long mrc_ioctl_query(struct mrc_file *f, void __user *uarg);
long mrc_ioctl_rearm(struct mrc_file *f, void __user *uarg);

/* mrc_notifier.c */
extern const struct mmu_interval_notifier_ops mrc_interval_ops;

/* mrc_shrinker.c */
int mrc_shrinker_register(void);
void mrc_shrinker_unregister(void);
void mrc_pressure_account(struct mrc_file *f, long pages);
int mrc_pressure_add(struct mrc_file *f);
void mrc_pressure_del(struct mrc_file *f);

/* mrc_user.c */
struct mrc_user *mrc_user_get(kuid_t uid);
void mrc_user_put(struct mrc_user *u);
int mrc_user_charge(struct mrc_user *u, enum mrc_limit which, long n);
void mrc_user_uncharge(struct mrc_user *u, enum mrc_limit which, long n);

#endif /* MRC_INTERNAL_H */
