#!/usr/bin/env bats
# sw-agent: the registry (register, heartbeat, list, reap) and the worker
# loop of `run` (payload on stdin, environment, outcomes, signals, and the
# claim outliving each command's whole process tree).
load helper
load proc

teardown() { untrack_all; }

# items NAME...: adds each NAME as a string payload
items() { printf '%s\n' "$@" | sw-claim add --lines --quiet; }
count() { sw-claim list --state "$1" | grep -c . || true; }
# claims_are ID N: agent ID's record names N claims
claims_are() { [ "$(sw-agent list | jq -s --arg id "$1" 'map(select(.id == $id))[0].claims | length')" = "$2" ]; }
# taken SIG PID...: none of PIDs has SIG pending: the guardian has passed
# it on and the worker has read it
taken() {
	local bit=$(( 1 << ($(kill -l "$1") - 1) )) p m
	shift
	for p in "$@"; do
		for m in $(awk '/^(SigPnd|ShdPnd):/ { print $2 }' "/proc/$p/status" 2>/dev/null); do
			(( (0x$m & bit) == 0 )) || return 1
		done
	done
}

@test "--help prints usage to stdout and exits 0; bad usage exits 64" {
	run --separate-stderr sw-agent --help
	assert_success
	assert_output --partial "usage: sw-agent VERB"
	run --separate-stderr sw-agent run --help
	assert_success
	run --separate-stderr sw-agent frobnicate
	[ "$status" -eq 64 ]
	run --separate-stderr sw-agent run -j 2
	[ "$status" -eq 64 ]
	[[ "$stderr" == "sw-agent: run: run needs a COMMAND"* ]]
	run --separate-stderr sw-agent list --jobs 3
	[ "$status" -eq 64 ]
	run --separate-stderr sw-agent run -j 0 -- true
	[ "$status" -eq 64 ]
	run --separate-stderr sw-agent heartbeat
	[ "$status" -eq 64 ]
	run --separate-stderr sw-agent register --id ../x
	[ "$status" -eq 65 ]
}

@test "register records detected hardware, roles and labels" {
	run --separate-stderr sw-agent register --id a1 --roles gpu,cpu --label zone=eu --ttl 10s
	assert_success
	run jq -r '[.id, (.roles|join(",")), .labels.zone, .cpus, .hostname, .alive, .ttl] | @tsv' <<<"$output"
	assert_output "$(printf 'a1\tgpu,cpu\teu\t%s\t%s\ttrue\t10' "$(nproc)" "$(uname -n)")"
	mem=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) * 1024 ))
	run jq -r '.memory_bytes' "$SW_DIR/agents/a1.json"
	assert_output "$mem"
	run jq -r '.os' "$SW_DIR/agents/a1.json"
	assert_output "$(uname -s) $(uname -r) $(uname -m)"
}

@test "GPUs come from the NVIDIA driver's proc files, else from /dev/nvidiaN" {
	root=$BATS_TEST_TMPDIR/root
	mkdir -p "$root/proc/driver/nvidia/gpus/0000:01:00.0" "$root/dev"
	printf 'Model: \t\t NVIDIA A100-SXM4-40GB\nIRQ: 42\n' >"$root/proc/driver/nvidia/gpus/0000:01:00.0/information"
	SW_HW_ROOT=$root run --separate-stderr sw-agent register --id g
	assert_success
	run jq -c '.gpus' <<<"$output"
	assert_output '[{"bus_id":"0000:01:00.0","model":"NVIDIA A100-SXM4-40GB"}]'
	rm -r "$root/proc/driver"
	touch "$root/dev/nvidia0" "$root/dev/nvidia1" "$root/dev/nvidiactl"
	SW_HW_ROOT=$root run --separate-stderr sw-agent register --id g
	run jq -c '.gpus | map(.device) | sort' <<<"$output"
	assert_output '["/dev/nvidia0","/dev/nvidia1"]'
	SW_HW_ROOT=$BATS_TEST_TMPDIR/none run --separate-stderr sw-agent register --id g
	run jq -c '.gpus' <<<"$output"
	assert_output '[]'
}

@test "an agent without heartbeats goes dead after its ttl plus the skew margin" {
	sw-agent register --id old --ttl 1s >/dev/null
	sw-agent register --id new --ttl 1m >/dev/null
	run --separate-stderr sw-agent list --alive
	[ "$(jq -r .id <<<"$output" | sort | paste -sd,)" = new,old ]
	SW_CLOCK_OFFSET=10s run --separate-stderr sw-agent list --dead
	assert_success
	assert_output --partial '"id":"old"'
	refute_output --partial '"id":"new"'
	SW_CLOCK_OFFSET=10s run --separate-stderr sw-agent list --alive
	assert_output --partial '"id":"new"'
	refute_output --partial '"id":"old"'
	# a heartbeat brings it back
	SW_CLOCK_OFFSET=10s sw-agent heartbeat old >/dev/null
	SW_CLOCK_OFFSET=10s run --separate-stderr sw-agent list --dead
	assert_output ""
	run --separate-stderr sw-agent list --alive --dead
	[ "$status" -eq 64 ]
}

@test "list --table prints a readable table, with each agent's queue, commands running of its slots, claims and keys owned" {
	sw-agent register --id t1 --roles build >/dev/null
	run --separate-stderr sw-agent list --table
	assert_success
	assert_line --index 0 --regexp '^ID +ALIVE +HOST +QUEUE +RUNNING +CLAIMS +OWNS +CPUS +MEMORY +GPUS +ROLES +LAST HEARTBEAT$'
	assert_line --index 1 --regexp '^t1 +yes +[^ ]+ +- +- +- +- +[0-9]+ .* build +20'
	items a b
	sw-agent run -q default --id t2 -j 3 --max-items 2 --quiet -- sleep 2 &
	pid=$!
	track "$pid"
	wait_until 5 claims_are t2 2
	run --separate-stderr sw-agent list --table
	assert_line --index 2 --regexp '^t2 +yes +[^ ]+ +default +2/3 +2 +0 +[0-9]+ '
	reap_job "$pid" 10
}

@test "heartbeat and deregister of an unknown agent exit 1" {
	run --separate-stderr sw-agent heartbeat ghost
	[ "$status" -eq 1 ]
	[ "$stderr" = "sw-agent: heartbeat: no agent 'ghost'" ]
	run --separate-stderr sw-agent deregister ghost
	[ "$status" -eq 1 ]
	sw-agent register --id a >/dev/null
	run --separate-stderr sw-agent deregister a
	assert_success
	[ ! -e "$SW_DIR/agents/a.json" ]
}

@test "reap forgets dead agents only, and returns expired claims to pending" {
	sw-agent register --id dead1 --ttl 1s >/dev/null
	sw-agent register --id live --ttl 1h >/dev/null
	items one
	sw-claim next --ttl 1s >/dev/null
	SW_CLOCK_OFFSET=30s run --separate-stderr sw-agent reap
	assert_success
	assert_line --partial '"id":"dead1"'
	assert_line '{"queue":"default","claims_reaped":1}'
	run --separate-stderr sw-agent list
	assert_output --partial '"id":"live"'
	refute_output --partial '"id":"dead1"'
	[ "$(count pending)" = 1 ]
}

@test "reap frees a dead agent's claims at once, long before their leases run out" {
	sw-claim add --timeout 1h --quiet '"a"'
	sw-claim add --timeout 1h --quiet '"b"'
	sw-agent run --id k1 -j 2 --quiet -- sleep 3 &
	pid=$!
	# the record names its claims within a second of taking them
	for ((i = 0; i < 50; i++)); do
		[ "$(sw-agent list | jq '.claims | length')" = 2 ] && break; sleep 0.1
	done
	# the agent dies without a word: the process that holds the claims
	# (the one the agent started at once) is SIGKILLed
	kill -KILL "$(pgrep -P "$pid" -x sw-agent)"; wait "$pid" || true
	[ "$(count claimed)" = 2 ]
	# 1 m on: the agent (ttl 30 s) is dead, its claims' 1 h leases are not
	SW_CLOCK_OFFSET=1m run --separate-stderr sw-agent reap
	assert_success
	run jq -c '[.id, .reaped, .claims_freed]' <<<"$output"
	assert_output '["k1",true,2]'
	[ "$(count claimed)" = 0 ]
	run jq -r '[.attempt, .last_error] | @tsv' <<<"$(sw-claim list --state pending)"
	assert_output "$(printf '1\tagent k1 is dead (reaped)\n1\tagent k1 is dead (reaped)')"
}

@test "run processes every item once: string payload raw on stdin, JSON payload as one line" {
	items alpha beta
	sw-claim add --quiet '{"n":1,"s":"x y"}'
	run --separate-stderr sw-agent run -j 2 --idle-exit 0 -- cat
	assert_success
	[ "$(grep -c '"state":"done"' <<<"$output")" = 3 ]
	run sw-claim list --state done
	run jq -c '.result' <<<"$output"
	assert_line '"alpha"'
	assert_line '"beta"'
	assert_line '{"n":1,"s":"x y"}'
	[ "$(count pending)" = 0 ]
	[ ! -e "$SW_DIR/agents" ] || [ -z "$(ls "$SW_DIR/agents")" ]
}

@test "the command gets SW_ITEM_ID, SW_ITEM_TOKEN, SW_ATTEMPT, SW_QUEUE, SW_AGENT_ID, SW_DIR and a child TRACEPARENT" {
	sw-claim add -q jobs --quiet '"p"'
	export TRACEPARENT=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01
	run --separate-stderr sw-agent run -q jobs --id ag7 --once -- \
		sh -c 'printf "%s\n" "{\"id\":\"$SW_ITEM_ID\",\"token\":\"$SW_ITEM_TOKEN\",\"attempt\":\"$SW_ATTEMPT\",\"queue\":\"$SW_QUEUE\",\"agent\":\"$SW_AGENT_ID\",\"dir\":\"$SW_DIR\",\"tp\":\"$TRACEPARENT\"}"'
	assert_success
	run sw-claim list -q jobs --state done
	id=$(jq -r .id <<<"$output")
	run jq -r '.result | [.id, .attempt, .queue, .agent, .dir] | @tsv' <<<"$output"
	assert_output "$(printf '%s\t1\tjobs\tag7\t%s' "$id" "$SW_DIR")"
	run sw-claim list -q jobs --state done
	tp=$(jq -r .result.tp <<<"$output")
	[[ "$tp" =~ ^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$ ]]
	[[ "$tp" != *b7ad6b7169203331* ]]
	[[ "$(jq -r .result.token <<<"$output")" =~ ^[0-9]+$ ]]
}

@test "the command inherits none of the agent's descriptors and runs without a shell" {
	sw-claim add --quiet '"x"'
	sw-agent run --once --quiet -- ls -l /proc/self/fd
	run sw-claim list --state done
	res=$(jq -r .result <<<"$output")
	[[ "$res" != *signalfd* && "$res" != *inotify* && "$res" != *"$SW_DIR"* && "$res" != *.lock* ]]
	[[ "$res" == *" 0 -> pipe:"* && "$res" == *" 1 -> pipe:"* && "$res" == *" 2 -> pipe:"* ]]
}

@test "a payload with shell syntax reaches stdin unchanged and is never run" {
	rm -f "$BATS_TEST_TMPDIR/pwned"
	p="\$(touch $BATS_TEST_TMPDIR/pwned); rm -rf ~ \`touch $BATS_TEST_TMPDIR/pwned\` | & > * '\""
	jq -nc --arg p "$p" '{payload: $p}' | sw-claim add --quiet
	sw-agent run --once --quiet -- sh -c 'cat >"$0"' "$BATS_TEST_TMPDIR/got"
	[ "$(cat "$BATS_TEST_TMPDIR/got")" = "$p" ]
	[ ! -e "$BATS_TEST_TMPDIR/pwned" ]
}

@test "non-zero exit fails the item with the stderr tail; it retries, then goes dead" {
	sw-claim add --quiet --max-attempts 2 '"x"'
	export SW_BACKOFF_BASE=10ms
	run --separate-stderr sw-agent run --idle-exit 5s --max-items 2 --poll 100ms -- sh -c 'echo "bad thing $SW_ATTEMPT" >&2; exit 4'
	assert_success
	assert_line --index 0 --partial '"attempt":1,"state":"pending","duration_ms"'
	assert_line --index 1 --partial '"attempt":2,"state":"dead"'
	run sw-claim list --state dead
	[ "$(jq -r .last_error <<<"$output")" = "exit status 4: bad thing 2" ]
}

@test "exit 75 releases the item without counting an attempt" {
	items x
	run --separate-stderr sw-agent run --idle-exit 0 --max-items 2 -- \
		sh -c 'if [ -e "$0" ]; then echo ok; else touch "$0"; exit 75; fi' "$BATS_TEST_TMPDIR/m"
	assert_success
	assert_line --index 0 --partial '"state":"released","duration_ms"'
	assert_line --index 1 --partial '"attempt":1,"state":"done"'
}

@test "stdout that is not JSON is stored as a string, cut at 64 KiB" {
	items x y
	run --separate-stderr sw-agent run --idle-exit 0 --quiet -- sh -c 'if [ "$(cat)" = x ]; then printf "not json\n"; else head -c 70000 /dev/zero | tr "\0" a; fi'
	assert_success
	run sw-claim list --state done
	run jq -r '.result | if length > 100 then length else . end' <<<"$output"
	assert_line "not json"
	assert_line 65536
}

@test "--once passes the command's exit status through; 75 when nothing is claimable" {
	run --separate-stderr sw-agent run --once -- true
	[ "$status" -eq 75 ]
	items x
	run --separate-stderr sw-agent run --once --quiet -- sh -c 'exit 3'
	[ "$status" -eq 3 ]
	items y
	run --separate-stderr sw-agent run --once --quiet -- sh -c 'kill -9 $$'
	[ "$status" -eq 137 ]
}

@test "--max-items stops after N items; --roles claims only those roles (and items without one)" {
	sw-claim add --quiet --role gpu '"g"'
	sw-claim add --quiet --role cpu '"c"'
	items a b c
	run --separate-stderr sw-agent run --roles gpu --max-items 1 -- cat
	assert_success
	[ "$(grep -c '"state":"done"' <<<"$output")" = 1 ]
	run sw-claim list --state done
	[ "$(jq -r .result <<<"$output")" = g ]
	run --separate-stderr sw-agent run --max-items 2 -- cat
	assert_success
	[ "$(grep -c '"state":"done"' <<<"$output")" = 2 ]
	[ "$(count pending)" = 2 ]
}

@test "a command that cannot be run leaves the item pending and exits 69" {
	items x
	run --separate-stderr sw-agent run --idle-exit 0 -- /nonexistent/cmd
	[ "$status" -eq 69 ]
	[[ "$stderr" == *"cannot run '/nonexistent/cmd'"* ]]
	[ "$(count pending)" = 1 ]
}

@test "the claim is renewed while a long command runs, and the agent heartbeats" {
	sw-claim add --quiet --timeout 1 '"x"'
	sw-agent run --id slow --idle-exit 0 --quiet --ttl 1s -- sh -c 'sleep 3; echo fine' &
	pid=$!
	sleep 2.2
	# past the first lease and the skew margin: a reaper finds nothing to take
	run --separate-stderr sw-agent reap
	refute_output --partial claims_reaped
	run --separate-stderr sw-agent list --alive
	assert_output --partial '"id":"slow"'
	wait "$pid"
	[ "$(count done)" = 1 ]
}

@test "SIGTERM drains: running items finish, nothing new is claimed, exit 0" {
	cd "$BATS_TEST_TMPDIR"
	items a b c d
	# the commands end when told: once the agent holds two items and has
	# taken the signals (a command that ended first would free a slot
	# that a claim may fill)
	agent_bg d1 2 -j 2 --quiet -- sh -c 'while [ ! -e go ]; do sleep 0.05; done; cat'
	kill -HUP "$pid"     # ignored
	kill -TERM "$pid"
	wait_until 20 taken TERM "$pid" "$worker"
	: >go
	wait "$pid"
	[ "$(count done)" = 2 ]
	[ "$(count pending)" = 2 ]
	[ "$(count claimed)" = 0 ]
	[ ! -e "$SW_DIR/agents/d1.json" ]
}

@test "past --grace, or on a second SIGTERM, running items are released at once" {
	items a b
	agent_bg g1 2 -j 2 --quiet --grace 500ms -- sleep 30
	kill -TERM "$pid"
	s=$SECONDS
	wait "$pid" || rc=$?
	[ "${rc:-0}" -eq 0 ]
	[ $((SECONDS - s)) -lt 5 ]
	[ "$(count pending)" = 2 ]
	run sw-claim list --state pending
	[ "$(jq -r .attempt <<<"$output" | sort -u)" = 0 ]
	agent_bg g2 2 -j 2 --quiet -- sleep 30
	kill -INT "$pid"
	wait_until 20 taken INT "$pid" "$worker"
	kill -TERM "$pid"
	rc=0; wait "$pid" || rc=$?
	[ "$rc" -eq 143 ]
	[ "$(count pending)" = 2 ]
	[ "$(count claimed)" = 0 ]
}

@test "a third signal SIGKILLs commands that ignore SIGTERM, without the 5 s wait" {
	cd "$BATS_TEST_TMPDIR"
	items a
	agent_bg t1 1 --quiet -- sh -c 'trap "" TERM; : >trapped; sleep 20'
	wait_until 20 test -e trapped
	# each signal taken before the next: two of one signal pending at
	# once are one
	t0=$EPOCHREALTIME
	kill -TERM "$pid"
	wait_until 20 taken TERM "$pid" "$worker"
	kill -TERM "$pid"
	wait_until 20 taken TERM "$pid" "$worker"
	kill -TERM "$pid"
	rc=0; wait "$pid" || rc=$?
	ms=$(( (${EPOCHREALTIME/./} - ${t0/./}) / 1000 ))
	[ "$rc" -eq 143 ]
	[ "$ms" -lt 3000 ]
	[ "$(count pending)" = 1 ]
}

@test "an idle agent wakes within 50 ms for a new item on this host, long before its poll" {
	# the command prints when it started: that minus the item's creation
	# is the wake-up latency.  The best of three: a poll would take a
	# minute, so one quick wake proves the watch, and a loaded machine
	# (make check runs three lanes on two cores) only adds to the others.
	# ASan is slower.
	local limit=50 lat=()
	[[ ${SW_BIN:-} == */san/* ]] && limit=250
	for i in 1 2 3; do
		SW_POLL=1m sw-agent run --idle-exit 20s --max-items 1 --quiet -- date +%s%N &
		pid=$!
		sleep 0.5
		sw-claim add --id "w$i" --quiet '"x"'
		wait "$pid"
		lat+=($(sw-claim show "w$i" | jq '((.result - (.created_at_unix_ns | tonumber)) / 1e6) | floor'))
	done
	best=$(printf '%s\n' "${lat[@]}" | sort -n | head -1)
	echo "latencies ms: ${lat[*]}"
	[ "$best" -lt "$limit" ]
}

@test "one new item makes one idle agent scan the queue, not every one waiting" {
	SW_POLL=1m sw-agent run -j 2 --idle-exit 30s --quiet -- true &
	watcher=$!
	sleep 0.4   # the first agent watches; it keeps a free slot, so keeps watching
	others=()
	for i in 1 2 3; do
		SW_POLL=1m sw-agent run -j 2 --idle-exit 30s --quiet -- true &
		others+=($!)
	done
	sleep 0.6
	# a scan reads directories: count the others' getdents64 while the item
	# is added and done
	strace -f -e trace=getdents64 -o "$BATS_TEST_TMPDIR/st" $(printf -- '-p %s ' "${others[@]}") 2>/dev/null &
	st=$!
	sleep 0.5
	items x
	for ((i = 0; i < 30; i++)); do [ "$(count done)" = 1 ] && break; sleep 0.1; done
	sleep 0.3
	kill -INT "$st"; wait "$st" || true
	[ "$(count done)" = 1 ]
	run grep -c getdents64 "$BATS_TEST_TMPDIR/st"
	echo "getdents64 calls in the other agents: $output"
	[ "$output" = 0 ]
	kill -TERM "$watcher" "${others[@]}"; wait
}

@test "agents of other roles do not swallow the wake: a cpu item wakes the cpu agent" {
	SW_POLL=1m sw-agent run --roles gpu --idle-exit 20s --quiet -- true &
	gpu=$!
	sleep 0.4   # the gpu agent watches first
	SW_POLL=1m sw-agent run --roles cpu --max-items 1 --idle-exit 20s --quiet -- true &
	cpu=$!
	sleep 0.4
	sw-claim add -r cpu --quiet '"x"'
	for ((i = 0; i < 30; i++)); do [ "$(count done)" = 1 ] && break; sleep 0.1; done
	[ "$(count done)" = 1 ]
	wait "$cpu"
	kill -TERM "$gpu"; wait "$gpu"
}

@test "a SIGKILLed watcher is replaced: the next idle agent on this host takes over its watch" {
	SW_POLL=1m sw-agent run --idle-exit 30s --quiet -- true &
	first=$!
	sleep 0.4   # the first agent watches
	SW_POLL=1m sw-agent run --idle-exit 30s --max-items 1 --quiet -- true &
	second=$!
	sleep 0.4
	kill -KILL "$first"; wait "$first" || true
	sleep 0.1
	items x
	# within the takeover interval (6 s at most), not the minute's poll
	for ((i = 0; i < 80; i++)); do [ "$(count done)" = 1 ] && break; sleep 0.1; done
	[ "$(count done)" = 1 ]
	wait "$second"
}

@test "a retry falling due is taken when due, not at the next poll" {
	items x
	# fails on its first attempt; the retry is due after 100-200 ms
	SW_POLL=1m SW_BACKOFF_BASE=200ms run --separate-stderr \
		sw-agent run --idle-exit 3s --max-items 2 --quiet -- sh -c '[ "$SW_ATTEMPT" -gt 1 ]'
	assert_success
	[ "$(count done)" = 1 ]
	run jq -r .attempt <<<"$(sw-claim list --state done)"
	assert_output 2
}

@test "any bytes on stderr make a valid error; a result too big for the item is cut to fit" {
	items x
	run --separate-stderr sw-agent run --once --quiet -- sh -c 'printf "caf\303\251 \377bad\000nul" >&2; exit 3'
	[ "$status" -eq 3 ]
	run jq -r .last_error <<<"$(sw-claim list --state pending)"
	assert_output "exit status 3: café $(printf '\357\277\275')bad nul"
	export SW_MAX_ITEM_BYTES=100000
	head -c 95000 /dev/zero | tr '\0' a | jq -R -c '{payload: .}' | sw-claim add -q big --quiet
	run --separate-stderr sw-agent run -q big --once --quiet -- sh -c 'cat; cat /etc/services'
	assert_success
	run --separate-stderr sw-claim show -q big "$(sw-claim list -q big | jq -r .id)"
	assert_success
	[ "$(jq -r .state <<<"$output")" = done ]
	[ "$(jq -r '.result | length' <<<"$output")" -gt 1000 ]
	# control bytes take 6 bytes each once escaped: cut to fit all the same
	sw-claim add -q esc --quiet '{"x":1}'
	run --separate-stderr sw-agent run -q esc --once --quiet -- sh -c 'head -c 60000 /dev/zero | tr "\0" "\1"'
	assert_success
	[ "$(sw-claim stats -q esc | jq .done)" = 1 ]
	# and sw-claim refuses (65) what would make an item unreadable
	head -c 95000 /dev/zero | tr '\0' b | jq -R -c '{payload: .}' | sw-claim add -q big2 --quiet
	tok=$(sw-claim next -q big2 | jq -r .token); id=$(sw-claim list -q big2 | jq -r .id)
	run --separate-stderr sw-claim done -q big2 "$id" --token "$tok" --result "$(head -c 120000 /dev/zero | tr '\0' c | jq -R .)"
	[ "$status" -eq 65 ]
	[ "$(sw-claim list -q big2 --state claimed | grep -c .)" = 1 ]
}

@test "several idle agents: one new item is taken by one of them; the rest keep waiting" {
	pids=()
	for i in 1 2 3 4; do
		SW_POLL=1m sw-agent run --id w$i --max-items 1 -- true >"$BATS_TEST_TMPDIR/w$i.out" 2>/dev/null &
		pids+=($!)
	done
	sleep 0.6
	items x
	for ((i = 0; i < 50; i++)); do [ "$(count done)" = 1 ] && break; sleep 0.1; done
	items y
	for ((i = 0; i < 50; i++)); do [ "$(count done)" = 2 ] && break; sleep 0.1; done
	[ "$(count done)" = 2 ]
	[ "$(cat "$BATS_TEST_TMPDIR"/w*.out | grep -c '"state":"done"')" = 2 ]
	kill -TERM "${pids[@]}"
	wait
}

@test "--spans writes a span for the run and one per item, children of TRACEPARENT" {
	items x
	export TRACEPARENT=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01
	run --separate-stderr sw-agent run --once --quiet --spans=stderr -- true
	assert_success
	[ "$(grep -c resourceSpans <<<"$stderr")" = 2 ]
	run jq -r '.resourceSpans[0].scopeSpans[0].spans[0] | [.name, .traceId] | @tsv' <<<"$stderr"
	assert_line "$(printf 'sw-agent item\t0af7651916cd43dd8448eb211c80319c')"
	assert_line "$(printf 'sw-agent run\t0af7651916cd43dd8448eb211c80319c')"
}

@test "a reader that goes away (| head -1) does not stop the work" {
	seq 1 30 | sw-claim add --lines --quiet
	run --separate-stderr bash -c 'sw-agent run --idle-exit 0 -- cat | head -1; echo "rc=${PIPESTATUS[0]}"'
	assert_line --index 1 "rc=0"
	[ "$(count done)" = 30 ]
}

@test "a running agent's record names its queue, jobs, command and pid" {
	sw-claim add -q q1 --quiet '"x"'
	sw-agent run -q q1 --id r1 -j 3 --quiet -- sleep 2 &
	pid=$!
	track "$pid"
	wait_until 20 listed_alive r1
	run --separate-stderr sw-agent list --alive
	run jq -c '[.queue, .jobs, .command, .pid]' <<<"$output"
	assert_output "[\"q1\",3,[\"sleep\",\"2\"],$pid]"
	kill -TERM "$pid"
	wait "$pid"
}

# ---- the claim outlives the command's whole process tree ---------------------

claimed_is() { [ "$(count claimed)" = "$1" ]; }
listed_alive() { sw-agent list --alive | jq -e --arg id "$1" 'select(.id == $id)' >/dev/null; }
pending_is() { [ "$(count pending)" = "$1" ]; }

@test "forced stop: a grandchild that ignores SIGTERM is SIGKILLed after the kill delay, and only then is the item released" {
	cd "$BATS_TEST_TMPDIR"
	items x
	start_bg gc sw-agent run --quiet -- sh -c 'sh -c "trap \"\" TERM; echo \$\$ >gc; exec sleep 30" & wait'
	kill -TERM "$pid"; sleep 0.1; kill -TERM "$pid"
	while_alive "$gc" 10 claimed_is 1
	echo "grandchild gone after $ms ms"
	[ "$ms" -ge 4000 ]
	reap_job "$pid" 5
	[ "$st" -eq 143 ]
	[ "$(count pending)" = 1 ]
	[ "$(count claimed)" = 0 ]
}

@test "forced stop: a grandchild that called setsid gets the SIGTERM too, and the item is released only after it is gone" {
	cd "$BATS_TEST_TMPDIR"
	items x
	# on SIGTERM it says so, then takes a while to exit: long enough for
	# a look at the claim on a loaded machine, shorter than the 5 s to
	# the SIGKILL
	start_bg gc sw-agent run --quiet -- sh -c '
		setsid sh -c "trap \": >termed; sleep 3; exit\" TERM; echo \$\$ >gc; while :; do sleep 0.1; done" &
		wait'
	kill -TERM "$pid"; sleep 0.1; kill -TERM "$pid"
	while_alive "$gc" 20 claimed_is 1
	echo "grandchild gone after $ms ms"
	[ -e termed ]      # it got SIGTERM, not only the SIGKILL 5 s later
	reap_job "$pid" 5
	[ "$st" -eq 143 ]
	[ "$(count pending)" = 1 ]
}

@test "a command that exits leaving a setsid grandchild: its item is done only when the grandchild exits, the claim renewed meanwhile" {
	cd "$BATS_TEST_TMPDIR"
	items x
	# the grandchild carries the item's environment, which tells the agent
	# whose it is once it has left the command's group; it exits when
	# told, after the checks
	start_bg gc sw-agent run --once --ttl 1s -- sh -c '
		setsid sh -c "echo \$\$ >gc; while [ ! -e go ]; do sleep 0.05; done; echo \$SW_ITEM_ID >done" </dev/null >/dev/null 2>&1 &
		echo result'
	sleep 1.8       # past the claim's 1 s lease
	[ "$(count claimed)" = 1 ]
	run --separate-stderr sw-agent reap
	refute_output --partial claims_reaped
	: >go
	reap_job "$pid" 20
	[ "$st" -eq 0 ]
	[ -s done ]
	[ "$(count done)" = 1 ]
	[ "$(sw-claim list --state done | jq -r .result)" = result ]
}

@test "SIGKILL of the agent's pid: every command's tree is SIGKILLed at once, and the items are given back" {
	cd "$BATS_TEST_TMPDIR"
	items a b
	sw-agent run -j 2 --quiet -- sh -c '
		echo $$ >>pids
		setsid sh -c "trap \"\" TERM; echo \$\$ >>pids; exec sleep 30" &
		sh -c "trap \"\" TERM; echo \$\$ >>pids; exec sleep 30" &
		wait' 2>/dev/null &
	pid=$!
	track "$pid"
	wait_until 5 lines pids 6
	track $(cat pids)
	t0=$(now_ms)
	kill -KILL "$pid"
	wait_until 10 gone $(cat pids)
	echo "gone after $(( $(now_ms) - t0 )) ms"
	# at once: they ignore SIGTERM, so a SIGTERM first would have left
	# them to the SIGKILL 5 s later
	[ $(( $(now_ms) - t0 )) -lt 5000 ]
	wait_until 10 pending_is 2
}

@test "any payload JSON allows reaches the command: numbers, booleans, null, arrays" {
	for p in 42 true false null '[1,"a"]' '{"k":1}' '"text"' 3.5; do
		sw-claim add -q s "$p" >/dev/null
	done
	run --separate-stderr sw-agent run -q s --idle-exit 0 -- cat
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	sw-claim stats -q s | jq -e '.done == 8'
	sw-claim list -q s --state done | jq -se 'map(select(.payload != .result and (.payload != null or .result != null))) | length == 0'
}

@test "--idle-exit waits while an item is claimed elsewhere: it comes back when its holder dies, and is done" {
	sw-claim add -q w '"late"' >/dev/null
	sw-claim next -q w --ttl 2s >/dev/null   # a holder that dies: nobody renews it
	start=$(date +%s)
	run --separate-stderr timeout 30 sw-agent run -q w --idle-exit 1s -- cat
	[ "$status" -eq 0 ]
	[ "$(sw-claim show -q w "$(sw-claim list -q w | jq -r .id)" | jq -r .state)" = done ]
	[ $(( $(date +%s) - start )) -ge 2 ]
}

# ---- dead at once on this host; reap --force; --heartbeat-ttl ---------------

dead_is() { [ "$(sw-agent list --dead | jq -r .id | paste -sd,)" = "$1" ]; }
# agent_bg ID N RUN-ARGS...: sw-agent run --id ID in the background ($pid,
# tracked; $worker its working process) until its record names N claims
agent_bg() {
	local id=$1 n=$2
	shift 2
	sw-agent run --id "$id" "$@" &
	pid=$!
	track "$pid"
	wait_until 20 claims_are "$id" "$n"
	worker=$(pgrep -P "$pid" -x sw-agent)
}

@test "an agent killed on this host is dead at once: list shows it, reap frees its claims, no heartbeat ttl to wait out" {
	sw-claim add --timeout 1h --quiet '"a"'
	sw-claim add --timeout 1h --quiet '"b"'
	agent_bg k2 2 -j 2 --quiet -- sleep 30
	run --separate-stderr sw-agent list --alive
	assert_output --partial '"id":"k2"'
	# the worker, which holds the claims, is SIGKILLed; the guardian kills
	# the commands and exits: nothing of the agent is left
	kill -KILL "$worker"
	reap_job "$pid" 5
	wait_until 2 dead_is k2
	run jq -r .dead_reason <<<"$(sw-agent list --dead)"
	assert_output process_gone
	run --separate-stderr sw-agent reap
	assert_success
	run jq -c '[.id, .claims_freed]' <<<"$output"
	assert_line '["k2",2]'
	[ "$(count claimed)" = 0 ]
	[ "$(count pending)" = 2 ]
}

@test "kill -9 of both of run's processes: dead at once all the same" {
	items a
	agent_bg k3 1 --quiet -- sleep 30
	track $(tree_pids "$worker")
	kill -KILL "$worker" "$pid"   # the worker first: see "--batch: kill -9 of the whole agent"
	wait_until 2 dead_is k3
	run --separate-stderr sw-agent reap
	run jq -c '[.id, .claims_freed]' <<<"$output"
	assert_line '["k3",1]'
}

@test "a worker gone while its guardian still kills the commands: alive until the guardian is gone too" {
	items a
	agent_bg k4 1 --quiet -- sleep 30
	kill -STOP "$pid"        # the guardian, held before it can clean up
	kill -KILL "$worker"
	sleep 0.5
	run --separate-stderr sw-agent list --alive
	assert_output --partial '"id":"k4"'
	run --separate-stderr sw-agent reap
	refute_output --partial '"reaped"'
	kill -CONT "$pid"
	reap_job "$pid" 5
	wait_until 2 dead_is k4
}

@test "register --pid: the agent is dead as soon as that process is gone; without it, the heartbeat alone says" {
	sleep 60 &
	p=$!
	track "$p"
	run --separate-stderr sw-agent register --id s1 --pid "$p"
	assert_success
	run jq -r '[.pid, .alive, (.owner | test("^[0-9a-f]{12}-[0-9]+-[0-9]+$"))] | @tsv' <<<"$output"
	assert_output "$(printf '%s\ttrue\ttrue' "$p")"
	sw-agent register --id s2 >/dev/null
	kill -KILL "$p"; wait "$p" || true
	run --separate-stderr sw-agent list --dead
	assert_output --partial '"id":"s1"'
	refute_output --partial '"id":"s2"'
	run --separate-stderr sw-agent register --id s3 --pid 4194304
	[ "$status" -eq 64 ]
	[ "$stderr" = "sw-agent: register: --pid 4194304: no such process on this host" ]
}

@test "reap --force ID forgets a live agent and fails its claims; reap ID alone and --force alone are usage errors" {
	sw-claim add --timeout 1h --quiet '"a"'
	sw-agent register --id f1 >/dev/null
	agent_bg f2 1 --ttl 3s --grace 500ms --quiet -- sleep 30
	run --separate-stderr sw-agent reap f1
	[ "$status" -eq 64 ]
	run --separate-stderr sw-agent reap --force
	[ "$status" -eq 64 ]
	run --separate-stderr sw-agent reap --force f2 ghost
	[ "$status" -eq 1 ]
	[ "$stderr" = "sw-agent: reap: no agent 'ghost'" ]
	run jq -c '[.id, .alive, .claims_freed]' <<<"$output"
	assert_line '["f2",true,1]'
	# pending, or claimed again already by f2, which lives on (a claim
	# during the list may show it in both states: each says so)
	run jq -sr 'map(.last_error) | unique[]' <<<"$(sw-claim list --state all)"
	assert_output "agent f2 was reaped by force"
	run --separate-stderr sw-agent reap --force f1
	assert_success
	assert_line --partial '"id":"f1"'
	kill -TERM "$pid"
	reap_job "$pid" 10
}

@test "--ttl is the claim lease, --heartbeat-ttl the agent's: two options, never one for both" {
	cd "$BATS_TEST_TMPDIR"
	items x
	# the command ends when told, after the looks at the record and claim
	agent_bg h1 1 --ttl 5s --heartbeat-ttl 7s --max-items 1 --quiet -- sh -c 'while [ ! -e go ]; do sleep 0.05; done'
	run jq -r .ttl <<<"$(sw-agent list)"
	assert_output 7
	exp=$(sw-claim list --state claimed | jq '((.lease_expires_at_unix_ns | tonumber) - now * 1e9) / 1e9 | round')
	[ "$exp" -le 5 ]
	[ "$exp" -ge 3 ]
	: >go
	reap_job "$pid" 10
	run --separate-stderr sw-agent register --id h2 --heartbeat-ttl 9s
	run jq -r .ttl <<<"$output"
	assert_output 9
	sw-agent --help | grep -q -- '--heartbeat-ttl DUR'
}

# ---- the command's stderr: passed through, --tag, --log-dir, the error ------

@test "the command's stderr is passed through line by line; with -j, lines of items running at once never mix" {
	items a b c d
	# each writes a long line in small pieces, slowly, while the others do
	run --separate-stderr sw-agent run -j 4 --idle-exit 0 --quiet -- sh -c '
		x=$(cat); for i in 1 2 3 4 5; do printf "%s%s" "$x" "$x" >&2; sleep 0.05; done
		printf " end of %s\n" "$x" >&2; printf "last %s" "$x" >&2'
	assert_success
	[ -z "$output" ]
	for x in a b c d; do
		grep -qx "$x$x$x$x$x$x$x$x$x$x end of $x" <<<"$stderr" || { echo "$stderr"; return 1; }
		grep -qx "last $x" <<<"$stderr"         # a last line without its newline gets one
	done
	[ "${#stderr_lines[@]}" -eq 8 ]
}

@test "--tag puts the item id and a tab before each stderr line, like parallel --tag" {
	sw-claim add --id it-1 --quiet '"x"'
	run --separate-stderr sw-agent run --once --tag --quiet -- sh -c 'echo one >&2; echo two >&2'
	assert_success
	[ "$stderr" = "$(printf 'it-1\tone\nit-1\ttwo')" ]
}

@test "a failed item's line on stdout carries its error; a done item's has none" {
	sw-claim add --id e1 --quiet '"bad"'
	sw-claim add --id e2 --quiet '"good"'
	run --separate-stderr sw-agent run --idle-exit 0 -- sh -c '[ "$(cat)" = good ] || { echo "no good" >&2; exit 3; }'
	assert_success
	run jq -r '[.id, .state, .error // "-"] | @tsv' <<<"$output"
	assert_line "$(printf 'e1\tpending\texit status 3: no good')"
	assert_line "$(printf 'e2\tdone\t-')"
}

@test "--log-dir keeps each attempt's whole stderr in DIR/ID.ATTEMPT.log, named in its line" {
	cd "$BATS_TEST_TMPDIR"
	sw-claim add --id l1 --max-attempts 2 --quiet '"x"'
	export SW_BACKOFF_BASE=10ms
	# 10 000 lines: far more than the 2 KiB tail the error keeps
	run --separate-stderr sw-agent run --log-dir logs --max-items 2 --idle-exit 5s --poll 100ms -- \
		sh -c 'seq 1 10000 >&2; echo "attempt $SW_ATTEMPT" >&2; exit 1'
	assert_success
	[ "$(seq 1 10000; echo 'attempt 1')" = "$(cat logs/l1.1.log)" ]
	[ "$(tail -1 logs/l1.2.log)" = "attempt 2" ]
	run jq -r .log <<<"$output"
	assert_line "$BATS_TEST_TMPDIR/logs/l1.1.log"
	assert_line "$BATS_TEST_TMPDIR/logs/l1.2.log"
	# a directory that cannot be made: one line naming it, before any claim
	run --separate-stderr sw-agent run --log-dir /proc/nope --once -- true
	[ "$status" -eq 73 ]
	[[ "$stderr" == "sw-agent: run: --log-dir /proc/nope: "* ]]
}

# ---- {} {id} {attempt} in ARGS; --joblog ---------------------------------------

@test "{} {id} {attempt} in ARGS are the payload, the item id and the attempt, never through a shell; with {}, stdin is empty" {
	rm -f "$BATS_TEST_TMPDIR/pwned"
	sw-claim add --id s1 --quiet "$(jq -nc --arg p "a b; touch $BATS_TEST_TMPDIR/pwned" '$p')"
	sw-claim add --id s2 --quiet '{"k":[1,2]}'
	sw-claim add --id s3 --quiet null
	run --separate-stderr sw-agent run --idle-exit 0 --quiet -- \
		sh -c 'printf "%s|%s|%s|%s" "$1" "$2" "$3" "$(cat)"' sh {} "<{id}>" "n{attempt}"
	assert_success
	[ ! -e "$BATS_TEST_TMPDIR/pwned" ]
	run jq -r '.result' <<<"$(sw-claim list --state done)"
	assert_line "a b; touch $BATS_TEST_TMPDIR/pwned|<s1>|n1|"
	assert_line '{"k":[1,2]}|<s2>|n1|'
	assert_line '|<s3>|n1|'
	# without {}, the payload is still stdin
	sw-claim add --id s4 --quiet '"in"'
	run --separate-stderr sw-agent run --once --quiet -- sh -c 'printf "%s %s" "$0" "$(cat)"' "{id}"
	assert_success
	[ "$(sw-claim show s4 | jq -r .result)" = "s4 in" ]
}

@test "a payload that cannot be an argument (a NUL byte) fails its item alone; --once then exits 65" {
	sw-claim add --id n1 --quiet '"a\u0000b"'
	sw-claim add --id n2 --quiet '"fine"'
	run --separate-stderr sw-agent run --idle-exit 0 -- echo {}
	assert_success
	run jq -r '[.id, .state, .error // "-"] | @tsv' <<<"$output"
	assert_line "$(printf 'n1\tpending\tits payload cannot be given to the command: it holds a NUL byte, which no argument can')"
	assert_line --partial "$(printf 'n2\tdone')"
	sw-claim add --id n3 --quiet '"c\u0000d"'
	run --separate-stderr sw-agent run --once --quiet -- echo {}
	[ "$status" -eq 65 ]
}

@test "--joblog writes GNU parallel's joblog: a header, then Seq Host Starttime JobRuntime Send Receive Exitval Signal Command" {
	cd "$BATS_TEST_TMPDIR"
	sw-claim add --id j1 --quiet '"a b"'
	sw-claim add --id j2 --quiet "\"it's\""
	sw-claim add --id j3 --quiet '"kill"'
	t0=$(date +%s)
	run --separate-stderr sw-agent run --joblog jl --idle-exit 0 --quiet -- \
		sh -c '[ "$1" = kill ] && kill -9 $$; exit 3' sh {}
	assert_success
	[ "$(head -1 jl)" = "$(printf 'Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand')" ]
	[ "$(wc -l <jl)" = 4 ]
	run awk -F'\t' 'NR > 1 { print $1 "|" $2 "|" $5 "|" $6 "|" $7 "|" $8 "|" $9 }' jl
	assert_line "1|:|0|0|3|0|sh -c '[ \"\$1\" = kill ] && kill -9 \$\$; exit 3' sh 'a b'"
	assert_line "2|:|0|0|3|0|sh -c '[ \"\$1\" = kill ] && kill -9 \$\$; exit 3' sh 'it'\"'\"'s'"
	assert_line "3|:|0|0|0|9|sh -c '[ \"\$1\" = kill ] && kill -9 \$\$; exit 3' sh kill"
	awk -F'\t' -v t0="$t0" 'NR > 1 && !($3 >= t0 && $3 < t0 + 60 && $3 ~ /^[0-9]+\.[0-9][0-9][0-9]$/ && $4 ~ /^ *[0-9]+\.[0-9][0-9][0-9]$/) { exit 1 }' jl
	# +FILE appends (no second header); FILE alone empties it first
	sw-claim add --id j4 --quiet '"x"'
	sw-agent run --joblog +jl --once --quiet -- true
	[ "$(wc -l <jl)" = 5 ]
	[ "$(grep -c ^Seq jl)" = 1 ]
	sw-claim add --id j5 --quiet '"x"'
	sw-agent run --joblog jl --once --quiet -- true
	[ "$(wc -l <jl)" = 2 ]
	run --separate-stderr sw-agent run --joblog /proc/nope/jl --once -- true
	[ "$status" -eq 73 ]
	[[ "$stderr" == "sw-agent: run: --joblog /proc/nope/jl: "* ]]
}

@test "--quiet silences the answers (75: nothing to claim, 1: no such agent), not the errors; the exit status still says it" {
	run --separate-stderr sw-agent run --once --quiet -- true
	[ "$status" -eq 75 ]
	[ -z "$stderr" ]
	run --separate-stderr sw-agent run --once -- true
	[ "$status" -eq 75 ]
	[ "$stderr" = "sw-agent: run: nothing to claim in queue 'default'" ]
	for v in heartbeat deregister; do
		run --separate-stderr sw-agent "$v" ghost --quiet
		[ "$status" -eq 1 ]
		[ -z "$stderr" ]
	done
	run --separate-stderr sw-agent reap --force ghost --quiet
	[ "$status" -eq 1 ]
	[ -z "$stderr" ]
	items x
	run --separate-stderr sw-agent run --once --quiet -- /nonexistent/cmd
	[ "$status" -eq 69 ]
	[[ "$stderr" == *"cannot run '/nonexistent/cmd'"* ]]
}

@test "0 means the same everywhere: --ttl 0 and --heartbeat-ttl 0 are refused with one line (64), as in sw-lease" {
	for v in "run --ttl 0 -- true" "run --heartbeat-ttl 0s -- true" "register --ttl 0" "register --heartbeat-ttl 0ms"; do
		run --separate-stderr sw-agent $v
		[ "$status" -eq 64 ] || { echo "$v: $status"; return 1; }
		[[ "$stderr" =~ ^"sw-agent: "[a-z]+": bad --"(heartbeat-)?"ttl '0"[a-z]*"': want at least 1s (see sw-agent --help)"$ ]] ||
			{ echo "$v: $stderr"; return 1; }
	done
}

@test "a relative -d is made absolute before it is handed to the command as SW_DIR" {
	mkdir -p "$BATS_TEST_TMPDIR/here"
	cd "$BATS_TEST_TMPDIR/here"
	sw-claim add -d rel --quiet '"x"'
	run --separate-stderr sw-agent run -d rel --once -- sh -c 'cd / && echo "$SW_DIR" && sw-claim list --state claimed | jq -r .payload'
	assert_success
	[ "$(sw-claim show -d rel "$(sw-claim list -d rel | jq -r .id)" | jq -r .result)" = "$BATS_TEST_TMPDIR/here/rel
x" ]
}

@test "permission errors name the file or directory" {
	[ "$(id -u)" = 0 ] || skip "needs root to act as another user"
	local top
	top=$(mktemp -d /tmp/sw-agent-test.XXXXXX)
	chmod 0755 "$top"
	export SW_DIR=$top/ws
	sw-agent register --id a >/dev/null
	items x
	chmod 0755 "$SW_DIR"
	as_nobody() { run --separate-stderr setpriv --reuid nobody --regid nogroup --clear-groups "$@"; }
	as_nobody sw-agent register --id b
	[ "$status" -eq 77 ]
	[ "$stderr" = "sw-agent: register: cannot write agent record $SW_DIR/agents/b.json: Permission denied" ]
	as_nobody sw-agent heartbeat a
	[ "$status" -eq 77 ]
	[[ "$stderr" == "sw-agent: heartbeat: cannot heartbeat $SW_DIR/agents/a.json: "* ]]
	as_nobody sw-agent deregister a
	[ "$status" -eq 77 ]
	[[ "$stderr" == *"$SW_DIR/agents/a.json: Permission denied" ]]
	as_nobody sw-agent run --once -- true
	[ "$status" -eq 77 ]
	[[ "$stderr" == "sw-agent: run: queue $SW_DIR/queues/default: "*"Permission denied" ]]
	as_nobody sw-agent run --once --log-dir "$top/logs" -- true
	[ "$status" -eq 77 ]
	[ "$stderr" = "sw-agent: run: --log-dir $top/logs: Permission denied" ]
	chmod 0700 "$SW_DIR"
	as_nobody sw-agent list
	[ "$status" -eq 77 ]
	[ "$stderr" = "sw-agent: list: workspace $SW_DIR: Permission denied" ]
	rm -rf "$top"
}

@test "an item that waited for others gets their results in the file SW_DEPS_RESULTS names, removed after" {
	sw-claim add -q dr --id s1 '"one"' >/dev/null
	sw-claim add -q dr --id s2 '"two"' >/dev/null
	sw-claim add -q dr --id comb --after s1,s2 '"combine"' >/dev/null
	# the shards: each prints its payload doubled as its result
	sw-agent run -q dr --max-items 2 -- sh -c 'p=$(cat); echo "$p$p"' >/dev/null
	run sw-agent run -q dr --once -- sh -c \
		'jq -c "{id, state, result}" "$SW_DEPS_RESULTS"; echo "$SW_DEPS_RESULTS" >&2'
	[ "$status" -eq 0 ]
	res=$(sw-claim show -q dr comb | jq -r .result)
	[ "$(printf '%s\n' "$res" | head -2)" = "$(printf '%s\n' '{"id":"s1","state":"done","result":"oneone"}' '{"id":"s2","state":"done","result":"twotwo"}')" ]
	path=$(printf '%s\n' "${lines[@]}" | grep '^/' | head -1)
	[ -n "$path" ]
	[ ! -e "$path" ]
	# an item without --after gets no such variable
	sw-claim add -q dr '"x"' >/dev/null
	sw-agent run -q dr --once -- sh -c 'echo "[${SW_DEPS_RESULTS-unset}]"' >/dev/null
	[ "$(sw-claim list -q dr --state done | jq -r 'select(.payload == "x") | .result')" = "[unset]" ]
}

# ---- --batch ------------------------------------------------------------

@test "--batch N: up to N items per command, on its stdin as JSON Lines; SW_BATCH_SIZE and SW_BATCH_ID, no SW_ITEM_ID" {
	mkdir "$BATS_TEST_TMPDIR/got"
	items a b c d e
	run --separate-stderr sw-agent run --batch 2 --idle-exit 0 -- \
		sh -c 'f=$(mktemp -p "$0"); { echo "$SW_BATCH_SIZE ${#SW_BATCH_ID} ${SW_ITEM_ID-none} ${SW_ITEM_TOKEN-none}"; cat; } >"$f"' \
		"$BATS_TEST_TMPDIR/got"
	assert_success
	[ "$(grep -c '"state":"done"' <<<"$output")" = 5 ]
	# three commands: 2, 2 and 1 items, each an item object a line
	run sh -c "head -qn1 '$BATS_TEST_TMPDIR'/got/* | sort"
	assert_output "$(printf '1 16 none none\n2 16 none none\n2 16 none none')"
	run sh -c "tail -qn+2 '$BATS_TEST_TMPDIR'/got/* | jq -r '[.payload, (.token|type), .attempt, .state] | @tsv' | sort"
	assert_output "$(printf '%s\tnumber\t1\tclaimed\n' a b c d e)"
	[ "$(count done)" = 5 ]
	# the claims the command was given are the ones it holds
	[ "$(sw-claim list --state done | jq -r .id | sort)" = "$(tail -qn+2 "$BATS_TEST_TMPDIR"/got/* | jq -r .id | sort)" ]
}

@test "--batch refuses {} {id} {attempt} (64); --batch-wait needs --batch; --once --batch runs one batch" {
	run --separate-stderr sw-agent run --batch 2 -- echo {}
	[ "$status" -eq 64 ]
	run --separate-stderr sw-agent run --batch 2 -- echo {id}
	[ "$status" -eq 64 ]
	run --separate-stderr sw-agent run --batch-wait 1s -- cat
	[ "$status" -eq 64 ]
	run --separate-stderr sw-agent run --batch 0 -- cat
	[ "$status" -eq 64 ]
	items a b c
	run --separate-stderr sw-agent run --once --batch 2 -- sh -c 'cat >/dev/null; exit 3'
	[ "$status" -eq 3 ]
	[ "$(grep -c '"state":"pending"' <<<"$output")" = 2 ]
	[ "$(count pending)" = 3 ]
	# one batch of two ran (and failed); the third item was never claimed
	[ "$(sw-claim list --state pending | jq -r '[.payload, .attempt] | @tsv' | sort | paste -sd,)" = "$(printf 'a\t1,b\t1,c\t0')" ]
}

@test "--batch: per-item outcomes on stdout; only the failed items are retried, on attempt 2; items not named take the exit status" {
	export SW_BACKOFF_BASE=10ms
	printf '%s\n' 1 2 3 4 5 6 | sw-claim add --lines --quiet
	# odd: done with a result; 2 and 4 failed (on their first attempt); 6
	# not named: the exit status (0)
	run --separate-stderr sw-agent run --batch 6 --max-items 8 --idle-exit 2s --poll 50ms -- sh -c '
		jq -c "(.payload|tonumber) as \$n | if \$n == 6 then empty
			elif \$n % 2 == 1 or .attempt > 1 then {id, ok: true, result: {n: \$n, attempt: .attempt}}
			else {id, ok: false, error: \"even \(\$n)\"} end"
		echo "not an outcome line"'
	assert_success
	run sw-claim list --state done
	run jq -sc 'map([.payload, .result]) | sort' <<<"$output"
	assert_output '[["1",{"n":1,"attempt":1}],["2",{"n":2,"attempt":2}],["3",{"n":3,"attempt":1}],["4",{"n":4,"attempt":2}],["5",{"n":5,"attempt":1}],["6",null]]'
	[ "$(count done)" = 6 ]
}

@test "--batch: with no outcome lines the exit status applies to the whole batch: 75 releases, other codes fail with the stderr tail" {
	export SW_BACKOFF_BASE=10ms
	items a b c
	run --separate-stderr sw-agent run --once --batch 5 -- sh -c 'cat >/dev/null; exit 75'
	[ "$status" -eq 75 ]
	[ "$(grep -c '"state":"released"' <<<"$output")" = 3 ]
	run --separate-stderr sw-agent run --once --batch 5 -- sh -c 'cat >/dev/null; echo broken >&2; exit 4'
	[ "$status" -eq 4 ]
	[ "$(grep -c '"state":"pending"' <<<"$output")" = 3 ]
	run sw-claim list --state pending
	[ "$(jq -r '[.attempt, .last_error] | @tsv' <<<"$output" | sort -u)" = "$(printf '1\texit status 4: broken')" ]
	# one failed line, the rest by the exit status 0 (once their retry is due)
	run --separate-stderr sw-agent run --once --idle-exit 3s --poll 50ms --batch 5 --batch-wait 500ms -- sh -c 'read -r l; echo "{\"id\":$(echo "$l" | jq .id),\"ok\":false}"; cat >/dev/null'
	assert_success
	[ "$(grep -c '"state":"done"' <<<"$output")" = 2 ]
	[ "$(count done)" = 2 ]
}

@test "--batch-wait gathers items added shortly after the first, into one batch" {
	mkdir "$BATS_TEST_TMPDIR/got"
	items a
	( sleep 0.3; items b c ) &
	run --separate-stderr sw-agent run --once --batch 3 --batch-wait 5s -- \
		sh -c 'cat >"$(mktemp -p "$0")"' "$BATS_TEST_TMPDIR/got"
	assert_success
	wait
	[ "$(ls "$BATS_TEST_TMPDIR/got" | wc -l)" = 1 ]
	[ "$(jq -r .payload "$BATS_TEST_TMPDIR"/got/* | paste -sd,)" = a,b,c ]
	# without it, the batch starts with what there is: e comes once d
	# is claimed, and the command ends only after that
	items d
	( wait_until 20 claimed_is 1 && items e; rc=$?; : >"$BATS_TEST_TMPDIR/go"; exit $rc ) &
	adder=$!
	run --separate-stderr sw-agent run --once --batch 3 -- \
		sh -c 'while [ ! -e "$0/go" ]; do sleep 0.05; done; cat' "$BATS_TEST_TMPDIR"
	wait "$adder"
	[ "$(grep -c '"state":"done"' <<<"$output")" = 1 ]
	# and not longer than the wait when no more come
	items f
	t0=$(now_ms)
	run --separate-stderr sw-agent run --once --batch 3 --batch-wait 300ms -- cat
	[ "$(grep -c '"state":"done"' <<<"$output")" = 2 ]
	[ $(( $(now_ms) - t0 )) -lt 3000 ]
}

@test "--batch: the claims of every item are renewed while the batch runs past its ttl, and the record names them all" {
	sw-claim add --quiet --timeout 1 '"x"'
	sw-claim add --quiet --timeout 1 '"y"'
	agent_bg bslow 2 --batch 2 --idle-exit 0 --quiet --ttl 1s -- sh -c 'sleep 2.5; cat >/dev/null'
	sleep 1.7
	# past the first lease and the skew margin: a reaper finds nothing to take
	run --separate-stderr sw-agent reap
	refute_output --partial claims_reaped
	reap_job "$pid" 5
	[ "$st" = 0 ]
	[ "$(count done)" = 2 ]
	[ "$(sw-claim list --state done | jq -r .attempt | sort -u)" = 1 ]
}

@test "--batch: kill -9 of the whole agent: its batch is claimable again after the lease, nothing lost" {
	printf '%s\n' 1 2 3 | sw-claim add --lines --quiet
	agent_bg bk 3 --batch 3 --quiet --ttl 1s -- sleep 30
	track $(tree_pids "$worker")
	# both, the worker first, as a host crash kills them at once: killed
	# second (even stopped: the guardian's death makes its group an
	# orphaned one, which the kernel sends SIGHUP and SIGCONT), the worker
	# may see its guardian die and give the batch back (attempt 1)
	kill -KILL "$worker" "$pid"
	# no reap: the leases run out, and another agent takes the batch
	SW_CLOCK_SKEW=200ms run --separate-stderr sw-agent run --batch 3 --idle-exit 3s --poll 100ms -- cat
	assert_success
	run sw-claim list --state done
	[ "$(jq -r '[.payload, .attempt] | @tsv' <<<"$output" | sort | paste -sd,)" = "$(printf '1\t2,2\t2,3\t2')" ]
	[ "$(count pending)" = 0 ]
}

@test "--batch-wait: the items gathered are in the record meanwhile, and SIGTERM gives them back" {
	items a b c
	agent_bg bg 3 --batch 10 --batch-wait 1m --quiet -- cat
	kill -TERM "$pid"
	reap_job "$pid" 5
	[ "$st" = 0 ]
	[ "$(count pending)" = 3 ]
	# released: no attempt counted
	[ "$(sw-claim list --state pending | jq -r .attempt | sort -u)" = 0 ]
}

@test "run finds its command in PATH as execvp would: the first executable file of that name, a directory or a file without x skipped" {
	local d=$BATS_TEST_TMPDIR
	mkdir -p "$d/p1/job" "$d/p2" "$d/p3"
	printf '#!/bin/sh\necho p2\n' >"$d/p2/job"               # not executable
	printf '#!/bin/sh\necho p3 "$@"\n' >"$d/p3/job"
	chmod +x "$d/p3/job"
	items a b
	PATH="$d/p1:$d/p2:$d/p3:$PATH" run --separate-stderr sw-agent run --quiet --idle-exit 0 -- job x
	assert_success
	[ "$(sw-claim list --state done | jq -r .result | paste -sd,)" = "p3 x,p3 x" ]
	# no file to run (only a directory of that name): the run cannot start it (69), the item stays
	items c
	run --separate-stderr env PATH="$d/p1" "$(command -v sw-agent)" run --quiet --idle-exit 0 -- job
	[ "$status" -eq 69 ]
	[[ $stderr == *"cannot run 'job'"* ]]
	[ "$(count pending)" -eq 1 ]
}

@test "a claim whose file is replaced while its command runs is read again when it finishes: the damage is found and moved aside, not covered by what the claim read" {
	items x
	# the agent keeps what its claim read, and trusts it only for the
	# same file (a rename keeps the file; this replacement does not)
	run sw-agent run --max-items 1 -- sh -c \
		'cd "$SW_DIR/queues/default/claimed" && f=$(ls) && echo "{\"id\":\"garbage" >../.t && mv ../.t "$f"'
	[ "$status" -eq 0 ]
	[[ "$output" == *'is damaged (not JSON) and was moved aside'* ]]
	sw-claim stats | jq -e '.damaged == 1 and .done == 0 and .claimed == 0'
}

@test "an agent's renewals and finishes of its own claims do not read the claim's file again" {
	items a b c
	strace -f -qq -e trace=openat -o "$BATS_TEST_TMPDIR/trace" \
		sw-agent run --max-items 3 --batch 3 --ttl 3s -- sh -c 'cat >/dev/null; sleep 1.5' >/dev/null
	sw-claim stats | jq -e '.done == 3'
	# the claimed files are opened by nobody: the claim reads the pending
	# entry, before its rename into claimed/
	run grep -c 'openat([0-9]*, "[0-9A-Z]*\.[0-9]*\.[0-9]*"' "$BATS_TEST_TMPDIR/trace"
	[ "$output" = 0 ]
}
