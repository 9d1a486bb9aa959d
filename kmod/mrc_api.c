// SPDX-License-Identifier: GPL-2.0
/*
 * mrc_api.c - the MRC_IOC_API handshake
 *
 * Validation and the answer are computed first; the answer is copied to
 * user space; only then is the file set up.  So a call that fails (bad
 * arguments, bad pointer, probe) leaves the file exactly as it was and
 * the same fd can try again.
 */
#include <linux/log2.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "mrc_internal.h"

static bool mrc_api_reserved_clear(const struct mrc_api *api)
{
	unsigned int i;

	if (api->pad)
		return false;
	for (i = 0; i < ARRAY_SIZE(api->reserved); i++)
		if (api->reserved[i])
			return false;
	return true;
}

static int mrc_api_entries(u32 req, u32 *entries)
{
	if (!req)
		req = min(mrc_default_ring_entries, mrc_max_ring_entries);
	if (!is_power_of_2(req) || req < MRC_RING_MIN_ENTRIES ||
	    req > mrc_max_ring_entries)
		return -EINVAL;
	*entries = req;
	return 0;
}

static int mrc_api_slots(u32 req, u32 *slots)
{
	if (!req)
		req = min(mrc_default_watch_slots, mrc_max_watches);
	if (req > mrc_max_watches)
		return -EINVAL;
	*slots = req;
	return 0;
}

/* Validate @in and compute the answer in @out and @geo. */
static int mrc_api_answer(const struct mrc_api *in, struct mrc_api *out,
			  struct mrc_geometry *geo)
{
	bool probe = in->flags & MRC_API_PROBE;
	u32 entries, slots;
	int ret;

	if (in->abi_version != MRC_ABI_VERSION)
		return -EINVAL;
	if (in->flags & ~MRC_API_PROBE || !mrc_api_reserved_clear(in))
		return -EINVAL;
	if (!probe && (in->features & ~MRC_FEAT_ALL))
		return -EINVAL;
	/* A counter nobody is told about would be a silent no-op. */
	if (!probe && (in->features & MRC_FEAT_PRESSURE_COUNTER) &&
	    !(in->features & MRC_FEAT_PRESSURE))
		return -EINVAL;
	ret = mrc_api_entries(in->ring_entries, &entries);
	if (!ret)
		ret = mrc_api_slots(in->watch_slots, &slots);
	if (!ret)
		ret = mrc_geometry_compute(geo, entries, slots);
	if (ret)
		return ret;

	memset(out, 0, sizeof(*out));
	out->abi_version = MRC_ABI_VERSION;
	out->flags = in->flags;
	out->ring_entries = entries;
	out->watch_slots = slots;
	out->features = in->features & MRC_FEAT_ALL;
	out->supported_features = MRC_FEAT_ALL;
	out->mmap_length = geo->length;
	out->event_size = sizeof(struct mrc_event);
	out->max_ring_entries = mrc_max_ring_entries;
	out->max_watch_slots = mrc_max_watches;
	mrc_ring_offsets_fill(&out->off, geo);
	return 0;
}

/* Under f->mutex: allocate everything, then publish the file as ready. */
static int mrc_file_setup(struct mrc_file *f, const struct mrc_geometry *geo,
			  u64 features)
{
	int ret;

	if (f->ready)
		return -EBUSY;
	ret = mrc_user_charge(f->user, MRC_LIMIT_FILES, 1);
	if (ret)
		return ret;
	ret = mrc_ring_alloc(&f->ring, geo);
	if (ret)
		goto uncharge;
	ret = mrc_watch_table_alloc(f, geo->slots);
	if (ret)
		goto free_ring;
	f->features = features;
	ret = mrc_pressure_add(f);
	if (ret)
		goto free_table;
	/* Pairs with the load-acquire in mrc_file_ready(). */
	smp_store_release(&f->ready, true);
	return 0;

free_table:
	mrc_watch_table_free(f);
	f->features = 0;
free_ring:
	mrc_ring_free(&f->ring);
uncharge:
	mrc_user_uncharge(f->user, MRC_LIMIT_FILES, 1);
	return ret;
}

/**
 * mrc_ioctl_api() - MRC_IOC_API
 * @f: file, caller's mm checked
 * @uarg: struct mrc_api
 *
 * Return: 0; -EFAULT; -EINVAL for a wrong ABI version, unknown flags or
 * features, MRC_FEAT_PRESSURE_COUNTER without MRC_FEAT_PRESSURE, non-zero
 * reserved fields or out-of-range sizes; -EBUSY if the file was already
 * set up; -EMFILE if the opener's user already has max_user_files set-up
 * files; -EINTR if a fatal signal arrived while waiting for another call
 * on the file; -ENOMEM.  Only a successful non-probe call changes the
 * file.
 */
long mrc_ioctl_api(struct mrc_file *f, void __user *uarg)
{
	struct mrc_geometry geo;
	struct mrc_api in, out;
	int ret;

	if (copy_from_user(&in, uarg, sizeof(in)))
		return -EFAULT;
	ret = mrc_api_answer(&in, &out, &geo);
	if (ret)
		return ret;
	if (copy_to_user(uarg, &out, sizeof(out)))
		return -EFAULT;
	if (in.flags & MRC_API_PROBE)
		return 0;

	if (mutex_lock_killable(&f->mutex))
		return -EINTR;
	ret = mrc_file_setup(f, &geo, out.features);
	mutex_unlock(&f->mutex);
	return ret;
}
