// SPDX-License-Identifier: BSD-2-Clause
/*
 * The manual monitor: nothing is watched; the application reports changes
 * itself with mrc_invalidate(). Its event word never changes, so the hit
 * path's monitor check always passes.
 */
#include "monitor.h"

static int manual_start(struct mrc_monitor *mon, struct mrc_cache *cache)
{
	(void)mon;
	(void)cache;
	return 0;
}

static void manual_stop(struct mrc_monitor *mon)
{
	(void)mon;
}

static uint32_t manual_drain(struct mrc_monitor *mon)
{
	return *mon->events;
}

const struct mrc_monitor_ops mrc_monitor_manual_ops = {
	.name = "manual",
	.start = manual_start,
	.stop = manual_stop,
	.drain = manual_drain,
};

const struct mrc_monitor_ops mrc_monitor_none_ops = {
	.name = "none",
	.start = manual_start,
	.stop = manual_stop,
	.drain = manual_drain,
};
