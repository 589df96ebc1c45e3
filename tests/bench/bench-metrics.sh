#!/usr/bin/env bash
# sw-metrics: span ingestion rate (1,000,000 span lines through `ingest`)
# and one-shot `inc` against two exec floors: $TRIVIAL (make build/trivial)
# and a trivial program linked like bin/ (SQLite, jansson and libbsd in
# the binary), built here; then what folding those incs' journal records
# into the database costs the next reader.  BENCH_QUICK=1: 100,000 lines,
# fewer rounds.
set -eu
. "$(dirname "$0")/lib.sh"
tmp=$SW_BENCH_TMP/metrics
rm -rf "$tmp"; mkdir -p "$tmp"
lines=${BENCH_SPANS:-1000000}
rounds=${BENCH_ROUNDS:-7}
[ "${BENCH_QUICK:-}" = 1 ] && { lines=100000; rounds=3; }
unset SW_SPANS TRACEPARENT
export SW_METRICS_DB=$tmp/m.db SW_SYNC=${SW_SYNC:-normal}

# The floor linked the way bin/ is: static, with the three libraries in.
linked=$tmp/trivial-linked
cc -O2 -static -o "$linked" "$SW_BENCH_TOP/tests/bench/trivial-linked.c" \
	-lsqlite3 -ljansson -lbsd -lmd -lm -lpthread 2>/dev/null

# 1. one-shot inc vs the exec floors, interleaved in rounds so that the
#    machine's noise falls on all alike (SW_SYNC=normal, the default)
sw-metrics inc bench_hits --quiet
# inc without --quiet folds: on a database of its own, so the incs above
# stay in the journal for the fold measured below
sw-metrics inc bench_total --db "$tmp/total.db" >/dev/null
: >"$tmp/t.triv"; : >"$tmp/t.linked"; : >"$tmp/t.inc"; : >"$tmp/t.total"
for ((r = 0; r < rounds; r++)); do
	time_calls 200 "$TRIVIAL" >>"$tmp/t.triv"
	time_calls 200 "$linked" >>"$tmp/t.linked"
	time_calls 200 sw-metrics inc bench_hits --quiet >>"$tmp/t.inc"
	time_calls 50 sw-metrics inc bench_total --db "$tmp/total.db" >>"$tmp/t.total"
done
triv=$(median <"$tmp/t.triv"); lk=$(median <"$tmp/t.linked"); inc=$(median <"$tmp/t.inc")
shown=$(median <"$tmp/t.total")
echo "trivial C exec (build/trivial):     median ${triv} µs"
echo "trivial C exec, linked like bin/:   median ${lk} µs"
echo "sw-metrics inc --quiet (SW_SYNC=$SW_SYNC): median ${inc} µs = $(ratio "$inc" "$lk")× the linked floor" \
	"(target ≤ 1.5×), $(ratio "$inc" "$triv")× build/trivial"
echo "  p90: inc $(percentile 90 <"$tmp/t.inc") µs, linked floor $(percentile 90 <"$tmp/t.linked") µs"
echo "  inc printing its new total (opens the database): median ${shown} µs = $(ratio "$shown" "$lk")×"
# inc --quiet only appends to the journal; the next command that opens the
# database folds the records in: its cost, shared out over the incs
n_inc=$((rounds * 200))
t0=$EPOCHREALTIME
total=$(sw-metrics summary bench_hits)
t1=$EPOCHREALTIME
fold=$(( ${t1/./} - ${t0/./} ))
echo "  the next read (summary, folding $n_inc journal records): $((fold / 1000)) ms;" \
	"inc with its share: $(awk -v i="$inc" -v f="$fold" -v n="$n_inc" 'BEGIN {printf "%.0f", i + f / n}') µs" \
	"= $(awk -v i="$inc" -v f="$fold" -v n="$n_inc" -v l="$lk" 'BEGIN {printf "%.2f", (i + f / n) / l}')× the linked floor"
[ "$total" = "{\"name\":\"bench_hits\",\"type\":\"counter\",\"series\":1,\"value\":$((n_inc + 1))}" ] ||
	echo "  WRONG TOTAL: $total, want $((n_inc + 1))"

# 2. ingest: $lines OTLP span lines as lib/span.c writes them, 4 span
#    names, 1 in 10 an error, plus a data line every 5 spans
now=$(date +%s%N)
awk -v n="$lines" -v t0="$now" 'BEGIN {
	split("sw-claim claim,sw-claim done,sw-lease acquire,sw-agent run", nm, ",")
	srand(1)
	for (i = 0; i < n; i++) {
		s = t0 + i * 1000; d = int(10000 + rand() * 50000000); name = nm[i % 4 + 1]
		split(name, w, " ")
		printf "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"%s\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"sw\",\"version\":\"0.1.0\"},\"spans\":[{\"traceId\":\"0af7651916cd43dd8448eb211c80319c\",\"spanId\":\"b7ad6b7169203331\",\"name\":\"%s\",\"kind\":1,\"startTimeUnixNano\":\"%.0f\",\"endTimeUnixNano\":\"%.0f\",\"attributes\":[{\"key\":\"sw.queue\",\"value\":{\"stringValue\":\"default\"}}],\"status\":{\"code\":%d}}]}]}]}\n", w[1], name, s, s + d, (i % 10 ? 1 : 2)
		if (i % 5 == 0) printf "{\"id\":\"x%d\",\"payload\":{\"n\":%d}}\n", i, i
	}
}' >"$tmp/spans.jsonl"
size=$(du -m "$tmp/spans.jsonl" | cut -f1)
t0=$EPOCHREALTIME
sw-metrics ingest --tee <"$tmp/spans.jsonl" >"$tmp/tee.out"
t1=$EPOCHREALTIME
us=$(( ${t1/./} - ${t0/./} ))
echo "sw-metrics ingest --tee of $lines span lines (+$((lines / 5)) data lines, ${size} MB):" \
	"$(awk -v u="$us" 'BEGIN {printf "%.2f", u/1e6}') s = $(awk -v n="$lines" -v u="$us" \
	'BEGIN {printf "%d", n/(u/1e6)}') spans/s (target ≥ 100,000)"
echo "  passed through: $(wc -l <"$tmp/tee.out") data lines; database $(du -m "$SW_METRICS_DB" | cut -f1) MB"
t0=$EPOCHREALTIME
sw-metrics summary sw_span_duration_seconds >"$tmp/summary.json"
t1=$EPOCHREALTIME
echo "summary over all $lines observations: $(( (${t1/./} - ${t0/./}) / 1000 )) ms"
rm -rf "$tmp"
