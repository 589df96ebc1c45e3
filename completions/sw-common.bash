# bash completion: what the completions of the sw programs share — the
# workspace the command line points at, the names kept in it, the options
# every program takes, the verb as the first word and a run verb's command
# line.  bash-completion loads one file per command, on first use, from
# its completions directory (/usr/share/bash-completion/completions/PROG):
# so each sw-PROG file sources this one from its own directory, where
# `make install` puts it as `sw-common` (no command has that name).

# The options every program takes (sw-sim has its own set).
_sw_common_opts="-d --dir --spans --quiet -h --help -V --version"

# _sw_opt_value SHORT LONG: the value the command line gives the option
# (-q Q, -q=Q as bash splits it, --queue=Q, -qQ), the first if it is given
# more than once; fails when it is not given.
_sw_opt_value()
{
	local i w
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		"$1" | "$2")
			if [[ ${COMP_WORDS[i + 1]} == = ]]; then
				printf '%s\n' "${COMP_WORDS[i + 2]}"
			else
				printf '%s\n' "${COMP_WORDS[i + 1]}"
			fi
			return 0
			;;
		"$2"=*) printf '%s\n' "${w#"$2"=}"; return 0 ;;
		"$1"?*) printf '%s\n' "${w#"$1"}"; return 0 ;;
		esac
	done
	return 1
}

# The workspace the command line points at: -d/--dir, else SW_DIR, else
# XDG's state home.
_sw_ws()
{
	_sw_opt_value -d --dir || printf '%s\n' "${SW_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/sw}"
}

# _sw_names SUBDIR [SUFFIX]: adds to COMPREPLY the names kept in the
# workspace's SUBDIR that start with $cur: its directories (leases,
# limits, queues...), or with SUFFIX its files NAME.SUFFIX (agents).
# Reads only directory names.
_sw_names()
{
	local ws n names=()
	ws=$(_sw_ws)
	if [[ -n ${2:-} ]]; then
		for n in "$ws/$1"/*"$2"; do
			[[ -e $n ]] || continue
			n=${n##*/}; names+=("${n%"$2"}")
		done
	else
		for n in "$ws/$1"/*/; do
			n=${n%/}; n=${n##*/}
			[[ $n == '*' ]] || names+=("$n")
		done
	fi
	COMPREPLY+=($(compgen -W "${names[*]}" -- "$cur"))
}

# _sw_verb VERBS: the first word is the verb (or -h, --help, -V,
# --version): completes it and returns 0; else returns 1.
_sw_verb()
{
	((COMP_CWORD == 1)) || return 1
	COMPREPLY=($(compgen -W "$1 -h --help -V --version" -- "$cur"))
}

# _sw_command NARGS VALUED: in a run verb's command line, completes a
# command and returns 0; else returns 1.  The command line starts after
# "--", or at the first word that is no option once the verb's NARGS
# arguments are given; VALUED lists the options whose value is the next
# word.
_sw_command()
{
	local nargs=$1 valued=" ${2//[$'\n\t']/ } " i w seen=0
	for ((i = 2; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		--) COMPREPLY=($(compgen -c -- "$cur")); return 0 ;;
		-*) [[ $valued == *" $w "* ]] && ((i++)) ;;
		*)
			if ((seen == nargs)); then
				COMPREPLY=($(compgen -c -- "$cur"))
				return 0
			fi
			((seen++))
			;;
		esac
	done
	# the word being completed starts it when it is no option
	if ((seen == nargs && nargs > 0)) && [[ $cur != -* ]]; then
		COMPREPLY=($(compgen -c -- "$cur"))
		return 0
	fi
	return 1
}

# _sw_options OPTS: completes an option, one of OPTS or the common ones,
# and returns 0 when the word being completed is one; else returns 1.
_sw_options()
{
	[[ $cur == -* ]] || return 1
	COMPREPLY=($(compgen -W "$1 $_sw_common_opts" -- "$cur"))
}
