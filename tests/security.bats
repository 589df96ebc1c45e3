#!/usr/bin/env bats
# Workspace content is untrusted.  Each test plants one attack of the
# review (findings 1-8 of the issue "no path from file contents, no
# symlink anywhere on a path, no poison item stops a fleet") as another
# member of the workspace's group and as the victim itself, then runs the
# programs' verbs as the victim and as root, and checks that
#  - nothing outside the workspace changed (the victims' private files:
#    content, mode, owner, size and mtime),
#  - nothing hung (every call is under `timeout 10`),
#  - the queue still serves its good items, in order.
# Without root one user plays every part (see tests/security.bash).
load helper
load security

setup_file() { sec_users_up; }
teardown_file() { sec_users_down; }
setup() { sec_setup; }
teardown() { sec_teardown; }

# ---- 1. paths built from file contents -------------------------------------

@test "1: a stage file whose JSON id is a traversal path is quarantined; next and reap replace no file outside the workspace" {
	sc_stage_traversal
}

@test "1: claims, delayed and blocked items whose content names a traversal id, role or after are quarantined by reap, as root too" {
	sc_content_traversal
}

@test "1: done/x and deps/x symlinks to a private directory with a crafted stage file: reap finishes x and deletes nothing there" {
	sc_done_deps_symlinks
}

# run_once: as the victim, sw-agent run --once takes the first good item;
# the command notes the SW_ITEM_ID it was given.
run_once() {
	rm -f "$T/s-$v/ids"
	as "$v" sw-agent run -q "$q" --once --id "agent-$v" -- \
		sh -c 'printf "%s\n" "$SW_ITEM_ID" >>"$HOME/ids"; cat >/dev/null' >/dev/null
	[ "$(cat "$T/s-$v/ids")" = g1 ]
}

@test "1: a pending entry whose content id differs from its name is quarantined; sw-agent, as root too, runs only good items and passes only their ids" {
	BEFORE=run_once SERVE="g2 g3" attack '
		printf "%s" "$(item_json ../../../../home/.profile)" >$B/0000000000000001.evil
		printf "%s" "$(item_json "$R/file")" >$B/0000000000000002.evil2
		printf "%s" "$(item_json g3)" >$B/0000000000000003.other' \
		"no valid id" "its id is not the one its name says"
}

# ---- 2. symlinks in the middle of a path -----------------------------------

@test "2: state directories replaced by symlinks to a private directory are moved aside, never written through; add still adds" {
	sc_state_dir_symlinks
}

@test "2: a queue, queues/, agents/, leases/, rings/, limits/ or breakers/ that is a symlink is refused, nothing written through it" {
	for p in $PLANTERS; do for v in $VICTIMS; do
		plant "$p" 'mkdir -p queues; ln -s "$H/private" queues/q-'"$p-$v"
		run as "$v" sw-claim add -q "q-$p-$v" '"x"'
		[ "$status" -ne 0 ]
		[ "$status" -ne 124 ]
		[[ $output == *"not a directory"* ]]
	done; done
	for d in queues agents leases rings limits breakers; do
		plant "${PLANTERS%% *}" 'rm -rf '"$d"'; ln -s "$H/private" '"$d"
	done
	for v in $VICTIMS; do
		for c in "sw-claim add -q x 1" "sw-claim list" "sw-claim reap" "sw-agent register --id a" \
			"sw-agent list" "sw-agent reap" "sw-lease acquire l" "sw-lease list" \
			"sw-shard ring r --nodes a" "sw-shard ring r" "sw-limit take l --rate 1/s" \
			"sw-limit acquire l --concurrency 2" "sw-limit list" "sw-breaker record b --fail" \
			"sw-breaker list"; do
			run as "$v" $c
			[ "$status" -ne 0 ] && [ "$status" -ne 124 ] && [ "$status" -ne 70 ] ||
				{ echo "$c as $v: exit $status: $output"; false; }
		done
		as "$v" sw-metrics export --db "$T/s-$v/m.db" >/dev/null 2>&1
	done
	unchanged
}

@test "2: done/ pointing at a root-only directory: root's show and list print nothing from it" {
	printf '%s' "$(q=x item_json s1 '"state":"done"' | sed 's/"planted"/"TOPSECRET"/')" >"$R/s1"
	snap >"$T/before"
	for p in $PLANTERS; do for v in $VICTIMS; do
		q=$p-$v
		good victim "$q" g1
		plant "$p" 'rm -rf queues/$q/done; ln -s "$R" queues/$q/done'
		out=$(as "$v" sw-claim show -q "$q" s1 2>&1) || true
		out+=$(as "$v" sw-claim list -q "$q" --state all 2>&1)
		[[ $out != *TOPSECRET* ]]
		served "$v" "$q" g1
	done; done
	unchanged
}

@test "2: wake, maint, maint.lock and head/tail hints that are symlinks to a victim file are not followed" {
	for p in $PLANTERS; do for v in $VICTIMS; do
		q=$p-$v
		good victim "$q" g1 g2
		plant "$p" '
			Q=queues/$q
			for f in wake maint maint.lock; do rm -f $Q/$f; ln -s "$H/.profile" $Q/$f; done
			for f in head tail; do rm -f $Q/pending/5/-/$f; ln -s "$H/lockfile" $Q/pending/5/-/$f; done'
		good "$v" "$q" g3
		battery "$v" "$q"
		served "$v" "$q" g1 g2 g3
	done; done
	unchanged
}

@test "2: claimed, delayed, blocked, finished, id and pending entries and bucket directories that are symlinks are quarantined, their targets untouched" {
	sc_entry_symlinks
}

@test "2: a priority or role directory that is a symlink is moved aside: once the good items are served, next says nothing to claim (75), not an I/O error" {
	for p in $PLANTERS; do for v in $VICTIMS; do
		q=$p-$v
		good victim "$q" g1 g2
		plant "$p" '
			Q=queues/$q
			ln -s "$H/private" $Q/pending/0
			mkdir -p $Q/pending/1
			ln -s "$H/private" $Q/pending/1/-'
		served "$v" "$q" g1 g2
		run --separate-stderr as "$v" sw-claim next -q "$q"
		[ "$status" -eq 75 ] || { echo "next on a queue with nothing left: exit $status: $stderr"; false; }
	done; done
	unchanged
}

# ---- 3. one item stops every agent -----------------------------------------

@test "3: payloads of every JSON type reach the command, and the agent goes on" {
	for v in $VICTIMS; do
		q=types-$v
		for pl in 42 true false null '[1,2]' '"s"' '{"a":1}'; do as victim sw-claim add -q "$q" "$pl" >/dev/null; done
		run as "$v" sw-agent run -q "$q" --max-items 7 --idle-exit 2s -- cat
		[ "$status" -eq 0 ] || { echo "$output"; false; }
		[ "$(as "$v" sw-claim stats -q "$q" | jq .done)" -eq 7 ]
		[ "$(as "$v" sw-claim list -q "$q" --state done | jq -rc .result | sort | tr '\n' ' ')" = \
		  '42 [1,2] false null s true {"a":1} ' ]
	done
	unchanged
}

@test "3: an item with no string id and an agent record whose claims have none stop no agent and crash no reap" {
	reap_then_run() {
		as "$v" sw-agent reap >/dev/null
		run_once
	}
	BEFORE=reap_then_run SERVE="g2 g3" attack '
		printf "{\"queue\":\"%s\",\"payload\":1}" $q >$B/0000000000000001.noid
		printf "%s" "$(item_json n1 | sed "s/\"id\":\"n1\"/\"id\":5/")" >$Q/claimed/n1.1048577.1
		mkdir -p "$W/agents"
		printf "{\"id\":\"dead-%s\",\"ttl\":1,\"claims\":[{\"queue\":\"%s\",\"id\":5,\"token\":7}]}" $q $q >"$W/agents/dead-$q.json"
		touch -d @1 "$W/agents/dead-$q.json"' \
		"no valid id"
}

# ---- 4. readers that hang or give up on one bad entry ----------------------

@test "4: FIFOs planted as items, transitions, hints and locks hang no reader; next serves the good items in order" {
	sc_fifos
}

@test "4: a symlink, a FIFO, a directory, a non-JSON or an empty file at the head of a bucket: every next still serves the good items" {
	sc_bucket_head
}

@test "4: a FIFO as a lease's head hint hangs neither acquire, show nor list" {
	sc_lease_head_fifo
}

@test "4: a lease whose newest version is a FIFO or a symlink neither stops list for the other leases nor blocks that lease beyond one TTL" {
	as victim sw-lease acquire ok >/dev/null
	plant "${PLANTERS%% *}" 'mkdir -p leases/bad leases/bad2
		mkfifo leases/bad/v.00000000000000000001
		ln -s "$H/secret" leases/bad2/v.00000000000000000001'
	for v in $VICTIMS; do
		as "$v" sw-lease list | jq -s -e 'map(select(.name == "ok")) | length == 1'
		# a damaged version stands for a grant by an unknown owner, held one
		# TTL (30 s without a readable version before it), then takeable
		for l in bad bad2; do
			t=$(SW_CLOCK_OFFSET=1m as "$v" sw-lease acquire $l --ttl 1s | jq -r .token)
			SW_CLOCK_OFFSET=1m as "$v" sw-lease release $l --token "$t" >/dev/null
		done
	done
	unchanged
}

@test "4: agent records that are FIFOs, symlinks, directories, not JSON, oversized or lying about their id are skipped with a warning and moved aside by reap" {
	sc_agent_records
}

@test "2, 4, 7: limits and breakers: a link, FIFO or oversized file in a chain is not followed, hangs nothing, reads as damaged; they work again after" {
	sc_limit_chains
}

@test "4: SW_SPANS naming a FIFO or a symlink is a warning once the work is done, never a hang" {
	for v in $VICTIMS; do
		f=$T/s-$v/spans.fifo
		as "$v" mkfifo "$f"
		as "$v" ln -s "$H/.profile" "$T/s-$v/spans.link"
		nd=0
		for dest in "$f" "$T/s-$v/spans.link" reader; do
			if [ "$dest" = reader ]; then   # a FIFO with a reader opens, and is still refused
				dest=$f
				sleep 30 <>"$f" &
				BG_PIDS+=($!)
			fi
			nd=$((nd + 1))
			for c in "sw-claim add -q spans 1" "sw-lease acquire sp$v$nd --ttl 1s" "sw-agent list" \
				"sw-metrics inc n --db $T/s-$v/m.db" "sw-shard assign --nodes a"; do
				SW_SPANS=$dest run --separate-stderr as "$v" bash -c "echo k | $c"
				[ "$status" -eq 0 ] || { echo "$c: exit $status: $stderr"; false; }
				[[ $stderr == *"cannot write span"* ]]
			done
		done
		pkill_mine
	done
	[ "$(as victim sw-claim stats -q spans | jq .pending)" -eq $((3 * $(wc -w <<<"$VICTIMS"))) ]
	unchanged
}

# ---- 5. permissions ---------------------------------------------------------

# Everything below $1 (symlinks aside: their mode means nothing) that
# others may read, write or enter.
others_may() { find "$1" ! -type l -perm /o=rwx -printf '%m %p\n'; }

# Makes some of everything in the workspace as who: items in every state
# with a result and an error, a lease, an agent record, a ring.
populate() {
	local who=$1 out
	as "$who" sw-claim add -q p --id a '"payload"' >/dev/null
	as "$who" sw-claim add -q p --id b '"payload"' >/dev/null
	out=$(as "$who" sw-claim next -q p)
	as "$who" sw-claim done -q p a --token "$(jq -r .token <<<"$out")" --result '"result"' >/dev/null
	as "$who" sw-claim next -q p --ttl 1h >/dev/null
	as "$who" sw-lease acquire l >/dev/null
	as "$who" sw-agent register --id ag >/dev/null
	as "$who" sw-shard ring r --nodes a,b >/dev/null
	as "$who" sw-limit take rl --rate 1/h --burst 1 --quiet
	as "$who" sw-limit take rl --rate 1/h --burst 1 --quiet || true   # a refusal: a tally
	as "$who" sw-limit take wl --window 1h --max 2 --quiet
	as "$who" sw-limit acquire cl --concurrency 2 >/dev/null
	as "$who" sw-breaker record br --fail --failures 1 --quiet
}

@test "5: under umask 000 and 022 a new workspace, named or default, is 0700 with its parents, and nothing in it is open to others" {
	for u in 000 022; do
		for v in $VICTIMS; do
			h=$T/s-$v/h$u
			(umask $u; unset SW_DIR; AS_HOME=$h populate "$v")
			[ "$(stat -c %a "$h" "$h/.local" "$h/.local/state" "$h/.local/state/sw" | tr '\n' ' ')" = "700 700 700 700 " ]
			[ -z "$(others_may "$h")" ]
			(umask $u; SW_DIR=$T/s-$v/named$u; populate "$v")
			[ "$(stat -c %a "$T/s-$v/named$u")" = 700 ]
			[ -z "$(others_may "$T/s-$v/named$u")" ]
		done
	done
	unchanged
}

@test "5: sw-metrics' default directory is 0700 with its parents whatever the umask" {
	for u in 000 022; do
		for v in $VICTIMS; do
			h=$T/s-$v/m$u
			(umask $u; unset SW_METRICS_DB; AS_HOME=$h as "$v" sw-metrics inc n >/dev/null)
			[ "$(stat -c %a "$h" "$h/.local" "$h/.local/state" "$h/.local/state/sw-metrics" | tr '\n' ' ')" = "700 700 700 700 " ]
		done
	done
	unchanged
}

@test "5: a group-shared workspace (2770) is the group's; an outsider reads no payload, token or result and changes nothing" {
	sec_multi || skip "needs root to have an outsider"
	populate victim
	populate attacker 2>/dev/null || true   # a member does what the owner does
	[ -z "$(others_may "$W")" ]
	[ -z "$(find "$W" ! -type l ! -perm -g=r -printf '%p\n')" ]
	before=$(as victim sw-claim list --state all | jq -r '.id + .state' | sort)
	for c in "sw-claim list --state all" "sw-claim next -q p" "sw-claim add -q p 1" "sw-claim reap" \
		"sw-lease acquire l2" "sw-lease list" "sw-agent list" "sw-agent reap" "sw-shard ring r" \
		"sw-limit take rl --rate 1/s" "sw-limit acquire cl --concurrency 9" "sw-limit list" \
		"sw-breaker record br --fail" "sw-breaker list" "cat $W/queues/p/done/a"; do
		run as outsider $c
		[ "$status" -ne 0 ] && [ "$status" -ne 124 ] || { echo "outsider: $c: exit $status"; false; }
		[[ $output != *payload* && $output != *result* && $output != *token* ]]
	done
	run as outsider flock -n "$W/queues/p/maint.lock" true
	[ "$status" -ne 0 ]
	[ "$(as victim sw-claim list --state all | jq -r '.id + .state' | sort)" = "$before" ]
	unchanged
}

@test "5: SW_UMASK=022 asks for a world-readable workspace; nothing is ever world-writable" {
	v=${VICTIMS%% *}
	for m in 022 000; do
		d=$T/s-$v/u$m
		(export SW_UMASK=$m SW_DIR=$d; populate "$v")
		[ -z "$(find "$d" ! -type l -perm /o=w -printf '%p\n')" ]
		[ "$(stat -c %a "$d/queues/p/done/a")" = "$([ $m = 022 ] && echo 644 || echo 664)" ]
	done
	unchanged
}

# ---- 6. an outsider cannot stop maintenance ---------------------------------

# hold_lock WHO FILE: WHO holds an exclusive flock on FILE (opened read
# only) from a background process, until pkill_mine.
hold_lock() {
	local -a pre=()
	sec_multi && [ "$1" != self ] && pre=(setpriv --reuid="$(user_of "$1")" --regid="$(user_of "$1")" --init-groups --)
	# one process: bash takes the lock and becomes sleep, keeping it
	"${pre[@]}" bash -c 'exec 9<"$0" && flock -w 5 9 && exec sleep 60' "$2" &
	BG_PIDS+=($!)
	for _ in $(seq 50); do
		flock -n "$2" true 2>/dev/null || return 0
		sleep 0.1
	done
	echo "could not take the lock as $1"
	return 1
}

@test "6: a maint.lock held by someone else stops lazy reaping a few seconds at most, and reap waits 1 s at most" {
	# a world-readable workspace: an outsider can open maint.lock and flock it
	chmod 2775 "$W"
	export SW_UMASK=022 SW_CLOCK_SKEW=0s
	holder=outsider
	sec_multi || holder=self
	good victim q g1
	as victim sw-claim next -q q --ttl 1s >/dev/null
	hold_lock "$holder" "$W/queues/q/maint.lock"
	sleep 1.2   # the claim has expired: only maintenance can bring it back
	t0=$(date +%s%N)
	while ! out=$(as victim sw-claim next -q q 2>/dev/null); do
		[ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 9000 ] || { echo "the expired claim never came back"; false; }
		sleep 0.3
	done
	echo "lazy reaping came back after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
	[ "$(jq -r .id <<<"$out")" = g1 ]
	as victim sw-claim release -q q g1 --token "$(jq -r .token <<<"$out")" >/dev/null
	as victim sw-claim next -q q --ttl 1s >/dev/null
	sleep 1.2
	t0=$(date +%s%N)
	run as victim sw-claim reap -q q
	[ "$status" -eq 0 ]
	[ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 3000 ]
	[ "$(jq .reaped <<<"$output")" -eq 1 ]
	pkill_mine
	unchanged
}

# ---- 7. unbounded reads -----------------------------------------------------

big_line() { # a 200 MB line of 'a' and a newline, to stdout
	head -c 200000000 /dev/zero | tr '\0' a
	echo
}

@test "7: a 200 MB line into add --lines is refused (65) with peak memory under 64 MB" {
	big_line >"$T/s-self/big"
	peak self sw-claim add -q big --lines <"$T/s-self/big" 2>/dev/null
	[ "$RC" -eq 65 ]
	[ "$KB" -lt 65536 ] || { echo "peak $KB KiB"; false; }
}

@test "7: sw-shard assign streams: 3 million keys in under 16 MB, and a key is answered before the input ends" {
	n=3000000
	! under_asan || n=300000   # within the timeout of a sanitized build
	seq $n >"$T/s-self/keys"
	peak self sw-shard assign --nodes a,b,c --tsv <"$T/s-self/keys" >"$T/s-self/out"
	[ "$RC" -eq 0 ]
	[ "$(wc -l <"$T/s-self/out")" -eq $n ]
	[ "$KB" -lt 16384 ] || { echo "peak $KB KiB"; false; }
	peak self sw-shard balance --nodes a,b,c --summary <"$T/s-self/keys" >/dev/null
	[ "$KB" -lt 16384 ] || { echo "balance: peak $KB KiB"; false; }
	# a producer that pauses gets its first answer before its next key
	# (no clock: a start slowed by a loaded machine has the whole pause)
	local m=$T/s-self/k2-sent
	{ echo k1; sleep 4; : >"$m"; echo k2; } | sw-shard assign --nodes a,b --tsv | {
		read -r first
		# one check a line: a failed && list would not end this subshell
		[ "${first%%$'\t'*}" = k1 ]
		[ ! -e "$m" ]
		cat >/dev/null
	}
}

@test "7: a 200 MB key or item line is refused (65) by assign, plan and split without being held" {
	big_line >"$T/s-self/big"
	for c in "sw-shard assign --nodes a,b" "sw-shard plan --from a --to a,b" "sw-shard split --lines" \
		"sw-shard assign --nodes a,b --max-load 1.1"; do
		# shellcheck disable=SC2086
		peak self $c <"$T/s-self/big" 2>/dev/null >/dev/null
		[ "$RC" -eq 65 ] || { echo "$c: exit $RC"; false; }
		[ "$KB" -lt 16384 ] || { echo "$c: peak $KB KiB"; false; }
	done
}

@test "7: oversized (sparse) stage, claim, pending, agent, lease and ring files are refused by their size, not read" {
	small_peaks() {
		for c in "sw-claim list --state all" "sw-agent list" "sw-lease show big-$q" "sw-shard ring big-$q"; do
			# shellcheck disable=SC2086
			peak "$v" $c >/dev/null 2>&1
			[ "$RC" -ne 124 ] && [ "$KB" -lt 65536 ] || { echo "$c: exit $RC, peak $KB KiB"; false; }
		done
	}
	CHECK=small_peaks attack '
		truncate -s 4G $Q/stage/$OLD-d1.nC $Q/claimed/z.1048577.1 $B/0000000000000001.z
		: >$Q/stage/$OLD-d1.kC
		mkdir -p "$W/agents" "$W/leases/big-$q" "$W/rings"
		truncate -s 4G "$W/agents/big-$q.json" "$W/leases/big-$q/v.00000000000000000001" "$W/rings/big-$q.json"' \
		"over SW_MAX_ITEM_BYTES + 65536 bytes"
}

# ---- 8. terminal and environment --------------------------------------------


@test "8: an invalid TRACEPARENT with escape sequences and a newline is one escaped line on stderr" {
	bad=$'\e]2;owned\a\e[31mred\nsw-claim: forged line'
	for c in "sw-claim stats" "sw-lease list" "sw-agent list" "sw-metrics export --db $T/s-self/m.db" \
		"sw-shard assign --nodes a" "sw-limit take t --rate 1/s" "sw-breaker check t"; do
		run --separate-stderr env TRACEPARENT="$bad" bash -c "echo k | $c"
		[ "$status" -eq 0 ]
		[ "${#stderr_lines[@]}" -eq 1 ] || { echo "$c: $stderr"; false; }
		terminal_safe "$stderr"
		[[ $stderr == *'\x1b'* ]]
	done
}

@test "8: entry names with escape sequences and newlines are escaped in every warning" {
	sc_escaped_names
}

@test "8: a relative HOME is refused and a relative XDG_STATE_HOME ignored: nothing is made below the current directory" {
	for v in $VICTIMS; do
		cwd=$T/s-$v/cwd
		as "$v" mkdir "$cwd"
		h=$T/s-$v/h
		for c in "sw-claim add 1" "sw-lease acquire l" "sw-agent register --id a" "sw-metrics inc n" \
			"sw-shard ring r --nodes a" "sw-limit take l --rate 1/s" "sw-breaker record b --fail"; do
			run as "$v" env -u SW_DIR -C "$cwd" HOME=rel $c
			[ "$status" -eq 64 ] || { echo "$c with HOME=rel: exit $status: $output"; false; }
			run as "$v" env -u SW_DIR -C "$cwd" HOME="$h" XDG_STATE_HOME=rel $c
			[ "$status" -eq 0 ] || { echo "$c with XDG_STATE_HOME=rel: exit $status: $output"; false; }
		done
		[ -z "$(ls -A "$cwd")" ]
		[ -d "$h/.local/state/sw/queues" ]
		[ -d "$h/.local/state/sw-metrics" ]
	done
	unchanged
}

@test "8: --nodes NAME is a node even when a file NAME exists; ./PATH, /PATH and @file:PATH are files; a missing one is 66" {
	cd "$T/s-self"
	printf 'evil1\nevil2\n' >web1
	printf 'evil1\nevil2\n' >web1.example.com
	printf 'n1\nn2 2\n' >nodes
	[ "$(echo k | sw-shard assign --nodes web1 --tsv | cut -f2)" = web1 ]
	[ "$(echo k | sw-shard assign --nodes @list:web1.example.com --tsv | cut -f2)" = web1.example.com ]
	run sw-shard assign --nodes web1.example.com </dev/null   # file or host: never read, refused
	[ "$status" -eq 64 ]
	for spec in ./nodes "$PWD/nodes" @file:nodes "@file:$PWD/nodes" ../s-self/nodes; do
		[[ "$(echo k | sw-shard assign --nodes "$spec" --tsv | cut -f2)" == n[12] ]]
	done
	[ "$(echo k | sw-shard assign --nodes @file:<(printf 'p1\n') --tsv | cut -f2)" = p1 ]
	run sw-shard assign --nodes ./nosuch </dev/null
	[ "$status" -eq 66 ]
	run sw-shard assign --nodes @file:nosuch </dev/null
	[ "$status" -eq 66 ]
	run sw-shard assign --nodes sub/nodes </dev/null
	[ "$status" -eq 64 ]
	[[ $output == *"./sub/nodes"* ]]
}
