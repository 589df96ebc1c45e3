load helper

keys8() { printf 'alpha\nbeta\ngamma\ndelta\nepsilon\nzeta\neta\ntheta\n'; }

@test "--help prints usage to stdout and exits 0" {
	run --separate-stderr sw-shard --help
	assert_success
	assert_output --partial "usage: sw-shard VERB"
	run --separate-stderr sw-shard assign --help
	assert_success
	assert_output --partial "assign --nodes"
}

@test "unknown verb and missing verb are usage errors (64)" {
	run --separate-stderr sw-shard frobnicate
	assert_failure 64
	[ "$stderr" = "sw-shard: unknown verb 'frobnicate' (see sw-shard --help)" ]
	run --separate-stderr sw-shard
	assert_failure 64
}

@test "assign prints one JSON line per key, in input order" {
	run --separate-stderr bash -c "printf 'alpha\nbeta\n\ngamma\ndelta\n' | sw-shard assign --nodes a,b,c"
	assert_success
	[ "${#lines[@]}" -eq 4 ]   # the blank line is no key
	[ "$(printf '%s\n' "$output" | jq -r .key | tr '\n' ' ')" = "alpha beta gamma delta " ]
	[ "$(printf '%s\n' "$output" | jq -r .node | sort -u | grep -cvE '^(a|b|c)$')" -eq 0 ]
}

@test "placement is pinned: the documented hash gives these nodes on every host" {
	# 8 keys take the scanned ring, 16 the built one: both must agree
	pinned() { # algo expected [extra options]
		local algo=$1 want=$2; shift 2
		[ "$(keys8 | sw-shard assign --nodes a,b,c --algo "$algo" "$@" --tsv | cut -f2 | tr -d '\n')" = "$want" ]
		[ "$( (keys8; keys8) | sw-shard assign --nodes a,b,c --algo "$algo" "$@" --tsv | head -8 | cut -f2 | tr -d '\n')" = "$want" ]
	}
	pinned ring aaaababc
	pinned rendezvous cccaccbc
	pinned jump caccabaa
	pinned mod cacbacbb
	pinned ring babbacac --seed 7   # another seed is another placement
}

@test "ring and rendezvous do not depend on the order nodes are listed in" {
	for algo in ring rendezvous; do
		seq 1000 | sw-shard assign --nodes a,b,c,d --algo "$algo" --tsv >"$BATS_TEST_TMPDIR/1"
		seq 1000 | sw-shard assign --nodes d,b,a,c --algo "$algo" --tsv >"$BATS_TEST_TMPDIR/2"
		cmp "$BATS_TEST_TMPDIR/1" "$BATS_TEST_TMPDIR/2"
	done
}

@test "assign --tsv prints key TAB node" {
	run --separate-stderr bash -c "printf 'k1\n' | sw-shard assign --nodes only --tsv"
	assert_success
	assert_output "$(printf 'k1\tonly')"
}

@test "keys are escaped in JSON output" {
	run --separate-stderr bash -c "printf 'a\"b\\\\c\tx\n' | sw-shard assign --nodes n"
	assert_success
	[ "$(printf '%s' "$output" | jq -r .key)" = "$(printf 'a"b\\c\tx')" ]
}

@test "a node file with weights and comments equals the same list" {
	printf '# pool\nsmall 1\n\nbig 3\nmid=2\n' >"$BATS_TEST_TMPDIR/nodes"
	seq 2000 | sw-shard assign --nodes "$BATS_TEST_TMPDIR/nodes" --tsv >"$BATS_TEST_TMPDIR/f"
	seq 2000 | sw-shard assign --nodes small,big=3,mid=2 --tsv >"$BATS_TEST_TMPDIR/l"
	cmp "$BATS_TEST_TMPDIR/f" "$BATS_TEST_TMPDIR/l"
	# and the weights are honoured: big gets about half
	big=$(grep -c $'\tbig$' "$BATS_TEST_TMPDIR/f")
	[ "$big" -gt 900 ]
	[ "$big" -lt 1100 ]
}

@test "bad node lists are bad data (65) with a one-line error" {
	run --separate-stderr bash -c "echo k | sw-shard assign --nodes a,b,a"
	assert_failure 65
	[[ "$stderr" == "sw-shard: assign: --nodes list: duplicate node name 'a'" ]]
	run --separate-stderr bash -c "echo k | sw-shard assign --nodes a,b=0"
	assert_failure 65
	[[ "$stderr" == *"bad weight '0'"* ]]
	run --separate-stderr bash -c "echo k | sw-shard assign --nodes a=x"
	assert_failure 65
	run --separate-stderr bash -c "echo k | sw-shard assign --nodes ''"
	assert_failure 65
	[ "${#stderr_lines[@]}" -eq 1 ]
	[[ "$stderr" == *"empty node list"* ]]
	run --separate-stderr bash -c "echo k | sw-shard assign --nodes ' , '"
	assert_failure 65
	[[ "$stderr" == *"empty node list"* ]]
	run --separate-stderr bash -c "echo k | sw-shard assign --nodes 'a,,b'"
	assert_failure 65
	[[ "$stderr" == *"empty node name"* ]]
	printf '# nobody\n\n' >"$BATS_TEST_TMPDIR/empty"
	run --separate-stderr bash -c "echo k | sw-shard assign --nodes '$BATS_TEST_TMPDIR/empty'"
	assert_failure 65
	[[ "$stderr" == *"empty node list"* ]]
	printf 'a\nb 2 3\n' >"$BATS_TEST_TMPDIR/bad"
	run --separate-stderr bash -c "echo k | sw-shard assign --nodes '$BATS_TEST_TMPDIR/bad'"
	assert_failure 65
	[[ "$stderr" == *"line 2"* ]]
	[ -z "$output" ]
}

@test "bad options are usage errors (64)" {
	for args in "--nodes a --vnodes 0" "--nodes a --algo nope" "--nodes a=1,b=2 --algo jump" \
		"--nodes a --max-load 0.9" "--nodes a --algo jump --vnodes 10" "" "--nodes a --keys 5"; do
		run --separate-stderr bash -c "echo k | sw-shard assign $args"
		assert_failure 64
		[ "${#stderr_lines[@]}" -eq 1 ]
	done
	run --separate-stderr sw-shard balance --nodes a --keys 0
	assert_failure 64
	run --separate-stderr bash -c "echo 1 | sw-shard split --items-per-shard 0"
	assert_failure 64
	run --separate-stderr bash -c "echo 1 | sw-shard split -q work"
	assert_failure 64
}

@test "a missing node file is 66" {
	run --separate-stderr bash -c "echo k | sw-shard assign --nodes ./no-such-file"
	assert_failure 66
}

@test "--nodes @agents[:ROLE] takes the live agents of the workspace" {
	command -v sw-agent >/dev/null || skip "sw-agent not built"
	run --separate-stderr bash -c "echo k | sw-shard assign --nodes @agents"
	assert_failure 69   # no workspace yet
	mkdir -p "$SW_DIR"
	run --separate-stderr bash -c "echo k | sw-shard assign --nodes @agents"
	assert_failure 75
	[ "$stderr" = "sw-shard: assign: --nodes @agents: no live agents" ]
	sw-agent register --id w1 --roles gpu >/dev/null
	sw-agent register --id w2 --roles cpu >/dev/null
	sw-agent register --id w3 --roles gpu,cpu --ttl 1s >/dev/null
	run --separate-stderr bash -c "seq 300 | sw-shard assign --nodes @agents --tsv | cut -f2 | sort -u | tr '\n' ' '"
	assert_success
	assert_output "w1 w2 w3 "
	run --separate-stderr bash -c "seq 300 | sw-shard assign --nodes @agents:gpu --tsv | cut -f2 | sort -u | tr '\n' ' '"
	assert_output "w1 w3 "
	# 10 s later w3 (ttl 1s + 2s skew margin) is dead, the others (30s) alive
	run --separate-stderr bash -c "seq 300 | SW_CLOCK_OFFSET=10s sw-shard assign --nodes @agents --tsv | cut -f2 | sort -u | tr '\n' ' '"
	assert_output "w1 w2 "
	# and the keys that were on w1 and w2 stay there
	seq 300 | sw-shard assign --nodes @agents --tsv | grep -v 'w3$' >"$BATS_TEST_TMPDIR/before"
	seq 300 | SW_CLOCK_OFFSET=10s sw-shard assign --nodes @agents --tsv | grep -xFf "$BATS_TEST_TMPDIR/before" | wc -l >"$BATS_TEST_TMPDIR/kept"
	[ "$(cat "$BATS_TEST_TMPDIR/kept")" -eq "$(wc -l <"$BATS_TEST_TMPDIR/before")" ]
	run --separate-stderr bash -c "echo k | sw-shard assign --nodes @agentz"
	assert_failure 64
}

@test "a key that is not UTF-8 is refused (65) with its line, before any output" {
	run --separate-stderr bash -c "printf 'ok\n\xff\xfe\n' | sw-shard assign --nodes a,b"
	assert_failure 65
	[[ "$stderr" == *"line 2"* ]]
	[ -z "$output" ]
	# TSV passes bytes through
	run --separate-stderr bash -c "printf '\xff\n' | sw-shard assign --nodes a,b --tsv | wc -l"
	assert_success
	assert_output 1
}

@test "balance: one line per node and a summary" {
	run --separate-stderr sw-shard balance --nodes a,b,c,d --keys 10000
	assert_success
	[ "${#lines[@]}" -eq 5 ]
	[ "$(printf '%s\n' "$output" | head -4 | jq -s 'map(.keys) | add')" -eq 10000 ]
	[ "$(printf '%s\n' "${lines[4]}" | jq -r '[.nodes, .keys, (.max_over_mean > 1)] | @tsv')" = "$(printf '4\t10000\ttrue')" ]
}

@test "balance of keys on stdin counts those keys" {
	run --separate-stderr bash -c "seq 500 | sw-shard balance --nodes a,b --summary"
	assert_success
	[ "$(printf '%s' "$output" | jq .keys)" -eq 500 ]
}

@test "--max-load caps every node at ceil(F x its fair share)" {
	# 10 vnodes are badly balanced on their own
	run --separate-stderr sw-shard balance --nodes n0,n1,n2,n3,n4,n5,n6,n7,n8,n9 --vnodes 10 --keys 100000 --summary
	assert_success
	[ "$(printf '%s' "$output" | jq '.max > 11000')" = true ]
	for algo in ring rendezvous jump mod; do
		vn=; [ $algo = ring ] && vn="--vnodes 10"
		run --separate-stderr sw-shard balance --nodes n0,n1,n2,n3,n4,n5,n6,n7,n8,n9 $vn --algo $algo --max-load 1.01 --keys 100000 --summary
		assert_success
		[ "$(printf '%s' "$output" | jq .max)" -le 10100 ]
	done
}

@test "assign --max-load keeps every node under its cap" {
	seq 20000 | sw-shard assign --nodes a,b,c --vnodes 5 --max-load 1.05 --tsv | cut -f2 | sort | uniq -c >"$BATS_TEST_TMPDIR/c"
	while read -r n node; do [ "$n" -le 7000 ]; done <"$BATS_TEST_TMPDIR/c"
}

@test "plan: a joining node takes keys from others and nothing else moves" {
	run --separate-stderr bash -c "seq 20000 | sw-shard plan --from a,b,c,d --to a,b,c,d,e"
	assert_success
	moved=$(printf '%s\n' "$output" | jq -r 'select(.key) | .to' | sort -u)
	[ "$moved" = e ]
	last=${lines[${#lines[@]}-1]}
	[ "$(printf '%s' "$last" | jq '.ideal_fraction == 0.2 and .ratio < 1.1 and .keys == 20000')" = true ]
	[ "$(printf '%s' "$last" | jq .moved)" -eq $((${#lines[@]} - 1)) ]
}

@test "plan: a leaving node moves only its keys (ring, rendezvous)" {
	for algo in ring rendezvous; do
		run --separate-stderr bash -c "seq 20000 | sw-shard plan --algo $algo --from a,b,c,d --to a,b,d"
		assert_success
		[ "$(printf '%s\n' "$output" | jq -r 'select(.key) | .from' | sort -u)" = c ]
	done
}

@test "plan --summary prints one line; a restart with the same names moves nothing" {
	run --separate-stderr sw-shard plan --from a,b,c --to c,b,a --keys 10000 --summary
	assert_success
	[ "${#lines[@]}" -eq 1 ]
	[ "$(printf '%s' "$output" | jq '.moved == 0 and .ideal_fraction == 0 and .ratio == null')" = true ]
}

@test "split: every item lands in exactly one shard, in order, sizes within one" {
	run --separate-stderr bash -c "seq 25 | sw-shard split --lines --items-per-shard 10 --id t1"
	assert_success
	[ "${#lines[@]}" -eq 4 ]
	[ "$(printf '%s\n' "$output" | head -3 | jq -c '.payload.items | length' | tr '\n' ' ')" = "9 8 8 " ]
	[ "$(printf '%s\n' "$output" | head -3 | jq -r '.payload.items[]' | tr '\n' ' ')" = "$(seq 25 | tr '\n' ' ')" ]
	[ "$(printf '%s\n' "$output" | head -3 | jq -r .id | tr '\n' ' ')" = "t1_shard_0 t1_shard_1 t1_shard_2 " ]
	[ "$(printf '%s\n' "${lines[3]}" | jq -c '[.id, .after, .payload.shards, .payload.items]')" = \
	  '["t1_combine",["t1_shard_0","t1_shard_1","t1_shard_2"],["t1_shard_0","t1_shard_1","t1_shard_2"],25]' ]
}

@test "split: JSON Lines items keep their JSON" {
	run --separate-stderr bash -c "printf '{\"a\":1}\n[2]\n\"x\"\n' | sw-shard split --items-per-shard 2 --id j"
	assert_success
	[ "$(printf '%s\n' "${lines[0]}" | jq -c .payload.items)" = '[{"a":1},[2]]' ]
	[ "$(printf '%s\n' "${lines[1]}" | jq -c .payload.items)" = '["x"]' ]
}

@test "split: --min-items and --max-shards" {
	run --separate-stderr bash -c "seq 5 | sw-shard split --lines --items-per-shard 2 --min-items 6 --id m"
	assert_success
	[ "${#lines[@]}" -eq 2 ]
	[ "$(printf '%s\n' "${lines[0]}" | jq '.payload.items | length')" -eq 5 ]
	run --separate-stderr bash -c "seq 100 | sw-shard split --lines --items-per-shard 5 --max-shards 3 --id m"
	assert_success
	[ "${#lines[@]}" -eq 4 ]
	[ "$(printf '%s\n' "$output" | head -3 | jq -c '.payload.items | length' | tr '\n' ' ')" = "34 33 33 " ]
}

@test "split: a bad JSON line is refused (65) with its number and nothing printed" {
	run --separate-stderr bash -c "printf '1\n{bad\n3\n' | sw-shard split"
	assert_failure 65
	[[ "$stderr" == "sw-shard: split: line 2: "* ]]
	[ -z "$output" ]
	run --separate-stderr bash -c "echo 1 | sw-shard split --id 'a/b'"
	assert_failure 65
}

@test "split --enqueue: the combiner is claimable only when every shard is done" {
	command -v sw-claim >/dev/null || skip "sw-claim not built"
	run --separate-stderr bash -c "seq 6 | sw-shard split --lines --items-per-shard 2 --id job -q work --enqueue"
	assert_success
	[ "$(printf '%s\n' "$output" | jq -r .id | tr '\n' ' ')" = "job_shard_0 job_shard_1 job_shard_2 job_combine " ]
	for i in 1 2 3; do
		c=$(sw-claim next -q work)
		id=$(printf '%s' "$c" | jq -r .id)
		[[ "$id" == job_shard_* ]]
		[ "$(printf '%s' "$c" | jq '.payload.items | length')" -eq 2 ]
		if [ $i -lt 3 ]; then
			sw-claim done -q work "$id" --token "$(printf '%s' "$c" | jq -r .token)" >/dev/null
		else
			last=$c
		fi
	done
	run --separate-stderr sw-claim next -q work
	assert_failure 75   # one shard still claimed: the combiner waits
	sw-claim done -q work "$(printf '%s' "$last" | jq -r .id)" --token "$(printf '%s' "$last" | jq -r .token)" >/dev/null
	run --separate-stderr sw-claim next -q work
	assert_success
	[ "$(printf '%s' "$output" | jq -c '[.id, .payload.shards]')" = '["job_combine",["job_shard_0","job_shard_1","job_shard_2"]]' ]
}

@test "split output is valid sw-claim add input" {
	command -v sw-claim >/dev/null || skip "sw-claim not built"
	seq 4 | sw-shard split --lines --items-per-shard 2 --id p --priority 2 | sw-claim add -q q2 >/dev/null
	run --separate-stderr sw-claim next -q q2
	assert_success
	[ "$(printf '%s' "$output" | jq -c '[.id, .priority]')" = '["p_shard_0",2]' ]
}

@test "--spans writes one span per operation; --quiet prints no results" {
	run --separate-stderr bash -c "echo k | sw-shard assign --nodes a --spans=stderr --quiet"
	assert_success
	[ -z "$output" ]
	[ "$(printf '%s' "$stderr" | jq -r '.resourceSpans[0].scopeSpans[0].spans[0].name')" = "sw-shard assign" ]
}

@test "ring NAME keeps nodes and settings in the workspace; @ring:NAME uses them" {
	run --separate-stderr sw-shard ring prod --nodes a,b=2,c --algo rendezvous
	assert_success
	[ "$(printf '%s' "$output" | jq -c '[.name, .algo, .nodes[1].name, .nodes[1].weight == 2]')" = '["prod","rendezvous","b",true]' ]
	[ -f "$SW_DIR/rings/prod.json" ]
	# no temporary file left behind
	[ "$(ls -A "$SW_DIR/rings")" = prod.json ]
	seq 500 | sw-shard assign --nodes @ring:prod --tsv >"$BATS_TEST_TMPDIR/r"
	seq 500 | sw-shard assign --nodes a,b=2,c --algo rendezvous --tsv >"$BATS_TEST_TMPDIR/l"
	cmp "$BATS_TEST_TMPDIR/r" "$BATS_TEST_TMPDIR/l"
	run --separate-stderr sw-shard plan --from @ring:prod --to a,b=2,c,d --keys 10000 --summary
	assert_success
	[ "$(printf '%s' "$output" | jq -r .algo)" = rendezvous ]
	run --separate-stderr sw-shard ring prod
	assert_success
	[ "$(printf '%s' "$output" | jq '.nodes | length')" -eq 3 ]
	run --separate-stderr sw-shard ring prod --delete
	assert_success
	run --separate-stderr sw-shard ring prod --delete
	assert_failure 1
	run --separate-stderr bash -c "echo k | sw-shard assign --nodes @ring:prod"
	assert_failure 1
	[ "$stderr" = "sw-shard: assign: --nodes @ring:prod: no such ring" ]
}

@test "ring refuses bad names, bad settings and stray options" {
	run --separate-stderr sw-shard ring ../x --nodes a
	assert_failure 65
	run --separate-stderr sw-shard ring x --nodes a=1,b=2 --algo jump
	assert_failure 64
	run --separate-stderr sw-shard ring x --algo jump
	assert_failure 64
	run --separate-stderr sw-shard ring
	assert_failure 64
	[ ! -e "$SW_DIR/rings/x.json" ]
}

@test "split --enqueue is all or nothing, and the same --id twice adds nothing twice" {
	command -v sw-claim >/dev/null || skip "sw-claim not built"
	run --separate-stderr bash -c "seq 100 | SW_MAX_ITEM_BYTES=300 sw-shard split --lines --items-per-shard 50 --id big -q w --enqueue"
	assert_failure 65
	[[ "$stderr" == "sw-shard: split: big_shard_0: "* ]]
	run --separate-stderr sw-claim stats -q w
	[ "$(printf '%s' "$output" | jq '.pending')" -eq 0 ]
	seq 4 | sw-shard split --lines --items-per-shard 2 --id same -q w --enqueue >/dev/null
	run --separate-stderr bash -c "seq 4 | sw-shard split --lines --items-per-shard 2 --id same -q w --enqueue"
	assert_success
	[ "$(printf '%s\n' "$output" | jq -s 'map(.added) | any')" = false ]
	run --separate-stderr sw-claim stats -q w
	[ "$(printf '%s' "$output" | jq -c '[.pending, .blocked]')" = "[2,1]" ]   # each item in one state: the combiner is blocked
}

@test "split --enqueue prints what sw-claim add prints: id, queue, added (false when the id was there), state" {
	command -v sw-claim >/dev/null || skip "sw-claim not built"
	run --separate-stderr bash -c "seq 4 | sw-shard split --lines --items-per-shard 2 --id f -q w --enqueue"
	assert_success
	assert_output "$(printf '%s\n' '{"id":"f_shard_0","queue":"w","added":true,"state":"pending"}' \
		'{"id":"f_shard_1","queue":"w","added":true,"state":"pending"}' \
		'{"id":"f_combine","queue":"w","added":true,"state":"blocked"}')"
	# the keys are sw-claim add's own
	[ "$(sw-claim add -q w --id one 1 | jq -c keys)" = "$(printf '%s\n' "${lines[0]}" | jq -c keys)" ]
	run --separate-stderr bash -c "seq 4 | sw-shard split --lines --items-per-shard 2 --id f -q w --enqueue"
	assert_success
	[ "$(printf '%s\n' "$output" | jq -c '[.id, .added, has("state")]' | tr '\n' ' ')" = \
	  '["f_shard_0",false,false] ["f_shard_1",false,false] ["f_combine",false,false] ' ]
}

@test "split --max-attempts and --timeout set the shards and the combiner, as sw-claim add takes them" {
	command -v sw-claim >/dev/null || skip "sw-claim not built"
	seq 4 | sw-shard split --lines --items-per-shard 2 --id m -q w --enqueue --max-attempts 2 --timeout 90s >/dev/null
	# the printed records, through sw-claim add, make the same items
	seq 4 | sw-shard split --lines --items-per-shard 2 --id p --max-attempts 2 --timeout 1.5m | sw-claim add -q w >/dev/null
	for id in m_shard_0 m_shard_1 m_combine p_shard_0 p_combine; do
		[ "$(sw-claim show -q w "$id" | jq -c '[.max_attempts, .timeout]')" = '[2,90]' ]
	done
	# without them, sw-claim's defaults
	seq 2 | sw-shard split --lines --id d -q w --enqueue >/dev/null
	[ "$(sw-claim show -q w d_combine | jq -c '[.max_attempts, .timeout]')" = '[5,300]' ]
	# the same limits and words as sw-claim add
	for bad in "--max-attempts 0" "--max-attempts 1000001" "--max-attempts x" "--timeout 1x" "--timeout -1s"; do
		run --separate-stderr bash -c "seq 2 | sw-shard split --lines $bad"
		assert_failure 64
		[ -z "$output" ]
		run --separate-stderr sw-claim add -q w $bad 1
		assert_failure 64
	done
	run --separate-stderr bash -c "seq 2 | sw-shard split --lines --timeout soon"
	[ "$stderr" = "sw-shard: split: bad --timeout 'soon': want a duration such as 30, 30s, 5m, 2h, 7d (see sw-shard --help)" ]
}

@test "split of no items, like xargs -r, makes no shard and no combiner: exit 0 and one line on stderr" {
	command -v sw-claim >/dev/null || skip "sw-claim not built"
	run --separate-stderr bash -c "sw-shard split --id e </dev/null"
	assert_success
	assert_output ''
	[ "$stderr" = "sw-shard: split: no items on stdin; nothing printed" ]
	# blank lines are no items; nothing reaches the queue, not even the queue
	run --separate-stderr bash -c "printf '\n \n' | sw-shard split --lines --id e -q w --enqueue"
	assert_success
	assert_output ''
	[ "$stderr" = "sw-shard: split: no items on stdin; nothing enqueued" ]
	[ ! -e "$SW_DIR/queues/w" ]
	run --separate-stderr bash -c "sw-shard split --id e -q w --enqueue --quiet </dev/null"
	assert_success
	[ -z "$output" ]
	[ -z "$stderr" ]
	# through a pipe to sw-claim add: nothing added either
	sw-shard split --lines --id e </dev/null 2>/dev/null | sw-claim add -q w2 --quiet
	run --separate-stderr sw-claim show -q w2 e_combine
	assert_failure 1
}

@test "--nodes with one dotted name (nodes.txt, db1.example.com) is refused with a hint; @list: and lists of hosts are nodes" {
	cd "$BATS_TEST_TMPDIR"
	# a file named without ./ that does not exist: an error, not a node called nodes.txt
	run --separate-stderr bash -c "echo k | sw-shard assign --nodes nodes.txt"
	assert_failure 64
	assert_output ''
	[ "$stderr" = "sw-shard: assign: --nodes nodes.txt: a file or one node? name a file as ./nodes.txt or @file:nodes.txt, a node as @list:nodes.txt (see sw-shard --help)" ]
	# the same when it exists: what a value means never depends on the directory
	printf 'n1\nn2\n' >nodes.txt
	run --separate-stderr bash -c "echo k | sw-shard assign --nodes nodes.txt"
	assert_failure 64
	[[ "$(echo k | sw-shard assign --nodes ./nodes.txt --tsv | cut -f2)" == n[12] ]]
	# host names stay usable
	[ "$(echo k | sw-shard assign --nodes @list:db1.example.com --tsv | cut -f2)" = db1.example.com ]
	[[ "$(echo k | sw-shard assign --nodes db1.example.com,db2.example.com --tsv | cut -f2)" == db[12].example.com ]]
	[[ "$(echo k | sw-shard assign --nodes @list:db1.example.com=2,db2.example.com --tsv | cut -f2)" == db[12].example.com ]]
	[ "$(echo k | sw-shard assign --nodes web1=0.5 --tsv | cut -f2)" = web1 ]   # a dot in the weight is no file
	# every option that takes nodes, and ring, by the same rule
	run --separate-stderr sw-shard plan --from a,b --to db1.example.com --keys 10
	assert_failure 64
	run --separate-stderr sw-shard balance --nodes 10.0.0.1 --keys 10
	assert_failure 64
	run --separate-stderr sw-shard ring pool --nodes db1.example.com
	assert_failure 64
	[ ! -e "$SW_DIR/rings" ]
	run --separate-stderr sw-shard ring pool --nodes @list:db1.example.com
	assert_success
	run --separate-stderr bash -c "echo k | sw-shard assign --nodes @list:"
	assert_failure 65
}

@test "bash completion offers node files as ./PATH (a bare name is a node), and @list: @file: @agents" {
	cd "$BATS_TEST_TMPDIR"
	touch nodes.txt
	complete_words() {
		# shellcheck source=/dev/null
		source "$top/completions/sw-shard.bash"
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=()
		_sw_shard
		printf '%s\n' "${COMPREPLY[@]}"
	}
	run complete_words sw-shard assign --nodes no
	assert_output ./nodes.txt
	run complete_words sw-shard assign --nodes @file:no
	assert_output @file:nodes.txt
	run complete_words sw-shard plan --from @
	assert_output $'@agents\n@list:\n@file:'
}
