#!/usr/bin/env bash
# sw-lease: acquire+release cycles/s against the exec floor ($TRIVIAL) and
# against flock -n on one host, measured in interleaved rounds so that the
# machine's noise falls on all alike; plus the same cycle on the multihost
# filesystem when $SW_MH_A is set.  BENCH_QUICK=1: fewer rounds.
set -eu
. "$(dirname "$0")/lib.sh"
tmp=$SW_BENCH_TMP/lease
rm -rf "$tmp"; mkdir -p "$tmp"
export SW_SYNC=off SW_DIR=$tmp/ws
rounds=${BENCH_ROUNDS:-7} per=200
[ "${BENCH_QUICK:-}" = 1 ] && { rounds=3; per=100; }

# a failed call is counted, not fatal (time_calls runs under set -e)
failed() { echo "$1" >>"$tmp/failures"; }
# one cycle as a script writes it: acquire (token from the output), release
cycle() {
	local j
	j=$(sw-lease acquire b --ttl 1m) || { failed "acquire $?"; return 0; }
	[[ $j =~ \"token\":([0-9]+) ]] || { failed "no token"; return 0; }
	sw-lease release b --token "${BASH_REMATCH[1]}" >/dev/null || failed "release $?"
}
run_cycle() { sw-lease run a -- "$TRIVIAL" || failed "run $?"; }
flock_cycle() { flock -n "$tmp/flockfile" "$TRIVIAL" || failed "flock $?"; }
floor2() { # the same shape with two trivial execs, one captured
	local j
	j=$("$TRIVIAL")
	"$TRIVIAL" "$j"
}

: >"$tmp/failures"; : >"$tmp/t.triv"; : >"$tmp/t.run"; : >"$tmp/t.flock"; : >"$tmp/t.cycle"; : >"$tmp/t.floor2"
for ((r = 0; r < rounds; r++)); do
	time_calls $per "$TRIVIAL" >>"$tmp/t.triv"
	time_calls $per run_cycle >>"$tmp/t.run"
	time_calls $per flock_cycle >>"$tmp/t.flock"
	time_calls $per floor2 >>"$tmp/t.floor2"
	time_calls $per cycle >>"$tmp/t.cycle"
done
triv=$(median <"$tmp/t.triv"); run=$(median <"$tmp/t.run")
fl=$(median <"$tmp/t.flock"); cyc=$(median <"$tmp/t.cycle"); f2=$(median <"$tmp/t.floor2")
persec() { awk -v us="$1" 'BEGIN {printf "%d", 1e6 / us}'; }
echo "trivial C exec:                       median ${triv} µs"
echo "flock -n FILE trivial:                median ${fl} µs = $(ratio "$fl" "$triv")× the exec floor, $(persec "$fl")/s"
echo "sw-lease run NAME trivial:            median ${run} µs = $(ratio "$run" "$triv")× the exec floor, $(ratio "$run" "$fl")× flock -n, $(persec "$run") cycles/s"
echo "acquire + release (2 calls, script):  median ${cyc} µs = $(ratio "$cyc" "$f2")× two trivial execs (${f2} µs), $(persec "$cyc") cycles/s"

if [ -n "${SW_MH_A:-}" ] && [ -d "$SW_MH_A" ]; then
	export SW_DIR=$SW_MH_A/bench-lease-$$
	time_calls $((per / 2)) run_cycle >"$tmp/t.mh"
	mh=$(median <"$tmp/t.mh")
	echo "sw-lease run on MooseFS (\$SW_MH_A):   median ${mh} µs = $(ratio "$mh" "$run")× local, $(persec "$mh") cycles/s"
	rm -rf "$SW_DIR"
fi
if [ -s "$tmp/failures" ]; then
	echo "failed calls (timed all the same): $(sort "$tmp/failures" | uniq -c | tr -s ' \n' ' ')"
fi
