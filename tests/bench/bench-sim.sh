#!/usr/bin/env bash
# sw-sim: the swarm of the issue, 1,000 real agents for 60 s with 5 crashes
# (SIGKILL) and 1 stall (SIGSTOP) a second, and the figures of its report:
# items added, finished, lost and finished twice (both must be 0: the run
# fails otherwise), throughput, wait and completion percentiles, recovery
# after a kill and after a stall, faults; what the driver itself cost
# (the CPU of sw-sim's working process, sampled from /proc while it runs);
# and the inotify instances the swarm held, against the user's limit (a
# swarm must leave the user's other programs theirs).  Figures only: the
# exit status is 1 only when sw-sim found an item lost or finished twice,
# never for a time (items the swarm had not finished when its drain ran
# out are a figure: how far this shared machine kept up).
# Slow: make bench only.  BENCH_QUICK=1: 200 agents for 15 s.
set -eu
. "$(dirname "$0")/lib.sh"
tmp=$SW_BENCH_TMP/sim
rm -rf "$tmp"; mkdir -p "$tmp"
agents=${BENCH_SIM_AGENTS:-1000}
dur=${BENCH_SIM_DURATION:-60}
if [ "${BENCH_QUICK:-}" = 1 ]; then agents=200; dur=15; fi
export TMPDIR=$tmp

cmd=(sw-sim run --agents "$agents" --duration "$dur" --kill-rate 5/s --stall-rate 1/s --json)
echo "\$ ${cmd[*]}"
t0=$EPOCHREALTIME
"${cmd[@]}" >"$tmp/report" 2>"$tmp/err" &
guardian=$!
# the working process is the guardian's child; its CPU is the driver's cost
driver=
for _ in $(seq 100); do
	driver=$(pgrep -P "$guardian" -x sw-sim | head -1) && [ -n "$driver" ] && break
	sleep 0.1
done
# inotify instances in use, this user's and the swarm's (its programs are
# this tree's bin/): per user there are fs.inotify.max_user_instances
inotify_held() {
	local all=0 ours=0 fd p exe
	while read -r fd; do
		p=${fd#/proc/}; p=${p%%/*}
		all=$((all + 1))
		exe=$(readlink "/proc/$p/exe" 2>/dev/null) || continue
		[[ $exe == "$SW_BENCH_TOP"/bin/sw-* ]] && ours=$((ours + 1))
	done < <(find /proc/[0-9]*/fd -user "$(id -u)" -lname 'anon_inode:inotify' 2>/dev/null)
	echo "$all $ours"
}
cpu=0 peak_all=0 peak_ours=0 n=0
while kill -0 "$guardian" 2>/dev/null; do
	[ -n "$driver" ] && read -r c _ <"/proc/$driver/schedstat" 2>/dev/null && cpu=$c
	if [ $((n++ % 5)) = 0 ]; then
		read -r all ours < <(inotify_held)
		[ "$all" -gt "$peak_all" ] && peak_all=$all
		[ "$ours" -gt "$peak_ours" ] && peak_ours=$ours
	fi
	sleep 1
done
rc=0
wait "$guardian" || rc=$?
t1=$EPOCHREALTIME
r=$tmp/report
[ -s "$r" ] || { echo "no report (exit $rc):" >&2; cat "$tmp/err" >&2; exit 1; }
jq -r '
def ms(p): "p50 \(p.p50) ms, p95 \(p.p95) ms, p99 \(p.p99) ms, max \(p.max) ms";
"items:        added \(.items.added), finished \(.items.finished) (done \(.items.done), dead \(.items.dead)), unfinished \(.items.unfinished) when the drain ended",
"lost:         \(.items.lost)",
"finished twice: \(.items.finished_twice) (done by a stale run: \(.items.done_by_stale_run))",
"runs:         \(.runs.started) started, \(.runs.cut_short) cut short by a kill; \(.runs.items_run_again) items run again, \(.runs.items_succeeded_twice) succeeded twice (at least once)",
"throughput:   \(.throughput_per_s * 10 | floor / 10) items/s for \(.rate * 10 | floor / 10)/s offered (\(.throughput_per_s / .rate * 100 | floor)%), producer held \(.producer_held_s | floor) s of \(.duration_s | floor)",
"wait:         " + ms(.wait_ms),
"completion:   " + ms(.completion_ms),
(.recovery_ms | to_entries[] | "recovery after a \(.key): " + ms(.value) + " over \(.value.n) faults, \(.value.unrecovered) unrecovered"),
"faults:       \(.faults.kill) kills, \(.faults.stall) stalls (\(.faults_missed.kill + .faults_missed.stall) missed: victim restarting)",
"agents:       \(.agents_started) started for \(.agents) slots (\(.agents_inotify) waiting with inotify, the others polling); run \(.duration_s | floor) s, drain \(.drain_s | floor) s"
' "$r"
awk -v c="$cpu" -v a="${t0/./}" -v b="${t1/./}" 'BEGIN {
	printf "driver:       %.2f s of CPU in %.0f s (%.1f%% of one core), for %s agents\n", c / 1e9, (b - a) / 1e6,
		100 * c / 1e9 / ((b - a) / 1e6), "'"$agents"'" }'
echo "inotify:      the swarm held at most $peak_ours instances, this user's programs $peak_all, of $(cat /proc/sys/fs/inotify/max_user_instances) a user may have (sampled every 5 s)"
echo "exit:         $rc (0: nothing lost, nothing finished twice, everything finished)"
# the benchmark fails on a broken guarantee only: items left unfinished
# when the drain ran out say how far this machine, now, kept up (a time)
broken=$(jq '.items.lost + .items.finished_twice + .items.done_by_stale_run' "$r")
rm -rf "$tmp"
[ "$rc" = 0 ] || [ "$rc" = 1 ] || exit "$rc"
[ "$broken" = 0 ] || { echo "bench-sim: $broken items lost or finished twice" >&2; exit 1; }
