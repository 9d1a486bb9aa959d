# Shared by the quick-start scripts: where things are and how to build.
# shellcheck shell=bash

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
builds=${MRCACHE_BUILD_DIR:-$repo/build}
# Outside the source tree, so `make distcheck` (read-only sources) shares it.
export MRCACHE_VM_CACHE=${MRCACHE_VM_CACHE:-$repo/.vm-cache}
jobs=$(nproc 2>/dev/null || echo 2)

say() { printf '\n==> %s\n' "$*"; }

# The kernel headers the guest kernel matches (Debian's linux-headers-amd64).
kernel_headers() {
	local kver
	kver=$("$repo/test/vm/fetch-kernel.sh" | head -n 1)
	echo "/usr/src/linux-headers-$kver"
}

# build_tree NAME [configure args...]: configure and build in $builds/NAME.
build_tree() {
	local name=$1 dir=$builds/$1
	shift
	[[ -x $repo/configure ]] || (cd "$repo" && autoreconf -fi)
	mkdir -p "$dir"
	if [[ ! -f $dir/Makefile ]]; then
		(cd "$dir" && "$repo/configure" -q \
			--with-kernel-headers="$(kernel_headers)" "$@")
	fi
	make -C "$dir" -s -j"$jobs" CFLAGS="${CFLAGS:--O2 -g} -Werror"
}
