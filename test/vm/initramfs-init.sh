#!/bin/busybox sh
# shellcheck shell=dash
# /init of the VM's initramfs (busybox only).  Loads the virtio and 9p
# modules that Debian's kernel builds as modules, mounts the host's / over
# 9p read-only, mounts the per-run job share at /run/mrcache-vm and hands
# over to guest-init.sh from that share.

/bin/busybox mkdir -p /proc /sys /dev /newroot
/bin/busybox --install -s /bin
export PATH=/bin

mount -t devtmpfs devtmpfs /dev
# The kernel found no /dev/console if the cpio was built without mknod.
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc

fail() {
	echo "mrcache-vm: initramfs: $*"
	echo "MRCACHE-VM-EXIT=125"
	poweroff -f
}

while read -r m; do
	insmod "/modules/$m.ko" || fail "insmod $m failed"
done </modules/order

nine_p="trans=virtio,version=9p2000.L,msize=262144"
mount -t 9p -o "ro,$nine_p,cache=loose" hostroot /newroot ||
	fail "cannot mount the host root over 9p"
mount -t tmpfs -o mode=755 tmpfs /newroot/run ||
	fail "cannot mount tmpfs on /run"
mkdir -p /newroot/run/mrcache-vm
mount -t 9p -o "$nine_p,cache=none" mrcjob /newroot/run/mrcache-vm ||
	fail "cannot mount the job share"

umount /proc
# The console is open on this devtmpfs; it moves along instead of unmounting.
mount --move /dev /newroot/dev
exec switch_root /newroot /bin/bash /run/mrcache-vm/guest-init.sh
