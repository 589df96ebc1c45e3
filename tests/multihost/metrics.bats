#!/usr/bin/env bats
# sw-metrics on a real network filesystem (MooseFS, two client mounts): a
# WAL database is refused there unless --db names it, which only warns, and
# a home there sends the default database to host-local /var/tmp.
load ../helper

setup() {
	[ -n "${SW_MH_A:-}" ] && [ -n "${SW_MH_B:-}" ] ||
		skip "SW_MH_A and SW_MH_B are not set (no network filesystem mounted)"
	NET=$SW_MH_A/metrics-$BATS_TEST_NUMBER-$$-$RANDOM
	mkdir -p "$NET"
}

teardown() {
	[ -n "${NET:-}" ] && rm -rf "$NET"
	return 0
}

@test "a database on a network filesystem named by SW_METRICS_DB is refused with 69, before anything is written" {
	run --separate-stderr env SW_METRICS_DB="$NET/m.db" sw-metrics inc a
	[ "$status" -eq 69 ]
	[[ $stderr == "sw-metrics: inc: $NET/m.db is on a network filesystem"* ]]
	[ ! -e "$NET/m.db" ]
	# the journal's writers too, before they write anything
	run --separate-stderr env SW_METRICS_DB="$NET/m.db" sw-metrics inc a --quiet
	[ "$status" -eq 69 ]
	run --separate-stderr env SW_METRICS_DB="$NET/m.db" sw-metrics set g 1
	[ "$status" -eq 69 ]
	[ -z "$(ls -A "$NET")" ]
}

@test "a home on a network filesystem: the default database moves to a private /var/tmp directory" {
	run --separate-stderr env -u SW_METRICS_DB -u XDG_STATE_HOME HOME="$NET" \
		sw-metrics inc sw_test_netfs_home --quiet
	[ "$status" -eq 0 ]
	[ ! -e "$NET/.local" ]   # nothing made on the network filesystem
	local dir=/var/tmp/sw-metrics-$(id -u)
	[ -f "$dir/$(hostname).db" ] || [ -s "$dir/$(hostname).db.journal" ]
	[ "$(stat -c '%u %a' "$dir")" = "$(id -u) 700" ]
}

@test "--db naming a network filesystem warns and works" {
	run --separate-stderr sw-metrics inc a --db "$NET/m.db"
	[ "$status" -eq 0 ]
	[ "$output" = '{"name":"a_total","labels":{},"value":1}' ]
	[ "$stderr" = "sw-metrics: inc: $NET/m.db is on a network filesystem: use it from one host only" ]
}
