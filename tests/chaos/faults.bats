#!/usr/bin/env bats
# I/O faults: each verb with one system call failing (EIO, ENOSPC, EDQUOT,
# ESTALE, EINTR) at each point it reaches (strace inject=CALL:error=E:
# when=N).  It exits with its documented code (74 for I/O), never says it
# did what it did not commit, retries EINTR as if nothing happened; and
# afterwards the workspace reads back clean: every item in exactly one
# state, nothing left in stage/ once reap has run, every item whose add
# succeeded still there.  A sample of the Ns in `make check`; every N with
# SW_FAULTS_FULL=1 (`make check-faults`).
load ../helper
load ../faults

ERRNOS=(EIO ENOSPC EDQUOT ESTALE EINTR)

# a queue with x claimed (TOK), y pending, z done, w dead
make_queue() {
	rm -rf "$SW_DIR"
	for i in x y z w; do sw-claim add --id "$i" --max-attempts 1 "\"$i\"" >/dev/null; done
	for i in x y z w; do
		j=$(sw-claim next --ttl 1h)
		t=$(jq -r .token <<<"$j")
		case $(jq -r .id <<<"$j") in
		x) TOK=$t ;;
		y) sw-claim release y --token "$t" >/dev/null ;;
		z) sw-claim done z --token "$t" --result '"zz"' >/dev/null ;;
		w) sw-claim fail w --token "$t" >/dev/null ;;
		esac
	done
}

prepare() { restore q; }

# Every item of the queue once (ITEMS), nothing in flight, after a reap.
check_clean() {
	sw-claim reap >/dev/null 2>&1 || { echo "reap failed after the fault"; return 1; }
	local id n
	while read -r id n; do
		[ "$n" -eq 1 ] || { echo "$id is in $n places: $(places "$id")"; return 1; }
	done < <(count_places ${ITEMS:-x y z w})
	[ -z "$(ls "$SW_DIR/queues/default/stage")" ] || { echo "left in stage: $(ls "$SW_DIR/queues/default/stage")"; return 1; }
	sw-claim list --state all >/dev/null 2>"$BATS_TEST_TMPDIR/list.err" || { echo "list failed"; return 1; }
	[ ! -s "$BATS_TEST_TMPDIR/list.err" ] || { cat "$BATS_TEST_TMPDIR/list.err"; return 1; }
}

# fault_walk VERIFY VERB ARGS…: runs `sw-claim VERB ARGS` (on a prepared
# queue, @TOK@ replaced) with each call failing in turn; VERIFY RC ERRNO
# checks what the exit status promises.
fault_walk() {
	local verify=$1
	shift
	local log=$BATS_TEST_TMPDIR/trace call n k e cases=0 rc i=0
	[ -e "$BATS_TEST_TMPDIR/snap.q" ] || snapshot q make_queue
	prepare
	trace_counts "$log" sw-claim "${@//@TOK@/$TOK}" <"${STDIN:-/dev/null}"
	for call in $FAULT_CALLS; do
		n=$(count_calls "$log" "$call")
		for k in $(walk_points "$n"); do
			e=${ERRNOS[i++ % ${#ERRNOS[@]}]}
			prepare
			rc=0
			strace -f -qq -o /dev/null -e inject="$call":error="$e":when="$k" \
				sw-claim "${@//@TOK@/$TOK}" <"${STDIN:-/dev/null}" >"$BATS_TEST_TMPDIR/out" \
				2>"$BATS_TEST_TMPDIR/err" || rc=$?
			if ! $verify "$rc" "$e" || ! check_clean; then
				echo "with $call #$k failing ($e): sw-claim $* exited $rc: $(cat "$BATS_TEST_TMPDIR/err")"
				return 1
			fi
			cases=$((cases + 1))
		done
	done
	echo "# $cases fault points" >&3
	[ "$cases" -gt 5 ]
}

# The exit status is documented, EINTR changes nothing; with 0, the state
# change the verb reports is there.
io_codes() { # rc errno expected-state-of-x-on-success
	local rc=$1 e=$2 want=$3
	if [ "$e" = EINTR ] && [ "$rc" != 0 ]; then echo "EINTR was reported, not retried"; return 1; fi
	case "$rc" in
	0) [ -z "$want" ] || [ "$(sw-claim show x | jq -r .state)" = "$want" ] ||
		{ echo "exit 0, but x is $(sw-claim show x | jq -r .state)"; return 1; } ;;
	1|74|73|69) ;;
	*) echo "undocumented exit $rc"; return 1 ;;
	esac
}

done_ok() { io_codes "$1" "$2" done && { [ "$1" != 0 ] || [ "$(sw-claim show x | jq -r .result)" = A ]; }; }
fail_ok() { io_codes "$1" "$2" dead; }
release_ok() { io_codes "$1" "$2" pending; }
renew_ok() { io_codes "$1" "$2" claimed; }
cancel_ok() { io_codes "$1" "$2" cancelled; }
any_ok() { io_codes "$1" "$2" ""; }

@test "done with an I/O fault at any step: a documented exit, done only when it says so, clean after" {
	fault_walk done_ok done x --token @TOK@ --result '"A"'
}

@test "fail with an I/O fault at any step" {
	fault_walk fail_ok fail x --token @TOK@ --error boom
}

@test "release with an I/O fault at any step" {
	fault_walk release_ok release x --token @TOK@
}

@test "renew with an I/O fault at any step" {
	fault_walk renew_ok renew x --token @TOK@
}

@test "cancel with an I/O fault at any step" {
	fault_walk cancel_ok cancel x
}

@test "next, reap, requeue and purge with an I/O fault at any step" {
	fault_walk any_ok next
	fault_walk any_ok requeue w
	SW_CLOCK_OFFSET=2h fault_walk any_ok reap
	ITEMS="x y w" fault_walk any_ok purge --state done --older-than 0
}

# an add: exit 0 means the item is there
add_ok() {
	io_codes "$1" "$2" "" || return 1
	if [ "$1" = 0 ]; then
		[ "$(places v | wc -l)" -eq 1 ] || { echo "added, but v is in: $(places v)"; return 1; }
	elif grep -q "writing output" "$BATS_TEST_TMPDIR/err"; then
		:   # added, then the result line could not be written: 74, rightly
	else
		[ "$(places v | wc -l)" -eq 0 ] || { echo "not added, but v is in: $(places v)"; return 1; }
	fi
}

@test "add with an I/O fault at any step: added (exit 0) or not there at all" {
	fault_walk add_ok add --id v '"v"'
	# a batch: all or nothing
	batch_ok() {
		io_codes "$1" "$2" "" || return 1
		local n
		n=$(sw-claim list --state pending 2>/dev/null | jq -s 'map(select(.payload | test("^[0-9]+$"))) | length')
		if [ "$1" = 0 ] || grep -q "writing output" "$BATS_TEST_TMPDIR/err"; then
			[ "$n" -eq 300 ] || { echo "added, but $n of 300 there"; return 1; }
		else [ "$n" -eq 0 ] || { echo "failed, but $n of 300 there"; return 1; }; fi
	}
	seq 300 >"$BATS_TEST_TMPDIR/batch"
	STDIN=$BATS_TEST_TMPDIR/batch fault_walk batch_ok add --lines --quiet
}

# ---- leases -------------------------------------------------------------

make_lease() {
	rm -rf "$SW_DIR"
	TOK=$(sw-lease acquire job --ttl 1h | jq -r .token)
}

# a lease walk: exit documented; what it says is what `show` says after
lease_walk() { # verify args…
	local verify=$1
	shift
	local log=$BATS_TEST_TMPDIR/trace call n k e cases=0 rc i=0
	snapshot lease make_lease
	restore lease
	trace_counts "$log" ${AS:-} sw-lease "${@//@TOK@/$TOK}"
	for call in $FAULT_CALLS; do
		n=$(count_calls "$log" "$call")
		for k in $(walk_points "$n"); do
			e=${ERRNOS[i++ % ${#ERRNOS[@]}]}
			restore lease
			rc=0
			strace -f -qq -o /dev/null -e inject="$call":error="$e":when="$k" \
				${AS:-} sw-lease "${@//@TOK@/$TOK}" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" || rc=$?
			if [ "$e" = EINTR ] && [ "$rc" != 0 ]; then
				echo "EINTR was reported, not retried: $(cat "$BATS_TEST_TMPDIR/err")"; return 1
			fi
			case "$rc" in 0|1|69|73|74|75) ;; *) echo "undocumented exit $rc"; return 1 ;; esac
			if ! $verify "$rc" || ! sw-lease show job >/dev/null 2>"$BATS_TEST_TMPDIR/show.err"; then
				echo "with $call #$k failing ($e): sw-lease $* exited $rc: $(cat "$BATS_TEST_TMPDIR/err") $(cat "$BATS_TEST_TMPDIR/show.err")"
				return 1
			fi
			cases=$((cases + 1))
		done
	done
	echo "# $cases fault points" >&3
	[ "$cases" -gt 5 ]
}

lease_is() { # state token
	local j
	j=$(sw-lease show job)
	[ "$(jq -r .state <<<"$j")" = "$1" ] && [ "$(jq -r .token <<<"$j")" = "$2" ] ||
		{ echo "lease is $j, want $1 $2"; return 1; }
}
renewed_ok() { [ "$1" != 0 ] || lease_is held "$TOK"; }
released_ok() { [ "$1" != 0 ] || lease_is released "$TOK"; }
# taken over after expiry: exit 0 means token 2 holds it, else token 1 still does
# (a grant whose result could not be written is given back at once)
taken_ok() {
	if [ "$1" = 0 ]; then SW_CLOCK_OFFSET=2h lease_is held 2
	elif grep -q "writing output" "$BATS_TEST_TMPDIR/err"; then SW_CLOCK_OFFSET=2h lease_is released 2
	else SW_CLOCK_OFFSET=2h lease_is expired 1; fi
}

@test "sw-lease renew, release and acquire with an I/O fault at any step: what they say is what holds" {
	lease_walk renewed_ok renew job --token @TOK@ --ttl 1h
	lease_walk released_ok release job --token @TOK@
	AS="env SW_CLOCK_OFFSET=2h" lease_walk taken_ok acquire job --ttl 1h
}

# ---- sw-agent ------------------------------------------------------------------

make_agent_queue() {
	rm -rf "$SW_DIR"
	sw-claim add --id a '"a"' >/dev/null
	sw-claim add --id b '"b"' >/dev/null
}

@test "sw-agent run with an I/O fault at any step: a documented exit, nothing lost, nothing done twice" {
	local log=$BATS_TEST_TMPDIR/trace call n k e cases=0 rc i=0
	snapshot agent make_agent_queue
	restore agent
	# -f: the work is done by the guardian's child (and the command, whose
	# own failures are failed items, a case like any other)
	strace -f -qq -o "$log" sw-agent run --max-items 2 --idle-exit 0 -- cat >/dev/null 2>&1 || true
	for call in $FAULT_CALLS; do
		n=$(count_calls "$log" "$call")
		for k in $(walk_points "$n"); do
			e=${ERRNOS[i++ % ${#ERRNOS[@]}]}
			restore agent
			rc=0
			strace -f -qq -o /dev/null -e inject="$call":error="$e":when="$k" \
				sw-agent run --max-items 2 --idle-exit 0 -- cat \
				>"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" || rc=$?
			case "$rc" in 0|69|70|73|74|75) ;; *) echo "undocumented exit $rc"; return 1 ;; esac
			if [ "$e" = EINTR ] && [ "$rc" != 0 ]; then
				echo "EINTR was reported, not retried: $(cat "$BATS_TEST_TMPDIR/err")"; return 1
			fi
			# what the agent reported done is done, once; the rest is still there
			SW_CLOCK_OFFSET=1h sw-claim reap >/dev/null 2>&1 || true
			local id
			for id in a b; do
				[ "$(count_places "$id")" = "$id 1" ] || { echo "with $call #$k ($e): $id is in: $(places "$id")"; return 1; }
			done
			for id in $(jq -r 'select(.state == "done") | .id' "$BATS_TEST_TMPDIR/out" 2>/dev/null); do
				[ "$(sw-claim show "$id" | jq -r .state)" = done ] ||
					{ echo "with $call #$k ($e): $id reported done, is not"; return 1; }
			done
			cases=$((cases + 1))
		done
	done
	echo "# $cases fault points" >&3
	[ "$cases" -gt 5 ]
}

# ---- sw-limit and sw-breaker ---------------------------------------------------
# Their version chains (lib/chain.c) are opened beneath the workspace with
# openat2 as well: walked too.
CHAIN_CALLS="$FAULT_CALLS openat2"

# chain_walk SNAP PREP VERIFY CMD…: CMD with each call failing in turn on
# the state PREP made.  The exit is documented, EINTR changes nothing
# (exit 0), and VERIFY RC says that what CMD said is what holds.
chain_walk() {
	local snap=$1 prep=$2 verify=$3
	shift 3
	local log=$BATS_TEST_TMPDIR/trace call n k e cases=0 rc i=0
	snapshot "$snap" "$prep"
	restore "$snap"
	trace_counts "$log" "$@"
	for call in $CHAIN_CALLS; do
		n=$(count_calls "$log" "$call")
		for k in $(walk_points "$n"); do
			e=${ERRNOS[i++ % ${#ERRNOS[@]}]}
			restore "$snap"
			rc=0
			strace -f -qq -o /dev/null -e inject="$call":error="$e":when="$k" "$@" \
				>"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" || rc=$?
			local what="with $call #$k failing ($e): $* exited $rc: $(cat "$BATS_TEST_TMPDIR/err")"
			[ "$e" != EINTR ] || [ "$rc" = 0 ] || { echo "EINTR was reported, not retried: $what"; return 1; }
			case "$rc" in 0|69|73|74) ;; *) echo "undocumented exit: $what"; return 1 ;; esac
			$verify "$rc" || { echo "$what"; return 1; }
			cases=$((cases + 1))
		done
	done
	echo "# $cases fault points" >&3
	[ "$cases" -gt 5 ]
}

# counted WHAT WANT RC: after a change that adds one to WHAT (a jq path of
# CMD's show), exit 0 means it did; a failure may have committed it (a
# grant or an outcome lost, never one made up), nothing else; the chain
# reads back with no damaged version.
counted() {
	local show n
	show=$($SHOW 2>"$BATS_TEST_TMPDIR/show.err") || { echo "show failed: $(cat "$BATS_TEST_TMPDIR/show.err")"; return 1; }
	[ ! -s "$BATS_TEST_TMPDIR/show.err" ] || { echo "show: $(cat "$BATS_TEST_TMPDIR/show.err")"; return 1; }
	n=$(jq -r "$1" <<<"$show")
	if [ "$3" = 0 ]; then
		[ "$n" = "$2" ] || { echo "exit 0, but $1 is $n, want $2"; return 1; }
	else
		[ "$n" = "$2" ] || [ "$n" = $(($2 - 1)) ] || { echo "exit $3, and $1 is $n"; return 1; }
	fi
}

make_bucket() { rm -rf "$SW_DIR"; sw-limit take b --rate 1/h --burst 3 --quiet; }
make_window() { rm -rf "$SW_DIR"; sw-limit take w --window 1h --max 5 --quiet; }
make_breaker() { rm -rf "$SW_DIR"; sw-breaker record k --fail --quiet; }
bucket_ok() { SHOW="sw-limit show b" counted .bucket.granted 2 "$1"; }
window_ok() { SHOW="sw-limit show w" counted .window.granted 2 "$1"; }
failure_ok() { SHOW="sw-breaker show k" counted .failures_in_window 2 "$1"; }
trip_ok() {
	local s
	s=$(sw-breaker show k 2>"$BATS_TEST_TMPDIR/show.err") && [ ! -s "$BATS_TEST_TMPDIR/show.err" ] ||
		{ echo "show: $(cat "$BATS_TEST_TMPDIR/show.err")"; return 1; }
	[ "$1" != 0 ] || [ "$(jq -r .state <<<"$s")" = open ] || { echo "exit 0, but the breaker is $s"; return 1; }
}

@test "sw-limit take and sw-breaker record and trip with an I/O fault at any step: a grant or an outcome is there when they say so, the chain reads back clean" {
	chain_walk bucket make_bucket bucket_ok sw-limit take b --rate 1/h --burst 3
	chain_walk window make_window window_ok sw-limit take w --window 1h --max 5
	chain_walk breaker make_breaker failure_ok sw-breaker record k --fail
	chain_walk breaker make_breaker trip_ok sw-breaker trip k
}
