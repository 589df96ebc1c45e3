#!/usr/bin/env bats
# sw-breaker on one host: every verb, the exit codes of DESIGN.md §4, the
# bad inputs of the issue (one line, 64 or 65, nothing written), the
# documented transitions (closed -> open past the threshold, open ->
# half-open after the cooldown, exactly K probes, K successes -> closed, a
# failure -> open with the cooldown doubled and capped), no command run
# while open, racing recorders that lose no outcome, --timeout and
# --fail-on, a stalled or killed prober, damaged versions, spans and the
# sw-metrics gauges.
load helper
load proc
load flow
load faults

teardown() { untrack_all; }


state_is() { [ "$(sw-breaker show "$1" | jq -r .state)" = "$2" ]; }
probe_taken() { sw-breaker show "$1" | jq -e '.probes | length == 1' >/dev/null; }
# refusals DIR N: N of the exit statuses written to DIR/rc.* are 75
refusals() { [ "$(cat "$1"/rc.* 2>/dev/null | grep -cx 75)" -eq "$2" ]; }

# a policy quick enough for tests
P=(--failures 3 --window 10s --cooldown 400ms --probes 2)

@test "--help prints usage naming every verb to stdout, exit 0; -V the version" {
	run --separate-stderr sw-breaker --help
	[ "$status" -eq 0 ]
	for v in run check record show list reset trip; do
		[[ $output == *"  $v "* ]] || { echo "missing $v"; return 1; }
	done
	run sw-breaker -V
	[[ $output == "sw-breaker "[0-9]* ]]
}

@test "usage errors and bad policies: 64, one line, nothing written" {
	refused 64 sw-breaker
	refused 64 sw-breaker frobnicate x
	refused 64 sw-breaker run x
	refused 64 sw-breaker record x
	refused 64 sw-breaker record x --ok --fail
	refused 64 sw-breaker check x --timeout 1s
	refused 64 sw-breaker run x --failures 0 -- true
	refused 64 sw-breaker run x --failures 10001 -- true
	refused 64 sw-breaker run x --failures -1 -- true
	refused 64 sw-breaker run x --ratio 0 -- true
	refused 64 sw-breaker run x --ratio 1.5 -- true
	refused 64 sw-breaker run x --ratio 1e-1 -- true
	refused 64 sw-breaker run x --failures 3 --ratio 0.5 -- true
	refused 64 sw-breaker run x --min-calls 5 -- true
	refused 64 sw-breaker run x --probes 0 -- true
	refused 64 sw-breaker run x --probes 101 -- true
	refused 64 sw-breaker run x --cooldown 10s --max-cooldown 5s -- true
	refused 64 sw-breaker run x --window 0 -- true
	refused 64 sw-breaker run x --timeout 0 -- true
	refused 64 sw-breaker run x --ttl 0 -- true
	refused 64 sw-breaker run x --fail-on 0 -- true
	refused 64 sw-breaker run x --fail-on 256 -- true
	refused 64 sw-breaker run x --fail-on 5-2 -- true
	refused 64 sw-breaker run x --fail-on a -- true
	refused 64 sw-breaker list extra
	[ -z "$(ls -A "$SW_DIR/breakers" 2>/dev/null)" ]
}

@test "bad names and tokens: 65, one line, nothing written" {
	local n
	for n in a/b .. ../x .hidden "$(printf 'a\001b')" "$(printf 'x%.0s' {1..201})"; do
		refused 65 sw-breaker run "$n" -- true || { echo "name $n"; return 1; }
		refused 65 sw-breaker check "$n" || { echo "name $n"; return 1; }
	done
	refused 65 sw-breaker record ok --ok --token 0
	refused 65 sw-breaker record ok --ok --token x
	[ -z "$(ls -A "$SW_DIR/breakers" 2>/dev/null)" ]
}

@test "closed: run passes the command's status; the third failure opens it; open: 75 at once, COMMAND not run" {
	local p=(--failures 3 --window 10s --cooldown 10s)   # open for the whole test, however slow
	run sw-breaker run pay "${p[@]}" -- sh -c 'exit 3'
	[ "$status" -eq 3 ]
	run sw-breaker run pay "${p[@]}" -- true
	[ "$status" -eq 0 ]
	state_is pay closed
	sw-breaker run pay "${p[@]}" -- false || true
	run --separate-stderr sw-breaker run pay "${p[@]}" -- false
	[ "$status" -eq 1 ]
	[[ $stderr == *"now open"* ]]
	state_is pay open
	local t0=$(now_ms)
	run --separate-stderr sw-breaker run pay "${p[@]}" -- touch "$BATS_TEST_TMPDIR/ran"
	[ "$status" -eq 75 ]
	[ ! -e "$BATS_TEST_TMPDIR/ran" ]
	[ $(( $(now_ms) - t0 )) -lt 2000 ]   # a refusal, not a wait for the cooldown
	[[ $stderr == *"is open"*"next try at"* ]]
	run sw-breaker run pay "${p[@]}" -E 0 -- touch "$BATS_TEST_TMPDIR/ran"
	[ "$status" -eq 0 ]
	[ ! -e "$BATS_TEST_TMPDIR/ran" ]
	run sw-breaker show pay
	jq -e '.state == "open" and .trips == 1 and .cooldown_ms == 10000 and (.open_until_unix_ns | tonumber) > 0' <<<"$output"
}

@test "closed: SIGTERM goes to the command's whole tree, and its status is counted and passed on" {
	cd "$BATS_TEST_TMPDIR"
	start_bg gc sw-breaker run sig --failures 1 -g 1s -- sh -c 'sh -c "trap \"\" TERM; echo \$\$ >gc; exec sleep 30" & wait'
	kill -TERM "$pid"
	wait_until 5 gone "$gc"
	reap_job "$pid" 5
	[ "$st" -eq 143 ]
	state_is sig open
}

@test "failures that have left the window do not count" {
	# a window long enough for the second and third failures to fall in it
	# on a busy machine under ASan, the first one out of it by then
	local p=(--failures 2 --window 2s --cooldown 10s)
	sw-breaker run w "${p[@]}" -- false || true
	sleep 2.2
	sw-breaker run w "${p[@]}" -- false || true
	state_is w closed
	sw-breaker run w "${p[@]}" -- false || true
	state_is w open
}

@test "--fail-on: only those codes fail; --timeout stops the command and what it left behind, fails, exits 124" {
	local p=(--failures 1 --cooldown 10s)
	run sw-breaker run f "${p[@]}" --fail-on 22,28 -- sh -c 'exit 6'
	[ "$status" -eq 6 ]
	state_is f closed
	run sw-breaker run f "${p[@]}" --fail-on 1-5,22 -- sh -c 'exit 22'
	[ "$status" -eq 22 ]
	state_is f open
	local t0=$(now_ms)
	run --separate-stderr sw-breaker run t "${p[@]}" --timeout 300ms -- sleep 10
	[ "$status" -eq 124 ]
	[ $(( $(now_ms) - t0 )) -lt 3000 ]
	[[ $stderr == *"timed out"* ]]
	state_is t open
	# the time is the whole tree's: a command that exits at once but
	# leaves a process behind is stopped at the timeout too
	cd "$BATS_TEST_TMPDIR"
	t0=$(now_ms)
	run --separate-stderr sw-breaker run t2 "${p[@]}" --timeout 300ms -- sh -c 'sleep 10 & echo $! >left; exit 0'
	[ "$status" -eq 124 ]
	[ $(( $(now_ms) - t0 )) -lt 3000 ]
	track "$(cat left)"
	gone "$(cat left)"
	state_is t2 open
}

@test "half-open: exactly K probes run at once, the rest are refused; K successes close it" {
	sw-breaker trip h "${P[@]}" --quiet
	sleep 0.45
	local d=$BATS_TEST_TMPDIR k
	# the probes hold on until the other four have been refused: a run
	# that a loaded machine starts after the probes closed it would run
	for k in 1 2 3 4 5 6; do
		( rc=0
		  sw-breaker run h "${P[@]}" -- sh -c '
			echo "$SW_BREAKER_STATE $SW_BREAKER_PROBE_TOKEN" >"$0.$$"
			n=0; until [ -e "$1" ] || [ $n -ge 3000 ]; do sleep 0.02; n=$((n + 1)); done' "$d/ran" "$d/go" \
			2>/dev/null || rc=$?
		  echo "$rc" >"$d/rc.$k" ) &
	done
	wait_until 30 refusals "$d" 4 || echo "not four refusals in 30 s"
	touch "$d/go"
	wait
	[ "$(ls "$d"/ran.* | wc -l)" -eq 2 ]
	cat "$d"/ran.* | grep -c '^half_open [0-9]' | grep -qx 2
	[ "$(sort "$d"/rc.* | tr '\n' ' ')" = "0 0 75 75 75 75 " ]
	state_is h closed
	run sw-breaker run h "${P[@]}" -- true
	[ "$status" -eq 0 ]
	# SW_DIR: the workspace, absolute, whatever -d said
	cd "$BATS_TEST_TMPDIR"
	mkdir rel
	run sw-breaker run h -d rel -- sh -c 'cd / && echo "$SW_DIR" && sw-breaker show h | jq -r .state'
	[ "${lines[0]}" = "$BATS_TEST_TMPDIR/rel" ]
	[ "${lines[1]}" = closed ]
}

@test "a probe's failure opens it again with the cooldown doubled, capped at --max-cooldown" {
	local p=(--failures 1 --cooldown 200ms --max-cooldown 500ms --probes 1)
	sw-breaker trip c "${p[@]}" --quiet
	sleep 0.25
	sw-breaker run c "${p[@]}" -- false || true
	local t0=$(date +%s%N) t1 until
	run sw-breaker show c
	t1=$(date +%s%N)
	jq -e '.cooldown_ms == 400 and .trips == 2' <<<"$output"
	# open for the doubled cooldown: a show that ended before it did must
	# say open, one that began after it half-open; one that spans the end
	# (a loaded machine's) may say either
	until=$(jq -r .open_until_unix_ns <<<"$output")
	if [ "$t1" -lt "$until" ]; then
		jq -e '.state == "open"' <<<"$output"
	elif [ "$t0" -ge "$until" ]; then
		jq -e '.state == "half_open"' <<<"$output"
	else
		echo "show spanned the cooldown's end: state not checked"
		jq -e '.state == "open" or .state == "half_open"' <<<"$output"
	fi
	sleep 0.45
	sw-breaker run c "${p[@]}" -- false || true
	run sw-breaker show c
	jq -e '.cooldown_ms == 500 and .trips == 3' <<<"$output"
	sleep 0.55
	sw-breaker run c "${p[@]}" -- true
	state_is c closed
}

@test "check and record for scripts: check hands out a probe token in half-open; record --ok --token closes; a stale token is 1" {
	# a 3 s cooldown: the refusals before it ends fit in it even under
	# ASan on a loaded machine; then the wait is the one the refusal names
	local p=(--failures 2 --cooldown 3s --probes 1) retry
	run sw-breaker check s "${p[@]}"
	[ "$status" -eq 0 ]
	jq -e '.state == "closed" and .allowed' <<<"$output"
	sw-breaker record s --fail "${p[@]}" --quiet
	run sw-breaker record s --fail "${p[@]}"
	jq -e '.state == "open" and .counted and .trips == 1' <<<"$output"
	run --separate-stderr sw-breaker check s "${p[@]}"
	[ "$status" -eq 75 ]
	jq -e '.allowed == false and (.retry_at_unix_ns | tonumber) > 0' <<<"$output"
	retry=$(jq -r .retry_at_unix_ns <<<"$output")
	sleep "$(awk -v t="$retry" -v now="$(date +%s%N)" 'BEGIN { d = (t - now) / 1e9 + 0.05; printf "%.3f", (d > 0 ? d : 0) }')"
	run sw-breaker check s "${p[@]}"
	[ "$status" -eq 0 ]
	jq -e '.state == "half_open" and .probe.slot == 1' <<<"$output"
	local tok
	tok=$(jq .probe.token <<<"$output")
	run --separate-stderr sw-breaker check s "${p[@]}"
	[ "$status" -eq 75 ]
	# a failure without the token in half-open: a call that began earlier, not counted
	run sw-breaker record s --fail "${p[@]}"
	jq -e '.counted == false and .state == "half_open"' <<<"$output"
	run sw-breaker record s --ok --token "$tok" "${p[@]}"
	jq -e '.state == "closed" and .counted' <<<"$output"
	refused 1 sw-breaker record s --ok --token "$tok" "${p[@]}"
}

@test "half-open with K=2: one success is not enough, the second closes it; ratio mode waits for --min-calls" {
	local p=(--failures 1 --cooldown 1ms --probes 2) t1 t2
	sw-breaker trip k2 "${p[@]}" --quiet
	sleep 0.01
	t1=$(sw-breaker check k2 "${p[@]}" | jq -r .probe.token)
	t2=$(sw-breaker check k2 "${p[@]}" | jq -r .probe.token)
	[ "$t1" != "$t2" ]
	run sw-breaker record k2 --ok --token "$t1" "${p[@]}"
	jq -e '.state == "half_open" and .counted' <<<"$output"
	run sw-breaker record k2 --ok --token "$t2" "${p[@]}"
	jq -e '.state == "closed" and .counted' <<<"$output"
	# all failures, but fewer calls than --min-calls: closed; the third opens
	local r=(--ratio 0.5 --min-calls 3 --window 1m)
	sw-breaker record m --fail "${r[@]}" --quiet
	sw-breaker record m --fail "${r[@]}" --quiet
	state_is m closed
	sw-breaker record m --fail "${r[@]}" --quiet
	state_is m open
}

@test "20 racing recorders: every failure counts, the breaker opens exactly once" {
	local k
	for k in $(seq 20); do
		sw-breaker record race --fail --failures 20 --window 1m --quiet &
	done
	wait
	run sw-breaker show race
	jq -e '.state == "open" and .trips == 1' <<<"$output"
	# in ratio mode every outcome is written: 10 ok and 10 failures race
	for k in $(seq 10); do
		sw-breaker record ratio --ok --ratio 0.6 --min-calls 20 --quiet &
		sw-breaker record ratio --fail --ratio 0.6 --min-calls 20 --quiet &
	done
	wait
	run sw-breaker show ratio
	jq -e '.state == "closed" and .failures_in_window == 10 and .successes_in_window == 10' <<<"$output"
	sw-breaker record ratio --fail --ratio 0.5 --min-calls 20 --quiet
	state_is ratio open
}

@test "a version built on a writer's own before it looked again is not undone: its failure counts once" {
	command -v strace >/dev/null || skip "no strace"
	# the first recorder stops right after creating v.1, until resumed;
	# the second (its host lock given up after 50 ms) builds v.2 on it
	local v=$SW_DIR/breakers/fast out=$BATS_TEST_TMPDIR/fast
	stall_start linkat 1 "$out" sw-breaker record fast --fail --failures 10 --window 1m --quiet
	[ -n "$STALLED" ] || { echo "the recorder never stopped: $(cat "$out.err")"; return 1; }
	[ -e "$v/v.00000000000000000001" ]
	sw-breaker record fast --fail --failures 10 --window 1m --quiet
	[ -e "$v/v.00000000000000000002" ]
	stall_resume
	[ "$(cat "$out.rc")" = 0 ]
	run sw-breaker show fast
	echo "$output"
	jq -e '.state == "closed" and .failures_in_window == 2' <<<"$output"
}

@test "a writer stalled past the cleanup of its own version is not counted again: 75, its outcome not known" {
	command -v strace >/dev/null || skip "no strace"
	# the first recorder stops right after creating v.1 (stopped until
	# resumed: however long a loaded machine takes for the rest); 20 more
	# records meanwhile take the chain past 16 kept versions, so v.1 and
	# v.2 are cleaned up before it looks again
	local v=$SW_DIR/breakers/slow out=$BATS_TEST_TMPDIR/slow
	stall_start linkat 1 "$out" sw-breaker record slow --fail --failures 100 --window 1m
	[ -n "$STALLED" ] || { echo "the recorder never stopped: $(cat "$out.err")"; return 1; }
	[ -e "$v/v.00000000000000000001" ]
	for _ in $(seq 20); do sw-breaker record slow --fail --failures 100 --window 1m --quiet; done
	[ ! -e "$v/v.00000000000000000002" ]
	stall_resume
	cat "$out.err"
	[ "$(cat "$out.rc")" = 75 ]
	grep -q "is not known" "$out.err"
	run sw-breaker show slow
	echo "$output"
	jq -e '.failures_in_window == 21' <<<"$output"
}

@test "trip and reset; show: 1 for an unknown breaker; list: one line each, sorted" {
	refused 1 sw-breaker show nope
	run sw-breaker list
	[ -z "$output" ]
	run sw-breaker trip b --cooldown 1h
	jq -e '.state == "open" and .trips == 1 and .cooldown_ms == 3600000' <<<"$output"
	sw-breaker check a --quiet
	run sw-breaker list
	jq -s -e 'length == 2 and .[0].name == "a" and .[0].state == "closed" and .[1].state == "open"' <<<"$output"
	run sw-breaker reset b
	jq -e '.state == "closed" and .trips == 1' <<<"$output"
	run sw-breaker run b -- true
	[ "$status" -eq 0 ]
}

@test "a prober stopped (SIGSTOP) past its lease: another probe runs meanwhile, and the stalled one's command is SIGKILLed the moment it resumes" {
	cd "$BATS_TEST_TMPDIR"
	export SW_CLOCK_SKEW=200ms
	local p=(--failures 1 --cooldown 100ms --probes 1 --ttl 1s)
	sw-breaker trip x "${p[@]}" --quiet
	sleep 0.15
	sw-breaker run x "${p[@]}" -g 10s -- sh -c 'trap "" TERM; while :; do date +%s%N >>beats; sleep 0.05; done' 2>err &
	pid=$!
	track "$pid"
	stall_tree "$pid"
	sleep 2      # past the probe's TTL and the margin
	run sw-breaker run x "${p[@]}" -- sh -c 'echo $SW_BREAKER_PROBE_TOKEN'
	[ "$status" -eq 0 ]
	[ "$output" -eq 2 ]
	state_is x closed
	resume_tree sw-breaker
	state_is x closed
}

@test "a SIGKILLed prober's probe slot frees after its TTL plus the margin, not before" {
	export SW_CLOCK_SKEW=200ms
	# a 3 s TTL: the check below comes well within it on a loaded machine
	local p=(--failures 1 --cooldown 100ms --probes 1 --ttl 3s)
	sw-breaker trip k "${p[@]}" --quiet
	sleep 0.15
	sw-breaker run k "${p[@]}" -- sleep 30 >/dev/null 2>&1 3>&- &
	local pid=$!
	track "$pid"
	wait_until 10 probe_taken k
	local tree
	tree=$(tree_pids "$pid")
	track $tree
	kill -KILL $tree
	wait "$pid" || true
	local exp free
	exp=$(sw-breaker show k | jq -r '.probes[0].expires_at_unix_ns')
	free=$((exp + 200000000))
	# a probe is never handed out early
	refused_then_taken "$free" sw-breaker check k "${p[@]}"
	[ "$(date +%s%N)" -ge "$free" ]
}

@test "SIGKILL of sw-breaker run (the process started) during a probe: the command dies at once and the probe is settled, not held to its TTL" {
	local p=(--failures 1 --cooldown 100ms --probes 1 --ttl 60s)
	sw-breaker trip k "${p[@]}" --quiet
	sleep 0.15
	sw-breaker run k "${p[@]}" -- sh -c 'echo $$ >"$0"; exec sleep 30' "$BATS_TEST_TMPDIR/pid" >/dev/null 2>&1 3>&- &
	local pid=$!
	track "$pid"
	wait_until 10 test -s "$BATS_TEST_TMPDIR/pid"
	local cmd
	cmd=$(cat "$BATS_TEST_TMPDIR/pid")
	track "$cmd"
	kill -KILL "$pid"
	wait "$pid" || true
	wait_until 10 gone "$cmd"
	# the killed command counts as any a signal ends (137, a failure):
	# opened again with the cooldown doubled (200 ms: it may be over by
	# the look), and no probe left running
	reopened() {
		sw-breaker show k | jq -e '.trips == 2 and .cooldown_ms == 200 and
			(.probes // [] | map(select(.state == "running")) | length == 0)' >/dev/null
	}
	wait_until 10 reopened
}

@test "a damaged newest version reads as a trip at its write time: open for one cooldown" {
	sw-breaker check d --quiet
	sw-breaker record d --fail --quiet
	printf 'garbage' >"$SW_DIR/breakers/d/v.00000000000000000002"
	run --separate-stderr sw-breaker run d --cooldown 1s -- touch "$BATS_TEST_TMPDIR/ran"
	[ "$status" -eq 75 ]
	[ ! -e "$BATS_TEST_TMPDIR/ran" ]
	[[ $stderr == *damaged* ]]
	sleep 1.05
	run sw-breaker run d --cooldown 1s -- true
	[ "$status" -eq 0 ]
	state_is d closed
}

@test "--spans: run's span has sw.breaker.name, sw.breaker.state and the state change" {
	run --separate-stderr sw-breaker run sp --failures 1 --spans=stderr -- false
	grep resourceSpans <<<"$stderr" | jq -e '.resourceSpans[0].scopeSpans[0].spans[0] |
		.name == "sw-breaker run" and
		(.attributes | map(select(.key == "sw.breaker.name"))[0].value.stringValue == "sp") and
		(.attributes | map(select(.key == "sw.breaker.state_change"))[0].value.stringValue == "closed->open")'
	run --separate-stderr sw-breaker run sp --failures 1 --spans=stderr -- true
	[ "$status" -eq 75 ]
	grep resourceSpans <<<"$stderr" | jq -e '.resourceSpans[0].scopeSpans[0].spans[0] | .status.code == 1 and
		(.attributes | map(select(.key == "sw.breaker.state"))[0].value.stringValue == "open")'
}

@test "--spans: record's and check's spans carry the state and its change" {
	run --separate-stderr sw-breaker record r --fail --failures 1 --spans=stderr
	grep resourceSpans <<<"$stderr" | jq -e '.resourceSpans[0].scopeSpans[0].spans[0] | .name == "sw-breaker record" and
		(.attributes | map(select(.key == "sw.breaker.state_change"))[0].value.stringValue == "closed->open")'
	run --separate-stderr sw-breaker check r --spans=stderr
	[ "$status" -eq 75 ]
	grep resourceSpans <<<"$stderr" | jq -e '.resourceSpans[0].scopeSpans[0].spans[0] | .name == "sw-breaker check" and
		(.attributes | map(select(.key == "sw.breaker.state"))[0].value.stringValue == "open")'
}

@test "sw-metrics export has sw_breaker_state (0, 1, 2) and sw_breaker_trips_total by name" {
	export SW_METRICS_DB=$BATS_TEST_TMPDIR/m.db
	sw-breaker check a --quiet
	sw-breaker trip b --quiet
	sw-breaker trip c --cooldown 1ms --quiet
	run sw-metrics export
	grep -qx 'sw_breaker_state{name="a"} 0' <<<"$output"
	grep -qx 'sw_breaker_state{name="b"} 2' <<<"$output"
	grep -qx 'sw_breaker_state{name="c"} 1' <<<"$output"
	grep -qx 'sw_breaker_trips_total{name="b"} 1' <<<"$output"
}
