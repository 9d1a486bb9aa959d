#!/bin/bash
# Load/unload/reload without leaks.
#  1. Run t_many (5,000 watches, unwatched) and t_overflow (closed with 64
#     watches still in place) 10 times each; the module's own counters
#     must come back to zero and Slab + VmallocUsed must not grow by more
#     than 4 MiB (a leak of the rings or watches alone would be ~60 MiB).
#  2. rmmod must succeed (no file or reference left) and remove the
#     device; insmod "$MRCACHE_KO" again; t_munmap must pass on it.
#  3. Bad per-user limits are refused; small ones are enforced (the
#     t_user_* tests read the parameters).
# The Debian kernel has no kmemleak (CONFIG_DEBUG_KMEMLEAK is off), so
# the checks are the counters, meminfo and rmmod's refcount check.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bindir=${MRCACHE_KMOD_BINDIR:-$here}
stats=/sys/class/misc/mrcache/stats

[[ -d $stats ]] || { echo "t_reload: SKIP: module not loaded"; exit 77; }
[[ $(id -u) == 0 ]] || { echo "t_reload: SKIP: needs root"; exit 77; }

meminfo_kb() {
	awk '/^Slab:/ { s = $2 } /^VmallocUsed:/ { v = $2 } END { print s + v }' \
		/proc/meminfo
}

fail() { echo "t_reload: FAIL: $*"; exit 1; }

echo 3 > /proc/sys/vm/drop_caches
before=$(meminfo_kb)
for _ in $(seq 10); do
	"$bindir/t_many" >/dev/null 2>&1 || fail "t_many failed"
	"$bindir/t_overflow" >/dev/null 2>&1 || fail "t_overflow failed"
done
echo 3 > /proc/sys/vm/drop_caches
after=$(meminfo_kb)
for c in files users watches ranges watched_pages pressure_pages ring_bytes; do
	v=$(cat "$stats/$c")
	[[ $v == 0 ]] || fail "counter $c is $v after all files closed"
done
growth=$((after - before))
echo "t_reload: Slab+VmallocUsed ${before} kB -> ${after} kB (${growth} kB) after 20 runs"
((growth < 4096)) || fail "kernel memory grew by ${growth} kB"

[[ -n ${MRCACHE_KO:-} && -f ${MRCACHE_KO} ]] ||
	{ echo "t_reload: SKIP reload: MRCACHE_KO not set"; exit 77; }
rmmod mrcache || fail "rmmod"
[[ ! -e /dev/mrcache && ! -d $stats ]] || fail "device still there after rmmod"
insmod "$MRCACHE_KO" max_watches=1024 || fail "insmod again"
[[ $(cat /sys/module/mrcache/parameters/max_watches) == 1024 ]] ||
	fail "module parameter not applied"
"$bindir/t_munmap" || fail "t_munmap after reload"
rmmod mrcache || fail "second rmmod"
insmod "$MRCACHE_KO" max_ring_entries=100 2>/dev/null &&
	fail "insmod accepted max_ring_entries=100"
insmod "$MRCACHE_KO" max_user_watches=0 2>/dev/null &&
	fail "insmod accepted max_user_watches=0"
insmod "$MRCACHE_KO" max_user_files=2 max_user_watches=3 || fail "insmod limits"
"$bindir/t_user_files" || fail "t_user_files with max_user_files=2"
"$bindir/t_user_watches" || fail "t_user_watches with max_user_watches=3"
rmmod mrcache || fail "third rmmod"
insmod "$MRCACHE_KO" || fail "final insmod"
echo "t_reload: PASS"
