#!/bin/bash
# Make Debian's guest kernel available in the VM cache without installing it.
#
# Usage: fetch-kernel.sh
# Prints two lines on success: the kernel version, then the directory that
# holds boot/vmlinuz-<version>, lib/modules/<version> and, when it could be
# unpacked, boot/vmlinux-<version>.  Idempotent: a
# second call only prints.  Exits 77 (1 with MRCACHE_REQUIRE_VM=1) when the
# kernel cannot be obtained.
#
# Environment: MRCACHE_VM_CACHE (cache directory, default <repo>/.vm-cache),
# MRCACHE_VM_KVER (force a kernel version, e.g. 6.1.0-56-amd64).
set -euo pipefail

# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# The version the distribution's meta package points at, if apt knows it.
meta_package_version() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: linux-image-\([^ ]*-amd64\)$/\1/p' | head -n 1
}

# Prefer the version whose headers are installed: the kernel module is
# built against those headers and must load in the guest.
pick_kernel_version() {
	local meta headers=() dir

	if [[ -n ${MRCACHE_VM_KVER:-} ]]; then
		echo "$MRCACHE_VM_KVER"
		return 0
	fi
	meta=$(meta_package_version)
	for dir in /usr/src/linux-headers-*-amd64; do
		[[ -d $dir ]] && headers+=("${dir#/usr/src/linux-headers-}")
	done
	if ((${#headers[@]} == 0)); then
		[[ -n $meta ]] && echo "$meta"
		return 0
	fi
	for dir in "${headers[@]}"; do
		if [[ $dir == "$meta" ]]; then
			echo "$meta"
			return 0
		fi
	done
	printf '%s\n' "${headers[@]}" | sort -V | tail -n 1
}

# apt-get download drops privileges to _apt; give it a directory it may
# write so it does not fall back to an unsandboxed download with a warning.
download_deb() {
	local pkg=$1 dir=$2

	if id _apt >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
		chown _apt "$dir"
	fi
	(cd "$dir" && apt-get download -q "$pkg" >&2)
}

fetch_into() {
	local kver=$1 kdir=$2 tmp depmod

	depmod=$(vm_find_tool depmod) || vm_skip "depmod not found (install kmod)"
	command -v apt-get >/dev/null || vm_skip "apt-get not found; cannot fetch linux-image-$kver"
	tmp=$(mktemp -d "$vm_cache_dir/.fetch.XXXXXX")
	chmod 755 "$tmp"
	# shellcheck disable=SC2064  # expand $tmp now, the trap runs after return
	trap "rm -rf '$tmp'" EXIT
	vm_log "downloading linux-image-$kver (not installed, only unpacked)"
	download_deb "linux-image-$kver" "$tmp" ||
		vm_skip "cannot download linux-image-$kver (run apt-get update?)"
	dpkg -x "$tmp"/linux-image-"$kver"_*.deb "$tmp/root"
	[[ -f $tmp/root/boot/vmlinuz-$kver ]] ||
		vm_die "linux-image-$kver has no boot/vmlinuz-$kver"
	# The guest runs modprobe against this tree, so it needs modules.dep.
	"$depmod" -b "$tmp/root" "$kver"
	rm -rf "$kdir"
	mv "$tmp/root" "$kdir"
	touch "$kdir/.complete"
	rm -rf "$tmp"
	trap - EXIT
}

# TCG spends about 4 s unpacking the XZ-compressed bzImage at every boot.
# Unpack it once: qemu boots the resulting ELF through its PVH entry point.
# Optional: without xz, or if no ELF comes out, run.sh boots the bzImage.
extract_vmlinux() {
	local image=$2/boot/vmlinuz-$1 out=$2/boot/vmlinux-$1 offset
	local -a offsets

	command -v xz >/dev/null || return 0
	mapfile -t offsets < <(LC_ALL=C grep -obUaP '\xFD7zXZ\x00' "$image" | cut -d: -f1)
	for offset in "${offsets[@]}"; do
		tail -c +"$((offset + 1))" "$image" |
			xz -dc --single-stream >"$out.tmp" 2>/dev/null || true
		if [[ $(head -c 4 "$out.tmp") == $'\x7fELF' ]]; then
			mv "$out.tmp" "$out"
			return 0
		fi
	done
	rm -f "$out.tmp"
}

main() {
	local kver kdir

	kver=$(pick_kernel_version)
	[[ -n $kver ]] || vm_skip "no kernel version: no /usr/src/linux-headers-*-amd64 and apt does not know linux-image-amd64"
	kdir=$vm_cache_dir/kernel-$kver
	if [[ ! -f $kdir/.complete || ! -f $kdir/.vmlinux-done ]]; then
		vm_lock_cache
		[[ -f $kdir/.complete ]] || fetch_into "$kver" "$kdir"
		if [[ ! -f $kdir/.vmlinux-done ]]; then
			extract_vmlinux "$kver" "$kdir"
			touch "$kdir/.vmlinux-done"
		fi
		vm_unlock_cache
	fi
	printf '%s\n%s\n' "$kver" "$kdir"
}

main "$@"
