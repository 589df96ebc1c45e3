# Shared by the suites of the run verbs on lib/hold (sw-lease, sw-limit,
# sw-breaker; local and multihost).

# A run (PID) whose command appends the time to ./beats every 50 ms is
# stopped whole past its grant's TTL and resumed: the program first, the
# command once the program has killed it.  stall_tree PID stops it ($procs);
# resume_tree PROG resumes it ($t_resume) and checks that the program
# exited 75 saying the grant was lost, that no beat came after the
# resume, and that the command is gone, and was so well within the 10 s
# grace that its callers give (at once, not a grace later).
stall_tree() {
	wait_until 20 test -s beats
	procs=$(tree_pids "$1")
	track $procs
	kill -STOP $procs 2>/dev/null || true
}

resume_tree() {
	local prog=$1 p pp ours= theirs= others= last t_gone
	# the program's processes, the command's (below them: tree_pids lists
	# a parent before its children), and the rest (a shell above them)
	for p in $procs; do
		pp=$(ps -o ppid= -p "$p" | tr -d ' ')
		if [ "$(cat /proc/$p/comm 2>/dev/null)" = "$prog" ]; then ours+=" $p"
		elif [[ " $ours $theirs " == *" $pp "* ]]; then theirs+=" $p"
		else others+=" $p"; fi
	done
	t_resume=$(date +%s%N)
	kill -CONT $ours $others
	# the program first, until it has SIGKILLed the command (or 20 s
	# went by: the command would run on once resumed)
	wait_until 20 gone $theirs || true
	t_gone=$(date +%s%N)
	kill -CONT $theirs 2>/dev/null || true
	reap_job "$pid" 20
	cat err
	[ "$st" -eq 75 ]
	[[ $(cat err) == *lost* ]]
	last=$(tail -1 beats)
	[ "$last" -lt "$t_resume" ] || { echo "beats $(( (last - t_resume) / 1000000 )) ms after the resume"; return 1; }
	gone $theirs
	echo "the command was gone $(( (t_gone - t_resume) / 1000000 )) ms after the resume"
	[ $(( t_gone - t_resume )) -lt 5000000000 ]
}

# beat_run PROG ARGS...: `PROG run ARGS` in $BATS_TEST_TMPDIR, in the
# background ($pid, tracked), its stderr in err; its command ignores
# SIGTERM and writes the time to beats every 50 ms.
beat_run() {
	local prog=$1
	shift
	cd "$BATS_TEST_TMPDIR"
	"$prog" run "$@" -- sh -c 'trap "" TERM; while :; do date +%s%N >>beats; sleep 0.05; done' 2>err &
	pid=$!
	track "$pid"
}

# stall_worker PID: stops only the worker of the run PID (the guardian's
# child), as a renewal hung on a stalled filesystem would, once its
# command beats; the command, which touches no file, runs on.
# resume_worker (after the next holder's command, which wrote the time
# it started to the file started): resumes it and checks that the run
# exited 75 saying the grant was lost and that the command's last beat
# came before the next holder's command started.
stall_worker() {
	wait_until 20 test -s beats
	worker=$(ps -o pid= --ppid "$1" | tr -d ' ')
	[ -n "$worker" ]
	track "$worker"
	kill -STOP "$worker"
}

resume_worker() {
	local last started
	kill -CONT "$worker"
	reap_job "$pid" 20
	cat err
	[ "$st" -eq 75 ]
	[[ $(cat err) == *lost* ]]
	last=$(tail -1 beats) started=$(cat started)
	echo "the last beat came $(( (started - last) / 1000000 )) ms before the next holder's command started"
	[ "$last" -lt "$started" ]
}

# flat_out NAME SECS PROCS SIDE... -- TAKE-OPTIONS...: PROCS takers per
# SIDE (a command prefix such as on_a, or "env" for this host) call
# `sw-limit take NAME` flat out for SECS; every answer's line goes to
# out.<side>.<i>, a call that gave no answer (no JSON: an error, or a
# write that kept losing its race) as {"error":STATUS}, and every grant
# to $BATS_TEST_TMPDIR/granted; the run's whole time, from the first call
# to the end of the last (which may end past SECS), in ms to wall_ms.  The
# time comes from bash's EPOCHREALTIME: a date(1) a call would take the CPU
# the takers need.
flat_out() {
	local name=$1 secs=$2 procs=$3 i side sides=(); shift 3
	while [ "$1" != -- ]; do sides+=("$1"); shift; done
	shift
	local start=${EPOCHREALTIME/./}
	local end=$(( start + secs * 1000000 ))
	for side in "${sides[@]}"; do
		for ((i = 0; i < procs; i++)); do
			( while [ "${EPOCHREALTIME/./}" -lt "$end" ]; do
				out=$($side sw-limit take "$name" "$@" 2>/dev/null) && rc=0 || rc=$?   # 75 is an answer
				if [ -n "$out" ]; then echo "$out"; else echo "{\"error\":$rc}"; fi
			done >"$BATS_TEST_TMPDIR/out.$side.$i" ) &
		done
	done
	wait
	echo $(( (${EPOCHREALTIME/./} - start) / 1000 )) >"$BATS_TEST_TMPDIR/wall_ms"
	cat "$BATS_TEST_TMPDIR"/out.* | jq -c 'select(.granted == true)' >"$BATS_TEST_TMPDIR/granted"
}

# window_ideal MAX WINDOW_NS: how many of the calls in $BATS_TEST_TMPDIR/out.*
# an exact sliding window would grant, each at the time it was decided
# (a grant's time; a refusal's retry time less its wait): what a
# liveness bound is judged against, so that a loaded machine making
# fewer calls does not fail it
window_ideal() {
	cat "$BATS_TEST_TMPDIR"/out.* | jq -s --argjson m "$1" --argjson w "$2" '
		[.[] | select(.error | not) | if .granted then .granted_at_unix_ns | tonumber
			else (.retry_at_unix_ns | tonumber) - .retry_after_ms * 1e6 end] | sort |
		reduce .[] as $now ({live: [], n: 0};
			(.live | map(select(. > $now - $w))) as $live |
			if ($live | length) < $m then {live: ($live + [$now]), n: (.n + 1)}
			else {live: $live, n: .n} end) | .n'
}

# window_held MAX WINDOW_NS: no window of WINDOW_NS holds more than MAX of
# the grants in $BATS_TEST_TMPDIR/granted (sorted, the one MAX places on
# is a whole window later); exact, in the shell's 64-bit arithmetic
window_held() {
	local max=$1 w=$2 t i
	mapfile -t t < <(jq -r .granted_at_unix_ns "$BATS_TEST_TMPDIR/granted" | sort -n)
	for ((i = max; i < ${#t[@]}; i++)); do
		(( t[i] - t[i - max] >= w )) ||
			{ echo "grants $((i - max + 1)) to $((i + 1)) within $(( t[i] - t[i - max] )) ns"; return 1; }
	done
}

# The multihost suites: a fresh subdirectory of the shared filesystem per
# test ($WA seen from host A, $WB from host B; never a reused name).
mh_setup() {
	[ -n "${SW_MH_A:-}" ] && [ -n "${SW_MH_B:-}" ] ||
		skip "SW_MH_A/SW_MH_B unset: no multihost filesystem (see tests/lab/lab up)"
	local sub="$1-$$-$BATS_TEST_NUMBER-$RANDOM"
	WA=$SW_MH_A/$sub
	WB=$SW_MH_B/$sub
	mkdir -p "$WA"
	for _ in $(seq 50); do [ -d "$WB" ] && break; sleep 0.1; done
}

mh_teardown() {
	untrack_all
	[ -n "${WA:-}" ] && rm -rf "$WA"
	return 0
}

on_a() { SW_DIR=$WA "$@"; }
on_b() { SW_DIR=$WB "$@"; }

# rate_held RATE BURST SECS: the grants of a flat_out run of SECS under
# --rate RATE/s --burst BURST are at most BURST + RATE per second of
# their own span and of the run (SECS, and the calls that were under way
# then), every call got an answer, and the grants
# are at least 95% of what an exact token bucket would have granted the
# same calls at the same times (a refusal's time: retry_at less
# retry_after): contention must not starve the limiter.  Takers that ask
# faster than the rate the whole time make that the 95% of RATE x
# SECS + BURST; on a machine too busy to run them that fast, it still
# proves that no call was refused that should have been granted.
rate_held() {
	local rate=$1 burst=$2 secs=$3 n first last calls errors ideal bound wall
	n=$(wc -l <"$BATS_TEST_TMPDIR/granted")
	first=$(jq -r .granted_at_unix_ns "$BATS_TEST_TMPDIR/granted" | sort -n | head -1)
	last=$(jq -r .granted_at_unix_ns "$BATS_TEST_TMPDIR/granted" | sort -n | tail -1)
	calls=$(cat "$BATS_TEST_TMPDIR"/out.* | wc -l)
	errors=$(cat "$BATS_TEST_TMPDIR"/out.* | jq -c 'select(.error)' | sort | uniq -c)
	ideal=$(cat "$BATS_TEST_TMPDIR"/out.* | jq -s --argjson r "$rate" --argjson b "$burst" '
		(1e9 / $r) as $t | ($b * $t) as $tau |
		[.[] | select(.error | not) | if .granted then .granted_at_unix_ns | tonumber
			else (.retry_at_unix_ns | tonumber) - .retry_after_ms * 1e6 end] | sort |
		reduce .[] as $now ({tat: 0, n: 0};
			([.tat, $now] | max) as $base |
			if $base + $t - $tau <= $now then {tat: ($base + $t), n: (.n + 1)} else . end) | .n')
	bound=$(( rate * secs + burst ))
	wall=$(cat "$BATS_TEST_TMPDIR/wall_ms")
	echo "$calls calls in ${secs}s, $n granted (bound $bound, an exact bucket: $ideal);" \
		"span $(( (${last:-0} - ${first:-0}) / 1000000 )) ms, run $wall ms"
	[ -z "$errors" ] || { echo "calls without an answer: $errors"; return 1; }
	# the GCRA bound over the grants' own span
	[ "$n" -le $(( burst + 1 + (${last:-0} - ${first:-0}) * rate / 1000000000 )) ]
	[ "$n" -le $(( burst + rate * wall / 1000 )) ]
	[ "$n" -ge $(( ideal * 95 / 100 )) ]
	[ "$ideal" -ge $(( bound * 95 / 100 )) ] ||
		echo "the takers did not outrun the rate the whole time: judged against the calls made"
}

# slot_held NAME: its first slot is held with token 1 (the first holder's)
slot_held() { sw-limit show "$1" 2>/dev/null | jq -e '.slots.slots[0].token == 1' >/dev/null; }
