# Shared by the sw-limit and sw-breaker suites (local and multihost).

# refused STATUS COMMAND...: exactly one line on stderr, from the program
# run, and nothing on stdout
refused() {
	local want=$1; shift
	run --separate-stderr "$@"
	[ "$status" -eq "$want" ] || { echo "status $status, want $want: $stderr"; return 1; }
	[ "${#stderr_lines[@]}" -eq 1 ] || { echo "stderr: $stderr"; return 1; }
	[[ $stderr == "${1##*/}:"* ]] || { echo "stderr: $stderr"; return 1; }
	[ -z "$output" ] || { echo "stdout: $output"; return 1; }
}

# A run (PID) whose command appends the time to ./beats every 50 ms is
# stopped whole past its grant's TTL and resumed: the program first, the
# command half a second later.  stall_tree PID stops it ($procs);
# resume_tree PROG resumes it ($t_resume) and checks that the program
# exited 75 saying the grant was lost, that no beat came after the
# resume, and that the command is gone.
stall_tree() {
	wait_until 5 test -s beats
	procs=$(tree_pids "$1")
	track $procs
	kill -STOP $procs 2>/dev/null || true
}

resume_tree() {
	local prog=$1 p ours= theirs= last
	for p in $procs; do
		if [ "$(cat /proc/$p/comm 2>/dev/null)" = "$prog" ]; then ours+=" $p"; else theirs+=" $p"; fi
	done
	t_resume=$(date +%s%N)
	kill -CONT $ours
	sleep 0.5    # the program first; the command would run on after this
	kill -CONT $theirs 2>/dev/null || true
	reap_job "$pid" 5
	cat err
	[ "$st" -eq 75 ]
	[[ $(cat err) == *lost* ]]
	last=$(tail -1 beats)
	[ "$last" -lt "$t_resume" ] || { echo "beats $(( (last - t_resume) / 1000000 )) ms after the resume"; return 1; }
	gone $theirs
}

# flat_out NAME SECS PROCS SIDE... -- TAKE-OPTIONS...: PROCS takers per
# SIDE (a command prefix such as on_a, or "env" for this host) call
# `sw-limit take NAME` flat out for SECS; every grant's line goes to
# $BATS_TEST_TMPDIR/granted, every answer to out.<side>.<i>.  The time
# comes from bash's EPOCHREALTIME: a date(1) a call would take the CPU the
# takers need.
flat_out() {
	local name=$1 secs=$2 procs=$3 i side sides=(); shift 3
	while [ "$1" != -- ]; do sides+=("$1"); shift; done
	shift
	local end=$(( ${EPOCHREALTIME/./} + secs * 1000000 ))
	for side in "${sides[@]}"; do
		for ((i = 0; i < procs; i++)); do
			( while [ "${EPOCHREALTIME/./}" -lt "$end" ]; do
				$side sw-limit take "$name" "$@" 2>/dev/null || :   # 75 is an answer
			done >"$BATS_TEST_TMPDIR/out.$side.$i" ) &
		done
	done
	wait
	cat "$BATS_TEST_TMPDIR"/out.* | jq -c 'select(.granted)' >"$BATS_TEST_TMPDIR/granted"
}

# window_held MAX WINDOW_NS: no window of WINDOW_NS holds more than MAX of
# the grants in $BATS_TEST_TMPDIR/granted (sorted, the one MAX places on
# is a whole window later)
window_held() {
	jq -s -e --argjson m "$1" --argjson w "$2" '[.[].granted_at_unix_ns] | sort |
		[range($m; length) as $i | .[$i] - .[$i - $m]] | all(. >= $w)' "$BATS_TEST_TMPDIR/granted"
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
# their own span and of SECS, and at least 95% of RATE x SECS + BURST:
# contention must not starve the limiter.  That last needs takers that
# ask faster than the rate: when none was ever refused (a sanitizer
# build, a machine too busy to run them), it cannot be judged and the
# test says so and skips it.
rate_held() {
	local rate=$1 burst=$2 secs=$3 n first last refused bound
	n=$(wc -l <"$BATS_TEST_TMPDIR/granted")
	first=$(jq -s 'map(.granted_at_unix_ns) | min // 0' "$BATS_TEST_TMPDIR/granted")
	last=$(jq -s 'map(.granted_at_unix_ns) | max // 0' "$BATS_TEST_TMPDIR/granted")
	refused=$(cat "$BATS_TEST_TMPDIR"/out.* | grep -c '"granted":false' || true)
	bound=$(( rate * secs + burst ))
	echo "granted $n in ${secs}s (bound $bound); span $(( (last - first) / 1000000 )) ms; refused $refused"
	# the GCRA bound over the grants' own span
	[ "$n" -le $(( burst + 1 + (last - first) * rate / 1000000000 )) ]
	[ "$n" -le "$bound" ]
	[ "$refused" -gt 0 ] || skip "the takers never outran the rate ($n calls in ${secs}s): the lower bound cannot be judged"
	[ "$n" -ge $(( bound * 95 / 100 )) ]
}
