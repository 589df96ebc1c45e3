#!/usr/bin/env bats
# Numbers survive jq: every integer a program prints in JSON is exactly
# representable as a double (at most 2^53) or travels as a decimal string,
# so jq 1.6, which reads every number as a double, never rounds one.
load helper

# Fails, naming the field, if any number in the JSON on stdin is past 2^53
# (a rounded value stays past it) or any *_unix_ns field is not a string.
exact() {
	jq -e -c '[paths(numbers) as $p | select(getpath($p) | fabs > 9007199254740992) | $p]
		+ [paths as $p | select(($p[-1] | type) == "string" and ($p[-1] | endswith("_unix_ns"))
			and (getpath($p) | type) != "string") | $p]
		| if length == 0 then true else ("inexact: \(.)" | halt_error(1)) end' >/dev/null
}

@test "sw-claim's add, next, show, list, stats, renew, done, fail print only exact numbers" {
	sw-claim add --delay 1h '"later"' | exact
	sw-claim add --max-attempts 3 '{"n":1}' | exact
	j=$(sw-claim next --ttl 1m)
	exact <<<"$j"
	ID=$(jq -r .id <<<"$j") TOK=$(jq -r .token <<<"$j")
	sw-claim show "$ID" | exact
	sw-claim renew "$ID" --token "$TOK" --ttl 2m | exact
	sw-claim fail "$ID" --token "$TOK" --retry-in 0 | exact
	j=$(sw-claim next)
	sw-claim done "$(jq -r .id <<<"$j")" --token "$(jq -r .token <<<"$j")" --result 1 | exact
	sw-claim list --state all | exact
	sw-claim stats | exact
}

@test "sw-lease's acquire, show, renew, list, release print only exact numbers" {
	j=$(sw-lease acquire job --ttl 10s)
	exact <<<"$j"
	tok=$(jq -r .token <<<"$j")
	sw-lease renew job --token "$tok" | exact
	sw-lease show job | exact
	sw-lease list | exact
	sw-lease release job --token "$tok" | exact
}

@test "sw-agent's records print only exact numbers" {
	sw-claim add '"x"' >/dev/null
	sw-agent run --max-items 1 --idle-exit 1s --quiet -- true
	sw-agent list --all | exact
}

@test "sw-sim's report, stats lines and fs findings, and the results its jobs leave, print only exact numbers" {
	export TMPDIR=$BATS_TEST_TMPDIR
	sw-sim run --agents 2 --duration 1s --rate 5/s --job-time 10ms --stats-every 500ms --seed 9007199254740991 \
		--keep "$BATS_TEST_TMPDIR/keep" --json | exact
	sw-claim list -d "$BATS_TEST_TMPDIR/keep/ws" --state all | exact
	mkdir "$BATS_TEST_TMPDIR/fs"
	sw-sim fs "$BATS_TEST_TMPDIR/fs" --rounds 5 --json | exact
}

@test "sw-limit's take, acquire, renew, release, show, list and reset print only exact numbers" {
	sw-limit take api --rate 1/h | exact
	run --separate-stderr sw-limit take api --rate 1/h
	[ "$status" -eq 75 ]
	exact <<<"$output"
	sw-limit take win --window 1h --max 2 | exact
	sw-limit take win --window 1h --max 2 --wait=1s | exact
	j=$(sw-limit acquire pg --concurrency 2 --ttl 10s)
	exact <<<"$j"
	slot=$(jq -r .slot <<<"$j") tok=$(jq -r .token <<<"$j")
	sw-limit renew pg --slot "$slot" --token "$tok" | exact
	sw-limit show pg | exact
	sw-limit show api | exact
	sw-limit show win | exact
	sw-limit list | exact
	sw-limit release pg --slot "$slot" --token "$tok" | exact
	sw-limit reset api | exact
	# the stored versions too
	cat "$SW_DIR"/limits/api/bucket/v.* | exact
}

@test "sw-breaker's check, record, trip, show, list and reset print only exact numbers" {
	sw-breaker check pay | exact
	sw-breaker record pay --fail --failures 1 | exact
	run --separate-stderr sw-breaker check pay
	[ "$status" -eq 75 ]
	exact <<<"$output"
	sw-breaker show pay | exact
	sw-breaker trip probe --cooldown 1ms | exact
	sleep 0.01
	sw-breaker check probe --cooldown 1ms | exact
	sw-breaker show probe | exact
	sw-breaker list | exact
	sw-breaker reset pay | exact
	cat "$SW_DIR"/breakers/probe/v.* | exact
}

@test "the check itself fails on a time as a number" {
	run exact <<<'{"created_at_unix_ns":1796000000000000000}'
	[ "$status" -ne 0 ]
	run exact <<<'{"n":9007199254740994}'
	[ "$status" -ne 0 ]
	exact <<<'{"n":9007199254740992,"t_unix_ns":"1796000000000000000"}'
}
