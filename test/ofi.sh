#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
#
# make check: libmrcache-ofi.so as libfabric's memory monitor, with
# libfabric's own MR cache on the real verbs provider (Soft-RoCE rxe0 in
# the VM, two NUMA nodes for move_pages). Three runs of test/ofi_test:
#   native       libfabric's own monitor: the raw munmap system call and
#                move_pages give the stale registration back (the test
#                can fail: this is what it fails on);
#   shim, kmod   LD_PRELOAD=libmrcache-ofi.so: every case is fresh;
#   shim, hooks  MRCACHE_MONITOR=hooks: fresh but for move_pages, which no
#                libc hook can see;
#   shim, uffd   MRCACHE_MONITOR=uffd: fresh after the raw munmap too (the
#                kernel reports it), but not move_pages (no event for it).
# Each also tries to migrate a registered buffer: the pages move on a
# second try with the module (libfabric was told and let go), never
# without. Then the trim path (ofi_test trim): the module loaded again
# with 64 watch slots, four times as many registrations.
# Re-runs itself in the guest (test/in-vm.sh), natively when this machine
# has an RDMA device and the module.
set -u

. "$(dirname "$0")/shim_common.sh"
app=$top_builddir/test/ofi_test
lib=$top_builddir/src/ofi/.libs/libmrcache-ofi.so
rerun_in_vm "$app" "$lib" "${MRCACHE_OFI_TIMEOUT:-600}"

# rdma_cm cannot bind on lo: rxe1 on a dummy interface (rdma_progs.sh).
. "$(dirname "$0")/rdma_progs.sh"
fail() { say "$*"; exit 1; }
MRCACHE_OFI_ADDR=$(rdma_cm_addr) || exit 1
export MRCACHE_OFI_ADDR

run "libfabric's own monitor" env FI_LOG_LEVEL=warn "$app" native
run "shim, kmod" env LD_PRELOAD="$lib" MRCACHE_OFI_VERBOSE=1 "$app" shim kmod
run "shim, hooks" env LD_PRELOAD="$lib" MRCACHE_MONITOR=hooks "$app" shim hooks
run "shim, uffd" env LD_PRELOAD="$lib" MRCACHE_MONITOR=uffd "$app" shim uffd
run "FI_MR_CACHE_MONITOR wins" env LD_PRELOAD="$lib" FI_MR_CACHE_MONITOR=memhooks \
	"$app" native-with-shim

# The guest's module is ours to reload; natively the module must already
# be loaded with few slots (modprobe mrcache max_watches=64).
slots=64
if [[ ${MRCACHE_IN_VM:-0} == 1 ]]; then
	if ! rmmod mrcache || ! insmod "$kmod" max_watches=$slots; then
		fail "cannot load the module again with max_watches=$slots"
	fi
else
	slots=$(cat /sys/module/mrcache/parameters/max_watches)
fi
if ((slots <= 1024)); then
	run "shim, kmod, $slots watch slots" env LD_PRELOAD="$lib" "$app" trim "$slots"
else
	say "NOT RUN: the trim case needs the module loaded with max_watches=64 (it has $slots)"
	[[ ${MRCACHE_REQUIRE_VM:-0} == 1 ]] && status=1
fi
exit $status
