#!/usr/bin/env bats
# The documentation and completions keep up with the programs: every verb
# and long option each one accepts is in its man page and in both
# completions, the README has every program, `make demo` runs to its end,
# and sw-claim's bash completion offers real queues, ids and tokens.
load helper

PROGS="sw-claim sw-lease sw-shard sw-agent sw-metrics sw-limit sw-breaker sw-sim"

@test "every option of every program's --help is documented in its man page" {
	local p o missing=
	for p in $PROGS; do
		for o in $(help_options "$p"); do
			# ".Fl -queue" or ".It Fl q , -queue"
			grep -qE -- "(Fl |, )-${o#--}\b" "$top/man/$p.1" || missing+=" $p:$o"
		done
	done
	[ -z "$missing" ] || { echo "not in the man page:$missing"; return 1; }
}

# bash_offers PROG: the options PROG's bash completion offers for "-",
# as the first word and after each verb of --help, one a line.
bash_offers() {
	local v
	for v in '' $(help_verbs "$1"); do
		bash --norc -c '. "$1"; shift
			COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=()
			$(complete -p "$1" | sed -E "s/.* -F ([^ ]+) .*/\1/")
			printf "%s\n" "${COMPREPLY[@]}"' bash "$top/completions/$1.bash" "$1" ${v:+"$v"} -
	done | sort -u
}

@test "every option of every program's --help is offered by its bash and zsh completions" {
	local p o missing= offers
	for p in $PROGS; do
		offers=$(bash_offers "$p")
		for o in $(help_options "$p"); do
			grep -qxF -- "$o" <<<"$offers" || missing+=" bash:$p:$o"
			grep -q -- "$o\b" "$top/completions/_$p" || missing+=" zsh:$p:$o"
		done
	done
	[ -z "$missing" ] || { echo "missing:$missing"; return 1; }
}

@test "every verb of every program's --help is in its man page and completions" {
	local p v missing=
	for p in $PROGS; do
		for v in $(help_verbs "$p"); do
			grep -q "^\.It Cm $v\b\|^\.Cm $v\b\|^\.Nm $p Cm $v\b" "$top/man/$p.1" || missing+=" man:$p:$v"
			grep -q "\b$v\b" "$top/completions/$p.bash" || missing+=" bash:$p:$v"
			grep -q "\b$v\b" "$top/completions/_$p" || missing+=" zsh:$p:$v"
		done
	done
	[ -z "$missing" ] || { echo "missing:$missing"; return 1; }
}

@test "every page is in the README and every program has a section there" {
	local p missing=
	for p in $PROGS; do
		grep -q "^### $p " "$top/README.md" || missing+=" section:$p"
		grep -q "(man/$p.1)" "$top/README.md" || missing+=" link:$p"
	done
	[ -z "$missing" ] || { echo "missing in README.md:$missing"; return 1; }
}

@test "every page but sw-workspace(5) points to its SECURITY section, which names every program's files" {
	local m missing=
	for m in "$top"/man/*.[17]; do
		tr '\n' ' ' <"$m" | grep -qE 'SECURITY in \.Xr sw-workspace 5' || missing+=" ${m##*/}"
	done
	[ -z "$missing" ] || { echo "no pointer to SECURITY in sw-workspace(5):$missing"; return 1; }
	local sec
	sec=$(sed -n '/^\.Sh SECURITY/,/^\.Sh /p' "$top/man/sw-workspace.5")
	for m in lease limit breaker agent; do
		grep -q "$m" <<<"$sec" || missing+=" $m"
	done
	[ -z "$missing" ] || { echo "SECURITY in sw-workspace(5) does not cover:$missing"; return 1; }
}

@test "make demo runs to its end and says what happened" {
	[[ ${SW_BIN:-} == */san/* ]] && skip "the demo runs the normal build"
	run --separate-stderr make -s -C "$top" demo
	assert_success
	assert_output --partial "each item done exactly once"
	assert_output --partial "lost: 0"
	assert_output --partial "finished twice"   # the simulated swarm's report
}

# Completes the words given (the last one being completed) with the bash
# completion and prints the candidates, one per line.
bash_complete() {
	# shellcheck source=/dev/null
	source "$top/completions/sw-claim.bash"
	COMP_WORDS=("$@")
	COMP_CWORD=$(($# - 1))
	COMPREPLY=()
	_sw_claim
	printf '%s\n' "${COMPREPLY[@]}"
}

@test "bash completion offers the queues of the workspace, ids and tokens of claims" {
	sw-claim add -q mail --id msg-1 --quiet '1'
	sw-claim add -q jobs --quiet '2'
	local token
	token=$(sw-claim next -q mail | jq -r .token)
	run bash_complete sw-claim next -q ''
	assert_output $'jobs\nmail'
	run bash_complete sw-claim done -q mail ''
	assert_output msg-1
	run bash_complete sw-claim done -q mail msg-1 --token ''
	assert_output "$token"
	run bash_complete sw-claim list --state pending,d
	assert_output $'pending,done\npending,dead\npending,damaged'
}

@test "bash completion: --state offers the states the verb takes, none already typed; ids of the states each verb takes" {
	sw-claim add --id x --max-attempts 1 1 >/dev/null
	local token
	token=$(sw-claim next | jq -r .token)
	sw-claim fail x --token "$token" >/dev/null
	sw-claim add --id a 2 >/dev/null
	sw-claim add --id b --after a 3 >/dev/null
	sw-claim add --id later --delay 1h 4 >/dev/null
	sw-claim next >/dev/null   # a
	run bash_complete sw-claim cancel --state pending,''
	assert_output $'pending,blocked\npending,claimed'
	run bash_complete sw-claim list --state pending,blocked,c
	assert_output $'pending,blocked,claimed\npending,blocked,cancelled'
	run bash_complete sw-claim requeue --state ''
	assert_output $'dead\ncancelled'
	run bash_complete sw-claim purge --state dead,''
	assert_output $'dead,done\ndead,cancelled\ndead,damaged'
	run bash_complete sw-claim next --format ''
	assert_output $'json\ntsv\nsh'
	run bash_complete sw-claim add --on-dep-fail ''
	assert_output $'dead\ncancel\nrun'
	run bash_complete sw-claim add --after-missing = ''
	assert_output $'ok\nrefuse'
	# claimed, delayed (its entry is DUE.ID) and blocked; dead; queues
	run bash_complete sw-claim cancel ''
	assert_output $'a\nlater\nb'
	run bash_complete sw-claim wait ''
	assert_output $'a\nlater\nb'
	run bash_complete sw-claim requeue ''
	assert_output x
	run bash_complete sw-claim deps ''
	assert_output $'b\na'
	run bash_complete sw-claim drop ''
	assert_output default
}

# The long options sw-claim takes with VERB, of those given.  Each is
# given a value, or none when it is in $flags.
claim_takes() {
	local verb=$1 o arg
	shift
	for o; do
		arg=$o=0
		[[ " $flags " != *" $o "* ]] || arg=$o
		! takes_option sw-claim "$verb" "$arg" || echo "$o"
	done
}

# The long options zsh's completion gives _arguments for `sw-claim VERB`.
zsh_claim_options() {
	zsh -f -c '
		_arguments() {
			if [[ $1 == -C ]]; then   # the verb is given: on to its arguments
				state=args; shift words; (( CURRENT-- )); return 0
			fi
			print -rl -- "$@"
		}
		words=(sw-claim "$1" ""); CURRENT=3
		source "$2"' zsh "$1" "$top/completions/_sw-claim" |
		sed -E 's/^(\([^)]*\))?\*?//' | grep -oE '^--[a-z-]+' | sort -u
}

@test "sw-claim's completions offer each verb exactly the options it takes" {
	local verbs v opts want bash zsh
	verbs=$(help_verbs sw-claim)
	# all but the options every verb takes
	opts=$(help_options sw-claim | grep -vxE -- '--(dir|spans|quiet|help|version)')
	cd "$BATS_TEST_TMPDIR"   # what taking an option might make stays here
	local flags= o
	for o in $opts; do
		! is_flag sw-claim list "$o" || flags+=" $o"
	done
	[[ $flags == *--table* && $flags == *--force* ]]
	for v in $verbs; do
		want=$(claim_takes "$v" $opts | sort)
		bash=$(bash_complete sw-claim "$v" -- | grep -xF -- "$opts" | sort)
		[ "$bash" = "$want" ] || { echo "bash, $v: $(echo $bash) - takes $(echo $want)"; return 1; }
		command -v zsh >/dev/null || continue
		zsh=$(zsh_claim_options "$v" | grep -xF -- "$opts")
		[ "$zsh" = "$want" ] || { echo "zsh, $v: $(echo $zsh) - takes $(echo $want)"; return 1; }
	done
}

# Completes WORDS... (the last one being completed) in a fresh bash that
# has loaded only the installed completion file of the program, as
# bash-completion does on first use, and prints the candidates, one per
# line (and anything loading it said on stderr).
installed_complete() {
	local dir=$BATS_TEST_TMPDIR/root/share/bash-completion/completions prog=$1
	env -i HOME="$HOME" PATH="$PATH" SW_DIR="$SW_DIR" bash --norc --noprofile -c '
		dir=$1 prog=$2; shift 2
		. "$dir/$prog" || exit 1
		COMP_WORDS=("$prog" "$@"); COMP_CWORD=$#; COMPREPLY=()
		$(complete -p "$prog" | sed -E "s/.* -F ([^ ]+) .*/\1/")
		printf "%s\n" "${COMPREPLY[@]}"' bash "$dir" "$prog" "${@:2}" 2>&1
}

@test "each installed bash completion works loaded alone, its shared part found beside it" {
	run make -s -C "$top" install-completions DESTDIR="$BATS_TEST_TMPDIR/root" PREFIX=
	assert_success
	local dir=$BATS_TEST_TMPDIR/root/share/bash-completion/completions p v
	[ -f "$dir/sw-common" ]
	[ ! -e "$dir/sw-common.bash" ]
	for p in $PROGS; do
		# the verbs, as the first word (the shared _sw_verb, or the program's own)
		run installed_complete "$p" ''
		assert_success
		for v in $(help_verbs "$p"); do
			assert_line "$v"
		done
		refute_output --partial 'command not found'
		refute_output --partial 'No such file'
	done
	# names from the workspace: -d, else SW_DIR (the shared _sw_ws and _sw_names)
	sw-lease acquire --quiet here
	sw-limit acquire --quiet --concurrency 1 lim
	sw-breaker trip --quiet brk
	sw-agent register --quiet --id ag-1
	sw-lease acquire -d "$BATS_TEST_TMPDIR/other" --quiet there
	run installed_complete sw-lease show ''
	assert_output here
	run installed_complete sw-lease show -d "$BATS_TEST_TMPDIR/other" ''
	assert_output there
	run installed_complete sw-limit show ''
	assert_output lim
	run installed_complete sw-breaker reset ''
	assert_output brk
	run installed_complete sw-agent heartbeat ''
	assert_output ag-1
	# a run verb's command line (the shared _sw_command): after NAME, commands
	run installed_complete sw-lease run here --ttl 5s tru
	assert_line true
	refute_line --regexp '^-'
	run installed_complete sw-lease run --t
	assert_output $'--ttl\n--takeover'
}

@test "the installed zsh helpers load through compinit beside the completions" {
	command -v zsh >/dev/null || skip "no zsh"
	make -s -C "$top" install-completions DESTDIR="$BATS_TEST_TMPDIR/root" PREFIX=
	sw-lease acquire --quiet here
	sw-agent register --quiet --id ag-1
	run env -i HOME="$BATS_TEST_TMPDIR" SW_DIR="$SW_DIR" zsh -f -c '
		fpath=($1/share/zsh/site-functions $fpath)
		autoload -Uz compinit && compinit -u -d $HOME/zcompdump
		_describe() { print -r -- "$3 ${(Pj: :)4}"; }   # what would be offered
		words=(show x); _sw_names -J group -X lease leases
		_sw_names agents .json' zsh "$BATS_TEST_TMPDIR/root"
	assert_success
	assert_output $'lease here\nagent ag-1'
}
