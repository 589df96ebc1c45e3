#!/usr/bin/env bats
# sw-breaker across two hosts: one workspace on a real network filesystem
# (MooseFS) seen through two client mounts, $SW_MH_A and $SW_MH_B.  Proves
# the issue's "what must hold" across hosts: while open, no command runs
# on either host; in half-open exactly K probes run across both; racing
# recorders on both mounts lose no failure; a prober stalled past its
# lease on A stops its command the moment it resumes while B probes.
load ../helper
load ../proc
load ../flow

setup() { mh_setup breaker; }
teardown() { mh_teardown; }

# refusals DIR N: N of the exit statuses written to DIR/rc.* are 75
refusals() { [ "$(cat "$1"/rc.* 2>/dev/null | grep -cx 75)" -eq "$2" ]; }

@test "tripped on A: no command runs on either host while it is open; after the cooldown B probes and closes it" {
	local p=(--failures 2 --cooldown 3s --probes 1) k side open_until f t
	on_a sw-breaker run pay "${p[@]}" -- false || true
	on_a sw-breaker run pay "${p[@]}" -- false || true
	open_until=$(on_a sw-breaker show pay | jq -r .open_until_unix_ns)
	# each command that runs writes when: none before the cooldown ends (a
	# loaded machine's MooseFS may take longer than it for 8 runs, and a
	# run after it is a probe or runs closed)
	for k in 1 2 3 4; do
		for side in on_a on_b; do
			$side sw-breaker run pay "${p[@]}" -- sh -c 'date +%s%N >"$0"' "$BATS_TEST_TMPDIR/ran.$side.$k" \
				2>/dev/null &
		done
	done
	wait
	for f in "$BATS_TEST_TMPDIR"/ran.*; do
		[ -e "$f" ] || continue
		echo "$f ran $(( ($(cat "$f") - open_until) / 1000000 )) ms after the cooldown"
		[ "$(cat "$f")" -ge "$open_until" ]
	done
	t=$(date +%s%N)
	run on_b sw-breaker show pay
	jq -e '.trips == 1' <<<"$output"
	if [ "$t" -lt "$open_until" ]; then
		jq -e '.state == "open"' <<<"$output"
	else
		echo "shown after the cooldown: open not checked"
	fi
	sleep "$(awk -v t="$open_until" -v now="$(date +%s%N)" 'BEGIN { d = (t - now) / 1e9 + 0.1; printf "%.3f", (d > 0 ? d : 0) }')"
	run on_b sw-breaker run pay "${p[@]}" -- true
	[ "$status" -eq 0 ]
	run on_a sw-breaker show pay
	jq -e '.state == "closed"' <<<"$output"
}

@test "half-open: of 8 runs on two mounts exactly K=3 probe, the rest are refused" {
	local p=(--failures 1 --cooldown 500ms --probes 3) k side
	on_a sw-breaker trip pay "${p[@]}" --quiet
	sleep 0.6
	local d=$BATS_TEST_TMPDIR
	# the probes hold on until the other five have been refused: a run
	# that a loaded machine starts after the probes closed it would run
	for k in 1 2 3 4; do
		for side in on_a on_b; do
			( rc=0
			  $side sw-breaker run pay "${p[@]}" -- sh -c '
				echo $SW_BREAKER_PROBE_TOKEN >"$0"
				n=0; until [ -e "$1" ] || [ $n -ge 3000 ]; do sleep 0.02; n=$((n + 1)); done' \
				"$d/ran.$side.$k" "$d/go" 2>/dev/null || rc=$?
			  echo "$rc" >"$d/rc.$side.$k" ) &
		done
	done
	wait_until 30 refusals "$d" 5 || echo "not five refusals in 30 s"
	touch "$d/go"
	wait
	ls "$d"
	[ "$(ls "$d" | grep -c ran)" -eq 3 ]
	[ "$(cat "$d"/ran.* | sort -u | wc -l)" -eq 3 ]
	[ "$(sort "$d"/rc.* | tr '\n' ' ')" = "0 0 0 75 75 75 75 75 " ]
	run on_b sw-breaker show pay
	jq -e '.state == "closed"' <<<"$output"
}

@test "10 racing recorders on two mounts: every failure counts, it opens exactly once" {
	local k
	for k in 1 2 3 4 5; do
		on_a sw-breaker record race --fail --failures 10 --window 1m --quiet &
		on_b sw-breaker record race --fail --failures 10 --window 1m --quiet &
	done
	wait
	run on_a sw-breaker show race
	jq -e '.state == "open" and .trips == 1' <<<"$output"
	# nine of ten leave it closed: none is counted twice either
	for k in 1 2 3 4 5; do
		on_a sw-breaker record nine --fail --failures 10 --window 1m --quiet &
		[ "$k" -eq 5 ] || on_b sw-breaker record nine --fail --failures 10 --window 1m --quiet &
	done
	wait
	run on_b sw-breaker show nine
	jq -e '.state == "closed" and .failures_in_window == 9' <<<"$output"
}

@test "a prober on A stopped past its lease: B probes meanwhile, and A's command is SIGKILLed the moment A resumes" {
	cd "$BATS_TEST_TMPDIR"
	export SW_CLOCK_SKEW=200ms
	local p=(--failures 1 --cooldown 100ms --probes 1 --ttl 1s)
	on_a sw-breaker trip x "${p[@]}" --quiet
	sleep 0.15
	on_a sw-breaker run x "${p[@]}" -g 10s -- sh -c '
		trap "" TERM; while :; do date +%s%N >>beats; sleep 0.05; done' 2>err &
	pid=$!
	track "$pid"
	stall_tree "$pid"
	sleep 2
	run on_b sw-breaker run x "${p[@]}" -- sh -c 'echo $SW_BREAKER_PROBE_TOKEN'
	[ "$status" -eq 0 ]
	[ "$output" -eq 2 ]
	resume_tree sw-breaker
	run on_a sw-breaker show x
	jq -e '.state == "closed"' <<<"$output"
}
