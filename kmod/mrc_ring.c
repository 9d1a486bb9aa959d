// SPDX-License-Identifier: GPL-2.0
/*
 * mrc_ring.c - the memory shared with user space: header, event ring and
 * per-watch generation array.
 *
 * Layout (offsets are handed to user space by MRC_IOC_API):
 *   page 0                 struct mrc_ring_hdr
 *   events_off (page 1)    struct mrc_event[entries]
 *   gens_off (page align)  __u64[slots]
 *
 * The kernel keeps private copies of everything it writes (producer,
 * overflow) and only ever reads the consumer index back, so a process
 * that scribbles over its mapping only hurts itself.
 */
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "mrc_internal.h"

/**
 * mrc_geometry_compute() - lay out the shared mapping
 * @geo: filled with sizes and offsets
 * @entries: ring entries, already validated as a power of two
 * @slots: watch slots, already validated
 *
 * Return: 0, or -EINVAL if the result would not fit the ABI's __u32
 * offsets.
 */
int mrc_geometry_compute(struct mrc_geometry *geo, u32 entries, u32 slots)
{
	size_t events_len = (size_t)entries * sizeof(struct mrc_event);
	size_t gens_len = (size_t)slots * sizeof(__u64);

	BUILD_BUG_ON(sizeof(struct mrc_ring_hdr) > PAGE_SIZE);
	BUILD_BUG_ON(sizeof(struct mrc_event) != 32);

	geo->entries = entries;
	geo->slots = slots;
	geo->events_off = PAGE_SIZE;
	geo->gens_off = PAGE_ALIGN(geo->events_off + events_len);
	geo->length = PAGE_ALIGN(geo->gens_off + gens_len);
	if (geo->length > U32_MAX)
		return -EINVAL;
	return 0;
}

/**
 * mrc_ring_offsets_fill() - describe the layout in ABI terms
 * @off: zeroed by the caller, filled here
 * @geo: result of mrc_geometry_compute()
 */
void mrc_ring_offsets_fill(struct mrc_ring_offsets *off,
			   const struct mrc_geometry *geo)
{
	off->abi_version = offsetof(struct mrc_ring_hdr, abi_version);
	off->entries = offsetof(struct mrc_ring_hdr, entries);
	off->mask = offsetof(struct mrc_ring_hdr, mask);
	off->watch_slots = offsetof(struct mrc_ring_hdr, watch_slots);
	off->producer = offsetof(struct mrc_ring_hdr, producer);
	off->consumer = offsetof(struct mrc_ring_hdr, consumer);
	off->overflow = offsetof(struct mrc_ring_hdr, overflow);
	off->overflow_seen = offsetof(struct mrc_ring_hdr, overflow_seen);
	off->events = geo->events_off;
	off->generations = geo->gens_off;
	off->sequence = offsetof(struct mrc_ring_hdr, sequence);
	off->pressure = offsetof(struct mrc_ring_hdr, pressure);
	off->pressure_seen = offsetof(struct mrc_ring_hdr, pressure_seen);
}

/**
 * mrc_ring_alloc() - allocate and initialise the shared memory
 * @ring: zeroed ring
 * @geo: sizes from the handshake
 *
 * The memory is charged to the caller's memory cgroup.  It is vmalloc
 * memory mapped page by page in mrc_ring_mmap(); vmalloc_user() would
 * not charge it.
 *
 * Return: 0 or -ENOMEM.
 */
int mrc_ring_alloc(struct mrc_ring *ring, const struct mrc_geometry *geo)
{
	ring->kgens = kvcalloc(geo->slots, sizeof(u64), GFP_KERNEL_ACCOUNT);
	if (!ring->kgens)
		return -ENOMEM;
	ring->mem = __vmalloc(geo->length, GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	if (!ring->mem) {
		kvfree(ring->kgens);
		ring->kgens = NULL;
		return -ENOMEM;
	}
	ring->length = geo->length;
	ring->hdr = ring->mem;
	ring->events = ring->mem + geo->events_off;
	ring->gens = ring->mem + geo->gens_off;
	ring->entries = geo->entries;
	ring->mask = geo->entries - 1;
	ring->slots = geo->slots;

	ring->hdr->abi_version = MRC_ABI_VERSION;
	ring->hdr->entries = ring->entries;
	ring->hdr->mask = ring->mask;
	ring->hdr->watch_slots = ring->slots;
	ring->hdr->event_size = sizeof(struct mrc_event);
	atomic_long_add(ring->length, &mrc_stats.ring_bytes);
	return 0;
}

/**
 * mrc_ring_free() - free the shared memory
 * @ring: ring of a file being released; no mapping can exist any more
 *	  because every mapping holds a reference on the file.
 */
void mrc_ring_free(struct mrc_ring *ring)
{
	if (!ring->mem)
		return;
	atomic_long_sub(ring->length, &mrc_stats.ring_bytes);
	vfree(ring->mem);
	ring->mem = NULL;
	kvfree(ring->kgens);
	ring->kgens = NULL;
}

/**
 * mrc_ring_mmap() - map the whole shared area into @vma
 * @ring: an allocated ring
 * @vma: checked by the caller to have exactly ring->length bytes
 *
 * Return: 0 or the error of vm_insert_page().
 */
int mrc_ring_mmap(struct mrc_ring *ring, struct vm_area_struct *vma)
{
	unsigned long off;
	int ret;

	for (off = 0; off < ring->length; off += PAGE_SIZE) {
		struct page *page = vmalloc_to_page(ring->mem + off);

		ret = vm_insert_page(vma, vma->vm_start + off, page);
		if (ret)
			return ret;
	}
	return 0;
}

/* Free slots as seen by the producer; garbage from user space reads as full. */
static bool mrc_ring_full(struct mrc_ring *ring)
{
	/*
	 * Acquire pairs with the consumer's store-release of the consumer
	 * index, which it issues after it finished reading the slots: we
	 * must not overwrite a slot user space is still reading.
	 */
	u32 cons = smp_load_acquire(&ring->hdr->consumer);

	return ring->prod - cons >= ring->entries;
}

/*
 * Caller holds file->lock, after its last store of this notification.
 * Release pairs with the consumer's load-acquire of the sequence, which
 * it issues before it reads anything else: a consumer that saw this
 * value also sees the slot, the overflow count, the pressure request and
 * the generation bumps made before it; one that did not keeps a sequence
 * value that differs from the header's, and looks again.
 */
static void mrc_ring_tick(struct mrc_ring *ring)
{
	ring->seq++;
	smp_store_release(&ring->hdr->sequence, ring->seq);
}

/* Caller holds file->lock: count an event that did not fit. */
static void mrc_ring_overflow(struct mrc_ring *ring)
{
	WRITE_ONCE(ring->overflow, ring->overflow + 1);
	/*
	 * Release pairs with the consumer's load-acquire of overflow: the
	 * generation bumps made before this store are visible to a
	 * consumer that sees the new count.
	 */
	smp_store_release(&ring->hdr->overflow, ring->overflow);
	mrc_pcpu_inc(overflows);
}

/**
 * mrc_ring_post() - append one event, or count an overflow
 * @ring: ring of a ready file; caller holds file->lock
 * @ev: the event
 *
 * Never drops information silently: when the ring is full the overflow
 * counter goes up, which tells user space to revalidate every watch
 * through the generation array (whose bumps are never lost).  Either way
 * the sequence word moves last, so a reader comparing only that word
 * cannot miss an overflow.
 *
 * Return: true if the event was queued, false if it was counted as
 * overflow.
 */
bool mrc_ring_post(struct mrc_ring *ring, const struct mrc_event *ev)
{
	bool queued = !mrc_ring_full(ring);

	if (queued) {
		ring->events[ring->prod & ring->mask] = *ev;
		WRITE_ONCE(ring->prod, ring->prod + 1);
		/*
		 * Release pairs with the consumer's load-acquire of the
		 * producer index: the slot (and the generation bump before
		 * it) is visible before the index that publishes it.
		 */
		smp_store_release(&ring->hdr->producer, ring->prod);
		mrc_pcpu_inc(events);
	} else {
		mrc_ring_overflow(ring);
	}
	mrc_ring_tick(ring);
	return queued;
}

/**
 * mrc_ring_raise_pressure() - ask user space to release @pages pages
 * @ring: ring of a ready file with MRC_FEAT_PRESSURE_COUNTER; caller
 *	  holds file->lock
 * @pages: pages wanted
 *
 * Pressure never takes a ring slot, so it can never be mistaken for a
 * lost invalidation.  One request is outstanding at a time: a new one is
 * raised only after user space stored the counter into pressure_seen
 * (read here untrusted, only compared).
 *
 * Return: true if a request was raised, false if one is outstanding.
 */
bool mrc_ring_raise_pressure(struct mrc_ring *ring, u64 pages)
{
	if (READ_ONCE(ring->hdr->pressure_seen) != ring->pressure)
		return false;
	WRITE_ONCE(ring->pressure, ring->pressure + pages);
	/* Ordered before the sequence by mrc_ring_tick()'s release. */
	WRITE_ONCE(ring->hdr->pressure, ring->pressure);
	mrc_ring_tick(ring);
	return true;
}

/**
 * mrc_ring_has_news() - whether poll()/read() should report EPOLLIN
 * @ring: ring of a ready file; no lock needed
 *
 * Return: true if events are unconsumed, or the overflow or pressure
 * counter differs from the value user space acknowledged in
 * overflow_seen or pressure_seen.
 */
bool mrc_ring_has_news(struct mrc_ring *ring)
{
	/* Pairs with the consumer's store-release of the consumer index. */
	u32 cons = smp_load_acquire(&ring->hdr->consumer);

	if (READ_ONCE(ring->prod) != cons)
		return true;
	if (READ_ONCE(ring->pressure) != READ_ONCE(ring->hdr->pressure_seen))
		return true;
	return READ_ONCE(ring->overflow) != READ_ONCE(ring->hdr->overflow_seen);
}

/**
 * mrc_ring_consumed() - whether user space has consumed ring index @pos
 * @ring: ring of a ready file
 * @pos: free-running index of an event posted earlier
 *
 * Return: true once the consumer index has moved past @pos.
 */
bool mrc_ring_consumed(struct mrc_ring *ring, u32 pos)
{
	u32 cons = smp_load_acquire(&ring->hdr->consumer);

	return (s32)(cons - pos) > 0;
}

/**
 * mrc_gen_bump() - advance the generation of slot @id
 * @ring: ring of a ready file; caller holds file->lock
 * @id: slot index, < ring->slots
 *
 * Generations only grow, so a stale (id, generation) pair can never
 * validate again, even after the slot is reused.  The store is a plain
 * WRITE_ONCE: user space validates with one load and nothing else is
 * published with the generation; events that follow are ordered after
 * it by the release in mrc_ring_post().
 *
 * Return: the new generation.
 */
u64 mrc_gen_bump(struct mrc_ring *ring, u32 id)
{
	u64 gen = ++ring->kgens[id];

	WRITE_ONCE(ring->gens[id], gen);
	return gen;
}

/**
 * mrc_gen_read() - current generation of slot @id
 * @ring: ring of a ready file; caller holds file->lock
 * @id: slot index, < ring->slots
 *
 * Return: the generation.
 */
u64 mrc_gen_read(struct mrc_ring *ring, u32 id)
{
	return ring->kgens[id];
}
