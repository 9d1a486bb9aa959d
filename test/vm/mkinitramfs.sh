#!/bin/bash
# Build (or reuse) the VM's initramfs: static busybox, initramfs-init.sh as
# /init and the modules needed to mount a 9p root.
#
# Usage: mkinitramfs.sh KVER KDIR
# Prints the path of the gzip'ed cpio in the cache.  The file name carries a
# hash of every input, so a changed input yields a fresh image.
set -euo pipefail

# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Order matters: insmod does not resolve dependencies.
boot_modules=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev
	virtio_pci netfs fscache 9pnet 9pnet_virtio 9p)

find_busybox() {
	local bb

	for bb in /bin/busybox /usr/bin/busybox; do
		# A dynamic busybox would need the host's libc in the initramfs.
		if [[ -x $bb ]] && ! ldd "$bb" >/dev/null 2>&1; then
			echo "$bb"
			return 0
		fi
	done
	return 1
}

module_path() {
	local kver=$1 kdir=$2 name=$3 path

	path=$(find "$kdir/lib/modules/$kver/kernel" -name "$name.ko" -print -quit)
	[[ -n $path ]] || vm_die "module $name.ko not found under $kdir"
	echo "$path"
}

build_image() {
	local kver=$1 kdir=$2 busybox=$3 out=$4 stage m

	stage=$(mktemp -d "$vm_cache_dir/.initramfs.XXXXXX")
	# shellcheck disable=SC2064  # expand $stage now
	trap "rm -rf '$stage'" EXIT
	mkdir -p "$stage"/{bin,dev,proc,sys,newroot,modules}
	cp "$busybox" "$stage/bin/busybox"
	install -m 755 "$vm_here/initramfs-init.sh" "$stage/init"
	for m in "${boot_modules[@]}"; do
		cp "$(module_path "$kver" "$kdir" "$m")" "$stage/modules/"
		echo "$m" >>"$stage/modules/order"
	done
	# Lets the kernel give /init a console; /init copes without it.
	mknod "$stage/dev/console" c 5 1 2>/dev/null || true
	(cd "$stage" && find . -print0 | cpio --null -o -H newc --quiet) |
		gzip -1 >"$stage/image.cpio.gz"
	# Images built from older inputs are of no further use.
	find "$vm_cache_dir" -maxdepth 1 -name "initramfs-$kver-*.cpio.gz" -delete
	mv "$stage/image.cpio.gz" "$out"
	rm -rf "$stage"
	trap - EXIT
}

main() {
	local kver=${1:?usage: mkinitramfs.sh KVER KDIR} kdir=${2:?usage: mkinitramfs.sh KVER KDIR}
	local busybox key out

	busybox=$(find_busybox) || vm_skip "no static busybox (install busybox-static)"
	command -v cpio >/dev/null || vm_skip "cpio not found (install cpio)"
	key=$({
		echo "$kver ${boot_modules[*]}"
		sha256sum "$busybox" "$vm_here/initramfs-init.sh" "$vm_here/mkinitramfs.sh" |
			cut -d' ' -f1
	} | sha256sum | cut -c1-16)
	out=$vm_cache_dir/initramfs-$kver-$key.cpio.gz
	if [[ ! -f $out ]]; then
		vm_lock_cache
		[[ -f $out ]] || build_image "$kver" "$kdir" "$busybox" "$out"
		vm_unlock_cache
	fi
	echo "$out"
}

main "$@"
