#!/usr/bin/env bats
# Exactly once under stalls across hosts: a `done` on mount A stopped after
# each of its system calls in turn while a reaper and a second worker run
# an hour later through mount B; when it goes on, the item has been
# finished once, with the result of the one told so.  A sample of the
# steps (SW_FAULTS_FULL=1: all).  Needs SW_MH_A/SW_MH_B (tests/lab/lab up).
load ../helper
load ../faults

setup() {
	[ -n "${SW_MH_A:-}" ] && [ -n "${SW_MH_B:-}" ] ||
		skip "SW_MH_A and SW_MH_B are not set (no two-mount network filesystem here)"
	sub=sw-stall-test.$$.$BATS_TEST_NUMBER.$RANDOM
	A=$SW_MH_A/$sub
	B=$SW_MH_B/$sub
}

teardown() {
	[ -n "${A:-}" ] && rm -rf "$A"
	true
}

# fresh_ws ID...: a new workspace, WA on mount A and WB the same on mount
# B (a reused directory name looks old on the other mount), holding the
# items ID... added on A
fresh_ws() {
	i=$((i + 1))
	WA=$A/$i WB=$B/$i
	mkdir "$WA"
	for _ in $(seq 50); do [ -d "$WB" ] && break; sleep 0.1; done
	local id
	for id in "$@"; do SW_DIR=$WA sw-claim add --id "$id" '"p"' >/dev/null; done
}

# b_takes_over N: on mount B an hour later (every claim has expired),
# reap, claim up to N and finish x with the result "B"; b is 0 when B was
# told x is done, done's exit status, or none when B could not claim x.
# Runs with SW_DIR=$WB.
b_takes_over() {
	local j
	export SW_DIR=$WB
	SW_CLOCK_OFFSET=1h sw-claim reap >/dev/null 2>&1 || true
	b=none
	if j=$(SW_CLOCK_OFFSET=1h sw-claim next -n "$1" 2>/dev/null | jq -c 'select(.id == "x")') && [ -n "$j" ]; then
		b=0
		SW_CLOCK_OFFSET=1h sw-claim done x --token "$(jq -r .token <<<"$j")" --result '"B"' >/dev/null 2>&1 || b=$?
	fi
}

# finished_once POINT: after A went on and a reap two hours later, x is
# done once, with the result of the host told so (a and b as
# b_takes_over sets b), and nothing is left in stage
finished_once() {
	local res
	SW_CLOCK_OFFSET=2h sw-claim reap >/dev/null 2>&1 || true
	res=$(sw-claim show x | jq -r '"\(.state) \(.result)"')
	if [ "$a" = 0 ] && [ "$b" = 0 ]; then echo "both finished x ($1)"; return 1; fi
	if [ "$a" = 0 ] && [ "$res" != "done A" ]; then echo "A told done, x is $res ($1)"; return 1; fi
	if [ "$b" = 0 ] && [ "$res" != "done B" ]; then echo "B told done, x is $res ($1)"; return 1; fi
	[ "$res" != "${res#done}" ] || { echo "x is $res ($1)"; return 1; }
	[ -z "$(ls "$WB/queues/default/stage")" ] || { echo "left in stage ($1)"; return 1; }
}

@test "a done stalled on host A while host B reaps and finishes: finished once" {
	local log=$BATS_TEST_TMPDIR/trace d=$BATS_TEST_TMPDIR/case call n k cases=0 a b tok i=0
	mkdir "$A"
	fresh_ws x
	tok=$(SW_DIR=$WA sw-claim next --ttl 30s | jq -r .token)
	SW_DIR=$WA trace_counts "$log" sw-claim done x --token "$tok" --result '"A"'
	for call in renameat renameat2 openat write unlinkat; do
		n=$(count_calls "$log" "$call")
		for k in $(walk_points "$n"); do
			fresh_ws x
			tok=$(SW_DIR=$WA sw-claim next --ttl 30s | jq -r .token)
			rm -rf "$d"; mkdir -p "$d"
			SW_DIR=$WA stall_start "$call" "$k" "$d/A" sw-claim done x --token "$tok" --result '"A"'
			b_takes_over 1
			stall_resume
			a=$(cat "$d/A.rc")
			finished_once "$call #$k"
			unset SW_DIR
			cases=$((cases + 1))
		done
	done
	echo "# $cases stall points" >&3
	[ "$cases" -gt 5 ]
}

# A batch's placing races the recovery of its committed group on the
# other host.  MooseFS has no RENAME_NOREPLACE: a placing rename looks at
# the new name first, and one stopped before that look finds the done/x
# that B's recovery placed meanwhile: the item itself, not a file in the
# way to be moved aside as damaged.
@test "a batched done (a group) stalled on host A while host B recovers it: each item finished once, none moved aside" {
	local log=$BATS_TEST_TMPDIR/trace d=$BATS_TEST_TMPDIR/case batch=$BATS_TEST_TMPDIR/batch
	local point call k cases=0 a b res i=0
	mkdir "$A"
	claim_both() { SW_DIR=$WA sw-claim next -n 2 --ttl 30s | jq -c '.result = "A"' >"$batch"; }
	fresh_ws x y
	claim_both
	SW_DIR=$WA trace_counts "$log" sw-claim done <"$batch"
	for point in $(walk_calls "$log" renameat renameat2 openat write unlinkat); do
		call=${point%:*} k=${point#*:}
		fresh_ws x y
		claim_both
		rm -rf "$d"; mkdir -p "$d"
		SW_DIR=$WA STDIN=$batch stall_start "$call" "$k" "$d/A" sw-claim done
		b_takes_over 2
		stall_resume
		a=none
		jq -se 'any(.[]; .id == "x" and .ok == true)' "$d/A.out" >/dev/null 2>&1 && a=0
		finished_once "$call #$k"
		[ "$(sw-claim stats | jq .damaged)" = 0 ] ||
			{ echo "moved aside ($call #$k): $(ls -R "$WB/queues/default/damaged" 2>&1)"; return 1; }
		if jq -se 'any(.[]; .id == "y" and .ok == true)' "$d/A.out" >/dev/null 2>&1; then
			res=$(sw-claim show y | jq -r '"\(.state) \(.result)"')
			[ "$res" = "done A" ] || { echo "A told done, y is $res ($call #$k)"; return 1; }
		fi
		[ "$(count_places x y)" = $'x 1\ny 1' ] || { echo "$(count_places x y) ($call #$k)"; return 1; }
		unset SW_DIR
		cases=$((cases + 1))
	done
	echo "# $cases stall points" >&3
	[ "$cases" -gt 5 ]
}
