#!/usr/bin/env bats
# A workspace shared by a group, on a real network filesystem seen through
# two mounts (two "hosts"): a member on mount A and a member on mount B
# claim, finish, fail, reap each other's items and hold each other's leases,
# whatever their umask; an outsider gets 77 in one line.  Needs root (to
# make the users) and SW_MH_A/SW_MH_B (tests/lab/lab up).
load ../helper

setup_file() {
	[ "$(id -u)" = 0 ] && [ -n "${SW_MH_A:-}" ] || return 0
	groupadd -f swmhg
	for u in swmhg-a swmhg-b swmhg-x; do
		id "$u" >/dev/null 2>&1 || useradd -M -N -s /bin/sh "$u"
	done
	usermod -a -G swmhg swmhg-a
	usermod -a -G swmhg swmhg-b
}

teardown_file() {
	[ "$(id -u)" = 0 ] && [ -n "${SW_MH_A:-}" ] || return 0
	for u in swmhg-a swmhg-b swmhg-x; do userdel "$u" 2>/dev/null || true; done
	groupdel swmhg 2>/dev/null || true
}

setup() {
	[ -n "${SW_MH_A:-}" ] && [ -n "${SW_MH_B:-}" ] ||
		skip "SW_MH_A and SW_MH_B are not set (no two-mount network filesystem here)"
	[ "$(id -u)" = 0 ] || skip "needs root to make the group's users"
	sub=sw-group-test.$$.$BATS_TEST_NUMBER.$RANDOM
	A=$SW_MH_A/$sub
	B=$SW_MH_B/$sub
	mkdir "$A"
	chown swmhg-a:swmhg "$A"
	chmod 2770 "$A"
	for _ in $(seq 50); do [ -d "$B" ] && break; sleep 0.1; done
}

teardown() {
	[ -n "${A:-}" ] && rm -rf "$A"
	true
}

# as USER through mount DIR, with a umask that would keep the group out
as() {
	local u=$1 d=$2
	shift 2
	setpriv --reuid "$u" --regid swmhg --init-groups -- env SW_DIR="$d" sh -c 'umask 077; exec "$@"' sh "$@"
}

@test "members on two hosts claim, renew, finish, fail and reap each other's items" {
	as swmhg-a "$A" sw-claim add --id one '"1"' >/dev/null
	as swmhg-a "$A" sw-claim add --id two '"2"' >/dev/null
	j=$(as swmhg-b "$B" sw-claim next)
	tok=$(jq -r .token <<<"$j")
	as swmhg-a "$A" sw-claim renew one --token "$tok" >/dev/null
	as swmhg-a "$A" sw-claim done one --token "$tok" --result '"a"' >/dev/null
	j=$(as swmhg-a "$A" sw-claim next --ttl 1s)
	as swmhg-b "$B" sw-claim fail two --token "$(jq -r .token <<<"$j")" --retry-in 0 >/dev/null
	as swmhg-a "$A" sw-claim next --ttl 1s >/dev/null
	SW_CLOCK_OFFSET=1m as swmhg-b "$B" sw-claim reap | jq -e '.reaped == 1'
	[ "$(as swmhg-b "$B" sw-claim show one | jq -r .result)" = a ]
	[ -z "$(find "$A" ! -type l -perm /o=rwx)" ]
}

@test "members on two hosts hold each other's leases in turn" {
	as swmhg-a "$A" sw-lease acquire job --ttl 1s >/dev/null
	sleep 3.5
	as swmhg-b "$B" sw-lease acquire job --ttl 10s | jq -e '.token == 2'
}

@test "an outsider gets 77 in one line through either mount" {
	as swmhg-a "$A" sw-claim add --id one '"1"' >/dev/null
	for d in "$A" "$B"; do
		run --separate-stderr setpriv --reuid swmhg-x --regid nogroup --clear-groups env SW_DIR="$d" sw-claim next
		[ "$status" -eq 77 ]
		[ "${#stderr_lines[@]}" -eq 1 ]
	done
}
