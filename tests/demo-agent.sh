#!/usr/bin/env bash
# Part of `make demo`: three sw-agent processes empty a queue with a live
# progress line; one is SIGKILLed half-way and its items come back to the
# others.  Then two batched agents with --affinity bill keyed orders, each
# keeping its own customers.  Takes about fifteen seconds.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$top/bin:$PATH" SW_DIR=$(mktemp -d /tmp/sw-demo-agent.XXXXXX) SW_SYNC=off
# short leases and a small skew margin, so the killed agent's items come
# back within the demo
export SW_CLOCK_SKEW=500ms SW_POLL=200ms SW_BACKOFF_BASE=100ms
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$SW_DIR"' EXIT
say() { printf '\n\033[1m%s\033[0m\n' "$*"; }

say "1. Queue 150 render jobs:"
echo '$ seq 1 150 | sed "s/.*/frame-&/" | sw-claim add -q render --lines --quiet'
seq 1 150 | sed 's/.*/frame-&/' | sw-claim add -q render --lines --quiet

say "2. Three agents, two jobs each; the command gets the payload on stdin, one in ten fails once:"
cat >"$SW_DIR/render" <<'EOF'
#!/bin/bash
frame=$(cat)
sleep 0.0$((RANDOM % 9 + 1))
if [ "$SW_ATTEMPT" = 1 ] && [ $(( ${frame#frame-} % 10 )) = 0 ]; then
	echo "GPU hiccup on $frame" >&2; exit 1
fi
echo "{\"frame\":\"$frame\",\"by\":\"$SW_AGENT_ID\"}"
EOF
chmod +x "$SW_DIR/render"
echo '$ sw-agent run -q render -j 2 --ttl 1s --idle-exit 2s --id agent-N -- ./render   # N = 1, 2, 3'
# agent-1's live status line (sw-agent draws it when stderr is a terminal)
# is the one shown; the others keep theirs in a file, so that three lines
# do not fight over one row
[ -t 2 ] && echo "  (the line below is agent-1's own status line)"
for i in 1 2 3; do
	if [ "$i" = 1 ]; then err=/dev/stderr; else err=$SW_DIR/agent-$i.err; fi
	sw-agent run -q render -j 2 --ttl 1s --idle-exit 2s --id agent-$i -- "$SW_DIR/render" \
		>"$SW_DIR/agent-$i.out" 2>"$err" &
	pids+=($!)
done

line() {
	sw-claim stats -q render | jq -r '"  pending \(.pending + .delayed)  running \(.claimed)  done \(.done)  dead \(.dead)"'
}
killed=0 t0=$EPOCHREALTIME
while :; do
	live=0
	for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && live=$((live + 1)); done
	[ "$live" = 0 ] && break
	if [ "$killed" = 0 ] && [ "$(sw-claim stats -q render | jq .done)" -ge 50 ]; then
		kill -KILL "${pids[2]}"; killed=1
		wait "${pids[2]}" 2>/dev/null || true
		printf '\r\033[K  >> agent-3 SIGKILLed with items in hand; their leases run out and the others take them\n' >&2
	fi
	sleep 0.1
done
t1=$EPOCHREALTIME
line

say "3. What happened ($(awk -v a="${t0/./}" -v b="${t1/./}" 'BEGIN {printf "%.1f", (b-a)/1e6}') s):"
echo "items done per agent:"
sw-claim list -q render --state done | jq -r .result.by | sort | uniq -c
echo "items done on a later attempt (failed once, or taken over from agent-3): $(sw-claim list -q render --state done | jq -s 'map(select(.attempt > 1)) | length')"
echo "lost: $((150 - $(sw-claim stats -q render | jq '.done + .dead')))"
echo "done twice: $(cat "$SW_DIR"/agent-*.out | jq -r 'select(.state == "done") | .id' | sort | uniq -d | wc -l) (each agent prints a JSON line per item; a claim's token lets only one finish it)"
echo '$ sw-agent list --dead --table      # the killed agent left its record behind'
sw-agent list --dead --table
echo '$ sw-agent reap'
sw-agent reap | jq -c 'select(.id) | {id, reaped, claims_freed}'

say "4. Batches and keys: 1,000 orders of 40 customers, two agents taking up to 100 a run, each keeping its own customers (--affinity):"
echo '$ seq 1 1000 | jq -c "{payload: ., key: \"customer-\(. % 40)\"}" | sw-claim add -q orders --quiet'
seq 1 1000 | jq -c '{payload: ., key: "customer-\(. % 40)"}' | sw-claim add -q orders --quiet
# the command gets its batch as JSON Lines and says who billed which key
echo '$ sw-agent run -q orders --id biller-N --batch 100 --affinity --idle-exit 1s -- jq -c "{id, ok: true, result: {by: env.SW_AGENT_ID, key}}"'
for i in 1 2; do sw-agent register -q orders --id biller-$i >/dev/null; done   # both in the ring from the start
t0=$EPOCHREALTIME
bpids=()
for i in 1 2; do
	sw-agent run -q orders --id biller-$i --batch 100 --affinity --idle-exit 1s --quiet -- \
		jq -c '{id, ok: true, result: {by: env.SW_AGENT_ID, key}}' &
	bpids+=($!)
done
pids+=("${bpids[@]}")
wait "${bpids[@]}"
t1=$EPOCHREALTIME
sw-claim list -q orders --state done | jq -r '"\(.result.key) \(.result.by)"' | sort -u >"$SW_DIR/owners"
echo "done: $(sw-claim stats -q orders | jq .done) of 1000 in $(awk -v a="${t0/./}" -v b="${t1/./}" 'BEGIN {printf "%.1f", (b-a)/1e6}') s" \
     "(the last second the agents' --idle-exit); customers billed by one agent only:" \
     "$(cut -d' ' -f1 "$SW_DIR/owners" | sort | uniq -u | wc -l) of 40"
echo '$ sw-shard assign --nodes biller-1,biller-2 <customers | sort | uniq -c   # the ring the agents claimed by'
seq 0 39 | sed 's/^/customer-/' | sw-shard assign --nodes biller-1,biller-2 --tsv | cut -f2 | sort | uniq -c
