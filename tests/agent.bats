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

@test "list --table prints a readable table" {
	sw-agent register --id t1 --roles build >/dev/null
	run --separate-stderr sw-agent list --table
	assert_success
	assert_line --index 0 --regexp '^ID +ALIVE +HOST +CPUS +MEMORY +GPUS +ROLES +LAST HEARTBEAT$'
	assert_line --index 1 --regexp '^t1 +yes +.* build +20'
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
	items a b c d
	sw-agent run --id d1 -j 2 --quiet -- sh -c 'sleep 1; cat' &
	pid=$!
	sleep 0.4
	kill -HUP "$pid"     # ignored
	kill -TERM "$pid"
	wait "$pid"
	[ "$(count done)" = 2 ]
	[ "$(count pending)" = 2 ]
	[ "$(count claimed)" = 0 ]
	[ ! -e "$SW_DIR/agents/d1.json" ]
}

@test "past --grace, or on a second SIGTERM, running items are released at once" {
	items a b
	sw-agent run -j 2 --quiet --grace 500ms -- sleep 30 &
	pid=$!
	sleep 0.4
	kill -TERM "$pid"
	s=$SECONDS
	wait "$pid" || rc=$?
	[ "${rc:-0}" -eq 0 ]
	[ $((SECONDS - s)) -lt 5 ]
	[ "$(count pending)" = 2 ]
	run sw-claim list --state pending
	[ "$(jq -r .attempt <<<"$output" | sort -u)" = 0 ]
	sw-agent run -j 2 --quiet -- sleep 30 &
	pid=$!
	sleep 0.4
	kill -INT "$pid"; sleep 0.1; kill -TERM "$pid"
	rc=0; wait "$pid" || rc=$?
	[ "$rc" -eq 143 ]
	[ "$(count pending)" = 2 ]
	[ "$(count claimed)" = 0 ]
}

@test "a third signal SIGKILLs commands that ignore SIGTERM, without the 5 s wait" {
	items a
	sw-agent run --quiet -- sh -c 'trap "" TERM; sleep 20' &
	pid=$!
	sleep 0.5
	t0=$EPOCHREALTIME
	kill -TERM "$pid"; sleep 0.1; kill -TERM "$pid"; sleep 0.2; kill -TERM "$pid"
	rc=0; wait "$pid" || rc=$?
	ms=$(( (${EPOCHREALTIME/./} - ${t0/./}) / 1000 ))
	[ "$rc" -eq 143 ]
	[ "$ms" -lt 3000 ]
	[ "$(count pending)" = 1 ]
}

@test "an idle agent wakes within 50 ms for a new item on this host, long before its poll" {
	# the command prints when it started: that minus the item's creation
	# is the wake-up latency (median of three; ASan is slower)
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
	med=$(printf '%s\n' "${lat[@]}" | sort -n | sed -n 2p)
	echo "latencies ms: ${lat[*]}"
	[ "$med" -lt "$limit" ]
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
	sleep 0.5
	run --separate-stderr sw-agent list --alive
	run jq -c '[.queue, .jobs, .command, .pid]' <<<"$output"
	assert_output "[\"q1\",3,[\"sleep\",\"2\"],$pid]"
	kill -TERM "$pid"
	wait "$pid"
}

# ---- the claim outlives the command's whole process tree ---------------------

claimed_is() { [ "$(count claimed)" = "$1" ]; }
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
	# it takes a second to act on SIGTERM
	start_bg gc sw-agent run --quiet -- sh -c '
		setsid sh -c "trap \"sleep 1; exit\" TERM; echo \$\$ >gc; while :; do sleep 0.1; done" &
		wait'
	kill -TERM "$pid"; sleep 0.1; kill -TERM "$pid"
	while_alive "$gc" 5 claimed_is 1
	echo "grandchild gone after $ms ms"
	[ "$ms" -lt 3000 ]      # it got SIGTERM, not the SIGKILL 5 s later
	reap_job "$pid" 5
	[ "$st" -eq 143 ]
	[ "$(count pending)" = 1 ]
}

@test "a command that exits leaving a setsid grandchild: its item is done only when the grandchild exits, the claim renewed meanwhile" {
	cd "$BATS_TEST_TMPDIR"
	items x
	# the grandchild carries the item's environment, which tells the agent
	# whose it is once it has left the command's group
	start_bg gc sw-agent run --once --ttl 1s -- sh -c '
		setsid sh -c "echo \$\$ >gc; sleep 2.5; echo \$SW_ITEM_ID >done" </dev/null >/dev/null 2>&1 &
		echo result'
	sleep 1.8       # past the claim's 1 s lease
	[ "$(count claimed)" = 1 ]
	run --separate-stderr sw-agent reap
	refute_output --partial claims_reaped
	reap_job "$pid" 5
	[ "$st" -eq 0 ]
	[ -s done ]
	[ "$(count done)" = 1 ]
	[ "$(sw-claim list --state done | jq -r .result)" = result ]
}

@test "SIGKILL of the agent's pid: every command's tree is gone within a second, and the items are given back" {
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
	kill -KILL "$pid"
	wait_until 1 gone $(cat pids)
	wait_until 3 pending_is 2
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
