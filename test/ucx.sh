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
#   shim, add    MRCACHE_UCX_MODE=add: UCX keeps its hooks, the module adds
#                what they miss.
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
run "shim, add" env LD_PRELOAD="$lib" MRCACHE_UCX_MODE=add MRCACHE_UCX_VERBOSE=1 "$app" shim kmod
exit $status
