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
