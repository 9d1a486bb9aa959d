#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
#
# make check: libmrcache-ucx.so as the source of UCX's unmap events, with
# UCX's own registration cache on the real verbs transport (Soft-RoCE rxe0
# in the VM, two NUMA nodes for move_pages): two UCP workers, 1 MiB tagged
# sends, the sender's buffer changed between two sends. Runs:
#   native       UCX's own hooks: after a raw munmap system call or
#                move_pages the receiver gets the old bytes (the test can
#                fail: this is what it fails on);
#   shim, kmod   LD_PRELOAD=libmrcache-ucx.so: the new bytes every time;
#   shim, hooks  MRCACHE_MONITOR=hooks: new bytes but after move_pages;
#   shim, uffd   MRCACHE_MONITOR=uffd: new bytes after the raw munmap too
#                (the kernel reports it), not move_pages (no event for it);
#   shim, add    MRCACHE_UCX_MODE=add: UCX keeps its hooks, the module adds
#                what they miss.
# Each of these also tries to migrate a registered buffer: the pages move
# on a second try with the module (UCX was told and let go), never without.
# Then the race the synchronous delivery in ucs_rcache_get closes (munmap,
# mmap at the same address, send), with the shim's drain thread held off
# by the test-only delays of mrcache-runtimes(7): the new bytes with the
# shim as it is, the old ones with MRCACHE_UCX_TEST_NO_SYNC=all, and which
# half (the drain before UCX's lookup, the check after it) catches what.
# Two trials per run (deterministic so far: every send stale or none);
# MRCACHE_UCX_RACE_TRIALS=N for more.
# Re-runs itself in the guest (test/in-vm.sh), natively when this machine
# has an RDMA device and the module.
set -u

. "$(dirname "$0")/shim_common.sh"
app=$top_builddir/test/ucx_test
lib=$top_builddir/src/ucx/.libs/libmrcache-ucx.so
rerun_in_vm "$app" "$lib" "${MRCACHE_UCX_TIMEOUT:-600}"

# UCX over Soft-RoCE (test/vm/README.md): RoCE v2 GID, no rdma_cm, and a
# rendezvous threshold that makes 1 MiB zero-copy through the cache.
export UCX_TLS=rc_verbs,ud_verbs,self UCX_NET_DEVICES=rxe0:1 UCX_IB_GID_INDEX=2
export UCX_RNDV_THRESH=8k UCX_WARN_UNUSED_ENV_VARS=n

run "UCX's own hooks" "$app" native
run "shim, kmod" env LD_PRELOAD="$lib" MRCACHE_UCX_VERBOSE=1 "$app" shim kmod
run "shim, hooks" env LD_PRELOAD="$lib" MRCACHE_MONITOR=hooks "$app" shim hooks
run "shim, uffd" env LD_PRELOAD="$lib" MRCACHE_MONITOR=uffd "$app" shim uffd
run "shim, add" env LD_PRELOAD="$lib" MRCACHE_UCX_MODE=add MRCACHE_UCX_VERBOSE=1 "$app" shim kmod

# NAME HOLD(wake|report) WANT(fresh|stale) [NO_SYNC]: ucx_test race.
race() {
	local delay=MRCACHE_SHIM_TEST_WAKE_DELAY_MS=500
	[[ $2 == report ]] && delay=MRCACHE_SHIM_TEST_REPORT_DELAY_MS=1200
	run "race, $1" env LD_PRELOAD="$lib" "$delay" \
		${4:+MRCACHE_UCX_TEST_NO_SYNC=$4} "$app" race "$2" "$3"
}
race "thread late, the shim as it is" wake fresh
race "thread late, no synchronous delivery" wake stale all
race "thread late, the check alone" wake fresh drain
race "thread mid-report, the shim as it is" report fresh
race "thread mid-report, the drain alone" report stale check
exit $status
