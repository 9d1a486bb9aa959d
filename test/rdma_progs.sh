# SPDX-License-Identifier: BSD-2-Clause
# Sourced where real RDMA programs run (test/preload.sh, test/ofi.sh,
# bench/preload_bench.sh), on the host with the device or in the guest.
# Needs say() and fail() from the caller.

# listening PORT: a TCP socket listens on PORT, or with PORT "cm", an
# rdma_cm id (rping's server opens no TCP socket).
listening() {
	if [[ $1 == cm ]]; then
		rdma resource show cm_id 2>/dev/null | grep -q LISTEN
	else
		ss -ltn | grep -q ":$1 "
	fi
}

# pair NAME PRELOAD PORT -- SERVER... -- CLIENT...: a server and a client on
# this host, the client started once the server listens on PORT (see
# listening()); both must exit 0 within 300 s (a loaded TCG host is slow, a
# lost connection hangs). Both outputs end up in $out; PRELOAD goes into
# LD_PRELOAD.
pair() {
	local name=$1 pre=$2 port=$3 srv=() cli=() spid rc i
	shift 4
	while [[ $1 != -- ]]; do srv+=("$1"); shift; done
	shift
	cli=("$@")
	env ${pre:+LD_PRELOAD="$pre"} timeout 300 "${srv[@]}" >/tmp/pair_srv.$$ 2>&1 &
	spid=$!
	for ((i = 0; i < 600; i++)); do
		listening "$port" && break
		sleep 0.1
	done
	env ${pre:+LD_PRELOAD="$pre"} timeout 300 "${cli[@]}" >/tmp/pair_cli.$$ 2>&1
	rc=$?
	wait "$spid" || rc=1
	out=$(cat /tmp/pair_srv.$$ /tmp/pair_cli.$$)
	rm -f /tmp/pair_srv.$$ /tmp/pair_cli.$$
	((rc == 0)) || { printf '%s\n' "$out" >&2; fail "$name"; }
}

# rdma_cm cannot bind on lo, where the VM puts rxe0: in the guest, a second
# Soft-RoCE device rxe1 on a dummy interface with an address carries
# rdma_cm connections (test/vm/README.md). Prints the address to use;
# natively, MRCACHE_RDMA_CM_ADDR (or MRCACHE_OFI_ADDR) names a local
# RDMA device's IP address.
rdma_cm_addr() {
	local addr=${MRCACHE_RDMA_CM_ADDR:-${MRCACHE_OFI_ADDR:-}}
	if [[ -z $addr && ${MRCACHE_IN_VM:-0} == 1 ]]; then
		addr=192.168.77.1
		if [[ ! -e /sys/class/infiniband/rxe1 ]]; then
			modprobe dummy &&
				ip link add mrc-dummy0 type dummy &&
				ip addr add $addr/24 dev mrc-dummy0 &&
				ip link set mrc-dummy0 up &&
				rdma link add rxe1 type rxe netdev mrc-dummy0 >&2 ||
				fail "cannot set up rxe1 on a dummy interface"
		fi
	fi
	[[ -n $addr ]] || fail "set MRCACHE_RDMA_CM_ADDR to a local RDMA device's IP address"
	echo "$addr"
}
