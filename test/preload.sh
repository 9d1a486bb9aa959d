#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
#
# make check: libmrcache-preload.so under test/preload_app, a verbs program
# that knows nothing of mrcache and registers around every RDMA WRITE.
# Natively when this machine has an RDMA device (and /dev/mrcache for the
# kmod runs), else in one VM on Soft-RoCE with the module loaded.
#
# Each scenario runs without the preload, then with it under each monitor
# (hooks; kmod when the module is there). Every run checks every byte the
# application sees in its target; the preloaded runs also read the
# MRCACHE_STATS=1 line:
#   reuse   buffers kept: misses <= working set, hits >= messages (after
#           one pass over the working set)
#   free    malloc/free of 1 MiB and 64 KiB per message: bytes right
#   munmap  mmap/munmap of source and target per message: bytes right and
#           invalidations seen; again with MRCACHE_PRELOAD_REMOTE=1 (the
#           target's remote registration cached too)
#   idle    one 1 MiB message, then the program sleeps: with an idle bound
#           the preload's progress thread unpins the buffer (VmPin back to
#           what it is without the preload; evictions counted), with the
#           bound off it stays pinned (the control); the default bound
#           (10 s) once, with the hooks
#   threads 4 threads registering and deregistering at once (shared and
#           own buffers, MRs deregistered by another thread than made them)
#           while another makes and deallocates PDs; then two threads
#           deregister the same MRs at once: each exactly once, the other
#           call EINVAL (preload_threads.c); hits counted
#   tools   Debian's ibv_rc_pingpong, ib_write_bw and rping (over rdma_cm)
#           finish with the preload as without it
#
# By hand: cd BUILDDIR && top_srcdir=SRCDIR top_builddir=$PWD SRCDIR/test/preload.sh
set -u

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$PWD}
app=$top_builddir/test/preload_app
lib=${MRCACHE_PRELOAD_LIB:-$top_builddir/src/preload/.libs/libmrcache-preload.so}
kmod=$top_builddir/kmod-build/mrcache.ko

say() { printf 'preload.sh: %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

if [[ ${MRCACHE_PRELOAD_INSIDE:-0} != 1 ]]; then
	[[ -x $app && -f $lib ]] || { say "build first: $app, $lib"; exit 99; }
	export LD_LIBRARY_PATH=$top_builddir/src/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
	export MRCACHE_PRELOAD_INSIDE=1 MRCACHE_PRELOAD_LIB=$lib
	export MRCACHE_PRELOAD_SCENARIOS=${MRCACHE_PRELOAD_SCENARIOS:-}
	cd "$top_builddir" || exit 99
	vm=(--rdma)
	[[ -f $kmod ]] && vm+=(--kmod "$kmod")
	exec "$top_srcdir/test/in-vm.sh" "${vm[@]}" \
		--timeout "${MRCACHE_PRELOAD_TIMEOUT:-600}" -- bash "$0"
fi

# --- from here on: where the RDMA device is ---------------------------------
. "$top_srcdir/test/rdma_progs.sh"
stats= out=

# run NAME ENV... -- ARGS: one run of the program; sets $stats.
run() {
	local name=$1 envs=()
	shift
	while [[ $1 != -- ]]; do envs+=("$1"); shift; done
	shift
	out=$(env "${envs[@]}" "$app" "$@" 2>&1)
	local rc=$?
	((rc == 77)) && { say "$out"; exit 77; }
	((rc == 0)) || { printf '%s\n' "$out" >&2; fail "$name: preload_app $* exited $rc"; }
	stats=$(grep '^mrcache-preload:' <<<"$out" | tail -n 1)
	say "ok   $name: preload_app $*${stats:+
          $stats}"
}

field() { sed -n "s/.* $1 \([0-9]*\).*/\1/p" <<<"$stats"; }

# An ASan build's preload needs libasan loaded first.
asan=$(ldd "$lib" 2>/dev/null | awk '/libasan/ { print $3 }')
preload=${asan:+$asan }$lib

# The references hits take: thread refs by default, the compare-and-swap
# when MRCACHE_THREAD_REFS says no (run by hand with MRCACHE_THREAD_REFS=0).
# Every kernel this runs on has private expedited membarrier (4.14 on),
# so no fallback is expected.
case ${MRCACHE_THREAD_REFS:-1} in
0 | [Nn][Oo] | [Oo][Ff][Ff] | [Ff][Aa][Ll][Ss][Ee]) refs=cas ;;
*) refs=thread ;;
esac

preloaded() {
	local monitor=$1 name=$2
	shift 2
	run "$name ($monitor)" LD_PRELOAD="$preload" MRCACHE_STATS=1 \
		MRCACHE_MONITOR="$monitor" "$@"
	[[ -n $stats ]] || fail "$name ($monitor): no MRCACHE_STATS line"
	[[ $monitor == auto ]] && monitor=kmod
	[[ $stats == *"monitor $monitor refs $refs:"* ]] ||
		fail "$name: wanted monitor $monitor, refs $refs: $stats"
}

monitors=(hooks)
[[ -c /dev/mrcache ]] && monitors+=(auto)
((${#monitors[@]} == 2)) || say "no /dev/mrcache: the kmod runs are left out"

scenario_reuse() {
	local messages=200 set=8 size=65536 hits misses
	run "reuse, no preload" -- reuse $messages $set $size
	[[ -z $stats ]] || fail "a stats line without the preload"
	for m in "${monitors[@]}"; do
		preloaded "$m" reuse -- reuse $messages $set $size
		hits=$(field hits) misses=$(field misses)
		((misses <= set)) || fail "reuse ($m): $misses misses for a working set of $set"
		# preload_app sends once from each buffer before the timed messages
		((hits >= messages)) || fail "reuse ($m): $hits hits, wanted >= $messages"
		((hits + misses == messages + set)) || fail "reuse ($m): hits + misses != $((messages + set))"
		say "     reuse ($m): $hits hits of $((messages + set)) messages, working set $set"
	done
}

scenario_free() {
	local size
	for size in 1048576 65536; do
		run "free $size, no preload" -- free 50 $size
		for m in "${monitors[@]}"; do
			preloaded "$m" "free $size" -- free 50 $size
		done
	done
}

scenario_munmap() {
	run "munmap, no preload" -- munmap 50 262144
	for m in "${monitors[@]}"; do
		for remote in 0 1; do
			preloaded "$m" "munmap remote=$remote" MRCACHE_PRELOAD_REMOTE=$remote -- munmap 50 262144
			(($(field invalidations) > 0)) || fail "munmap ($m): no invalidation: $stats"
		done
	done
	# The control: without a monitor the cache must be caught serving
	# stale pages, or the munmap scenario proves nothing.
	if env LD_PRELOAD="$preload" MRCACHE_MONITOR=manual MRCACHE_PRELOAD_REMOTE=1 \
		"$app" munmap 50 262144 >/dev/null 2>&1; then
		say "note: with MRCACHE_MONITOR=manual the munmap run still passed (mmap did not reuse the address)"
	else
		say "ok   control: with MRCACHE_MONITOR=manual the munmap run sees stale bytes, as it must"
	fi
}

size=1048576 kb=1024

# pins: "VmPin after the deregistrations" and "... later" of the idle run.
pins() { sed -n 's/.*VmPin \([0-9]*\) kB after the deregistrations, \([0-9]*\) kB .*/\1 \2/p' <<<"$out"; }

scenario_idle() {
	local base before after
	run "idle, no preload" -- idle $size 10
	read -r _ base <<<"$(pins)"
	[[ -n $base ]] || fail "idle: no VmPin line: $out"
	for m in "${monitors[@]}"; do
		preloaded "$m" "idle, bound off" MRCACHE_IDLE_TIMEOUT=inf -- idle $size 1500
		read -r before after <<<"$(pins)"
		((before >= base + kb && after >= base + kb)) ||
			fail "idle ($m): the control did not keep $kb kB pinned (VmPin $before/$after, $base without the preload): VmPin measures nothing here"
		preloaded "$m" "idle, bound 300ms" MRCACHE_IDLE_TIMEOUT=300ms -- idle $size 3000
		read -r before after <<<"$(pins)"
		((before >= base + kb)) || fail "idle ($m): the buffer was not cached (VmPin $before)"
		((after == base)) || fail "idle ($m): VmPin $after kB 3 s after a 300 ms idle bound, $base without the preload"
		(($(field evictions) >= 1)) || fail "idle ($m): no eviction counted: $stats"
		say "     idle ($m): VmPin $before kB while cached, $after kB after the bound ($base without the preload)"
	done
	preloaded hooks "idle, default bound" -- idle $size 13000
	read -r before after <<<"$(pins)"
	((after == base)) || fail "idle (default bound): VmPin $after kB 13 s later, $base without the preload"
}

# lines PREFIX: the program's result lines starting with PREFIX.
lines() { grep "^preload_app: $1" <<<"$out"; }
same() { [[ $1 == "$2" ]] || fail "$3: with the preload
$2
without
$1"; }

scenario_rereg() {
	local plain c
	run "rereg, no preload" -- rereg 65536
	plain=$(lines "rereg")
	say "     without the preload: $(tr '\n' ';' <<<"$plain")"
	for m in "${monitors[@]}"; do
		preloaded "$m" rereg -- rereg 65536
		for c in "unknown flag" "translation without address" "access without CHANGE_ACCESS"; do
			same "$(grep "rereg $c:" <<<"$plain")" "$(lines "rereg $c:")" "rereg $c ($m)"
		done
		for c in "pd to a second pd" "pd back" "access" "translation"; do
			[[ $(lines "rereg $c:") == *": 0 errno -" ]] || fail "rereg $c ($m): $(lines "rereg $c:")"
		done
	done
}

scenario_badinput() {
	local plain
	run "badinput, no preload" -- badinput 65536
	plain=$(lines "")
	for m in "${monitors[@]}"; do
		preloaded "$m" badinput -- badinput 65536
		same "$plain" "$(lines "")" "badinput ($m)"
	done
	say "     badinput: $(tr '\n' ';' <<<"$plain")"
}

scenario_double() {
	local rc
	out=$("$app" double 65536 2>&1)
	rc=$?
	say "note: without the preload an MR deregistered twice: exit $rc, $(lines "dereg twice" || echo "no answer (crashed)")"
	for m in "${monitors[@]}"; do
		preloaded "$m" double -- double 65536
		[[ $(lines "dereg twice:") == *": 22 errno "* ]] || fail "double ($m): $(lines "dereg twice:")"
	done
}

# The preload's lock-free hit path under threads (MRCACHE_PRELOAD_THREAD_ROUNDS).
scenario_threads() {
	local rounds=${MRCACHE_PRELOAD_THREAD_ROUNDS:-5000}
	run "threads, no preload" -- threads 4 200 4096
	for m in "${monitors[@]}"; do
		preloaded "$m" threads -- threads 4 "$rounds" 4096 race
		[[ $(lines "threads: .* at once") == *", 0 not exactly once" ]] ||
			fail "threads ($m): $(lines "threads: .* at once")"
		(($(field hits) >= 4 * 2 * rounds)) || fail "threads ($m): $(field hits) hits, wanted >= $((4 * 2 * rounds))"
		say "     threads ($m): $(lines "threads: .* at once")"
	done
}

# VmPin after fork: without the preload, with the fork flush, without it.
fork_pin() { sed -n 's/.*fork: VmPin [0-9]* kB before fork, \([0-9]*\) kB after/\1/p' <<<"$out"; }

scenario_fork() {
	local plain base pin how mode env
	run "fork, no preload" -- fork $size safe
	plain=$(lines "child") base=$(fork_pin)
	[[ -n $base && -n $plain ]] || fail "fork: no VmPin or child lines: $out"
	for m in "${monitors[@]}"; do
		for how in "safe" "unsafe RDMAV_FORK_SAFE=1" "unsafe"; do
			read -r mode env <<<"$how"
			preloaded "$m" "fork $how" ${env:+"$env"} -- fork $size "$mode"
			same "$plain" "$(lines "child")" "fork $how ($m): the child's registration"
			pin=$(fork_pin)
			if [[ $how == unsafe ]]; then
				((pin >= base + kb)) || fail "fork unsafe ($m): the control: VmPin $pin kB after fork, $base without the preload"
			else
				((pin == base)) || fail "fork $how ($m): VmPin $pin kB after fork, $base without the preload: the idle registration was not flushed"
			fi
		done
	done
}

# Allocation churn: 8 buffers of 1 MiB malloc'ed and freed per round. With
# glibc's defaults the round's frees give the heap top back (brk), so the
# hooks or the module invalidate and every round registers again; with
# MRCACHE_PRELOAD_MALLOC=1 the pages stay and later rounds hit.
scenario_malloc() {
	local rounds=25 set=8 msgs=200 plain_hits
	if [[ -n $asan ]]; then
		# The feature is glibc's malloc tuned; ASan's allocator replaces it.
		say "*** malloc scenario NOT RUN under ASan: its allocator ignores mallopt() (the plain build runs it) ***"
		return
	fi
	run "churn, no preload" -- churn $rounds $set $size
	for m in "${monitors[@]}"; do
		preloaded "$m" "churn" -- churn $rounds $set $size
		plain_hits=$(field hits)
		preloaded "$m" "churn, MRCACHE_PRELOAD_MALLOC=1" MRCACHE_PRELOAD_MALLOC=1 -- churn $rounds $set $size
		(($(field hits) >= msgs - set)) || fail "churn ($m): $(field hits) hits of $msgs with MRCACHE_PRELOAD_MALLOC=1, wanted >= $((msgs - set))"
		say "     churn ($m): hits $plain_hits of $msgs with glibc's defaults, $(field hits) with MRCACHE_PRELOAD_MALLOC=1"
	done
}

# Real programs from Debian that register once: ibv_rc_pingpong and
# ib_write_bw on rxe0, rping over rdma_cm on rxe1 (rdma_progs.sh); each
# must finish without and with the preload, which must have loaded (its
# MRCACHE_STATS line). An ASan preload cannot go into them (uninstrumented).
scenario_tools() {
	local dev=rxe0 gid=${MRCACHE_PRELOAD_GID:-2} addr pre name
	if [[ -n $asan ]]; then
		say "*** tools scenario NOT RUN under ASan: the programs are not instrumented (the plain build runs it) ***"
		return
	fi
	[[ -e /sys/class/infiniband/$dev ]] || dev=$(ls /sys/class/infiniband | head -n 1)
	addr=$(rdma_cm_addr) || exit 1
	export MRCACHE_STATS=1
	for pre in "" "$lib"; do
		name=${pre:+, preloaded}
		pair "ibv_rc_pingpong$name" "$pre" 18515 -- \
			ibv_rc_pingpong -d "$dev" -g "$gid" -n 50 -- \
			ibv_rc_pingpong -d "$dev" -g "$gid" -n 50 127.0.0.1
		tool_ran "ibv_rc_pingpong$name" "$pre" 'bytes in'
		pair "ib_write_bw$name" "$pre" 18515 -- \
			ib_write_bw -d "$dev" -x "$gid" -s 65536 -n 50 -F -- \
			ib_write_bw -d "$dev" -x "$gid" -s 65536 -n 50 -F 127.0.0.1
		tool_ran "ib_write_bw$name" "$pre" '^ *65536 '
		pair "rping$name" "$pre" cm -- \
			rping -s -a "$addr" -p 7174 -C 20 -v -- \
			rping -c -a "$addr" -p 7174 -C 20 -v
		tool_ran "rping$name" "$pre" 'ping data'
	done
}

# NAME PRELOAD PATTERN: $out (pair) shows the program's work, and the
# preload's statistics when it was preloaded.
tool_ran() {
	grep -qE "$3" <<<"$out" || { printf '%s\n' "$out" >&2; fail "$1: no '$3' in its output"; }
	if [[ -n $2 ]]; then
		# Not always at a line's start: ib_write_bw ends its table without one.
		grep -q 'mrcache-preload: pid' <<<"$out" || fail "$1: the preload printed no statistics"
		say "ok   $1: $(grep -o -m1 'mrcache-preload: pid.*' <<<"$out")"
	else
		say "ok   $1"
	fi
}

for sc in ${MRCACHE_PRELOAD_SCENARIOS:-reuse free munmap idle rereg badinput double threads fork malloc tools}; do
	declare -F "scenario_$sc" >/dev/null || fail "no scenario $sc"
	"scenario_$sc"
done
say "PASS"
