#!/usr/bin/env bats
# sw-lease across two hosts: one workspace on a real network filesystem
# (MooseFS) seen through two client mounts, $SW_MH_A and $SW_MH_B.  Proves
# issue 3's "what must hold": never two holders, tokens only grow across
# hosts, a SIGKILLed holder is taken after TTL + margin and not before, and
# a holder with a skewed clock does not overlap the next one.
load ../helper
load ../proc

setup() {
	[ -n "${SW_MH_A:-}" ] && [ -n "${SW_MH_B:-}" ] ||
		skip "SW_MH_A/SW_MH_B unset: no multihost filesystem (see tests/lab/lab up)"
	local sub="lease-$$-$BATS_TEST_NUMBER-$RANDOM"
	WA=$SW_MH_A/$sub
	WB=$SW_MH_B/$sub
	mkdir -p "$WA"
	for _ in $(seq 50); do [ -d "$WB" ] && break; sleep 0.1; done
}

teardown() {
	untrack_all
	[ -n "${WA:-}" ] && rm -rf "$WA"
	return 0
}

on_a() { SW_DIR=$WA "$@"; }
on_b() { SW_DIR=$WB "$@"; }
# renewed_on_b NAME: B sees a renewal of the lease (renewed_at moved on)
renewed_on_b() {
	on_b sw-lease show "$1" 2>/dev/null | jq -e '.renewed_at_unix_ns != .acquired_at_unix_ns' >/dev/null
}

@test "a lease held on A is busy on B; B's check sees A's token; release on A frees it for B" {
	local j tok
	j=$(on_a sw-lease acquire job --ttl 30s --owner host-a)
	tok=$(jq -r .token <<<"$j")
	run --separate-stderr on_b sw-lease acquire job --owner host-b
	[ "$status" -eq 75 ]
	[[ $stderr == *host-a* ]]
	run on_b sw-lease check job --token "$tok"
	[ "$status" -eq 0 ]
	on_a sw-lease release job --token "$tok" >/dev/null
	run --separate-stderr on_b sw-lease acquire job --owner host-b
	[ "$status" -eq 0 ]
	jq -e ".token == $((tok + 1))" <<<"$output"
	run on_a sw-lease check job --token "$tok"
	[ "$status" -eq 1 ]
}

@test "tokens only grow, alternating hosts, across release and expiry" {
	export SW_CLOCK_SKEW=50ms
	local last=0 i j tok side
	for i in $(seq 1 30); do
		if [ $((i % 2)) -eq 0 ]; then side=on_a; else side=on_b; fi
		j=$($side sw-lease acquire job --ttl 100ms) || {
			sleep 0.2; j=$($side sw-lease acquire job --ttl 100ms); }
		tok=$(jq -r .token <<<"$j")
		[ "$tok" -gt "$last" ] || { echo "token $tok after $last ($side)"; return 1; }
		last=$tok
		# every third lease is left to expire instead of released
		if [ $((i % 3)) -ne 0 ]; then
			$side sw-lease release job --token "$tok" >/dev/null
		else
			sleep 0.2
		fi
	done
}

@test "racing acquirers on both mounts: exactly one winner per round" {
	local r i n
	for r in $(seq 1 8); do
		for i in 1 2 3; do
			on_a sw-lease acquire race$r --ttl 1h >"$BATS_TEST_TMPDIR/a$r.$i" 2>/dev/null &
			on_b sw-lease acquire race$r --ttl 1h >"$BATS_TEST_TMPDIR/b$r.$i" 2>/dev/null &
		done
		wait
		n=$(cat "$BATS_TEST_TMPDIR"/[ab]$r.* | grep -c '"token"')
		[ "$n" -eq 1 ] || { echo "round $r: $n winners"; return 1; }
	done
}

@test "a SIGKILLed holder on A is taken on B after TTL + margin, not before" {
	# A crashes: run's whole tree (the guardian, the worker that renews,
	# the command) stops at one instant and is then killed, so nothing of
	# it can release the lease.  (Killing the guardian alone is not a
	# crash: its worker sees it go and releases.)
	export SW_CLOCK_SKEW=500ms
	local cmd=$BATS_TEST_TMPDIR/cmd
	SW_DIR=$WA sw-lease run cron --ttl 2s -- sh -c 'echo $$ >"$0"; exec sleep 30' "$cmd" \
		>/dev/null 2>&1 3>&- &
	local pid=$! tree
	track "$pid"
	wait_until 10 test -s "$cmd"
	track "$(cat "$cmd")"
	# crash after a renewal, seen from B: the expiry that counts is the
	# last renewal's, not the grant's
	wait_until 10 renewed_on_b cron
	tree=$(tree_pids "$pid")
	[ "$(wc -w <<<"$tree")" -eq 3 ] || { echo "run's tree: $(ps -o pid=,comm= -p "${tree//$'\n'/,}")"; return 1; }
	kill -STOP $tree
	kill -KILL $tree
	wait "$pid" || true
	# the expiry B sees, read before it asks: a refusal is the answer
	# whenever B asks before expiry + margin (which a machine too busy to
	# ask over MooseFS in time does not reach: said, not failed); a grant
	# is never early
	local exp free t
	exp=$(on_b sw-lease show cron | jq -r .expires_at_unix_ns)
	free=$((exp + 500000000))
	run --separate-stderr on_b sw-lease acquire cron
	t=$(date +%s%N)
	if [ "$t" -lt "$free" ]; then
		[ "$status" -eq 75 ] || { echo "taken at once ($status): $output"; return 1; }
	else
		echo "asked $(( (t - free) / 1000000 )) ms after expiry + margin: no early ask"
		[ "$status" -eq 0 ] || [ "$status" -eq 75 ]
	fi
	# a renewal the kill caught on its way may show only now: the later
	# expiry is the one the grant must wait for
	[ "$status" -eq 0 ] || exp=$(on_b sw-lease show cron | jq -r .expires_at_unix_ns)
	[ "$status" -eq 0 ] || wait_until 10 on_b sw-lease acquire cron --quiet || { echo "never taken"; return 1; }
	local taken
	taken=$(on_b sw-lease show cron | jq -r .acquired_at_unix_ns)
	[ "$taken" -ge $((exp + 500000000)) ] ||
		{ echo "taken $(( (exp + 500000000 - taken) / 1000000 ))ms before expiry + margin"; return 1; }
	[ "$(on_b sw-lease show cron | jq -r .token)" -eq 2 ]
}

@test "a holder on A whose clock is 2s behind does not overlap the next holder on B" {
	# default margin SW_CLOCK_SKEW=2s; A's lease ends, in real time, at its
	# expires_at + 2s; B (true clock) gets it only after that
	local j exp
	j=$(SW_CLOCK_OFFSET=-2s on_a sw-lease acquire job --ttl 500ms)
	exp=$(jq -r .expires_at_unix_ns <<<"$j")
	until on_b sw-lease acquire job --quiet; do sleep 0.02; done
	local taken
	taken=$(on_b sw-lease show job | jq -r .acquired_at_unix_ns)
	[ "$taken" -ge $((exp + 2000000000)) ]
	# and A, by its own clock, knows it no longer holds it
	SW_CLOCK_OFFSET=-2s run on_a sw-lease check job --token "$(jq -r .token <<<"$j")"
	[ "$status" -eq 1 ]
}

# ---- never two holders ---------------------------------------------------

# One contender: acquire, renew a few times at TTL/3 (sometimes too late),
# then release or just stop renewing.  Logs every moment it starts or
# stops believing it holds the lease, by its own clock:
#   A TOKEN ID ACQUIRED_NS EXPIRES_NS   R TOKEN ID EXPIRES_NS
#   X TOKEN ID RELEASED_NS              BAD what
contender() { # workspace id clock-offset seconds log
	local ws=$1 id=$2 end=$(( $(date +%s) + $4 )) log=$5 j tok acq exp i n
	export SW_DIR=$ws SW_CLOCK_OFFSET=$3 SW_CLOCK_SKEW=500ms
	while [ "$(date +%s)" -lt "$end" ]; do
		if ! j=$(sw-lease acquire L --ttl 1s --owner "$id" 2>/dev/null); then
			sleep 0.0$((RANDOM % 10))
			continue
		fi
		read -r tok acq exp < <(jq -r '"\(.token) \(.acquired_at_unix_ns) \(.expires_at_unix_ns)"' <<<"$j")
		echo "A $tok $id $acq $exp" >>"$log"
		if [ "$tok" -gt 1 ] && sw-lease check L --token $((tok - 1)) >/dev/null 2>&1; then
			echo "BAD older token $((tok - 1)) checks valid while $tok holds" >>"$log"
		fi
		n=$((RANDOM % 5))
		for ((i = 0; i < n; i++)); do
			if [ $((RANDOM % 6)) -eq 0 ]; then sleep 1.2; else sleep 0.3; fi
			if j=$(sw-lease renew L --token "$tok" --ttl 1s 2>/dev/null); then
				echo "R $tok $id $(jq -r .expires_at_unix_ns <<<"$j")" >>"$log"
			else
				if sw-lease check L --token "$tok" >/dev/null 2>&1; then
					echo "BAD $id: renew of $tok failed but check says valid" >>"$log"
				fi
				continue 2
			fi
		done
		if [ $((RANDOM % 3)) -eq 0 ]; then
			sleep 0.1          # stop renewing: the lease expires
		elif j=$(sw-lease release L --token "$tok" 2>/dev/null); then
			echo "X $tok $id $(jq -r .released_at_unix_ns <<<"$j")" >>"$log"
		fi
	done
}

@test "never two holders: 2 contenders on each mount for ${SW_LEASE_MH_SECONDS:-60}s, clocks up to 400ms apart" {
	local secs=${SW_LEASE_MH_SECONDS:-60} log=$BATS_TEST_TMPDIR/log
	declare -A off=([a1]=0 [a2]=200000000 [b1]=-200000000 [b2]=100000000)
	contender "$WA" a1 0 "$secs" "$log.a1" &
	contender "$WA" a2 200ms "$secs" "$log.a2" &
	contender "$WB" b1 -200ms "$secs" "$log.b1" &
	contender "$WB" b2 100ms "$secs" "$log.b2" &
	wait
	cat "$log".* >"$log"
	! grep BAD "$log" || return 1

	# belief interval of each token in real time: from acquired_at to the
	# last expires_at it was told (or its release), minus its clock offset
	declare -A start end who
	local kind tok id a b
	while read -r kind tok id a b; do
		case $kind in
		A)
			[ -z "${start[$tok]:-}" ] || { echo "token $tok granted twice"; return 1; }
			who[$tok]=$id
			start[$tok]=$((a - off[$id])); end[$tok]=$((b - off[$id])) ;;
		R)
			[ $((a - off[$id])) -gt "${end[$tok]}" ] && end[$tok]=$((a - off[$id])) ;;
		X)
			[ $((a - off[$id])) -lt "${end[$tok]}" ] && end[$tok]=$((a - off[$id])) ;;
		esac
	done <"$log"
	local n=${#start[@]} prev_end=0 prev_tok=0 t hosts=""
	[ "$n" -ge 10 ] || { echo "only $n acquisitions"; return 1; }
	for t in $(for t in "${!start[@]}"; do echo "${start[$t]} $t"; done | sort -n | cut -d' ' -f2); do
		[ "$t" -gt "$prev_tok" ] || { echo "token $t started after token $prev_tok"; return 1; }
		[ "${start[$t]}" -ge "$prev_end" ] ||
			{ echo "token $t (${who[$t]}) started $(( (prev_end - start[$t]) / 1000 ))us before token $prev_tok's holder stopped believing"; return 1; }
		prev_end=${end[$t]}
		prev_tok=$t
		hosts+=${who[$t]:0:1}
	done
	# both mounts won the lease, more than once each
	[[ $hosts == *a*a* ]] && [[ $hosts == *b*b* ]] || { echo "winners: $hosts"; return 1; }
	echo "# $n acquisitions, winners in order: $hosts" >&3
}
