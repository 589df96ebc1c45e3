#!/usr/bin/env bats
# sw-claim: every verb and option of `sw-claim --help`, the exit codes of
# DESIGN.md §4, spans, and the bad inputs of issue 2 (one line on stderr,
# the documented code, nothing written).
load helper

# Items in every state of every queue (0 when there is no queue yet).
nitems() {
	sw-claim stats 2>/dev/null |
		jq -s '[.[] | .pending + .delayed + .blocked + .claimed + .done + .dead + .cancelled] | add // 0'
}

# Claims one item: sets ID, TOK (fencing token) and ATT (attempt).
claim() {
	local j
	j=$(sw-claim next "$@") || return
	ID=$(jq -r .id <<<"$j")
	TOK=$(jq -r .token <<<"$j")
	ATT=$(jq -r .attempt <<<"$j")
}

state_of() { sw-claim show "$1" | jq -r .state; }

# run + the contract for a refused input: status, exactly one line on
# stderr naming the program, nothing on stdout, nothing added.
refused() {
	local want=$1; shift
	local before
	before=$(nitems)
	run --separate-stderr "$@"
	[ "$status" -eq "$want" ] || { echo "status $status, want $want: $stderr"; return 1; }
	[ "${#stderr_lines[@]}" -eq 1 ] || { echo "stderr: $stderr"; return 1; }
	[[ $stderr == sw-claim:* ]] || { echo "stderr: $stderr"; return 1; }
	[ -z "$output" ] || { echo "stdout: $output"; return 1; }
	[ "$(nitems)" -eq "$before" ] || { echo "items changed: $before -> $(nitems)"; return 1; }
}

# ---- help, version, usage ------------------------------------------------

@test "--help prints usage to stdout naming every verb, exit 0" {
	run --separate-stderr sw-claim --help
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	for v in add next renew done fail release cancel requeue show list stats reap purge; do
		[[ $output == *"  $v "* ]] || { echo "no $v"; false; }
	done
	run --separate-stderr sw-claim next -h
	[ "$status" -eq 0 ]
	[[ $output == usage:* ]]
}

@test "-V prints the version, exit 0" {
	run --separate-stderr sw-claim -V
	[ "$status" -eq 0 ]
	[[ $output == "sw-claim "[0-9]* ]]
}

@test "no verb, unknown verb, unknown option, stray argument: one line, exit 64" {
	sw-claim add 0 >/dev/null
	refused 64 sw-claim
	refused 64 sw-claim frob
	refused 64 sw-claim add --bogus 1
	refused 64 sw-claim next --bogus
	refused 64 sw-claim next extra
	refused 64 sw-claim stats --token 1
	refused 64 sw-claim done --token 5
	# from a terminal, not a wait for JSON Lines nobody will type
	run script -qec "$(command -v sw-claim) done" /dev/null
	[ "$status" -eq 64 ]
	[[ $output == *"an ID and --token, or claims as JSON Lines on stdin"* ]]
	refused 64 sw-claim done X
	refused 64 sw-claim next --ttl soon
	refused 64 sw-claim list --state nosuch
}

# ---- add -------------------------------------------------------------------

@test "add PAYLOAD: one item with a ULID id, the JSON payload and the defaults" {
	run --separate-stderr sw-claim add '{"n":1}'
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 1 ]
	id=$(jq -r .id <<<"$output")
	[[ $id =~ ^[0-9A-HJKMNP-TV-Z]{26}$ ]]
	jq -e '.queue == "default" and .state == "pending" and .added == true' <<<"$output"
	run sw-claim show "$id"
	[ "$status" -eq 0 ]
	jq -e '.payload == {"n":1} and .priority == 5 and .attempt == 0 and
	       .max_attempts == 5 and .timeout == 300 and .state == "pending" and
	       (.created_at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$"))' <<<"$output"
}

@test "add from stdin: JSON Lines, one result line each, blank lines skipped" {
	run --separate-stderr sw-claim add <<-'EOF'
	{"payload":"a"}

	{"payload":{"b":2},"priority":3,"id":"given-b","role":"gpu","max_attempts":2,"timeout":60}
	{"payload":[3]}
	EOF
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 3 ]
	run sw-claim show given-b
	jq -e '.payload == {"b":2} and .priority == 3 and .role == "gpu" and
	       .max_attempts == 2 and .timeout == 60' <<<"$output"
	[ "$(nitems)" -eq 3 ]
}

@test "add --lines: each stdin line (or the argument) is a string payload" {
	printf 'first line\n{"not":"json"}\n' | sw-claim add --lines >/dev/null
	sw-claim add --lines 'plain words' >/dev/null
	run sw-claim list
	[ "$(jq -s -c '[.[].payload] | sort' <<<"$output")" = '["first line","plain words","{\"not\":\"json\"}"]' ]
}

@test "add --id is idempotent: a second add exits 0, says added:false, adds nothing" {
	run sw-claim add --id job-1 '"one"'
	[ "$status" -eq 0 ]
	jq -e '.id == "job-1" and .added == true' <<<"$output"
	run --separate-stderr sw-claim add --id job-1 '"two"'
	[ "$status" -eq 0 ]
	jq -e '.id == "job-1" and .added == false' <<<"$output"
	echo '{"id":"job-1","payload":"three"}' | sw-claim add | jq -e '.added == false'
	[ "$(nitems)" -eq 1 ]
	[ "$(sw-claim show job-1 | jq -r .payload)" = one ]
	# still one item after it was claimed and done
	claim
	sw-claim done "$ID" --token "$TOK" >/dev/null
	sw-claim add --id job-1 '"four"' | jq -e '.added == false'
	[ "$(nitems)" -eq 1 ]
}

@test "add --id killed before it took the id: the id is free, the leftover goes" {
	sw-claim add 0 >/dev/null
	# killed on entering link(2), the step that takes the id
	run strace -f -qq -o /dev/null -e inject=linkat:signal=KILL sw-claim add --id ghost '"lost"'
	[ "$status" -ne 0 ]
	[ ! -e "$SW_DIR/queues/default/ids/ghost" ]
	run sw-claim add --id ghost '"retried"'
	[ "$status" -eq 0 ]
	jq -e '.added == true' <<<"$output"
	sw-claim reap >/dev/null      # the dead adder's stage file is dropped
	[ "$(sw-claim show ghost | jq -r .payload)" = retried ]
	[ "$(nitems)" -eq 2 ]
	[ -z "$(ls "$SW_DIR/queues/default/stage")" ]
}

@test "add --id killed after it took the id: the item is counted at once and placed by reap" {
	sw-claim add 0 >/dev/null
	# the first mkdir after the link is the new bucket's
	run strace -f -qq -o /dev/null -e inject=mkdirat:signal=KILL:when=1 sw-claim add --id ghost '"kept"'
	[ "$status" -ne 0 ]
	[ -e "$SW_DIR/queues/default/ids/ghost" ]
	sw-claim stats | jq -e '.pending == 2 and .in_flight == 1'
	sw-claim add --id ghost '"again"' | jq -e '.added == false'
	sw-claim reap >/dev/null      # the adder is dead: no need to wait for a grace
	[ "$(sw-claim show ghost | jq -r .payload)" = kept ]
	sw-claim stats | jq -e '.pending == 2 and .in_flight == 0'
	[ -z "$(ls "$SW_DIR/queues/default/stage")" ]
}

@test "a done killed half-way is counted, listed and shown in the state it moves from, and finished by reap at once" {
	sw-claim add --id x '"p"' >/dev/null
	claim
	# killed at the rename that commits: the claim is in stage/, the new
	# content beside it
	run strace -f -qq -o /dev/null -e inject=renameat:signal=KILL:when=2 \
		sw-claim done x --token "$TOK" --result '"r"'
	[ "$status" -eq 137 ]
	[ -n "$(ls "$SW_DIR/queues/default/stage")" ]
	sw-claim stats | jq -e '.claimed == 1 and .in_flight == 1'
	[ "$(sw-claim list --state all | jq -r '"\(.id) \(.state)"')" = "x claimed" ]
	[ "$(sw-claim show x | jq -r .state)" = claimed ]
	sw-claim reap >/dev/null      # its process is dead: no grace to wait out
	[ -z "$(ls "$SW_DIR/queues/default/stage")" ]
	sw-claim stats | jq -e '.in_flight == 0 and .pending + .claimed + .done == 1'
}

@test "add --id with a batch on stdin is a usage error" {
	echo '{"payload":1}' | refused 64 sw-claim add --id x
}

@test "next: FIFO within a priority, across adds and across buckets" {
	# 300 items in one batch crosses a bucket of 256; then single adds
	seq 1 300 | sed 's/.*/{"payload":&}/' | sw-claim add --quiet
	for i in 301 302 303; do sw-claim add "$i" --quiet; done
	got=$(for i in $(seq 1 303); do sw-claim next | jq -r .payload; done | tr '\n' ' ')
	[ "$got" = "$(seq 1 303 | tr '\n' ' ')" ]
	run sw-claim next
	[ "$status" -eq 75 ]
}

@test "next: priority order, 0 first, FIFO inside each priority" {
	sw-claim add -p 5 '"a5"' >/dev/null
	sw-claim add -p 1 '"b1"' >/dev/null
	sw-claim add --priority 9 '"c9"' >/dev/null
	sw-claim add -p 1 '"d1"' >/dev/null
	sw-claim add -p 0 '"e0"' >/dev/null
	got=$(for i in 1 2 3 4 5; do sw-claim next | jq -r .payload; done | tr '\n' ' ')
	[ "$got" = "e0 b1 d1 a5 c9 " ]
}

@test "next prints id, payload, attempt, token and lease_expires_at" {
	sw-claim add '{"x":1}' >/dev/null
	run --separate-stderr sw-claim next
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 1 ]
	jq -e '(.id|type) == "string" and .payload == {"x":1} and .attempt == 1 and
	       (.token|type) == "number" and .token > 0 and .state == "claimed" and
	       (.lease_expires_at|test("Z$"))' <<<"$output"
}

@test "next on an empty or unknown queue: exit 75, one line" {
	refused 75 sw-claim next
	refused 75 sw-claim next -q nosuch
	sw-claim add 1 >/dev/null
	claim
	refused 75 sw-claim next
}

@test "--role items go only to claimers whose --roles name it; no role goes to anyone" {
	sw-claim add -r gpu '"g"' >/dev/null
	sw-claim add --role cpu '"c"' >/dev/null
	sw-claim add '"any"' >/dev/null
	[ "$(sw-claim next --roles io | jq -r .payload)" = any ]
	run sw-claim next --roles io
	[ "$status" -eq 75 ]
	[ "$(sw-claim next --roles io,gpu | jq -r .payload)" = g ]
	run sw-claim next --roles gpu
	[ "$status" -eq 75 ]
	# without --roles a claimer takes any item
	[ "$(sw-claim next | jq -r .payload)" = c ]
}

@test "--delay: not claimable before it is due, claimable after" {
	# 3 s: the two execs before the first look take a loaded machine
	# more than 1 s
	sw-claim add --delay 3s '"later"' >/dev/null
	sw-claim add --delay 1h '"much later"' >/dev/null
	run sw-claim next
	[ "$status" -eq 75 ]
	sw-claim stats | jq -e '.pending == 0 and .delayed == 2'
	sleep 3.2
	[ "$(sw-claim next | jq -r .payload)" = later ]
	run sw-claim next
	[ "$status" -eq 75 ]
}

@test "--after: claimable only after every dependency is done" {
	sw-claim add --id a '"a"' >/dev/null
	sw-claim add --id b '"b"' >/dev/null
	sw-claim add --id c --after a,b -p 0 '"c"' >/dev/null
	sw-claim stats | jq -e '.blocked == 1'
	claim
	[ "$ID" = a ]
	sw-claim done a --token "$TOK" >/dev/null
	claim
	[ "$ID" = b ]     # c waits for b although it is more urgent
	run sw-claim next
	[ "$status" -eq 75 ]
	sw-claim done b --token "$TOK" >/dev/null
	claim
	[ "$ID" = c ]
}

@test "a batch of done from stdin frees the items waiting for its items, and only those" {
	for i in a b x; do sw-claim add --id "$i" "\"$i\"" >/dev/null; done
	sw-claim add --id c --after a '"c"' >/dev/null
	sw-claim add --id d --after a,b '"d"' >/dev/null
	sw-claim add --id e --after x '"e"' >/dev/null
	sw-claim next -n 3 | jq -c 'select(.id != "x")' | sw-claim done >/dev/null
	run sw-claim list
	[ "$status" -eq 0 ]
	got=$(jq -r '"\(.id)=\(.state)"' <<<"$output" | sort | tr '\n' ' ')
	[ "$got" = "a=done b=done c=pending d=pending e=blocked x=claimed " ]
}

@test "--after a dependency that is already done does not block" {
	sw-claim add --id a 1 >/dev/null
	claim
	sw-claim done a --token "$TOK" >/dev/null
	sw-claim add --id b --after a 2 >/dev/null
	claim
	[ "$ID" = b ]
}

@test "--max-attempts and --timeout are stored on the item and used" {
	sw-claim add --max-attempts 1 --timeout 7 '"x"' >/dev/null
	now=$(date +%s)
	run sw-claim next
	jq -e '.max_attempts == 1 and .timeout == 7' <<<"$output"
	exp=$(jq -r '.lease_expires_at_unix_ns | tonumber / 1e9 | floor' <<<"$output")
	[ $((exp - now)) -ge 6 ]
	[ $((exp - now)) -le 9 ]
	ID=$(jq -r .id <<<"$output") TOK=$(jq -r .token <<<"$output")
	sw-claim fail "$ID" --token "$TOK" --retry-in 0 | jq -e '.state == "dead"'
}

@test "next --ttl sets the lease instead of the item's timeout" {
	sw-claim add 1 >/dev/null
	now=$(date +%s)
	run sw-claim next --ttl 1h
	exp=$(jq -r '.lease_expires_at_unix_ns | tonumber / 1e9 | floor' <<<"$output")
	[ $((exp - now)) -ge 3599 ]
	[ $((exp - now)) -le 3602 ]
}

@test "next --wait=DUR on an empty queue times out with 75 after DUR" {
	t0=$(date +%s%N)
	refused 75 sw-claim next --wait=1s
	ms=$((($(date +%s%N) - t0) / 1000000))
	[ "$ms" -ge 950 ]
	[ "$ms" -lt 3000 ]
	run sw-claim next --wait 0.3s
	[ "$status" -eq 75 ]
}

@test "next --wait wakes well under a second after another process adds" {
	sw-claim add 0 >/dev/null; claim   # the queue exists, is empty
	sw-claim next --wait=20s >"$BATS_TEST_TMPDIR/got" 2>&1 &
	pid=$!
	sleep 0.5
	sw-claim add '"wake"' >/dev/null
	wait "$pid"
	jq -e '.payload == "wake"' "$BATS_TEST_TMPDIR/got"
	# from the item's adding to its claim, by their own clocks (the
	# claim's lease runs --timeout from it): the execs of this test's
	# commands, slow on a loaded machine, are not the waiter's; a poll
	# instead of a wake would take 15 s or more
	local ms
	ms=$(jq -r '((.lease_expires_at_unix_ns | tonumber) - .timeout * 1e9
		- (.created_at_unix_ns | tonumber)) / 1e6 | floor' "$BATS_TEST_TMPDIR/got")
	echo "woke ${ms} ms after the add"
	[ "$ms" -lt 500 ]
}

@test "next --wait forever (no duration) also wakes on add" {
	sw-claim add 0 >/dev/null; claim
	sw-claim next --wait >"$BATS_TEST_TMPDIR/got" &
	pid=$!
	sleep 0.3
	sw-claim add '"w"' >/dev/null
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then kill "$pid"; false; fi
	wait "$pid"
	jq -e '.payload == "w"' "$BATS_TEST_TMPDIR/got"
}

# ---- claimed items: tokens ----------------------------------------------

@test "renew with the right token extends the lease; a wrong one: 1, unchanged" {
	sw-claim add 1 >/dev/null
	claim --ttl 10s
	before=$(sw-claim show "$ID" | jq -r .lease_expires_at_unix_ns)
	refused 1 sw-claim renew "$ID" --token $((TOK + 1)) --ttl 1h
	[ "$(sw-claim show "$ID" | jq -r .lease_expires_at_unix_ns)" = "$before" ]
	run --separate-stderr sw-claim renew "$ID" --token "$TOK" --ttl 1h
	[ "$status" -eq 0 ]
	jq -e --argjson t "$TOK" '.token == $t and .state == "claimed"' <<<"$output"
	after=$(sw-claim show "$ID" | jq -r .lease_expires_at_unix_ns)
	[ $(((after - before) / 1000000000)) -ge 3500 ]
}

@test "done with the right token: done with its result; wrong token: 1, nothing changes" {
	sw-claim add 1 >/dev/null
	claim
	refused 1 sw-claim done "$ID" --token $((TOK + 1))
	[ "$(state_of "$ID")" = claimed ]
	run --separate-stderr sw-claim done "$ID" --token "$TOK" --result '{"ok":true}'
	[ "$status" -eq 0 ]
	jq -e '.state == "done" and .result == {"ok":true}' <<<"$output"
	sw-claim show "$ID" | jq -e '.state == "done" and .result == {"ok":true} and .attempt == 1'
	# the same token again: the claim is gone
	refused 1 sw-claim done "$ID" --token "$TOK"
	sw-claim stats | jq -e '.done == 1 and .claimed == 0 and .pending == 0'
}

@test "done --result that is not JSON: 65, the claim stays" {
	sw-claim add 1 >/dev/null
	claim
	refused 65 sw-claim done "$ID" --token "$TOK" --result '{nope'
	[ "$(state_of "$ID")" = claimed ]
}

@test "a malformed or missing --token is refused" {
	sw-claim add 1 >/dev/null
	claim
	refused 65 sw-claim done "$ID" --token abc
	refused 65 sw-claim done "$ID" --token -5
	refused 64 sw-claim done "$ID"
	refused 1 sw-claim done "$ID" --token 1
	[ "$(state_of "$ID")" = claimed ]
}

@test "verbs on a missing workspace: 69, and it is not created" {
	refused 69 sw-claim show x
	refused 69 sw-claim done x --token 5
	[ ! -e "$SW_DIR" ]
	refused 75 sw-claim next
}

@test "verbs on an unknown id or queue exit 1" {
	sw-claim add 1 >/dev/null
	refused 1 sw-claim show nosuch
	refused 1 sw-claim cancel nosuch
	refused 1 sw-claim requeue nosuch
	refused 1 sw-claim done nosuch --token 5
	refused 1 sw-claim show -q nosuchq x
}

@test "fail: pending again after --retry-in, attempt counted, new larger token" {
	sw-claim add 1 >/dev/null
	claim
	tok1=$TOK
	refused 1 sw-claim fail "$ID" --token $((TOK + 1)) --error boom
	run --separate-stderr sw-claim fail "$ID" --token "$TOK" --error boom --retry-in 3s
	[ "$status" -eq 0 ]
	jq -e '.state == "pending" and .last_error == "boom" and .attempt == 1' <<<"$output"
	run sw-claim next
	[ "$status" -eq 75 ]
	sleep 3.2
	claim
	[ "$ATT" -eq 2 ]
	[ "$TOK" -gt "$tok1" ]
	refused 1 sw-claim done "$ID" --token "$tok1"
	sw-claim done "$ID" --token "$TOK" >/dev/null
}

@test "fail without --retry-in backs off exponentially with jitter" {
	sw-claim add --max-attempts 9 1 >/dev/null
	claim
	d1=$(($(sw-claim fail "$ID" --token "$TOK" | jq -r '"\(.not_before_unix_ns) - \(.failed_at_unix_ns)"')))
	# 1s base, equal jitter: between 0.5 and 1 s
	[ "$d1" -ge 500000000 ]
	[ "$d1" -le 1000000000 ]
	sleep 1.05
	claim
	[ "$ATT" -eq 2 ]
	d2=$(($(sw-claim fail "$ID" --token "$TOK" | jq -r '"\(.not_before_unix_ns) - \(.failed_at_unix_ns)"')))
	[ "$d2" -ge 1000000000 ]
	[ "$d2" -le 2000000000 ]
}

@test "fail after max attempts: dead; requeue brings it back with attempt 0" {
	sw-claim add --max-attempts 2 '"x"' >/dev/null
	claim
	sw-claim fail "$ID" --token "$TOK" --retry-in 0 | jq -e '.state == "pending"'
	claim
	[ "$ATT" -eq 2 ]
	sw-claim fail "$ID" --token "$TOK" --retry-in 0 --error last | jq -e '.state == "dead"'
	sw-claim show "$ID" | jq -e '.state == "dead" and .last_error == "last" and .attempt == 2'
	run sw-claim next
	[ "$status" -eq 75 ]
	sw-claim list --state dead | jq -e --arg id "$ID" '.id == $id'
	refused 1 sw-claim cancel "$ID"
	run sw-claim requeue "$ID"
	[ "$status" -eq 0 ]
	jq -e '.state == "pending" and .attempt == 0' <<<"$output"
	claim
	[ "$ATT" -eq 1 ]
}

@test "release: back to pending at once, attempt not counted, old token refused" {
	sw-claim add 1 >/dev/null
	claim
	tok1=$TOK
	refused 1 sw-claim release "$ID" --token $((TOK + 1))
	[ "$(state_of "$ID")" = claimed ]
	sw-claim release "$ID" --token "$TOK" | jq -e '.state == "pending"'
	claim
	[ "$ATT" -eq 1 ]
	[ "$TOK" -gt "$tok1" ]
	refused 1 sw-claim renew "$ID" --token "$tok1"
	refused 1 sw-claim release "$ID" --token "$tok1"
}

@test "cancel: pending or claimed -> cancelled; the claim's token is then refused" {
	sw-claim add --id p 1 >/dev/null
	sw-claim add --id c 2 >/dev/null
	sw-claim cancel p | jq -e '.state == "cancelled"'
	claim
	[ "$ID" = c ]
	sw-claim cancel c | jq -e '.state == "cancelled"'
	refused 1 sw-claim done c --token "$TOK"
	refused 1 sw-claim cancel c
	sw-claim stats | jq -e '.cancelled == 2 and .pending == 0 and .claimed == 0'
	run sw-claim next
	[ "$status" -eq 75 ]
}

@test "requeue: only dead or cancelled items" {
	sw-claim add --id a 1 >/dev/null
	refused 1 sw-claim requeue a
	sw-claim cancel a >/dev/null
	sw-claim requeue a | jq -e '.state == "pending"'
	claim
	[ "$ID" = a ]
	refused 1 sw-claim requeue a
	sw-claim done a --token "$TOK" >/dev/null
	refused 1 sw-claim requeue a
}

@test "show finds an item in every state" {
	sw-claim add --id pend 1 >/dev/null
	sw-claim add --id del --delay 1h 1 >/dev/null
	sw-claim add --id blk --after pend 1 >/dev/null
	for id in pend del; do [ "$(state_of $id)" = pending ]; done
	[ "$(state_of blk)" = blocked ]
	claim
	[ "$(state_of pend)" = claimed ]
	sw-claim show pend | jq -e --argjson t "$TOK" '.token == $t and .attempt == 1'
	sw-claim done pend --token "$TOK" >/dev/null
	[ "$(state_of pend)" = done ]
}

@test "list --state filters; list without it shows all; queues are separate" {
	sw-claim add --id a 1 >/dev/null
	sw-claim add --id b 2 >/dev/null
	sw-claim add --id c 3 >/dev/null
	sw-claim add -q other --id z 9 >/dev/null
	claim -q default
	sw-claim done "$ID" --token "$TOK" >/dev/null
	claim
	[ "$(sw-claim list -q default | jq -s length)" -eq 3 ]
	[ "$(sw-claim list | jq -s length)" -eq 4 ]
	[ "$(sw-claim list --state pending | jq -r .id | sort | tr '\n' ' ')" = "c z " ]
	[ "$(sw-claim list -q default --state claimed | jq -r .id)" = b ]
	[ "$(sw-claim list --state done | jq -r .id)" = a ]
	[ "$(sw-claim list --state done,claimed -q default | jq -s length)" -eq 2 ]
	[ "$(sw-claim list --state all -q other | jq -r .id)" = z ]
	[ -z "$(sw-claim list --state dead)" ]
}

@test "stats: counts per state, one line per queue" {
	sw-claim add 1 >/dev/null; sw-claim add 2 >/dev/null; sw-claim add 3 >/dev/null
	sw-claim add --delay 1h 4 >/dev/null
	sw-claim add -q q2 5 >/dev/null
	claim; sw-claim done "$ID" --token "$TOK" >/dev/null
	claim
	claim; sw-claim cancel "$ID" >/dev/null
	run sw-claim stats
	[ "${#lines[@]}" -eq 2 ]
	run sw-claim stats -q default
	jq -e '.queue == "default" and .pending == 0 and .delayed == 1 and .claimed == 1 and
	       .done == 1 and .dead == 0 and .cancelled == 1' <<<"$output"
	sw-claim stats -q q2 | jq -e '.pending == 1 and .claimed == 0'
}

@test "stats counts delayed items and retries that are due as pending, with no worker to move them" {
	# due in an hour, then read with a clock two hours ahead: no sleep,
	# and no busy machine makes them due too early
	sw-claim add --id later --delay 1h 1 >/dev/null
	sw-claim add --id retry --max-attempts 3 2 >/dev/null
	claim
	sw-claim fail "$ID" --token "$TOK" --retry-in 1h >/dev/null
	sw-claim stats | jq -e '.pending == 0 and .delayed == 2 and (has("oldest_pending_age_ms") | not)'
	export SW_CLOCK_OFFSET=2h
	sw-claim stats | jq -e '.pending == 2 and .delayed == 0 and .oldest_pending_age_ms >= 3500000'
	# nothing ran in between: the items are still where they were put
	[ "$(find "$SW_DIR/queues/default/timed" -type f | wc -l)" -eq 2 ]
	SW_POLL=1h sw-metrics export 2>/dev/null | grep -q '^sw_queue_items{queue="default",state="pending"} 2$'
	SW_POLL=1h sw-metrics export 2>/dev/null | grep -Eq '^sw_queue_oldest_pending_age_seconds\{queue="default"\} (3[5-9]|[4-9])[0-9][0-9]'
}

@test "reap: an expired claim goes back to pending with its attempt counted" {
	sw-claim add 1 >/dev/null
	claim --ttl 1s
	run sw-claim reap
	jq -e '.reaped == 0' <<<"$output"
	# an hour later by this process's clock: expired plus any skew margin
	run env SW_CLOCK_OFFSET=1h sw-claim reap
	[ "$status" -eq 0 ]
	jq -e '.queue == "default" and .reaped == 1' <<<"$output"
	sw-claim show "$ID" | jq -e '.state == "pending" and .attempt == 1 and .last_error == "lease expired"'
	refused 1 sw-claim done "$ID" --token "$TOK"
	tok1=$TOK
	claim
	[ "$ATT" -eq 2 ]
	[ "$TOK" -gt "$tok1" ]
}

@test "reap: an expired claim on its last attempt goes dead" {
	sw-claim add --max-attempts 1 1 >/dev/null
	claim --ttl 1s
	SW_CLOCK_OFFSET=1h sw-claim reap >/dev/null
	[ "$(state_of "$ID")" = dead ]
}

@test "reap honours SW_CLOCK_SKEW: not before expiry plus the margin" {
	sw-claim add 1 >/dev/null
	claim --ttl 10s
	SW_CLOCK_SKEW=1h SW_CLOCK_OFFSET=30m sw-claim reap | jq -e '.reaped == 0'
	[ "$(state_of "$ID")" = claimed ]
	SW_CLOCK_SKEW=0 SW_CLOCK_OFFSET=30s sw-claim reap | jq -e '.reaped == 1'
}

@test "next reaps expired claims lazily, even after a host with a fast clock ran next" {
	export SW_CLOCK_SKEW=0
	sw-claim add 0 >/dev/null; claim
	# a claimer whose clock is an hour ahead does the lazy maintenance
	SW_CLOCK_OFFSET=1h sw-claim next >/dev/null || true
	sw-claim add 1 >/dev/null
	claim --ttl 1s
	first=$ID
	sleep 2.1
	claim
	[ "$ID" = "$first" ]
	[ "$ATT" -eq 2 ]
}

@test "purge: done/dead/cancelled older than DUR go, the rest stay" {
	sw-claim add --id d 1 >/dev/null
	sw-claim add --id c 2 >/dev/null
	sw-claim add --id p 3 >/dev/null
	claim; sw-claim done d --token "$TOK" >/dev/null
	sw-claim cancel c >/dev/null
	sw-claim purge --state done,cancelled --older-than 7d | jq -e '.purged == 0'
	run env SW_CLOCK_OFFSET=8d sw-claim purge --state done --older-than 7d
	[ "$status" -eq 0 ]
	jq -e '.purged == 1' <<<"$output"
	refused 1 sw-claim show d
	[ "$(state_of c)" = cancelled ]
	[ "$(state_of p)" = pending ]
	# a purged id may be added again
	sw-claim add --id d 4 | jq -e '.added == true'
	refused 64 sw-claim purge --state pending --older-than 1d
	refused 64 sw-claim purge --state done
}

@test "--quiet prints no results, still exits by the contract" {
	run --separate-stderr sw-claim add --quiet 1
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run --separate-stderr sw-claim next --quiet
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ "$(sw-claim stats | jq .claimed)" -eq 1 ]
	run sw-claim next --quiet
	[ "$status" -eq 75 ]
}

@test "-d DIR and SW_QUEUE choose the workspace and the queue" {
	sw-claim add -d "$BATS_TEST_TMPDIR/other" 1 >/dev/null
	sw-claim add --dir="$BATS_TEST_TMPDIR/other" 2 >/dev/null
	[ "$(sw-claim stats --dir "$BATS_TEST_TMPDIR/other" | jq .pending)" -eq 2 ]
	[ -d "$BATS_TEST_TMPDIR/other/queues/default" ]
	[ "$(nitems)" -eq 0 ]
	SW_QUEUE=envq sw-claim add 2 | jq -e '.queue == "envq"'
	[ "$(sw-claim stats -q envq | jq .pending)" -eq 1 ]
	refused 65 env SW_QUEUE=../x sw-claim add 3
}

# ---- spans -------------------------------------------------------------------

span_ok() { # a span line: OTLP JSON with lowercase hex ids
	jq -e '.resourceSpans[0].scopeSpans[0].spans[0] as $s |
	       ($s.traceId | test("^[0-9a-f]{32}$")) and ($s.spanId | test("^[0-9a-f]{16}$")) and
	       ($s.startTimeUnixNano | test("^[0-9]+$")) and ($s.endTimeUnixNano | test("^[0-9]+$")) and
	       ($s.name | startswith("sw-claim "))' <<<"$1" >/dev/null
}

@test "--spans: one OTLP JSON span line on stdout per operation, after the data" {
	run --separate-stderr sw-claim add --spans '"x"'
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 2 ]
	jq -e 'has("resourceSpans") | not' <<<"${lines[0]}"
	span_ok "${lines[1]}"
	jq -e '.resourceSpans[0].scopeSpans[0].spans[0] | .name == "sw-claim add" and .status.code == 1 and
	       ([.attributes[] | select(.key == "sw.queue") | .value.stringValue] == ["default"])' <<<"${lines[1]}"
	# a batch is one operation: one span
	run --separate-stderr sw-claim add --spans=stdout <<<$'{"payload":1}\n{"payload":2}\n{"payload":3}'
	[ "$(grep -c resourceSpans <<<"$output")" -eq 1 ]
	[ "${#lines[@]}" -eq 4 ]
	run sw-claim next --spans
	[ "${#lines[@]}" -eq 2 ]
	jq -e '.resourceSpans[0].scopeSpans[0].spans[0].attributes | map(.key) | index("sw.item.id")' <<<"${lines[1]}"
}

@test "SW_SPANS=stderr and --spans=FILE: one line per operation, every verb" {
	export SW_SPANS=stderr
	run --separate-stderr sw-claim add 1
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 1 ]
	[ "${#stderr_lines[@]}" -eq 1 ]
	span_ok "$stderr"
	unset SW_SPANS
	f=$BATS_TEST_TMPDIR/spans.jsonl
	export SW_SPANS=$f
	sw-claim add 2 >/dev/null
	claim
	sw-claim renew "$ID" --token "$TOK" >/dev/null
	sw-claim show "$ID" >/dev/null
	sw-claim list >/dev/null
	sw-claim stats >/dev/null
	sw-claim done "$ID" --token "$TOK" >/dev/null
	sw-claim next || true
	sw-claim reap >/dev/null
	[ "$(wc -l <"$f")" -eq 9 ]
	while read -r l; do span_ok "$l"; done <"$f"
	[ "$(jq -r '.resourceSpans[0].scopeSpans[0].spans[0].name' "$f" | tr '\n' ,)" = \
	  "sw-claim add,sw-claim next,sw-claim renew,sw-claim show,sw-claim list,sw-claim stats,sw-claim done,sw-claim next,sw-claim reap," ]
	# `next` finding nothing is an answer, not an error; a stale token too
	[ "$(jq -s '.[7].resourceSpans[0].scopeSpans[0].spans[0].status.code' "$f")" -eq 1 ]
	# --spans=off overrides SW_SPANS
	sw-claim stats --spans=off >/dev/null
	[ "$(wc -l <"$f")" -eq 9 ]
}

@test "a failing operation's span has an error status" {
	f=$BATS_TEST_TMPDIR/spans.jsonl
	run env SW_SPANS="$f" SW_MAX_ITEM_BYTES=64 sw-claim add '"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"'
	[ "$status" -eq 65 ]
	[ "$(wc -l <"$f")" -eq 1 ]
	jq -e '.resourceSpans[0].scopeSpans[0].spans[0].status.code == 2' "$f"
}

@test "TRACEPARENT makes the span its child" {
	tp=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01
	sw-claim add 1 >/dev/null
	run --separate-stderr env TRACEPARENT=$tp sw-claim stats --spans
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	jq -e '.resourceSpans[0].scopeSpans[0].spans[0] | .traceId == "0af7651916cd43dd8448eb211c80319c" and
	       .parentSpanId == "b7ad6b7169203331" and .spanId != "b7ad6b7169203331"' <<<"$output"
}

@test "an invalid TRACEPARENT warns once and the operation still succeeds" {
	for tp in garbage \
		00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0 \
		00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01 \
		00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01 \
		ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01 \
		00-00000000000000000000000000000000-b7ad6b7169203331-01 \
		00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01; do
		run --separate-stderr env TRACEPARENT="$tp" sw-claim add --spans 1
		[ "$status" -eq 0 ] || { echo "$tp: $status"; false; }
		[ "${#stderr_lines[@]}" -eq 1 ]
		[[ $stderr == *TRACEPARENT* ]]
		span_ok "${lines[1]}"
		jq -e '.resourceSpans[0].scopeSpans[0].spans[0] | has("parentSpanId") | not' <<<"${lines[1]}"
	done
	[ "$(nitems)" -eq 7 ]
}

@test "a span file that cannot be written is a warning, exit 0, the work done" {
	run --separate-stderr env SW_SPANS="$BATS_TEST_TMPDIR/no/such/dir/spans" sw-claim add 1
	[ "$status" -eq 0 ]
	[ "${#stderr_lines[@]}" -eq 1 ]
	[[ $stderr == *span* ]]
	jq -e '.added == true' <<<"$output"
	run --separate-stderr sw-claim next --spans=/dev/full
	[ "$status" -eq 0 ]
	[ "${#stderr_lines[@]}" -eq 1 ]
	[ "$(sw-claim stats | jq .claimed)" -eq 1 ]
}

# ---- bad input: one line, documented code, nothing written ----------------

@test "bad input: invalid JSON, argument or stdin: 65, nothing added" {
	sw-claim add 0 >/dev/null
	refused 65 sw-claim add '{"a":'
	refused 65 sw-claim add ''
	refused 65 sw-claim add <<<'{"payload":1'
	refused 65 sw-claim add <<<'not json at all'
}

@test "bad input makes no workspace and no queue" {
	refused 65 sw-claim add -q fresh '{"a":'
	[ ! -e "$SW_DIR" ]
	refused 65 sw-claim add -q fresh <<<'{"payload":1'
	[ ! -e "$SW_DIR" ]
	sw-claim add -q other --quiet 1
	refused 65 sw-claim add -q fresh <<<$'{"payload":1}\nbad'
	[ ! -e "$SW_DIR/queues/fresh" ]
}

@test "bad input: after with NUL, durations past 100 years: 65" {
	refused 65 sw-claim add <<<'{"payload":1,"after":"ok\u0000/../x"}'
	refused 65 sw-claim add <<<'{"payload":1,"delay":9223372037}'
	refused 65 sw-claim add <<<'{"payload":1,"timeout":9223372037}'
	refused 64 sw-claim add --delay 36501d 1
}

@test "renew after the lease ran out by this clock is refused (1), even inside the skew margin" {
	sw-claim add 1 >/dev/null
	claim --ttl 10s
	SW_CLOCK_OFFSET=11s refused 1 sw-claim renew "$ID" --token "$TOK"
	run --separate-stderr sw-claim renew "$ID" --token "$TOK"
	[ "$status" -eq 0 ]
}

@test "lazy maintenance and reap bring back items left in a bucket below the head hint" {
	sw-claim add --quiet 1
	sw-claim add --quiet 2
	local part=$SW_DIR/queues/default/pending/5/-
	ln -sfn 99 "$part/head"     # as a lagging adder and a claimer could leave it
	run --separate-stderr sw-claim next   # maintenance is due: it repairs the hint
	[ "$status" -eq 0 ]
	ln -sfn 99 "$part/head"
	# maintenance is not due for a second (whole seconds: the hint names
	# the next one); a clock 1.9 s behind keeps it not due however late
	# this call comes on a loaded machine, up to ~2 s after the first
	SW_CLOCK_OFFSET=-1900ms run --separate-stderr sw-claim next
	[ "$status" -eq 75 ]
	sw-claim reap >/dev/null
	run --separate-stderr sw-claim next
	[ "$status" -eq 0 ]
}

@test "add prints its result lines only once the whole batch is in" {
	run --separate-stderr sw-claim add <<<$'{"payload":1}\n{"payload":2}'
	[ "${#lines[@]}" -eq 2 ]
	[ "$(jq -r .added <<<"$output" | sort -u)" = true ]
}

@test "bad input: a batch with one bad line adds nothing and names the line" {
	sw-claim add 0 >/dev/null
	refused 65 sw-claim add <<<$'{"payload":1}\n{"payload":2}\n{"payload":3'
	[[ $stderr == *"line 3"* ]]
	refused 65 sw-claim add <<<$'{"payload":1}\n\n{"id":"a/b"}\n{"payload":4}'
	[[ $stderr == *"line 3"* ]]
	refused 65 sw-claim add --lines < <(printf 'ok\nbad \xff\n')
	[[ $stderr == *"line 2"* ]]
	# the good lines' ids were not taken either
	sw-claim add <<<'{"id":"keep-1","payload":1}' | jq -e '.added'
}

@test "bad input: an item that is not a JSON object: 65" {
	sw-claim add 0 >/dev/null
	refused 65 sw-claim add <<<'[1,2]'
	refused 65 sw-claim add <<<'"str"'
	refused 65 sw-claim add <<<'42'
	refused 65 sw-claim add <<<'null'
	refused 65 sw-claim add <<<'{"payload":1,"bogus":2}'
}

@test "bad input: invalid UTF-8 in JSON, argument, --lines, id, role or --error: 65" {
	sw-claim add 0 >/dev/null
	refused 65 sw-claim add < <(printf '{"payload":"\xc3\x28"}\n')
	refused 65 sw-claim add "$(printf '"\xff"')"
	refused 65 sw-claim add --lines "$(printf 'a\xe2\x82')"
	refused 65 sw-claim add --id "$(printf 'id\xff')" 1
	refused 65 sw-claim add -r "$(printf 'r\xc0\xaf')" 1
	refused 65 sw-claim add < <(printf '{"id":"\xed\xa0\x80"}\n')
	claim
	refused 65 sw-claim fail "$ID" --token "$TOK" --error "$(printf 'bad \xff')"
	[ "$(state_of "$ID")" = claimed ]
}

@test "bad input: ids with '/', '..', NUL, control bytes, leading '.' or '-': 65" {
	sw-claim add 0 >/dev/null
	refused 65 sw-claim add --id a/b 1
	refused 65 sw-claim add --id .. 1
	refused 65 sw-claim add --id a..b 1
	refused 65 sw-claim add --id .hidden 1
	refused 65 sw-claim add --id=-x 1
	refused 65 sw-claim add --id "$(printf 'a\tb')" 1
	refused 65 sw-claim add --id "$(printf 'a\x7fb')" 1
	refused 65 sw-claim add --id '' 1
	refused 65 sw-claim add <<<'{"id":"x/y","payload":1}'
	refused 65 sw-claim add <<<'{"id":"../../etc/passwd","payload":1}'
	refused 65 sw-claim add <<<'{"id":"a\u0000b","payload":1}'
	refused 65 sw-claim add <<<'{"id":"a\u0001b","payload":1}'
	refused 65 sw-claim add <<<'{"id":"a\nb","payload":1}'
	refused 65 sw-claim add <<<'{"id":7,"payload":1}'
	refused 65 sw-claim add --after a/b 1
	refused 65 sw-claim add <<<'{"after":["ok","x\u0000"],"payload":1}'
	refused 65 sw-claim add -r a/b 1
	refused 65 sw-claim add <<<'{"role":"r\u0000","payload":1}'
	refused 65 sw-claim add -q a/b 1
	refused 65 sw-claim next -q ..
	refused 65 sw-claim show a/b
	refused 65 sw-claim done ../x --token 5
	refused 65 sw-claim cancel "$(printf 'a\x01')"
	# nothing appeared outside the queue directories either
	[ -z "$(find "$SW_DIR" -name 'b' -o -name 'passwd' -o -name 'x')" ]
}

@test "bad input: an id over 200 bytes: 65; exactly 200 bytes is fine" {
	sw-claim add 0 >/dev/null
	long=$(printf 'x%.0s' $(seq 201))
	refused 65 sw-claim add --id "$long" 1
	refused 65 sw-claim add <<<"{\"id\":\"$long\",\"payload\":1}"
	refused 65 sw-claim show "$long"
	# 67 three-byte characters: 201 bytes
	refused 65 sw-claim add --id "$(printf '€%.0s' $(seq 67))" 1
	sw-claim add --id "${long:1}" 1 | jq -e '.added'
	sw-claim show "${long:1}" | jq -e '.state == "pending"'
}

@test "bad input: an item over SW_MAX_ITEM_BYTES (default 1 MiB): 65" {
	sw-claim add 0 >/dev/null
	big=$(head -c 1100000 /dev/zero | tr '\0' x)
	refused 65 sw-claim add <<<"{\"payload\":\"$big\"}"
	refused 65 sw-claim add --lines <<<"$big"
	small=$(head -c 2000 /dev/zero | tr '\0' y)
	refused 65 env SW_MAX_ITEM_BYTES=1000 sw-claim add "\"$small\""
	refused 65 env SW_MAX_ITEM_BYTES=1000 sw-claim add <<<$'{"payload":1}\n'"{\"payload\":\"$small\"}"
	env SW_MAX_ITEM_BYTES=4000 sw-claim add "\"$small\"" | jq -e '.added'
}

@test "bad input: priority 10, -1 or not a number: 64; in JSON: 65" {
	sw-claim add 0 >/dev/null
	refused 64 sw-claim add -p 10 1
	refused 64 sw-claim add --priority=-1 1
	refused 64 sw-claim add -p high 1
	refused 65 sw-claim add <<<'{"priority":10,"payload":1}'
	refused 65 sw-claim add <<<'{"priority":"1","payload":1}'
	refused 65 sw-claim add <<<'{"priority":1.5,"payload":1}'
}

@test "bad input: other option values: 64" {
	sw-claim add 0 >/dev/null
	refused 64 sw-claim add --max-attempts 0 1
	refused 64 sw-claim add --timeout 5x 1
	refused 64 sw-claim add --delay -1s 1
	refused 64 sw-claim next --wait=forever
	refused 64 sw-claim add --id
	refused 65 sw-claim add <<<'{"max_attempts":0,"payload":1}'
	refused 65 sw-claim add <<<'{"timeout":"soon","payload":1}'
}

# ---- damaged and foreign entries ------------------------------------------

# the bucket the next add goes to, and one item put there by hand
bucket() { ls -d "$SW_DIR"/queues/default/pending/5/-/[0-9]* | sort -V | head -1; }
plant() { # name content: an "item" file with an old key, so that it comes first
	printf '%s' "$2" >"$(bucket)/0000000000000001.$1"
}

@test "damaged items at the head are moved aside with one line each; the good one is claimed" {
	sw-claim add --id good '"g"' >/dev/null
	plant empty ''
	plant truncated '{"id":"truncated","priority":5,"attem'
	plant notjson 'hello'
	head -c 300 /dev/urandom >"$(bucket)/0000000000000001.binary"
	printf '{"id":"other","priority":5,"attempt":0,"max_attempts":5,"timeout":300,"gen":0}' >"$(bucket)/0000000000000001.mismatch"
	printf '{"id":"big","priority":5,"attempt":0,"max_attempts":5,"timeout":300,"gen":0,"payload":"%s"}' \
		"$(head -c 200000 /dev/zero | tr '\0' x)" >"$(bucket)/0000000000000001.big"
	run --separate-stderr env SW_MAX_ITEM_BYTES=65536 sw-claim next
	[ "$status" -eq 0 ]
	jq -e '.id == "good"' <<<"$output"
	[ "${#stderr_lines[@]}" -eq 6 ]
	[ "$(grep -c 'moved pending/5/-/[0-9]*/0000000000000001\.[a-z]* aside' <<<"$stderr")" -eq 6 ]
	sw-claim stats | jq -e '.damaged == 6 and .pending == 0 and .claimed == 1'
	run sw-claim list --state damaged
	[ "${#lines[@]}" -eq 6 ]
	jq -se 'map(select(.state == "damaged" and (.from | startswith("pending/5/-/")))) | length == 6' <<<"$output"
	jq -se 'map(.reason) | sort == ["empty","its id is not the one its name says","not JSON","not JSON","not JSON","over SW_MAX_ITEM_BYTES + 65536 bytes"]' <<<"$output"
	# nothing of theirs reaches `all`
	[ "$(sw-claim list --state all | wc -l)" -eq 1 ]
}

@test "a FIFO, a symlink or a directory where an item belongs: moved aside, never opened or followed" {
	sw-claim add --id good '"g"' >/dev/null
	mkfifo "$(bucket)/0000000000000001.fifo"
	echo secret >"$BATS_TEST_TMPDIR/victim"
	ln -s "$BATS_TEST_TMPDIR/victim" "$(bucket)/0000000000000001.link"
	mkdir "$(bucket)/0000000000000001.dir"
	run --separate-stderr timeout 10 sw-claim next
	[ "$status" -eq 0 ]
	jq -e '.id == "good"' <<<"$output"
	[ "$(sw-claim stats | jq .damaged)" -eq 3 ]
	sw-claim list --state damaged | jq -se 'map(.type) | sort == ["directory","fifo","symlink"]'
	[ "$(cat "$BATS_TEST_TMPDIR/victim")" = secret ]
}

@test "a symlink or a file where a bucket belongs: moved aside, the queue goes on" {
	sw-claim add --id a '"a"' >/dev/null
	local part=$SW_DIR/queues/default/pending/5/-
	mkdir "$BATS_TEST_TMPDIR/elsewhere"
	mv "$part/1" "$part/2"
	ln -s "$BATS_TEST_TMPDIR/elsewhere" "$part/1"
	ln -sfn 1 "$part/head"
	run --separate-stderr timeout 10 sw-claim next
	[ "$status" -eq 0 ]
	jq -e '.id == "a"' <<<"$output"
	[[ $stderr == *"a bucket that is not a directory"* ]]
	[ -z "$(ls -A "$BATS_TEST_TMPDIR/elsewhere")" ]
}

@test "a symlink where a state directory belongs is moved aside; nothing goes through it" {
	sw-claim add --id a '"a"' >/dev/null
	mkdir "$BATS_TEST_TMPDIR/elsewhere"
	rm -rf "$SW_DIR/queues/default/done"
	ln -s "$BATS_TEST_TMPDIR/elsewhere" "$SW_DIR/queues/default/done"
	claim
	run --separate-stderr sw-claim done "$ID" --token "$TOK"
	[ "$status" -eq 0 ]
	[ -z "$(ls -A "$BATS_TEST_TMPDIR/elsewhere")" ]
	[ -d "$SW_DIR/queues/default/done" ]
	[ ! -L "$SW_DIR/queues/default/done" ]
	[ "$(state_of a)" = done ]
}

@test "a damaged claim: done says so (65), the entry is moved aside, nothing else changes" {
	sw-claim add --id a '"a"' >/dev/null
	claim
	local f
	f=$(ls "$SW_DIR"/queues/default/claimed/a.*)
	echo garbage >"$f"
	run --separate-stderr sw-claim done a --token "$TOK"
	[ "$status" -eq 65 ]
	[ "${#stderr_lines[@]}" -eq 1 ]
	[[ $stderr == *"item a is damaged (not JSON) and was moved aside"* ]]
	[ "$(sw-claim stats | jq .damaged)" -eq 1 ]
}

@test "purge --state damaged deletes quarantined entries older than DUR, directories and all" {
	sw-claim add --id good '"g"' >/dev/null
	plant bad 'x'
	mkdir "$(bucket)/0000000000000001.dir" && touch "$(bucket)/0000000000000001.dir/inside"
	sw-claim next >/dev/null 2>&1
	[ "$(sw-claim stats | jq .damaged)" -eq 2 ]
	sw-claim purge --state damaged --older-than 1h | jq -e '.purged == 0'
	SW_CLOCK_OFFSET=2h sw-claim purge --state damaged --older-than 1h | jq -e '.purged == 2'
	[ "$(sw-claim stats | jq .damaged)" -eq 0 ]
}

@test "an item of another user that cannot be read is skipped, not a 77 for everyone" {
	[ "$(id -u)" = 0 ] || skip "needs root to act as another user"
	# somewhere nobody can reach (the test's own directory is private)
	SW_DIR=$(mktemp -d /tmp/sw-claim-test.XXXXXX)/ws
	chmod 0755 "${SW_DIR%/ws}"
	sw-claim add --id mine '"m"' >/dev/null
	sw-claim add --id theirs '"t"' >/dev/null
	# the workspace is nobody's; one item is root's and private
	chown -R nobody "$SW_DIR"
	chmod 0700 "$SW_DIR"
	local f
	f=$(ls "$SW_DIR"/queues/default/pending/5/-/*/*.mine)
	chown root "$f"
	chmod 0600 "$f"
	run --separate-stderr setpriv --reuid nobody --regid nogroup --clear-groups sw-claim next
	[ "$status" -eq 0 ]
	jq -e '.id == "theirs"' <<<"$output"
	run --separate-stderr setpriv --reuid nobody --regid nogroup --clear-groups sw-claim next
	[ "$status" -eq 75 ]
	[[ $stderr == *"cannot be read"* ]]
	[ -e "$f" ]   # skipped, not moved aside: its owner can still claim it
	rm -rf "${SW_DIR%/ws}"
}

# ---- fan-in: blocked items and their failure path -----------------------------

@test "an item after one that dies goes dead with the reason; cancel and run are the other choices" {
	sw-claim add --id a --max-attempts 1 1 >/dev/null
	sw-claim add --id dead-dep --after a 2 | jq -e '.state == "blocked"'
	sw-claim add --id cancel-dep --after a --on-dep-fail cancel 3 >/dev/null
	sw-claim add --id z 4 >/dev/null
	sw-claim add --id run-dep --after a,z --on-dep-fail run 5 >/dev/null
	sw-claim add --id chained --after dead-dep 6 >/dev/null
	[ "$(state_of dead-dep)" = blocked ]
	claim
	[ "$ID" = a ]
	sw-claim fail a --token "$TOK" | jq -e '.state == "dead"'
	sw-claim show dead-dep | jq -e '.state == "dead" and .last_error == "after a, which is dead"'
	sw-claim show cancel-dep | jq -e '.state == "cancelled" and .last_error == "after a, which is dead"'
	sw-claim show chained | jq -e '.state == "dead" and .last_error == "after dead-dep, which is dead"'
	# run waits for every item it is after to end, then runs
	[ "$(state_of run-dep)" = blocked ]
	claim
	[ "$ID" = z ]
	sw-claim done z --token "$TOK" >/dev/null
	[ "$(state_of run-dep)" = pending ]
	# an item added after a dead one is dead at once, and says so
	sw-claim add --id late --after a 7 | jq -e '.state == "dead"'
	refused 64 sw-claim add --after a --on-dep-fail maybe 8
}

@test "an item after a cancelled one is dead too, found by maintenance when the finisher died" {
	sw-claim add --id a 1 >/dev/null
	sw-claim add --id b --after a 2 >/dev/null
	# the finisher's look at b is skipped: a goes to cancelled/ by hand, as
	# a process killed between its move and its look would leave it
	mv "$SW_DIR/queues/default/pending/5/-/1/"*.a "$SW_DIR/queues/default/cancelled/a"
	sed -i 's/"state":"pending"/"state":"cancelled"/' "$SW_DIR/queues/default/cancelled/a" || true
	[ "$(state_of b)" = blocked ]
	sw-claim reap >/dev/null
	sw-claim show b | jq -e '.state == "dead" and .last_error == "after a, which was cancelled"'
}

@test "--after an id that is not in the queue is refused, nothing added, unless --after-missing ok" {
	refused 65 sw-claim add --after nope 1
	[[ $stderr == *"after nope, which is not in queue 'default'"* ]]
	refused 65 bash -c 'printf "%s\n" "{\"id\":\"x\",\"payload\":1}" "{\"payload\":2,\"after\":[\"nope\"]}" | sw-claim add'
	[[ $stderr == *"line 2: after nope"*"nothing added"* ]]
	sw-claim add --after nope --after-missing ok --id w 1 | jq -e '.state == "blocked"'
	# a line may wait for an item on a later line of the same batch
	printf '%s\n' '{"id":"comb","after":["s1","s2"],"payload":0}' '{"id":"s1","payload":1}' '{"id":"s2","payload":2}' |
		sw-claim add | jq -s -e 'map(.state) == ["blocked","pending","pending"]'
	# and once the waited-for item exists, it is waited for
	sw-claim add --id nope 3 >/dev/null
	claim; claim; claim
	for id in s1 s2 nope; do :; done
	[ "$(sw-claim list --state blocked | jq -r .id | sort | tr '\n' ' ')" = "comb w " ]
	refused 64 sw-claim add --after-missing maybe 1
}

@test "deps ID prints the items it waits for with their results; one purged as missing" {
	sw-claim add --id s1 1 >/dev/null
	sw-claim add --id s2 2 >/dev/null
	sw-claim add --id comb --after s1,s2 0 >/dev/null
	claim; sw-claim done "$ID" --token "$TOK" --result '{"n":10}' >/dev/null
	run sw-claim deps comb
	[ "$status" -eq 0 ]
	[ "$(jq -s -c 'map([.id, .state, .result])' <<<"$output")" = '[["s1","done",{"n":10}],["s2","pending",null]]' ]
	claim; sw-claim done "$ID" --token "$TOK" --result '{"n":20}' >/dev/null
	sw-claim purge --state done --older-than 0s >/dev/null
	[ "$(sw-claim deps comb | jq -s -c 'map([.id, .state])')" = '[["s1","missing"],["s2","missing"]]' ]
	refused 1 sw-claim deps nope
}

# ---- friction ---------------------------------------------------------------------

@test "done, fail, release and renew on an id the queue never had say so, not stale token (1)" {
	sw-claim add -q mail --id m1 1 >/dev/null
	claim -q mail
	for verb in done fail release renew; do
		refused 1 sw-claim "$verb" m1 --token "$TOK"
		[ "$stderr" = "sw-claim: $verb: no item m1 in queue 'default'" ]
	done
	refused 1 sw-claim done m1 -q mail --token 12345
	[[ $stderr == *"stale token"* ]]
}

@test "--quiet silences 'nothing to claim'; the exit status still says it" {
	run --separate-stderr sw-claim next --quiet
	[ "$status" -eq 75 ]
	[ -z "$stderr" ]
	sw-claim add 1 >/dev/null; claim
	run --separate-stderr sw-claim next --quiet --wait 0.2s
	[ "$status" -eq 75 ]
	[ -z "$stderr" ]
	run --separate-stderr sw-claim next
	[ "$status" -eq 75 ]
	[[ $stderr == *"nothing to claim"* ]]
}

@test "a batch whose lines are not item objects hints at --lines" {
	refused 65 bash -c 'seq 3 | sw-claim add'
	[[ $stderr == *"line 1: "*"--lines takes plain lines"* ]]
	refused 65 bash -c 'echo hello | sw-claim add'
	[[ $stderr == *"--lines"* ]]
	[ "$(seq 3 | sw-claim add --lines | wc -l)" -eq 3 ]
}

# ---- bulk verbs, drop ---------------------------------------------------------------

@test "requeue --state dead [--older-than] and cancel --state pending act on every such item of the queue" {
	for i in 1 2 3; do sw-claim add --max-attempts 1 --id "d$i" "$i" >/dev/null; done
	for i in 1 2; do claim; sw-claim fail "$ID" --token "$TOK" >/dev/null; done
	sw-claim add -q other --id o1 1 >/dev/null
	[ -z "$(sw-claim requeue --state dead --older-than 1h)" ]
	[ "$(sw-claim stats | jq -s -c 'map(select(.queue == "default"))[0] | [.pending, .dead]')" = "[1,2]" ]
	run sw-claim requeue --state dead
	[ "$status" -eq 0 ]
	[ "$(jq -r '.id + " " + .state + " " + (.attempt | tostring)' <<<"$output" | sort | tr '\n' ,)" = "d1 pending 0,d2 pending 0," ]
	[ "$(sw-claim cancel --state pending | jq -r .state | sort -u)" = cancelled ]
	sw-claim stats -q default | jq -e '.pending == 0 and .cancelled == 3'
	sw-claim stats -q other | jq -e '.pending == 1'
	refused 64 sw-claim cancel
	refused 64 sw-claim cancel d1 --state pending
	refused 64 sw-claim cancel --state done
	refused 64 sw-claim requeue --state pending
	refused 64 sw-claim requeue d1 --older-than 1h
}

@test "drop QUEUE deletes it; refused (75) while an item is claimed unless --force; no such queue is 1" {
	sw-claim add -q tmp 1 >/dev/null
	sw-claim add -q tmp 2 >/dev/null
	claim -q tmp
	run --separate-stderr sw-claim drop tmp
	[ "$status" -eq 75 ]
	[[ $stderr == *"1 claimed item"*"--force"* ]]
	[ "$(sw-claim stats -q tmp | jq .pending)" -eq 1 ]
	sw-claim drop tmp --force | jq -e '.queue == "tmp" and .dropped'
	[ -z "$(sw-claim stats -q tmp)" ]
	[ -z "$(ls -A "$SW_DIR/queues")" ]
	refused 1 sw-claim drop tmp
	refused 1 sw-claim done "$ID" -q tmp --token "$TOK"
	sw-claim add -q tmp 3 | jq -e '.added'
	sw-claim drop tmp | jq -e '.dropped'
}

# ---- worker loops without jq, listing -----------------------------------------------

@test "next --format tsv and sh: id, token and payload in a shell-safe form" {
	sw-claim add '"it'"'"'s a\ttab and a \\ backslash"' >/dev/null
	sw-claim add '{"a":[1,"x y"]}' >/dev/null
	IFS=$'\t' read -r id token payload < <(sw-claim next --format tsv)
	sw-claim show "$id" | jq -e --argjson t "$token" '.token == $t'
	[ "$payload" = "it's a\\ttab and a \\\\ backslash" ]
	[ "$(printf '%b' "$payload")" = "$(printf "it's a\ttab and a \\\\ backslash")" ]
	eval "$(sw-claim next --format sh)"
	[ "$payload" = '{"a":[1,"x y"]}' ]
	[ "$attempt" = 1 ]
	sw-claim done "$id" --token "$token" >/dev/null
	sw-claim add '"nul\u0000byte"' >/dev/null
	refused 65 sw-claim next --format sh
	[ "$(sw-claim stats | jq .pending)" -eq 1 ]   # given back
	refused 64 sw-claim next --format xml
}

@test "the worker loop of sw-claim(1) runs as printed, without jq" {
	local loop q
	# the loop of EXAMPLES as the page prints it (\e is a backslash there)
	loop=$(sed -n '/^\.Sh EXAMPLES/,/^\.Sh /p' "$top/man/sw-claim.1" | sed 's/\\e/\\/g' |
		sed -n '/^while item=$(sw-claim next .*--format tsv/,/^done$/p')
	[ -n "$loop" ]
	q=urls
	printf '%s\n' 1 2 $'a\tb' 3 | sw-claim add -q "$q" --lines >/dev/null
	sw-claim add -q "$q" --lines --max-attempts 1 bad >/dev/null
	cd "$BATS_TEST_TMPDIR"
	# a payload comes escaped as jq's @tsv does: %b undoes it
	process() { [ "$1" != bad ] && printf '%b\n' "$1" >>out; }
	run --separate-stderr eval "$loop"
	[ "$status" -eq 0 ]
	[ "$stderr" = "sw-claim: next: nothing to claim in queue '$q'" ]
	[ "$(sort out | tr '\n' ' ')" = $'1 2 3 a\tb ' ]
	sw-claim stats -q "$q" | jq -e '.done == 4 and .dead == 1 and .pending + .delayed + .claimed == 0'
}

@test "list --limit N stops after N items; --table prints columns for list and stats" {
	for i in 1 2 3 4 5; do sw-claim add "$i" >/dev/null; done
	sw-claim add -q other 6 >/dev/null
	[ "$(sw-claim list --limit 2 | wc -l)" -eq 2 ]
	[ "$(sw-claim list --limit 100 | wc -l)" -eq 6 ]
	run sw-claim list --table -q default --limit 3
	[ "${#lines[@]}" -eq 4 ]
	[[ ${lines[0]} == "QUEUE "*"ID "*"STATE "*"PAYLOAD" ]]
	[[ ${lines[1]} == "default "*" pending "*"0/5 "* ]]
	run sw-claim stats --table
	[ "${#lines[@]}" -eq 3 ]
	[[ ${lines[0]} == "QUEUE "*"PENDING"*"OLDEST" ]]
	printf '%s\n' "${lines[@]}" | grep -Eq '^default +5 +0 +0 +0 +0 +0 +0 +0  [0-9.]+m?s$'
	refused 64 sw-claim list --limit 0
	refused 64 sw-claim next --table
}

@test "wait ID... blocks until each item ends: 0 all done, 1 one dead or cancelled, 75 on --timeout" {
	sw-claim add --id w1 1 >/dev/null
	sw-claim add --id w2 2 >/dev/null
	( sleep 0.5; claim; sw-claim done "$ID" --token "$TOK" >/dev/null ) &
	run --separate-stderr sw-claim wait w1
	local t1=$(date +%s%N)
	wait
	[ "$status" -eq 0 ]
	jq -e '.id == "w1" and .state == "done"' <<<"$output"
	# from the item's done to the waiter's answer (the done's own time:
	# the claim and done execs before it are slow on a loaded machine)
	ms=$(( (t1 - $(jq -r .done_at_unix_ns <<<"$output")) / 1000000 ))
	echo "woke ${ms} ms after the done"
	[ "$ms" -lt 3000 ]
	run --separate-stderr sw-claim wait w2 --timeout 0.3s
	[ "$status" -eq 75 ]
	[[ $stderr == *"not ended"* ]]
	[ -z "$output" ]
	sw-claim cancel w2 >/dev/null
	run --separate-stderr sw-claim wait w1 w2
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 2 ]
	refused 1 sw-claim wait nope
}

@test "under cron's environment without SW_DIR, the add that makes a new workspace says so, once" {
	home=$BATS_TEST_TMPDIR/home
	mkdir "$home"
	bin=$(dirname "$(command -v sw-claim)")
	run --separate-stderr env -i HOME="$home" PATH=/usr/bin:/bin "$bin/sw-claim" add 1 </dev/null
	[ "$status" -eq 0 ]
	[[ $stderr == *"no SW_DIR"*"made a new workspace $home/.local/state/sw"* ]]
	run --separate-stderr env -i HOME="$home" PATH=/usr/bin:/bin "$bin/sw-claim" add 2 </dev/null
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	# with SW_DIR, as the crontab should say, nothing to warn about
	run --separate-stderr env -i HOME="$home" PATH=/usr/bin:/bin SW_DIR="$BATS_TEST_TMPDIR/ws2" "$bin/sw-claim" add 3 </dev/null
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
}

# ---- batches (issue 13) ----------------------------------------------------

@test "next -n N claims up to N items, one line each with its own token; fewer when fewer; 75 when none" {
	seq 1 5 | sw-claim add --lines -q b >/dev/null
	run --separate-stderr sw-claim next -q b -n 3
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 3 ]
	[ "$(printf '%s\n' "${lines[@]}" | jq -r .token | sort -u | wc -l)" -eq 3 ]
	[ "$(printf '%s\n' "${lines[@]}" | jq -r .payload | paste -sd,)" = "1,2,3" ]
	run sw-claim next -q b -n 10
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 2 ]
	run sw-claim next -q b -n 10
	[ "$status" -eq 75 ]
	[ "$(sw-claim stats -q b | jq .claimed)" -eq 5 ]
	refused 64 sw-claim next -q b -n 0
	refused 64 sw-claim done -q b -n 3
}

@test "next -n N takes items of several adds (several buckets) in one call, oldest first" {
	for p in a b c d; do sw-claim add -q nb --quiet "\"$p\""; done
	run --separate-stderr sw-claim next -q nb -n 3
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "${lines[@]}" | jq -r .payload | paste -sd,)" = "a,b,c" ]
}

@test "next -n --wait waits for the first item, then takes what is there" {
	( sleep 0.5; seq 1 4 | sw-claim add --lines -q bw >/dev/null ) &
	run --separate-stderr sw-claim next -q bw -n 10 --wait 10s
	wait
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -ge 1 ]
}

@test "done from stdin finishes what next -n printed, with each line's result; one outcome line each" {
	seq 1 4 | sw-claim add --lines -q bd >/dev/null
	sw-claim next -q bd -n 4 >"$BATS_TEST_TMPDIR/c"
	run --separate-stderr sh -c "jq -c '{id, token, result: {n: .payload}}' '$BATS_TEST_TMPDIR/c' | sw-claim done -q bd"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "${#lines[@]}" -eq 4 ]
	[ "$(printf '%s\n' "${lines[@]}" | jq -r 'select(.ok and .state == "done") | .result.n' | paste -sd,)" = "1,2,3,4" ]
	[ "$(sw-claim stats -q bd | jq .done)" -eq 4 ]
}

@test "done from stdin moves the batch as one group: one new file for all its items, none of their own, nothing left in stage/" {
	command -v strace >/dev/null || skip "needs strace"
	seq 1 20 | sw-claim add --lines -q grp >/dev/null
	sw-claim next -q grp -n 20 >"$BATS_TEST_TMPDIR/c"
	strace -f -qq -e trace=openat -o "$BATS_TEST_TMPDIR/trace" sw-claim done -q grp <"$BATS_TEST_TMPDIR/c" >"$BATS_TEST_TMPDIR/out"
	[ "$(jq -s 'map(select(.ok and .state == "done")) | length' "$BATS_TEST_TMPDIR/out")" -eq 20 ]
	# the group's file is the one file made: the items keep theirs
	[ "$(grep -c 'O_CREAT' "$BATS_TEST_TMPDIR/trace")" -eq 1 ]
	grep 'O_CREAT' "$BATS_TEST_TMPDIR/trace" | grep -q '\.uC"'
	[ "$(sw-claim stats -q grp | jq .done)" -eq 20 ]
	[ -z "$(ls "$SW_DIR/queues/grp/stage")" ]
	# a release (its item goes on) and a failure with attempts left go alone
	seq 1 4 | sw-claim add --lines -q grp >/dev/null
	sw-claim next -q grp -n 4 >"$BATS_TEST_TMPDIR/c"
	sw-claim release -q grp <"$BATS_TEST_TMPDIR/c" >/dev/null
	sw-claim next -q grp -n 4 >"$BATS_TEST_TMPDIR/c"
	sw-claim fail -q grp --retry-in 0 <"$BATS_TEST_TMPDIR/c" >/dev/null
	[ "$(sw-claim stats -q grp | jq '.pending + .delayed')" -eq 4 ]
	[ -z "$(ls "$SW_DIR/queues/grp/stage")" ]
}

@test "a group whose process died after its commit is placed by maintenance; a group file that names another item's member is moved aside and its members put back" {
	command -v strace >/dev/null || skip "needs strace"
	local st=$SW_DIR/queues/gk/stage
	seq 1 3 | sw-claim add --lines -q gk >/dev/null
	sw-claim next -q gk -n 3 | jq -c '.result = "r"' >"$BATS_TEST_TMPDIR/c"
	# killed at its first placing: committed, nothing placed yet
	strace -f -qq -o /dev/null -e inject=renameat2:signal=KILL:when=1 \
		sw-claim done -q gk <"$BATS_TEST_TMPDIR/c" >/dev/null 2>&1 || true
	[ "$(ls "$st" | grep -c '\.mC\.')" -eq 3 ]
	ls "$st" | grep -q '\.cC$'
	sw-claim reap -q gk >/dev/null
	[ -z "$(ls "$st")" ]
	[ "$(sw-claim list -q gk --state done | jq -r .result | paste -sd,)" = "r,r,r" ]
	# the same, with the group file's first line pointing at the second
	# item's member: not trusted, the members go back as a lost claim
	# (written over, that member's item would be lost, the first twice)
	seq 4 6 | sw-claim add --lines -q gk >/dev/null
	sw-claim next -q gk -n 3 | jq -c '.result = "r"' >"$BATS_TEST_TMPDIR/c"
	strace -f -qq -o /dev/null -e inject=renameat2:signal=KILL:when=1 \
		sw-claim done -q gk <"$BATS_TEST_TMPDIR/c" >/dev/null 2>&1 || true
	local g
	g=$(ls "$st" | grep '\.cC$')
	sed -i '1s/^{"m":0,/{"m":1,/' "$st/$g"
	run --separate-stderr sw-claim reap -q gk
	[[ $stderr == *"naming a member of another item"* ]]
	[ -z "$(ls "$st")" ]
	[ "$(sw-claim stats -q gk | jq '[.done, .pending + .delayed, .damaged] | join(",")' -r)" = "3,3,1" ]
	# (an attempt counted, or two when its file had its new content already)
	[ "$(sw-claim list -q gk --state pending | jq -s 'map(select(.attempt >= 1 and (.last_error | test("abandoned")))) | length')" -eq 3 ]
}

@test "a partial batch: stale tokens and missing items are named, the rest applied, exit 1" {
	seq 1 3 | sw-claim add --lines -q bp >/dev/null
	sw-claim next -q bp -n 3 >"$BATS_TEST_TMPDIR/c"
	first=$(head -1 "$BATS_TEST_TMPDIR/c")
	sw-claim done -q bp "$(jq -r .id <<<"$first")" --token "$(jq -r .token <<<"$first")" >/dev/null
	{ cat "$BATS_TEST_TMPDIR/c"; echo '{"id":"nosuch","token":7}'; } >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr sw-claim done -q bp <"$BATS_TEST_TMPDIR/in"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 4 ]
	[ "$(printf '%s\n' "${lines[@]}" | jq -s '[.[] | select(.ok)] | length')" -eq 2 ]
	[ "$(printf '%s\n' "${lines[0]}" | jq -r '.ok, .code')" = "$(printf 'false\n1')" ]
	[[ ${lines[3]} == *'"id":"nosuch"'*'no item nosuch'* ]]
	[[ $stderr == *"2 of 4 claims not applied"* ]]
	[ "$(sw-claim stats -q bp | jq .done)" -eq 3 ]
}

@test "a line that is not a claim is refused with its line number (65); the others still apply" {
	seq 1 2 | sw-claim add --lines -q bl >/dev/null
	{ sw-claim next -q bl -n 2; echo 'not json'; echo '{"id":"x"}'; } >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr sw-claim release -q bl <"$BATS_TEST_TMPDIR/in"
	[ "$status" -eq 65 ]
	[ "$(printf '%s\n' "${lines[@]}" | jq -s '[.[] | select(.ok)] | length')" -eq 2 ]
	[ "$(printf '%s\n' "${lines[@]}" | jq -s -c '[.[] | select(.ok | not) | .code]')" = "[65,65]" ]
	[ "$(sw-claim stats -q bl | jq .pending)" -eq 2 ]
}

@test "fail and renew from stdin: each line's error, one lease extended for all" {
	seq 1 2 | sw-claim add --lines -q bf --max-attempts 1 >/dev/null
	sw-claim next -q bf -n 2 --ttl 10s >"$BATS_TEST_TMPDIR/c"
	run sw-claim renew -q bf --ttl 1h <"$BATS_TEST_TMPDIR/c"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "${lines[@]}" | jq -s '[.[] | select(.ok)] | length')" -eq 2 ]
	run sh -c "jq -c '{id, token, error: (\"e\" + .payload)}' '$BATS_TEST_TMPDIR/c' | sw-claim fail -q bf"
	[ "$status" -eq 0 ]
	[ "$(sw-claim list -q bf --state dead | jq -r .last_error | sort | paste -sd,)" = "e1,e2" ]
}

@test "done from stdin takes the queue a line names (next -n prints it), else -q" {
	sw-claim add -q bq1 '"x"' >/dev/null
	sw-claim next -q bq1 -n 1 >"$BATS_TEST_TMPDIR/c"
	run sw-claim done <"$BATS_TEST_TMPDIR/c"
	[ "$status" -eq 0 ]
	[ "$(sw-claim stats -q bq1 | jq .done)" -eq 1 ]
}

@test "--ttl 0 is refused (64) as sw-lease and sw-agent refuse it, not taken as the item's timeout" {
	sw-claim add -q t0 '"x"' >/dev/null
	refused 64 sw-claim next -q t0 --ttl 0
	[ "$stderr" = "sw-claim: next: bad --ttl '0': want at least 1ms (see sw-claim --help)" ]
	[ "$(sw-claim stats -q t0 | jq .pending)" -eq 1 ]
}
