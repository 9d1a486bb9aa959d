/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * libmrcache-ucx.so: mrcache as the source of UCX's memory events (UCX
 * 1.13 ucm API). Loaded with LD_PRELOAD it sets itself up from a
 * constructor; a runtime that links it calls mrc_ucx_init() before UCX
 * creates its first registration cache. See mrcache-runtimes(7).
 */
#ifndef MRCACHE_UCX_H
#define MRCACHE_UCX_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Start delivering memory changes to UCX (MRCACHE_UCX_MODE: "replace",
 * the default, also tells UCX not to install its own unmap hooks; "add"
 * keeps them; "off" does nothing). Idempotent. Returns 0 or -errno.
 */
int mrc_ucx_init(void);

/* The monitor behind it ("kmod", "hooks"), or NULL when not running. */
const char *mrc_ucx_monitor(void);

#ifdef __cplusplus
}
#endif

#endif /* MRCACHE_UCX_H */
