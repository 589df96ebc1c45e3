#!/usr/bin/env bash
# sw-claim next with --affinity against without, at 1,000,000 pending
# keyed items (1,000 keys): claim cost must not grow with affinity (issue
# 13: p50 ≤ 1.3×).  Four agents are registered on the queue; the claims
# with affinity go round them, as four agents would claim their own keys,
# interleaved in rounds with plain claims so the machine's noise falls on
# both alike.  BENCH_QUICK=1: 100,000 pending.
set -eu
. "$(dirname "$0")/lib.sh"
tmp=$SW_BENCH_TMP/affinity
rm -rf "$tmp"; mkdir -p "$tmp"
export SW_SYNC=off SW_DIR=$tmp/ws
big=${BENCH_BIG:-1000000}
[ "${BENCH_QUICK:-}" = 1 ] && big=100000
rounds=${BENCH_ROUNDS:-5}
per=${BENCH_AFF_CALLS:-200}

echo "filling a queue with $big keyed items…"
t0=$EPOCHREALTIME
awk -v n="$big" 'BEGIN { for (i = 1; i <= n; i++) printf "{\"payload\":%d,\"key\":\"k%d\"}\n", i, i % 1000 }' |
	sw-claim add --quiet
t1=$EPOCHREALTIME
echo "sw-claim add of $big keyed items: $(awk -v a="${t0/./}" -v b="${t1/./}" 'BEGIN {printf "%.1f", (b-a)/1e6}') s"
# an hour-long ttl: the four stay in the ring however long this takes
for a in a1 a2 a3 a4; do sw-agent register -q default --id "$a" --ttl 1h >/dev/null; done

aff_calls() { # N: claims with affinity, round the four agents
	local i t0 t1
	for ((i = 0; i < $1; i++)); do
		t0=$EPOCHREALTIME
		sw-claim next --affinity "a$((i % 4 + 1))" --steal-after 1h >/dev/null 2>&1 || echo "failed" >&2
		t1=$EPOCHREALTIME
		echo $(( (${t1/./} - ${t0/./}) ))
	done
}
: >"$tmp/t.plain"; : >"$tmp/t.aff"
for ((r = 0; r < rounds; r++)); do
	time_calls "$per" sw-claim next >>"$tmp/t.plain"
	aff_calls "$per" >>"$tmp/t.aff"
done
plain=$(median <"$tmp/t.plain"); aff=$(median <"$tmp/t.aff")
echo "sw-claim next p50, $big keyed pending:            ${plain} µs"
echo "sw-claim next --affinity p50, $big keyed pending: ${aff} µs = $(ratio "$aff" "$plain")× (target ≤ 1.3×)"
echo "  p90: $(percentile 90 <"$tmp/t.plain") µs vs $(percentile 90 <"$tmp/t.aff") µs"
rm -rf "$tmp"
