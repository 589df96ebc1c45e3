#!/usr/bin/env bash
# sw-claim: the cost of one claim against the exec floor, claim cost with a
# big queue against a small one, and claims/s across two network mounts.
# BENCH_QUICK=1: 100,000 instead of 1,000,000 pending items.
# BENCH_PART=exec, big, batch or mh runs only that part.
set -eu
. "$(dirname "$0")/lib.sh"
tmp=$SW_BENCH_TMP/claim
rm -rf "$tmp"; mkdir -p "$tmp"
export SW_SYNC=off
big=${BENCH_BIG:-1000000}
[ "${BENCH_QUICK:-}" = 1 ] && big=100000
rounds=${BENCH_ROUNDS:-7}
part() { [ -z "${BENCH_PART:-}" ] || [ "$BENCH_PART" = "$1" ]; }
fill() { # dir count
	SW_DIR=$1 sw-claim add --lines --quiet < <(seq 1 "$2")
}

# 1. next vs the exec of a trivial C program, interleaved in rounds so
#    that the machine's noise falls on both alike
if part exec; then
export SW_DIR=$tmp/small
seq 1 $((rounds * 300 + 1000)) | sw-claim add --lines --quiet
: >"$tmp/t.triv"; : >"$tmp/t.static"; : >"$tmp/t.next"
for ((r = 0; r < rounds; r++)); do
	time_calls 300 "$TRIVIAL" >>"$tmp/t.triv"
	time_calls 300 "$TRIVIAL_STATIC" >>"$tmp/t.static"
	time_calls 300 sw-claim next >>"$tmp/t.next"
done
triv=$(median <"$tmp/t.triv"); stat=$(median <"$tmp/t.static"); next=$(median <"$tmp/t.next")
echo "trivial C exec (cc, dynamic):  median ${triv} µs"
echo "trivial C exec (cc -static):   median ${stat} µs"
echo "sw-claim next (1k queue):      median ${next} µs  = $(ratio "$next" "$triv")× the exec floor (target ≤ 1.3×)," \
     "$(ratio "$next" "$stat")× a static one"
fi

# 2. next with $big pending items vs with 1,000 pending
if part big; then
# 1,500 -> 500 pending over the 1,000 claims: about 1,000 throughout
export SW_DIR=$tmp/k1
fill "$SW_DIR" 1500
time_calls 1000 sw-claim next >"$tmp/t.k1"
echo "filling a queue with $big items…"
t0=$EPOCHREALTIME
fill "$tmp/big" "$big"
t1=$EPOCHREALTIME
add_s=$(awk -v a="${t0/./}" -v b="${t1/./}" 'BEGIN {printf "%.1f", (b-a)/1e6}')
echo "sw-claim add of $big items from stdin: ${add_s} s ($(awk -v n="$big" -v s="$add_s" 'BEGIN {printf "%d", n/s}') items/s)"
export SW_DIR=$tmp/big
time_calls 1000 sw-claim next >"$tmp/t.big"
k1=$(median <"$tmp/t.k1"); bg=$(median <"$tmp/t.big")
echo "sw-claim next p50, 1,000 pending:    ${k1} µs"
echo "sw-claim next p50, $big pending: ${bg} µs = $(ratio "$bg" "$k1")× (target ≤ 1.3×)"
echo "  p90: $(percentile 90 <"$tmp/t.k1") µs vs $(percentile 90 <"$tmp/t.big") µs"
rm -rf "$tmp/big"
fi

# 4. batched one-shot cycles (next -n 100 | done from stdin) against the
#    one-item loop, in the same run, at the default SW_SYNC and at off
loop_one() { # items/s of claim+done one at a time, from a bash loop
	local n=0 t0 t1 out id tok
	t0=$EPOCHREALTIME
	while out=$(sw-claim next 2>/dev/null); do
		id=${out#*\"id\":\"}; id=${id%%\"*}
		tok=${out#*\"token\":}; tok=${tok%%,*}
		sw-claim done "$id" --token "$tok" --quiet
		n=$((n + 1))
	done
	t1=$EPOCHREALTIME
	awk -v n="$n" -v a="${t0/./}" -v b="${t1/./}" 'BEGIN {printf "%d", n / ((b - a) / 1e6)}'
}
loop_batch() { # the same, 100 at a time
	local n=0 t0 t1 got
	t0=$EPOCHREALTIME
	while got=$(sw-claim next -n 100 2>/dev/null | sw-claim done | grep -c '"ok":true'); do
		n=$((n + got))
	done
	t1=$EPOCHREALTIME
	awk -v n="$n" -v a="${t0/./}" -v b="${t1/./}" 'BEGIN {printf "%d", n / ((b - a) / 1e6)}'
}
nb=${BENCH_BATCH_N:-20000}
[ "${BENCH_QUICK:-}" = 1 ] && nb=5000
for sync in normal off; do
	part batch || break
	export SW_DIR=$tmp/one-$sync SW_SYNC=$sync
	fill "$SW_DIR" 2000
	one=$(loop_one)
	export SW_DIR=$tmp/batch-$sync
	fill "$SW_DIR" "$nb"
	bat=$(loop_batch)
	# the same file operations alone (tests/bench/floor.c), the same
	# number of items: what no code on this layout goes under
	rm -rf "$tmp/floor-$sync"
	flo=$("$FLOOR" "$tmp/floor-$sync" "$nb" "$([ "$sync" = normal ] && echo 1 || echo 0)")
	rm -rf "$tmp/floor-$sync"
	[ "$sync" = normal ] && label="SW_SYNC=normal (default)" || label="SW_SYNC=off"
	echo "claim+done, $label: one at a time ${one}/s; next -n 100 | done ${bat}/s" \
	     "= $(ratio "$bat" "$one")× (targets ≥ 10,000/s and ≥ 12×)"
	echo "  its file operations alone, no exec, no JSON (floor.c): ${flo}/s;" \
	     "sw = $(ratio "$bat" "$flo")× that floor"
done
export SW_SYNC=off

# 3. claims/s across the two mounts of a real network filesystem
lab=$SW_BENCH_TOP/tests/lab/lab
if ! part mh; then
	:
elif [ -z "${SW_MH_A:-}" ] && [ "$(id -u)" = 0 ] && [ -c /dev/fuse ]; then
	# a lab of its own name, beside any other lab on this machine
	export SW_MH_DIR=$tmp/mh SW_LAB_NAME=${SW_LAB_NAME:-sw-bench-$$}
	if lines=$("$lab" up 2>"$tmp/mh-up.log"); then eval "$lines"; own_mh=1; fi
fi
if ! part mh; then
	:
elif [ -n "${SW_MH_A:-}" ]; then
	n=2000
	ws=bench-claim-$$
	SW_DIR=$SW_MH_A/$ws fill "$SW_MH_A/$ws" $n
	worker() { # mount log
		while out=$(SW_DIR=$1/$ws sw-claim next 2>/dev/null); do
			id=${out#*\"id\":\"}; id=${id%%\"*}
			tok=${out#*\"token\":}; tok=${tok%%,*}
			SW_DIR=$1/$ws sw-claim done "$id" --token "$tok" --quiet
			echo "$id" >>"$2"
		done
	}
	t0=$EPOCHREALTIME
	worker "$SW_MH_A" "$tmp/mh.a1" & worker "$SW_MH_A" "$tmp/mh.a2" &
	worker "$SW_MH_B" "$tmp/mh.b1" & worker "$SW_MH_B" "$tmp/mh.b2" &
	wait
	t1=$EPOCHREALTIME
	got=$(cat "$tmp"/mh.* | sort | uniq | wc -l); dup=$(cat "$tmp"/mh.* | sort | uniq -d | wc -l)
	secs=$(awk -v a="${t0/./}" -v b="${t1/./}" 'BEGIN {print (b-a)/1e6}')
	echo "multihost (MooseFS, 2 claimers on each of 2 mounts): $got/$n items claimed+done, $dup twice," \
	     "$(awk -v n="$got" -v s="$secs" 'BEGIN {printf "%d", n/s}') claim+done cycles/s"
	rm -rf "${SW_MH_A:?}/$ws"
	[ -n "${own_mh:-}" ] && "$lab" down >/dev/null 2>&1
else
	why="needs root and /dev/fuse, or SW_MH_A/SW_MH_B"
	[ -s "$tmp/mh-up.log" ] && why="tests/lab/lab up: $(tail -1 "$tmp/mh-up.log")"
	echo "multihost: skipped ($why)"
fi
rm -rf "$tmp"
