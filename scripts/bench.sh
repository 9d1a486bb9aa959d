#!/bin/bash
# Quick start, command 1: install, build and run the benchmarks.
#
# 1. The hit-path micro-benchmark against UCX's ucs_rcache (user space only).
# 2. The transfer benchmark (static, dynamic, pipelined and cached
#    registration over real RDMA WRITEs): natively when this machine has an
#    RDMA device, else in Debian's kernel under qemu with Soft-RoCE.
#
#   scripts/bench.sh [--quick]
set -euo pipefail

# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

has_rdma_device() {
	compgen -G '/dev/infiniband/uverbs*' >/dev/null &&
		ibv_devices 2>/dev/null | awk 'NR > 2 { found = 1 } END { exit !found }'
}

main() {
	local quick=() dir=$builds/default

	[[ ${1:-} == --quick ]] && quick=(--quick)
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
	say "transfer benchmark (static vs dynamic vs pipelined vs cached)"
	if has_rdma_device; then
		"$dir/bench/xfer_bench" "${quick[@]}"
	else
		echo "no RDMA device here: running in the VM with Soft-RoCE (rxe on lo)"
		(cd "$dir" && "$repo/test/vm/run.sh" --timeout 900 -- \
			"$dir/bench/xfer_bench" "${quick[@]}")
	fi
}

main "$@"
