#!/bin/bash
# PID 1 of the test VM, started by the initramfs after switch_root into the
# host's / (read-only 9p).  The host's run.sh left its settings in the job
# share at /run/mrcache-vm: config (shell variables), env (exports for the
# command), cmd and insmod (NUL-separated lists).  This script prepares the
# guest, runs the command, reports its status through the job share and the
# console, saves dmesg for the host to scan and powers off.
#
# Exit statuses written here beyond the command's own: 125 = the guest could
# not be prepared (the message on the console says why).
set -euo pipefail

job=/run/mrcache-vm
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Static busybox for the setup steps: under TCG every exec of a dynamically
# linked tool costs 0.1-0.5 s of loader work over 9p.
bb() {
	/bin/busybox "$@"
}

say() {
	printf 'mrcache-vm: %s\n' "$*"
}

# Must never fail: the host is waiting for a status and a powered-off VM.
finish() {
	local status=$1

	trap - EXIT
	set +e
	bb dmesg >"$job/dmesg" 2>/dev/null
	echo "$status" >"$job/status"
	bb sync
	echo "MRCACHE-VM-EXIT=$status"
	busybox poweroff -f
	exit "$status" # only reached if poweroff failed; the kernel panics
}

mount_basics() {
	bb mount -t proc proc /proc
	bb mount -t sysfs sysfs /sys
	# The initramfs moved its devtmpfs here already.
	[[ -c /dev/null ]] || bb mount -t devtmpfs devtmpfs /dev
	bb mkdir -p /dev/pts /dev/shm
	bb mount -t devpts devpts /dev/pts
	bb mount -t tmpfs tmpfs /dev/shm
	bb mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null || true
}

# The host has no modules for the guest kernel; show the cached ones at the
# usual place (the cache may be under /tmp: mount this before /tmp).
mount_modules() {
	local kver

	read -r kver </proc/sys/kernel/osrelease
	bb mount -t tmpfs -o mode=755 tmpfs /lib/modules
	bb mkdir "/lib/modules/$kver"
	bb mount -o bind "$kdir/lib/modules/$kver" "/lib/modules/$kver"
}

# /tmp is writable but must keep showing the host's /tmp read-only: the
# checkout, its build, the cache, --insmod files or the command's arguments
# may live there (CI clones anywhere).  An overlay does both; what the guest
# writes lands in tmpfs (/run) and never reaches the host.
mount_tmp() {
	local top=/run/mrcache-tmp

	modprobe overlay
	bb mkdir -p "$top/upper" "$top/work"
	bb chmod 1777 "$top/upper"
	bb mount -t overlay overlay \
		-o "lowerdir=/tmp,upperdir=$top/upper,workdir=$top/work" /tmp
}

mount_outdir() {
	[[ -n $outdir ]] || return 0
	bb mkdir -p "$outdir" 2>/dev/null || true
	bb mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=none \
		mrcout "$outdir"
}

setup_rxe() {
	modprobe -a crc32_generic rdma_rxe ib_uverbs
	rdma link add rxe0 type rxe netdev lo
	# grep without -q: an early exit would fail ibv_devices under pipefail.
	ibv_devices | grep -w rxe0 >/dev/null || {
		say "ibv_devices does not list rxe0"
		return 1
	}
	[[ -c /dev/infiniband/uverbs0 ]] || {
		say "/dev/infiniband/uverbs0 missing"
		return 1
	}
}

setup_numa() {
	[[ -d /sys/devices/system/node/node1 ]] || {
		say "--numa given but the guest has no node1"
		return 1
	}
}

setup_zram() {
	modprobe zram num_devices=1
	echo "${zram_mib}M" >/sys/block/zram0/disksize
	mkswap /dev/zram0 >/dev/null
	swapon /dev/zram0
}

load_extra_modules() {
	local ko

	[[ -s $job/insmod ]] || return 0
	while IFS= read -r -d '' ko; do
		insmod "$ko" || {
			say "insmod $ko failed"
			return 1
		}
	done <"$job/insmod"
}

prepare() {
	mount_basics
	mount_modules
	mount_tmp
	mount_outdir
	bb hostname mrcache-vm
	bb ip link set lo up
	if ((numa)); then setup_numa; fi
	if ((rxe)); then setup_rxe; fi
	if ((zram_mib > 0)); then setup_zram; fi
	load_extra_modules
}

# The command sees only the environment run.sh chose to pass, as root, in
# the host's working directory, with no input.
run_command() {
	local -a cmd
	local status=0

	mapfile -t -d '' cmd <"$job/cmd"
	ulimit -l unlimited
	# shellcheck disable=SC2016  # expanded by the inner shell
	env -i bash -c 'set -a; . "$1"; set +a; cd "$2" && shift 2 && exec "$@"' \
		mrcache-vm "$job/env" "$cwd" "${cmd[@]}" </dev/null || status=$?
	return "$status"
}

main() {
	local status=0 uptime

	# Any failure while preparing the guest reports 125 and powers off:
	# PID 1 must not simply exit (the kernel would panic).
	set -E
	trap 'say "setup failed at line $LINENO: $BASH_COMMAND"' ERR
	trap 'finish 125' EXIT
	# Defaults, overridden by what run.sh wrote.
	rxe=1 numa=0 zram_mib=0 kdir='' cwd=/ outdir=''
	# shellcheck source=/dev/null
	. "$job/config"
	prepare
	trap - ERR
	read -r uptime _ </proc/uptime
	say "guest ready after ${uptime}s of uptime, running the command"
	run_command || status=$?
	finish "$status"
}

main
