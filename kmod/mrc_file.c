// SPDX-License-Identifier: GPL-2.0
/*
 * mrc_file.c - file operations of /dev/mrcache
 *
 * A file belongs to the mm that opened it.  Every entry point that acts
 * on the file's state first checks current->mm: a forked child (or any
 * process that got the fd passed) gets -EPERM, EPOLLERR from poll, and
 * never sees or changes the owner's watches or ring.  The ring mapping is
 * VM_DONTCOPY (locked in place by VM_IO), so a child does not even
 * inherit the pages.
 */
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "mrc_internal.h"

/**
 * mrc_file_ready() - whether the handshake completed
 * @f: file
 *
 * Return: true once the ring and the watch table exist; they stay until
 * release.
 */
bool mrc_file_ready(struct mrc_file *f)
{
	/* Pairs with the store-release in mrc_file_setup(). */
	return smp_load_acquire(&f->ready);
}

/**
 * mrc_file_wake() - wake poll() and read() sleepers of @f
 * @f: file
 */
void mrc_file_wake(struct mrc_file *f)
{
	wake_up_interruptible_poll(&f->wq, EPOLLIN | EPOLLRDNORM);
}

static bool mrc_is_owner(struct mrc_file *f)
{
	return current->mm == f->mm;
}

/*
 * The usage of the opener's effective uid is what the file is charged
 * to, for its whole life, whoever uses the descriptor later.
 */
static int mrc_open(struct inode *inode, struct file *file)
{
	struct mrc_file *f;
	struct mrc_user *u;

	if (!current->mm)
		return -EINVAL;
	u = mrc_user_get(current_euid());
	if (IS_ERR(u))
		return PTR_ERR(u);
	f = kzalloc(sizeof(*f), GFP_KERNEL_ACCOUNT);
	if (!f) {
		mrc_user_put(u);
		return -ENOMEM;
	}
	f->user = u;
	f->mm = current->mm;
	mmgrab(f->mm);
	spin_lock_init(&f->lock);
	mutex_init(&f->mutex);
	init_waitqueue_head(&f->wq);
	f->ranges = RB_ROOT;
	file->private_data = f;
	atomic_long_inc(&mrc_stats.files);
	return stream_open(inode, file);
}

static int mrc_release(struct inode *inode, struct file *file)
{
	struct mrc_file *f = file->private_data;

	/* After this no shrinker walk can reach the file. */
	mrc_pressure_del(f);

	mrc_watch_remove_all(f);
	mrc_watch_table_free(f);
	mrc_ring_free(&f->ring);
	if (f->ready)
		mrc_user_uncharge(f->user, MRC_LIMIT_FILES, 1);
	mrc_user_put(f->user);
	mmdrop(f->mm);
	mutex_destroy(&f->mutex);
	kfree(f);
	atomic_long_dec(&mrc_stats.files);
	return 0;
}

static long mrc_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct mrc_file *f = file->private_data;
	void __user *uarg = (void __user *)arg;

	if (!mrc_is_owner(f))
		return -EPERM;
	switch (cmd) {
	case MRC_IOC_API:
		return mrc_ioctl_api(f, uarg);
	case MRC_IOC_WATCH:
		return mrc_ioctl_watch(f, uarg);
	case MRC_IOC_UNWATCH:
		return mrc_ioctl_unwatch(f, uarg);
	case MRC_IOC_QUERY:
		return mrc_ioctl_query(f, uarg);
	case MRC_IOC_REARM:
		return mrc_ioctl_rearm(f, uarg);
	}
	return -ENOTTY;
}

static int mrc_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct mrc_file *f = file->private_data;

	if (!mrc_is_owner(f))
		return -EPERM;
	if (!mrc_file_ready(f))
		return -EBADFD;
	if (vma->vm_pgoff || vma->vm_end - vma->vm_start != f->ring.length)
		return -EINVAL;
	/* A private mapping would copy-on-write the consumer index away. */
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;
	vma->vm_flags &= ~VM_MAYEXEC;
	/*
	 * VM_IO makes madvise(MADV_DOFORK) fail with -EINVAL, so the
	 * VM_DONTCOPY that keeps a child from sharing the live ring cannot
	 * be cleared from user space.
	 */
	vma->vm_flags |= VM_DONTCOPY | VM_DONTEXPAND | VM_DONTDUMP | VM_IO;
	return mrc_ring_mmap(&f->ring, vma);
}

static __poll_t mrc_poll(struct file *file, struct poll_table_struct *pt)
{
	struct mrc_file *f = file->private_data;

	if (!mrc_is_owner(f))
		return EPOLLERR;
	poll_wait(file, &f->wq, pt);
	if (mrc_file_ready(f) && mrc_ring_has_news(&f->ring))
		return EPOLLIN | EPOLLRDNORM;
	return 0;
}

static ssize_t mrc_read(struct file *file, char __user *buf, size_t count,
			loff_t *ppos)
{
	struct mrc_file *f = file->private_data;
	struct mrc_read_info info;
	int ret;

	if (!mrc_is_owner(f))
		return -EPERM;
	if (!mrc_file_ready(f))
		return -EBADFD;
	if (count < sizeof(info))
		return -EINVAL;
	if (!mrc_ring_has_news(&f->ring)) {
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		ret = wait_event_interruptible(f->wq,
					       mrc_ring_has_news(&f->ring));
		if (ret)
			return ret;
	}
	memset(&info, 0, sizeof(info));
	info.producer = READ_ONCE(f->ring.prod);
	info.pending = info.producer -
		       smp_load_acquire(&f->ring.hdr->consumer);
	info.overflow = READ_ONCE(f->ring.overflow);
	if (copy_to_user(buf, &info, sizeof(info)))
		return -EFAULT;
	return sizeof(info);
}

const struct file_operations mrc_fops = {
	.owner = THIS_MODULE,
	.open = mrc_open,
	.release = mrc_release,
	.unlocked_ioctl = mrc_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = mrc_mmap,
	.poll = mrc_poll,
	.read = mrc_read,
	.llseek = no_llseek,
};
