// SPDX-License-Identifier: GPL-2.0
/*
 * mrc_watch.c - the watch table and the WATCH, UNWATCH, QUERY and REARM
 * ioctls.
 *
 * A watch id is its slot in the generation array.  A watch lives until
 * UNWATCH or until the file is released; an invalidation only turns it
 * from ARMED to INVALID (notifiers are never removed from a callback).
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

static void mrc_watch_account(struct mrc_file *f, struct mrc_interval *iv,
			      long sign)
{
	long pages = sign * (long)(iv->length >> PAGE_SHIFT);

	f->nwatches += sign;
	WRITE_ONCE(f->watched_pages, f->watched_pages + pages);
	atomic_long_add(sign, &mrc_stats.watches);
	atomic_long_add(pages, &mrc_stats.watched_pages);
	mrc_pressure_account(f, pages);
}

/* Detach slot @id (under f->mutex) and destroy its watch. */
static void mrc_watch_destroy(struct mrc_file *f, struct mrc_interval *iv)
{
	u32 id = iv->id;

	f->slots[id] = NULL;
	clear_bit(id, f->used);
	mrc_watch_account(f, iv, -1);
	/* Waits for a callback still running on this watch. */
	mmu_interval_notifier_remove(&iv->notifier);
	/* Stale (id, generation) pairs must never validate again. */
	spin_lock(&f->lock);
	mrc_gen_bump(&f->ring, id);
	spin_unlock(&f->lock);
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

/* Under f->mutex: insert the notifier and arm the watch. */
static int mrc_watch_insert(struct mrc_file *f, struct mrc_interval *iv)
{
	int ret;

	spin_lock(&f->lock);
	iv->armed_gen = mrc_gen_bump(&f->ring, iv->id);
	iv->state = MRC_STATE_ARMED;
	spin_unlock(&f->lock);

	ret = mmu_interval_notifier_insert(&iv->notifier, f->mm, iv->start,
					   iv->length, &mrc_interval_ops);
	if (ret)
		return ret;
	f->slots[iv->id] = iv;
	set_bit(iv->id, f->used);
	mrc_watch_account(f, iv, 1);
	/*
	 * An invalidation that began before the insert is not reported to
	 * us; wait for it to end so the pages are stable when WATCH returns.
	 * One that begins later bumps the generation past armed_gen.
	 */
	mmu_interval_read_begin(&iv->notifier);
	return 0;
}

static struct mrc_interval *mrc_watch_new(struct mrc_file *f,
					  const struct mrc_watch *w)
{
	struct mrc_interval *iv = kzalloc(sizeof(*iv), GFP_KERNEL_ACCOUNT);

	if (!iv)
		return NULL;
	iv->file = f;
	iv->start = w->start;
	iv->length = w->length;
	iv->cookie = w->cookie;
	return iv;
}

/* Under f->mutex. */
static long mrc_watch_add(struct mrc_file *f, const struct mrc_watch *w,
			  struct mrc_watch *out)
{
	struct mrc_interval *iv;
	int id, ret;

	id = mrc_slot_find(f);
	if (id < 0)
		return id;
	iv = mrc_watch_new(f, w);
	if (!iv)
		return -ENOMEM;
	iv->id = id;
	ret = mrc_watch_insert(f, iv);
	if (ret) {
		kfree(iv);
		return ret;
	}
	out->start = iv->start;
	out->length = iv->length;
	out->cookie = iv->cookie;
	out->id = iv->id;
	out->generation = iv->armed_gen;
	return 0;
}

/**
 * mrc_ioctl_watch() - MRC_IOC_WATCH
 * @f: ready file, caller's mm checked
 * @uarg: struct mrc_watch
 *
 * Return: 0, -EFAULT, -EINVAL (alignment, wrap, limits, reserved),
 * -EBADFD (no handshake yet), -ENOSPC (every slot in use), -ENOMEM.
 */
long mrc_ioctl_watch(struct mrc_file *f, void __user *uarg)
{
	struct mrc_watch w, out;
	long ret;

	if (copy_from_user(&w, uarg, sizeof(w)))
		return -EFAULT;
	ret = mrc_watch_check(&w);
	if (ret)
		return ret;
	memset(&out, 0, sizeof(out));

	mutex_lock(&f->mutex);
	if (!mrc_file_ready(f)) {
		ret = -EBADFD;
	} else {
		ret = mrc_watch_add(f, &w, &out);
		/* A watch whose id user space never learnt would leak. */
		if (!ret && copy_to_user(uarg, &out, sizeof(out))) {
			mrc_watch_destroy(f, f->slots[out.id]);
			ret = -EFAULT;
		}
	}
	mutex_unlock(&f->mutex);
	return ret;
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
 * -ENOENT (slot not in use), -EBADFD.
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

	mutex_lock(&f->mutex);
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
 * Return: 0, -EFAULT, -EINVAL, -ENOENT, -EBADFD.
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

	mutex_lock(&f->mutex);
	iv = mrc_watch_lookup(f, q.id);
	if (IS_ERR(iv)) {
		ret = PTR_ERR(iv);
	} else {
		out.id = iv->id;
		out.start = iv->start;
		out.length = iv->length;
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
		seq = mmu_interval_read_begin(&iv->notifier);
		spin_lock(&f->lock);
		if (!mmu_interval_read_retry(&iv->notifier, seq))
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
 * Return: 0, -EFAULT, -EINVAL, -ENOENT, -EBADFD, or -ESTALE when
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

	mutex_lock(&f->mutex);
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
