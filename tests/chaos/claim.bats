#!/usr/bin/env bats
# sw-claim under concurrency and crashes: the "Correctness that must hold"
# list of issue 2.  Exactly-once hand-out with 4 concurrent claimers over
# 20,000 items; a SIGKILLed claimer's item comes back after its lease; a
# process killed at any point leaves no torn or half-visible JSON, and after
# a reap everything added is there exactly once.
load ../helper

q=chaos

# "state id" for every item file in a state directory (names, not content):
# pending/<p>/<part>/<bucket>/<16 hex>.<id>, timed/<16 hex>.<id>,
# claimed/<id>.<token>, blocked|done|dead|cancelled/<id>.
state_ids() {
	local d=$SW_DIR/queues/$q
	(cd "$d" && find pending timed claimed blocked done dead cancelled -type f ! -name '.*' 2>/dev/null) |
	awk -F/ '{ n = $NF; s = $1
		if (s == "pending" || s == "timed") n = substr(n, 18)
		else if (s == "claimed") sub(/\.[0-9]+$/, "", n)
		if (s == "timed" || s == "blocked") s = "pending"
		print s, n }'
}

# Every item file parses as one JSON object whose id is the one its name
# says; no id is in two places.  Prints nothing and succeeds when so.
check_files() {
	local d=$SW_DIR/queues/$q n parsed
	n=$(cd "$d" && find pending timed claimed blocked done dead cancelled -type f ! -name '.*' | wc -l)
	parsed=$(cd "$d" && find pending timed claimed blocked done dead cancelled -type f ! -name '.*' \
		-exec jq -r 'if type == "object" and (.id | type) == "string" then .id else error("not an item") end' {} + |
		wc -l)
	[ "$parsed" -eq "$n" ] || { echo "$n item files, $parsed parse as items"; return 1; }
	local dup
	dup=$(state_ids | awk '{print $2}' | sort | uniq -d)
	[ -z "$dup" ] || { echo "in two places: $dup"; state_ids | grep -F "$dup"; return 1; }
	# the id inside is the id in the name
	local bad
	bad=$(cd "$d" && for s in done dead cancelled blocked; do
		for f in "$s"/*; do [ -f "$f" ] || continue
			[ "$(jq -r .id "$f")" = "${f#*/}" ] || echo "$f"; done; done)
	[ -z "$bad" ] || { echo "name/content mismatch: $bad"; return 1; }
}

# The state of the workspace once every crashed process's leftovers are
# recovered: an hour on (all stage graces and leases past), no skew margin.
recover() {
	SW_CLOCK_SKEW=0 SW_CLOCK_OFFSET=2h sw-claim reap -q "$q" >/dev/null
}

no_stage_left() {
	local left
	left=$(find "$SW_DIR/queues/$q/stage" -type f \( -name '*.old' -o -name '*.new' \))
	[ -z "$left" ] || { echo "stage leftovers: $left"; return 1; }
}

# ---- (a) exactly once ---------------------------------------------------

# One claimer: next -> done until 75; logs each id it claimed, and each id
# whose done was refused.
claimer() {
	local w=$1 out id tok
	while out=$(sw-claim next -q "$q" 2>/dev/null); do
		[[ $out =~ ^\{\"id\":\"([^\"]+)\" ]] || { echo "bad output: $out" >>"$dir/err"; return; }
		id=${BASH_REMATCH[1]}
		[[ $out =~ \"token\":([0-9]+) ]] || { echo "no token: $out" >>"$dir/err"; return; }
		tok=${BASH_REMATCH[1]}
		echo "$id" >>"$dir/claimed.$w"
		sw-claim done -q "$q" "$id" --token "$tok" >/dev/null || echo "$id" >>"$dir/donefail.$w"
	done
}

# A batch claimer: next -n 25 -> done from stdin, until 75; logs each id
# it claimed, and each whose done was refused.
bclaimer() {
	local w=$1 out
	while out=$(sw-claim next -q "$q" -n 25 2>/dev/null); do
		jq -r .id <<<"$out" >>"$dir/claimed.$w"
		sw-claim done -q "$q" <<<"$out" | jq -r 'select(.ok | not) | .id' >>"$dir/donefail.$w"
		[ -s "$dir/donefail.$w" ] || rm -f "$dir/donefail.$w"
	done
}

@test "exactly once: 4 concurrent claimers (2 one at a time, 2 in batches), 20,000 items, each done once, none lost" {
	dir=$BATS_TEST_TMPDIR
	seq 1 20000 | sed 's/.*/{"payload":&}/' | sw-claim add -q "$q" | jq -r .id | sort >"$dir/added"
	[ "$(wc -l <"$dir/added")" -eq 20000 ]
	[ "$(sort -u "$dir/added" | wc -l)" -eq 20000 ]
	t0=$(date +%s)
	# plain bash processes: the test shell's tracing would slow loops 4-fold;
	# two claim one item at a time, two 25 at a time (next -n, done from
	# stdin), all racing for the same items
	for w in 1 2; do bash -c "$(declare -f claimer); q=$q dir=$dir; claimer $w" & done
	for w in 3 4; do bash -c "$(declare -f bclaimer); q=$q dir=$dir; bclaimer $w" & done
	wait
	echo "4 claimers: $(($(date +%s) - t0)) s"
	[ ! -e "$dir/err" ]
	for w in 1 2 3 4; do [ ! -e "$dir/donefail.$w" ]; done
	# every claimer got work, nobody got an item twice, all were handed out
	for w in 1 2 3 4; do [ -s "$dir/claimed.$w" ]; done
	cat "$dir"/claimed.* | sort >"$dir/claimed"
	[ -z "$(uniq -d "$dir/claimed")" ]
	cmp "$dir/added" "$dir/claimed"
	sw-claim stats -q "$q" | jq -e '.pending == 0 and .claimed == 0 and .done == 20000 and .dead == 0'
	sw-claim list -q "$q" --state done | jq -r .id | sort | cmp - "$dir/added"
	[ "$(sw-claim list -q "$q" --state done | jq -s 'map(select(.attempt != 1)) | length')" -eq 0 ]
}

# ---- (b) expiry -----------------------------------------------------------

@test "expiry: a SIGKILLed claimer's item is claimable again after TTL + skew, attempt 2, new token" {
	export SW_CLOCK_SKEW=1s
	sw-claim add -q "$q" --id victim '"job"' >/dev/null
	# the claimer: claims, then works forever; killed with SIGKILL
	bash -c 'sw-claim next -q '"$q"' --ttl 1s >"$1"; exec sleep 60' _ "$BATS_TEST_TMPDIR/claim" &
	pid=$!
	for _ in $(seq 100); do [ -s "$BATS_TEST_TMPDIR/claim" ] && break; sleep 0.05; done
	kill -KILL "$pid"
	wait "$pid" || true
	jq -e '.id == "victim" and .attempt == 1' "$BATS_TEST_TMPDIR/claim"
	tok1=$(jq -r .token "$BATS_TEST_TMPDIR/claim")
	exp=$(jq -r .lease_expires_at_unix_ns "$BATS_TEST_TMPDIR/claim")
	# not before expiry + skew; then within a poll
	while ! out=$(sw-claim next -q "$q" 2>/dev/null); do
		[ "$(date +%s%N)" -lt $((exp + 5000000000)) ] || { echo "never came back"; false; }
		sleep 0.1
	done
	got=$(date +%s%N)
	echo "lease expired at $exp, claimed again at $got"
	[ "$got" -ge $((exp + 1000000000)) ]
	jq -e '.id == "victim" and .attempt == 2' <<<"$out"
	tok2=$(jq -r .token <<<"$out")
	[ "$tok2" != "$tok1" ]
	[ "$tok2" -gt "$tok1" ]
	# the dead claimer's token is refused and changes nothing
	run --separate-stderr sw-claim done -q "$q" victim --token "$tok1"
	[ "$status" -eq 1 ]
	run --separate-stderr sw-claim renew -q "$q" victim --token "$tok1"
	[ "$status" -eq 1 ]
	[ "$(sw-claim show -q "$q" victim | jq -r .state)" = claimed ]
	sw-claim done -q "$q" victim --token "$tok2" | jq -e '.state == "done" and .attempt == 2'
}

@test "expiry: an abandoned claim is not taken back before its lease ends" {
	export SW_CLOCK_SKEW=0
	sw-claim add -q "$q" 1 >/dev/null
	exp=$(sw-claim next -q "$q" --ttl 3s | jq -r .lease_expires_at_unix_ns)
	# a round proves something when the clock after it is still before the
	# lease's end (a machine too busy to look in time: said, not failed);
	# one such round at least
	local before=0 t out
	for _ in 1 2 3; do
		run sw-claim next -q "$q"
		t=$(date +%s%N)
		[ "$t" -lt "$exp" ] || { echo "next $(( (t - exp) / 1000000 )) ms after the lease ended: not checked"; break; }
		[ "$status" -eq 75 ]
		out=$(sw-claim reap -q "$q")
		t=$(date +%s%N)
		[ "$t" -lt "$exp" ] || { echo "reap $(( (t - exp) / 1000000 )) ms after the lease ended: not checked"; break; }
		jq -e '.reaped == 0' <<<"$out"
		before=$((before + 1))
		sleep 0.4
	done
	echo "$before rounds before the lease ended"
	[ "$before" -ge 1 ]
}

# ---- (c) crashes ----------------------------------------------------------

# Runs "$@" under a SIGKILL that lands after a random 0.5-20 ms.
killed_at_random() {
	local ms=$((RANDOM % 20 + 1))
	timeout -s KILL "0.00$((RANDOM % 10))" true 2>/dev/null   # jitter the start
	timeout -s KILL "$((ms / 1000)).$(printf %03d $((ms % 1000)))" "$@"
}

@test "crash at random moments: no torn JSON, nothing in two states, nothing lost" {
	dir=$BATS_TEST_TMPDIR
	sw-claim add -q "$q" --quiet 0
	end=$(($(date +%s) + 6))
	adder() { # batches of 40 items; payload a<w>-<n>-<i>
		local n=0 rc
		while [ "$(date +%s)" -lt "$end" ]; do
			n=$((n + 1))
			seq 1 40 | sed "s/.*/{\"payload\":\"a$1-$n-&\",\"max_attempts\":1000}/" >"$dir/batch.$1"
			cut -d'"' -f4 "$dir/batch.$1" >>"$dir/tried"
			killed_at_random sw-claim add -q "$q" --quiet <"$dir/batch.$1" 2>/dev/null && rc=0 || rc=$?
			[ $rc -eq 0 ] && cut -d'"' -f4 "$dir/batch.$1" >>"$dir/acked"
			[ $rc -eq 0 ] || [ $rc -eq 137 ] || echo "add exit $rc" >>"$dir/err"
		done
	}
	worker() { # next -> done/fail/release, each killed at random
		local out id tok rc
		while [ "$(date +%s)" -lt "$end" ]; do
			out=$(killed_at_random sw-claim next -q "$q" --ttl 1s 2>/dev/null) && rc=0 || rc=$?
			[ $rc -eq 0 ] || [ $rc -eq 75 ] || [ $rc -eq 137 ] || echo "next exit $rc" >>"$dir/err"
			[ $rc -eq 0 ] || continue
			id=$(jq -r .id <<<"$out") tok=$(jq -r .token <<<"$out")
			case $((RANDOM % 4)) in
			0) killed_at_random sw-claim fail -q "$q" "$id" --token "$tok" --retry-in 0 >/dev/null 2>&1 ;;
			1) killed_at_random sw-claim release -q "$q" "$id" --token "$tok" >/dev/null 2>&1 ;;
			*) if killed_at_random sw-claim done -q "$q" "$id" --token "$tok" >/dev/null 2>&1; then
				echo "$id" >>"$dir/done.$1"; fi ;;
			esac
		done
	}
	reaper() {
		while [ "$(date +%s)" -lt "$end" ]; do
			killed_at_random sw-claim reap -q "$q" >/dev/null 2>&1
			sleep 0.05
		done
	}
	# plain bash processes: the test shell's tracing would slow the loops
	fns="$(declare -f killed_at_random adder worker reaper); q=$q dir=$dir end=$end"
	bash -c "$fns; adder 1" & bash -c "$fns; adder 2" &
	bash -c "$fns; worker 1" & bash -c "$fns; worker 2" & bash -c "$fns; reaper" &
	wait
	[ ! -e "$dir/err" ] || { cat "$dir/err"; false; }
	echo "tried $(wc -l <"$dir/tried"), acknowledged $(wc -l <"$dir/acked")"

	# right after the crashes: every item file whole, nothing in two states
	check_files

	# after recovery: no transition left half-done, no claim left
	recover
	no_stage_left
	check_files
	sw-claim stats -q "$q" | jq -e '.claimed == 0'
	sw-claim list -q "$q" | jq -r '.payload' | sort >"$dir/present"
	# nothing twice, nothing that was never added, nothing acknowledged lost
	[ -z "$(uniq -d "$dir/present")" ]
	[ -z "$(grep -vxF 0 "$dir/present" | sort | comm -23 - <(sort "$dir/tried"))" ]
	[ -z "$(sort "$dir/acked" | comm -23 - "$dir/present")" ]
	# total = what the states hold
	[ "$(sw-claim stats -q "$q" | jq '.pending + .claimed + .done + .dead + .cancelled')" -eq "$(wc -l <"$dir/present")" ]
	# a done that was acknowledged stuck, and no item was acknowledged done twice
	cat "$dir"/done.* 2>/dev/null | sort >"$dir/done"
	[ -z "$(uniq -d "$dir/done")" ]
	[ -z "$(comm -23 "$dir/done" <(sw-claim list -q "$q" --state done | jq -r .id | sort))" ]
}

# The mutating system calls of a verb, each of which a crash can follow.
MUTATING=(write linkat unlinkat renameat renameat2 mkdirat symlinkat utimensat fsync fdatasync)

# Runs "$@" killed at the n-th call of system call $1 (counted per call
# kind).  Exit 137 when the kill landed; the command's own status when it
# made fewer such calls.
kill_at() {
	local sc=$1 n=$2; shift 2
	strace -f -o /dev/null -e trace="$sc" -e inject="$sc:signal=KILL:when=$n" "$@"
}

# Crashes each verb at its n-th call of each mutating system call, for
# every n, and checks the workspace after each crash and after recovery.
crash_every_point() {
	local setups=0 kills=0
	# verb name, setup, the command to crash, what the item may be afterwards
	for verb in add add-id add-batch add-after next done fail dead release cancel requeue reap; do
		for sc in "${MUTATING[@]}"; do
			for n in $(seq 1 40); do
				rm -rf "$SW_DIR"
				sw-claim add -q "$q" --id other '"other"' >/dev/null
				local cmd=() ok=""
				case $verb in
				add) cmd=(sw-claim add -q "$q" '"x"'); ok="absent pending" ;;
				add-id) cmd=(sw-claim add -q "$q" --id x '"x"'); ok="absent pending" ;;
				add-batch) cmd=(sw-claim add -q "$q" --quiet); ok="absent pending" ;;
				add-after) sw-claim add -q "$q" --id dep 1 >/dev/null
					cmd=(sw-claim add -q "$q" --id x --after dep '"x"'); ok="absent pending" ;;
				*)	sw-claim cancel -q "$q" other >/dev/null
					sw-claim add -q "$q" --id x --max-attempts 2 '"x"' >/dev/null ;;
				esac
				case $verb in
				next) cmd=(sw-claim next -q "$q"); ok="pending claimed" ;;
				done|fail|dead|release|reap)
					[ $verb = dead ] && { t=$(sw-claim next -q "$q" | jq -r .token)
						sw-claim fail -q "$q" x --token "$t" --retry-in 0 >/dev/null; }
					t=$(sw-claim next -q "$q" --ttl 1s | jq -r .token)
					case $verb in
					done) cmd=(sw-claim done -q "$q" x --token "$t"); ok="claimed pending done" ;;
					fail) cmd=(sw-claim fail -q "$q" x --token "$t" --retry-in 0); ok="claimed pending" ;;
					dead) cmd=(sw-claim fail -q "$q" x --token "$t"); ok="claimed pending dead" ;;
					release) cmd=(sw-claim release -q "$q" x --token "$t"); ok="claimed pending" ;;
					reap) cmd=(env SW_CLOCK_SKEW=0 SW_CLOCK_OFFSET=1h sw-claim reap -q "$q"); ok="claimed pending" ;;
					esac ;;
				cancel) cmd=(sw-claim cancel -q "$q" x); ok="pending cancelled" ;;
				requeue) sw-claim cancel -q "$q" x >/dev/null
					cmd=(sw-claim requeue -q "$q" x); ok="cancelled pending" ;;
				esac
				setups=$((setups + 1))
				local rc=0
				if [ $verb = add-batch ]; then
					printf '{"payload":1}\n{"id":"x","payload":2}\n{"payload":3}\n' |
						kill_at "$sc" "$n" "${cmd[@]}" >/dev/null 2>&1 || rc=$?
				else
					kill_at "$sc" "$n" "${cmd[@]}" >/dev/null 2>&1 || rc=$?
				fi
				[ $rc -eq 137 ] || break   # fewer than n such calls: next kind
				kills=$((kills + 1))
				check_files || { echo "after $verb killed at $sc #$n"; return 1; }
				# where x is now, before and after recovery
				local where
				where=$(state_ids | awk '$2 == "x" {print $1}')
				recover
				no_stage_left || { echo "after $verb killed at $sc #$n"; return 1; }
				check_files || { echo "after $verb killed at $sc #$n, recovered"; return 1; }
				where=$(state_ids | awk '$2 == "x" {print $1}')
				[[ " $ok " == *" ${where:-absent} "* ]] ||
					{ echo "$verb killed at $sc #$n: x is ${where:-absent}, want one of: $ok"; return 1; }
				[ "$(state_ids | awk '$2 == "other"' | wc -l)" -eq 1 ] ||
					{ echo "$verb killed at $sc #$n: lost the other item"; return 1; }
				# a killed add --id is retried as a cron job would, past the
				# stage grace (a crashed add's id is reserved until then): one item
				if [ $verb = add-id ] || [ $verb = add-after ]; then
					sw-claim add -q "$q" --id x '"x"' >/dev/null
					SW_CLOCK_OFFSET=2h sw-claim add -q "$q" --id x '"x"' >/dev/null
					[ "$(state_ids | awk '$2 == "x"' | wc -l)" -eq 1 ] ||
						{ echo "$verb killed at $sc #$n, then retried: x is ${where:-absent}, $(state_ids | awk '$2 == "x"' | wc -l) times"; return 1; }
				fi
			done
		done
	done
	echo "$setups runs, $kills crashes"
	[ "$kills" -gt 100 ] || { echo "too few crashes"; return 1; }
}

@test "crash at every mutating system call of every verb: consistent after reap" {
	command -v strace >/dev/null || skip "strace is not installed"
	strace -o /dev/null true 2>/dev/null || skip "strace cannot trace here (ptrace refused)"
	# a plain bash process: the test shell's tracing would slow the loop
	run bash -c "$(declare -f state_ids check_files recover no_stage_left kill_at crash_every_point)
		MUTATING=(${MUTATING[*]}) q=$q; crash_every_point"
	echo "$output"
	[ "$status" -eq 0 ]
}
