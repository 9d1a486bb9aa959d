// SPDX-License-Identifier: GPL-2.0
/*
 * mrc_user.c - what one user may hold: set-up files, watches and watched
 * pages, bounded per user like inotify's max_user_instances and
 * max_user_watches.
 *
 * The device is mode 0666, and the memory cgroup bounds only the memory a
 * user spends, not the work its watches cause others: every invalidation
 * of a watched page (kswapd, compaction, migration of the user's pages)
 * runs one callback per watch covering it, and the shrinker's object
 * count grows with the watched pages.  So each user's share is bounded.
 *
 * A module cannot add fields to struct user_struct, so usage lives in a
 * small struct per effective uid, found in a hash at open(), held by
 * every file its opener created, and freed with the last of them.  Usage
 * is charged by setup (files) and WATCH (watches, pages) and uncharged by
 * UNWATCH and release; a user whose files are all closed has no struct
 * left, so nothing can leak past the last close.
 */
#include <linux/hashtable.h>
#include <linux/slab.h>

#include "mrc_internal.h"

static DEFINE_HASHTABLE(mrc_users, 6);
static DEFINE_SPINLOCK(mrc_users_lock);

/* Under mrc_users_lock. */
static struct mrc_user *mrc_user_find(kuid_t uid)
{
	struct mrc_user *u;

	hash_for_each_possible(mrc_users, u, node, __kuid_val(uid))
		if (uid_eq(u->uid, uid))
			return u;
	return NULL;
}

/**
 * mrc_user_get() - the usage struct of @uid, created if needed
 * @uid: effective uid of the process opening the device
 *
 * Return: the struct, with a reference for the caller, or
 * ERR_PTR(-ENOMEM).
 */
struct mrc_user *mrc_user_get(kuid_t uid)
{
	struct mrc_user *u, *fresh;

	/* Allocate first: nothing allocates under the spinlock. */
	fresh = kzalloc(sizeof(*fresh), GFP_KERNEL_ACCOUNT);
	if (!fresh)
		return ERR_PTR(-ENOMEM);
	spin_lock(&mrc_users_lock);
	u = mrc_user_find(uid);
	if (u) {
		refcount_inc(&u->ref);
	} else {
		u = fresh;
		fresh = NULL;
		u->uid = uid;
		refcount_set(&u->ref, 1);
		hash_add(mrc_users, &u->node, __kuid_val(uid));
		atomic_long_inc(&mrc_stats.users);
	}
	spin_unlock(&mrc_users_lock);
	kfree(fresh);
	return u;
}

/**
 * mrc_user_put() - drop a file's reference; the last one frees the struct
 * @u: from mrc_user_get(); everything the file charged is uncharged
 */
void mrc_user_put(struct mrc_user *u)
{
	if (!refcount_dec_and_lock(&u->ref, &mrc_users_lock))
		return;
	hash_del(&u->node);
	spin_unlock(&mrc_users_lock);
	/* A non-zero count here is a charge without its uncharge. */
	WARN_ON(atomic_long_read(&u->files) ||
		atomic_long_read(&u->watches) ||
		atomic_long_read(&u->pages));
	atomic_long_dec(&mrc_stats.users);
	kfree(u);
}

static atomic_long_t *mrc_user_counter(struct mrc_user *u,
				       enum mrc_limit which)
{
	switch (which) {
	case MRC_LIMIT_FILES:
		return &u->files;
	case MRC_LIMIT_WATCHES:
		return &u->watches;
	case MRC_LIMIT_PAGES:
		break;
	}
	return &u->pages;
}

static unsigned long mrc_limit_of(enum mrc_limit which)
{
	switch (which) {
	case MRC_LIMIT_FILES:
		return mrc_max_user_files;
	case MRC_LIMIT_WATCHES:
		return mrc_max_user_watches;
	case MRC_LIMIT_PAGES:
		break;
	}
	return mrc_max_user_pages;
}

/* Count a refused charge; returns the errno the caller gets. */
static int mrc_limit_hit(enum mrc_limit which)
{
	switch (which) {
	case MRC_LIMIT_FILES:
		atomic_long_inc(&mrc_stats.limit_files);
		return -EMFILE;
	case MRC_LIMIT_WATCHES:
		atomic_long_inc(&mrc_stats.limit_watches);
		return -ENOSPC;
	case MRC_LIMIT_PAGES:
		break;
	}
	atomic_long_inc(&mrc_stats.limit_pages);
	return -ENOSPC;
}

/**
 * mrc_user_charge() - charge @n units of @which to @u, within its limit
 * @u: the user
 * @which: files, watches or pages
 * @n: units, > 0
 *
 * The compare-and-swap loop never lets the count pass the limit, not even
 * for a moment, so two racing charges cannot both fail spuriously.
 *
 * Return: 0; -EMFILE (files) or -ENOSPC (watches, pages) when the limit
 * would be exceeded, which is also counted in stats/limit_*.
 */
int mrc_user_charge(struct mrc_user *u, enum mrc_limit which, long n)
{
	atomic_long_t *cnt = mrc_user_counter(u, which);
	unsigned long max = mrc_limit_of(which);
	long old = atomic_long_read(cnt);

	do {
		if ((unsigned long)n > max || (unsigned long)old > max - n)
			return mrc_limit_hit(which);
	} while (!atomic_long_try_cmpxchg(cnt, &old, old + n));
	return 0;
}

/**
 * mrc_user_uncharge() - give back what mrc_user_charge() took
 * @u: the user
 * @which: files, watches or pages
 * @n: units charged earlier
 */
void mrc_user_uncharge(struct mrc_user *u, enum mrc_limit which, long n)
{
	WARN_ON(atomic_long_sub_return(n, mrc_user_counter(u, which)) < 0);
}
