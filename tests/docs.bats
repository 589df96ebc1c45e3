#!/usr/bin/env bats
# The documentation and completions keep up with the programs: every verb
# and long option each one accepts is in its man page and in both
# completions, the README has every program, `make demo` runs to its end,
# and sw-claim's bash completion offers real queues, ids and tokens.
load helper

PROGS="sw-claim sw-lease sw-shard sw-agent sw-metrics sw-limit sw-breaker"

# The long options `PROG --help` shows, one per line.
help_options() {
	"$1" --help | grep -o -- '--[a-z][a-z-]*' | sort -u
}

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

@test "every option of every program's --help is offered by its bash and zsh completions" {
	local p o missing=
	for p in $PROGS; do
		for o in $(help_options "$p"); do
			grep -q -- "$o\b" "$top/completions/$p.bash" || missing+=" bash:$p:$o"
			grep -q -- "$o\b" "$top/completions/_$p" || missing+=" zsh:$p:$o"
		done
	done
	[ -z "$missing" ] || { echo "missing:$missing"; return 1; }
}

@test "every verb of every program's --help is in its man page and completions" {
	local p v missing=
	for p in $PROGS; do
		for v in $("$p" --help | awk '/^  [a-z]+( |$)/{print $1}'); do
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

@test "make demo runs to its end and says what happened" {
	[[ ${SW_BIN:-} == */san/* ]] && skip "the demo runs the normal build"
	run --separate-stderr make -s -C "$top" demo
	assert_success
	assert_output --partial "each item done exactly once"
	assert_output --partial "lost: 0"
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
