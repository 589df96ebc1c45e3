# bash completion for sw-metrics(1); what every sw program's completion
# shares is in sw-common, beside this file
. "$(dirname "${BASH_SOURCE[0]}")/sw-common" 2>/dev/null ||
	. "$(dirname "${BASH_SOURCE[0]}")/sw-common.bash"

_sw_metrics_names()
{
	# metric names from the database this command line would use
	local db=() i
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--db) db=(--db "${COMP_WORDS[i + 1]}") ;;
		--db=*) db=(--db "${COMP_WORDS[i]#--db=}") ;;
		esac
	done
	local names
	names=$(sw-metrics export --format json --no-workspace "${db[@]}" 2>/dev/null |
		sed -n 's/^{"name":"\([a-z0-9_]*\)".*/\1/p' | sort -u)
	COMPREPLY+=($(compgen -W "$names" -- "$cur"))
}

# The options each verb takes besides the common ones.
_sw_metrics_opts()
{
	case $1 in
	inc|set) echo "--db -l --label --describe" ;;
	observe|time) echo "--db -l --label --describe --buckets" ;;
	ingest) echo "--db --tee --buckets" ;;
	summary) echo "--db -l --label --since" ;;
	export) echo "--db --format -o --output --no-workspace" ;;
	prune) echo "--db --older-than" ;;
	esac
}

_sw_metrics()
{
	local cur prev verb
	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	_sw_verb "inc set observe ingest summary export prune time" && return
	verb=${COMP_WORDS[1]}
	# the words before this one: NAME (and VALUE), then time's command
	local i n=0 cmd=0
	for ((i = 2; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--) [ "$verb" = time ] && { cmd=$i; break; } ;;
		-l|--label|--db|--buckets|--since|--describe|-d|--dir|--format|-o|--output|--older-than)
			((i++)) ;;
		-*) ;;
		*)
			((n++))
			[ "$verb" = time ] && [ "$n" -gt 1 ] && { cmd=$i; break; } ;;
		esac
	done
	if [ "$cmd" -gt 0 ]; then
		# time's command: a command, then what it takes
		if [ "${COMP_WORDS[cmd]}" = -- ] && [ "$COMP_CWORD" -eq $((cmd + 1)) ]; then
			COMPREPLY=($(compgen -c -- "$cur"))
		else
			COMPREPLY=($(compgen -f -- "$cur"))
		fi
		return
	fi
	case $prev in
	-d|--dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
	--db|-o|--output) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	--since|--older-than) COMPREPLY=($(compgen -W "5m 1h 24h 7d 30d" -- "$cur")); return ;;
	--format) COMPREPLY=($(compgen -W "prom json" -- "$cur")); return ;;
	--spans) COMPREPLY=($(compgen -W "stdout stderr off" -- "$cur")); return ;;
	--buckets)
		local b=0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10
		[ "$verb" = time ] && b="$b 1,10,60,300,1800,3600"
		COMPREPLY=($(compgen -W "$b" -- "$cur")); return ;;
	-l|--label|--describe) return ;;
	esac
	local opts
	opts=$(_sw_metrics_opts "$verb")
	[ -n "$opts" ] || return
	[ "$verb" = time ] && opts+=" --"
	_sw_options "$opts" && return
	# the NAME argument: the first word after the verb that is no option;
	# time's next word is its command
	case $verb in
	inc|set|observe|summary|time)
		if [ "$n" -eq 0 ]; then
			_sw_metrics_names
		elif [ "$verb" = time ]; then
			COMPREPLY=($(compgen -c -- "$cur"))
		fi ;;
	esac
}
complete -F _sw_metrics sw-metrics
