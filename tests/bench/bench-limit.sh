#!/usr/bin/env bash
# sw-limit and sw-breaker: an uncontended take against the exec floor
# ($TRIVIAL), `sw-breaker run NAME -- true` against true(1) run by the
# same loop, and the rate 8 contending takers reach when the rate is set
# near what the machine can do; the same contention on the multihost
# filesystem when $SW_MH_A and $SW_MH_B are set.  Ratios within one run,
# nothing asserted.  BENCH_QUICK=1: fewer rounds, shorter runs.
set -eu
. "$(dirname "$0")/lib.sh"
tmp=$SW_BENCH_TMP/limit
rm -rf "$tmp"; mkdir -p "$tmp"
export SW_SYNC=off SW_DIR=$tmp/ws
rounds=${BENCH_ROUNDS:-7} per=200 secs=5
[ "${BENCH_QUICK:-}" = 1 ] && { rounds=3; per=100; secs=3; }
true_bin=$(type -P true)

# a failed call is counted, not fatal (time_calls runs under set -e)
failed() { echo "$1" >>"$tmp/failures"; }
take_ok() { sw-limit take free --rate 1000000/s --burst 1000000 >/dev/null || failed "take $?"; }
take_no() { local rc=0; sw-limit take shut --rate 1/d --quiet || rc=$?; [ $rc -eq 75 ] || failed "refusal $rc"; }
breaker_true() { sw-breaker run b -- "$true_bin" || failed "breaker $?"; }

# 1. interleaved rounds, so that the machine's noise falls on all alike
sw-limit take shut --rate 1/d --quiet
sw-breaker check b --quiet
: >"$tmp/failures"
for t in triv take no true brk; do : >"$tmp/t.$t"; done
for ((r = 0; r < rounds; r++)); do
	time_calls $per "$TRIVIAL" >>"$tmp/t.triv"
	time_calls $per take_ok >>"$tmp/t.take"
	time_calls $per take_no >>"$tmp/t.no"
	time_calls $per "$true_bin" >>"$tmp/t.true"
	time_calls $per breaker_true >>"$tmp/t.brk"
done
triv=$(median <"$tmp/t.triv"); take=$(median <"$tmp/t.take"); no=$(median <"$tmp/t.no")
tru=$(median <"$tmp/t.true"); brk=$(median <"$tmp/t.brk")
echo "trivial C exec:                         median ${triv} µs"
echo "sw-limit take, granted (uncontended):   median ${take} µs = $(ratio "$take" "$triv")× the exec floor (target ≤ 1.5×)"
echo "sw-limit take, refused:                 median ${no} µs = $(ratio "$no" "$triv")× the exec floor"
echo "$true_bin:                          median ${tru} µs"
echo "sw-breaker run NAME -- true (closed):   median ${brk} µs = $(ratio "$brk" "$tru")× true (target ≤ 2×)"

# 2. 8 takers flat out: first with a rate that never limits (what the
#    machine can do under this contention), then with the rate set to 80%
#    of that: the share of it they reach, and the pace of their calls in
#    that run (below the rate: the machine slowed down meanwhile, and the
#    share says more about it than about the limiter)
flat_out() { # dir name secs procs rate -> "grants calls" on stdout
	local dir=$1 name=$2 s=$3 n=$4 rate=$5 i end
	end=$(( ${EPOCHREALTIME/./} + s * 1000000 ))
	for ((i = 0; i < n; i++)); do
		( d=$dir; [ -n "${SW_MH_B:-}" ] && [ "$dir" != "$SW_DIR" ] && [ $((i % 2)) = 1 ] && d=${dir/#$SW_MH_A/$SW_MH_B}
		  while [ "${EPOCHREALTIME/./}" -lt "$end" ]; do
			if SW_DIR=$d sw-limit take "$name" --rate "$rate" --burst 10 --quiet 2>/dev/null; then
				echo y
			else
				echo n
			fi
		  done >"$tmp/flat.$i" ) &
	done
	wait
	echo "$(cat "$tmp"/flat.* | grep -c y || true) $(cat "$tmp"/flat.* | wc -l)"
}
contention() { # label dir
	local label=$1 dir=$2 cap rate got calls
	read -r cap _ < <(flat_out "$dir" cap "$secs" 8 1000000/s)
	rate=$(( cap * 8 / 10 / secs ))
	[ "$rate" -ge 1 ] || rate=1
	read -r got calls < <(flat_out "$dir" near "$secs" 8 "$rate/s")
	echo "$label: 8 takers unlimited: $((cap / secs))/s; at --rate $rate/s (80%):" \
	     "$((got / secs))/s = $(awk -v g="$got" -v r="$rate" -v s="$secs" 'BEGIN {printf "%d", 100 * g / (r * s + 10)}')%" \
	     "of the rate (target ≥ 90%), their calls meanwhile $((calls / secs))/s"
}
contention "local" "$SW_DIR"

if [ -n "${SW_MH_A:-}" ] && [ -d "$SW_MH_A" ] && [ -n "${SW_MH_B:-}" ]; then
	mh=$SW_MH_A/bench-limit-$$
	mkdir -p "$mh"
	for _ in $(seq 50); do [ -d "${mh/#$SW_MH_A/$SW_MH_B}" ] && break; sleep 0.1; done
	contention "MooseFS, 4 takers on each mount" "$mh"
	rm -rf "$mh"
fi
if [ -s "$tmp/failures" ]; then
	echo "failed calls (timed all the same): $(sort "$tmp/failures" | uniq -c | tr -s ' \n' ' ')"
fi
