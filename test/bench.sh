#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
#
# make check: mrcache-bench --quick as server and client processes over
# one RDMA device (test/bench_pair.sh), natively when this machine has
# the module and a device, else in the VM on Soft-RoCE (rxe0 on lo).
# Every strategy must deliver the right bytes (the manual monitor under
# churn must not: that cell is the expected failure); a second pair runs
# libfabric's MR cache (ofi_cache), which cannot share a process with UCX.
#
# automake exports top_srcdir and top_builddir; by hand:
#     cd BUILDDIR && top_srcdir=SRCDIR top_builddir=$PWD SRCDIR/test/bench.sh
set -u

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$PWD}
bin=$top_builddir/src/bench/mrcache-bench
# libtool keeps the real program in .libs when it leaves a wrapper.
if [[ $(head -c 2 "$bin" 2>/dev/null) == '#!' ]]; then
	bin=$top_builddir/src/bench/.libs/mrcache-bench
fi
export LD_LIBRARY_PATH=$top_builddir/src/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# UCX over Soft-RoCE needs no transport here: ucs_rcache alone is used.
# libfabric's MR cache needs only a verbs domain, no rdma_cm address: it
# runs on rxe0 over lo too, but not in one process with UCX's hooks, so
# a second pair measures it beside prereg.
cd "$top_builddir" || exit 99
# shellcheck disable=SC2016 # expanded by the bash -c below, in the guest
pairs='"$1" "$2" /tmp/mrcache-bench-smoke "${@:3}" &&
	MRCACHE_BENCH_PORT=18516 "$1" "$2" /tmp/mrcache-bench-smoke-ofi "${@:3}" \
	-S prereg,ofi_cache --sweeps size,wset,churn'
exec "$top_srcdir/test/in-vm.sh" --kmod "$top_builddir/kmod-build/mrcache.ko" --rdma \
	--timeout "${MRCACHE_BENCH_TIMEOUT:-600}" \
	-- bash -c "$pairs" bench-pairs "$top_srcdir/test/bench_pair.sh" "$bin" \
	--quick --no-progress ${MRCACHE_BENCH_ARGS:-}
