#!/usr/bin/env bats
# Keys and affinity: sw-agent run --affinity claims the items of its own
# keys (sw-shard's ring over the live agents of its queue and roles),
# steals others' after --steal-after, and keeps its keys across a restart;
# sw-claim stats --keys and sw-agent list count what each agent owns.
# SW_AFF_ITEMS (make check-long: 20000) sets the size of the first test,
# with one key for every 20 items as in issue 13.
load helper
load proc

teardown() { untrack_all; }

# keyed N K: N items, item i with key "k(i mod K)"
keyed() { awk -v n="$1" -v k="$2" 'BEGIN { for (i = 1; i <= n; i++) printf "{\"payload\":%d,\"key\":\"k%d\"}\n", i, i % k }' |
	sw-claim add --quiet; }
alive_count() { [ "$(sw-agent list --alive | jq -s --arg q "$1" 'map(select(.queue == $q)) | length')" = "$2" ]; }
# the command of the agents below: "AGENT KEY ID MS" a line per item of its
# batch, MS when it ran (unix ms)
LOGCMD='jq -r --arg a "$SW_AGENT_ID" "\"\\(\$a) \\(.key) \\(.id) \\(now * 1000 | floor)\"" >>"$LOG"'

# start_agents Q N OPTION...: agents a1..aN on queue Q running LOGCMD
start_agents() {
	local q=$1 n=$2 i
	shift 2
	for ((i = 1; i <= n; i++)); do
		sw-agent run -q "$q" --id "a$i" --quiet "$@" -- sh -c "$LOGCMD" &
		track $!
		eval "pid_a$i=$!"
	done
	wait_until 10 alive_count "$q" "$n"
}

@test "4 agents --affinity: at least 95% of keyed items are finished by the agent the ring maps their key to, none lost or twice" {
	cd "$BATS_TEST_TMPDIR"
	export LOG=$PWD/log
	local n=${SW_AFF_ITEMS:-2000} k=$(( ${SW_AFF_ITEMS:-2000} / 20 ))
	# the ring is whole from the first claim: the agents are registered
	# (with their queue) before the items come, and run under those ids
	for i in 1 2 3 4; do sw-agent register -q default --id "a$i" --ttl 5s >/dev/null; done
	# what sw-shard says of the live agents is what they claim by
	seq 0 $((k - 1)) | sed 's/^/k/' | sw-shard assign --nodes @agents --tsv | sort >owners
	keyed "$n" "$k"
	start_agents default 4 --affinity --steal-after 60s --batch 50 -j 2 --idle-exit 2s --heartbeat-ttl 5s
	for p in $pid_a1 $pid_a2 $pid_a3 $pid_a4; do reap_job "$p" 120; done
	[ "$(wc -l <log)" -eq "$n" ]
	[ "$(cut -d' ' -f3 log | sort -u | wc -l)" -eq "$n" ]
	[ "$(sw-claim stats | jq .done)" -eq "$n" ]
	# the same owners from the ids alone: the ring moves nothing on restart
	seq 0 $((k - 1)) | sed 's/^/k/' | sw-shard assign --nodes a1,a2,a3,a4 --tsv | sort | diff - owners
	run awk 'NR == FNR { own[$1] = $2; next } { n++; if (own[$2] == $1) ok++ } END { print ok, n; exit !(ok >= 0.95 * n) }' owners log
	echo "$output"
	assert_success
}

@test "--affinity: a SIGKILLed agent's keys are finished by the others within --steal-after + its ttl, nothing lost" {
	cd "$BATS_TEST_TMPDIR"
	export LOG=$PWD/log
	local opts=(--affinity --steal-after 2s --heartbeat-ttl 2s --ttl 2s --batch 10 --idle-exit 2s)
	start_agents default 3 "${opts[@]}"
	# a4 holds its first batch and never finishes it
	sw-agent run --id a4 --quiet "${opts[@]}" -- sh -c 'cat >/dev/null; echo $$ >a4.pid; exec sleep 60' &
	pid_a4=$!
	track "$pid_a4"
	wait_until 10 alive_count default 4
	keyed 100 40
	wait_until 10 test -s a4.pid
	track "$(cat a4.pid)"
	t0=$(now_ms)
	kill -KILL "$pid_a4"
	for p in $pid_a1 $pid_a2 $pid_a3; do reap_job "$p" 60; done
	[ "$(sw-claim stats | jq .done)" -eq 100 ]
	[ "$(cut -d' ' -f3 log | sort -u | wc -l)" -eq 100 ]
	[ "$(wc -l <log)" -eq 100 ]
	# a4's keys were finished by the others, and soon: the last of them
	# within steal-after (2 s) + ttl (2 s) of the kill
	seq 0 39 | sed 's/^/k/' | sw-shard assign --nodes a1,a2,a3,a4 --tsv | awk '$2 == "a4"' >a4.keys
	[ -s a4.keys ]
	run awk -v t0="$t0" 'NR == FNR { mine[$1] = 1; next } ($2 in mine) { n++; if ($4 > last) last = $4 }
		END { print n, last - t0; exit !(n > 0 && last - t0 < 4000) }' a4.keys log
	echo "$output"
	assert_success
}

@test "--affinity: an agent restarted with its id keeps every key; one joining moves about 1/N of them, all to itself" {
	cd "$BATS_TEST_TMPDIR"
	export LOG=$PWD/log
	start_agents r 4 --affinity --heartbeat-ttl 5s
	seq 1 1000 | sed 's/^/key/' >keys
	sw-shard assign --nodes @agents --tsv <keys >before
	[ "$(cut -f2 before | sort -u | wc -l)" -eq 4 ]
	kill -TERM "$pid_a2"
	reap_job "$pid_a2" 10
	sw-agent run -q r --id a2 --quiet --affinity --heartbeat-ttl 5s -- true &
	track $!
	wait_until 10 alive_count r 4
	sw-shard assign --nodes @agents --tsv <keys | diff before -
	sw-agent run -q r --id a5 --quiet --affinity --heartbeat-ttl 5s -- true &
	track $!
	wait_until 10 alive_count r 5
	sw-shard assign --nodes @agents --tsv <keys >after
	run awk -F'\t' 'NR == FNR { was[$1] = $2; next } was[$1] != $2 { n++; if ($2 != "a5") bad++ }
		END { print n, bad + 0; exit !(n >= 100 && n <= 300 && !bad) }' before after
	echo "$output"
	assert_success
}

@test "stats --keys and sw-agent list: the pending keyed items each live agent owns, as sw-shard assign --nodes @agents places them" {
	cd "$BATS_TEST_TMPDIR"   # want and got are written here
	for a in a1 a2 a3; do sw-agent register -q k --id $a >/dev/null; done
	sw-agent register --id elsewhere >/dev/null   # no queue: in no ring
	SW_QUEUE=k keyed 300 30
	seq 1 5 | sw-claim add -q k --lines --quiet
	run sw-claim stats -q k --keys
	assert_success
	echo "$output" | jq -e '.keys | .keyed == 300 and .unkeyed == 5 and .unowned == 0'
	seq 1 300 | awk '{ print "k" $1 % 30 }' | sw-shard assign --nodes a1,a2,a3 --tsv | cut -f2 | sort | uniq -c |
		awk '{ printf "{\"%s\":%d}\n", $2, $1 }' | jq -sc add >want
	echo "$output" | jq -c .keys.owners | diff want -
	sw-agent list | jq -sc 'map(select(.owns != null) | {(.id): .owns}) | add' | diff want -
	run sw-claim stats -q k --keys --table
	assert_success
	assert_line --regexp '^k +a1 +[0-9]+$'
	assert_line --regexp '^k +\(no key\) +5$'
	# --affinity AGENT claims its own keys while others' have not waited
	sw-claim next -q k --affinity a2 --steal-after 1h -n 20 | jq -r .key | sort -u >got
	sw-shard assign --nodes a1,a2,a3 --tsv <got | cut -f2 | sort -u | diff - <(echo a2)
	run --separate-stderr sw-claim next -q k --steal-after 1s
	[ "$status" -eq 64 ]
	run --separate-stderr sw-agent run --steal-after 1s -- true
	[ "$status" -eq 64 ]
}

@test "list --table: a batch's claims apart from the commands running of -j" {
	cd "$BATS_TEST_TMPDIR"
	seq 1 30 | sw-claim add --lines --quiet
	sw-agent run --id b1 --batch 10 -j 2 --quiet -- sh -c 'cat >/dev/null; echo >>started; exec sleep 30' &
	track $!
	wait_until 10 lines started 2
	wait_until 5 sh -c 'sw-agent list --table | grep -Eq "^b1 .* 2/2 +20 "'
}
