#!/bin/bash
# Boot Debian's kernel under qemu (TCG) with the host's / as a read-only
# root and run one command in it as root; exit with the command's status.
# See test/vm/README.md for the options and how it works.
set -euo pipefail

# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
	cat <<'USAGE'
usage: test/vm/run.sh [options] -- CMD [ARGS...]
  --numa          two NUMA nodes (at least 2 CPUs, memory split evenly)
  --mem MiB       guest memory (default 1024)
  --cpus N        guest CPUs (default 2)
  --rxe           set up Soft-RoCE rxe0 on lo (default)
  --no-rxe        do not set up rxe0
  --zram MiB      swap on a zram device of that size
  --insmod FILE   load FILE.ko after boot, before CMD (repeatable)
  --outdir DIR    share host DIR read-write at the same path in the guest
  --env NAME[=V]  pass one more environment variable (repeatable)
  --timeout SEC   kill the VM and fail after SEC seconds (default 300)
Exit: CMD's status; 1 on timeout, setup failure or kernel WARNING/BUG;
77 when the VM cannot run here or CMD exits 77 (both 1 with
MRCACHE_REQUIRE_VM=1).
USAGE
}

opt_numa=0 opt_mem=1024 opt_cpus=2 opt_rxe=1 opt_zram=0 opt_timeout=300
opt_outdir=
opt_insmod=()
opt_env=()
cmd=()

need_number() {
	[[ $2 =~ ^[0-9]+$ ]] || vm_die "$1 needs a number, got '$2'"
}

parse_args() {
	while (($#)); do
		case $1 in
		--numa) opt_numa=1 ;;
		--rxe) opt_rxe=1 ;;
		--no-rxe) opt_rxe=0 ;;
		--mem | --cpus | --zram | --timeout)
			(($# >= 2)) || vm_die "$1 needs an argument"
			need_number "$1" "$2"
			case $1 in
			--mem) opt_mem=$2 ;;
			--cpus) opt_cpus=$2 ;;
			--zram) opt_zram=$2 ;;
			--timeout) opt_timeout=$2 ;;
			esac
			shift
			;;
		--insmod)
			(($# >= 2)) || vm_die "--insmod needs a file"
			[[ -f $2 ]] || vm_die "--insmod: no such file: $2"
			opt_insmod+=("$(realpath "$2")")
			shift
			;;
		--outdir)
			(($# >= 2)) || vm_die "--outdir needs a directory"
			mkdir -p "$2"
			opt_outdir=$(realpath "$2")
			shift
			;;
		--env)
			(($# >= 2)) || vm_die "--env needs NAME or NAME=VALUE"
			[[ ${2%%=*} =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] ||
				vm_die "--env: '${2%%=*}' is not a variable name"
			opt_env+=("$2")
			shift
			;;
		-h | --help)
			usage
			exit 0
			;;
		--)
			shift
			cmd=("$@")
			break
			;;
		*)
			usage >&2
			vm_die "unknown option '$1' (the command goes after --)"
			;;
		esac
		shift
	done
	((${#cmd[@]})) || {
		usage >&2
		vm_die "no command given"
	}
	((opt_cpus >= 1 && opt_mem >= 128 && opt_timeout >= 1)) ||
		vm_die "need --cpus >= 1, --mem >= 128, --timeout >= 1"
	# Two nodes need an even number of CPUs, at least one per node.
	if ((opt_numa)); then
		opt_cpus=$((opt_cpus < 2 ? 2 : opt_cpus))
		opt_cpus=$((opt_cpus + opt_cpus % 2))
	fi
	[[ $opt_outdir != *,* ]] || vm_die "--outdir must not contain a comma (qemu option syntax)"
}

# Variables the command gets: the project's and Check's settings, PATH,
# automake's test variables and sanitizer settings, and whatever --env names.
write_env() {
	local name

	for name in $(compgen -e); do
		case $name in
		MRCACHE_* | CK_* | PATH | LD_LIBRARY_PATH | *SAN_OPTIONS | \
			srcdir | top_srcdir | builddir | top_builddir | abs_*) ;;
		*) continue ;;
		esac
		printf 'export %s=%q\n' "$name" "${!name}"
	done
	for name in "${opt_env[@]}"; do
		if [[ $name == *=* ]]; then
			printf 'export %s=%q\n' "${name%%=*}" "${name#*=}"
		elif [[ -v $name ]]; then
			printf 'export %s=%q\n' "$name" "${!name}"
		fi
	done
	echo 'export HOME=/tmp MRCACHE_IN_VM=1'
	# The command runs as root: give it root's tools even if the caller's
	# PATH lacks them (modprobe, rdma, ...).
	# shellcheck disable=SC2016  # expanded in the guest
	echo 'case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/sbin:/sbin ;; esac'
}

write_job() {
	local job=$1 kdir=$2

	cp "$vm_here/guest-init.sh" "$job/guest-init.sh"
	{
		printf 'rxe=%d numa=%d zram_mib=%d\n' "$opt_rxe" "$opt_numa" "$opt_zram"
		printf 'kdir=%q cwd=%q outdir=%q\n' "$kdir" "$PWD" "$opt_outdir"
	} >"$job/config"
	write_env >"$job/env"
	printf '%s\0' "${cmd[@]}" >"$job/cmd"
	: >"$job/insmod"
	if ((${#opt_insmod[@]})); then
		printf '%s\0' "${opt_insmod[@]}" >"$job/insmod"
	fi
}

nine_p_share() {
	local id=$1 path=$2 tag=$3 ro=$4

	printf -- '-fsdev\nlocal,id=%s,path=%s,security_model=none,multidevs=remap%s\n' \
		"$id" "$path" "$ro"
	printf -- '-device\nvirtio-9p-pci,fsdev=%s,mount_tag=%s\n' "$id" "$tag"
}

# With --numa each node is its own socket: CPUs that share a last-level
# cache across nodes make the kernel WARN in topology_sane().
smp_topology() {
	if ((opt_numa)); then
		echo "$opt_cpus,sockets=2,cores=$((opt_cpus / 2)),threads=1"
	else
		echo "$opt_cpus"
	fi
}

numa_args() {
	local half=$((opt_mem / 2)) split=$((opt_cpus / 2))

	printf -- '-object\nmemory-backend-ram,id=mem0,size=%dM\n' "$half"
	printf -- '-object\nmemory-backend-ram,id=mem1,size=%dM\n' "$((opt_mem - half))"
	printf -- '-numa\nnode,nodeid=0,cpus=0-%d,memdev=mem0\n' "$((split - 1))"
	printf -- '-numa\nnode,nodeid=1,cpus=%d-%d,memdev=mem1\n' "$split" "$((opt_cpus - 1))"
}

# qboot starts faster than SeaBIOS and prints nothing on the console.
firmware_args() {
	local qboot=/usr/share/qemu/qboot.rom

	if [[ -f $qboot ]]; then
		printf '%s\n' -bios "$qboot"
	fi
}

qemu_args() {
	local job=$1 kernel=$2 initrd=$3

	printf '%s\n' -accel tcg -cpu max -smp "$(smp_topology)" -m "$opt_mem" \
		-nographic -no-reboot -serial stdio -monitor none \
		-nodefaults -kernel "$kernel" -initrd "$initrd" \
		-append "console=ttyS0 quiet panic=-1 mitigations=off"
	firmware_args
	nine_p_share rootfs / hostroot ",readonly=on"
	nine_p_share job "$job" mrcjob ""
	if [[ -n $opt_outdir ]]; then
		nine_p_share out "$opt_outdir" mrcout ""
	fi
	if ((opt_numa)); then
		numa_args
	fi
}

# Kernel problems from the guest's dmesg, or from kernel lines on the console
# if the guest died before it could save dmesg.
kernel_problems() {
	local job=$1 pattern='WARNING:|BUG:|Oops|general protection|UBSAN:|Kernel panic'

	if [[ -f $job/dmesg ]]; then
		grep -E -A 25 "$pattern" "$job/dmesg" || true
	else
		grep -E -A 25 "^\[ *[0-9]+\.[0-9]+\] .*($pattern)" "$job/console" || true
	fi
}

# The status file is written over 9p before poweroff; the console marker is
# the fallback if that write was lost.
command_status() {
	local job=$1 status

	if [[ -s $job/status ]]; then
		status=$(<"$job/status")
	else
		status=$(sed -n 's/^MRCACHE-VM-EXIT=\([0-9]*\)$/\1/p' "$job/console" | tail -n 1)
	fi
	echo "$status"
}

# The serial console, made readable: no CRs, no terminal control sequences,
# no firmware banner (SeaBIOS prints one when qboot is missing).
relay_console() {
	sed -u -e 's/\r$//' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g' \
		-e '/^SeaBIOS (version/d' -e '/^Booting from ROM/d' | tee "$1"
}

# shellcheck disable=SC2317  # called from a trap
stop_vm() {
	local job=$1 relay=$2

	if [[ -s $job/qemu.pid ]]; then
		kill "$(<"$job/qemu.pid")" 2>/dev/null || true
	fi
	wait "$relay" 2>/dev/null || true
	vm_log "interrupted; VM stopped"
}

boot_and_run() {
	local job=$1 kernel=$2 initrd=$3 qemu_status=0 status problems relay
	local -a args

	mapfile -t args < <(qemu_args "$job" "$kernel" "$initrd")
	# In the background so that a signal to run.sh is handled at once (bash
	# runs traps only between commands) and stops the VM with it.
	{
		timeout --foreground -k 10 "$opt_timeout" qemu-system-x86_64 \
			"${args[@]}" -pidfile "$job/qemu.pid" </dev/null || qemu_status=$?
		echo "$qemu_status" >"$job/qemu-status"
	} | relay_console "$job/console" &
	relay=$!
	trap 'stop_vm "$job" "$relay"; exit 130' INT
	trap 'stop_vm "$job" "$relay"; exit 143' TERM HUP
	wait "$relay" || true
	trap - INT TERM HUP
	qemu_status=$(<"$job/qemu-status")
	if ((qemu_status == 124 || qemu_status == 137)); then
		vm_die "timed out after ${opt_timeout}s (--timeout); VM killed"
	fi
	status=$(command_status "$job")
	problems=$(kernel_problems "$job")
	if [[ -n $problems ]]; then
		# Console lines were relayed already; dmesg lines were not.
		if [[ -f $job/dmesg ]]; then
			printf '%s\n' "$problems" >&2
		fi
		vm_log "FAIL: kernel WARNING/BUG/Oops in the guest (command exit ${status:-none})"
	fi
	[[ -n $status ]] ||
		vm_die "the VM stopped without reporting a status (guest crash? qemu exit $qemu_status)"
	if [[ -n $problems ]] && ((status == 0 || status == 77)); then
		status=1
	fi
	# Everything a test needs is there in the guest: a skip there is a
	# test that did not run, which CI must not count as green.
	if ((status == 77)) && [[ ${MRCACHE_REQUIRE_VM:-0} == 1 ]]; then
		vm_log "FAIL: the command skipped (exit 77) in the guest; MRCACHE_REQUIRE_VM=1: nothing may skip"
		status=1
	fi
	if ((status == 125)); then
		vm_die "guest setup failed (see the mrcache-vm lines above)"
	fi
	return "$status"
}

# The unpacked ELF boots about 4 s faster under TCG (see fetch-kernel.sh).
kernel_image() {
	local kver=$1 kdir=$2

	if [[ -f $kdir/boot/vmlinux-$kver ]]; then
		echo "$kdir/boot/vmlinux-$kver"
	else
		echo "$kdir/boot/vmlinuz-$kver"
	fi
}

main() {
	local kver kdir initrd job status=0

	parse_args "$@"
	command -v qemu-system-x86_64 >/dev/null ||
		vm_skip "qemu-system-x86_64 not found (install qemu-system-x86)"
	# Both helpers exit 77 (or 1) themselves when the VM cannot run.
	kver=$("$vm_here/fetch-kernel.sh") || exit $?
	kdir=${kver#*$'\n'}
	kver=${kver%%$'\n'*}
	initrd=$("$vm_here/mkinitramfs.sh" "$kver" "$kdir") || exit $?
	job=$(mktemp -d "${TMPDIR:-/tmp}/mrcache-vm.XXXXXX")
	# shellcheck disable=SC2064  # expand $job now
	trap "rm -rf '$job'" EXIT
	write_job "$job" "$kdir"
	boot_and_run "$job" "$(kernel_image "$kver" "$kdir")" "$initrd" || status=$?
	exit "$status"
}

main "$@"
