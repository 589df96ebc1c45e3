#!/usr/bin/env bats
# tests/lab/lab itself, on a lab of its own (its own SW_LAB_NAME and state
# directory, so a lab that tests/run or a person brought up is never
# touched): two mounts that see each other's writes; delay, partition and
# heal do to A's link what they say while B goes on; crash kills B's mount;
# down leaves nothing behind.  It lives with the multihost suites so that
# tests/run runs it once, beside them, and not again in the ASan pass: it
# runs no sw program.
load ../helper

lab=$top/tests/lab/lab

setup_file() {
	# unique per run: engineers sharing a machine may run it at once
	export SW_LAB_NAME=sw-labtest-$$ SW_MH_DIR=$BATS_FILE_TMPDIR/lab
	if [ "$(id -u)" = 0 ] && [ -c /dev/fuse ]; then
		local env
		env=$("$lab" up) || return 1
		eval "$env"
		export LAB_A=$SW_MH_A LAB_B=$SW_MH_B
	fi
}

teardown_file() {
	[ -z "${LAB_A:-}" ] || "$lab" down
}

teardown() {
	# a failed test must not leave a link cut or slowed for the next
	[ -e "/run/netns/$SW_LAB_NAME-a" ] || return 0
	"$lab" heal a
	"$lab" heal b
}

need_lab() {
	[ "$(id -u)" = 0 ] || skip "the lab needs root (network namespaces, FUSE mounts)"
	[ -c /dev/fuse ] || skip "the lab needs /dev/fuse"
	A=$LAB_A B=$LAB_B
}

running() { # pid: alive and not a zombie
	local s
	s=$(ps -o stat= -p "$1") && [[ $s != Z* ]]
}

ms() { # command...: run it, set $took to how long it took in ms
	local t0=${EPOCHREALTIME/./}
	"$@"
	took=$(((${EPOCHREALTIME/./} - t0) / 1000))
}

@test "up gives two mounts, each seeing the other's writes; a second up is refused" {
	need_lab
	grep -q " $A fuse" /proc/mounts
	grep -q " $B fuse" /proc/mounts
	echo from-a >"$A/x"
	[ "$(cat "$B/x")" = from-a ]
	echo from-b >"$B/y"
	[ "$(cat "$A/y")" = from-b ]
	run --separate-stderr "$lab" up
	[ "$status" -ne 0 ]
	[[ $stderr == *"already up"* ]]
}

@test "delay a 200ms makes a create on A slower by at least one round trip, B unaffected; delay a 0 undoes it" {
	need_lab
	mkdir -p "$A/d"
	ms touch "$A/d/before"; before=$took
	"$lab" delay a 200ms
	ms touch "$A/d/slow"; slow=$took
	ms touch "$B/d/fast"; fast=$took
	"$lab" delay a 0
	ms touch "$A/d/after"; after=$took
	echo "create on A: ${before} ms; delayed ${slow} ms (B ${fast} ms); undone ${after} ms"
	# a create asks the master at least once: one 400 ms round trip
	[ "$slow" -ge 400 ]
	[ "$fast" -lt 300 ]
	[ "$after" -lt 300 ]
	[ "$before" -lt 300 ]
}

@test "partition a stalls A's calls while B works; heal a lets them finish and A works again" {
	need_lab
	mkdir -p "$A/p"
	"$lab" partition a
	# a call blocked in the mount cannot be killed, not even by KILL: run
	# it in the background, without bats' fd 3, and only watch it
	(touch "$A/p/during"; echo $? >"$BATS_TEST_TMPDIR/rc") 3>&- &
	sleep 3
	[ ! -e "$BATS_TEST_TMPDIR/rc" ]     # still blocked after 3 s
	ms touch "$B/p/b-side"
	[ "$took" -lt 300 ]
	[ "$(ls "$B/p")" = b-side ]
	"$lab" heal a
	for _ in $(seq 200); do [ -e "$BATS_TEST_TMPDIR/rc" ] && break; sleep 0.1; done
	[ "$(cat "$BATS_TEST_TMPDIR/rc")" = 0 ]    # finished, and succeeded
	ms touch "$A/p/after"
	[ "$took" -lt 300 ]
	[ "$(ls "$B/p" | tr '\n' ' ')" = "after b-side during " ]
}

@test "delay is refused on a partitioned link" {
	need_lab
	"$lab" partition b
	run --separate-stderr "$lab" delay b 10ms
	"$lab" heal b
	[ "$status" -ne 0 ]
	[[ $stderr == *"partitioned"* ]]
	echo ok >"$B/healed"
	[ "$(cat "$A/healed")" = ok ]
}

@test "crash b kills B's mount process: B fails at once with ENOTCONN, A goes on" {
	need_lab
	pid=$(cat "$SW_MH_DIR/run/mount-b.pid")
	"$lab" crash b
	for _ in $(seq 50); do running "$pid" || break; sleep 0.1; done
	run running "$pid"
	[ "$status" -ne 0 ]
	run stat "$B"
	[ "$status" -ne 0 ]
	[[ $output == *"Transport endpoint is not connected"* ]]
	echo still >"$A/after-crash"
	[ "$(cat "$A/after-crash")" = still ]
}

@test "down leaves no namespace, mount or process behind, and so does a failed up" {
	need_lab
	pids=$(cat "$SW_MH_DIR"/run/*.pid)
	"$lab" down
	gone() { # nothing of this lab is left
		ip netns list | grep "^$SW_LAB_NAME-" && return 1
		grep "swlab-$SW_LAB_NAME-" /proc/mounts && return 1
		for p in $pids; do running "$p" && return 1; done
		[ ! -e "$SW_MH_DIR/srv" ]
	}
	gone
	# a mount that cannot start: up fails and undoes what it did
	run --separate-stderr env SW_LAB_MOUNT_OPTS=no-such-option "$lab" up
	[ "$status" -ne 0 ]
	[[ $stderr == *"mount a failed"* ]]
	gone
}

@test "up says in one line what is missing, here root" {
	as_user=()
	[ "$(id -u)" != 0 ] || as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	run --separate-stderr "${as_user[@]}" "$lab" up
	[ "$status" -ne 0 ]
	[ "${#stderr_lines[@]}" -eq 1 ]
	[[ $stderr == *"missing: root"* ]]
}
