#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
#
# libmrcache-preload.so under real, unmodified programs, and what it buys
# test/preload_app. Natively where an RDMA device exists, else in one VM on
# Soft-RoCE (rxe0; the module loaded when built). Figures from the VM are
# TCG figures: compare them with each other, never with hardware.
#
#   1. smoke: ib_write_bw and ibv_rc_pingpong (register once) under the
#      preload, server and client on rxe0: both must complete.
#   2. ucx_perftest, two processes, 1 MiB tag_bw with UCX's own caches off
#      (UCX_RCACHE_ENABLE=n UCX_IB_REG_METHODS=direct: a registration per
#      message): without the preload, with it, with MRCACHE_PRELOAD_REMOTE=1
#      (UCX's rendezvous buffers have remote access). Runs interleaved,
#      REPS times; each must complete; bandwidth and the preload's counters.
#   3. preload_app per-message time at 4 KiB, 64 KiB, 1 MiB: registering
#      per message without the preload, with it, and the same buffers
#      registered once (static, the goal), REPS interleaved runs each; and
#      the time inside ibv_reg_mr + ibv_dereg_mr per message, whose share of
#      the static message time is what the preload adds (whole-message
#      times swing more than that under TCG).
#   4. allocation churn (preload_app churn: 8 x 1 MiB malloc'ed, a message
#      each, freed, per round): without the preload, with it, with
#      MRCACHE_PRELOAD_MALLOC=1; time per message and hits.
#
#   cd BUILDDIR && top_srcdir=SRCDIR top_builddir=$PWD SRCDIR/bench/preload_bench.sh
#   MRCACHE_BENCH_REPS=5 (default 3), MRCACHE_BENCH_MONITOR=hooks (default auto)
set -u

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$PWD}
app=$top_builddir/test/preload_app
lib=$top_builddir/src/preload/.libs/libmrcache-preload.so
kmod=$top_builddir/kmod-build/mrcache.ko
reps=${MRCACHE_BENCH_REPS:-3}

say() { printf 'preload_bench: %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

if [[ ${MRCACHE_PRELOAD_BENCH_INSIDE:-0} != 1 ]]; then
	[[ -x $app && -f $lib ]] || { say "build first: $app, $lib"; exit 99; }
	export LD_LIBRARY_PATH=$top_builddir/src/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
	export MRCACHE_PRELOAD_BENCH_INSIDE=1 top_srcdir top_builddir
	vm=(--rdma)
	[[ -f $kmod ]] && vm+=(--kmod "$kmod")
	exec "$top_srcdir/test/in-vm.sh" "${vm[@]}" --mem 2048 --timeout 3000 \
		-- bash "$0"
fi

# --- where the RDMA device is ------------------------------------------------
dev=$(ls /sys/class/infiniband | head -n 1)
gid=${MRCACHE_BENCH_GID:-2}
export MRCACHE_MONITOR=${MRCACHE_BENCH_MONITOR:-auto} MRCACHE_STATS=1
say "device $dev, GID index $gid, monitor $MRCACHE_MONITOR, $reps runs each, $(nproc) CPUs"

. "$top_srcdir/test/rdma_progs.sh"

smoke() {
	local pre
	for pre in "" "$lib"; do
		pair "ib_write_bw${pre:+ (preload)}" "$pre" 18515 -- \
			ib_write_bw -d "$dev" -x "$gid" -s 65536 -n 200 -F -- \
			ib_write_bw -d "$dev" -x "$gid" -s 65536 -n 200 -F 127.0.0.1
		say "ok   ib_write_bw${pre:+ under the preload}: $(grep -E '^ *65536 ' <<<"$out" | tail -n 1 | tr -s ' ')"
		pair "ibv_rc_pingpong${pre:+ (preload)}" "$pre" 18515 -- \
			ibv_rc_pingpong -d "$dev" -g "$gid" -n 200 -- \
			ibv_rc_pingpong -d "$dev" -g "$gid" -n 200 127.0.0.1
		say "ok   ibv_rc_pingpong${pre:+ under the preload}: $(grep -m1 'bytes in' <<<"$out")"
		[[ -z $pre ]] || grep -h '^mrcache-preload:' <<<"$out" | sed 's/^/          /' >&2
	done
}

ucx_env=(UCX_TLS=rc_verbs,ud_verbs,self UCX_NET_DEVICES="$dev:1"
	 UCX_IB_GID_INDEX="$gid" UCX_RCACHE_ENABLE=n UCX_IB_REG_METHODS=direct)

# ucx VARIANT: one ucx_perftest pair; prints "VARIANT MB/s" and counters.
ucx() {
	local v=$1 pre= extra=() bw
	[[ $v != none ]] && pre=$lib
	[[ $v == remote ]] && extra=(MRCACHE_PRELOAD_REMOTE=1)
	pair "ucx_perftest $v" "$pre" 13337 -- \
		env "${ucx_env[@]}" "${extra[@]}" ucx_perftest -t tag_bw -s 1048576 -n 100 -w 10 -- \
		env "${ucx_env[@]}" "${extra[@]}" ucx_perftest 127.0.0.1 -t tag_bw -s 1048576 -n 100 -w 10
	# The last row of the table: its bandwidth (average) column.
	bw=$(grep -E '^ *Final:' <<<"$out" | awk '{ print $(NF-2) }')
	[[ -n $bw ]] || { printf '%s\n' "$out" >&2; fail "ucx_perftest $v: no Final line"; }
	echo "ucx $v $bw"
	grep -h '^mrcache-preload:' <<<"$out" | sed "s/^/          $v: /" >&2
}

# msg_time VARIANT SIZE: preload_app's time per message, and the part of
# it inside ibv_reg_mr + ibv_dereg_mr.
msg_time() {
	local v=$1 size=$2 n=1000 t r
	((size > 4096)) && n=200
	((size > 65536)) && n=50	# TCG: 1 MiB of pattern and check per message
	case $v in
	static) out=$("$app" static $n 4 "$size" 2>&1) ;;
	none) out=$("$app" reuse $n 4 "$size" 2>&1) ;;
	preload) out=$(LD_PRELOAD=$lib "$app" reuse $n 4 "$size" 2>&1) ;;
	churn-none) out=$("$app" churn 10 8 "$size" 2>&1) ;;
	churn-preload) out=$(LD_PRELOAD=$lib "$app" churn 10 8 "$size" 2>&1) ;;
	churn-malloc) out=$(LD_PRELOAD=$lib MRCACHE_PRELOAD_MALLOC=1 "$app" churn 10 8 "$size" 2>&1) ;;
	esac || { printf '%s\n' "$out" >&2; fail "preload_app $v $size"; }
	t=$(sed -n 's/.* \([0-9.]*\) us per message.*/\1/p' <<<"$out")
	r=$(sed -n 's/.* \([0-9.]*\) us of it registering/\1/p' <<<"$out")
	echo "msg $size $v $t $r"
	grep -h '^mrcache-preload:' <<<"$out" | sed "s/^/          $v $size: /" >&2
}

smoke
results=$(
	for ((r = 0; r < reps; r++)); do
		for v in none preload remote; do ucx $v; done
		for size in 4096 65536 1048576; do
			for v in none preload static; do msg_time $v $size; done
		done
		for v in churn-none churn-preload churn-malloc; do msg_time $v 1048576; done
	done
) || exit 1

printf '%s\n' "$results"
# median of the numbers on stdin
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
spread() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s-%s", lo, hi }'; }
# pick ucx VARIANT | pick SIZE VARIANT [reg]: the figures of those runs
# (with reg: the time inside ibv_reg_mr + ibv_dereg_mr).
pick() {
	if [[ $1 == ucx ]]; then
		awk -v v="$2" '$1 == "ucx" && $2 == v { print $3 }' <<<"$results"
	else
		awk -v k="$1" -v v="$2" -v c=$((${3:+1} + 4)) \
			'$1 == "msg" && $2 == k && $3 == v { print $c }' <<<"$results"
	fi
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

echo "ucx_perftest tag_bw 1 MiB, MB/s (median of $reps, range):"
base=$(pick ucx none | median)
for v in none preload remote; do
	m=$(pick ucx $v | median)
	printf '  %-8s %10s  (%s)  ratio %.2f\n' "$v" "$m" "$(pick ucx $v | spread)" "$(ratio "$m" "$base")"
done
echo "preload_app, us per message (median of $reps, range); us inside reg+dereg per message (median, range); that / static's median message:"
for size in 4096 65536 1048576; do
	st=$(pick $size static | median)
	for v in none preload static; do
		m=$(pick $size $v | median)
		r=$(pick $size $v reg | median)
		printf '  %8s %-8s %10s  (%s)  / static %.2f   reg %9s  (%s)  / static %s\n' \
			"$size" "$v" "$m" "$(pick $size $v | spread)" "$(ratio "$m" "$st")" \
			"$r" "$(pick $size $v reg | spread)" "$(ratio "$r" "$st")"
	done
done
echo "churn, 1 MiB, us per message (median of $reps, range); us inside reg+dereg per message (median, range):"
for v in churn-none churn-preload churn-malloc; do
	printf '  %-14s %10s  (%s)   reg %9s  (%s)\n' "$v" "$(pick 1048576 $v | median)" "$(pick 1048576 $v | spread)" \
		"$(pick 1048576 $v reg | median)" "$(pick 1048576 $v reg | spread)"
done
say "PASS"
