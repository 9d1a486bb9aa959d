#!/bin/bash
# Install what mrcache needs to build, test and benchmark on Debian 12.
#
# Only Debian's registry is used. The guest kernel for the VM tests is
# fetched into a cache folder (test/vm/fetch-kernel.sh), never installed:
# installing a kernel package would change what this machine boots.
set -euo pipefail

PACKAGES=(
	# build
	gcc make autoconf automake libtool pkg-config
	# library and tests
	libibverbs-dev ibverbs-providers rdma-core ibverbs-utils rdmacm-utils check
	# benchmark comparison, thread placement and mrcache-bench's plots
	libucx-dev libhwloc-dev gnuplot-nox
	# libmrcache-ofi.so and its test (libfabric 1.17: fi_ext.h, the verbs provider; fi_info)
	libfabric-dev libfabric-bin
	# ucx_perftest: real programs under the preload (bench/preload_bench.sh)
	# and the runtime figures in doc/performance.md
	ucx-utils
	# Open MPI 4.1 (pml ucx, the ofi mtl) over the shims: test/mpi.sh
	openmpi-bin libopenmpi-dev
	# kernel module and the VM harness
	linux-headers-amd64 qemu-system-x86 busybox-static kmod cpio
	iproute2 libnuma-dev numactl perftest
)

missing() {
	local pkg
	for pkg in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null |
			grep -q 'install ok installed' || echo "$pkg"
	done
}

as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo "$@"
	else
		echo "install-deps: need root (or sudo) to run: $*" >&2
		exit 1
	fi
}

main() {
	local todo
	mapfile -t todo < <(missing)
	if ((${#todo[@]})); then
		echo "install-deps: installing ${todo[*]}"
		as_root apt-get update -q
		as_root env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -q --no-install-recommends "${todo[@]}"
	fi
	# Warm the VM's kernel cache so the first test run does not pay for it.
	"$(dirname "${BASH_SOURCE[0]}")/../test/vm/fetch-kernel.sh" >/dev/null
}

main "$@"
