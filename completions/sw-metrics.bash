# bash completion for sw-metrics(1)
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

_sw_metrics()
{
	local cur prev verb
	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	local verbs="inc set observe ingest summary export prune"
	local common="--db --describe -d --dir --spans --quiet -h --help -V --version"
	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W "$verbs -h --help -V --version" -- "$cur"))
		return
	fi
	verb=${COMP_WORDS[1]}
	case $prev in
	-d|--dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
	--db|-o|--output) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	--since|--older-than) COMPREPLY=($(compgen -W "5m 1h 24h 7d 30d" -- "$cur")); return ;;
	--format) COMPREPLY=($(compgen -W "prom json" -- "$cur")); return ;;
	--spans) COMPREPLY=($(compgen -W "stdout stderr off" -- "$cur")); return ;;
	--buckets) COMPREPLY=($(compgen -W "0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10" -- "$cur")); return ;;
	-l|--label|--describe) return ;;
	esac
	local opts
	case $verb in
	inc|set) opts="-l --label" ;;
	observe) opts="-l --label --buckets" ;;
	ingest) opts="--tee --buckets" ;;
	summary) opts="-l --label --since" ;;
	export) opts="--format -o --output --no-workspace" ;;
	prune) opts="--older-than" ;;
	*) return ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts $common" -- "$cur"))
		return
	fi
	# the NAME argument: the first word after the verb that is no option
	case $verb in
	inc|set|observe|summary)
		local i n=0
		for ((i = 2; i < COMP_CWORD; i++)); do
			case ${COMP_WORDS[i]} in
			-l|--label|--db|--buckets|--since|--describe|-d|--dir) ((i++)) ;;
			-*) ;;
			*) ((n++)) ;;
			esac
		done
		[ "$n" -eq 0 ] && _sw_metrics_names ;;
	esac
}
complete -F _sw_metrics sw-metrics
