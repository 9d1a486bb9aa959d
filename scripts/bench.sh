#!/bin/bash
# Quick start, command 1: install, build and run the benchmarks.
#
# 1. The hit-path micro-benchmark against UCX's ucs_rcache (user space only).
# 2. mrcache-bench: every registration strategy (pre-registered, static,
#    dynamic, pipelined, mrcache with each monitor, UCX's cache) over real
#    RDMA WRITEs between a server and a client process, with tables, JSON
#    lines, CSV and plots (PNG and SVG) in build/default/bench-results/:
#    natively when this machine has an RDMA device, else in Debian's kernel
#    under qemu with Soft-RoCE (rxe0 on lo) and the mrcache module loaded.
#
#   scripts/bench.sh [--quick] [mrcache-bench options...]
set -euo pipefail

# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

has_rdma_device() {
	compgen -G '/dev/infiniband/uverbs*' >/dev/null &&
		ibv_devices 2>/dev/null | awk 'NR > 2 { found = 1 } END { exit !found }'
}

# Server and client on this machine, as on two hosts (test/bench_pair.sh).
run_pair() {
	local dir=$1 out=$2
	shift 2
	"$repo/test/bench_pair.sh" "$dir/src/bench/.libs/mrcache-bench" "$out" \
		--plot "$out/plots" --csv "$out/cells.csv" "$@"
}

main() {
	local quick=() dir=$builds/default out
	out=${MRCACHE_BENCH_OUT:-$builds/default/bench-results}

	[[ ${1:-} == --quick ]] && quick=(--quick) && shift
	say "install dependencies"
	"$repo/scripts/install-deps.sh"
	say "build"
	build_tree default
	make -C "$dir" -s -j"$jobs" bench
	say "hit-path benchmark (mrcache vs UCX ucs_rcache)"
	"$dir/bench/hit_bench" "${quick[@]}"
	say "hit path: the hooks monitor against the module, in one run (in the VM without the module: TCG figures)"
	(cd "$dir" && "$repo/test/in-vm.sh" --kmod "$dir/kmod-build/mrcache.ko" --timeout 900 -- \
		"$dir/bench/hit_bench" "${quick[@]}" --monitor kmod,hooks --threads 1 --regions 1,1000)
	say "mrcache-bench: registration strategies, server and client processes"
	export LD_LIBRARY_PATH=$dir/src/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
	if has_rdma_device; then
		run_pair "$dir" "$out" "${quick[@]}" "$@"
	else
		echo "no RDMA device here: running in the VM with Soft-RoCE (rxe0 on lo)"
		(cd "$dir" && "$repo/test/vm/run.sh" --timeout 3600 --mem 2048 \
			--insmod "$dir/kmod-build/mrcache.ko" --outdir "$out" -- \
			"$repo/test/bench_pair.sh" "$dir/src/bench/.libs/mrcache-bench" "$out" \
			--plot "$out/plots" --csv "$out/cells.csv" "${quick[@]}" "$@")
	fi
	echo "tables above; JSON lines, CSV and plots (PNG, SVG) in $out"
}

main "$@"
