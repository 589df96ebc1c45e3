#!/usr/bin/env bats
# sw-agent under stress: many agents, failing and slow commands, agents
# SIGKILLed at random, hostile payloads.  Nothing may be lost or done twice.
load ../helper
load ../proc

setup() {
	export SW_POLL=200ms SW_BACKOFF_BASE=10ms SW_CLOCK_SKEW=300ms
	out=$BATS_TEST_TMPDIR/out
	mkdir -p "$out"
}

# fill N: items whose payload is the number 1..N
fill() { seq 1 "$1" | sw-claim add --lines --quiet "${@:2}"; }
stat_of() { sw-claim stats | jq -r ".$1"; }

# wait_settled TOTAL SECS: until done+dead reaches TOTAL (or time runs out)
wait_settled() {
	local i
	for ((i = 0; i < $2 * 5; i++)); do
		[ "$(sw-claim stats | jq '.done + .dead')" -ge "$1" ] && return 0
		sleep 0.2
	done
	return 1
}

# every id reported done by the agents, at most once each
assert_none_done_twice() {
	local dup
	dup=$(cat "$out"/*.out | jq -r 'select(.state == "done") | .id' | sort | uniq -d | head -3)
	[ -z "$dup" ] || { echo "done twice: $dup"; return 1; }
}

@test "4 agents x -j2, 5,000 items failing, retrying and outliving their ttl: each ends done or dead per its attempts" {
	# a 3 s lease: one renewal late under this load (8 commands at once,
	# on a loaded machine) must not lose a claim that is still renewed
	cat >"$BATS_TEST_TMPDIR/work" <<'EOF'
#!/bin/sh
n=$(cat)
[ $((n % 13)) = 0 ] && { echo "always $n" >&2; exit 1; }
[ $((n % 5)) = 0 ] && [ "$SW_ATTEMPT" -lt 3 ] && { echo "flaky $n" >&2; exit 1; }
[ $((n % 250)) = 0 ] && sleep 4       # past the 3s lease and the skew margin
echo "$n"
EOF
	chmod +x "$BATS_TEST_TMPDIR/work"
	fill 5000 --max-attempts 3
	for i in 1 2 3 4; do
		sw-agent run --id a$i -j 2 --ttl 3s --idle-exit 3s -- "$BATS_TEST_TMPDIR/work" >"$out/a$i.out" 2>"$out/a$i.err" &
	done
	wait
	run sw-claim stats
	assert_output '{"queue":"default","pending":0,"delayed":0,"blocked":0,"claimed":0,"done":4616,"dead":384,"cancelled":0,"in_flight":0,"damaged":0}'
	# dead: exactly the always-failing ones, after 3 attempts
	run bash -c "sw-claim list --state dead | jq -r '[.payload, .attempt] | @tsv' | sort -n | md5sum"
	[ "$output" = "$(seq 13 13 5000 | awk '{print $1 "\t3"}' | md5sum)" ]
	# done: the flaky ones on their third attempt, the rest on the first
	run bash -c "sw-claim list --state done | jq -r 'select((.payload|tonumber) % 5 == 0) | .attempt' | sort -u"
	assert_output 3
	run bash -c "sw-claim list --state done | jq -r 'select((.payload|tonumber) % 5 != 0) | .attempt' | sort -u"
	assert_output 1
	run bash -c "sw-claim list --state done | jq -r 'select((.payload|tonumber) != .result) | .id' | head -1"
	assert_output ""
	assert_none_done_twice
	[ "$(cat "$out"/*.out | jq -r 'select(.state == "done") | .id' | wc -l)" = 4616 ]
	! grep -q "lost\|expired" "$out"/*.err
}

# registered_busy N: N agents are registered, and claims are held
registered_busy() {
	sw-agent list | jq -se --argjson n "$1" 'length == $n and (map(.claims | length) | add) > 0' >/dev/null
}

# the worker of the agent started as PID (the guardian's child): a SIGKILL
# of it is a crash, with claims and transitions left behind
worker() { pgrep -P "$1" -x sw-agent | head -1; }

@test "8 agents on 20,000 items, one crashing (SIGKILL) every 200 ms and restarted: 0 lost, 0 done twice" {
	n=${CHAOS_ITEMS:-20000}
	fill "$n" --max-attempts 1000
	start() { # slot
		sw-agent run --id k$1.$RANDOM --ttl 1s -- true >>"$out/k$1.out" 2>>"$out/k$1.err" &
		pids[$1]=$!
	}
	pids=()
	for i in 0 1 2 3 4 5 6 7; do start $i; done
	kills=0
	for ((t = 0; t < 900; t++)); do
		[ "$(sw-claim stats | jq '.done')" -ge "$n" ] && break
		sleep 0.2
		i=$((RANDOM % 8))
		w=$(worker "${pids[$i]}")
		[ -n "$w" ] && kill -KILL "$w" 2>/dev/null && kills=$((kills + 1))
		wait "${pids[$i]}" 2>/dev/null || true
		start $i
	done
	echo "# $kills agents killed" >&3
	# what the crashed agents left behind (claims whose lease runs out,
	# transitions cut in half) the living ones recover: no reap needed
	wait_settled "$n" 30 || true
	kill -TERM "${pids[@]}"
	wait
	run sw-claim stats
	assert_output "{\"queue\":\"default\",\"pending\":0,\"delayed\":0,\"blocked\":0,\"claimed\":0,\"done\":$n,\"dead\":0,\"cancelled\":0,\"in_flight\":0,\"damaged\":0}"
	assert_none_done_twice
	[ "$kills" -gt 5 ]
}

@test "4 agents -j 2 --idle-exit, one crashing every 300 ms: they leave only when every item is done, nothing in stage/" {
	fill 1500 --max-attempts 1000
	start() {
		sw-agent run --id i$1.$RANDOM -j 2 --ttl 2s --idle-exit 4s -- true >>"$out/i$1.out" 2>>"$out/i$1.err" &
		pids[$1]=$!
	}
	pids=()
	for i in 0 1 2 3; do start $i; done
	for ((t = 0; t < 40; t++)); do
		sleep 0.3
		i=$((RANDOM % 4))
		w=$(worker "${pids[$i]}")
		# gone already (idle: every item done) is no failure
		if [ -n "$w" ]; then kill -KILL "$w" 2>/dev/null || true; fi
		wait "${pids[$i]}" 2>/dev/null || true
		start $i
	done
	wait   # they exit by themselves, once idle
	run sw-claim stats
	assert_output '{"queue":"default","pending":0,"delayed":0,"blocked":0,"claimed":0,"done":1500,"dead":0,"cancelled":0,"in_flight":0,"damaged":0}'
	[ -z "$(ls "$SW_DIR/queues/default/stage")" ]
	assert_none_done_twice
}

@test "8 agents, random ones stopped (SIGSTOP) for 0-${CHAOS_STOP_MAX:-6} s and resumed, others crashing: 0 lost, 0 done twice" {
	n=${CHAOS_ITEMS_STOP:-3000}
	max=${CHAOS_STOP_MAX:-6}
	fill "$n" --max-attempts 1000
	start() {
		sw-agent run --id s$1.$RANDOM -j 2 --ttl 1s -- sh -c 'sleep 0.02; cat' >>"$out/s$1.out" 2>>"$out/s$1.err" &
		pids[$1]=$!
	}
	pids=()
	for i in 0 1 2 3 4 5 6 7; do start $i; done
	stops=0 kills=0
	for ((t = 0; t < 1500; t++)); do
		[ "$(sw-claim stats | jq '.done')" -ge "$n" ] && break
		sleep 0.2
		i=$((RANDOM % 8))
		w=$(worker "${pids[$i]}")
		[ -n "$w" ] || continue
		if ((RANDOM % 4 == 0)); then
			kill -KILL "$w" 2>/dev/null && kills=$((kills + 1))
			wait "${pids[$i]}" 2>/dev/null || true
			start $i
		else
			# a stall: a hung filesystem, a paused VM; it goes on later
			kill -STOP "$w" 2>/dev/null && stops=$((stops + 1))
			( sleep "$((RANDOM % (max * 10 + 1)))e-1"; kill -CONT "$w" 2>/dev/null ) &
		fi
	done
	echo "# $stops agents stopped, $kills killed" >&3
	sleep "$max"   # every stopped one has gone on again
	wait_settled "$n" 30 || true
	kill -TERM "${pids[@]}"
	wait
	run sw-claim stats
	assert_output "{\"queue\":\"default\",\"pending\":0,\"delayed\":0,\"blocked\":0,\"claimed\":0,\"done\":$n,\"dead\":0,\"cancelled\":0,\"in_flight\":0,\"damaged\":0}"
	assert_none_done_twice
	# the results are the payloads: nobody's late result replaced another's
	[ -z "$(sw-claim list --state done | jq -r 'select((.payload|tostring) != (.result|tostring)) | .id' | head -1)" ]
	[ "$stops" -gt 5 ]
}

@test "SIGTERM to busy agents drains them: items finish, exit 0, nothing left claimed" {
	fill 40
	for i in 1 2 3 4; do
		sw-agent run --id d$i -j 2 -- sh -c 'sleep 0.5; cat' >"$out/d$i.out" 2>"$out/d$i.err" &
		pids+=($!)
	done
	# signalled once all four are registered (their signals are in hand
	# from before that) and work is under way
	wait_until 20 registered_busy 4
	kill -TERM "${pids[@]}"
	for p in "${pids[@]}"; do wait "$p"; done    # each exits 0, or the test fails
	[ "$(stat_of claimed)" = 0 ]
	[ "$(( $(stat_of done) + $(stat_of pending) ))" = 40 ]
	[ "$(cat "$out"/*.out | grep -c '"state":"done"')" = "$(stat_of done)" ]
	run sw-agent list
	assert_output ""
}

@test "hostile payloads and 1 MB of binary-safe text reach stdin byte for byte, and nothing else happens" {
	export HOME=$BATS_TEST_TMPDIR/home SW_MAX_ITEM_BYTES=8388608
	mkdir -p "$HOME" && touch "$HOME/canary"
	rm -f /tmp/pwned
	printf '%s' '$(touch /tmp/pwned)' >"$BATS_TEST_TMPDIR/p1"
	printf '%s' '; rm -rf ~' >"$BATS_TEST_TMPDIR/p2"
	printf '%s' '`touch /tmp/pwned` && rm -rf ~ || $(rm -rf ~)' >"$BATS_TEST_TMPDIR/p3"
	# every byte 1..127 (controls, quotes, backslashes) and multi-byte
	# UTF-8, repeated to 1 MB
	awk 'BEGIN { for (i = 1; i < 128; i++) s = s sprintf("%c", i); s = s "é€😀\n";
		while (length(t) < 1000000) t = t s; printf "%s", substr(t, 1, 1000000) }' >"$BATS_TEST_TMPDIR/p4"
	[ "$(wc -c <"$BATS_TEST_TMPDIR/p4")" -ge 1000000 ]
	for i in 1 2 3 4; do
		jq -Rsc --arg id "p$i" '{id: $id, payload: .}' <"$BATS_TEST_TMPDIR/p$i" | sw-claim add --quiet
	done
	sw-agent run -j 2 --idle-exit 0 --quiet -- sh -c 'cat >"$0/got.$SW_ITEM_ID"' "$BATS_TEST_TMPDIR"
	for i in 1 2 3 4; do
		cmp "$BATS_TEST_TMPDIR/p$i" "$BATS_TEST_TMPDIR/got.p$i"
	done
	[ ! -e /tmp/pwned ]
	[ -e "$HOME/canary" ]
	[ "$(stat_of done)" = 4 ]
}

@test "4 agents --batch 50 -j 2, one crashing (SIGKILL) every 300 ms and restarted: 0 lost, 0 done twice, only failed items retried" {
	n=${CHAOS_ITEMS_BATCH:-4000}
	fill "$n" --max-attempts 1000
	# every 7th item says it failed on its first attempt; the rest are done
	# with their payload as the result
	start() {
		sw-agent run --id b$1.$RANDOM -j 2 --batch 50 --ttl 1s -- sh -c 'sleep 0.05; jq -c "
			if (.payload | tonumber) % 7 == 0 and .attempt == 1 then {id, ok: false, error: \"seventh\"}
			else {id, ok: true, result: .payload} end"' >>"$out/b$1.out" 2>>"$out/b$1.err" &
		pids[$1]=$!
	}
	pids=()
	for i in 0 1 2 3; do start $i; done
	kills=0
	for ((t = 0; t < 100; t++)); do
		[ "$(stat_of done)" -ge "$n" ] && break
		sleep 0.3
		i=$((RANDOM % 4))
		w=$(worker "${pids[$i]}")
		[ -n "$w" ] && kill -KILL "$w" 2>/dev/null && kills=$((kills + 1))
		wait "${pids[$i]}" 2>/dev/null || true
		start $i
	done
	echo "# $kills agents killed" >&3
	wait_settled "$n" 30 || true
	kill -TERM "${pids[@]}"
	wait
	run sw-claim stats
	assert_output "{\"queue\":\"default\",\"pending\":0,\"delayed\":0,\"blocked\":0,\"claimed\":0,\"done\":$n,\"dead\":0,\"cancelled\":0,\"in_flight\":0,\"damaged\":0}"
	assert_none_done_twice
	[ -z "$(sw-claim list --state done | jq -r 'select(.payload != .result) | .id' | head -1)" ]
	# a seventh item was done on a later attempt than the one that failed
	[ -z "$(sw-claim list --state done | jq -r 'select((.payload | tonumber) % 7 == 0 and .attempt < 2) | .id' | head -1)" ]
	[ "$kills" -gt 3 ]
}
