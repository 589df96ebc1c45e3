# bash completion for sw-claim(1)                         -*- shell-script -*-
# Verbs, the options each verb takes, --state values, queue names from the
# workspace, ids of claimed items (and their tokens) for the verbs that
# finish a claim.  Reads only directory names: never a pending bucket walk.

# The workspace the command line points at: -d/--dir, else SW_DIR, else XDG.
_sw_claim_ws()
{
	local i w
	for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		-d | --dir)
			if [[ ${COMP_WORDS[i + 1]} == = ]]; then
				printf '%s\n' "${COMP_WORDS[i + 2]}"
			else
				printf '%s\n' "${COMP_WORDS[i + 1]}"
			fi
			return
			;;
		-d?*) printf '%s\n' "${w#-d}"; return ;;
		esac
	done
	if [[ -n $SW_DIR ]]; then
		printf '%s\n' "$SW_DIR"
	elif [[ -n $XDG_STATE_HOME ]]; then
		printf '%s\n' "$XDG_STATE_HOME/sw"
	else
		printf '%s\n' "$HOME/.local/state/sw"
	fi
}

# The queue the command line names: -q/--queue, else SW_QUEUE, else default.
_sw_claim_queue()
{
	local i w
	for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		-q | --queue)
			if [[ ${COMP_WORDS[i + 1]} == = ]]; then
				printf '%s\n' "${COMP_WORDS[i + 2]}"
			else
				printf '%s\n' "${COMP_WORDS[i + 1]}"
			fi
			return
			;;
		-q?*) printf '%s\n' "${w#-q}"; return ;;
		esac
	done
	printf '%s\n' "${SW_QUEUE:-default}"
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
	_sw_claim_entries "$(_sw_claim_ws)/queues"
}

# Ids in the given state directories of the current queue; claimed/ names
# are ID.TOKEN.EXPIRY.
_sw_claim_ids()
{
	local q dir st name
	q="$(_sw_claim_ws)/queues/$(_sw_claim_queue)"
	for st in "$@"; do
		while IFS= read -r name; do
			if [[ $st == claimed ]]; then
				printf '%s\n' "${name%.*.*}"
			else
				printf '%s\n' "$name"
			fi
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
	q="$(_sw_claim_ws)/queues/$(_sw_claim_queue)"
	local rest
	while IFS= read -r name; do
		rest=${name%.*}
		[[ ${rest%.*} == "$id" ]] && printf '%s\n' "${rest##*.}"
	done < <(_sw_claim_entries "$q/claimed")
}

# Completes the last element of a comma-separated list of words.
_sw_claim_list()
{
	local cur=$1 prefix=
	shift
	if [[ $cur == *,* ]]; then
		prefix=${cur%,*},
		cur=${cur##*,}
	fi
	COMPREPLY=($(compgen -P "$prefix" -W "$*" -- "$cur"))
}

_sw_claim()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local verbs="add next renew done fail release cancel requeue show list stats reap purge"
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
		if [[ $verb == purge ]]; then
			_sw_claim_list "$cur" done dead cancelled damaged
		else
			_sw_claim_list "$cur" pending claimed done dead cancelled all damaged
		fi
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
	-r | --role | --roles | --id | --max-attempts | --timeout | --delay | \
	--ttl | --result | --error | --retry-in | --older-than)
		return
		;;
	--wait)
		[[ -n $eq ]] && return
		;;
	esac

	case $verb in
	add) opts="-p --priority -r --role --id --max-attempts --timeout --delay --after --lines" ;;
	next) opts="--roles --ttl --wait" ;;
	renew) opts="--token --ttl" ;;
	done) opts="--token --result" ;;
	fail) opts="--token --error --retry-in" ;;
	release) opts="--token" ;;
	list) opts="--state" ;;
	purge) opts="--state --older-than" ;;
	cancel | requeue | show | stats | reap) opts= ;;
	*) return ;;
	esac

	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts $common" -- "$cur"))
		return
	fi

	# the ID argument
	case $verb in
	renew | done | fail | release)
		COMPREPLY=($(compgen -W "$(_sw_claim_ids claimed)" -- "$cur")) ;;
	requeue)
		COMPREPLY=($(compgen -W "$(_sw_claim_ids dead cancelled)" -- "$cur")) ;;
	cancel)
		COMPREPLY=($(compgen -W "$(_sw_claim_ids claimed blocked)" -- "$cur")) ;;
	show)
		COMPREPLY=($(compgen -W "$(_sw_claim_ids claimed blocked dead cancelled)" -- "$cur")) ;;
	esac
}

complete -F _sw_claim sw-claim
