#!/usr/bin/env bats
# sw-limit on one host: every verb, the exit codes of DESIGN.md §4, the
# bad inputs of the issue (one line, 64 or 65, nothing written), the token
# bucket and the sliding window held by 8 processes taking flat out,
# concurrency slots held by a command's whole tree (never more than N at
# once, a SIGKILLed holder's slot free after its TTL, a stalled holder
# stopped the moment it resumes), the fencing token in the command's
# environment, damaged versions, spans and the sw-metrics gauges.
#
# The flat-out rate test runs SW_LIMIT_RATE_SECS seconds (default 5, the
# bound scaled to it; the issue's 30 s: make check-long): two cores shared
# with others make 30 s twice per make check too long.
load helper
load proc
load flow

teardown() { untrack_all; }


nothing_written() { [ -z "$(ls -A "$SW_DIR/limits" 2>/dev/null)" ]; }

# ---- help and usage ------------------------------------------------------

@test "--help prints usage naming every verb to stdout, exit 0; -V the version" {
	run --separate-stderr sw-limit --help
	[ "$status" -eq 0 ]
	for v in take run acquire renew release show list reset; do
		[[ $output == *"  $v "* ]] || { echo "missing $v"; return 1; }
	done
	run sw-limit -V
	[[ $output == "sw-limit "[0-9]* ]]
}

@test "usage errors: 64, one line, nothing written" {
	refused 64 sw-limit
	refused 64 sw-limit frobnicate x
	refused 64 sw-limit take x
	refused 64 sw-limit take x --rate 5/s --window 1s --max 3
	refused 64 sw-limit take x --burst 3
	refused 64 sw-limit take x --window 1s
	refused 64 sw-limit take x --max 3
	refused 64 sw-limit take x --rate 5/s --burst 3 -n 4
	refused 64 sw-limit take x --window 1s --max 3 -n 4
	refused 64 sw-limit take x --rate 5/s --concurrency 2
	refused 64 sw-limit acquire x
	refused 64 sw-limit renew x --slot 1
	refused 64 sw-limit release x --token 1
	refused 64 sw-limit run x -- true
	refused 64 sw-limit run x --concurrency 2
	refused 64 sw-limit list extra
	nothing_written
}

@test "bad rates, bursts and windows: 64, one line, nothing written" {
	local r
	for r in 0/s -1/s 5/fortnight 1.5/s /s 5 5/ 5/S +5/s 1e3/s 0x10/s 2000000/s 99999999999999999999999/s; do
		refused 64 sw-limit take x --rate "$r" || { echo "rate $r"; return 1; }
	done
	refused 64 sw-limit take x --rate 5/s --burst 0
	refused 64 sw-limit take x --rate 5/s --burst 10000001
	refused 64 sw-limit take x --rate 5/s --burst 99999999999999999999999
	refused 64 sw-limit take x --rate 1/d --burst 1000000     # a burst worth 2700 years
	refused 64 sw-limit take x --window 0 --max 3
	refused 64 sw-limit take x --window soon --max 3
	refused 64 sw-limit take x --window 1s --max 0
	refused 64 sw-limit take x --window 1s --max 100001
	refused 64 sw-limit acquire x --concurrency 0
	refused 64 sw-limit acquire x --concurrency 1001
	refused 64 sw-limit acquire x --concurrency 2 --ttl 0
	nothing_written
	[ ! -e "$SW_DIR/limits" ]
}

@test "bad names: 65, one line, nothing written" {
	local n
	for n in a/b .. ../x .hidden "$(printf 'a\001b')" "$(printf 'x%.0s' {1..201})"; do
		refused 65 sw-limit take "$n" --rate 5/s || { echo "name $n"; return 1; }
	done
	refused 65 sw-limit run a/b --concurrency 2 -- true
	refused 65 sw-limit acquire ok --concurrency 2 --owner a/b
	refused 65 sw-limit release ok --slot 1 --token 0
	nothing_written
	[ ! -e "$SW_DIR/escape" ]
	[ ! -e "$SW_DIR/x" ]
}

# ---- the token bucket -----------------------------------------------------

@test "take: the burst at once, then 75 with retry_after_ms about one interval" {
	local k    # not i: bats's run sets it
	for k in 1 2 3; do
		run --separate-stderr sw-limit take api --rate 1/m --burst 3
		[ "$status" -eq 0 ]
		jq -e ".granted and .count == 1 and .available == $((3 - k))" <<<"$output"
	done
	run --separate-stderr sw-limit take api --rate 1/m --burst 3
	[ "$status" -eq 75 ]
	jq -e '.granted == false and .retry_after_ms > 50000 and .retry_after_ms <= 60000 and (.retry_at_unix_ns | tonumber) > 0' <<<"$output"
	[ "${#stderr_lines[@]}" -eq 1 ]
	[[ $stderr == *"retry after"* ]]
}

@test "take -n COUNT takes several at once; --quiet prints nothing, 75 included" {
	run sw-limit take api --rate 1/s --burst 5 -n 4
	jq -e '.granted and .count == 4 and .available == 1' <<<"$output"
	run --separate-stderr sw-limit take api --rate 1/s --burst 5 -n 2 --quiet
	[ "$status" -eq 75 ]
	[ -z "$output" ]
	[ -z "$stderr" ]
	run sw-limit take api --rate 1/s --burst 5 --quiet
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "take --wait is a smooth shaper: 6 takers of 5/s are granted one every 200 ms" {
	# 5/s, not faster: the takers must come faster than the rate however
	# slowly a busy machine (or ASan) starts them
	local i
	for i in 1 2 3 4 5 6; do
		sw-limit take shape --rate 5/s --wait >"$BATS_TEST_TMPDIR/t$i" &
	done
	wait
	cat "$BATS_TEST_TMPDIR"/t* | jq -s -e 'length == 6 and all(.granted)'
	# the grant times are 200 ms apart at least, whoever won each race
	cat "$BATS_TEST_TMPDIR"/t* | jq -s -e '[.[].granted_at_unix_ns | tonumber] | sort |
		[range(1; length) as $i | .[$i] - .[$i - 1]] | all(. >= 199000000)'
	cat "$BATS_TEST_TMPDIR"/t* | jq -s -e '[.[].waited_ms] | max >= 200'
}

@test "take --wait=DUR shorter than the wait is refused at once (75), reserving nothing" {
	local first due t t1 granted sleeps=$BATS_TEST_TMPDIR/sleeps trace=()
	first=$(sw-limit take s --rate 1/s | jq -r .granted_at_unix_ns)
	due=$((first + 1000000000))     # when the rate allows the next grant
	# "at once": strace lists the sleeps the call asks for; one that waits
	# asks for the wait, and a loaded machine lengthens none of them (as
	# it does any bound on the wall-clock time of the call)
	command -v strace >/dev/null &&
		trace=(strace -f -qq -o "$sleeps" -e trace=nanosleep,clock_nanosleep)
	run --separate-stderr "${trace[@]}" sw-limit take s --rate 1/s --wait=200ms
	t=$(date +%s%N)
	# decided more than 200 ms before the grant is due: refused (a machine
	# too busy to ask that early does not reach this: said, not failed)
	if [ "$t" -lt $((due - 200000000)) ]; then
		[ "$status" -eq 75 ]
	else
		echo "asked $(( (t - due + 200000000) / 1000000 )) ms too late for the refusal"
	fi
	if [ "$status" -eq 75 ]; then
		# refused only for a wait longer than DUR, and without waiting
		jq -e '.retry_after_ms > 200' <<<"$output"
		[ "$(jq -r .retry_at_unix_ns <<<"$output")" -eq "$due" ]
		if [ -n "${trace[*]}" ]; then
			cat "$sleeps"
			[ "$(awk 'match($0, /tv_sec=[0-9]+, tv_nsec=[0-9]+/) {
				split(substr($0, RSTART, RLENGTH), f, /[=,]/); ns += f[2] * 1e9 + f[4] }
				END { print int(ns / 1e6) }' "$sleeps")" -lt 100 ]
		fi
	else
		# a grant: never early, and within DUR of the decision
		[ "$status" -eq 0 ]
		[ "$(jq -r .granted_at_unix_ns <<<"$output")" -ge "$due" ]
		jq -e '.waited_ms <= 200' <<<"$output"
	fi
	local refused=$status
	t1=$(date +%s%N)
	run sw-limit take s --rate 1/s --wait=2s
	[ "$status" -eq 0 ]
	# granted no sooner than the rate allows: it waited for that, however
	# long the calls before it took on a loaded machine
	granted=$(jq -r .granted_at_unix_ns <<<"$output")
	[ "$granted" -ge "$due" ]
	(( t1 >= due - 100000000 )) || jq -e '.waited_ms > 0' <<<"$output"
	# the refusal reserved nothing: a grant that waited came when the rate
	# first allowed one, not an interval later
	[ "$refused" -ne 75 ] || jq -e '.waited_ms == 0' <<<"$output" || [ "$granted" -eq "$due" ]
}

@test "8 processes taking flat out under --rate 50/s --burst 10: at most 50/s x T + 10, at least 95% of what an exact bucket grants their calls" {
	local secs=${SW_LIMIT_RATE_SECS:-5}
	flat_out api "$secs" 8 env -- --rate 50/s --burst 10
	rate_held 50 10 "$secs"
}

# ---- the sliding window -------------------------------------------------

@test "window: --max grants in any --window, then 75 until the oldest leaves it" {
	# A 3 s window: the four calls and show fit in it even under ASan on a
	# loaded machine; the wait is the one the refusal names.
	local i t0 t1 retry
	t0=$(date +%s%N)
	for i in 1 2 3; do sw-limit take w --window 3s --max 3 --quiet; done
	run --separate-stderr sw-limit take w --window 3s --max 3
	t1=$(date +%s%N)
	[ "$status" -eq 75 ]
	retry=$(jq -r .retry_after_ms <<<"$output")
	# the oldest grant leaves the window 3 s after it was made
	[ "$retry" -gt 0 ]
	[ "$retry" -le 3000 ]
	[ "$retry" -ge $((3000 - (t1 - t0) / 1000000 - 1)) ]
	run sw-limit show w
	jq -e '.window.in_window == 3 and .window.available == 0 and .window.max == 3' <<<"$output"
	sleep "$(awk -v ms="$retry" 'BEGIN { printf "%.3f", ms / 1000 + 0.05 }')"
	run sw-limit take w --window 3s --max 3
	[ "$status" -eq 0 ]
}

@test "window: 8 processes flat out never put more than --max grants in any window" {
	flat_out win 3 8 env -- --window 500ms --max 7
	local n ideal
	n=$(wc -l <"$BATS_TEST_TMPDIR/granted")
	ideal=$(window_ideal 7 500000000)
	echo "granted $n in 3 s under 7 per 500 ms; an exact window grants the same calls $ideal"
	[ "$n" -le 49 ]
	window_held 7 500000000
	[ "$n" -ge $(( ideal * 90 / 100 )) ]   # not starved, judged against the calls made
}

# ---- slots ----------------------------------------------------------------------

@test "acquire prints slot and token; N held: 75; release frees one; renew extends; stale token: 1" {
	local a b
	a=$(sw-limit acquire pg --concurrency 2 --ttl 10s)
	b=$(sw-limit acquire pg --concurrency 2)
	jq -e '.name == "pg" and .state == "held" and .token == 1 and (.slot == 1 or .slot == 2)' <<<"$a"
	[ "$(jq .slot <<<"$a")" != "$(jq .slot <<<"$b")" ]
	refused 75 sw-limit acquire pg --concurrency 2
	local slot tok
	slot=$(jq .slot <<<"$a"); tok=$(jq .token <<<"$a")
	run sw-limit renew pg --slot "$slot" --token "$tok" --ttl 20s
	[ "$status" -eq 0 ]
	jq -e '.ttl_ms == 20000' <<<"$output"
	refused 1 sw-limit release pg --slot "$slot" --token $((tok + 1))
	sw-limit release pg --slot "$slot" --token "$tok" --quiet
	run sw-limit acquire pg --concurrency 2
	jq -e ".slot == $slot and .token == $((tok + 1))" <<<"$output"
	run sw-limit show pg
	jq -e '.slots.held == 2 and (.slots.slots | length) == 2 and .limited.slot == 1' <<<"$output"
}

@test "run passes the command's status, SW_LIMIT_NAME, SW_LIMIT_SLOT, SW_LIMIT_TOKEN (the slot's fencing token), SW_DIR and TRACEPARENT" {
	run --separate-stderr sw-limit run pg --concurrency 3 -- sh -c '
		echo "$SW_LIMIT_NAME $SW_LIMIT_SLOT $SW_LIMIT_TOKEN"
		sw-limit show pg | jq -r ".slots.slots[] | select(.slot == $SW_LIMIT_SLOT) | .token"
		echo "$TRACEPARENT"; exit 7'
	[ "$status" -eq 7 ]
	local slot tok
	read -r name slot tok <<<"${lines[0]}"
	[ "$name" = pg ]
	[ "$slot" -ge 1 ]
	[ "$slot" -le 3 ]
	[ "${lines[1]}" = "$tok" ]
	[[ ${lines[2]} =~ ^00-[0-9a-f]{32}-[0-9a-f]{16}-01$ ]]
	run sw-limit show pg
	jq -e '.slots.held == 0' <<<"$output"
	# SW_DIR: the workspace, absolute, whatever -d said
	cd "$BATS_TEST_TMPDIR"
	mkdir rel
	run sw-limit run pg -d rel --concurrency 1 -- sh -c 'cd / && echo "$SW_DIR" && sw-limit show pg | jq .slots.held'
	[ "${lines[0]}" = "$BATS_TEST_TMPDIR/rel" ]
	[ "${lines[1]}" = 1 ]
	# a rate alone: the name, no slot
	run sw-limit run api --rate 5/s -- sh -c 'echo "${SW_LIMIT_NAME}:${SW_LIMIT_SLOT-none}"'
	[ "$output" = "api:none" ]
}

@test "run when limited: 75 (or -E CODE), the command does not run; command not found: 127, slot given back" {
	sw-limit take api --rate 1/m --quiet
	run --separate-stderr sw-limit run api --rate 1/m -- touch "$BATS_TEST_TMPDIR/ran"
	[ "$status" -eq 75 ]
	[ ! -e "$BATS_TEST_TMPDIR/ran" ]
	[[ $stderr == *limited* ]]
	run sw-limit run api --rate 1/m -E 0 -- touch "$BATS_TEST_TMPDIR/ran"
	[ "$status" -eq 0 ]
	[ ! -e "$BATS_TEST_TMPDIR/ran" ]
	run -127 sw-limit run pg --concurrency 1 -- /nonexistent/cmd
	run sw-limit show pg
	jq -e '.slots.held == 0' <<<"$output"
}

@test "run --concurrency 3 from 10 processes: never more than 3 commands at once, all 10 run" {
	local d=$BATS_TEST_TMPDIR/running i
	mkdir "$d"
	for i in $(seq 10); do
		sw-limit run pg --concurrency 3 --wait -- sh -c '
			touch "$0/$$"; ls "$0" | wc -l >>"$0.seen"; sleep 0.3
			ls "$0" | wc -l >>"$0.seen"; rm "$0/$$"; echo ran >>"$0.ran"' "$d" &
	done
	wait
	[ "$(wc -l <"$d.ran")" -eq 10 ]
	echo "most at once: $(sort -n "$d.seen" | tail -1)"
	[ "$(sort -n "$d.seen" | tail -1)" -le 3 ]
}

@test "a SIGKILLed holder's slot frees after its TTL (plus the skew margin), not before" {
	export SW_CLOCK_SKEW=300ms
	sw-limit run pg --concurrency 1 --ttl 1s -- sleep 30 >/dev/null 2>&1 3>&- &
	local pid=$!
	track "$pid"
	# killed once it holds the slot: a loaded machine may take longer
	# than any fixed sleep to start it
	wait_until 10 slot_held pg || { echo "never held"; return 1; }
	local tree
	tree=$(tree_pids "$pid")
	track $tree
	kill -KILL $tree
	wait "$pid" || true
	local exp free
	exp=$(sw-limit show pg | jq -r '.slots.slots[0].expires_at_unix_ns')
	free=$((exp + 300000000))
	# a grant is never early
	refused_then_taken "$free" sw-limit acquire pg --concurrency 1
	[ "$(date +%s%N)" -ge "$free" ]
}

@test "run renews the slot: a command longer than the TTL keeps it" {
	# a 1 s TTL: each renewal (every third of it) has over half a second
	# to land before the expiry draws near, however busy the machine; the
	# command outlasts three TTLs, and an expired slot is not renewed (its
	# own renew is then 1)
	run --separate-stderr sw-limit run pg --concurrency 1 --ttl 1s -- sh -c '
		sleep 3; sw-limit renew pg --slot $SW_LIMIT_SLOT --token $SW_LIMIT_TOKEN --quiet'
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
}

@test "a slot holder and its command stopped (SIGSTOP) past the TTL: the command is SIGKILLed the moment run resumes" {
	export SW_CLOCK_SKEW=200ms
	beat_run sw-limit pg --concurrency 1 --ttl 1s -g 10s
	stall_tree "$pid"
	sleep 2      # past the TTL and the margin
	# meanwhile the slot is another's
	run sw-limit acquire pg --concurrency 1
	[ "$status" -eq 0 ]
	resume_tree sw-limit
}

@test "a slot holder whose worker alone is stopped (SIGSTOP) past the TTL: the guardian kills the command before the next holder's starts" {
	export SW_CLOCK_SKEW=200ms
	beat_run sw-limit pg --concurrency 1 --ttl 900ms -g 10s
	stall_worker "$pid"
	sw-limit run pg --concurrency 1 --wait 10s -- sh -c 'date +%s%N >started; sleep 0.3'
	resume_worker
}

@test "the command does not outlive a SIGKILLed sw-limit run, and the slot is given back once it is gone, long before its TTL" {
	sw-limit run pg --concurrency 1 --ttl 60s -- sh -c 'echo $$ >"$0"; exec sleep 30' "$BATS_TEST_TMPDIR/pid" >/dev/null 2>&1 3>&- &
	local pid=$!
	wait_until 5 test -s "$BATS_TEST_TMPDIR/pid"
	local child
	child=$(cat "$BATS_TEST_TMPDIR/pid")
	track "$child"
	kill -KILL "$pid"
	wait "$pid" || true
	wait_until 10 gone "$child"     # gone soon; a loaded machine may take seconds
	# released by the child the guardian left, not expired
	wait_until 10 sw-limit acquire pg --concurrency 1 --quiet
}

# ---- show, list, reset, damage ------------------------------------------

@test "show: 1 for an unknown limit; list: one line per limit, sorted; reset forgets the grants, not the counts" {
	refused 1 sw-limit show nope
	run sw-limit list
	[ -z "$output" ]
	sw-limit take b --rate 1/h --quiet
	sw-limit take a --window 1h --max 1 --quiet
	run sw-limit take b --rate 1/h --quiet
	[ "$status" -eq 75 ]
	run sw-limit list
	[ "${#lines[@]}" -eq 2 ]
	jq -s -e '.[0].name == "a" and .[1].name == "b" and .[1].bucket.available == 0 and .[1].limited.rate == 1' <<<"$output"
	run sw-limit reset b
	jq -e '.bucket.available == 1 and .bucket.granted == 1' <<<"$output"
	run sw-limit take b --rate 1/h
	[ "$status" -eq 0 ]
	sw-limit reset a --quiet
	run sw-limit take a --window 1h --max 1
	[ "$status" -eq 0 ]
	refused 1 sw-limit reset nope
}

@test "a damaged newest version counts as an emptied bucket at its write time: limited for one burst, then granted" {
	# 1/s: the take after the damage comes well within one interval of it,
	# however busy the machine
	sw-limit take d --rate 1/s --burst 5 --quiet
	local dir=$SW_DIR/limits/d/bucket
	printf 'garbage' >"$dir/v.00000000000000000002"
	run --separate-stderr sw-limit take d --rate 1/s --burst 5
	[ "$status" -eq 75 ]
	[[ $stderr == *damaged* ]]
	jq -e '.retry_after_ms > 0 and .retry_after_ms <= 1000' <<<"$output"
	sleep 1.01
	run --separate-stderr sw-limit take d --rate 1/s --burst 5
	[ "$status" -eq 0 ]
	# a FIFO in place of a version does not hang anyone
	mkfifo "$dir/v.00000000000000000004"
	run timeout 5 sw-limit take d --rate 1/s --burst 5
	[ "$status" -eq 75 ] || [ "$status" -eq 0 ]
}

@test "leftover temporary files and foreign entries are ignored" {
	sw-limit take t --rate 10/s --quiet
	touch "$SW_DIR/limits/t/bucket/.tmp.123.abc" "$SW_DIR/limits/t/bucket/README"
	mkdir "$SW_DIR/limits/.hidden"
	run sw-limit take t --rate 10/s --burst 2
	[ "$status" -eq 0 ]
	run sw-limit list
	[ "${#lines[@]}" -eq 1 ]
}

# ---- telemetry -------------------------------------------------------------

@test "--spans: one OTLP span per take with sw.limit.name and sw.limit.granted; a refusal is not an error" {
	run --separate-stderr sw-limit take api --rate 1/h --spans=stderr
	jq -e '.resourceSpans[0].scopeSpans[0].spans[0] | .name == "sw-limit take" and
		(.attributes | map(select(.key == "sw.limit.name"))[0].value.stringValue == "api") and
		(.attributes | map(select(.key == "sw.limit.granted"))[0].value.stringValue == "true")' <<<"$stderr"
	run --separate-stderr sw-limit take api --rate 1/h --spans=stderr
	[ "$status" -eq 75 ]
	grep resourceSpans <<<"$stderr" | jq -e '.resourceSpans[0].scopeSpans[0].spans[0] |
		.status.code == 1 and (.attributes | map(select(.key == "sw.limit.granted"))[0].value.stringValue == "false")'
	# a slot's grant and its refusal
	run --separate-stderr sw-limit acquire pg --concurrency 1 --spans=stderr
	grep resourceSpans <<<"$stderr" | jq -e '.resourceSpans[0].scopeSpans[0].spans[0] | .name == "sw-limit acquire" and
		(.attributes | map(select(.key == "sw.limit.kind"))[0].value.stringValue == "slot") and
		(.attributes | map(select(.key == "sw.limit.slot"))[0].value.intValue == "1")'
	run --separate-stderr sw-limit acquire pg --concurrency 1 --spans=stderr
	[ "$status" -eq 75 ]
	grep resourceSpans <<<"$stderr" | jq -e '.resourceSpans[0].scopeSpans[0].spans[0] | .status.code == 1 and
		(.attributes | map(select(.key == "sw.limit.kind"))[0].value.stringValue == "slot")'
}

@test "sw-metrics export has sw_limit_granted_total, sw_limit_limited_total and sw_limit_slots_in_use by name" {
	export SW_METRICS_DB=$BATS_TEST_TMPDIR/m.db
	sw-limit take api --rate 1/h --quiet
	sw-limit take api --rate 1/h --quiet || true
	sw-limit acquire pg --concurrency 2 --quiet
	run sw-metrics export
	[ "$status" -eq 0 ]
	grep -qx 'sw_limit_granted_total{name="api",kind="rate"} 1' <<<"$output"
	grep -qx 'sw_limit_limited_total{name="api",kind="rate"} 1' <<<"$output"
	grep -qx 'sw_limit_granted_total{name="pg",kind="slot"} 1' <<<"$output"
	grep -qx 'sw_limit_slots_in_use{name="pg"} 1' <<<"$output"
	run sw-metrics inc sw_limit_granted_total
	[ "$status" -eq 65 ] || [ "$status" -eq 64 ]
}
