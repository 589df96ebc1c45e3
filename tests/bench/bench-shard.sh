#!/usr/bin/env bash
# bench-shard: sw-shard assign of 1,000,000 keys over 100 nodes (ring with
# its default vnodes, and rendezvous), as wall time and as a ratio to
# `wc -l` over the same input in the same run; and the keys moved when one
# node joins 100 with --max-load 1.25, against the ideal 1/101.
# BENCH_QUICK=1: 100,000 keys.
set -eu
tmp=${SW_BENCH_TMP:-/tmp}/shard
mkdir -p "$tmp"
n=1000000
[ "${BENCH_QUICK:-0}" = 1 ] && n=100000
runs=5

awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) print "key" i }' >"$tmp/keys"
nodes=$(awk 'BEGIN { for (i = 0; i < 100; i++) printf "%snode%d", i ? "," : "", i }')

now_ns() { date +%s%N; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }

# median wall time in ms of `"$@" <keys >/dev/null` over $runs runs
median_ms() {
	local t0 t1 i
	for ((i = 0; i < runs; i++)); do
		t0=$(now_ns)
		"$@" <"$tmp/keys" >/dev/null
		t1=$(now_ns)
		echo $(((t1 - t0) / 1000))
	done | sort -n | awk '{ v[NR] = $1 } END { printf "%.1f", v[int((NR + 1) / 2)] / 1000 }'
}

wc_ms=$(median_ms wc -l)
printf 'keys: %d, nodes: 100, median of %d runs\n' "$n" "$runs"
printf '%-36s %9s ms\n' "wc -l" "$wc_ms"
for algo in ring rendezvous; do
	ms=$(median_ms sw-shard assign --nodes "$nodes" --algo "$algo")
	tsv=$(median_ms sw-shard assign --nodes "$nodes" --algo "$algo" --tsv)
	printf '%-36s %9s ms  %6sx wc -l\n' "assign --algo $algo (JSON)" "$ms" "$(ratio "$ms" "$wc_ms")"
	printf '%-36s %9s ms  %6sx wc -l\n' "assign --algo $algo --tsv" "$tsv" "$(ratio "$tsv" "$wc_ms")"
done
ms=$(median_ms sw-shard assign --nodes "$nodes" --max-load 1.25)
printf '%-36s %9s ms  %6sx wc -l\n' "assign --max-load 1.25 (ring)" "$ms" "$(ratio "$ms" "$wc_ms")"

# one key per process: what a script pays per lookup (mostly building the
# ring of 100 × 2000 points), against exec of a trivial C program
if [ -x "${TRIVIAL:-}" ]; then
	echo k >"$tmp/one"
	loop_ms() { local t0 t1 i; t0=$(now_ns); for ((i = 0; i < 20; i++)); do "$@" <"$tmp/one" >/dev/null; done; t1=$(now_ns); awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f", d / 20 / 1e6 }'; }
	triv=$(loop_ms "$TRIVIAL")
	for algo in ring rendezvous; do
		one=$(loop_ms sw-shard assign --nodes "$nodes" --algo "$algo")
		printf '%-36s %9s ms  %6sx trivial exec (%s ms)\n' "assign of 1 key, --algo $algo" "$one" "$(ratio "$one" "$triv")" "$triv"
	done
fi

echo "movement when node100 joins node0..node99 (ideal 1/101):"
for args in "--algo ring" "--algo ring --max-load 1.25" "--algo ring --vnodes 100 --max-load 1.25" "--algo ring --vnodes 20 --max-load 1.25" \
	"--algo rendezvous --max-load 1.25" "--algo jump --max-load 1.25"; do
	# shellcheck disable=SC2086
	sw-shard plan --from "$nodes" --to "$nodes,node100" $args --summary <"$tmp/keys" |
		jq -r --arg a "$args" '"  \($a): moved \(.moved) of \(.keys) = \(.ratio * 1000 | round / 1000)x ideal"'
done
rm -f "$tmp/keys"
