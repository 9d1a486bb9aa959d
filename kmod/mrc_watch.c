// SPDX-License-Identifier: GPL-2.0
/*
 * mrc_watch.c - the watch table and the WATCH, UNWATCH, QUERY and REARM
 * ioctls.
 *
 * A watch id is its slot in the generation array.  A watch lives until
 * UNWATCH or until the file is released; an invalidation only turns it
 * from ARMED to INVALID (notifiers are never removed from a callback).
 *
 * Watches of exactly the same range share one struct mrc_range and its
 * notifier, found in a per-file rbtree keyed by (start, length): the
 * library legitimately watches a range twice (a dead registration still
 * referenced while its replacement is registered, or two access modes),
 * so duplicates cannot be refused, but they must not multiply the
 * notifiers the mm's interval tree holds.
 *
 * The mutex is taken killable, and nothing is copied to user space under
 * it: a fault on the user's buffer can block for as long as user space
 * likes (userfaultfd, a FUSE-backed mapping), and every other request on
 * the file would wait with it.
 */
#include <linux/bitmap.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "mrc_internal.h"

/**
 * mrc_watch_table_alloc() - allocate the slot table of a file
 * @f: file being set up, under f->mutex
 * @slots: negotiated number of slots
 *
 * Return: 0 or -ENOMEM.
 */
int mrc_watch_table_alloc(struct mrc_file *f, u32 slots)
{
	f->slots = kvcalloc(slots, sizeof(*f->slots), GFP_KERNEL_ACCOUNT);
	f->used = kvcalloc(BITS_TO_LONGS(slots), sizeof(unsigned long),
			   GFP_KERNEL_ACCOUNT);
	if (!f->slots || !f->used) {
		mrc_watch_table_free(f);
		return -ENOMEM;
	}
	return 0;
}

/**
 * mrc_watch_table_free() - free the slot table (all watches removed)
 * @f: file
 */
void mrc_watch_table_free(struct mrc_file *f)
{
	kvfree(f->slots);
	kvfree(f->used);
	f->slots = NULL;
	f->used = NULL;
}

/* Under f->mutex: the range [start, start + length) of @f, or NULL. */
static struct mrc_range *mrc_range_find(struct mrc_file *f, u64 start,
					u64 length)
{
	struct rb_node *n = f->ranges.rb_node;

	while (n) {
		struct mrc_range *r = rb_entry(n, struct mrc_range, node);

		if (start != r->start)
			n = start < r->start ? n->rb_left : n->rb_right;
		else if (length != r->length)
			n = length < r->length ? n->rb_left : n->rb_right;
		else
			return r;
	}
	return NULL;
}

/* Under f->mutex: file @r, known not to be there yet, in the tree. */
static void mrc_range_link(struct mrc_file *f, struct mrc_range *r)
{
	struct rb_node **link = &f->ranges.rb_node, *parent = NULL;

	while (*link) {
		struct mrc_range *o = rb_entry(*link, struct mrc_range, node);

		parent = *link;
		if (r->start < o->start ||
		    (r->start == o->start && r->length < o->length))
			link = &parent->rb_left;
		else
			link = &parent->rb_right;
	}
	rb_link_node(&r->node, parent, link);
	rb_insert_color(&r->node, &f->ranges);
}

static void mrc_range_account(struct mrc_file *f, struct mrc_range *r,
			      long sign)
{
	long pages = sign * (long)(r->length >> PAGE_SHIFT);

	WRITE_ONCE(f->watched_pages, f->watched_pages + pages);
	atomic_long_add(sign, &mrc_stats.ranges);
	atomic_long_add(pages, &mrc_stats.watched_pages);
	mrc_pressure_account(f, pages);
}

/*
 * Under f->mutex: a new range with its notifier inserted, its pages
 * charged to the user, or an ERR_PTR.
 */
static struct mrc_range *mrc_range_new(struct mrc_file *f,
				       const struct mrc_watch *w)
{
	long pages = w->length >> PAGE_SHIFT;
	struct mrc_range *r;
	int ret;

	ret = mrc_user_charge(f->user, MRC_LIMIT_PAGES, pages);
	if (ret)
		return ERR_PTR(ret);
	r = kzalloc(sizeof(*r), GFP_KERNEL_ACCOUNT);
	if (!r) {
		ret = -ENOMEM;
		goto uncharge;
	}
	r->file = f;
	r->start = w->start;
	r->length = w->length;
	INIT_LIST_HEAD(&r->watches);
	ret = mmu_interval_notifier_insert(&r->notifier, f->mm, r->start,
					   r->length, &mrc_interval_ops);
	if (ret)
		goto free;
	mrc_range_link(f, r);
	mrc_range_account(f, r, 1);
	return r;

free:
	kfree(r);
uncharge:
	mrc_user_uncharge(f->user, MRC_LIMIT_PAGES, pages);
	return ERR_PTR(ret);
}

/* Under f->mutex: the range of @w, shared if it exists, else new. */
static struct mrc_range *mrc_range_get(struct mrc_file *f,
				       const struct mrc_watch *w)
{
	struct mrc_range *r = mrc_range_find(f, w->start, w->length);

	return r ? r : mrc_range_new(f, w);
}

/* Under f->mutex: drop @r if its last watch went. */
static void mrc_range_put(struct mrc_file *f, struct mrc_range *r)
{
	if (!list_empty(&r->watches))
		return;
	rb_erase(&r->node, &f->ranges);
	mrc_range_account(f, r, -1);
	/* Waits for a callback still running on this range. */
	mmu_interval_notifier_remove(&r->notifier);
	mrc_user_uncharge(f->user, MRC_LIMIT_PAGES, r->length >> PAGE_SHIFT);
	kfree(r);
}

static void mrc_watch_account(struct mrc_file *f, long sign)
{
	f->nwatches += sign;
	atomic_long_add(sign, &mrc_stats.watches);
}

/* Detach slot @id (under f->mutex) and destroy its watch. */
static void mrc_watch_destroy(struct mrc_file *f, struct mrc_interval *iv)
{
	u32 id = iv->id;

	f->slots[id] = NULL;
	clear_bit(id, f->used);
	mrc_watch_account(f, -1);
	/*
	 * Callbacks reach a watch only through its range's list, under the
	 * lock, so once it is off the list it is ours alone.  Stale (id,
	 * generation) pairs must never validate again.
	 */
	spin_lock(&f->lock);
	list_del(&iv->link);
	mrc_gen_bump(&f->ring, id);
	spin_unlock(&f->lock);
	mrc_range_put(f, iv->range);
	mrc_user_uncharge(f->user, MRC_LIMIT_WATCHES, 1);
	kfree(iv);
}

/**
 * mrc_watch_remove_all() - remove every watch of a file being released
 * @f: file; no other user remains
 */
void mrc_watch_remove_all(struct mrc_file *f)
{
	u32 id;

	if (!f->slots)
		return;
	for_each_set_bit(id, f->used, f->ring.slots)
		mrc_watch_destroy(f, f->slots[id]);
}

static int mrc_watch_check(const struct mrc_watch *w)
{
	u64 end = w->start + w->length;

	if (w->flags || w->reserved[0] || w->reserved[1])
		return -EINVAL;
	if (!w->length || !PAGE_ALIGNED(w->start) || !PAGE_ALIGNED(w->length))
		return -EINVAL;
	if (end < w->start || end > TASK_SIZE)
		return -EINVAL;
	return 0;
}

/* Under f->mutex: a free slot or -ENOSPC. */
static int mrc_slot_find(struct mrc_file *f)
{
	unsigned long id = find_first_zero_bit(f->used, f->ring.slots);

	if (id >= f->ring.slots)
		return -ENOSPC;
	return id;
}

/* Under f->mutex: join the range's watches, armed, and fill the slot. */
static void mrc_watch_arm(struct mrc_file *f, struct mrc_interval *iv)
{
	spin_lock(&f->lock);
	iv->armed_gen = mrc_gen_bump(&f->ring, iv->id);
	iv->state = MRC_STATE_ARMED;
	list_add_tail(&iv->link, &iv->range->watches);
	spin_unlock(&f->lock);
	f->slots[iv->id] = iv;
	set_bit(iv->id, f->used);
	iv->serial = ++f->next_serial;
	mrc_watch_account(f, 1);
	/*
	 * An invalidation whose callback ran before the watch joined the
	 * list did not see it; wait for it to end so the pages are stable
	 * when WATCH returns.  One that begins later bumps the generation
	 * past armed_gen.
	 */
	mmu_interval_read_begin(&iv->range->notifier);
}

static struct mrc_interval *mrc_watch_new(u32 id, const struct mrc_watch *w)
{
	struct mrc_interval *iv = kzalloc(sizeof(*iv), GFP_KERNEL_ACCOUNT);

	if (!iv)
		return NULL;
	iv->id = id;
	iv->cookie = w->cookie;
	return iv;
}

/* Under f->mutex: a new watch in slot @id, charged to the user. */
static struct mrc_interval *mrc_watch_create(struct mrc_file *f, u32 id,
					     const struct mrc_watch *w)
{
	struct mrc_interval *iv;
	struct mrc_range *r;
	int ret;

	ret = mrc_user_charge(f->user, MRC_LIMIT_WATCHES, 1);
	if (ret)
		return ERR_PTR(ret);
	iv = mrc_watch_new(id, w);
	r = iv ? mrc_range_get(f, w) : ERR_PTR(-ENOMEM);
	if (IS_ERR(r)) {
		kfree(iv);
		mrc_user_uncharge(f->user, MRC_LIMIT_WATCHES, 1);
		return ERR_CAST(r);
	}
	iv->range = r;
	mrc_watch_arm(f, iv);
	return iv;
}

/* Under f->mutex. */
static long mrc_watch_add(struct mrc_file *f, const struct mrc_watch *w,
			  struct mrc_watch *out, u64 *serial)
{
	struct mrc_interval *iv;
	int id;

	id = mrc_slot_find(f);
	if (id < 0)
		return id;
	iv = mrc_watch_create(f, id, w);
	if (IS_ERR(iv))
		return PTR_ERR(iv);
	out->start = iv->range->start;
	out->length = iv->range->length;
	out->cookie = iv->cookie;
	out->id = iv->id;
	out->generation = iv->armed_gen;
	*serial = iv->serial;
	return 0;
}

/*
 * The answer of WATCH could not be copied out: remove the watch again, a
 * watch whose id user space never learnt would leak.  The lock was
 * dropped meanwhile, so the slot may have been freed and reused by
 * another thread; the serial tells.
 */
static void mrc_watch_undo(struct mrc_file *f, u32 id, u64 serial)
{
	struct mrc_interval *iv;

	mutex_lock(&f->mutex);
	iv = f->slots[id];
	if (iv && iv->serial == serial)
		mrc_watch_destroy(f, iv);
	mutex_unlock(&f->mutex);
}

/**
 * mrc_ioctl_watch() - MRC_IOC_WATCH
 * @f: ready file, caller's mm checked
 * @uarg: struct mrc_watch
 *
 * A watch of exactly the range of another watch of the file shares its
 * notifier (see doc/kmod-design.md); it still has its own id, cookie,
 * generation and state.
 *
 * Return: 0, -EFAULT, -EINVAL (alignment, wrap, limits, reserved),
 * -EBADFD (no handshake yet), -ENOSPC (every slot in use, or the user's
 * max_user_watches or max_user_pages reached), -EINTR (fatal signal while
 * waiting for the file), -ENOMEM.
 */
long mrc_ioctl_watch(struct mrc_file *f, void __user *uarg)
{
	struct mrc_watch w, out;
	u64 serial;
	long ret;

	if (copy_from_user(&w, uarg, sizeof(w)))
		return -EFAULT;
	ret = mrc_watch_check(&w);
	if (ret)
		return ret;
	memset(&out, 0, sizeof(out));

	if (mutex_lock_killable(&f->mutex))
		return -EINTR;
	if (!mrc_file_ready(f))
		ret = -EBADFD;
	else
		ret = mrc_watch_add(f, &w, &out, &serial);
	mutex_unlock(&f->mutex);
	if (ret)
		return ret;
	/* Not under the mutex: see the top of this file. */
	if (copy_to_user(uarg, &out, sizeof(out))) {
		mrc_watch_undo(f, out.id, serial);
		return -EFAULT;
	}
	return 0;
}

/* Under f->mutex: the watch with id @id, or an ERR_PTR. */
static struct mrc_interval *mrc_watch_lookup(struct mrc_file *f, u32 id)
{
	if (!mrc_file_ready(f))
		return ERR_PTR(-EBADFD);
	if (id >= f->ring.slots)
		return ERR_PTR(-EINVAL);
	if (!test_bit(id, f->used))
		return ERR_PTR(-ENOENT);
	return f->slots[id];
}

/**
 * mrc_ioctl_unwatch() - MRC_IOC_UNWATCH
 * @f: file, caller's mm checked
 * @uarg: struct mrc_unwatch
 *
 * Return: 0, -EFAULT, -EINVAL (id out of range, flags, reserved),
 * -ENOENT (slot not in use), -EBADFD, -EINTR (fatal signal while waiting
 * for the file).
 */
long mrc_ioctl_unwatch(struct mrc_file *f, void __user *uarg)
{
	struct mrc_unwatch u;
	struct mrc_interval *iv;
	long ret = 0;

	if (copy_from_user(&u, uarg, sizeof(u)))
		return -EFAULT;
	if (u.flags || u.reserved[0] || u.reserved[1])
		return -EINVAL;

	if (mutex_lock_killable(&f->mutex))
		return -EINTR;
	iv = mrc_watch_lookup(f, u.id);
	if (IS_ERR(iv))
		ret = PTR_ERR(iv);
	else
		mrc_watch_destroy(f, iv);
	mutex_unlock(&f->mutex);
	return ret;
}

/**
 * mrc_ioctl_query() - MRC_IOC_QUERY
 * @f: file, caller's mm checked
 * @uarg: struct mrc_query
 *
 * Return: 0, -EFAULT, -EINVAL, -ENOENT, -EBADFD, -EINTR.
 */
long mrc_ioctl_query(struct mrc_file *f, void __user *uarg)
{
	struct mrc_query q, out;
	struct mrc_interval *iv;
	long ret = 0;

	if (copy_from_user(&q, uarg, sizeof(q)))
		return -EFAULT;
	if (q.flags || q.reserved[0] || q.reserved[1])
		return -EINVAL;
	memset(&out, 0, sizeof(out));

	if (mutex_lock_killable(&f->mutex))
		return -EINTR;
	iv = mrc_watch_lookup(f, q.id);
	if (IS_ERR(iv)) {
		ret = PTR_ERR(iv);
	} else {
		out.id = iv->id;
		out.start = iv->range->start;
		out.length = iv->range->length;
		out.cookie = iv->cookie;
		spin_lock(&f->lock);
		out.generation = mrc_gen_read(&f->ring, iv->id);
		out.state = iv->state;
		out.last_reason = iv->last_reason;
		spin_unlock(&f->lock);
	}
	mutex_unlock(&f->mutex);
	if (!ret && copy_to_user(uarg, &out, sizeof(out)))
		ret = -EFAULT;
	return ret;
}

/*
 * Under f->mutex.  The read-begin / lock / read-retry loop makes sure no
 * invalidation is half way (started, pages not yet changed) when the
 * watch becomes ARMED again.  With MRC_REARM_EXPECT the generation must
 * still be the one user space read before it re-registered: an INVALID
 * watch posts nothing, so a later invalidation shows only there.
 */
static long mrc_watch_rearm(struct mrc_file *f, struct mrc_interval *iv,
			    const struct mrc_rearm *in, u64 *gen)
{
	unsigned long seq;

	for (;;) {
		seq = mmu_interval_read_begin(&iv->range->notifier);
		spin_lock(&f->lock);
		if (!mmu_interval_read_retry(&iv->range->notifier, seq))
			break;
		spin_unlock(&f->lock);
		cond_resched();
	}
	*gen = mrc_gen_read(&f->ring, iv->id);
	if ((in->flags & MRC_REARM_EXPECT) && *gen != in->expected) {
		spin_unlock(&f->lock);
		return -ESTALE;
	}
	iv->state = MRC_STATE_ARMED;
	iv->last_reason = 0;
	iv->armed_gen = *gen;
	spin_unlock(&f->lock);
	return 0;
}

static bool mrc_rearm_valid(const struct mrc_rearm *r)
{
	if (r->flags & ~MRC_REARM_EXPECT || r->reserved)
		return false;
	return (r->flags & MRC_REARM_EXPECT) || !r->expected;
}

/**
 * mrc_ioctl_rearm() - MRC_IOC_REARM
 * @f: file, caller's mm checked
 * @uarg: struct mrc_rearm
 *
 * Return: 0, -EFAULT, -EINVAL, -ENOENT, -EBADFD, -EINTR, or -ESTALE when
 * MRC_REARM_EXPECT was given and the generation moved (the watch stays
 * INVALID; the current generation is still copied out).
 */
long mrc_ioctl_rearm(struct mrc_file *f, void __user *uarg)
{
	struct mrc_rearm r, out;
	struct mrc_interval *iv;
	long ret;

	if (copy_from_user(&r, uarg, sizeof(r)))
		return -EFAULT;
	if (!mrc_rearm_valid(&r))
		return -EINVAL;
	memset(&out, 0, sizeof(out));

	if (mutex_lock_killable(&f->mutex))
		return -EINTR;
	iv = mrc_watch_lookup(f, r.id);
	if (IS_ERR(iv)) {
		ret = PTR_ERR(iv);
	} else {
		out.id = iv->id;
		out.flags = r.flags;
		out.expected = r.expected;
		ret = mrc_watch_rearm(f, iv, &r, &out.generation);
	}
	mutex_unlock(&f->mutex);
	if ((!ret || ret == -ESTALE) && copy_to_user(uarg, &out, sizeof(out)))
		ret = -EFAULT;
	return ret;
}
