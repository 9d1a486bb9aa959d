#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
#
# mrcache-bench as two processes that share only a TCP address: a server
# in the background, the client in front, then a check of what the
# client's JSON lines say (test/bench.sh runs this in the VM; scripts/bench.sh
# uses it for the figures).
#
#   test/bench_pair.sh BIN OUTDIR [CLIENT OPTIONS...]
#
# Passes when both processes exit 0, every strategy measured both
# directions, every cell says the references mrcache used, every cell
# delivered the right bytes, and the manual
# monitor's mmap-churn cells did deliver stale bytes (the expected
# failure: it shows the check can see one).
set -u

bin=$1 out=$2
shift 2
port=${MRCACHE_BENCH_PORT:-18515}
json=$out/cells.json
# The strategies to expect: the client's -S list, else all of them but
# ofi_cache where ucx_rcache runs (mrcache-bench does not put the two in
# one process). Built without UCX or libfabric, there is no ucx_rcache or
# ofi_cache to expect (said loudly).
strategies=(prereg static dynamic pipelined mrc_kmod mrc_hooks mrc_manual ucx_rcache ofi_cache)
for ((i = 1; i < $#; i++)); do
	[[ ${!i} == -S || ${!i} == --strategies ]] && j=$((i + 1)) && IFS=, read -ra strategies <<<"${!j}"
done
expected() { [[ " ${strategies[*]} " == *" $1 "* ]]; }
drop() {
	local keep=() s
	for s in "${strategies[@]}"; do [[ $s == "$1" ]] || keep+=("$s"); done
	strategies=("${keep[@]}")
}
unless_linked() { # LIBRARY STRATEGY
	if expected "$2" && ! ldd "$bin" 2>/dev/null | grep -q "$1"; then
		echo "bench_pair: *** $bin has no $1: $2 is not checked ***" >&2
		drop "$2"
	fi
}
unless_linked libucs ucx_rcache
unless_linked libfabric ofi_cache
expected ucx_rcache && drop ofi_cache

fail() {
	echo "bench_pair: FAIL: $*" >&2
	exit 1
}

# The server is listening once /proc/net/tcp* has the port in state 0A.
wait_listening() {
	local hex i
	hex=$(printf ':%04X ' "$port")
	for ((i = 0; i < 300; i++)); do
		cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
			awk -v p="$hex" 'index($2 " ", p) && $4 == "0A" { f = 1 } END { exit !f }' &&
			return 0
		kill -0 "$server" 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}

mkdir -p "$out" || exit 99
"$bin" --server -p "$port" &
server=$!
wait_listening || fail "the server did not listen on TCP port $port"
"$bin" -p "$port" --json "$json" "$@" 127.0.0.1
client_rc=$?
wait "$server"
server_rc=$?
# Wrong bytes first: they say more than an exit status.
grep -q '"verdict":"BAD"' "$json" 2>/dev/null &&
	fail "wrong bytes in $(grep -c '"verdict":"BAD"' "$json") cell(s): $(grep '"verdict":"BAD"' "$json" | head -3)"
((client_rc == 0)) || fail "the client exited $client_rc"
((server_rc == 0)) || fail "the server exited $server_rc"
[[ -s $json ]] || fail "no JSON lines in $json"
grep -q '"messages":0,' "$json" && fail "a cell sent no message"
# The references mrcache's hits took: thread refs unless the run opted out
# (the kernels this runs on all have private expedited membarrier).
case ${MRCACHE_THREAD_REFS:-1} in
0 | [Nn][Oo] | [Oo][Ff][Ff] | [Ff][Aa][Ll][Ss][Ee]) refs=off ;;
*) refs=on ;;
esac
wrong=$(grep '"strategy":"' "$json" | grep -v "\"thread_refs\":\"$refs\"")
[[ -z $wrong ]] || fail "cells without \"thread_refs\":\"$refs\": $(head -n 1 <<<"$wrong")"
cells() { # STRATEGY DIR: cells of that strategy and direction
	grep "\"strategy\":\"$1\"" "$json" | grep -c "\"dir\":\"$2\""
}
for s in "${strategies[@]}"; do
	for d in source target; do
		(($(cells "$s" "$d") > 0)) || fail "$s did not measure the $d direction"
	done
done
if ! expected mrc_manual; then
	echo "bench_pair: ok: $(grep -c '"sweep":"' "$json") cells of ${strategies[*]}, both directions, right bytes everywhere"
	exit 0
fi
stale=$(grep '"strategy":"mrc_manual"' "$json" | grep '"churn":"mmap"' |
	grep -c '"verdict":"stale-expected"')
((stale > 0)) || fail "the manual monitor's mmap churn delivered no stale byte: is the check blind?"
echo "bench_pair: ok: $(grep -c '"sweep":"' "$json") cells, every strategy both directions," \
	"right bytes everywhere; manual monitor under mmap churn: $stale stale cell(s), as expected"
