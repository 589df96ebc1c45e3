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
	local log=$BATS_TEST_TMPDIR/trace point call k e cases=0 rc i=0
	[ -e "$BATS_TEST_TMPDIR/snap.q" ] || snapshot q make_queue
	prepare
	trace_counts "$log" sw-claim "${@//@TOK@/$TOK}" <"${STDIN:-/dev/null}"
	for point in $(walk_calls "$log" $FAULT_CALLS); do
		call=${point%:*} k=${point#*:}
		e=${ERRNOS[i++ % ${#ERRNOS[@]}]}
		prepare
		inject "$point" "$e" sw-claim "${@//@TOK@/$TOK}" <"${STDIN:-/dev/null}" || return 1
		if ! $verify "$rc" "$e" || ! ${CHECK:-check_clean}; then
			echo "with $call #$k failing ($e): sw-claim $* exited $rc: $(cat "$BATS_TEST_TMPDIR/err")"
			return 1
		fi
		cases=$((cases + 1))
	done
	echo "# $cases fault points" >&3
	[ "$cases" -gt 5 ]
}

# The exit status is documented (that EINTR changes nothing, inject
# checks); with 0, the state change the verb reports is there.
io_codes() { # rc errno expected-state-of-x-on-success
	local rc=$1 want=$3
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

# a, b and c claimed; the done lines of all three, with result R, in batch
make_batch() {
	rm -rf "$SW_DIR"
	local i
	for i in a b c; do sw-claim add --id "$i" '"p"' >/dev/null; done
	sw-claim next -n 3 --ttl 1h | jq -c '.result = "R"' >"$BATS_TEST_TMPDIR/batch"
	TOK=
}

# each item whose line says ok is done with its result; 0: all three are
batch_done_ok() {
	io_codes "$1" "$2" "" || return 1
	local id
	for id in a b c; do
		if jq -se --arg id "$id" 'any(.[]; .id == $id and .ok == true)' "$BATS_TEST_TMPDIR/out" >/dev/null; then
			[ "$(sw-claim show "$id" | jq -r '"\(.state) \(.result)"')" = "done R" ] ||
				{ echo "$id said ok, but is $(sw-claim show "$id" | jq -c .)"; return 1; }
		elif [ "$1" = 0 ]; then
			echo "exit 0, but no ok line for $id"; return 1
		fi
	done
}

@test "done from stdin (a batch, moved as a group) with an I/O fault at any step: each item done when its line says so, clean after" {
	snapshot q make_batch
	ITEMS="a b c" STDIN=$BATS_TEST_TMPDIR/batch fault_walk batch_done_ok done
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
	local log=$BATS_TEST_TMPDIR/trace point call k e cases=0 rc i=0
	snapshot lease make_lease
	restore lease
	trace_counts "$log" ${AS:-} sw-lease "${@//@TOK@/$TOK}"
	for point in $(walk_calls "$log" $FAULT_CALLS); do
		call=${point%:*} k=${point#*:}
		e=${ERRNOS[i++ % ${#ERRNOS[@]}]}
		restore lease
		inject "$point" "$e" ${AS:-} sw-lease "${@//@TOK@/$TOK}" || return 1
		case "$rc" in 0|1|69|73|74|75) ;; *) echo "undocumented exit $rc"; return 1 ;; esac
		if ! $verify "$rc" || ! sw-lease show job >/dev/null 2>"$BATS_TEST_TMPDIR/show.err"; then
			echo "with $call #$k failing ($e): sw-lease $* exited $rc: $(cat "$BATS_TEST_TMPDIR/err") $(cat "$BATS_TEST_TMPDIR/show.err")"
			return 1
		fi
		cases=$((cases + 1))
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
	local log=$BATS_TEST_TMPDIR/trace point call k e cases=0 rc i=0
	snapshot agent make_agent_queue
	restore agent
	# -f: the work is done by the guardian's child (and the command, whose
	# own failures are failed items, a case like any other)
	strace -f -qq -o "$log" sw-agent run --max-items 2 --idle-exit 0 -- cat >/dev/null 2>&1 || true
	for point in $(walk_calls "$log" $FAULT_CALLS); do
		call=${point%:*} k=${point#*:}
		e=${ERRNOS[i++ % ${#ERRNOS[@]}]}
		restore agent
		inject "$point" "$e" sw-agent run --max-items 2 --idle-exit 0 -- cat || return 1
		case "$rc" in 0|69|70|73|74|75) ;; *) echo "undocumented exit $rc"; return 1 ;; esac
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
	echo "# $cases fault points" >&3
	[ "$cases" -gt 5 ]
}

# ---- sw-limit and sw-breaker ---------------------------------------------------
# Their version chains (lib/chain.c) are opened beneath the workspace with
# openat2, walked with the others.

# chain_walk SNAP PREP VERIFY CMD…: CMD with each call failing in turn on
# the state PREP made.  The exit is documented (one of CODES; a command's
# runner also passes its COMMAND's status), EINTR changes nothing (exit
# 0), and VERIFY RC says that what CMD said is what holds.  A COMMAND
# that appends to $RAN leaves there how often it ran.
chain_walk() {
	local snap=$1 prep=$2 verify=$3
	shift 3
	local log=$BATS_TEST_TMPDIR/trace point call k e cases=0 rc i=0
	[ -e "$BATS_TEST_TMPDIR/snap.$snap" ] || snapshot "$snap" "$prep"
	restore "$snap"
	trace_counts "$log" "$@"
	for point in $(walk_calls "$log" $FAULT_CALLS); do
		call=${point%:*} k=${point#*:}
		e=${ERRNOS[i++ % ${#ERRNOS[@]}]}
		restore "$snap"
		[ -z "${RAN:-}" ] || rm -f "$RAN"
		inject "$point" "$e" "$@" || return 1
		local what="with $call #$k failing ($e): $* exited $rc: $(cat "$BATS_TEST_TMPDIR/err")"
		[[ " ${CODES:-0 69 73 74} " == *" $rc "* ]] || { echo "undocumented exit: $what"; return 1; }
		$verify "$rc" || { echo "$what"; return 1; }
		cases=$((cases + 1))
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

# ---- runners: sw-lease run, sw-limit acquire/release/run, sw-breaker run/reset --

# ran N: the command ran N times (a runner that said 0 ran it once)
ran_times() { local n=0; [ ! -e "$RAN" ] || n=$(wc -l <"$RAN"); echo "$n"; }
ran_ok() { # rc: at most once, and once when the runner said 0
	local n
	n=$(ran_times)
	[ "$n" -le 1 ] || { echo "the command ran $n times"; return 1; }
	[ "$1" != 0 ] || [ "$n" = 1 ] || { echo "exit 0, the command did not run"; return 1; }
}
shows_clean() { # CMD…: reads back with nothing on stderr
	"$@" >"$BATS_TEST_TMPDIR/show" 2>"$BATS_TEST_TMPDIR/show.err" && [ ! -s "$BATS_TEST_TMPDIR/show.err" ] ||
		{ echo "$*: $(cat "$BATS_TEST_TMPDIR/show.err")"; return 1; }
}

make_released() { rm -rf "$SW_DIR"; sw-lease run job --ttl 1h -- true; }
# said: the runner said on stderr that WHAT failed (then it exits with
# the command's status, and the lease, slot or probe runs out by its ttl)
said() { grep -q "$1: " "$BATS_TEST_TMPDIR/err"; }
# the lease is not left held by a run that ended, unless it said its
# release failed
lease_run_ok() {
	ran_ok "$1" && shows_clean sw-lease show job || return 1
	[ "$(jq -r .state "$BATS_TEST_TMPDIR/show")" != held ] || [ "$1" = 74 ] || said releasing ||
		{ echo "exit $1, and the lease is still held"; return 1; }
}

@test "sw-lease run with an I/O fault at any step: the command runs at most once, once when it says 0, the lease is not left held" {
	export RAN=$BATS_TEST_TMPDIR/ran
	CODES="0 69 73 74 75" chain_walk released make_released lease_run_ok sw-lease run job --ttl 1h -- sh -c 'echo x >>"$RAN"'
}

make_slots() { rm -rf "$SW_DIR"; sw-limit acquire s --concurrency 2 --ttl 1h >"$BATS_TEST_TMPDIR/slot"; }
held() { shows_clean sw-limit show s && jq -r .slots.held "$BATS_TEST_TMPDIR/show"; }
# exit 0: the second slot is held; a failure may have taken it (a slot
# lost until its ttl, never two holders of one)
acquired_ok() {
	local h
	h=$(held) || { echo "$h"; return 1; }
	[ "$h" = 2 ] || { [ "$1" != 0 ] && [ "$h" = 1 ]; } || { echo "exit $1, $h slots held"; return 1; }
}
released_slot_ok() {
	local h
	h=$(held) || { echo "$h"; return 1; }
	[ "$h" = 0 ] || { [ "$1" != 0 ] && [ "$h" = 1 ]; } || { echo "exit $1, $h slots held"; return 1; }
}
slot_run_ok() {
	local h
	ran_ok "$1" && h=$(held) || { echo "$h"; return 1; }
	[ "$h" = 1 ] || { { [ "$1" = 74 ] || said releasing; } && [ "$h" = 2 ]; } ||
		{ echo "exit $1, $h slots held after the run"; return 1; }
}

@test "sw-limit acquire, release and run with an I/O fault at any step: a slot is held when they say so, the command runs at most once" {
	chain_walk slots make_slots acquired_ok sw-limit acquire s --concurrency 2 --ttl 1h
	local slot tok   # of the slot held in the snapshot
	slot=$(jq -r .slot "$BATS_TEST_TMPDIR/slot"); tok=$(jq -r .token "$BATS_TEST_TMPDIR/slot")
	chain_walk slots make_slots released_slot_ok sw-limit release s --slot "$slot" --token "$tok"
	export RAN=$BATS_TEST_TMPDIR/ran
	CODES="0 69 73 74 75" chain_walk slots make_slots slot_run_ok \
		sw-limit run s --concurrency 2 --ttl 1h -- sh -c 'echo x >>"$RAN"'
}

make_tripped() { rm -rf "$SW_DIR"; sw-breaker trip k --quiet; }
# a half-open probe (an hour after the trip): the command runs at most
# once, the breaker reads back; a probe that ran and succeeded closes it
# unless the run said it failed
probe_ok() {
	ran_ok "$1" && shows_clean later_breaker_show || return 1
	[ "$1" != 0 ] || [ "$(jq -r .state "$BATS_TEST_TMPDIR/show")" = closed ] || said "recording the outcome" ||
		{ echo "exit 0, the breaker is $(cat "$BATS_TEST_TMPDIR/show")"; return 1; }
}
later_breaker_show() { SW_CLOCK_OFFSET=1h sw-breaker show k; }
reset_ok() {
	shows_clean sw-breaker show k || return 1
	[ "$1" != 0 ] || [ "$(jq -r '"\(.state) \(.failures_in_window)"' "$BATS_TEST_TMPDIR/show")" = "closed 0" ] ||
		{ echo "exit 0, the breaker is $(cat "$BATS_TEST_TMPDIR/show")"; return 1; }
}

@test "sw-breaker run (a half-open probe) and reset with an I/O fault at any step: the command runs at most once, the breaker is what they say" {
	export RAN=$BATS_TEST_TMPDIR/ran
	CODES="0 69 73 74 75" chain_walk tripped make_tripped probe_ok \
		env SW_CLOCK_OFFSET=1h sw-breaker run k -- sh -c 'echo x >>"$RAN"'
	chain_walk tripped make_tripped reset_ok sw-breaker reset k
}

# ---- sw-agent reap -----------------------------------------------------------

# a dead agent k1 (its worker SIGKILLed) holding a and b with 1 h leases,
# c pending
make_dead_agent() {
	rm -rf "$SW_DIR"
	local id pid w kids
	for id in a b c; do sw-claim add --id "$id" --timeout 1h --quiet "\"$id\""; done
	sw-agent run --id k1 -j 2 --quiet -- sleep 30 &
	pid=$!
	for ((i = 0; i < 100; i++)); do
		[ "$(sw-agent list | jq '.claims | length')" = 2 ] && break; sleep 0.05
	done
	w=$(pgrep -P "$pid" -x sw-agent)
	kids=$(pgrep -P "$w" || true)
	kill -KILL "$w" $kids; wait "$pid" || true
}
# every item in one place; a reap told to have reaped k1 left no record of
# it, and after a clean reap (a minute on) a and b are claimable again
agent_reaped_ok() {
	local id
	for id in a b c; do
		[ "$(count_places "$id")" = "$id 1" ] || { echo "$id is in: $(places "$id")"; return 1; }
	done
	if jq -r 'select(.id == "k1") | .reaped' "$BATS_TEST_TMPDIR/out" 2>/dev/null | grep -qx true; then
		[ ! -e "$SW_DIR/agents/k1.json" ] || { echo "told k1 was reaped, its record is there"; return 1; }
	fi
	SW_CLOCK_OFFSET=1m sw-agent reap >/dev/null 2>&1 || { echo "a clean reap after it failed"; return 1; }
	[ "$(sw-claim stats | jq '.pending')" = 3 ] || { echo "after a clean reap: $(sw-claim stats)"; return 1; }
}

@test "sw-agent reap with an I/O fault at any step: nothing lost or doubled, a dead agent's claims come back" {
	CODES="0 69 73 74" chain_walk dead make_dead_agent agent_reaped_ok env SW_CLOCK_OFFSET=1m sw-agent reap
}

# ---- sw-claim add where the workspace is made, and a batch taken back -------------

@test "add into a workspace that is not there yet with an I/O fault at any step (mkdir too): added or not there" {
	prepare() { rm -rf "$SW_DIR"; }
	stage_clean() {
		[ ! -d "$SW_DIR/queues/default/stage" ] || [ -z "$(ls "$SW_DIR/queues/default/stage")" ] ||
			{ echo "left in stage: $(ls "$SW_DIR/queues/default/stage")"; return 1; }
	}
	touch "$BATS_TEST_TMPDIR/snap.q"   # fault_walk's queue: none
	CHECK=stage_clean fault_walk add_ok add --id v '"v"'
}

@test "a batch add that fails and whose take-back meets an I/O fault too: it says how many items stayed, and they are all that stayed" {
	seq 40 >"$BATS_TEST_TMPDIR/batch"
	snapshot q make_queue
	restore q
	# the 20th item cannot be placed: the 19 before it are taken back
	local fail=(-e inject=renameat:error=EIO:when=20) log=$BATS_TEST_TMPDIR/trace point call n k e cases=0 i=0 left
	strace -f -qq -o "$log" "${fail[@]}" sw-claim add --lines --quiet <"$BATS_TEST_TMPDIR/batch" >/dev/null 2>&1 || true
	for point in $(walk_calls "$log" openat2 unlinkat); do
		call=${point%:*} k=${point#*:}
		# the take-back's call fails once (its retry then succeeds) or twice
		for when in "$k" "$k..$((k + 1))"; do
			e=${ERRNOS[i++ % 4]}   # EINTR is retried at once: not a failure here
			restore q
			rc=0
			strace -f -qq -o /dev/null "${fail[@]}" -e inject="$call":error="$e":when="$when" \
				sw-claim add --lines --quiet <"$BATS_TEST_TMPDIR/batch" >/dev/null 2>"$BATS_TEST_TMPDIR/err" || rc=$?
			n=$(sw-claim list --state pending | jq -s 'map(select(.payload | test("^[0-9]+$"))) | length')
			left=$(sed -n 's/.*; \([0-9]*\) added items* could not be taken back$/\1/p' "$BATS_TEST_TMPDIR/err")
			if [ "$rc" != 74 ] || [ "$n" != "${left:-0}" ] ||
			   { [ -z "$left" ] && ! grep -q 'nothing added$' "$BATS_TEST_TMPDIR/err"; }; then
				echo "with $call #$when failing ($e) in the take-back: exit $rc, $n of the batch stayed: $(cat "$BATS_TEST_TMPDIR/err")"
				return 1
			fi
			cases=$((cases + 1))
		done
	done
	echo "# $cases fault points" >&3
	[ "$cases" -gt 5 ]
}
