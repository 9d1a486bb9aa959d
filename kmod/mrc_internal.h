/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mrc_internal.h - shared definitions of the mrcache module's files
 *
 * Locking (outer to inner):
 *   mrc_file.mutex  setup and the watch table; may sleep and allocate.
 *                   Never taken by notifier callbacks or by reclaim.
 *   mrc_files_lock  global list of open files (spinlock; shrinker).
 *   mrc_file.lock   ring, generation array, watch state (spinlock).
 *                   Taken by the invalidate callback and the shrinker, so
 *                   nothing under it may sleep or allocate.
 */
#ifndef MRC_INTERNAL_H
#define MRC_INTERNAL_H

#include <linux/atomic.h>
#include <linux/list.h>
#include <linux/mmu_notifier.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/types.h>
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

/* One watched range: one mmu_interval_notifier. */
struct mrc_interval {
	struct mmu_interval_notifier notifier;
	struct mrc_file *file;
	u64 start;
	u64 length;
	u64 cookie;
	u32 id;
	u32 state;			/* MRC_STATE_*, under file->lock */
	u32 last_reason;		/* under file->lock */
	u64 armed_gen;			/* generation handed out at (re)arm */
};

struct mrc_file {
	struct mm_struct *mm;		/* mmgrab'ed at open */
	spinlock_t lock;
	struct mutex mutex;
	wait_queue_head_t wq;
	bool ready;			/* set once, release/acquire */
	u64 features;
	struct mrc_ring ring;
	struct mrc_interval **slots;	/* [ring.slots], under mutex */
	unsigned long *used;		/* bitmap of slots, under mutex */
	u32 nwatches;			/* under mutex */
	unsigned long watched_pages;	/* written under mutex */
	bool pressure_pending;		/* under lock */
	u32 pressure_pos;		/* ring index of that event */
	struct list_head node;		/* on mrc_files, mrc_files_lock */
};

/* Counters shown in /sys/class/misc/mrcache/ (tests and debugging). */
struct mrc_stats {
	atomic_long_t files;
	atomic_long_t watches;
	atomic_long_t watched_pages;
	atomic_long_t pressure_pages;	/* of files with MRC_FEAT_PRESSURE */
	atomic_long_t ring_bytes;
	atomic_long_t callbacks;
	atomic_long_t events;
	atomic_long_t coalesced;
	atomic_long_t filtered;
	atomic_long_t overflows;
	atomic_long_t release_events;
	atomic_long_t nonblock_busy;
	atomic_long_t shrinker_scans;
	atomic_long_t pressure_events;
};

extern struct mrc_stats mrc_stats;
extern struct list_head mrc_files;
extern spinlock_t mrc_files_lock;

/* Module parameters (validated at load, read-only afterwards). */
extern unsigned int mrc_max_ring_entries;
extern unsigned int mrc_max_watches;
extern unsigned int mrc_default_ring_entries;
extern unsigned int mrc_default_watch_slots;

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

#endif /* MRC_INTERNAL_H */
