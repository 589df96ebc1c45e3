#!/usr/bin/env bats
# sw-agent across two client mounts of one network filesystem (two hosts):
# half the agents on each, one SIGKILLed at random: 0 lost, 0 done twice;
# an item added on one host reaches an agent waiting on the other.
load ../helper
load ../proc

setup() {
	[ -n "${SW_MH_A:-}" ] && [ -n "${SW_MH_B:-}" ] ||
		skip "SW_MH_A and SW_MH_B (two mounts of one network filesystem) are not set"
	sub=sw-agent-test.$$.$RANDOM.$BATS_TEST_NUMBER
	export A=$SW_MH_A/$sub B=$SW_MH_B/$sub
	export SW_POLL=200ms SW_CLOCK_SKEW=1s
	out=$BATS_TEST_TMPDIR/out
	mkdir -p "$A"
	mkdir -p "$out"
}

teardown() {
	[ -n "${sub:-}" ] && rm -rf "${SW_MH_A:?}/$sub"
	true
}

@test "8 agents, half on each mount, one SIGKILLed every 200 ms: 0 lost, 0 done twice" {
	n=${MH_ITEMS:-2000}
	seq 1 "$n" | SW_DIR=$A sw-claim add --lines --quiet --max-attempts 1000
	start() { # slot
		local dir=$A
		[ $(($1 % 2)) = 1 ] && dir=$B
		SW_DIR=$dir sw-agent run --id m$1.$RANDOM --ttl 2s -- true >>"$out/m$1.out" 2>>"$out/m$1.err" &
		pids[$1]=$!
	}
	pids=()
	for i in 0 1 2 3 4 5 6 7; do start $i; done
	kills=0
	for ((t = 0; t < 1500; t++)); do
		[ "$(SW_DIR=$A sw-claim stats | jq '.done')" -ge "$n" ] && break
		sleep 0.2
		i=$((RANDOM % 8))
		kill -KILL "${pids[$i]}" 2>/dev/null && kills=$((kills + 1))
		wait "${pids[$i]}" 2>/dev/null || true
		start $i
	done
	echo "# $kills agents killed" >&3
	SW_DIR=$A SW_CLOCK_OFFSET=2m sw-claim reap >/dev/null
	for ((t = 0; t < 150; t++)); do
		[ "$(SW_DIR=$A sw-claim stats | jq '.done')" -ge "$n" ] && break
		sleep 0.2
	done
	kill -TERM "${pids[@]}"
	wait
	run env SW_DIR=$B sw-claim stats
	assert_output "{\"queue\":\"default\",\"pending\":0,\"delayed\":0,\"blocked\":0,\"claimed\":0,\"done\":$n,\"dead\":0,\"cancelled\":0,\"in_flight\":0,\"damaged\":0}"
	dup=$(cat "$out"/*.out | jq -r 'select(.state == "done") | .id' | sort | uniq -d | head -3)
	[ -z "$dup" ]
	# both hosts did work
	[ "$(cat "$out"/m0.out "$out"/m2.out | grep -c '"state":"done"')" -gt 0 ]
	[ "$(cat "$out"/m1.out "$out"/m3.out | grep -c '"state":"done"')" -gt 0 ]
}

@test "an item added on one host reaches an agent waiting on the other within the poll interval" {
	SW_DIR=$B sw-agent run --max-items 1 --idle-exit 20s --poll 500ms -- cat >"$out/b.out" 2>"$out/b.err" &
	pid=$!
	sleep 1
	SW_DIR=$A sw-claim add --lines --quiet <<<hello
	wait_until 20 test -s "$out/b.out"
	wait "$pid"
	# from the item's adding to its done, by the item's own times (both
	# mounts share this machine's clock): not the test's execs over
	# MooseFS, nor the agent's exit, slow on a loaded machine
	ms=$(SW_DIR=$A sw-claim list --state done |
		jq -r '((.done_at_unix_ns | tonumber) - (.created_at_unix_ns | tonumber)) / 1e6 | floor')
	echo "# seen and done $ms ms after the add" >&3
	# a 500 ms poll (jittered), one claim and one done over MooseFS; with
	# no polling across hosts it would take the 20 s idle-exit
	[ "$ms" -lt 3000 ]
	assert_equal "$(jq -r .state "$out/b.out")" done
	run env SW_DIR=$A sw-agent list
	assert_output ""
}
