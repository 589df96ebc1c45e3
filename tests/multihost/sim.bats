#!/usr/bin/env bats
# sw-sim on a real network filesystem seen through two mounts (the lab,
# tests/lab/lab): `fs A B` passes there with sensible numbers, and fails
# naming a primitive broken on purpose; a swarm spread over both mounts
# (-d A -d B) loses nothing under kills and stalls; `run --lab` makes its
# delays and partitions real on the lab's links, loses nothing, and leaves
# the links healed.  Needs SW_MH_A/SW_MH_B, and root with the lab's
# SW_LAB_NAME for --lab.
load ../helper
load ../proc

setup() {
	[ -n "${SW_MH_A:-}" ] && [ -n "${SW_MH_B:-}" ] ||
		skip "SW_MH_A and SW_MH_B are not set (no two-mount network filesystem here)"
	sub=sw-sim-test.$$.$BATS_TEST_NUMBER.$RANDOM
	A=$SW_MH_A/$sub
	B=$SW_MH_B/$sub
	mkdir "$A"
	wait_until 10 test -d "$B"
	keep=$BATS_TEST_TMPDIR/keep
	export TMPDIR=$BATS_TEST_TMPDIR
}

teardown() {
	untrack_all
	pkill -KILL -f -- "sw-agent run -d $A/" 2>/dev/null || true
	pkill -KILL -f -- "sw-agent run -d $B/" 2>/dev/null || true
	[ -n "${A:-}" ] && rm -rf "$A"
	true
}

report() { tail -1 "$BATS_TEST_TMPDIR/out"; }
field() { report | jq -r "$1"; }
check() { jq -c "select(.check == \"$1\")" "$BATS_TEST_TMPDIR/out"; }
# passed PID: the run in the background ended, exit 0, its report ok with
# nothing lost and nothing finished twice
passed() {
	reap_job "$1" 120
	cat "$BATS_TEST_TMPDIR/err"
	[ "$st" -eq 0 ]
	[ "$(field .ok)" = true ]
	[ "$(field .items.lost)" = 0 ]
	[ "$(field .items.finished_twice)" = 0 ]
}

@test "fs A B on the lab: every exclusive race has one winner across the mounts, sensible numbers, ok" {
	run --separate-stderr sw-sim fs "$A" "$B" --rounds 20 --json
	echo "$output"
	echo "$stderr"
	assert_success
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/out"
	for p in rename excl link mkdir; do
		[ "$(check $p | jq -r '"\(.verdict) \(.one_winner) \(.mounts)"')" = "ok 20 2" ]
	done
	# without a RENAME_NOREPLACE of the filesystem's own, information only
	check noreplace | jq -e '.verdict == "ok" or (.verdict == "info" and .native == false)'
	# a change on A is seen on B well within a second; the clock is near
	check visibility | jq -e '.create.max_ms < 1000 and .rename.max_ms < 1000'
	check timestamps | jq -e '.resolution_ns <= 1000000000 and (.skew_ms | fabs) < 2000'
	# inotify does not see the other mount: agents must poll, and are told to
	check inotify | jq -e '.this_mount == true and .other_mount == false'
	[ "$(field .type)" = verdict ]
	[ "$(field .ok)" = true ]
	[ "$(field .network)" = true ]
	[ "$(field .recommend.SW_POLL)" != 30s ]
	[ -z "$(ls -A "$A")" ]
}

@test "fs A B with a primitive broken on purpose fails across the mounts and names it" {
	run --separate-stderr env SW_SIM_FS_BREAK=rename sw-sim fs "$A" "$B" --rounds 10 --json
	[ "$status" -eq 1 ]
	[[ $stderr == *"sw-sim: fs: rename: "*"several winners"* ]]
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/out"
	[ "$(jq -r 'select(.verdict == "fail") | .check' "$BATS_TEST_TMPDIR/out")" = rename ]
}

@test "run -d A -d B: agents on both mounts, kills and stalls, nothing lost or finished twice" {
	sw-sim run -d "$A/ws" -d "$B/ws" --agents 4 --duration 6s --rate 4/s --job-time 10ms..200ms \
		--kill-rate 1/s --stall-rate 1/s --stall-time 2s --ttl 2s --seed 4 --keep "$keep" --json \
		>"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
	pid=$!
	track "$pid"
	# both mounts have agents
	wait_until 20 pgrep -f -- "[s]w-agent run -d $A/ws "
	wait_until 20 pgrep -f -- "[s]w-agent run -d $B/ws "
	passed "$pid"
	[ "$(field .items.added)" -gt 10 ]
	[ "$(field '.dirs | length')" = 2 ]
	[ "$(field '.faults.kill + .faults.stall')" -ge 2 ]
	# both mounts' agents ran jobs: the ledgers of even and odd slots
	[ "$(cat "$keep"/ledger/*-[02]-* | awk '$1 == "E"' | wc -l)" -gt 0 ]
	[ "$(cat "$keep"/ledger/*-[13]-* | awk '$1 == "E"' | wc -l)" -gt 0 ]
}

@test "run --lab: real link delays and partitions, nothing lost, the links healed at the end" {
	[ "$(id -u)" = 0 ] || skip "--lab needs root"
	[ -n "${SW_LAB_NAME:-}" ] && [ -e "/run/netns/$SW_LAB_NAME-a" ] || skip "the lab's SW_LAB_NAME is not set"
	lab=$top/tests/lab/lab
	sw-sim run --lab="$lab" --agents 4 --duration 8s --rate 4/s --job-time 10ms..200ms --max-latency 50ms \
		--partition-probability 1 --partition-time 3s --kill-rate 0.5/s --ttl 2s --seed 3 --json \
		>"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
	pid=$!
	track "$pid"
	# what the lab's links do meanwhile: down (a partition), delayed (a
	# relay's TUN device or a netem qdisc)
	local down=0 slow=0 c
	while alive "$pid"; do
		for c in a b; do
			ip -n "$SW_LAB_NAME-$c" -br link | awk '$2 == "DOWN"' | grep -q . && down=$((down + 1))
			{ ip -n "$SW_LAB_NAME-$c" -br link | grep -q -- "-t$c"; } ||
				{ tc -n "$SW_LAB_NAME-$c" qdisc show | grep -q netem; } && slow=$((slow + 1))
		done
		sleep 0.2
	done
	echo "samples: link down $down, delayed $slow"
	passed "$pid"
	[ "$(field .faults.partition)" -ge 1 ]
	[ "$(field .faults.delay)" -ge 1 ]
	[ "$down" -gt 0 ]
	[ "$slow" -gt 0 ]
	# healed and undelayed: the lab takes a delay only on a link that is up
	"$lab" delay a 0
	"$lab" delay b 0
	# (a "! cmd" line fails no bats test: set -e spares it)
	[ -z "$(ip -n "$SW_LAB_NAME-a" -br link | grep -- -ta)" ]
	[ -z "$(ip -n "$SW_LAB_NAME-b" -br link | grep -- -tb)" ]
	echo healed >"$SW_MH_B/$sub.healed"
	[ "$(cat "$SW_MH_A/$sub.healed")" = healed ]
	rm -f "$SW_MH_A/$sub.healed"
	# the run's directory on the lab is gone (without --keep)
	[ "$(field '.dirs[0]')" = "$SW_MH_A/sw-sim.$(field .queue)/ws" ]
	[ ! -e "$SW_MH_A/sw-sim.$(field .queue)" ]
}
