#!/usr/bin/env bats
# A workspace shared by a group (setgid, group-writable): every member can
# add, claim, renew, finish, fail, release, reap any item and hold any
# lease, whatever their umask; someone outside the group gets 77, one
# line, and changes nothing.  Needs root (to make the users).
load helper

# The users and the group are shared by runs that overlap (make check runs
# the plain and the ASan suites side by side): each run registers, the
# last one out removes them.
GRP_REG=/tmp/sw-group-test.users

setup_file() {
	[ "$(id -u)" = 0 ] || return 0
	(
		flock 9
		groupadd -f swgrp
		for u in swgrp-a swgrp-b swgrp-x; do
			id "$u" >/dev/null 2>&1 || useradd -M -N -s /bin/sh "$u"
		done
		usermod -a -G swgrp swgrp-a
		usermod -a -G swgrp swgrp-b
		echo "$BATS_RUN_TMPDIR" >>"$GRP_REG"
	) 9>>"$GRP_REG.lock"
}

teardown_file() {
	[ "$(id -u)" = 0 ] || return 0
	(
		flock 9
		# runs whose directory is gone were killed: they no longer count
		others=$(grep -vxF "$BATS_RUN_TMPDIR" "$GRP_REG" 2>/dev/null |
			while read -r d; do [ -d "$d" ] && echo "$d"; done)
		if [ -n "$others" ]; then
			printf '%s\n' "$others" >"$GRP_REG"
			exit 0
		fi
		rm -f "$GRP_REG"
		for u in swgrp-a swgrp-b swgrp-x; do userdel "$u" 2>/dev/null || true; done
		groupdel swgrp 2>/dev/null || true
	) 9>>"$GRP_REG.lock"
}

setup() {
	[ "$(id -u)" = 0 ] || skip "needs root to make the group's users"
	top=$(mktemp -d /tmp/sw-group-test.XXXXXX)
	chmod 0755 "$top"
	export SW_DIR=$top/ws
	mkdir "$SW_DIR"
	chown swgrp-a:swgrp "$SW_DIR"
	chmod 2770 "$SW_DIR"
}

teardown() {
	[ -n "${top:-}" ] && rm -rf "$top"
	true
}

# as USER with a umask that would keep the group out, were sw to obey it
as() {
	local u=$1
	shift
	setpriv --reuid "$u" --regid swgrp --init-groups -- sh -c 'umask 077; exec "$@"' sh "$@"
}

@test "group members claim, renew, finish, fail, release and reap each other's items" {
	as swgrp-a sw-claim add --id one '"1"' >/dev/null
	as swgrp-a sw-claim add --id two '"2"' >/dev/null
	as swgrp-a sw-claim add --id three '"3"' >/dev/null
	j=$(as swgrp-b sw-claim next)
	[ "$(jq -r .id <<<"$j")" = one ]
	tok=$(jq -r .token <<<"$j")
	as swgrp-a sw-claim renew one --token "$tok" --ttl 1m >/dev/null
	as swgrp-a sw-claim done one --token "$tok" --result '"by a"' >/dev/null
	[ "$(as swgrp-b sw-claim show one | jq -r .state)" = done ]
	j=$(as swgrp-a sw-claim next --ttl 2s)
	as swgrp-b sw-claim fail two --token "$(jq -r .token <<<"$j")" --retry-in 0 >/dev/null
	j=$(as swgrp-b sw-claim next --ttl 2s)
	as swgrp-a sw-claim release "$(jq -r .id <<<"$j")" --token "$(jq -r .token <<<"$j")" >/dev/null
	as swgrp-b sw-claim next --ttl 1s >/dev/null
	SW_CLOCK_OFFSET=1m as swgrp-a sw-claim reap | jq -e '.reaped == 1'
	as swgrp-a sw-claim add --id four '"4"' >/dev/null
	as swgrp-b sw-claim cancel four >/dev/null
	as swgrp-a sw-claim requeue four >/dev/null
	# every file of the queue is the group's, and nobody else's
	[ -z "$(find "$SW_DIR" ! -group swgrp)" ]
	[ -z "$(find "$SW_DIR" ! -type l -perm /o=rwx)" ]   # (a symlink's mode means nothing)
	[ "$(as swgrp-b sw-claim stats | jq '.pending + .claimed + .done')" -eq 4 ]
}

@test "group members hold each other's leases in turn" {
	j=$(as swgrp-a sw-lease acquire job --ttl 1s)
	as swgrp-b sw-lease acquire job --ttl 1s >/dev/null 2>&1 && false
	sleep 3.5   # the lease runs out, with the skew margin
	as swgrp-b sw-lease acquire job --ttl 10s | jq -e '.token == 2'
	[ "$(jq -r .token <<<"$j")" = 1 ]
	as swgrp-a sw-lease release job --token 2 >/dev/null   # a member may give it back
	[ "$(as swgrp-b sw-lease show job | jq -r .state)" = released ]
}

@test "group members take from each other's limits, hold and free their slots, and record, trip and reset each other's breakers" {
	as swgrp-a sw-limit take api --rate 1/h --burst 2 --quiet
	as swgrp-b sw-limit take api --rate 1/h --burst 2 --quiet
	run as swgrp-a sw-limit take api --rate 1/h --burst 2 --quiet
	[ "$status" -eq 75 ]   # one bucket for both, refusal counted
	[ "$(as swgrp-b sw-limit show api | jq '.bucket.granted, .limited.rate' | tr '\n' ' ')" = "2 1 " ]
	as swgrp-a sw-limit take win --window 1h --max 1 --quiet
	run as swgrp-b sw-limit take win --window 1h --max 1 --quiet
	[ "$status" -eq 75 ]
	j=$(as swgrp-a sw-limit acquire db --concurrency 1)
	run as swgrp-b sw-limit acquire db --concurrency 1
	[ "$status" -eq 75 ]
	as swgrp-b sw-limit release db --slot "$(jq -r .slot <<<"$j")" --token "$(jq -r .token <<<"$j")" >/dev/null
	as swgrp-b sw-limit run db --concurrency 1 -- true
	as swgrp-a sw-breaker record up --fail --failures 2 --quiet
	as swgrp-b sw-breaker record up --fail --failures 2 --quiet
	[ "$(as swgrp-a sw-breaker show up | jq -r .state)" = open ]
	as swgrp-a sw-breaker reset up >/dev/null
	as swgrp-b sw-breaker trip up >/dev/null
	[ "$(as swgrp-a sw-breaker show up | jq -r .state)" = open ]
	[ -z "$(find "$SW_DIR" ! -group swgrp)" ]
	[ -z "$(find "$SW_DIR" ! -type l -perm /o=rwx)" ]
	# an outsider: 77 in one line, nothing changed
	before=$(cd "$SW_DIR" && find . | sort | md5sum)
	for cmd in "sw-limit take api --rate 1/s" "sw-limit acquire db --concurrency 1" "sw-limit list" \
		   "sw-breaker record up --fail" "sw-breaker check up" "sw-breaker list"; do
		run --separate-stderr setpriv --reuid swgrp-x --regid nogroup --clear-groups $cmd
		[ "$status" -eq 77 ] || { echo "$cmd: $status $stderr"; return 1; }
		[ "${#stderr_lines[@]}" -eq 1 ] || { echo "$cmd: $stderr"; return 1; }
	done
	[ "$(cd "$SW_DIR" && find . | sort | md5sum)" = "$before" ]
}

@test "an outsider gets 77 in one line and changes nothing" {
	as swgrp-a sw-claim add --id one '"1"' >/dev/null
	before=$(cd "$SW_DIR" && find . | sort | md5sum)
	for cmd in "sw-claim next" "sw-claim add 1" "sw-claim list" "sw-claim reap" "sw-claim done one --token 5" \
		   "sw-lease acquire job" "sw-agent list"; do
		run --separate-stderr setpriv --reuid swgrp-x --regid nogroup --clear-groups $cmd
		[ "$status" -eq 77 ] || { echo "$cmd: $status $stderr"; return 1; }
		[ "${#stderr_lines[@]}" -eq 1 ] || { echo "$cmd: $stderr"; return 1; }
	done
	[ "$(cd "$SW_DIR" && find . | sort | md5sum)" = "$before" ]
}

@test "a permission error inside a queue names the queue's directory" {
	as swgrp-a sw-claim add -q p '"x"' >/dev/null
	chmod 0700 "$SW_DIR/queues/p/pending"
	chown root "$SW_DIR/queues/p/pending"
	run --separate-stderr as swgrp-b sw-claim next -q p
	[ "$status" -eq 77 ]
	[[ $stderr == "sw-claim: next: queue $SW_DIR/queues/p: "*"Permission denied" ]]
}
