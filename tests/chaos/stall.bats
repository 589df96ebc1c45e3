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
