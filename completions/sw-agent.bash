# bash completion for sw-agent(1); what every sw program's completion
# shares is in sw-common, beside this file
. "$(dirname "${BASH_SOURCE[0]}")/sw-common" 2>/dev/null ||
	. "$(dirname "${BASH_SOURCE[0]}")/sw-common.bash"

_sw_agent()
{
	local cur prev verb
	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	_sw_verb "register heartbeat deregister list reap run" && return
	verb=${COMP_WORDS[1]}
	case $prev in
	-d|--dir|--log-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
	--joblog) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	-q|--queue) _sw_names queues; return ;;
	--ttl|--heartbeat-ttl|--idle-exit|--grace|--poll|--batch-wait|--steal-after) COMPREPLY=($(compgen -W "1s 10s 30s 1m 5m" -- "$cur")); return ;;
	-j|--jobs) COMPREPLY=($(compgen -W "1 2 4 8 $(nproc 2>/dev/null)" -- "$cur")); return ;;
	--pid) COMPREPLY=($(compgen -W "$PPID" -- "$cur")); return ;;
	--batch) COMPREPLY=($(compgen -W "10 50 100 1000" -- "$cur")); return ;;
	--id|--roles|--label|--max-items) return ;;
	esac
	# run: everything after -- (or the first word that is no option) is
	# the command line
	[ "$verb" = run ] && _sw_command 0 "-d --dir -q --queue -j --jobs --ttl --heartbeat-ttl --idle-exit --grace --poll --id --roles --label --max-items --log-dir --joblog --batch --batch-wait --steal-after" && return
	local opts
	case $verb in
	register) opts="-q --queue --id --roles --heartbeat-ttl --ttl --pid --label" ;;
	list) opts="--alive --dead --table" ;;
	reap) opts="--force" ;;
	run) opts="-q --queue -j --jobs --roles --ttl --heartbeat-ttl --max-items --idle-exit --once --batch --batch-wait --affinity --steal-after --grace --poll --tag --log-dir --joblog --id --label --" ;;
	*) opts="" ;;
	esac
	if _sw_options "$opts"; then
		return
	elif [ "$verb" = heartbeat ] || [ "$verb" = deregister ] || [ "$verb" = reap ]; then
		_sw_names agents .json
	fi
}
complete -F _sw_agent sw-agent
