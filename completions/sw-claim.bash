# bash completion for sw-claim(1)                         -*- shell-script -*-
# Verbs, the options each verb takes, the values of --state (those the verb
# accepts), --format, --on-dep-fail and --after-missing, queue names from
# the workspace, ids of the states each verb takes (and the tokens of
# claims).  Reads only directory names: never a pending bucket walk.

# what every sw program's completion shares (the workspace, _sw_ws; an
# option's value, _sw_opt_value) is in sw-common, beside this file
. "$(dirname "${BASH_SOURCE[0]}")/sw-common" 2>/dev/null ||
	. "$(dirname "${BASH_SOURCE[0]}")/sw-common.bash"

# The queue the command line names: -q/--queue, else SW_QUEUE, else default.
_sw_claim_queue()
{
	_sw_opt_value -q --queue || printf '%s\n' "${SW_QUEUE:-default}"
}

# Visible entries of a directory, one per line (no dot files).
_sw_claim_entries()
{
	local f
	for f in "$1"/*; do
		[[ -e $f || -L $f ]] || continue
		f=${f##*/}
		[[ $f == .* ]] || printf '%s\n' "$f"
	done
}

_sw_claim_queues()
{
	_sw_claim_entries "$(_sw_ws)/queues"
}

# Ids in the given state directories of the current queue; claimed/ names
# are ID.TOKEN.EXPIRY, timed/ ones (delayed pending items) DUE.ID or
# DUE.-HASH.ID (ids never start with '-').
_sw_claim_ids()
{
	local q dir st name
	q="$(_sw_ws)/queues/$(_sw_claim_queue)"
	for st in "$@"; do
		while IFS= read -r name; do
			case $st in
			claimed) printf '%s\n' "${name%.*.*}" ;;
			timed)
				name=${name#*.}
				[[ $name == -* ]] && name=${name#*.}
				printf '%s\n' "$name"
				;;
			*) printf '%s\n' "$name" ;;
			esac
		done < <(_sw_claim_entries "$q/$st")
	done
}

# The token of the claim on the id given as the verb's argument.
_sw_claim_tokens()
{
	local i w id= q name
	for ((i = 2; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		--token | --ttl | --result | --error | --retry-in | -q | --queue | -d | --dir)
			((i++))
			[[ ${COMP_WORDS[i]} == = ]] && ((i++))
			;;
		-*) ;;
		*) id=$w; break ;;
		esac
	done
	[[ -n $id ]] || return
	q="$(_sw_ws)/queues/$(_sw_claim_queue)"
	local rest
	while IFS= read -r name; do
		rest=${name%.*}
		[[ ${rest%.*} == "$id" ]] && printf '%s\n' "${rest##*.}"
	done < <(_sw_claim_entries "$q/claimed")
}

# Completes the last element of a comma-separated list of words, leaving
# out the words the list already has.
_sw_claim_list()
{
	local cur=$1 prefix= w words=
	shift
	if [[ $cur == *,* ]]; then
		prefix=${cur%,*},
		cur=${cur##*,}
	fi
	for w in "$@"; do
		[[ ,$prefix == *,"$w",* ]] || words+=" $w"
	done
	COMPREPLY=($(compgen -P "$prefix" -W "$words" -- "$cur"))
}

_sw_claim()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local verbs="add next renew done fail release cancel requeue show deps wait list stats reap purge drop"
	local common="-q --queue -d --dir --spans --quiet -h --help -V --version"
	local verb=${COMP_WORDS[1]} opts opt= eq=

	COMPREPLY=()
	if ((COMP_CWORD == 1)); then
		COMPREPLY=($(compgen -W "$verbs -h --help -V --version" -- "$cur"))
		return
	fi

	# --opt=value: with '=' in COMP_WORDBREAKS it arrives as three words
	if [[ $cur == = ]]; then
		opt=$prev eq=1
		cur=
	elif [[ $prev == = ]]; then
		opt=${COMP_WORDS[COMP_CWORD - 2]} eq=1
	else
		opt=$prev
	fi

	case $opt in
	-q | --queue)
		COMPREPLY=($(compgen -W "$(_sw_claim_queues)" -- "$cur"))
		return
		;;
	-d | --dir)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -d -- "$cur"))
		return
		;;
	--spans)
		# only as --spans=DEST: a separate word is an argument
		if [[ -n $eq ]]; then
			compopt -o filenames 2>/dev/null
			COMPREPLY=($(compgen -W "stdout stderr off" -- "$cur") $(compgen -f -- "$cur"))
			return
		fi
		;;
	-p | --priority)
		COMPREPLY=($(compgen -W "0 1 2 3 4 5 6 7 8 9" -- "$cur"))
		return
		;;
	--state)
		case $verb in
		purge) _sw_claim_list "$cur" done dead cancelled damaged ;;
		cancel) _sw_claim_list "$cur" pending blocked claimed ;;
		requeue) _sw_claim_list "$cur" dead cancelled ;;
		*) _sw_claim_list "$cur" pending blocked claimed done dead cancelled all damaged ;;
		esac
		return
		;;
	--format)
		COMPREPLY=($(compgen -W "json tsv sh" -- "$cur"))
		return
		;;
	--on-dep-fail)
		COMPREPLY=($(compgen -W "dead cancel run" -- "$cur"))
		return
		;;
	--after-missing)
		COMPREPLY=($(compgen -W "ok refuse" -- "$cur"))
		return
		;;
	--token)
		COMPREPLY=($(compgen -W "$(_sw_claim_tokens)" -- "$cur"))
		return
		;;
	--after)
		_sw_claim_list "$cur" $(_sw_claim_ids claimed done blocked)
		return
		;;
	-r | --role | --roles | --id | --key | --max-attempts | --timeout | --delay | \
	--ttl | --result | --error | --retry-in | --older-than | --limit | -n | --count | \
	--steal-after)
		return
		;;
	--affinity)
		_sw_names agents .json
		return
		;;
	--wait)
		[[ -n $eq ]] && return
		;;
	esac

	case $verb in
	add) opts="-p --priority -r --role --id --key --max-attempts --timeout --delay --after --on-dep-fail
		--after-missing --lines" ;;
	next) opts="-n --count --roles --ttl --wait --format --affinity --steal-after" ;;
	renew) opts="--token --ttl" ;;
	done) opts="--token --result" ;;
	fail) opts="--token --error --retry-in" ;;
	release) opts="--token" ;;
	cancel | requeue) opts="--state --older-than" ;;
	wait) opts="--timeout" ;;
	list) opts="--state --limit --table" ;;
	stats) opts="--table --keys" ;;
	purge) opts="--state --older-than" ;;
	drop) opts="--force" ;;
	show | deps | reap) opts= ;;
	*) return ;;
	esac

	if [[ $cur == -* ]]; then
		# drop names its queue as its argument: no -q
		[[ $verb == drop ]] && common=${common/-q --queue /}
		COMPREPLY=($(compgen -W "$opts $common" -- "$cur"))
		return
	fi

	# the ID (or QUEUE) argument, from the states the verb takes; pending
	# items are not offered (that would walk the buckets)
	local states=
	case $verb in
	renew | done | fail | release) states=claimed ;;
	requeue) states="dead cancelled" ;;
	cancel | wait) states="claimed timed blocked" ;;
	show) states="claimed timed blocked dead cancelled" ;;
	deps) states="blocked claimed" ;;
	drop)
		COMPREPLY=($(compgen -W "$(_sw_claim_queues)" -- "$cur"))
		return
		;;
	esac
	[[ -n $states ]] || return 0
	COMPREPLY=($(compgen -W "$(_sw_claim_ids $states)" -- "$cur"))
}

complete -F _sw_claim sw-claim
