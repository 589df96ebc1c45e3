#!/usr/bin/env bats
# Exactly once under stalls: a process stopped at any point of a
# transition, for any time, then resumed, never finishes an item twice,
# never overwrites a result, never loses an item.  Each test stops one
# verb right after each of its system calls in turn (strace
# inject=CALL:signal=STOP:when=N), lets a reaper and a second worker run
# "an hour later" meanwhile (SW_CLOCK_OFFSET: the stalled claim has
# expired, its transition is past the grace), then resumes it and checks
# the outcome.  A sample of the Ns in `make check`; every N with
# SW_FAULTS_FULL=1 (`make check-faults`).
load ../helper
load ../faults

later() { SW_CLOCK_OFFSET=1h "$@"; }

# one item x, claimed: sets TOK
make_claimed() {
	rm -rf "$SW_DIR"
	sw-claim add --id x '"p"' >/dev/null
	TOK=$(sw-claim next --ttl 30s | jq -r .token)
}

# The others, while the first is stopped: a reaper and a second worker,
# both an hour later.  B.rc is the worker's done status (or "none").
others() {
	later sw-claim reap >/dev/null 2>&1 || true
	local j
	echo none >"$1/B.rc"
	if j=$(later sw-claim next 2>/dev/null); then
		later sw-claim done x --token "$(jq -r .token <<<"$j")" --result '"B"' >/dev/null 2>&1
		echo $? >"$1/B.rc"
	fi
}

# After the first is resumed and a last reap: x is in exactly one place,
# nothing is left in stage/, at most one process finished it, and the
# result is the one of the process that was told it finished it.
check_once() { # dir first-result
	local d=$1 mine=$2 a b state result
	SW_CLOCK_OFFSET=2h sw-claim reap >/dev/null 2>&1 || true
	a=$(cat "$d/A.rc")
	b=$(cat "$d/B.rc")
	[ "$(count_places x)" = "x 1" ] || { echo "x is in: $(places x)"; return 1; }
	[ -z "$(ls "$SW_DIR/queues/default/stage")" ] || { ls -la "$SW_DIR/queues/default/stage"; return 1; }
	read -r state result < <(sw-claim show x | jq -r '"\(.state) \(.result)"')
	# A's success is a finish only when A's verb finishes (mine is set)
	[ -n "$mine" ] || { [ "$a" = 0 ] && a=ok; }
	if [ "$a" = 0 ] && [ "$b" = 0 ]; then echo "both finished x"; return 1; fi
	if [ "$a" = 0 ] && [ "$result" != "$mine" ]; then
		echo "A was told it finished x, the result is $result"; return 1
	fi
	if [ "$b" = 0 ] && [ "$result" != B ]; then echo "B was told it finished x, the result is $result"; return 1; fi
	if [ "$state" = done ] && [ "$a" != 0 ] && [ "$b" != 0 ]; then echo "done, but nobody was told"; return 1; fi
	case "$a" in 0|1|75|ok) ;; *) echo "A exited $a: $(cat "$d/A.err")"; return 1 ;; esac
}

# walk VERB-ARGS…: stops `sw-claim VERB-ARGS` (run on a prepared x, with
# $TOK) after each call in turn and checks the outcome.  RESULT: what A's
# own result would be.
walk() {
	local log=$BATS_TEST_TMPDIR/trace call n k cases=0
	local prep=${PREP:-make_claimed} oth=${OTHERS:-others} check=${CHECK:-check_once}
	snapshot walk "$prep"
	restore walk
	trace_counts "$log" sw-claim "${@//@TOK@/$TOK}"
	for call in $STALL_CALLS; do
		n=$(count_calls "$log" "$call")
		for k in $(walk_points "$n"); do
			restore walk
			local d=$BATS_TEST_TMPDIR/case
			rm -rf "$d"; mkdir -p "$d"
			stall_start "$call" "$k" "$d/A" ${AS:-} sw-claim "${@//@TOK@/$TOK}"
			$oth "$d"
			stall_resume
			if [ -n "${THEN:-}" ] && [ "$(cat "$d/A.rc")" = 0 ]; then   # what A does next
				local rc=0 tok
				tok=$(jq -r '.token // empty' "$d/A.out" 2>/dev/null | head -1)
				sw-claim ${THEN//@TOK@/${tok:-$TOK}} >/dev/null 2>&1 || rc=$?
				echo "$rc" >"$d/A.rc"
			fi
			if ! $check "$d" "$RESULT"; then
				echo "stalled after $call #$k of: sw-claim $*"
				return 1
			fi
			cases=$((cases + 1))
		done
	done
	echo "# $cases stall points" >&3
	[ "$cases" -gt 5 ]
}

@test "a done stalled at any step: the item is finished once, with the result of the one told so" {
	RESULT=A walk done x --token @TOK@ --result '"A"'
}

@test "a fail stalled at any step: never finished twice, nothing lost" {
	RESULT= walk fail x --token @TOK@ --error boom --retry-in 0
}

@test "a release stalled at any step: never finished twice, nothing lost" {
	RESULT= walk release x --token @TOK@
}

@test "a renew stalled at any step: its holder cannot finish what another finished" {
	# A renews, then (resumed) finishes with its token
	RESULT=A THEN='done x --token @TOK@ --result "A"' walk renew x --token @TOK@ --ttl 30s
}

@test "a claim (next) stalled at any step: its holder cannot finish what another finished" {
	PREP=prepare_added RESULT=A THEN='done x --token @TOK@ --result "A"' walk next --ttl 30s
}

prepare_added() {
	rm -rf "$SW_DIR"
	sw-claim add --id x '"p"' >/dev/null
	TOK=
}

@test "a cancel stalled at any step: cancelled or finished by another, never both" {
	# a successful cancel is A's finish: its "result" is the absent one
	RESULT=null walk cancel x
}

prepare_dead() {
	rm -rf "$SW_DIR"
	sw-claim add --id x --max-attempts 1 '"p"' >/dev/null
	TOK=$(sw-claim next | jq -r .token)
	sw-claim fail x --token "$TOK" >/dev/null
	TOK=
}

others_requeue() {
	later sw-claim requeue x >/dev/null 2>&1 || true
	others "$1"
}

@test "a requeue stalled at any step: the item comes back once, finished at most once" {
	PREP=prepare_dead OTHERS=others_requeue RESULT= walk requeue x
}

@test "a reap stalled at any step: an expired claim comes back once, finished at most once" {
	AS="env SW_CLOCK_OFFSET=1h" RESULT= walk reap
}

prepare_done() {
	rm -rf "$SW_DIR"
	sw-claim add --id x '"p"' >/dev/null
	TOK=$(sw-claim next | jq -r .token)
	sw-claim done x --token "$TOK" --result '"first"' >/dev/null
	TOK=
}

others_readd() {
	echo none >"$1/B.rc"
	later sw-claim add --id x '"again"' >"$1/B.add" 2>/dev/null || true
}

# purge: x is gone or there once; an add told "added" is there
check_purge() {
	local d=$1 n
	SW_CLOCK_OFFSET=2h sw-claim reap >/dev/null 2>&1 || true
	n=$(places x | wc -l)
	[ "$n" -le 1 ] || { echo "x is in: $(places x)"; return 1; }
	if jq -e '.added == true' "$d/B.add" >/dev/null 2>&1; then
		[ "$n" -eq 1 ] || { echo "an add was told added, x is gone"; return 1; }
	fi
	[ -z "$(ls "$SW_DIR/queues/default/stage")" ]
}

@test "a purge stalled at any step: an item added again under its id is not purged with the old one" {
	PREP=prepare_done OTHERS=others_readd CHECK=check_purge AS="env SW_CLOCK_OFFSET=1h" \
		walk purge --state done --older-than 1m
}

prepare_empty() {
	rm -rf "$SW_DIR"
	sw-claim add --id other '"o"' >/dev/null   # the queue exists
	TOK=
}

others_add() {
	echo none >"$1/B.rc"
	later sw-claim reap >/dev/null 2>&1 || true
	later sw-claim add --id x '"b"' >"$1/B.add" 2>/dev/null || true
}

# an add: x is there exactly once, whoever was told it was added
check_add() {
	local d=$1 a
	SW_CLOCK_OFFSET=2h sw-claim reap >/dev/null 2>&1 || true
	a=$(cat "$d/A.rc")
	[ "$(places x | wc -l)" -le 1 ] || { echo "x is in: $(places x)"; return 1; }
	local told=0
	jq -e '.added == true' "$d/A.out" >/dev/null 2>&1 && told=$((told + 1))
	jq -e '.added == true' "$d/B.add" >/dev/null 2>&1 && told=$((told + 1))
	[ "$told" -le 1 ] || { echo "two adds were told they added x"; return 1; }
	if [ "$told" -eq 1 ] || [ "$a" = 0 ]; then
		[ "$(places x | wc -l)" -eq 1 ] || { echo "x was added and is gone"; return 1; }
	fi
	[ -z "$(ls "$SW_DIR/queues/default/stage")" ] || { ls -la "$SW_DIR/queues/default/stage"; return 1; }
	case "$a" in 0|74|73) ;; *) echo "A exited $a: $(cat "$d/A.err")"; return 1 ;; esac
}

@test "an add of a given id stalled at any step: added once, never lost" {
	PREP=prepare_empty OTHERS=others_add CHECK=check_add walk add --id x '"a"'
}

# ---- sw-limit and sw-breaker: a writer of a version chain stalled --------------

# chain_stall PREP OTHERS CHECK CMD…: stops CMD after each call in turn
# (on the state PREP made), runs OTHERS DIR meanwhile, resumes it, and
# CHECK DIR says whether what everyone was told is what the chain holds.
chain_stall() {
	local prep=$1 oth=$2 check=$3
	shift 3
	local log=$BATS_TEST_TMPDIR/trace call n k cases=0 d=$BATS_TEST_TMPDIR/case
	snapshot chain "$prep"
	restore chain
	trace_counts "$log" "$@"
	for call in $STALL_CALLS; do
		n=$(count_calls "$log" "$call")
		for k in $(walk_points "$n"); do
			restore chain
			rm -rf "$d"; mkdir -p "$d"
			stall_start "$call" "$k" "$d/A" "$@"
			$oth "$d"
			stall_resume
			$check "$d" || { echo "stalled after $call #$k of: $*"; return 1; }
			cases=$((cases + 1))
		done
	done
	echo "# $cases stall points" >&3
	[ "$cases" -gt 5 ]
}

# a bucket of 3 with one granted; while A is stopped, B takes twice
prep_bucket() { rm -rf "$SW_DIR"; sw-limit take b --rate 1/h --burst 3 --quiet; }
others_take() {
	local i
	for i in 1 2; do sw-limit take b --rate 1/h --burst 3 >"$1/B$i.out" 2>/dev/null || true; done
}
# every grant told is one the bucket counts, and no more than its burst
check_grants() {
	local told granted
	told=$(cat "$1"/A.out "$1"/B*.out | jq -s 'map(select(.granted == true)) | length')
	granted=$(sw-limit show b | jq .bucket.granted)
	case "$(cat "$1/A.rc")" in 0|75|74) ;; *) echo "A exited $(cat "$1/A.rc"): $(cat "$1/A.err")"; return 1 ;; esac
	[ "$granted" -le 3 ] || { echo "$granted granted from a burst of 3"; return 1; }
	[ "$granted" -eq $((told + 1)) ] || [ "$(cat "$1/A.rc")" = 74 ] ||
		{ echo "told $told grants, the bucket counts $granted (1 before)"; return 1; }
}

# a breaker with one failure; while A is stopped, B records two
prep_breaker() { rm -rf "$SW_DIR"; sw-breaker record k --fail --quiet; }
others_record() {
	local i
	for i in 1 2; do sw-breaker record k --fail --failures 9 >"$1/B$i.out" 2>/dev/null || true; done
}
# every failure told counted is counted once
check_failures() {
	local told n
	told=$(cat "$1"/A.out "$1"/B*.out | jq -s 'map(select(.counted == true)) | length')
	n=$(sw-breaker show k | jq .failures_in_window)
	case "$(cat "$1/A.rc")" in 0|74) ;; *) echo "A exited $(cat "$1/A.rc"): $(cat "$1/A.err")"; return 1 ;; esac
	[ "$n" -eq $((told + 1)) ] || [ "$(cat "$1/A.rc")" = 74 ] ||
		{ echo "told $told failures counted, the breaker has $n (1 before)"; return 1; }
}

@test "sw-limit take and sw-breaker record stalled at any step while others write: no grant beyond the burst, every grant and failure told is counted once" {
	chain_stall prep_bucket others_take check_grants sw-limit take b --rate 1/h --burst 3
	chain_stall prep_breaker others_record check_failures sw-breaker record k --fail --failures 9
}

# a lease x held with token 1 (TOK); while A's release is stopped, B takes
# x an hour later, when A's hold has expired
prep_lease() { rm -rf "$SW_DIR"; TOK=$(sw-lease acquire x --ttl 1m | jq -r .token); }
others_acquire() { later sw-lease acquire x --ttl 2h >"$1/B.out" 2>"$1/B.err" || echo "B: $?" >>"$1/B.err"; }
# B holds x after A goes on, whatever A's release did
check_holder() {
	local a b s
	a=$(cat "$1/A.rc")
	b=$(jq -r .token "$1/B.out" 2>/dev/null) || { echo "B did not take x: $(cat "$1/B.err")"; return 1; }
	case "$a" in 0|1|74) ;; *) echo "A exited $a: $(cat "$1/A.err")"; return 1 ;; esac
	s=$(later sw-lease show x | jq -r '"\(.state) \(.token)"')
	[ "$s" = "held $b" ] || { echo "B took x with token $b, then A's release (exit $a) left it $s"; return 1; }
}

@test "sw-lease release stalled at any step while the lease expires and another takes it: the other still holds it" {
	snapshot lease_tok prep_lease   # TOK for the command line
	chain_stall prep_lease others_acquire check_holder sw-lease release x --token "$TOK"
}
