#!/usr/bin/env bash
# sw-agent: throughput of `run -j2 -- true` (at the default SW_SYNC, and
# off beside it) against xargs -P2 and GNU parallel -j2 on the same
# machine in the same run; of `run -j2 --batch 100` at the default SW_SYNC
# and off; across the two multihost mounts (SW_MH_A/SW_MH_B set: two
# agents on each, --batch 100); an idle agent's RSS; the CPU that 1,000
# idle agents on one workspace use together.
# BENCH_QUICK=1: 5,000 items and 200 idle agents (GNU parallel, at ~5 ms
# a job, then runs a tenth of them; its rate is what is compared).
# BENCH_PART=run, batch, mh or idle runs only that part.
set -eu
. "$(dirname "$0")/lib.sh"
tmp=$SW_BENCH_TMP/agent
rm -rf "$tmp"; mkdir -p "$tmp"
export SW_SYNC=off
n=${BENCH_ITEMS:-20000}
idle=${BENCH_IDLE_AGENTS:-1000}
# longer than two polls (15-30 s each) and heartbeats (10 s)
window=${BENCH_IDLE_WINDOW:-65}
npar=$n
if [ "${BENCH_QUICK:-}" = 1 ]; then n=5000; npar=500; idle=200; window=10; fi

secs() { awk -v a="${1/./}" -v b="${2/./}" 'BEGIN {printf "%.3f", (b-a)/1e6}'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN {printf "%d", n/s}'; }

# 1. throughput, in rounds that alternate the three, so that the noise of
#    this shared machine falls on all of them alike
rounds=${BENCH_ROUNDS:-5}
per=$((n / rounds)); ppar=$((npar / rounds))
n=$((per * rounds)); npar=$((ppar * rounds))
agent_s=0 off_s=0 xargs_s=0 par_s=0
part() { [ -z "${BENCH_PART:-}" ] || [ "$BENCH_PART" = "$1" ]; }
part run || rounds=0
add() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a + b}'; }
for ((r = 0; r < rounds; r++)); do
	export SW_DIR=$tmp/ws
	seq 1 "$per" | sw-claim add --lines --quiet
	t0=$EPOCHREALTIME
	env -u SW_SYNC sw-agent run -j 2 --quiet --idle-exit 0 -- true
	t1=$EPOCHREALTIME
	agent_s=$(add "$agent_s" "$(secs "$t0" "$t1")")
	export SW_DIR=$tmp/ws-off
	seq 1 "$per" | sw-claim add --lines --quiet
	t0=$EPOCHREALTIME
	SW_SYNC=off sw-agent run -j 2 --quiet --idle-exit 0 -- true
	t1=$EPOCHREALTIME
	off_s=$(add "$off_s" "$(secs "$t0" "$t1")")
	t0=$EPOCHREALTIME
	seq 1 "$per" | xargs -P2 -n1 true
	t1=$EPOCHREALTIME
	xargs_s=$(add "$xargs_s" "$(secs "$t0" "$t1")")
	t0=$EPOCHREALTIME
	seq 1 "$ppar" | parallel -j2 true
	t1=$EPOCHREALTIME
	par_s=$(add "$par_s" "$(secs "$t0" "$t1")")
done
if [ "$rounds" -gt 0 ]; then
for ws in ws ws-off; do
	done_n=$(SW_DIR=$tmp/$ws sw-claim stats | jq .done)
	[ "$done_n" = "$n" ] || { echo "sw-agent did $done_n of $n items" >&2; exit 1; }
done
ra=$(rate "$n" "$agent_s"); ro=$(rate "$n" "$off_s"); rx=$(rate "$n" "$xargs_s"); rp=$(rate "$npar" "$par_s")
echo "sw-agent run -j2 -- true:  $n items in ${agent_s} s = $ra items/s (default SW_SYNC)"
echo "                           $n items in ${off_s} s = $ro items/s (SW_SYNC=off)"
echo "xargs -P2 -n1 true:        $n items in ${xargs_s} s = $rx items/s"
echo "parallel -j2 true:         $npar items in ${par_s} s = $rp items/s"
echo "sw-agent / xargs    = $(ratio "$ra" "$rx")× default SW_SYNC (target ≥ 0.8×), $(ratio "$ro" "$rx")× off"
echo "sw-agent / parallel = $(ratio "$ra" "$rp")× default SW_SYNC (target ≥ 2×)"
fi

# 2. batches: `run -j 2 --batch 100` with a command that reads its batch
#    and exits 0, at the default SW_SYNC and with off beside it
nb=${BENCH_BATCH_ITEMS:-50000}
[ "${BENCH_QUICK:-}" = 1 ] && nb=20000
if part batch; then
	for sync in default off; do
		export SW_DIR=$tmp/batch-$sync
		seq 1 "$nb" | sw-claim add --lines --quiet
		t0=$EPOCHREALTIME
		if [ "$sync" = default ]; then
			env -u SW_SYNC sw-agent run -j 2 --batch 100 --quiet --idle-exit 0 -- sh -c 'cat >/dev/null'
		else
			SW_SYNC=off sw-agent run -j 2 --batch 100 --quiet --idle-exit 0 -- sh -c 'cat >/dev/null'
		fi
		t1=$EPOCHREALTIME
		done_n=$(sw-claim stats | jq .done)
		[ "$done_n" = "$nb" ] || { echo "sw-agent --batch did $done_n of $nb items" >&2; exit 1; }
		echo "sw-agent run -j2 --batch 100 (SW_SYNC=$sync): $nb items in $(secs "$t0" "$t1") s =" \
			"$(rate "$nb" "$(secs "$t0" "$t1")") items/s (target ≥ 10,000/s)"
	done
fi

# 3. across the two mounts of a real network filesystem: two agents on
#    each, --batch 100; every item finished once (the agents' lines say
#    which they finished)
nm=${BENCH_MH_ITEMS:-10000}
[ "${BENCH_QUICK:-}" = 1 ] && nm=4000
if part mh && [ -n "${SW_MH_A:-}" ] && [ -n "${SW_MH_B:-}" ]; then
	ws=bench-agent-$$
	SW_DIR=$SW_MH_A/$ws sw-claim add --lines --quiet < <(seq 1 "$nm")
	t0=$EPOCHREALTIME
	for m in A1 A2 B1 B2; do
		mnt=$SW_MH_A; [ "${m:0:1}" = B ] && mnt=$SW_MH_B
		env -u SW_SYNC SW_DIR=$mnt/$ws sw-agent run -j 2 --batch 100 --idle-exit 2 \
			-- sh -c 'cat >/dev/null' >"$tmp/mh.$m" &
	done
	# the time to the last done (the agents then wait --idle-exit 2 s)
	while [ "$(SW_DIR=$SW_MH_A/$ws sw-claim stats | jq '.done + .dead')" -lt "$nm" ] &&
	      [ -n "$(jobs -r)" ]; do
		sleep 0.2
	done
	t1=$EPOCHREALTIME
	wait
	s_mh=$(secs "$t0" "$t1")
	got=$(jq -r 'select(.state == "done") | .id' "$tmp"/mh.* | sort -u | wc -l)
	dup=$(jq -r 'select(.state == "done") | .id' "$tmp"/mh.* | sort | uniq -d | wc -l)
	echo "multihost (MooseFS, 2 agents -j2 --batch 100 on each of 2 mounts, default SW_SYNC):" \
	     "$got/$nm items done, $dup finished twice, $(rate "$got" "$s_mh") items/s (target ≥ 2,000/s)"
	rm -rf "${SW_MH_A:?}/$ws"
elif part mh; then
	echo "multihost: skipped (set SW_MH_A/SW_MH_B: tests/lab/lab up)"
fi

# 4. idle agents: RSS of one, CPU of many
part idle || { rm -rf "$tmp"; exit 0; }
export SW_DIR=$tmp/idle
unset SW_POLL
sw-claim stats >/dev/null 2>&1 || true
pids=()
for ((i = 0; i < idle; i++)); do
	sw-agent run --quiet -q idle -- true >/dev/null 2>&1 &
	pids+=($!)
done
sleep 3
rss=$(awk '/^VmRSS:/ {print $2}' "/proc/${pids[0]}/status")
echo "idle agent RSS:            ${rss} kB (target ≤ 4096 kB)"
cpu_ns() { # CPU time of the agents so far, in ns (schedstat is exact,
	   # where utime/stime are sampled in 10 ms ticks)
	local p s=0 a
	for p in "${pids[@]}"; do
		read -r a _ <"/proc/$p/schedstat" 2>/dev/null || continue
		s=$((s + a))
	done
	echo "$s"
}
c0=$(cpu_ns); t0=$EPOCHREALTIME
sleep "$window"
c1=$(cpu_ns); t1=$EPOCHREALTIME
echo "$idle idle agents:          $(awk -v c=$((c1 - c0)) -v s="$(secs "$t0" "$t1")" \
	'BEGIN {printf "%.3f", 100 * c / 1e9 / s}')% of one core together over ${window} s (target < 2%)"
echo "                           (alive per the registry: $(sw-agent list --alive | grep -c .))"
kill -TERM "${pids[@]}" 2>/dev/null
wait
rm -rf "$tmp"
