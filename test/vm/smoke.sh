#!/bin/bash
# Smoke test of the VM harness.  Run on the host, from anywhere:
#   test/vm/smoke.sh
# It boots the guest a few times through run.sh and checks real behaviour:
# the guest kernel, Soft-RoCE traffic over rxe0, NUMA nodes, zram swap,
# --outdir, environment and cwd pass-through, exit status propagation,
# --insmod, kernel-WARNING detection, --timeout and the handling of skips.
# make check runs it (in the plain build).
# Exit 0 pass, 1 fail, 77 skip (the VM cannot run here).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
passed=0
failed=0

check() {
	local what=$1

	shift
	if "$@"; then
		echo "PASS: $what"
		passed=$((passed + 1))
	else
		echo "FAIL: $what"
		failed=$((failed + 1))
	fi
}

# ---- guest side: runs inside the VM as the command of run.sh ----

# The GID of rxe0 that maps 127.0.0.1 (::ffff:127.0.0.1).
loopback_gid_index() {
	local gid

	for gid in /sys/class/infiniband/rxe0/ports/1/gids/*; do
		if [[ $(<"$gid") == 0000:0000:0000:0000:0000:ffff:7f00:0001 ]]; then
			basename "$gid"
			return 0
		fi
	done
	return 1
}

# RC send/recv between two processes over rxe0, connected through 127.0.0.1.
rc_pingpong_works() {
	local idx server_pid server_status=0 client_status=0
	local -a opts

	idx=$(loopback_gid_index) || return 1
	opts=(-d rxe0 -g "$idx" -s 64 -n 16 -p 18515)
	timeout 60 ibv_rc_pingpong "${opts[@]}" >/tmp/server.log 2>&1 &
	server_pid=$!
	sleep 1
	timeout 60 ibv_rc_pingpong "${opts[@]}" 127.0.0.1 >/tmp/client.log 2>&1 ||
		client_status=$?
	wait "$server_pid" || server_status=$?
	cat /tmp/server.log /tmp/client.log
	((server_status == 0 && client_status == 0)) &&
		grep -q 'iters in' /tmp/client.log
}

kernel_is() {
	[[ $(uname -r) == "$1" && $1 == 6.1.* ]]
}

write_file() {
	echo "$2" >"$1"
}

in_guest() {
	local kver=$1 outdir=$2 cwd=$3

	check "MRCACHE_IN_VM is set" test "${MRCACHE_IN_VM:-}" = 1
	check "guest kernel is $kver (6.1)" kernel_is "$kver"
	check "cwd is the host's cwd" test "$PWD" = "$cwd"
	check "MRCACHE_* passes through" test "${MRCACHE_SMOKE_VAR:-}" = "a b'c"
	check "--env passes through" test "${SMOKE_EXTRA:-}" = extra
	check "running as root" test "$(id -u)" = 0
	check "RLIMIT_MEMLOCK is unlimited" test "$(ulimit -l)" = unlimited
	check "/tmp is writable" touch /tmp/smoke
	check "root is read-only" bash -c '! touch /smoke 2>/dev/null'
	check "ibv_devices lists rxe0" bash -c 'ibv_devices | grep -qw rxe0'
	check "/dev/infiniband/uverbs0 exists" test -c /dev/infiniband/uverbs0
	check "ibv_rc_pingpong over rxe0" rc_pingpong_works
	check "NUMA node1 exists" test -d /sys/devices/system/node/node1
	check "zram swap is on" grep -q '^/dev/zram0 ' /proc/swaps
	check "--outdir is writable" write_file "$outdir/guest.txt" from-guest
	check "host files under /tmp are visible" grep -qx from-host "$cwd/host.txt"
	check "host paths under /tmp are writable" write_file "$cwd/private.txt" guest-only
	echo "in-guest: $passed passed, $failed failed"
	((failed == 0))
}

# ---- host side ----

# Runs run.sh and compares its exit status with the expected one.
expect_status() {
	local want=$1 got=0

	shift
	"$here/run.sh" "$@" || got=$?
	if ((got == 77 && want != 77)); then
		echo "SKIP: the VM cannot run here"
		exit 77
	fi
	[[ $got == "$want" ]] || {
		echo "run.sh $* exited $got, expected $want" >&2
		return 1
	}
}

# In the guest everything a test asked for is there: CI fails a skip.
guest_skip_fails_when_required() {
	MRCACHE_REQUIRE_VM=1 expect_status 1 --no-rxe --cpus 1 --mem 512 -- sh -c 'exit 77'
}

no_kernel_skips() {
	MRCACHE_VM_KVER=0.0.0-none-amd64 MRCACHE_REQUIRE_VM=0 expect_status 77 -- true
}

no_kernel_fails_when_required() {
	MRCACHE_VM_KVER=0.0.0-none-amd64 MRCACHE_REQUIRE_VM=1 expect_status 1 -- true
}

full_guest_run() {
	local kver=$1 outdir=$2

	MRCACHE_SMOKE_VAR="a b'c" expect_status 0 --numa --zram 64 \
		--outdir "$outdir" --env SMOKE_EXTRA=extra \
		-- "$here/smoke.sh" --in-guest "$kver" "$outdir" "$PWD"
}

# Reports the wall time of one boot, for the harness's users to budget.
timed() {
	local start=$SECONDS status=0

	"$@" || status=$?
	echo "(took $((SECONDS - start))s)"
	return "$status"
}

on_host() {
	local kver kdir base outdir dummy

	kver=$("$here/fetch-kernel.sh") || exit $?
	kdir=${kver#*$'\n'}
	kver=${kver%%$'\n'*}
	dummy=$(find "$kdir/lib/modules/$kver" -name dummy.ko -print -quit)
	base=$(mktemp -d)
	# shellcheck disable=SC2064  # expand $base now
	trap "rm -rf '$base'" EXIT
	outdir=$base/out
	cd "$base"
	echo from-host >host.txt

	check "guest checks pass (rxe, numa, zram, outdir, env)" \
		timed full_guest_run "$kver" "$outdir"
	check "guest wrote into --outdir" grep -qx from-guest "$outdir/guest.txt"
	check "guest writes elsewhere stay in the guest" test ! -e private.txt
	check "a failing command's status comes back" \
		timed expect_status 3 --no-rxe --cpus 1 --mem 512 -- sh -c 'exit 3'
	check "a skip (77) in the guest with MRCACHE_REQUIRE_VM=1: fail (1)" \
		timed guest_skip_fails_when_required
	check "--insmod loads, a kernel WARNING fails the run" \
		timed expect_status 1 --no-rxe --insmod "$dummy" -- sh -c \
		'grep -q "^dummy " /proc/modules || exit 3; echo "WARNING: injected by smoke.sh" >/dev/kmsg'
	check "--timeout kills the VM and fails" \
		timed expect_status 1 --timeout 2 -- true
	check "a guest kernel crash fails the run" \
		timed expect_status 1 --no-rxe -- sh -c 'echo c >/proc/sysrq-trigger; exit 0'
	check "--insmod of a missing file fails before booting" \
		expect_status 1 --insmod /nonexistent.ko -- true
	check "no kernel to be had: skip (77)" no_kernel_skips
	check "no kernel with MRCACHE_REQUIRE_VM=1: fail (1)" no_kernel_fails_when_required
	echo "$passed passed, $failed failed"
	((failed == 0))
}

if [[ ${1:-} == --in-guest ]]; then
	shift
	in_guest "$@"
else
	on_host
fi
