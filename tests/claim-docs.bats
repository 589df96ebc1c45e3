#!/usr/bin/env bats
# sw-claim's documentation and completions keep up with the program: every
# long option the program accepts is in its man page and in both
# completions, and the bash completion offers real queues, ids and tokens.
load helper

# The long options `sw-claim --help` shows, one per line.
help_options() {
	sw-claim --help | grep -o -- '--[a-z][a-z-]*' | sort -u
}

@test "every option of --help is documented in sw-claim(1)" {
	local o missing=
	for o in $(help_options); do
		grep -q -- "Fl -${o#--}\b" "$top/man/sw-claim.1" || missing+=" $o"
	done
	[ -z "$missing" ] || { echo "not in man/sw-claim.1:$missing"; return 1; }
}

@test "every option of --help is offered by the bash and zsh completions" {
	local o missing=
	for o in $(help_options); do
		grep -q -- "$o\b" "$top/completions/sw-claim.bash" || missing+=" bash:$o"
		grep -q -- "$o\b" "$top/completions/_sw-claim" || missing+=" zsh:$o"
	done
	[ -z "$missing" ] || { echo "missing:$missing"; return 1; }
}

@test "every verb of --help is in the man page and the completions" {
	local v missing=
	for v in $(sw-claim --help | awk '/^  [a-z]+ /{print $1}'); do
		grep -q "^\.Cm .*\b$v\b" "$top/man/sw-claim.1" || missing+=" man:$v"
		grep -q "\b$v\b" "$top/completions/sw-claim.bash" || missing+=" bash:$v"
		grep -q "'$v:" "$top/completions/_sw-claim" || missing+=" zsh:$v"
	done
	[ -z "$missing" ] || { echo "missing:$missing"; return 1; }
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
	assert_output $'pending,done\npending,dead'
}
