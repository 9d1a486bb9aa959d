// SPDX-License-Identifier: GPL-2.0
/*
 * mrc_main.c - module entry: parameters, the misc device, statistics
 *
 * mrcache watches user address ranges of the opener's own mm with
 * mmu_interval_notifier and reports invalidations through a ring shared
 * with user space, so that an RDMA registration cache knows when a cached
 * memory registration no longer matches the process's page tables.
 */
#include <linux/device.h>
#include <linux/log2.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/moduleparam.h>

#include "mrc_internal.h"

unsigned int mrc_max_ring_entries = 65536;
module_param_named(max_ring_entries, mrc_max_ring_entries, uint, 0444);
MODULE_PARM_DESC(max_ring_entries,
		 "Largest event ring a file may ask for (power of two, default 65536)");

unsigned int mrc_max_watches = 65536;
module_param_named(max_watches, mrc_max_watches, uint, 0444);
MODULE_PARM_DESC(max_watches,
		 "Largest number of watch slots (= watches) per file (default 65536)");

unsigned int mrc_default_ring_entries = 4096;
module_param_named(default_ring_entries, mrc_default_ring_entries, uint, 0444);
MODULE_PARM_DESC(default_ring_entries,
		 "Ring entries when the handshake asks for 0 (default 4096)");

unsigned int mrc_default_watch_slots = 4096;
module_param_named(default_watch_slots, mrc_default_watch_slots, uint, 0444);
MODULE_PARM_DESC(default_watch_slots,
		 "Watch slots when the handshake asks for 0 (default 4096)");

/*
 * Per-user bounds (see mrc_user.c).  The defaults leave room for one
 * process per hardware thread of a large node, each with a cache of a few
 * hundred registrations, while bounding what one user can make reclaim
 * and the shrinker do.
 */
unsigned int mrc_max_user_files = 512;
module_param_named(max_user_files, mrc_max_user_files, uint, 0444);
MODULE_PARM_DESC(max_user_files,
		 "Set-up files per user; more fail with EMFILE (default 512)");

unsigned int mrc_max_user_watches = 262144;
module_param_named(max_user_watches, mrc_max_user_watches, uint, 0444);
MODULE_PARM_DESC(max_user_watches,
		 "Watches per user; more fail with ENOSPC (default 262144)");

unsigned long mrc_max_user_pages = 1UL << 28;
module_param_named(max_user_pages, mrc_max_user_pages, ulong, 0444);
MODULE_PARM_DESC(max_user_pages,
		 "Pages of distinct watched ranges per user; more fail with ENOSPC (default 2^28)");

struct mrc_stats mrc_stats;
DEFINE_PER_CPU(struct mrc_pcpu_stats, mrc_pcpu_stats);

/* Global counters for tests and debugging; root only (they describe
 * every user of the device). */
#define MRC_STAT_ATTR(name)						\
static ssize_t name##_show(struct device *dev,				\
			   struct device_attribute *attr, char *buf)	\
{									\
	return sysfs_emit(buf, "%ld\n",					\
			  atomic_long_read(&mrc_stats.name));		\
}									\
static DEVICE_ATTR_ADMIN_RO(name)

/* The same for a per-CPU counter: the sum over every possible CPU. */
#define MRC_PCPU_STAT_ATTR(name)					\
static ssize_t name##_show(struct device *dev,				\
			   struct device_attribute *attr, char *buf)	\
{									\
	unsigned long sum = 0;						\
	int cpu;							\
									\
	for_each_possible_cpu(cpu)					\
		sum += per_cpu(mrc_pcpu_stats.name, cpu);		\
	return sysfs_emit(buf, "%lu\n", sum);				\
}									\
static DEVICE_ATTR_ADMIN_RO(name)

MRC_STAT_ATTR(files);
MRC_STAT_ATTR(users);
MRC_STAT_ATTR(watches);
MRC_STAT_ATTR(ranges);
MRC_STAT_ATTR(watched_pages);
MRC_STAT_ATTR(pressure_pages);
MRC_STAT_ATTR(ring_bytes);
MRC_PCPU_STAT_ATTR(callbacks);
MRC_PCPU_STAT_ATTR(events);
MRC_PCPU_STAT_ATTR(coalesced);
MRC_PCPU_STAT_ATTR(filtered);
MRC_PCPU_STAT_ATTR(overflows);
MRC_PCPU_STAT_ATTR(release_events);
MRC_PCPU_STAT_ATTR(nonblock_busy);
MRC_STAT_ATTR(shrinker_scans);
MRC_STAT_ATTR(pressure_events);
MRC_STAT_ATTR(limit_files);
MRC_STAT_ATTR(limit_watches);
MRC_STAT_ATTR(limit_pages);

static struct attribute *mrc_stat_attrs[] = {
	&dev_attr_files.attr,
	&dev_attr_users.attr,
	&dev_attr_watches.attr,
	&dev_attr_ranges.attr,
	&dev_attr_watched_pages.attr,
	&dev_attr_pressure_pages.attr,
	&dev_attr_ring_bytes.attr,
	&dev_attr_callbacks.attr,
	&dev_attr_events.attr,
	&dev_attr_coalesced.attr,
	&dev_attr_filtered.attr,
	&dev_attr_overflows.attr,
	&dev_attr_release_events.attr,
	&dev_attr_nonblock_busy.attr,
	&dev_attr_shrinker_scans.attr,
	&dev_attr_pressure_events.attr,
	&dev_attr_limit_files.attr,
	&dev_attr_limit_watches.attr,
	&dev_attr_limit_pages.attr,
	NULL,
};

static const struct attribute_group mrc_stat_group = {
	.name = "stats",
	.attrs = mrc_stat_attrs,
};

static const struct attribute_group *mrc_groups[] = {
	&mrc_stat_group,
	NULL,
};

static struct miscdevice mrc_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "mrcache",
	.fops = &mrc_fops,
	.groups = mrc_groups,
};

static int __init mrc_params_check(void)
{
	if (!is_power_of_2(mrc_max_ring_entries) ||
	    mrc_max_ring_entries < MRC_RING_MIN_ENTRIES ||
	    mrc_max_ring_entries > MRC_RING_HARD_MAX) {
		pr_err("max_ring_entries must be a power of two in [%u, %u]\n",
		       MRC_RING_MIN_ENTRIES, MRC_RING_HARD_MAX);
		return -EINVAL;
	}
	if (!is_power_of_2(mrc_default_ring_entries) ||
	    mrc_default_ring_entries < MRC_RING_MIN_ENTRIES) {
		pr_err("default_ring_entries must be a power of two >= %u\n",
		       MRC_RING_MIN_ENTRIES);
		return -EINVAL;
	}
	if (!mrc_max_watches || mrc_max_watches > MRC_SLOTS_HARD_MAX ||
	    !mrc_default_watch_slots) {
		pr_err("max_watches must be in [1, %u], default_watch_slots > 0\n",
		       MRC_SLOTS_HARD_MAX);
		return -EINVAL;
	}
	if (!mrc_max_user_files || !mrc_max_user_watches ||
	    !mrc_max_user_pages || mrc_max_user_pages > LONG_MAX) {
		pr_err("max_user_files, max_user_watches and max_user_pages must be > 0\n");
		return -EINVAL;
	}
	return 0;
}

static int __init mrc_init(void)
{
	int ret;

	ret = mrc_params_check();
	if (ret)
		return ret;
	ret = mrc_shrinker_register();
	if (ret)
		return ret;
	ret = misc_register(&mrc_misc);
	if (ret) {
		mrc_shrinker_unregister();
		return ret;
	}
	return 0;
}

static void __exit mrc_exit(void)
{
	misc_deregister(&mrc_misc);
	mrc_shrinker_unregister();
	/* No callback of ours may still be queued for SRCU when text goes. */
	mmu_notifier_synchronize();
}

module_init(mrc_init);
module_exit(mrc_exit);

MODULE_DESCRIPTION("mrcache: address-range invalidation events for RDMA registration caches");
MODULE_AUTHOR("mrcache project");
MODULE_LICENSE("GPL");
