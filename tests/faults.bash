# Stall and fault walks: run a command under strace, stopped (SIGSTOP)
# right after its Nth call of one system call, or with that call failing,
# for every N the command reaches.  Sourced by tests/chaos/stall.bats and
# tests/chaos/faults.bats after helper.bash.
#
# SW_FAULTS_FULL=1 walks every N; otherwise a sample (the first, second,
# middle and last) keeps `make check` short.  `make check-faults` sets it.

# The calls that change the workspace or read it in a way a stall makes
# stale.  strace counts each call separately, so each is walked on its own.
# The static binaries make a new workspace with mkdir and open beneath it
# with openat2 (lib/fs.c sw_open_beneath), besides the *at calls.
STALL_CALLS="openat openat2 read write fdatasync fsync renameat renameat2 linkat unlinkat mkdir mkdirat symlinkat getdents64"
FAULT_CALLS="openat openat2 write fsync fdatasync renameat renameat2 linkat unlinkat mkdir mkdirat utimensat getdents64"

# count_calls FILE CALL: how many CALL lines an strace log has
count_calls() {
	grep -cE "^([0-9]+ +)?$2\(" "$1" || true
}

# trace_counts LOG CMD...: runs CMD under strace once, recording every call
trace_counts() {
	local log=$1
	shift
	strace -f -qq -o "$log" "$@" >/dev/null 2>&1 || true
}

# walk_points N: the Ns to try, sampled unless SW_FAULTS_FULL=1
walk_points() {
	local n=$1
	[ "$n" -gt 0 ] || return 0
	if [ -n "${SW_FAULTS_FULL:-}" ]; then
		seq 1 "$n"
	else
		printf '%s\n' 1 2 $(( (n + 1) / 2 )) "$n" | awk -v n="$n" '$1 <= n && !seen[$1]++'
	fi
}

# walk_calls LOG CALL...: the points of a walk, one CALL:N word each: every
# CALL as often as the strace log LOG (trace_counts) saw it, sampled by
# walk_points
walk_calls() {
	local log=$1 call k
	shift
	for call in "$@"; do
		for k in $(walk_points "$(count_calls "$log" "$call")"); do
			echo "$call:$k"
		done
	done
}

# inject POINT ERRNO CMD...: runs CMD with the call of walk point POINT
# (CALL:N, from walk_calls) failing with ERRNO; its output in
# $BATS_TEST_TMPDIR/out and err, its exit status in rc.  Fails, saying
# so, when an EINTR was reported instead of retried.
inject() {
	local point=$1 e=$2
	shift 2
	rc=0
	strace -f -qq -o /dev/null -e inject="${point%:*}":error="$e":when="${point#*:}" "$@" \
		>"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" || rc=$?
	[ "$e" != EINTR ] || [ "$rc" = 0 ] ||
		{ echo "with $point failing (EINTR): $* exited $rc, EINTR was reported, not retried: $(cat "$BATS_TEST_TMPDIR/err")"; return 1; }
}

# stall_start CALL N OUT CMD...: runs CMD in the background under strace,
# stopped right after its Nth CALL; returns once it is stopped (its pid
# in STALLED) or has exited (STALLED empty).  Its input is the file STDIN
# (a background job's own is /dev/null).  Its output goes to OUT.out,
# OUT.err, its exit status to OUT.rc.  strace's own log says when the
# stop has taken effect ("stopped by SIGSTOP"): the process state alone
# cannot tell it from strace's passing stops at each traced call.
stall_start() {
	local call=$1 n=$2 out=$3
	shift 3
	: >"$out.trace"
	( rc=0   # (set -e is on in bats: the status must not end the subshell)
	  strace -f -qq -o "$out.trace" -e trace="$call" -e signal=STOP \
		-e inject="$call":signal=STOP:when="$n" "$@" <"${STDIN:-/dev/null}" >"$out.out" 2>"$out.err" || rc=$?
	  echo "$rc" >"$out.rc" ) &
	STALL_WAIT=$!
	STALL_OUT=$out
	STALLED=
	local line
	for _ in $(seq 1000); do
		line=$(grep -m1 -- '--- stopped by SIGSTOP ---' "$out.trace" 2>/dev/null) || true
		if [ -n "$line" ]; then
			STALLED=${line%% *}
			return 0
		fi
		[ -e "$out.rc" ] && return 0
		sleep 0.01
	done
	echo "stall_start: $* neither stopped nor ended" >&2
	return 1
}

# stall_resume: lets the stalled command go on and waits for it
stall_resume() {
	if [ -n "$STALLED" ]; then kill -CONT "$STALLED" 2>/dev/null || true; fi
	# wait can return early when a signal arrives (bats traps some): the
	# status file says when the command has really ended
	for _ in $(seq 3000); do
		[ -e "$STALL_OUT.rc" ] && break
		wait "$STALL_WAIT" 2>/dev/null || sleep 0.01
	done
	[ -e "$STALL_OUT.rc" ]
}

# places ID: every entry of the default queue that holds item ID, one per line
places() {
	local q=$SW_DIR/queues/${2:-default}
	( cd "$q" && find pending timed blocked claimed done dead cancelled stage -type f \
		\( -name "$1" -o -name "*.$1" -o -name "$1.*" -o -name "*.a.$1" \) 2>/dev/null )
}

# snapshot NAME FN: runs FN once on an empty workspace and keeps the result;
# later `restore NAME` puts a copy in place (cheaper than redoing FN for
# every walk point).  FN's TOK is kept with it.
snapshot() {
	rm -rf "$SW_DIR"
	"$2"
	rm -rf "$BATS_TEST_TMPDIR/snap.$1"
	cp -a "$SW_DIR" "$BATS_TEST_TMPDIR/snap.$1"
	echo "${TOK:-}" >"$BATS_TEST_TMPDIR/snap.$1.tok"
}
restore() {
	rm -rf "$SW_DIR"
	cp -a "$BATS_TEST_TMPDIR/snap.$1" "$SW_DIR"
	TOK=$(cat "$BATS_TEST_TMPDIR/snap.$1.tok")
	# lazy maintenance due in every run, not only in those a second after
	# the snapshot: a walk's calls are the same in the run it traced and
	# in the runs it injects into
	local m
	for m in "$SW_DIR"/queues/*/maint; do
		[ -L "$m" ] && ln -sfn 0 "$m"
	done
	return 0
}

# count_places ID...: "ID N" for each, from one look at the queue
count_places() {
	local q=$SW_DIR/queues/default all id
	all=$(cd "$q" && find pending timed blocked claimed done dead cancelled stage -type f 2>/dev/null | sed 's|.*/||')
	for id in "$@"; do
		printf '%s %s\n' "$id" "$(grep -cE "^($id|[0-9a-f]{16}\.$id|$id\.[0-9]+\.[0-9]+|.*\.a\.$id)\$" <<<"$all")"
	done
}
