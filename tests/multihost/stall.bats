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

@test "a done stalled on host A while host B reaps and finishes: finished once" {
	local log=$BATS_TEST_TMPDIR/trace d=$BATS_TEST_TMPDIR/case call n k cases=0 j a b res
	local i=0
	mkdir "$A"
	prep() { # a fresh workspace each time: a reused directory name looks old on the other mount
		i=$((i + 1))
		WA=$A/$i WB=$B/$i
		mkdir "$WA"
		for _ in $(seq 50); do [ -d "$WB" ] && break; sleep 0.1; done
		SW_DIR=$WA sw-claim add --id x '"p"' >/dev/null
		TOK=$(SW_DIR=$WA sw-claim next --ttl 30s | jq -r .token)
	}
	prep
	SW_DIR=$WA trace_counts "$log" sw-claim done x --token "$TOK" --result '"A"'
	for call in renameat renameat2 openat write unlinkat; do
		n=$(count_calls "$log" "$call")
		for k in $(walk_points "$n"); do
			prep
			rm -rf "$d"; mkdir -p "$d"
			SW_DIR=$WA stall_start "$call" "$k" "$d/A" sw-claim done x --token "$TOK" --result '"A"'
			export SW_DIR=$WB SW_CLOCK_OFFSET=1h
			sw-claim reap >/dev/null 2>&1 || true
			b=none
			if j=$(sw-claim next 2>/dev/null); then
				b=0; sw-claim done x --token "$(jq -r .token <<<"$j")" --result '"B"' >/dev/null 2>&1 || b=$?
			fi
			unset SW_CLOCK_OFFSET
			stall_resume
			a=$(cat "$d/A.rc")
			SW_CLOCK_OFFSET=2h sw-claim reap >/dev/null 2>&1 || true
			res=$(sw-claim show x | jq -r '"\(.state) \(.result)"')
			unset SW_DIR
			if [ "$a" = 0 ] && [ "$b" = 0 ]; then echo "both finished x ($call #$k)"; return 1; fi
			if [ "$a" = 0 ] && [ "$res" != "done A" ]; then echo "A told done, x is $res ($call #$k)"; return 1; fi
			if [ "$b" = 0 ] && [ "$res" != "done B" ]; then echo "B told done, x is $res ($call #$k)"; return 1; fi
			[ "$res" != "${res#done}" ] || { echo "x is $res ($call #$k)"; return 1; }
			[ -z "$(ls "$WB/queues/default/stage")" ] || { echo "left in stage ($call #$k)"; return 1; }
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
	local point call k cases=0 j a b res i=0
	mkdir "$A"
	prep() {
		i=$((i + 1))
		WA=$A/$i WB=$B/$i
		mkdir "$WA"
		for _ in $(seq 50); do [ -d "$WB" ] && break; sleep 0.1; done
		SW_DIR=$WA sw-claim add --id x '"p"' >/dev/null
		SW_DIR=$WA sw-claim add --id y '"q"' >/dev/null
		SW_DIR=$WA sw-claim next -n 2 --ttl 30s | jq -c '.result = "A"' >"$batch"
	}
	prep
	SW_DIR=$WA trace_counts "$log" sw-claim done <"$batch"
	for point in $(walk_calls "$log" renameat renameat2 openat write unlinkat); do
		call=${point%:*} k=${point#*:}
		prep
		rm -rf "$d"; mkdir -p "$d"
		SW_DIR=$WA STDIN=$batch stall_start "$call" "$k" "$d/A" sw-claim done
		export SW_DIR=$WB SW_CLOCK_OFFSET=1h
		sw-claim reap >/dev/null 2>&1 || true
		b=none
		if j=$(sw-claim next -n 2 2>/dev/null | jq -c 'select(.id == "x")') && [ -n "$j" ]; then
			b=0; sw-claim done x --token "$(jq -r .token <<<"$j")" --result '"B"' >/dev/null 2>&1 || b=$?
		fi
		unset SW_CLOCK_OFFSET
		stall_resume
		SW_CLOCK_OFFSET=2h sw-claim reap >/dev/null 2>&1 || true
		a=none
		jq -se 'any(.[]; .id == "x" and .ok == true)' "$d/A.out" >/dev/null 2>&1 && a=0
		res=$(sw-claim show x | jq -r '"\(.state) \(.result)"')
		[ "$(sw-claim stats | jq .damaged)" = 0 ] ||
			{ echo "moved aside ($call #$k): $(ls -R "$WB/queues/default/damaged" 2>&1)"; return 1; }
		if [ "$a" = 0 ] && [ "$b" = 0 ]; then echo "both finished x ($call #$k)"; return 1; fi
		if [ "$a" = 0 ] && [ "$res" != "done A" ]; then echo "A told done, x is $res ($call #$k)"; return 1; fi
		if [ "$b" = 0 ] && [ "$res" != "done B" ]; then echo "B told done, x is $res ($call #$k)"; return 1; fi
		if jq -se 'any(.[]; .id == "y" and .ok == true)' "$d/A.out" >/dev/null 2>&1; then
			res=$(sw-claim show y | jq -r '"\(.state) \(.result)"')
			[ "$res" = "done A" ] || { echo "A told done, y is $res ($call #$k)"; return 1; }
		fi
		[ "$(count_places x y)" = $'x 1\ny 1' ] || { echo "$(count_places x y) ($call #$k)"; return 1; }
		[ -z "$(ls "$WB/queues/default/stage")" ] || { echo "left in stage ($call #$k)"; return 1; }
		unset SW_DIR
		cases=$((cases + 1))
	done
	echo "# $cases stall points" >&3
	[ "$cases" -gt 5 ]
}
