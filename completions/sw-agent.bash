# bash completion for sw-agent(1)
_sw_agent_ws()
{
	local ws=${SW_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/sw} i
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-d|--dir) ws=${COMP_WORDS[i + 1]} ;;
		--dir=*) ws=${COMP_WORDS[i]#--dir=} ;;
		esac
	done
	printf '%s' "$ws"
}

_sw_agent_ids()
{
	local ws n ids=()
	ws=$(_sw_agent_ws)
	for n in "$ws"/agents/*.json; do
		[ -e "$n" ] || continue
		n=${n##*/}; ids+=("${n%.json}")
	done
	COMPREPLY+=($(compgen -W "${ids[*]}" -- "$cur"))
}

_sw_agent_queues()
{
	local ws n qs=()
	ws=$(_sw_agent_ws)
	for n in "$ws"/queues/*/; do
		n=${n%/}; n=${n##*/}
		[ "$n" = '*' ] || qs+=("$n")
	done
	COMPREPLY+=($(compgen -W "${qs[*]}" -- "$cur"))
}

_sw_agent()
{
	local cur prev verb i
	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	local verbs="register heartbeat deregister list reap run"
	local common="-d --dir --spans --quiet -h --help -V --version"
	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W "$verbs -h --help -V --version" -- "$cur"))
		return
	fi
	verb=${COMP_WORDS[1]}
	case $prev in
	-d|--dir|--log-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
	--joblog) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	-q|--queue) _sw_agent_queues; return ;;
	--ttl|--heartbeat-ttl|--idle-exit|--grace|--poll|--batch-wait|--steal-after) COMPREPLY=($(compgen -W "1s 10s 30s 1m 5m" -- "$cur")); return ;;
	-j|--jobs) COMPREPLY=($(compgen -W "1 2 4 8 $(nproc 2>/dev/null)" -- "$cur")); return ;;
	--pid) COMPREPLY=($(compgen -W "$PPID" -- "$cur")); return ;;
	--batch) COMPREPLY=($(compgen -W "10 50 100 1000" -- "$cur")); return ;;
	--id|--roles|--label|--max-items) return ;;
	esac
	# run: everything after -- (or the first word that is no option) is
	# the command line
	if [ "$verb" = run ]; then
		for ((i = 2; i < COMP_CWORD; i++)); do
			case ${COMP_WORDS[i]} in
			--) COMPREPLY=($(compgen -c -- "$cur")); return ;;
			-d|--dir|-q|--queue|-j|--jobs|--ttl|--heartbeat-ttl|--idle-exit|--grace|--poll|--id|--roles|--label|--max-items|--log-dir|--joblog|--batch|--batch-wait|--steal-after)
				i=$((i + 1)) ;;
			-*) ;;
			*) COMPREPLY=($(compgen -c -- "$cur")); return ;;
			esac
		done
	fi
	local opts
	case $verb in
	register) opts="-q --queue --id --roles --heartbeat-ttl --ttl --pid --label" ;;
	list) opts="--alive --dead --table" ;;
	reap) opts="--force" ;;
	run) opts="-q --queue -j --jobs --roles --ttl --heartbeat-ttl --max-items --idle-exit --once --batch --batch-wait --affinity --steal-after --grace --poll --tag --log-dir --joblog --id --label --" ;;
	*) opts="" ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts $common" -- "$cur"))
	elif [ "$verb" = heartbeat ] || [ "$verb" = deregister ] || [ "$verb" = reap ]; then
		_sw_agent_ids
	fi
}
complete -F _sw_agent sw-agent
