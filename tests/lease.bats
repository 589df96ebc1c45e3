#!/usr/bin/env bats
# sw-lease on one host: every verb, the exit codes of DESIGN.md §4, tokens
# that only grow, expiry with the skew margin, run as a cron singleton, and
# the bad inputs of issue 3 (one line on stderr, the documented code).
load helper
load proc
load flow
load faults

teardown() { untrack_all; }

lease_is() { [ "$(sw-lease show "$1" | jq -r .state)" = "$2" ]; }

# Acquires: sets TOK (the fencing token) and EXP (expires_at_unix_ns).
acq() {
	local j
	j=$(sw-lease acquire "$@") || return
	TOK=$(jq -r .token <<<"$j")
	EXP=$(jq -r .expires_at_unix_ns <<<"$j")
}


# ---- help and usage ------------------------------------------------------

@test "--help prints usage naming every verb to stdout, exit 0" {
	run --separate-stderr sw-lease --help
	[ "$status" -eq 0 ]
	for v in acquire renew release check show list run; do
		[[ $output == *"$v"* ]] || { echo "missing $v"; return 1; }
	done
	run --separate-stderr sw-lease run --help
	[ "$status" -eq 0 ]
	[[ $output == usage:* ]]
}

@test "-V prints the version" {
	run sw-lease -V
	[ "$status" -eq 0 ]
	[[ $output == "sw-lease "[0-9]* ]]
}

@test "no verb, unknown verb, unknown option, missing NAME, stray argument: 64" {
	refused 64 sw-lease
	refused 64 sw-lease frobnicate x
	refused 64 sw-lease acquire x --frob
	refused 64 sw-lease acquire
	refused 64 sw-lease acquire a b
	refused 64 sw-lease list extra
	refused 64 sw-lease show x --token 1
	refused 64 sw-lease acquire x --ttl
}

@test "bad durations are usage errors (64)" {
	refused 64 sw-lease acquire x --ttl soon
	refused 64 sw-lease acquire x --ttl -5s
	refused 64 sw-lease acquire x --ttl 0
	refused 64 sw-lease acquire x --wait=later
	refused 64 sw-lease run x -g never -- true
}

@test "0 means the same everywhere: --ttl 0 is refused (64, one line) by every verb; --wait 0 tries once, like flock -w 0" {
	for t in 0 0s 0ms; do
		refused 64 sw-lease acquire x --ttl "$t"
		refused 64 sw-lease run x --ttl "$t" -- true
		refused 64 sw-lease renew x --token 1 --ttl "$t"
		[ "$stderr" = "sw-lease: renew: bad --ttl '$t': want at least 1ms (see sw-lease --help)" ]
	done
	acq x
	t0=$(now_ms)
	run --separate-stderr timeout 10 sw-lease acquire x --wait 0
	[ "$status" -eq 75 ]
	[ $(( $(now_ms) - t0 )) -lt 2000 ]
	run --separate-stderr timeout 10 sw-lease run x --wait=0 -- true
	[ "$status" -eq 75 ]
	# --wait alone still waits, until the holder lets go
	( sleep 0.5; sw-lease release x --token "$TOK" --quiet ) &
	run --separate-stderr timeout 10 sw-lease acquire x --wait
	[ "$status" -eq 0 ]
	wait
}

@test "bad names are refused with 65 and create nothing" {
	refused 65 sw-lease acquire ../escape
	refused 65 sw-lease acquire a/b
	refused 65 sw-lease acquire .hidden
	refused 65 sw-lease acquire "$(printf 'a\001b')"
	refused 65 sw-lease acquire "$(printf 'x%.0s' {1..201})"
	refused 65 sw-lease acquire ok --owner "a/b"
	[ ! -e "$SW_DIR/escape" ]
	[ -z "$(ls -A "$SW_DIR/leases" 2>/dev/null)" ]
}

@test "renew, release and check without --token: 64; bad token: 65" {
	acq job
	refused 64 sw-lease renew job
	refused 64 sw-lease release job
	refused 64 sw-lease check job
	refused 65 sw-lease renew job --token abc
	refused 65 sw-lease check job --token 0
	refused 65 sw-lease release job --token -1
	refused 65 sw-lease check job --token 99999999999999999999999
}

# ---- acquire, renew, release, check ---------------------------------------

@test "acquire prints name, owner, token, acquired_at, expires_at" {
	run --separate-stderr sw-lease acquire job --ttl 10s --owner me
	[ "$status" -eq 0 ]
	[ "$(jq -r '[.name,.owner,.token,.state] | @tsv' <<<"$output")" = "$(printf 'job\tme\t1\theld')" ]
	# exact to the nanosecond: the *_unix_ns fields are decimal strings
	[ $(( $(jq -r '"\(.expires_at_unix_ns) - \(.acquired_at_unix_ns)"' <<<"$output") )) -eq 10000000000 ]
	jq -e '.acquired_at | test("^[0-9-]+T[0-9:.]+Z$")' <<<"$output"
}

@test "a held lease is busy for everyone else: 75 and one line naming the holder" {
	acq job --owner first
	refused 75 sw-lease acquire job --owner second
	[[ $stderr == *first* ]]
}

@test "--quiet prints nothing, busy included" {
	run --separate-stderr sw-lease acquire job --quiet
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run --separate-stderr sw-lease acquire job --quiet
	[ "$status" -eq 75 ]
	[ -z "$output" ]
	[ -z "$stderr" ]
}

@test "--quiet silences every answer (1: not held, no such lease; 75: busy, timed out), never an error" {
	acq job
	run --separate-stderr sw-lease acquire job --wait 100ms --quiet
	[ "$status" -eq 75 ]
	[ -z "$stderr" ]
	for v in renew release check; do
		run --separate-stderr sw-lease "$v" job --token 999 --quiet
		[ "$status" -eq 1 ] && [ -z "$stderr" ] || { echo "$v: $status $stderr"; return 1; }
	done
	run --separate-stderr sw-lease show ghost --quiet
	[ "$status" -eq 1 ]
	[ -z "$stderr" ]
	run --separate-stderr sw-lease run job --quiet -- true
	[ "$status" -eq 75 ]
	[ -z "$stderr" ]
	# without --quiet each says why, in one line
	refused 1 sw-lease renew job --token 999
	refused 1 sw-lease show ghost
	# an error is said all the same: a lease that is a file, not a directory
	mkdir -p "$SW_DIR/leases" && : >"$SW_DIR/leases/flat"
	run --separate-stderr sw-lease renew flat --token 1 --quiet
	[ "$status" -gt 1 ]
	[ "$status" -ne 75 ]
	[[ $stderr == "sw-lease: renew: "* ]]
}

@test "check: 0 for the holder, 1 for an older, unknown or released token" {
	acq job
	run --separate-stderr sw-lease check job --token "$TOK"
	[ "$status" -eq 0 ]
	jq -e '.valid == true' <<<"$output"
	run --separate-stderr sw-lease check job --token $((TOK + 1))
	[ "$status" -eq 1 ]
	jq -e '.valid == false' <<<"$output"
	sw-lease release job --token "$TOK" >/dev/null
	run sw-lease check job --token "$TOK"
	[ "$status" -eq 1 ]
	acq job
	run sw-lease check job --token $((TOK - 1))
	[ "$status" -eq 1 ]
	run sw-lease check never --token 1
	[ "$status" -eq 1 ]
}

@test "renew extends expires_at and keeps the token" {
	acq job --ttl 2s
	local old=$EXP
	sleep 0.05
	run --separate-stderr sw-lease renew job --token "$TOK" --ttl 5s
	[ "$status" -eq 0 ]
	[ "$(jq -r .token <<<"$output")" = "$TOK" ]
	[ "$(jq -r .expires_at_unix_ns <<<"$output")" -gt "$old" ]
	jq -e '.ttl_ms == 5000' <<<"$output"
}

@test "renew without --ttl keeps the lease's own ttl" {
	acq job --ttl 7s
	run sw-lease renew job --token "$TOK"
	[ "$status" -eq 0 ]
	jq -e '.ttl_ms == 7000' <<<"$output"
}

@test "renew, release with a stale token: 1, and the holder is untouched" {
	acq job
	sw-lease release job --token "$TOK" >/dev/null
	local old=$TOK
	acq job
	refused 1 sw-lease renew job --token "$old"
	refused 1 sw-lease release job --token "$old"
	run sw-lease check job --token "$TOK"
	[ "$status" -eq 0 ]
}

@test "renew after expiry by its own clock is refused (1) even if nobody took it" {
	acq job --ttl 100ms
	sleep 0.2
	refused 1 sw-lease renew job --token "$TOK"
	[[ $stderr == *expired* ]]
	run sw-lease check job --token "$TOK"
	[ "$status" -eq 1 ]
}

@test "release frees the lease at once; the next acquirer gets a greater token" {
	acq job --ttl 1h
	local first=$TOK
	run sw-lease release job --token "$TOK"
	[ "$status" -eq 0 ]
	jq -e '.state == "released"' <<<"$output"
	acq job
	[ "$TOK" -gt "$first" ]
}

@test "an expired lease is takeable only after expiry plus SW_CLOCK_SKEW" {
	# seconds, not tenths: a busy machine (or ASan) takes that long for
	# the show and the refused acquire inside the margin
	export SW_CLOCK_SKEW=2s
	acq job --ttl 1s
	local free=$((EXP + 2000000000)) t rc=0
	sleep 1.2         # expired, but inside the margin (until 3s)
	run sw-lease show job
	jq -e '.state == "expired"' <<<"$output"
	# refused whenever it is asked before expiry + margin (a machine too
	# busy to ask in time does not reach that: said, not failed)
	refused 75 sw-lease acquire job || rc=$?
	t=$(date +%s%N)
	if [ "$t" -lt "$free" ]; then
		[ "$rc" -eq 0 ]
	else
		echo "asked $(( (t - free) / 1000000 )) ms after expiry + margin: no early ask"
		[ "$status" -eq 0 ] || [ "$status" -eq 75 ]
	fi
	# past expiry + margin it is takeable at once, and was not taken before
	if [ "$status" -ne 0 ]; then
		while [ "$(date +%s%N)" -lt "$free" ]; do sleep 0.05; done
		run sw-lease acquire job
		[ "$status" -eq 0 ]
	fi
	run sw-lease show job
	jq -e '.token == 2' <<<"$output"
	[ "$(jq -r .acquired_at_unix_ns <<<"$output")" -ge "$free" ]
}

@test "a holder whose clock runs 2s behind does not overlap the next holder" {
	# the slow holder believes it holds the lease until expires_at by its
	# own clock, i.e. 2s later in real time; with the default 2s margin
	# the next holder takes it only after that
	SW_CLOCK_OFFSET=-2s acq job --ttl 1s   # a second for the refusal below, on a busy machine
	local slow_end=$((EXP + 2000000000))    # its expiry in real time
	local t rc=0
	# refused whenever it is asked before then (a machine too busy to ask
	# in time does not reach that: said, not failed)
	refused 75 sw-lease acquire job || rc=$?
	t=$(date +%s%N)
	if [ "$t" -lt "$slow_end" ]; then
		[ "$rc" -eq 0 ]
	else
		echo "asked $(( (t - slow_end) / 1000000 )) ms after the slow holder's end: no early ask"
		[ "$status" -eq 0 ] || [ "$status" -eq 75 ]
	fi
	[ "$status" -eq 0 ] || wait_until 10 sw-lease acquire job --quiet || { echo "never taken"; return 1; }
	# the grant's own time: never before the slow holder's end
	local taken
	taken=$(sw-lease show job | jq -r .acquired_at_unix_ns)
	[ "$taken" -ge "$slow_end" ]
	SW_CLOCK_OFFSET=-2s run sw-lease check job --token "$TOK"
	[ "$status" -eq 1 ]
}

@test "SW_CLOCK_SKEW that is not a duration: 64" {
	SW_CLOCK_SKEW=soon refused 64 sw-lease acquire job
}

@test "tokens only grow across release, expiry and many acquisitions" {
	export SW_CLOCK_SKEW=0
	local last=0 i
	for i in $(seq 1 30); do   # 90 versions, past the 64 kept: old ones are deleted
		acq job --ttl 1h
		[ "$TOK" -gt "$last" ] || { echo "token $TOK after $last"; return 1; }
		last=$TOK
		sw-lease renew job --token "$TOK" >/dev/null
		sw-lease release job --token "$TOK" >/dev/null
	done
	acq job --ttl 100ms
	[ "$TOK" -gt "$last" ]
	last=$TOK
	sleep 0.15
	acq job
	[ "$TOK" -gt "$last" ]
	[ "$(ls "$SW_DIR/leases/job" | grep -c '^v\.')" -le 66 ]
}

@test "concurrent acquirers: exactly one wins each round" {
	local r
	for r in 1 2 3; do
		for i in 1 2 3 4 5 6; do
			sw-lease acquire race$r --ttl 1h >"$BATS_TEST_TMPDIR/r$r.$i" 2>/dev/null &
		done
		wait
		[ "$(cat "$BATS_TEST_TMPDIR"/r$r.* | grep -c '"token"')" -eq 1 ]
	done
}

@test "--wait gets the lease when it is released" {
	acq job --ttl 1h
	( sleep 0.3; sw-lease release job --token "$TOK" >/dev/null ) &
	run --separate-stderr sw-lease acquire job --wait 5s
	[ "$status" -eq 0 ]
	jq -e ".token == $((TOK + 1))" <<<"$output"
}

@test "--wait DURATION times out with 75" {
	acq job --ttl 1h
	local t0=$(date +%s%N)
	refused 75 sw-lease acquire job --wait 300ms
	[[ $stderr == *"timed out"* ]]
	[ $(( $(date +%s%N) - t0 )) -ge 300000000 ]
}

@test "show: state of a lease; unknown lease: 1" {
	acq job --owner me
	run --separate-stderr sw-lease show job
	[ "$status" -eq 0 ]
	jq -e '.state == "held" and .owner == "me"' <<<"$output"
	refused 1 sw-lease show nothing
}

@test "list: one line per lease, sorted; empty workspace prints nothing" {
	run --separate-stderr sw-lease list
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	acq b
	acq a
	sw-lease release a --token "$TOK" >/dev/null
	run --separate-stderr sw-lease list
	[ "$status" -eq 0 ]
	[ "$(jq -r '"\(.name) \(.state)"' <<<"$output" | tr '\n' ,)" = "a released,b held," ]
}

@test "leftover temporary files are ignored" {
	acq job
	echo junk >"$SW_DIR/leases/job/.tmp.123.abc"
	run sw-lease check job --token "$TOK"
	[ "$status" -eq 0 ]
}

@test "a damaged newest version (empty after a power loss) counts as a grant of the next token, held one TTL at most" {
	acq job --ttl 2s
	sw-lease release job --token "$TOK" >/dev/null
	# a grant whose data was lost (SW_SYNC=off flushes nothing): its holder
	# may have used token 2, so the next one gets 3
	: >"$SW_DIR/leases/job/v.00000000000000000003"
	run --separate-stderr sw-lease show job
	[ "$status" -eq 0 ]
	[ "$(jq -r '[.state, .token, .owner] | @tsv' <<<"$output")" = "$(printf 'held\t2\t?')" ]
	refused 75 sw-lease acquire job
	SW_CLOCK_OFFSET=5s acq job
	[ "$TOK" = 3 ]
	run --separate-stderr sw-lease show job
	[ "$(jq -r '[.state, .token] | @tsv' <<<"$output")" = "$(printf 'held\t3')" ]
	[ -s "$SW_DIR/leases/job/v.00000000000000000004" ]
}

@test "a version file that is not a lease version at all, with none before it: a grant of token 1 to nobody known, for 30 s" {
	mkdir -p "$SW_DIR/leases/job"
	echo 'not json' >"$SW_DIR/leases/job/v.00000000000000000001"
	run --separate-stderr sw-lease show job
	[ "$status" -eq 0 ]
	[ "$(jq -r '[.state, .owner, .token] | @tsv' <<<"$output")" = "$(printf 'held\t?\t1')" ]
	refused 75 sw-lease acquire job
	SW_CLOCK_OFFSET=33s acq job
	[ "$TOK" = 2 ]
}

# ---- run ---------------------------------------------------------------------

@test "run passes the command's exit status and SW_LEASE_NAME, SW_LEASE_TOKEN, TRACEPARENT" {
	run --separate-stderr sw-lease run cron -- sh -c 'echo "$SW_LEASE_NAME $SW_LEASE_TOKEN $TRACEPARENT"; exit 3'
	[ "$status" -eq 3 ]
	[[ $output =~ ^cron\ 1\ 00-[0-9a-f]{32}-[0-9a-f]{16}-01$ ]]
	# and released afterwards
	run sw-lease show cron
	jq -e '.state == "released"' <<<"$output"
}

@test "run's TRACEPARENT is a child of the caller's trace" {
	export TRACEPARENT=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01
	run --separate-stderr sw-lease run cron --spans="$BATS_TEST_TMPDIR/spans" -- sh -c 'echo $TRACEPARENT'
	[ "$status" -eq 0 ]
	[[ $output == 00-0af7651916cd43dd8448eb211c80319c-* ]]
	local sid=${output:36:16}
	jq -e --arg s "$sid" '.resourceSpans[0].scopeSpans[0].spans[0] | .spanId == $s and .parentSpanId == "b7ad6b7169203331" and .name == "sw-lease run"' "$BATS_TEST_TMPDIR/spans"
}

@test "run: a command killed by a signal gives 128+signal" {
	run sw-lease run cron -- sh -c 'kill -9 $$'
	[ "$status" -eq 137 ]
}

@test "run: command not found 127, and the lease is released" {
	run -127 --separate-stderr sw-lease run cron -- /nonexistent/cmd
	[ "$status" -eq 127 ]
	run sw-lease show cron
	jq -e '.state == "released"' <<<"$output"
}

@test "run while the lease is busy: 75 (or -E CODE), the command does not run" {
	acq cron --ttl 1h
	run --separate-stderr sw-lease run cron -- touch "$BATS_TEST_TMPDIR/ran"
	[ "$status" -eq 75 ]
	run --separate-stderr sw-lease run -E 0 cron -- touch "$BATS_TEST_TMPDIR/ran"
	[ "$status" -eq 0 ]
	run --separate-stderr sw-lease run --conflict-exit-code 3 cron touch "$BATS_TEST_TMPDIR/ran"
	[ "$status" -eq 3 ]
	[ ! -e "$BATS_TEST_TMPDIR/ran" ]
	refused 64 sw-lease run -E 256 cron true
}

@test "run without a command: 64" {
	refused 64 sw-lease run cron
	refused 64 sw-lease run cron --
}

@test "run leaves the command's own options alone" {
	run --separate-stderr sw-lease run cron ls -d /
	[ "$status" -eq 0 ]
	[ "$output" = / ]
	run --separate-stderr sw-lease run cron --ttl 5s -- ls -d --ttl 2>/dev/null
	[ "$status" -ne 0 ]   # ls got --ttl, not us
}

@test "run passes no file descriptor of its own to the command" {
	local want got
	want=$(sh -c 'ls /proc/$$/fd' | sort | tr '\n' ' ')
	got=$(sw-lease run cron -- sh -c 'ls /proc/$$/fd' | sort | tr '\n' ' ')
	[ "$got" = "$want" ] || { echo "direct: $want; under run: $got"; return 1; }
}

@test "a first acquisition that stalls while the lease lives on gets no old token when it resumes" {
	command -v strace >/dev/null || skip "no strace"
	# the stalled writer saw no versions; meanwhile 40 holders come and go
	# and cleanup removes v.1, which it then creates.  It is stopped
	# (SIGSTOP) right after its first write, that of version 1's temporary
	# file, before the link: stopped until the holders are done, however
	# long a busy machine under ASan takes for them
	local stale=$BATS_TEST_TMPDIR/stale
	stall_start write 1 "$stale" sw-lease acquire x --ttl 1h
	[ -n "$STALLED" ] || { echo "never stalled: $(cat "$stale.err")"; return 1; }
	track "$STALLED"
	for i in $(seq 40); do
		tok=$(sw-lease acquire x --ttl 1h | jq .token)
		sw-lease release x --token "$tok" --quiet
	done
	[ "$tok" = 40 ]
	stall_resume
	rc=$(cat "$stale.rc")
	cat "$stale.out" "$stale.err"
	if [ "$rc" = 0 ]; then
		[ "$(jq .token "$stale.out")" -gt 40 ]
	else
		[ "$rc" = 75 ]
	fi
	# released by token 40, or taken since by the stalled one with a newer one
	run --separate-stderr sw-lease show x
	[ "$(jq .token <<<"$output")" -ge 40 ]
}

# ---- stalls: no two holders told they hold at once ----------------------------
# One acquire or renew is stalled 3 s (strace delays the N-th call of one
# system call its write path makes) while a contender takes the lease
# whenever it can and holds it, renewing.  Every report of holding (token,
# acquired_at, expires_at, the time it was told) makes an interval per
# token: from its acquisition to its last expiry, or to when it was told
# if that came later.  Intervals of different tokens must not overlap, and
# tokens must grow with time.

STALL_CALLS=linkat,openat,renameat,unlinkat,fdatasync,fsync

# contend NAME OUT STOP: takes NAME whenever it can and holds it, renewing
# every 300 ms, until the file STOP exists (30 s at most); one line per
# report in OUT
contend() {
	local j tok end=$(( $(now_ms) + 30000 ))
	while [ ! -e "$3" ] && [ "$(now_ms)" -lt "$end" ]; do
		if j=$(sw-lease acquire "$1" --ttl 1s 2>/dev/null); then
			told_ms
			tok=$(jq -r .token <<<"$j")
			report "$j" "$TOLD" >>"$2"
			while [ ! -e "$3" ] && sleep 0.3 && j=$(sw-lease renew "$1" --token "$tok" 2>/dev/null); do
				told_ms
				report "$j" "$TOLD" >>"$2"
			done
		fi
		sleep 0.05
	done
}

# told_ms: TOLD is now, in ms, without a fork: taken right after a
# command answers, it is when the answer was told (a date or jq exec
# first would add what a loaded machine takes to start them, and make a
# holder told in time look told late)
told_ms() { TOLD=$(( ${EPOCHREALTIME/./} / 1000 )); }

# report JSON TOLD_MS: "token acquired_ms expires_ms told_ms"
report() {
	jq -r '"\(.token) \(.acquired_at_unix_ns | tonumber / 1e6 | floor) \(.expires_at_unix_ns | tonumber / 1e6 | floor)"' <<<"$1" |
		tr '\n' ' '
	echo "$2"
}

# holders_ok FILE...: per token the interval its reports make; false (and
# says why) when two overlap or tokens do not grow
holders_ok() {
	cat "$@" | awk '
		{ t = $1; e = $3 > $4 ? $3 : $4
		  if (!(t in s) || $2 < s[t]) s[t] = $2
		  if (!(t in f) || e > f[t]) f[t] = e }
		END { for (t in s) print s[t], f[t], t }' | sort -n | awk '
		NR > 1 && ($1 < pe || $3 <= pt) { printf "token %s [%s, %s) overlaps token %s ending %s\n", $3, $1, $2, pt, pe; bad = 1 }
		{ pe = $2; pt = $3 }
		END { exit bad }'
}

# stall_setup VERB NAME OUT: a lease with a history (taken and given
# back); for renew, taken again, its holder's report in OUT.  Prints the
# arguments of the VERB to stall.
stall_setup() {
	sw-lease acquire "$2" --ttl 1s --quiet && sw-lease release "$2" --token 1 --quiet
	if [ "$1" = acquire ]; then
		echo "acquire $2 --ttl 1s"
		return
	fi
	# 5 s: the renewal comes before the lease expires even on a busy host
	# (and moves the expiry on, never back); its stall is longer
	local j
	j=$(sw-lease acquire "$2" --ttl 5s)
	told_ms
	report "$j" "$TOLD" >"$3"
	echo "renew $2 --token $(jq -r .token <<<"$j") --ttl 5s"
}

# stall_cases VERB: "VERB CALL N" for every (CALL, N) after the link in a
# probe of VERB, and the first, middle and last of each call before it;
# SW_FAULTS_FULL=1 walks them all
stall_cases() {
	local args
	args=$(stall_setup "$1" "probe-$1" /dev/null)
	SW_SYNC=full strace -f -qq -o "$BATS_TEST_TMPDIR/order-$1" -e trace=$STALL_CALLS sw-lease $args --quiet
	awk -v verb="$1" -v full="${SW_FAULTS_FULL:-0}" '
		{ c = $2; sub(/\(.*/, "", c); n = ++count[c]
		  if (c == "linkat") linked = 1
		  if (full == 1 || linked || n == 1) want[c " " n] = 1 }
		END { for (c in count) want[c " " int((count[c] + 1) / 2)] = want[c " " count[c]] = 1
		      for (k in want) print verb, k }' "$BATS_TEST_TMPDIR/order-$1" | sort
}

# stall_case VERB CALL N: one stalled VERB against a contender; once
# more when the stall did not happen (on a host so busy that the lease
# expired before the renewal began)
stall_case() {
	stall_once "$@" a || { [ "$stalled" = no ] && stall_once "$@" b; }
}

# stall_reached TRACE CALL N PID: strace's log TRACE shows the Nth CALL
# begun (a delayed call's line is written as its delay begins), or PID
# has ended
stall_reached() {
	[ "$(count_calls "$1" "$2")" -ge "$3" ] || ! alive "$4"
}

# stall_once VERB CALL N TRY: the contender starts once the stalled one
# has surely reached its stall (so that its calls are counted as in the
# probe); $stalled says whether it did
stall_once() {
	local d=$BATS_TEST_TMPDIR/$1.$2.$3.$4 name=s-$1-$2-$3-$4
	stalled=no
	mkdir "$d"
	local args t0 rc=0 told stall_ms=3000
	# a stall longer than the lease's TTL and margin (renew's is 5 s)
	[ "$1" = renew ] && stall_ms=7000
	args=$(stall_setup "$1" "$name" "$d/stalled")
	t0=$(now_ms)
	: >"$d/trace"
	# its exit status and the time it answered, taken as it ends
	( SW_SYNC=full timeout 30 strace -f -qq -o "$d/trace" -e trace="$2" \
		-e inject="$2:delay_enter=${stall_ms}000:when=$3" sw-lease $args >"$d/out" 2>"$d/err"
	  rc=$?; told_ms; echo "$rc $TOLD" >"$d/exit" ) &
	local s=$!
	# strace writes a delayed call's line as the delay begins: the Nth line
	# of the call says the stall is reached (a loaded machine may take a
	# while; one that ended first made no stall, which is said below)
	wait_until 20 stall_reached "$d/trace" "$2" "$3" "$s" || true
	contend "$name" "$d/contender" "$d/stop" &
	local c=$!
	wait "$s" || true
	read -r rc told <"$d/exit"
	local ms=$(( told - t0 ))
	[ "$rc" -ne 0 ] || report "$(cat "$d/out")" "$told" >>"$d/stalled"
	sleep 0.5
	touch "$d/stop"
	wait "$c" || true
	local what="$1 stalled at $2 #$3, exit $rc"
	[ "$ms" -ge "$stall_ms" ] || { echo "$what: no stall ($ms ms): $(cat "$d/err")"; return 1; }
	stalled=yes
	case "$1.$rc" in acquire.0|acquire.75|renew.0|renew.1) ;; *) echo "$what: $(cat "$d/err")"; return 1;; esac
	holders_ok "$d"/contender "$d"/stalled 2>/dev/null || { echo "($what)"; return 1; }
}

@test "a writer stalled at any step of acquire or renew never leaves two holders told they hold at once" {
	command -v strace >/dev/null || skip "no strace"
	export SW_CLOCK_SKEW=200ms
	local cases
	cases=$(stall_cases acquire; stall_cases renew)
	echo "cases: $(tr '\n' , <<<"$cases")"
	local pids=() i=0 fail=0 p
	while read -r verb call n; do
		stall_case "$verb" "$call" "$n" &
		pids+=($!)
		# six at a time: the contenders poll, the stalled ones sleep
		if [ $(( ++i % 6 )) -eq 0 ]; then
			for p in "${pids[@]}"; do wait "$p" || fail=1; done
			pids=()
		fi
	done <<<"$cases"
	for p in "${pids[@]}"; do wait "$p" || fail=1; done
	[ "$fail" -eq 0 ]
}

@test "run: renewals that keep failing stop the command by the time the lease expires, not a grace later" {
	# links fail with EIO after the first of each process (strace counts
	# per process): the acquisition and the first renewal succeed, the
	# renewals after them fail
	cd "$BATS_TEST_TMPDIR"
	run strace -f -o /dev/null -e trace=linkat -e inject=linkat:error=EIO:when=2+ \
		sw-lease run x --ttl 3s -g 10s -- sh -c 'trap "" TERM; while :; do date +%s%N >>beats; sleep 0.1; done'
	[ "$status" -eq 75 ]
	exp=$(sw-lease show x | jq -r .expires_at_unix_ns)
	echo "the command's last beat came $(( (exp - $(tail -1 beats)) / 1000000 )) ms before the lease expired"
	# SIGKILL goes out 200ms before the expiry; a child forked while the
	# tree is walked is caught by the next walk, 50ms later, and strace -f
	# on a loaded machine slows both.  What must hold is that nothing of
	# the tree runs when another host may take the lease: past the expiry
	# plus the clock-skew margin (2s), far short of the 10s grace.
	[ "$(tail -1 beats)" -lt $((exp + 1000000000)) ]
}

@test "run renews in the background: a command longer than the TTL keeps the lease" {
	# three TTLs: several renewals, each with most of a second to spare on
	# a loaded machine
	run --separate-stderr sw-lease run cron --ttl 1s -- sh -c 'sleep 3; sw-lease check cron --token $SW_LEASE_TOKEN >/dev/null'
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
}

@test "run: a second run is busy while the first holds the lease" {
	cd "$BATS_TEST_TMPDIR"
	# the first's command says it runs, then waits for the go; a TTL the
	# renewals keep on a loaded machine
	sw-lease run cron --ttl 5s -- sh -c ': >held; until [ -e go ]; do sleep 0.05; done' &
	local pid=$!
	track "$pid"
	wait_until 20 test -e held
	run --separate-stderr sw-lease run cron -- true
	[ "$status" -eq 75 ]
	touch go
	reap_job "$pid" 20
	[ "$st" -eq 0 ]
}

@test "run: a lost lease stops the command with SIGTERM and exits 75" {
	# the command releases its own lease behind run's back: the next
	# renewal finds the lease gone
	run --separate-stderr sw-lease run cron --ttl 300ms -- sh -c '
		trap "echo terminated; exit 9" TERM
		sw-lease release cron --token $SW_LEASE_TOKEN >/dev/null
		sleep 5 >/dev/null 2>&1 & wait'
	[ "$status" -eq 75 ]
	[ "$output" = terminated ]
	[[ $stderr == *lost* ]]
}

@test "run: SIGKILL after the grace period when SIGTERM is ignored" {
	local t0=$(date +%s%N)
	run --separate-stderr sw-lease run cron --ttl 300ms -g 300ms -- sh -c '
		trap "" TERM
		sw-lease release cron --token $SW_LEASE_TOKEN >/dev/null
		exec sleep 10'
	[ "$status" -eq 75 ]
	[ $(( $(date +%s%N) - t0 )) -lt 5000000000 ]
}

@test "run forwards SIGTERM to the command and passes its status" {
	cd "$BATS_TEST_TMPDIR"
	sw-lease run cron -- sh -c 'trap "exit 7" TERM; : >trapped; sleep 10 & wait' &
	local pid=$!
	track "$pid"
	wait_until 20 test -e trapped   # its trap is set: a loaded machine may take a while
	kill -TERM "$pid"
	reap_job "$pid" 20
	[ "$st" -eq 7 ]
	run sw-lease show cron
	jq -e '.state == "released"' <<<"$output"
}

@test "the command does not outlive a SIGKILLed sw-lease run" {
	sw-lease run cron --ttl 5s -- sh -c 'echo $$ >"$0"; exec sleep 30' "$BATS_TEST_TMPDIR/pid" >/dev/null 2>&1 3>&- &
	local pid=$!
	for _ in $(seq 100); do [ -s "$BATS_TEST_TMPDIR/pid" ] && break; sleep 0.02; done
	local child
	child=$(cat "$BATS_TEST_TMPDIR/pid")
	kill -0 "$child"
	kill -KILL "$pid"
	wait "$pid" || true
	# gone, or a zombie waiting for an init that reaps slowly
	alive() { [ -e /proc/$child ] && ! grep -q '^State:.*Z' /proc/$child/status 2>/dev/null; }
	for _ in $(seq 250); do alive || break; sleep 0.02; done
	! alive
}

@test "a run whose guardian and worker are both SIGKILLed: its lease is taken after TTL + margin, not before" {
	# the documented limit: with both gone, nothing kills the command's
	# tree or releases the lease; the TTL still keeps the next holder out
	cd "$BATS_TEST_TMPDIR"
	export SW_CLOCK_SKEW=300ms
	sw-lease run cron --ttl 2s -- sh -c ': >started; exec sleep 30' >/dev/null 2>&1 3>&- &
	local pid=$!
	track "$pid"
	# killed once it holds the lease and its command runs (the guardian,
	# the worker and the command all there): a loaded machine may take
	# longer than any fixed sleep to start it
	wait_until 10 test -e started || { echo "never started"; return 1; }
	wait_until 10 lease_is cron held || { echo "never held"; return 1; }
	# stopped whole, then killed: no part of it sees another go and
	# releases the lease
	local tree
	tree=$(tree_pids "$pid")
	track $tree
	kill -STOP $tree
	kill -KILL $tree
	wait "$pid" || true
	# the last renewal may have moved the expiry on; the true one is in show
	local exp free
	exp=$(sw-lease show cron | jq -r .expires_at_unix_ns)
	free=$((exp + 300000000))
	# a grant is never early
	refused_then_taken "$free" sw-lease acquire cron
	run sw-lease show cron
	[ "$(jq -r .token <<<"$output")" -eq 2 ]
	[ "$(jq -r .acquired_at_unix_ns <<<"$output")" -ge "$free" ]
}

# ---- run: the command's whole process tree ------------------------------------
# The tree is the command's process group plus whatever leaves it (setsid,
# a double fork): run is a child subreaper and waits for all of it.

@test "run: on SIGTERM a grandchild that ignores it gets SIGKILL after -g, and the lease is held until it is gone" {
	cd "$BATS_TEST_TMPDIR"
	start_bg gc sw-lease run cron -g 1s -- sh -c 'sh -c "trap \"\" TERM; echo \$\$ >gc; exec sleep 30" & wait'
	kill -TERM "$pid"
	while_alive "$gc" 5 lease_is cron held
	echo "grandchild gone after $ms ms"
	# SIGKILL after the 1 s grace
	[ "$ms" -ge 900 ]
	[ "$ms" -lt 3000 ]
	reap_job "$pid" 5
	[ "$st" -eq 143 ]   # the command itself died of the SIGTERM
	[ "$(sw-lease show cron | jq -r .state)" = released ]
}

@test "run: a grandchild that called setsid gets the SIGTERM too, and the lease is released only after it is gone" {
	cd "$BATS_TEST_TMPDIR"
	# it takes three seconds to act on SIGTERM (time for a look at the
	# lease meanwhile on a loaded machine, under ASan), and says when it
	# has
	start_bg gc sw-lease run cron -g 10s -- sh -c '
		setsid sh -c "trap \"sleep 3; : >termed; exit\" TERM; echo \$\$ >gc; while :; do sleep 0.1; done" &
		wait'
	kill -TERM "$pid"
	# held while it lives; the bound is no check of when it went (termed
	# is), and a loaded machine may be slow to end it
	while_alive "$gc" 20 lease_is cron held
	[ -e termed ]      # it got SIGTERM, not the SIGKILL 10 s later
	reap_job "$pid" 5
	[ "$st" -eq 143 ]
	[ "$(sw-lease show cron | jq -r .state)" = released ]
}

@test "run: a command that exits leaving a setsid grandchild holds and renews the lease until it exits, and says so once" {
	cd "$BATS_TEST_TMPDIR"
	# past the 600 ms TTL the grandchild checks that the lease is still
	# its command's; its output goes elsewhere, so nothing but the lease
	# makes run wait for it
	run --separate-stderr timeout 20 sw-lease run cron --ttl 600ms -- sh -c '
		setsid sh -c "sleep 1.5; sw-lease check cron --token \$SW_LEASE_TOKEN >checked; sleep 0.5; touch done" \
			</dev/null >/dev/null 2>&1 &
		exit 5'
	[ "$status" -eq 5 ]
	[ -e done ]
	jq -e '.valid' checked
	[ "${#stderr_lines[@]}" -eq 1 ]
	[[ $stderr == *"left behind"* ]]
	[ "$(sw-lease show cron | jq -r .state)" = released ]
}

@test "SIGKILL of sw-lease run: the tree is gone at once and the lease given back, long before its TTL; a second run cannot start its command while any of it lives" {
	cd "$BATS_TEST_TMPDIR"
	# a TTL the test never reaches: only a release lets the second run in
	sw-lease run cron --ttl 60s -- sh -c '
		echo $$ >cmd
		setsid sh -c "trap \"\" TERM; echo \$\$ >gc; while :; do sleep 0.05; done" &
		wait' >/dev/null 2>&1 &
	pid=$!
	track "$pid"
	wait_until 5 test -s gc
	first="$(cat cmd) $(cat gc)"
	track $first
	kill -KILL "$pid"
	t0=$(now_ms)
	# the second run's command notes which processes of the first tree it
	# finds alive when it starts
	timeout 30 sw-lease run cron --ttl 1s --wait 20s -- sh -c '
		for p in '"$first"'; do
			[ -e /proc/$p ] && ! grep -q "^State:.*Z" /proc/$p/status 2>/dev/null && echo $p
		done >alive; :'
	[ -e alive ]
	[ ! -s alive ] || { echo "started while these lived: $(cat alive)"; return 1; }
	wait_until 1 gone $first
	echo "the second run started $(( $(now_ms) - t0 )) ms after the SIGKILL"
}

@test "SIGKILL of sw-lease run while its child's renewal hangs: the tree dies at once, not when the renewal returns or the lease nears its end, and the lease is given back after" {
	command -v strace >/dev/null || skip "no strace"
	cd "$BATS_TEST_TMPDIR"
	# a 9 s TTL: the child's own deadline for a renewal that has not
	# answered is seconds after the SIGKILL, which is to be acted on at once
	sw-lease run cron --ttl 9s -- sh -c '
		setsid sh -c "trap \"\" TERM; echo \$\$ >gc; while :; do sleep 0.05; done" &
		wait' >/dev/null 2>&1 &
	local guardian=$! worker renewer gc n s t0
	track "$guardian"
	wait_until 10 test -s gc
	gc=$(cat gc)
	track "$gc"
	worker=$(pgrep -P "$guardian" -x sw-lease)
	# the child's thread that renews (a child of one thread renews itself)
	renewer=$(ls "/proc/$worker/task" | grep -vx "$worker" | head -1)
	renewer=${renewer:-$worker}
	# its next renewal links the new version, then hangs 8 s
	n=$(ls "$SW_DIR/leases/cron" | grep -c '^v\.')
	strace -qq -o /dev/null -p "$renewer" -e trace=linkat \
		-e inject=linkat:delay_exit=8000000:when=1 &
	s=$!
	track "$s"
	wait_until 20 eval '[ "$(ls "$SW_DIR/leases/cron" | grep -c "^v\.")" -gt "$n" ]'
	kill -KILL "$guardian"
	t0=$(now_ms)
	wait_until 2 gone "$gc" || { echo "the tree outlived its guardian while the renewal hung"; return 1; }
	echo "tree gone $(( $(now_ms) - t0 )) ms after the SIGKILL"
	# renewed before it hung, the lease is still the child's to give back
	# once the renewal returns (not left to expire)
	wait_until 20 lease_is cron released
}

@test "run and its command stopped (SIGSTOP) past the lease's expiry: the command is SIGKILLed the moment run resumes, not a grace later" {
	export SW_CLOCK_SKEW=200ms
	beat_run sw-lease cron --ttl 1s -g 10s
	stall_tree "$pid"
	sleep 2      # past the TTL and the margin
	resume_tree sw-lease
}

@test "run whose worker alone is stopped (SIGSTOP) past the TTL: the guardian kills the command before the next holder's starts" {
	export SW_CLOCK_SKEW=200ms
	beat_run sw-lease cron --ttl 900ms -g 10s
	stall_worker "$pid"
	sw-lease run cron --wait 10s -- sh -c 'date +%s%N >started; sleep 0.3'
	resume_worker
}

# ---- spans -------------------------------------------------------------------

@test "--spans writes one OTLP span per operation with the lease attributes" {
	run --separate-stderr sw-lease acquire job --spans=stderr
	[ "$status" -eq 0 ]
	jq -e '.resourceSpans[0].scopeSpans[0].spans[0] | .name == "sw-lease acquire" and
		(.attributes | map(select(.key == "sw.lease.name"))[0].value.stringValue == "job")' <<<"$stderr"
	run --separate-stderr sw-lease acquire job --spans=stderr
	[ "$status" -eq 75 ]
	# busy is an answer, not an error
	grep resourceSpans <<<"$stderr" | jq -e '.resourceSpans[0].scopeSpans[0].spans[0].status.code == 1'
}

@test "run hands the command SW_DIR, the workspace as an absolute path, even from a relative -d" {
	mkdir -p "$BATS_TEST_TMPDIR/here/sub"
	cd "$BATS_TEST_TMPDIR/here"
	run --separate-stderr sw-lease run -d rel job -- sh -c 'cd sub && echo "$SW_DIR" && sw-lease list | jq -r .name'
	assert_success
	assert_line --index 0 "$BATS_TEST_TMPDIR/here/rel"
	assert_line --index 1 job        # the same workspace, from another directory
}

@test "permission errors name the directory" {
	[ "$(id -u)" = 0 ] || skip "needs root to act as another user"
	as_nobody() { run --separate-stderr setpriv --reuid nobody --regid nogroup --clear-groups "$@"; }
	SW_DIR=$(mktemp -d /tmp/sw-lease-test.XXXXXX)/ws   # nobody reaches it, writes nothing
	chmod 0755 "${SW_DIR%/ws}"
	acq held
	chmod 0755 "$SW_DIR" "$SW_DIR/leases"
	as_nobody sw-lease acquire new
	[ "$status" -eq 77 ]
	[ "$stderr" = "sw-lease: acquire: lease directory $SW_DIR/leases/new: Permission denied" ]
	as_nobody sw-lease renew held --token "$TOK"
	[ "$status" -eq 77 ]
	[[ "$stderr" == "sw-lease: renew: "*"$SW_DIR/leases/held"*": Permission denied" ]]
	chmod 0777 "$SW_DIR/leases"
	chmod 0755 "$SW_DIR/leases/held"
	as_nobody sw-lease show held
	[ "$status" -eq 77 ]
	[ "$stderr" = "sw-lease: show: reading $SW_DIR/leases/held: Permission denied" ]
	chmod 0644 "$SW_DIR/leases/held"/*
	as_nobody sw-lease release held --token "$TOK"
	[ "$status" -eq 77 ]
	[[ "$stderr" == "sw-lease: release: creating $SW_DIR/leases/held/"*": Permission denied" ]]
	rm -rf "${SW_DIR%/ws}"
}

@test "the default owner outlives acquire: \$SW_OWNER, else host:pid of the caller; run's is run itself" {
	cd "$BATS_TEST_TMPDIR"
	run bash -c 'sw-lease acquire a --quiet && echo $$'
	assert_success
	[ "$(sw-lease show a | jq -r .owner)" = "$(uname -n):$output" ]
	SW_OWNER=backup-job sw-lease acquire b --quiet
	[ "$(sw-lease show b | jq -r .owner)" = backup-job ]
	SW_OWNER=backup-job sw-lease acquire c --owner explicit --quiet
	[ "$(sw-lease show c | jq -r .owner)" = explicit ]
	SW_OWNER=bad/owner refused 65 sw-lease acquire d
	[[ "$stderr" == "sw-lease: acquire: bad SW_OWNER: "* ]]
	run --separate-stderr sw-lease run e -- sh -c 'echo "$(sw-lease show e | jq -r .owner) $(ps -o ppid= -p $PPID | tr -d " ")"'
	assert_success
	read -r owner guardian <<<"$output"
	[ "$owner" = "$(uname -n):$guardian" ]
}

# ---- run modes: --takeover, --until-success, --keep-running -------------------

@test "run --takeover: the holder's run stops its whole tree and gives the lease up; the taker's command starts only after" {
	cd "$BATS_TEST_TMPDIR"
	# the holder's command leaves a grandchild that ignores SIGTERM
	start_bg gc sw-lease run --quiet -g 1s svc -- sh -c '
		sh -c "trap \"\" TERM; echo \$\$ >gc; exec sleep 60" &
		trap "echo old-term >>log; exit 143" TERM
		echo old-start >>log; while :; do sleep 0.1; done'
	holder=$pid
	t0=$(now_ms)
	run --separate-stderr sw-lease run --takeover svc -- sh -c '
		kill -0 "$(cat gc)" 2>/dev/null && echo "the old tree still runs" >>log
		echo "new-start $SW_LEASE_TOKEN" >>log'
	assert_success
	echo "taken over in $(( $(now_ms) - t0 )) ms"
	[[ "$stderr" == *"asked "*" (token 1) to give 'svc' up"* ]]
	reap_job "$holder" 5
	[ "$st" -eq 75 ]
	gone "$gc"
	[ "$(cat log)" = "$(printf 'old-start\nold-term\nnew-start 2')" ]
	lease_is svc released
}

@test "run --takeover of a holder that cannot hear it (no run renews it): the lease is taken when it expires" {
	export SW_CLOCK_SKEW=100ms
	acq svc --ttl 1s
	run --separate-stderr sw-lease run --takeover svc -- sh -c 'echo "$SW_LEASE_TOKEN"'
	assert_success
	assert_output 2
	# taken once the old one expired, plus the margin; not before
	acquired=$(sw-lease show svc | jq -r .acquired_at_unix_ns)
	[ "$acquired" -ge $(( EXP + 100000000 )) ]
}

@test "run --takeover waits as --wait says; a leader loop's renew answers 1 while it is asked, 0 once the asker gave up" {
	acq svc --ttl 1m
	sw-lease run --takeover --wait 5s --quiet svc -- true &
	taker=$!
	track "$taker"
	# the request is in the newest version once the taker has asked (a
	# loaded machine may take a while); it stays there after the taker
	# gives up, where show stops naming the asker
	newest() { ls "$SW_DIR"/leases/svc/v.* | tail -1; }
	asked() { jq -e .takeover "$(newest)" >/dev/null; }
	wait_until 20 asked
	# the request's deadline is stored as every time is: exact, a string
	jq -e '(.takeover_until_unix_ns | type == "string") and (.takeover_until | type == "string")' "$(newest)"
	local ask_end t rc=0 err
	ask_end=$(jq -r .takeover_until_unix_ns "$(newest)")
	refused 1 sw-lease renew svc --token "$TOK" || rc=$?
	err=$stderr
	run jq -r .takeover_requested_by <<<"$(sw-lease show svc)"
	t=$(date +%s%N)
	# while asked (renew and show both before the request's end; a
	# machine too busy to get there in time does not reach it: said, not
	# failed), the holder is told, and show names the asker
	if [ "$t" -lt "$ask_end" ]; then
		[ "$rc" -eq 0 ]
		[[ "$err" == *"'svc' is asked for by "*" (takeover): finish, then release it" ]]
		[ -n "$output" ]
		[ "$output" != null ]
	else
		echo "renewed $(( (t - ask_end) / 1000000 )) ms after the request ended: no check while asked"
	fi
	reap_job "$taker" 30
	[ "$st" -eq 75 ]
	run --separate-stderr sw-lease renew svc --token "$TOK" --quiet
	assert_success
	# nobody asks any more: the holder goes on as before
	[ "$(sw-lease show svc | jq -r .takeover_requested_by)" = null ]
	# with nothing held, --takeover is a plain run
	sw-lease release svc --token "$TOK" --quiet
	run --separate-stderr sw-lease run --takeover svc -- echo ran
	assert_success
	assert_output ran
}

@test "run --until-success starts the command again, holding the lease with the same token, until it exits 0; the delay doubles" {
	cd "$BATS_TEST_TMPDIR"
	export SW_BACKOFF_BASE=50ms
	run --separate-stderr sw-lease run --until-success job -- sh -c '
		echo "$SW_LEASE_TOKEN" >>tokens
		sw-lease acquire job --quiet && echo "lease was free" >>tokens
		[ "$(wc -l <tokens)" -ge 4 ]'
	assert_success
	[ "$(sort -u tokens)" = 1 ]
	[ "$(wc -l <tokens)" = 4 ]
	assert_equal "$stderr" "$(printf 'sw-lease: run: sh exited with status 1; starting it again in %s\n' 100ms 200ms 400ms | head -c -1)"
	lease_is job released
	run --separate-stderr sw-lease run --until-success --quiet job -- true
	assert_success
	[ -z "$stderr" ]
}

@test "run --keep-running starts it again whenever it exits, 0 or not; SIGTERM between runs gives the lease back and exits 143" {
	cd "$BATS_TEST_TMPDIR"
	export SW_BACKOFF_BASE=100ms
	sw-lease run --keep-running --quiet daemon -- sh -c 'echo x >>runs; [ $(wc -l <runs) -ne 2 ]' 2>err &
	pid=$!
	track "$pid"
	wait_until 20 lines_at_least runs 4
	refused 75 sw-lease acquire daemon       # held all along
	kill -TERM "$pid"
	reap_job "$pid" 5
	[ "$st" -eq 143 ] || { echo "st=$st"; cat err; return 1; }
	lease_is daemon released
	# SIGTERM during a run: the command's tree stops, its status is run's
	sw-lease run --keep-running --quiet daemon -- sh -c 'trap "exit 7" TERM; : >trapped; while :; do sleep 0.1; done' &
	pid=$!
	track "$pid"
	wait_until 20 test -e trapped   # its trap is set: a loaded machine may take a while
	kill -TERM "$pid"
	reap_job "$pid" 5
	[ "$st" -eq 7 ]
	refused 64 sw-lease run --keep-running --until-success daemon -- true
}

# ---- the documentation's cron lines run under cron's environment -----------------

# Every crontab line of every page and of the README, but sw-metrics's
# (its export writes node_exporter's directory: metrics.bats runs those).
cron_lines() {
	local m
	for m in "$top"/man/*.[157]; do
		[[ $m == */sw-metrics.1 ]] || crontab_lines <"$m"
	done
	crontab_lines <"$top/README.md" | grep -v '/sw-metrics '
}

@test "every cron line of the examples runs as cron runs it: PATH=/usr/bin:/bin, no SW_DIR but its own" {
	local prefix=$BATS_TEST_TMPDIR/prefix home=$BATS_TEST_TMPDIR/home ws=$BATS_TEST_TMPDIR/cronws
	local line cmd n=0 name q
	mkdir -p "$prefix/bin" "$home"
	# installed where the examples say make install puts them (PREFIX)
	for p in sw-claim sw-lease sw-agent sw-limit sw-breaker; do install -m 755 "$(command -v "$p")" "$prefix/bin/"; done
	while IFS= read -r line; do
		n=$((n + 1))
		cmd=$(cron_command "$line" "$ws" "$prefix")
		# what the line runs besides sw: a stand-in that says it ran
		rm -f "$BATS_TEST_TMPDIR"/ran.*
		for name in $(grep -o "$prefix/bin/[A-Za-z0-9_.-]*" <<<"$cmd" | sed 's|.*/||' | grep -v '^sw-' | sort -u); do
			printf '#!/bin/sh\necho "$0" >"%s/ran.%s"\n' "$BATS_TEST_TMPDIR" "$name" >"$prefix/bin/$name"
			chmod 755 "$prefix/bin/$name"
		done
		for q in $(grep -oE -- '-q [A-Za-z0-9_.-]+' <<<"$cmd" | cut -d' ' -f2); do
			SW_DIR=$ws sw-claim add -q "$q" --quiet '"x"'
		done
		cron_run "$cmd" "$home"
		for name in $(grep -o "$prefix/bin/[A-Za-z0-9_.-]*" <<<"$cmd" | sed 's|.*/||' | grep -v '^sw-' | sort -u); do
			[ -e "$BATS_TEST_TMPDIR/ran.$name" ] || { echo "$name did not run: $line"; return 1; }
		done
	done < <(cron_lines)
	echo "$n cron lines"
	[ "$n" -ge 8 ]
	[ ! -e "$home/.local" ]     # nothing went to a workspace of cron's own
}

@test "the leader loops of the README and sw-lease(1) run as written: they define what they call, lead, and step down when asked" {
	local readme man
	readme=$(sed -n '/^### sw-lease /,/^### /p' "$top/README.md" | sed -n '/^    lead() {/,/^    done$/p' | sed 's/^    //')
	man=$(sed -n '/^\.Sh EXAMPLES/,/^\.Sh /p' "$top/man/sw-lease.1" | sed 's/\\e/\\/g' |
		sed -n '/^lead_one_round() {/,/^done$/p')
	for loop in "$readme" "$man"; do
		[ -n "$loop" ]
		rm -rf "$SW_DIR"
		bash -c "$loop" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
		pid=$!
		track "$pid" $(tree_pids "$pid")
		wait_until 10 grep -q "leading with token 1" "$BATS_TEST_TMPDIR/out"
		# another asks for the lease: the loop steps down and lets it in
		run --separate-stderr sw-lease run --takeover --wait 20s leader -- echo taken
		assert_success
		assert_output taken
		kill -TERM $(tree_pids "$pid") 2>/dev/null || true
		wait "$pid" || true
		# (not "! grep": a "! cmd" line fails no bats test)
		run grep -q "command not found" "$BATS_TEST_TMPDIR/err"
		[ "$status" -ne 0 ]
	done
}
