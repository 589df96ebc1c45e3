# tests/security.bash — the cast and the props of the security suites
# (tests/security.bats, tests/multihost/security.bats): who plants an
# attack, who runs the verbs afterwards, and how a test knows that nothing
# outside the workspace changed and nothing hung.
#
# As root (CI runs as root) the suite makes three users and a group:
#   swsec-victim    owns the workspace (group swsec, mode 2770) and a
#                   private home-like directory $H (0700)
#   swsec-attacker  a member of swsec: trusted to finish items, not to
#                   make anyone's sw touch files outside the workspace
#   swsec-outsider  in no group of the workspace: can do nothing
# and root runs every verb as a second victim, with a root-only directory
# $R of its own.  Without root, one user plays every part: the attacks are
# then those of a process of one's own or of another host.
#
# Every call goes through `as WHO …` under `timeout 10`; one that hangs is
# written to $T/hung and fails the test.  `snap` records the victims'
# files outside the workspace (type, mode, owner, size, mtime, sha256) so
# that `unchanged` can tell that nothing there moved.

SEC_GROUP=swsec
SEC_ATTACKER=swsec-attacker
SEC_VICTIM=swsec-victim
SEC_OUTSIDER=swsec-outsider
# runs that use the users, one a line; in /run, where only root writes (a
# registry in /tmp could itself be planted)
SEC_REG=/run/swsec.users

sec_root() { [ "$(id -u)" -eq 0 ]; }
# Whether the parts are played by different users: as root, unless the
# suite sets SEC_ONE_USER (the multihost one: a FUSE mount without
# allow_other admits only the user who mounted it).
sec_multi() { sec_root && [ -z "${SEC_ONE_USER:-}" ]; }

if sec_multi; then
	PLANTERS="attacker victim"   # another group member, and the victim itself
	VICTIMS="victim root"
else
	PLANTERS="self"
	VICTIMS="self"
fi

# setup_file: the users and the group, shared by runs that overlap (the
# ASan and the multihost suites run side by side): each run registers,
# the last one out removes them.
sec_users_up() {
	sec_multi || return 0
	command -v useradd >/dev/null && command -v setpriv >/dev/null ||
		{ echo "useradd and setpriv are needed as root" >&2; return 1; }
	(
		flock 9
		getent group "$SEC_GROUP" >/dev/null || groupadd --system "$SEC_GROUP" || exit 1
		for u in "$SEC_ATTACKER" "$SEC_VICTIM" "$SEC_OUTSIDER"; do
			getent passwd "$u" >/dev/null && continue
			groups=()
			[ "$u" = "$SEC_OUTSIDER" ] || groups=(-G "$SEC_GROUP")
			useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
				--user-group "${groups[@]}" "$u" || exit 1
		done
		echo "$BATS_RUN_TMPDIR" >>"$SEC_REG"
	) 9>>"$SEC_REG.lock"
}

sec_users_down() {
	sec_multi || return 0
	(
		flock 9
		# runs whose directory is gone were killed: they no longer count
		others=$(grep -vxF "$BATS_RUN_TMPDIR" "$SEC_REG" 2>/dev/null |
			while read -r d; do [ -d "$d" ] && echo "$d"; done)
		if [ -n "$others" ]; then
			printf '%s\n' "$others" >"$SEC_REG"
			exit 0
		fi
		rm -f "$SEC_REG"
		for u in "$SEC_ATTACKER" "$SEC_VICTIM" "$SEC_OUTSIDER"; do
			userdel "$u" 2>/dev/null
		done
		groupdel "$SEC_GROUP" 2>/dev/null
		true
	) 9>>"$SEC_REG.lock"
}

user_of() {
	case $1 in
	attacker) echo "$SEC_ATTACKER" ;;
	victim) echo "$SEC_VICTIM" ;;
	outsider) echo "$SEC_OUTSIDER" ;;
	esac
}

# as WHO CMD...: CMD as WHO (attacker, victim, outsider, root, self) under
# timeout 10, with WHO's HOME ($T/s-WHO, private to WHO, or $AS_HOME).
# Without root every part is played by this user.
as() {
	local who=$1 rc=0
	shift
	local -a pre=()
	if sec_multi && [ "$who" != root ] && [ "$who" != self ]; then
		local u
		u=$(user_of "$who")
		pre=(setpriv --reuid="$u" --regid="$u" --init-groups --)
	fi
	HOME=${AS_HOME:-$T/s-$who} timeout 10 "${pre[@]}" "$@" || rc=$?
	if [ "$rc" -eq 124 ]; then
		echo "HUNG: as $who: $*" >>"$T/hung"
		echo "HUNG: as $who: $*" >&2
	fi
	return "$rc"
}

# plant WHO SCRIPT: runs SCRIPT in bash as WHO, in the workspace, with
# W, H, R, T, q (the queue), OLD and item_json at hand, failing on the
# first error.  Its umask is a group member's in a shared workspace (002).
# Then waits PLANT_SETTLE seconds, when set: another host of a network
# filesystem may see a replaced directory as it was for about a second.
plant() {
	local who=$1 script=$2
	as "$who" env W="$W" H="$H" R="$R" T="$T" q="${q:-}" OLD="$OLD" \
		bash -ec "$(declare -f item_json); umask 002; cd \"\$W\"; $script"
	[ -z "${PLANT_SETTLE:-}" ] || sleep "$PLANT_SETTLE"
}

# A fresh stage of props for one test.  $T is made 0711 in /tmp (the bats
# directories cannot be entered by the other users).
sec_setup() {
	T=$(mktemp -d /tmp/swsec.XXXXXX)
	chmod 711 "$T"
	W=$T/ws H=$T/home R=$T/rootonly
	export SW_DIR=$W SW_SYNC=off
	unset SW_UMASK SW_CLOCK_SKEW SW_POLL SW_MAX_ITEM_BYTES XDG_STATE_HOME
	mkdir -m 700 "$H" "$R" "$H/private" "$R/private"
	echo 'export PATH=/usr/bin' >"$H/.profile"
	echo 'the victim''s secret' >"$H/secret"
	echo 'a lock file' >"$H/lockfile"
	echo a >"$H/private/a"
	echo b >"$H/private/b"
	echo 'root only' >"$R/file"
	echo c >"$R/private/c"
	local who
	for who in attacker victim outsider root self; do
		mkdir -m 700 "$T/s-$who"
		if sec_multi && [ "$who" != root ] && [ "$who" != self ]; then
			chown "$(user_of "$who")": "$T/s-$who"
		fi
	done
	mkdir "$W"
	if sec_multi; then
		chown -R "$SEC_VICTIM": "$H"
		chown "$SEC_VICTIM:$SEC_GROUP" "$W"
		chmod 2770 "$W"
	else
		chmod 700 "$W"
	fi
	# the victim makes the workspace its own before anyone plants
	as victim sw-claim stats >/dev/null
	snap >"$T/before"
}

sec_teardown() {
	[ -n "${T:-}" ] || return 0
	local hung=
	[ -s "$T/hung" ] && hung=$(cat "$T/hung")
	pkill_mine
	rm -rf "$T"
	[ -z "$hung" ] || { echo "$hung"; return 1; }
}

# Background processes a test started and noted in BG_PIDS.
BG_PIDS=()
pkill_mine() {
	local p
	for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	BG_PIDS=()
}

# The victims' files outside the workspace, in a form that changes when
# anything there is written, replaced, removed, added or touched.
snap() {
	(cd "$T" && find home rootonly -printf '%p %y %m %U:%G %s %T@\n' | sort &&
		find home rootonly -type f -exec sha256sum {} + | sort)
}

unchanged() {
	snap >"$T/after"
	diff "$T/before" "$T/after" || { echo "files outside the workspace changed"; return 1; }
}

# A valid item, as sw writes it, with id $1 and further fields $2.
item_json() {
	printf '{"id":"%s","queue":"%s","priority":5,"payload":"planted","attempt":0,"max_attempts":5,"timeout":300,"gen":0,"created_at_unix_ns":1%s}' \
		"$1" "${q:-x}" "${2:+,$2}"
}

# Nonces of transitions by a process of another boot, long ago: any
# maintenance may recover them.
OLD=000000000000-1-1-1000000000000

# good WHO Q IDS...: WHO adds one item per id, payload the id, in order.
good() {
	local who=$1 q=$2 id
	shift 2
	for id in "$@"; do
		as "$who" sw-claim add -q "$q" --id "$id" "\"$id\"" >/dev/null || return
	done
}

# served WHO Q IDS...: `next` hands WHO these items in this order, each
# finished before the next.
served() {
	local who=$1 q=$2 want out id tok
	shift 2
	for want in "$@"; do
		out=$(as "$who" sw-claim next -q "$q") || { echo "next as $who (want $want): exit $?"; return 1; }
		id=$(jq -r .id <<<"$out")
		tok=$(jq -r .token <<<"$out")
		[ "$id" = "$want" ] || { echo "next as $who gave '$id', want '$want'"; return 1; }
		as "$who" sw-claim done -q "$q" "$id" --token "$tok" >/dev/null ||
			{ echo "done $id as $who failed"; return 1; }
	done
}

# The head bucket of a queue's priority-5 items without a role.
head_bucket() {
	local d=$W/queues/$1/pending/5/-
	find "$d" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -n | head -1
}

# battery WHO Q: every reading and maintaining verb of every program as
# WHO, with the queue Q planted; none may hang (as notes it), fail as an
# internal error or a crash (70, 134, 139), or print anything of the
# victims' files.  `show` looks up g1 and the ids in SHOW.  Their stderr
# goes to $T/stderr for the checks on what reaches a terminal.
battery() {
	local who=$1 q=$2 c rc id
	local -a calls=(
		"sw-claim list -q $q --state all"
		"sw-claim list -q $q --state damaged"
		"sw-claim list --state all"
		"sw-claim stats"
		"sw-claim show -q $q g1"
		"sw-claim reap -q $q"
		"sw-claim reap"
		"sw-lease list"
		"sw-lease acquire sec-$who --ttl 1s"
		"sw-lease show sec-$who"
		"sw-agent list"
		"sw-agent reap"
		"sw-metrics export --db $T/s-$who/m.db"
		"sw-shard assign --nodes @agents"
	)
	for id in ${SHOW:-}; do calls+=("sw-claim show -q $q $id"); done
	for c in "${calls[@]}"; do
		rc=0
		# shellcheck disable=SC2086  # the calls are words
		as "$who" $c </dev/null >"$T/out" 2>>"$T/stderr" || rc=$?
		case $rc in
		124 | 70 | 134 | 139) echo "as $who: $c: exit $rc"; tail -3 "$T/stderr"; return 1 ;;
		esac
		! grep -qE "$SECRETS" "$T/out" "$T/stderr" || { echo "as $who: $c: printed a victim's file"; return 1; }
	done
}

# What the victims' files hold: no output of any verb may show it.
SECRETS='victim.s secret|root only|TOPSECRET|export PATH=/usr/bin|a lock file'

# attack SCRIPT [REASON...]: for every planter and victim, a queue q of its
# own holding g1 g2 g3; SCRIPT planted by the planter (with Q, the queue's
# directory, and B, its head bucket, at hand); BEFORE (a command, when set,
# with p, v and q set); the battery as the victim; the good items (SERVE,
# default g1 g2 g3) served in order; every REASON among those of `list
# --state damaged`; then CHECK (a command, when set).  Last, nothing
# outside the workspace changed.
attack() {
	local script=$1 r
	shift
	for p in $PLANTERS; do for v in $VICTIMS; do
		q=$p-$v
		good victim "$q" g1 g2 g3
		plant "$p" "Q=queues/\$q; B=\$Q/pending/5/-/$(head_bucket "$q"); $script"
		: >"$T/stderr"
		[ -z "${BEFORE:-}" ] || $BEFORE
		battery "$v" "$q"
		# shellcheck disable=SC2086  # ids are words
		served "$v" "$q" ${SERVE:-g1 g2 g3}
		for r in "$@"; do
			damaged "$v" "$q" | grep -qxF "$r" || { echo "not quarantined as '$r'"; return 1; }
		done
		[ -z "${CHECK:-}" ] || $CHECK
	done; done
	unchanged
}

# damaged WHO Q: the reasons `list --state damaged` gives, one a line.
damaged() {
	as "$1" sw-claim list -q "$2" --state damaged | jq -r .reason | sort
}

# Whether the programs under test are the ASan build (tests/run sets
# SW_BIN): their memory is then mostly the sanitizer's shadow, and they
# are slower.
under_asan() { [[ ${SW_BIN:-} == */san/* ]]; }

# peak WHO CMD...: runs CMD as WHO; its peak memory in KiB (GNU time)
# goes to KB, its exit status to RC.  Under ASan KB is 0: the peak would
# measure the sanitizer, and only the exit status counts.
peak() {
	local who=$1 f=$T/s-$1/time
	shift
	RC=0
	as "$who" /usr/bin/time -o "$f" -f %M "$@" || RC=$?
	KB=$(tail -1 "$f")
	! under_asan || KB=0
}

# bug WHAT: a known bug in a file this suite does not own; the test stops
# here as skipped, saying so.  SW_SEC_BUGS=1 runs it to the end (to see
# whether the bug is fixed).
bug() {
	[ -n "${SW_SEC_BUGS:-}" ] || skip "BUG: $1"
}

# No byte of $1 is a control character other than newline, and every line
# is a diagnostic of one of the programs.
terminal_safe() {
	! LC_ALL=C grep -q $'[\x01-\x09\x0b-\x1f\x7f]' <<<"$1" || { echo "control bytes: $(cat -v <<<"$1")"; return 1; }
	! grep -v '^sw-[a-z]*: ' <<<"$1" | grep -q . || { echo "a line that is no diagnostic: $1"; return 1; }
}

# ---- the attacks that apply on one host and across hosts -------------------
# (tests/security.bats and tests/multihost/security.bats run each of them)

# 1: a stage file whose JSON id is a traversal path is quarantined; next and reap replace no file outside the workspace
sc_stage_traversal() {
	attack '
		printf "%s" "$(item_json ../../../../home/.profile "\"state\":\"done\"")" >$Q/stage/$OLD-a1.nC
		: >$Q/stage/$OLD-a1.kC
		printf "%s" "$(item_json "$R/file" "\"state\":\"done\"")" >$Q/stage/$OLD-a2.nP
		: >$Q/stage/$OLD-a2.kP
		printf "%s" "$(item_json ../../../../rootonly/file)" >$Q/stage/$OLD-a3.oC
		printf "%s" "$(item_json ../../../../home/secret)" >$Q/stage/$OLD-a4.a.g9' \
		"no valid id"
}

# 1: claims, delayed and blocked items whose content names a traversal id, role or after are quarantined by reap, as root too
sc_content_traversal() {
	attack '
		printf "%s" "$(item_json ../../../../rootonly/file)" >$Q/claimed/evil.1048577.1
		printf "%s" "$(item_json r1 "\"role\":\"../../../../rootonly\"")" >$Q/claimed/r1.1048577.1
		printf "%s" "$(item_json a1 "\"after\":[\"../../../../rootonly/private\"]")" >$Q/claimed/a1.1048577.1
		printf "%s" "$(item_json t1 "\"role\":\"../../../../home\"")" >$Q/timed/0000000000000001.t1
		printf "%s" "$(item_json b1 "\"after\":[\"../../../../home/private\"]")" >$Q/blocked/b1' \
		"no valid id" "bad role" "bad after"
	[ ! -e "$W/rootonly" ] && [ ! -e "$W/home" ]
}

# 1: done/x and deps/x symlinks to a private directory with a crafted stage file: reap finishes x and deletes nothing there
sc_done_deps_symlinks() {
	finished_xy() {
		[ "$(as "$v" sw-claim show -q "$q" x | jq -r .state)" = done ]
		[ "$(as "$v" sw-claim show -q "$q" y | jq -r .state)" = done ]
	}
	CHECK=finished_xy attack '
		ln -s "$H/private" $Q/done/x
		ln -s "$H/private" $Q/deps/x
		ln -s "$R/private" $Q/deps/y
		printf "%s" "$(item_json x "\"state\":\"done\"")" >$Q/stage/$OLD-b1.nC
		: >$Q/stage/$OLD-b1.kC
		printf "%s" "$(item_json y "\"state\":\"done\"")" >$Q/stage/$OLD-b2.nC
		: >$Q/stage/$OLD-b2.kC' \
		"a symlink" "not a directory"
}

# 2: state directories replaced by symlinks to a private directory are moved aside, never written through; add still adds
sc_state_dir_symlinks() {
	for p in $PLANTERS; do for v in $VICTIMS; do
		q=$p-$v
		good victim "$q" z
		plant "$p" '
			Q=queues/$q
			for d in pending timed blocked deps claimed done dead cancelled stage ids; do
				rm -rf $Q/$d
				ln -s "$H/private" $Q/$d
			done'
		good "$v" "$q" g1 g2 g3
		battery "$v" "$q"
		served "$v" "$q" g1 g2 g3
		[ "$(as "$v" sw-claim list -q "$q" --state damaged | jq -r 'select(.type == "symlink") | .name' | sort | tr '\n' ' ')" = \
		  "blocked cancelled claimed dead deps done ids pending stage timed " ]
	done; done
	unchanged
}

# 2: claimed, delayed, blocked, finished, id and pending entries and bucket directories that are symlinks are quarantined, their targets untouched
sc_entry_symlinks() {
	SHOW="c1 t1 b1 d1 d2 d3 g9" attack '
		ln -s "$H/.profile" $Q/claimed/c1.1048577.1
		ln -s "$H/.profile" $Q/timed/0000000000000001.t1
		ln -s "$H/secret" $Q/blocked/b1
		ln -s "$H/secret" $Q/done/d1
		ln -s "$H/secret" $Q/dead/d2
		ln -s "$H/secret" $Q/cancelled/d3
		ln -s "$H/secret" $Q/ids/g9
		ln -s "$H/.profile" $B/0000000000000001.p1
		mkdir -p $Q/pending/2/-
		ln -s "$H/private" $Q/pending/2/-/1' \
		"a symlink" "a bucket that is not a directory"
}

# 4: FIFOs planted as items, transitions, hints and locks hang no reader; next serves the good items in order
sc_fifos() {
	SHOW="f3 f5 f6 f7 f8" attack '
		mkfifo $B/0000000000000001.f1 $Q/timed/0000000000000001.f2 $Q/blocked/f3 \
			$Q/claimed/f4.1048577.1 $Q/done/f5 $Q/dead/f6 $Q/cancelled/f7 $Q/ids/f8 $Q/deps/f9 \
			$Q/stage/$OLD-c1.nC $Q/stage/$OLD-c2.oP
		: >$Q/stage/$OLD-c1.kC
		rm -f $Q/wake $Q/maint.lock
		mkfifo $Q/wake $Q/maint.lock' \
		"not a regular file"
}

# 4: a symlink, a FIFO, a directory, a non-JSON or an empty file at the head of a bucket: every next still serves the good items
sc_bucket_head() {
	attack '
		ln -s "$H/.profile" $B/0000000000000001.h1
		mkfifo $B/0000000000000002.h2
		mkdir $B/0000000000000003.h3
		echo "not json" >$B/0000000000000004.h4
		: >$B/0000000000000005.h5' \
		"a symlink" "not a regular file" "not JSON" "empty"
}

# 4: a FIFO as a lease's head hint hangs neither acquire, show nor list
sc_lease_head_fifo() {
	for p in $PLANTERS; do for v in $VICTIMS; do
		as victim sw-lease acquire "l-$p-$v" --ttl 1s >/dev/null
		plant "$p" 'L=leases/l-'"$p-$v"'; rm -f $L/head; mkfifo $L/head'
		sleep 1.2
		SW_CLOCK_SKEW=0s as "$v" sw-lease acquire "l-$p-$v" >/dev/null
		as "$v" sw-lease show "l-$p-$v" | jq -e '.state == "held"'
		as "$v" sw-lease list | jq -s -e "map(select(.name == \"l-$p-$v\")) | length == 1"
	done; done
	unchanged
}

# 4: agent records that are FIFOs, symlinks, directories, not JSON, oversized or lying about their id are skipped with a warning and moved aside by reap
sc_agent_records() {
	as victim sw-agent register --id good >/dev/null
	plant "${PLANTERS%% *}" '
		A=agents
		mkfifo $A/fifo.json
		ln -s "$H/secret" $A/link.json
		mkdir $A/dir.json
		echo "not json" >$A/text.json
		truncate -s 2G $A/big.json
		echo "{\"id\":\"../../home/x\"}" >$A/lie.json
		echo "{\"id\":\"roles\",\"roles\":[\"../x\"]}" >$A/roles.json
		printf "{\"id\":\"term\",\"hostname\":\"\\\\u001b]2;pwn\\\\u0007\"}" >$A/term.json'
	for v in $VICTIMS; do
		run --separate-stderr as "$v" sw-agent list
		[ "$status" -eq 0 ] && [ "$(jq -r .id <<<"$output")" = good ]
		[ "$(grep -c 'skipping agent record' <<<"$stderr")" -eq 8 ]
		as "$v" sw-metrics export --db "$T/s-$v/m.db" 2>/dev/null | grep -qx 'sw_agents{state="live"} 1'
		[ "$(echo k | as "$v" sw-shard assign --nodes @agents 2>/dev/null | jq -r .node)" = good ]
	done
	v=${VICTIMS##* }
	run --separate-stderr as "$v" sw-agent reap
	[ "$status" -eq 0 ]
	[ "$(grep -c 'moved agent record' <<<"$stderr")" -eq 8 ]
	[ "$(ls "$W/agents")" = "$(printf 'damaged\ngood.json')" ]
	run --separate-stderr as "$v" sw-agent list
	[ -z "$stderr" ]
	unchanged
}

# 8: entry names with escape sequences and newlines are escaped in every warning
sc_escaped_names() {
	safe_stderr() {
		terminal_safe "$(cat "$T/stderr")"
		grep -q '\\x1b' "$T/stderr"
	}
	CHECK=safe_stderr attack '
		: >"$Q/claimed/$(printf "\033]2;pwn\007\nsw-claim: forged.1.1")"
		: >"$B/$(printf "0000000000000001.\033[2J")"
		: >"$Q/stage/$(printf "\033[31mred")"
		mkdir -p "$W/agents"
		: >"$W/agents/$(printf "\033[31m\nx.json")"' \
		"not a claim name" "not a pending entry name" "not a transition name"
}

# 2, 4, 7 for sw-limit and sw-breaker: their version chains (lib/chain.c)
# with a limit, a chain or a tally directory that is a symlink, and head
# hints and newest versions that are symlinks, FIFOs or oversized (sparse)
# files: nothing is written through a link, nothing hangs or is read
# whole, nothing of a victim's file is printed; a damaged version reads as
# the pages say (an emptied bucket, a full window, a trip, each at its
# write time) and the limit or breaker works again once that has passed.
sc_limit_chains() {
	local n c rc
	for p in $PLANTERS; do for v in $VICTIMS; do
		n=$p-$v
		as victim sw-limit take "b-$n" --rate 1/h --burst 1 --quiet
		as victim sw-limit take "w-$n" --window 1h --max 5 --quiet
		as victim sw-limit acquire "c-$n" --concurrency 2 >/dev/null
		as victim sw-breaker record "k-$n" --fail --quiet
		as victim sw-breaker record "f-$n" --fail --quiet
		plant "$p" '
			V2=v.00000000000000000002 L=limits K=breakers n='"$n"'
			ln -s "$H/private" $L/sl-$n
			mkdir $L/sb-$n
			ln -s "$H/private" $L/sb-$n/bucket
			ln -s "$H/private" $K/sl-$n
			rm -f $L/b-$n/bucket/head
			ln -s "$H/lockfile" $L/b-$n/bucket/head
			ln -s "$H/secret" $L/b-$n/bucket/$V2
			ln -s "$H/private" $L/b-$n/tally
			rm -f $L/w-$n/window/head
			mkfifo $L/w-$n/window/head $L/w-$n/window/$V2
			for i in 1 2 3; do [ -e $L/c-$n/leases/$i ] || ln -s "$H/private" $L/c-$n/leases/$i; done
			truncate -s 4G $K/k-$n/$V2
			rm -f $K/f-$n/head
			mkfifo $K/f-$n/head $K/f-$n/$V2'
		# a limit, a chain or a breaker that is a symlink: refused
		for c in "sw-limit take sl-$n --rate 1/s" "sw-limit take sb-$n --rate 1/s" \
			"sw-limit show sl-$n" "sw-breaker check sl-$n" "sw-breaker record sl-$n --fail"; do
			run --separate-stderr as "$v" $c
			case $status in 0|70|124|134|139) echo "$c as $v: exit $status: $stderr"; return 1 ;; esac
			[[ $stderr == *"symbolic links"* || $stderr == *"Not a directory"* ]] ||
				{ echo "$c as $v: $stderr"; return 1; }
		done
		# damaged versions read as the pages say, with a warning
		run --separate-stderr as "$v" sw-limit take "b-$n" --rate 1/h --burst 1
		[ "$status" -eq 75 ] && [[ $stderr == *"read as an empty bucket"* ]] || { echo "b: $status $stderr"; return 1; }
		[[ $stderr == *"refusal not counted"* ]]   # the tally is a link: not written through
		run --separate-stderr as "$v" sw-limit take "w-$n" --window 1h --max 5
		[ "$status" -eq 75 ] && [[ $stderr == *"read as a full window"* ]] || { echo "w: $status $stderr"; return 1; }
		for c in k f; do
			run --separate-stderr as "$v" sw-breaker run "$c-$n" -- true
			[ "$status" -eq 75 ] && [[ $stderr == *"read as a trip"* ]] || { echo "$c: $status $stderr"; return 1; }
		done
		# every reader goes on past them
		for c in "sw-limit show b-$n" "sw-limit show w-$n" "sw-limit show c-$n" "sw-limit list" \
			"sw-limit acquire c-$n --concurrency 3" "sw-breaker show k-$n" "sw-breaker show f-$n" \
			"sw-breaker list" "sw-breaker check f-$n" "sw-metrics export --db $T/s-$v/m.db"; do
			rc=0
			# shellcheck disable=SC2086  # the calls are words
			as "$v" $c </dev/null >"$T/out" 2>"$T/err" || rc=$?
			case $rc in 70|124|134|139) echo "as $v: $c: exit $rc: $(cat "$T/err")"; return 1 ;; esac
			! grep -qE "$SECRETS" "$T/out" "$T/err" || { echo "as $v: $c: printed a victim's file"; return 1; }
		done
		# the 4 GiB version is refused by its size, not read
		peak "$v" sw-breaker show "k-$n" >/dev/null 2>&1
		[ "$RC" -eq 0 ] && [ "$KB" -lt 65536 ] || { echo "show k: exit $RC, peak $KB KiB"; return 1; }
		# once the damage is an hour old, each works again
		for c in "sw-limit take b-$n --rate 1/h --burst 1" "sw-limit take w-$n --window 1h --max 5" \
			"sw-breaker run k-$n -- true" "sw-breaker run f-$n -- true"; do
			# shellcheck disable=SC2086
			SW_CLOCK_OFFSET=2h as "$v" $c >/dev/null 2>&1 || { echo "2h later, as $v: $c: exit $?"; return 1; }
		done
	done; done
	unchanged
}
