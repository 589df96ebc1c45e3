#!/usr/bin/env bats
# Every program refuses a wrong command line alike: for every verb, an
# unknown option, an option that only other verbs take, a missing argument
# and an extra one each get one line on stderr, nothing on stdout and exit
# 64.  Nothing here names a program or a verb: the programs are the sw-*
# in $SW_BIN (bin/), their verbs those of their --help, which options a
# verb takes is asked of the program, and how many arguments it takes
# comes from its verb table in src/PROG.c.  A new program is covered as it
# lands.
#
# No verb ever runs: each probe is one the parser refuses before a verb
# starts (what is tried comes before an unknown option, or is too few
# arguments), stdin is empty, and each probe has 10 s at most.
load helper

bindir=${SW_BIN:-$top/bin}
# the value an option that takes one is given
VAL=0
# the extra argument: no verb could run it as a command (no such program)
EXTRA=extra-arg-sw-cli

setup() {
	cd "$BATS_TEST_TMPDIR"   # whatever a probe might make stays here
}

# untraced FUNC: runs FUNC where bats traces no command (its trace of each
# costs as much as a probe, and there are some 300), and fails listing
# what FUNC put in $bad, under the heading $what.
untraced() {
	(
		trap - DEBUG
		set +T
		bad= what="not refused as a usage error"
		"$@"
		[ -z "$bad" ] || { echo "$what:$bad"; exit 1; }
	)
}

# The programs under test, one a line.
programs() {
	local p
	for p in "$bindir"/sw-*; do
		[ -x "$p" ] && echo "${p##*/}"
	done
	return 0
}

# verb_table PROG: "VERB MIN MAX COMMAND" for each verb of the struct
# sw_verb table in src/PROG.c: its least and most arguments, and 1 when a
# command follows them (SW_CMD_COMMAND).
verb_table() {
	sed -nE '/struct sw_verb [a-z_]+\[\] = \{/,/^\};/ s/^\s*\{ *"([a-z-]+)", *\w+, *"[^"]*", *([0-9]+), *([0-9]+), *\w+, *(.*)\},?\s*$/\1 \2 \3 \4/p' \
		"$top/src/$1.c" | awk '{ print $1, $2, $3, ($0 ~ /SW_CMD_COMMAND/) ? 1 : 0 }'
}

# probe ARG...: runs ARG... with stdin empty for at most 10 s: its status
# in $rc, its output in $out and $err (each as written).
probe() {
	rc=0
	timeout 10 "$@" </dev/null >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" || rc=$?
	out= err=
	IFS= read -r -d '' out <"$BATS_TEST_TMPDIR/out" || true
	IFS= read -r -d '' err <"$BATS_TEST_TMPDIR/err" || true
}

# refused WHAT: whether the last probe was refused as a usage error must
# be (exit 64, nothing on stdout, exactly one line on stderr); if not,
# WHAT and what happened go to $bad.
refused() {
	[[ $rc == 64 && ! -s $BATS_TEST_TMPDIR/out && $err == ?*$'\n' && ${err%$'\n'} != *$'\n'* ]] && return 0
	bad+=$'\n'"$1: exit $rc, stdout: ${out:0:300}"$'\n'"  stderr: ${err:0:600}"
	return 1
}

# args N: the arguments a1 ... aN, one a line.
args() {
	[ "$1" -eq 0 ] || seq -f 'a%.0f' 1 "$1"
}

# ---- the programs -------------------------------------------------------

# Verbs whose --help shows an argument they can do without: without an ID,
# sw-claim's renew, done, fail and release read their claims from stdin
# (so no argument is missing when there is none).
OPTIONAL_SHOWN="sw-claim:renew sw-claim:done sw-claim:fail sw-claim:release"

# help_least_args PROG: "VERB N" for each verb: the fewest arguments a
# line of its --help shows it with (the words in capitals right after it:
# "show ID", "set NAME VALUE", "wait ID...").
help_least_args() {
	"$1" --help | awk '/^  [a-z]+( |$)/ {
			n = 0
			while (n + 2 <= NF && $(n + 2) ~ /^[A-Z][A-Z0-9_]*(\.\.\.)?$/) n++
			if (!($1 in least) || n < least[$1]) least[$1] = n
		}
		END { for (v in least) print v, least[v] }'
}

inventory() {
	local p v min max cmd help table n=0
	local -A least
	what="--help and the verb tables disagree"
	for p in $(programs); do
		n=$((n + 1))
		help=$(help_verbs "$p")
		table=$(verb_table "$p" | cut -d' ' -f1 | sort)
		[ -n "$table" ] || { bad+=$'\n'"$p: no verb table in src/$p.c"; continue; }
		[ "$help" = "$table" ] ||
			bad+=$'\n'"$p: --help shows verbs $(echo $help), src/$p.c has $(echo $table)"
		least=()
		while read -r v min; do least[$v]=$min; done < <(help_least_args "$p")
		while read -r v min max cmd; do
			if [[ " $OPTIONAL_SHOWN " == *" $p:$v "* ]]; then
				[ "$min" = 0 ] && [ "${least[$v]:-}" -gt 0 ] ||
					bad+=$'\n'"$p $v: listed as doing without the argument --help shows, but takes at least $min and --help shows ${least[$v]:-?}"
			elif [ "${least[$v]:-}" != "$min" ]; then
				bad+=$'\n'"$p $v: takes at least $min arguments, --help shows ${least[$v]:-?}"
			fi
		done < <(verb_table "$p")
	done
	[ "$n" -ge 5 ] || bad+=$'\n'"only $n programs in $bindir"
}

@test "the programs are found; their verbs and least arguments in --help and in their verb tables agree" {
	untraced inventory
}

# ---- an unknown option --------------------------------------------------

unknown_options() {
	local p v l help ref
	for p in $(programs); do
		help=$("$p" --help)
		for l in Z Y X W U K; do   # a short option the help does not name
			[[ $help =~ -$l([^a-z-]|$) ]] || break
		done
		for v in $(help_verbs "$p"); do
			probe "$p" "$v" --no-such-option
			refused "$p $v --no-such-option" || true
			ref=$err
			# twice: had -L a value, the second still stops the verb
			probe "$p" "$v" "-$l" --no-such-option --no-such-option
			refused "$p $v -$l" || continue
			# the short one, not the one after it
			[ "$err" != "$ref" ] || bad+=$'\n'"$p $v -$l: taken"
		done
	done
}

@test "an unknown option, long or short, is refused by every verb" {
	untraced unknown_options
}

# ---- an option of another verb ------------------------------------------

# option_plan PROG OPTS VERBS: for each verb "c VERB OPT..." - the options
# to try, those the help text shows with other verbs (and not with it)
# first - and for each option "u OPT VERB..." - the verbs to ask whether
# they take it, those the help text shows it with first.  A verb's text
# is its line of --help and the indented lines under it.
option_plan() {
	"$1" --help | awk -v opts="$2" -v verbs="$3" '
		BEGIN { no = split(opts, O, " "); for (i = 1; i <= no; i++) isopt[O[i]] = 1
			nv = split(verbs, V, " ") }
		{ if ($0 ~ /^  [a-z]+( |$)/) v = $1; else if ($0 !~ /^    /) v = "" }
		v != "" { s = $0
			while (match(s, /--[a-z][a-z-]*/)) {
				o = substr(s, RSTART, RLENGTH); s = substr(s, RSTART + RLENGTH)
				if (isopt[o] && !((v, o) in shown)) { shown[v, o] = 1; seq[++ns] = v " " o }
			} }
		END {
			for (i = 1; i <= nv; i++) {
				line = "c " V[i]; delete put
				for (k = 1; k <= ns; k++) { split(seq[k], f, " ")
					if (f[1] != V[i] && !((V[i], f[2]) in shown) && !(f[2] in put)) { put[f[2]]; line = line " " f[2] } }
				for (j = 1; j <= no; j++) if (!(O[j] in put)) { put[O[j]]; line = line " " O[j] }
				print line
			}
			for (j = 1; j <= no; j++) {
				line = "u " O[j]; delete put
				for (k = 1; k <= ns; k++) { split(seq[k], f, " ")
					if (f[2] == O[j] && !(f[1] in put)) { put[f[1]]; line = line " " f[1] } }
				for (i = 1; i <= nv; i++) if (!(V[i] in put)) { put[V[i]]; line = line " " V[i] }
				print line
			}
		}'
}

other_verbs_options() {
	local p v w o opts verbs kind key rest arg found by
	local -A cand users flag takes
	for p in $(programs); do
		opts=$(help_options "$p" | grep -vxE -- '--(dir|spans|quiet|help|version)' | xargs)
		verbs=$(help_verbs "$p" | xargs)
		[[ $verbs == *" "* ]] || continue   # one verb: there is no other
		cand=() users=() flag=() takes=()
		while read -r kind key rest; do
			[ "$kind" = c ] && cand[$key]=$rest || users[$key]=$rest
		done < <(option_plan "$p" "$opts" "$verbs")
		for v in $verbs; do
			found=
			for o in ${cand[$v]}; do
				[ -n "${flag[$o]:-}" ] || { is_flag "$p" "$v" "$o" && flag[$o]=1 || flag[$o]=0; }
				arg=$o=$VAL
				[ "${flag[$o]}" = 0 ] || arg=$o
				[ -n "${takes[$v $o]:-}" ] || { takes_option "$p" "$v" "$arg" && takes[$v $o]=1 || takes[$v $o]=0; }
				[ "${takes[$v $o]}" = 0 ] || continue
				for w in ${users[$o]}; do
					[ "$w" != "$v" ] || continue
					[ -n "${takes[$w $o]:-}" ] || { takes_option "$p" "$w" "$arg" && takes[$w $o]=1 || takes[$w $o]=0; }
					[ "${takes[$w $o]}" = 0 ] || { found=$arg by=$w; break; }
				done
				[ -z "$found" ] || break
			done
			if [ -z "$found" ]; then
				bad+=$'\n'"$p $v: takes every option another verb takes (none to try)"
				continue
			fi
			probe "$p" "$v" "$found"
			refused "$p $v $found (which $by takes)" || true
		done
	done
}

# For each verb an option its program's --help names that it refuses
# while another verb takes it: a few probes a verb, each answer kept.
@test "an option of another verb of the same program is refused by every verb" {
	untraced other_verbs_options
}

# ---- a missing argument -------------------------------------------------

missing_arguments() {
	local p v min max cmd k
	for p in $(programs); do
		while read -r v min max cmd; do
			for ((k = 0; k < min; k++)); do
				probe "$p" "$v" $(args $k)
				refused "$p $v with $k of its $min arguments" || true
			done
			[ "$cmd" = 1 ] || continue
			probe "$p" "$v" $(args "$min")
			refused "$p $v with its $min arguments and no COMMAND" || true
			probe "$p" "$v" $(args "$min") --
			refused "$p $v with its $min arguments, --, and no COMMAND" || true
		done < <(verb_table "$p")
	done
}

# A verb that takes no argument at least has none missing: list takes
# none, cancel takes an ID or --state, and those of $OPTIONAL_SHOWN read
# stdin without one.  One that runs a COMMAND misses it when none
# follows its arguments, with or without "--".
@test "a missing argument is refused by every verb that needs one" {
	untraced missing_arguments
}

# ---- an extra argument --------------------------------------------------

extra_arguments() {
	local p v min max cmd
	for p in $(programs); do
		while read -r v min max cmd; do
			if [ "$cmd" = 1 ]; then
				echo "# $p $v: no extra argument: what follows its $max argument(s) is its COMMAND" >&3
				continue
			fi
			probe "$p" "$v" $(args "$max") "$EXTRA" --no-such-option
			refused "$p $v with its $max arguments and one more" || continue
			[[ $err == *"$EXTRA"* ]] ||
				bad+=$'\n'"$p $v with its $max arguments and one more: refused, but not for it: $err"
		done < <(verb_table "$p")
	done
}

# The extra argument comes before an unknown option: the refusal names
# it, so it is what was refused (and had it been taken, the option would
# still stop the verb).  A verb that runs a COMMAND has no extra argument:
# what follows its arguments is the command (sw-lease run NAME COMMAND...),
# so it is never given one here, as it would run.
@test "an extra argument is refused by every verb" {
	untraced extra_arguments
}

# ---- no verb ------------------------------------------------------------

no_verb() {
	local p
	for p in $(programs); do
		probe "$p" no-such-verb
		refused "$p no-such-verb" || true
		probe "$p" --no-such-option list
		refused "$p --no-such-option list" || true
		probe "$p"
		refused "$p (no verb)" || true
	done
}

@test "an unknown verb, an option before the verb and no verb at all are refused" {
	untraced no_verb
}
