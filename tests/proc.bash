# Process trees, for the suites that check that no process of a command's
# tree outlives its lease or claim (lease.bats, agent.bats).  Every wait
# is bounded; what a test tracks is SIGKILLed in its teardown, so a
# failing test leaves nothing running.

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# alive PID: it exists and is not a zombie
alive() { [ -e "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

# wait_until SECS COMMAND...: polls COMMAND every 20 ms; false after SECS
wait_until() {
	local end=$(( $(now_ms) + $1 * 1000 )); shift
	until "$@"; do
		[ "$(now_ms)" -lt "$end" ] || return 1
		sleep 0.02
	done
}

gone() { local p; for p in "$@"; do ! alive "$p" || return 1; done; }

# tree_pids PID: PID and every descendant, one per line
tree_pids() {
	ps -e -o pid=,ppid= | awk -v root="$1" '
		{ parent[$1] = $2 }
		END {
			seen[root] = 1; print root
			do {
				more = 0
				for (p in parent)
					if (!(p in seen) && (parent[p] in seen)) { seen[p] = 1; print p; more = 1 }
			} while (more)
		}'
}

# track PID...: SIGKILLed by untrack_all (the suites' teardown)
track() { printf '%s\n' "$@" >>"$BATS_TEST_TMPDIR/tracked"; }
untrack_all() {
	[ -f "$BATS_TEST_TMPDIR/tracked" ] || return 0
	kill -KILL $(cat "$BATS_TEST_TMPDIR/tracked") 2>/dev/null || true
}

# reap_job PID SECS: waits at most SECS for background job PID; its exit
# status in $st (255 when it did not exit in time)
reap_job() {
	st=255
	wait_until "$2" gone "$1" || return 1
	st=0
	wait "$1" || st=$?
}

# start_bg FILE COMMAND...: starts COMMAND in the background ($pid) and
# waits for the pid that a process of its tree writes to FILE ($gc); both
# are tracked
start_bg() {
	local file=$1
	shift
	"$@" &
	pid=$!
	track "$pid"
	wait_until 5 test -s "$file"
	gc=$(cat "$file")
	track "$gc"
}

# while_alive PID SECS COMMAND...: while PID lives (SECS at most), COMMAND
# holds each time it is asked (every 0.2 s); false when it did not, when
# PID outlived SECS, or when it was asked fewer than twice.  $ms: how long
# PID lived.
while_alive() {
	local p=$1 secs=$2 t0 ok seen=0
	shift 2
	t0=$(now_ms)
	while alive "$p" && [ $(( $(now_ms) - t0 )) -lt $(( secs * 1000 )) ]; do
		ok=0
		"$@" || ok=$?
		# alive after COMMAND returned: alive all through it
		if alive "$p"; then
			[ "$ok" -eq 0 ] || { echo "'$*' is false while $p lives"; return 1; }
			seen=$((seen + 1))
		fi
		sleep 0.2
	done
	ms=$(( $(now_ms) - t0 ))
	gone "$p" && [ "$seen" -ge 1 ]   # one look at least (a loaded machine may allow no more)
}

# lines FILE N: FILE has N lines
lines() { [ "$(cat "$1" 2>/dev/null | wc -l)" -eq "$2" ]; }
# lines_at_least FILE N: FILE has N lines or more (a file that keeps
# growing, which a look on a loaded machine may find past N)
lines_at_least() { [ "$(cat "$1" 2>/dev/null | wc -l)" -ge "$2" ]; }

# refused_then_taken FREE CMD...: CMD asks for what frees at FREE (ns):
# asked before then, it is refused (75) (a machine too busy to ask in
# time does not reach that: said, not failed); then asked again (CMD
# --quiet) until granted, 10 s at most.  The caller proves the grant was
# not early, by its own time or the clock after it.
refused_then_taken() {
	local free=$1 t
	shift
	run "$@"
	t=$(date +%s%N)
	if [ "$t" -lt "$free" ]; then
		[ "$status" -eq 75 ]
	else
		echo "asked $(( (t - free) / 1000000 )) ms after it frees: no early ask"
		[ "$status" -eq 0 ] || [ "$status" -eq 75 ]
	fi
	[ "$status" -eq 0 ] || wait_until 10 "$@" --quiet || { echo "never taken"; return 1; }
}
