#!/usr/bin/env bats
# sw-claim on a real network filesystem mounted twice (two "hosts"):
# $SW_MH_A and $SW_MH_B are two client mounts of one MooseFS.  Items added
# through one mount are claimed through the other; claimers on both never
# get the same item; a --wait claimer on one sees work added on the other
# within its poll interval (inotify cannot see the other host).
load ../helper

q=mh

setup() {
	[ -n "${SW_MH_A:-}" ] && [ -n "${SW_MH_B:-}" ] ||
		skip "SW_MH_A and SW_MH_B are not set (no two-mount network filesystem here)"
	[ -d "$SW_MH_A" ] && [ -d "$SW_MH_B" ] || skip "SW_MH_A or SW_MH_B is not a directory"
	sub=sw-claim-test.$$.$BATS_TEST_NUMBER.$RANDOM
	A=$SW_MH_A/$sub
	B=$SW_MH_B/$sub
	mkdir "$A"
	# the other mount sees the directory (metadata may take a moment)
	for _ in $(seq 50); do [ -d "$B" ] && break; sleep 0.1; done
	[ -d "$B" ]
}

teardown() {
	[ -n "${A:-}" ] && rm -rf "$A"
	true
}

@test "items added through mount A are claimed, in order, through mount B" {
	for i in 1 2 3; do sw-claim add -d "$A" -q "$q" "$i" >/dev/null; done
	sw-claim add -d "$A" -q "$q" -p 0 '"urgent"' >/dev/null
	sw-claim stats -d "$B" -q "$q" | jq -e '.pending == 4'
	got=$(for i in 1 2 3 4; do
		out=$(sw-claim next -d "$B" -q "$q")
		sw-claim done -d "$B" -q "$q" "$(jq -r .id <<<"$out")" --token "$(jq -r .token <<<"$out")" >/dev/null
		jq -r .payload <<<"$out"
	done | tr '\n' ' ')
	[ "$got" = "urgent 1 2 3 " ]
	run sw-claim next -d "$A" -q "$q"
	[ "$status" -eq 75 ]
	sw-claim stats -d "$A" -q "$q" | jq -e '.done == 4 and .pending == 0 and .claimed == 0'
}

@test "a token from mount A is checked through mount B: stale refused, right accepted" {
	sw-claim add -d "$A" -q "$q" --id job 1 >/dev/null
	tok=$(sw-claim next -d "$A" -q "$q" | jq -r .token)
	run --separate-stderr sw-claim done -d "$B" -q "$q" job --token $((tok + 1))
	[ "$status" -eq 1 ]
	sw-claim renew -d "$B" -q "$q" job --token "$tok" | jq -e '.state == "claimed"'
	sw-claim done -d "$B" -q "$q" job --token "$tok" | jq -e '.state == "done"'
	[ "$(sw-claim show -d "$A" -q "$q" job | jq -r .state)" = done ]
}

# Claims through mount $2 until 75, completing each; logs claimed ids.
claimer() {
	local log=$1 ws=$2 out id tok
	while out=$(sw-claim next -d "$ws" -q "$q" 2>/dev/null); do
		[[ $out =~ ^\{\"id\":\"([^\"]+)\" ]] || { echo "bad output: $out" >>"$BATS_TEST_TMPDIR/err"; return; }
		id=${BASH_REMATCH[1]}
		[[ $out =~ \"token\":([0-9]+) ]] && tok=${BASH_REMATCH[1]}
		echo "$id" >>"$log"
		sw-claim done -d "$ws" -q "$q" "$id" --token "$tok" >/dev/null 2>&1 ||
			echo "done refused: $id" >>"$BATS_TEST_TMPDIR/err"
	done
}

@test "2 claimers on each mount, 2,000 items: each done exactly once, none lost" {
	d=$BATS_TEST_TMPDIR
	seq 1 2000 | sed 's/.*/{"payload":&}/' | sw-claim add -d "$A" -q "$q" | jq -r .id | sort >"$d/added"
	[ "$(wc -l <"$d/added")" -eq 2000 ]
	t0=$(date +%s%N)
	# plain bash processes: the test shell's tracing would slow the loops
	fns="$(declare -f claimer); q=$q BATS_TEST_TMPDIR=$BATS_TEST_TMPDIR"
	bash -c "$fns; claimer $d/a1 $A" & bash -c "$fns; claimer $d/a2 $A" &
	bash -c "$fns; claimer $d/b1 $B" & bash -c "$fns; claimer $d/b2 $B" &
	wait
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "2000 claims+dones over two mounts: $ms ms ($((2000 * 1000 / (ms + 1))) items/s)"
	[ ! -e "$d/err" ] || { cat "$d/err"; false; }
	cat "$d"/a1 "$d"/a2 >"$d/on-a"
	cat "$d"/b1 "$d"/b2 >"$d/on-b"
	# both hosts got work
	[ -s "$d/on-a" ]
	[ -s "$d/on-b" ]
	sort "$d/on-a" "$d/on-b" >"$d/claimed"
	[ -z "$(uniq -d "$d/claimed")" ]
	cmp "$d/added" "$d/claimed"
	sw-claim stats -d "$B" -q "$q" | jq -e '.done == 2000 and .pending == 0 and .claimed == 0'
}

@test "next --wait on mount B sees an item added on mount A within the poll interval" {
	sw-claim add -d "$A" -q "$q" 0 >/dev/null
	sw-claim next -d "$B" -q "$q" >/dev/null   # the queue exists, is empty
	SW_POLL=1s sw-claim next -d "$B" -q "$q" --wait=30s >"$BATS_TEST_TMPDIR/got" &
	pid=$!
	sleep 1.5
	sw-claim add -d "$A" -q "$q" '"from A"' >/dev/null
	wait "$pid"
	jq -e '.payload == "from A"' "$BATS_TEST_TMPDIR/got"
	# from the item's adding on A to its claim on B, by their own times
	# (the claim's lease runs --timeout from it; both mounts share this
	# machine's clock): the test's own execs over MooseFS, slow on a
	# loaded machine, are not counted
	local ms
	ms=$(jq -r '((.lease_expires_at_unix_ns | tonumber) - .timeout * 1e9
		- (.created_at_unix_ns | tonumber)) / 1e6 | floor' "$BATS_TEST_TMPDIR/got")
	echo "seen on B $ms ms after the add (SW_POLL=1s)"
	# one poll (at most 1 s with jitter) plus the mounts' metadata delay;
	# without polling it would wait out --wait=30s
	[ "$ms" -lt 2500 ]
}

@test "a claim taken on A whose holder died is taken back on B after the lease" {
	export SW_CLOCK_SKEW=1s
	sw-claim add -d "$A" -q "$q" --id lost 1 >/dev/null
	local first tok1 free out t
	first=$(sw-claim next -d "$A" -q "$q" --ttl 1s)
	tok1=$(jq -r .token <<<"$first")
	free=$(( $(jq -r .lease_expires_at_unix_ns <<<"$first") + 1000000000 ))
	# refused while A's lease and the skew margin last; a machine too
	# busy to ask before then is said, not failed; a claim is never early
	run sw-claim next -d "$B" -q "$q"
	t=$(date +%s%N)
	if [ "$t" -lt "$free" ]; then
		[ "$status" -eq 75 ]
	else
		echo "asked $(( (t - free) / 1000000 )) ms after the lease and margin ended"
	fi
	[ "$status" -ne 0 ] || out=$output
	for _ in $(seq 100); do
		[ -z "${out:-}" ] || break
		out=$(sw-claim next -d "$B" -q "$q" 2>/dev/null) && break
		out=
		sleep 0.1
	done
	[ "$(date +%s%N)" -ge "$free" ]
	jq -e '.id == "lost" and .attempt == 2' <<<"$out"
	run --separate-stderr sw-claim done -d "$A" -q "$q" lost --token "$tok1"
	[ "$status" -eq 1 ]
}

@test "a batch of done through B frees the items waiting for its items on A, and only those (a network filesystem: deps/ read once)" {
	for i in a b x; do sw-claim add -d "$A" -q "$q" --id "$i" "\"$i\"" >/dev/null; done
	sw-claim add -d "$A" -q "$q" --id c --after a '"c"' >/dev/null
	sw-claim add -d "$A" -q "$q" --id d --after a,b '"d"' >/dev/null
	sw-claim add -d "$A" -q "$q" --id e --after x '"e"' >/dev/null
	sw-claim next -d "$B" -q "$q" -n 3 | jq -c 'select(.id != "x")' | sw-claim done -d "$B" >/dev/null
	run sw-claim list -d "$A" -q "$q"
	[ "$status" -eq 0 ]
	got=$(jq -r '"\(.id)=\(.state)"' <<<"$output" | sort | tr '\n' ' ')
	[ "$got" = "a=done b=done c=pending d=pending e=blocked x=claimed " ]
}

@test "the same --id added on both mounts at once is one item" {
	for i in $(seq 1 20); do
		sw-claim add -d "$A" -q "$q" --id "job-$i" '"a"' >"$BATS_TEST_TMPDIR/a.$i" &
		sw-claim add -d "$B" -q "$q" --id "job-$i" '"b"' >"$BATS_TEST_TMPDIR/b.$i" &
		wait
		[ "$(cat "$BATS_TEST_TMPDIR/a.$i" "$BATS_TEST_TMPDIR/b.$i" | jq -s 'map(select(.added)) | length')" -eq 1 ]
	done
	sw-claim stats -d "$B" -q "$q" | jq -e '.pending == 20'
}
