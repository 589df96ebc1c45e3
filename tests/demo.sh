#!/usr/bin/env bash
# make demo: a queue filled, emptied by concurrent bash workers, and what
# happened, in a few seconds.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$top/bin:$PATH" SW_DIR=$(mktemp -d /tmp/sw-demo.XXXXXX) SW_SYNC=off
trap 'rm -rf "$SW_DIR"' EXIT
say() { printf '\n\033[1m%s\033[0m\n' "$*"; }

say "1. Add 200 items to queue 'thumbs' (one line each, as a script would):"
echo '$ seq 1 200 | sed "s/.*/photo-&.jpg/" | sw-claim add -q thumbs --lines --quiet'
seq 1 200 | sed 's/.*/photo-&.jpg/' | sw-claim add -q thumbs --lines --quiet
echo '$ sw-claim add -q thumbs -p 0 --id urgent-1 '"'"'"cover.jpg"'"'"'   # priority 0 goes first'
sw-claim add -q thumbs -p 0 --id urgent-1 '"cover.jpg"'
sw-claim stats -q thumbs

say "2. Four workers claim and finish items concurrently; each item is handed out once:"
cat <<'EOT'
worker() {
  while item=$(sw-claim next -q thumbs 2>/dev/null); do
    id=$(jq -r .id <<<"$item"); tok=$(jq -r .token <<<"$item")
    if [ $((RANDOM % 10)) = 0 ]; then      # one in ten fails, and is retried
      sw-claim fail -q thumbs "$id" --token "$tok" --error "disk hiccup" --retry-in 0 --quiet
    else
      sw-claim done -q thumbs "$id" --token "$tok" --result "{\"by\":\"$1\"}" --quiet
    fi
  done
}
worker w1 & worker w2 & worker w3 & worker w4 & wait
EOT
worker() {
	while item=$(sw-claim next -q thumbs 2>/dev/null); do
		id=$(jq -r .id <<<"$item"); tok=$(jq -r .token <<<"$item")
		if [ $((RANDOM % 10)) = 0 ]; then
			sw-claim fail -q thumbs "$id" --token "$tok" --error "disk hiccup" --retry-in 0 --quiet
		else
			sw-claim done -q thumbs "$id" --token "$tok" --result "{\"by\":\"$1\"}" --quiet
		fi
	done
}
t0=$EPOCHREALTIME
worker w1 & worker w2 & worker w3 & worker w4 & wait
t1=$EPOCHREALTIME

say "3. What happened:"
sw-claim stats -q thumbs
echo "items done per worker:"
sw-claim list -q thumbs --state done | jq -r .result.by | sort | uniq -c
echo "items that needed more than one attempt: $(sw-claim list -q thumbs --state done | jq -s 'map(select(.attempt > 1)) | length')"
echo "first item done (priority 0 went first): $(sw-claim list -q thumbs --state done | jq -s -r 'sort_by(.done_at_unix_ns) | .[0].payload')"
ndone=$(sw-claim list -q thumbs --state done | jq -r .id | sort -u | wc -l)
[ "$ndone" = 201 ] && [ "$(sw-claim stats -q thumbs | jq '.done')" = 201 ] ||
	{ echo "expected 201 items done once each, found $ndone" >&2; exit 1; }
awk -v a="${t0/./}" -v b="${t1/./}" 'BEGIN {printf "201 items, 4 workers, %.2f s — each item done exactly once.\n", (b-a)/1e6}'
say "4. A rate limit and a circuit breaker, shared by every process (and host) of the workspace:"
echo '$ for i in $(seq 20); do sw-limit take api --rate 10/s --burst 5 --wait --quiet & done; wait'
t0=$EPOCHREALTIME
for i in $(seq 20); do sw-limit take api --rate 10/s --burst 5 --wait --quiet & done; wait
t1=$EPOCHREALTIME
awk -v a="${t0/./}" -v b="${t1/./}" 'BEGIN {printf "20 grants in %.2f s: 5 at once, then one every 100 ms.\n", (b-a)/1e6}'
echo '$ sw-breaker run pay --failures 3 --cooldown 1m -- false   # three times: the third opens it'
for i in 1 2 3; do sw-breaker run pay --failures 3 --cooldown 1m --quiet -- false || true; done
echo '$ sw-breaker run pay --failures 3 --cooldown 1m -- echo "never printed"'
sw-breaker run pay --failures 3 --cooldown 1m -- echo "never printed" || echo "exit $?: open, the command did not run"
sw-breaker show pay | jq -c '{name, state, trips, open_until}'
[ -x "$top/tests/demo-agent.sh" ] && "$top/tests/demo-agent.sh"

say "Last: a simulated swarm for 20 seconds: 20 real agents, one crashing (SIGKILL) every second, one stalled (SIGSTOP) every two:"
echo '$ sw-sim run --agents 20 --duration 20 --kill-rate 1/s --stall-rate 0.5/s --stall-time 4s --ttl 2s'
sim=$(mktemp /tmp/sw-demo-sim.XXXXXX)
trap 'rm -rf "$SW_DIR" "$sim"' EXIT
rc=0
sw-sim run --agents 20 --duration 20 --kill-rate 1/s --stall-rate 0.5/s --stall-time 4s --ttl 2s --json >"$sim" || rc=$?
jq -c '{items, runs, throughput_per_s, wait_ms, completion_ms, recovery_ms, faults}' "$sim"
jq -r '"added \(.items.added), finished \(.items.finished), lost \(.items.lost), finished twice \(.items.finished_twice); " +
	"\(.faults.kill) agents killed, \(.faults.stall) stalled, \(.runs.items_run_again) items run again (at least once)."' "$sim"
[ "$rc" = 0 ] || { echo "the simulated swarm failed its check (exit $rc)" >&2; exit 1; }
exit 0
