#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
#
# make check: mrcache-bench --quick as server and client processes over
# one RDMA device (test/bench_pair.sh), natively when this machine has
# the module and a device, else in the VM on Soft-RoCE (rxe0 on lo).
# Every strategy must deliver the right bytes (the manual monitor under
# churn must not: that cell is the expected failure).
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
cd "$top_builddir" || exit 99
exec "$top_srcdir/test/in-vm.sh" --kmod "$top_builddir/kmod-build/mrcache.ko" --rdma \
	--timeout "${MRCACHE_BENCH_TIMEOUT:-600}" \
	-- "$top_srcdir/test/bench_pair.sh" "$bin" /tmp/mrcache-bench-smoke \
	--quick --no-progress ${MRCACHE_BENCH_ARGS:-}
