#!/bin/bash
# Quick start, command 1: install, build and run the benchmarks.
#
# 1. The hit-path micro-benchmark against UCX's ucs_rcache (user space only).
# 2. mrcache-bench: every registration strategy (pre-registered, static,
#    dynamic, pipelined, mrcache with each monitor, UCX's cache) over real
#    RDMA WRITEs between a server and a client process, with tables, JSON
#    lines, CSV and plots (PNG and SVG) in build/default/bench-results/;
#    then libfabric's MR cache beside pre-registration in a second pair
#    (its hooks and UCX's cannot share a process), in bench-results/ofi/:
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

# Server and client on this machine, as on two hosts (test/bench_pair.sh):
# every strategy but libfabric's, then libfabric's beside prereg.
# Arguments: bench_pair.sh, mrcache-bench, the output folder, options.
# shellcheck disable=SC2016 # expanded by bash -c, here or in the guest
pairs='"$1" "$2" "$3" --plot "$3/plots" --csv "$3/cells.csv" "${@:4}" &&
	MRCACHE_BENCH_PORT=18516 "$1" "$2" "$3/ofi" --plot "$3/ofi/plots" \
	--csv "$3/ofi/cells.csv" -S prereg,ofi_cache "${@:4}"'

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
	mkdir -p "$out/ofi"
	set -- "$repo/test/bench_pair.sh" "$dir/src/bench/.libs/mrcache-bench" "$out" \
		"${quick[@]}" "$@"
	if has_rdma_device; then
		bash -c "$pairs" bench-pairs "$@"
	else
		echo "no RDMA device here: running in the VM with Soft-RoCE (rxe0 on lo)"
		(cd "$dir" && "$repo/test/vm/run.sh" --timeout 3600 --mem 2048 \
			--insmod "$dir/kmod-build/mrcache.ko" --outdir "$out" -- \
			bash -c "$pairs" bench-pairs "$@")
	fi
	echo "tables above; JSON lines, CSV and plots (PNG, SVG) in $out"
}

main "$@"
