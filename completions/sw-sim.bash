# bash completion for sw-sim(1); what every sw program's completion
# shares is in sw-common, beside this file
. "$(dirname "${BASH_SOURCE[0]}")/sw-common" 2>/dev/null ||
	. "$(dirname "${BASH_SOURCE[0]}")/sw-common.bash"

_sw_sim()
{
	local cur prev verb
	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	local common="--json --spans --quiet -h --help -V --version"
	_sw_verb "run fs" && return
	verb=${COMP_WORDS[1]}
	case $prev in
	-d|--dir|--keep) COMPREPLY=($(compgen -d -- "$cur")); return ;;
	--agents|--nodes) COMPREPLY=($(compgen -W "5 10 100 1000" -- "$cur")); return ;;
	--duration|--drain|--stats-every|--ttl|--stall-time|--partition-time)
		COMPREPLY=($(compgen -W "10s 30s 60s 5m" -- "$cur")); return ;;
	--max-latency|--min-latency) COMPREPLY=($(compgen -W "10ms 100ms 0.5 2.0 5.0" -- "$cur")); return ;;
	--rate|--kill-rate|--stall-rate) COMPREPLY=($(compgen -W "1/s 5/s 10/s 100/s 30/m" -- "$cur")); return ;;
	--job-time) COMPREPLY=($(compgen -W "10ms..2s 100ms..1s 1s" -- "$cur")); return ;;
	--job-fail|--failure-rate|--partition-probability)
		COMPREPLY=($(compgen -W "0.01 0.05 0.1 0.5" -- "$cur")); return ;;
	--items|--seed|--batch|-j|--jobs|--max-attempts|--racers|--rounds) return ;;
	esac
	local opts
	case $verb in
	run) opts="--agents --nodes --duration --items --rate --job-time --job-fail --failure-rate
		--kill-rate --stall-rate --stall-time --partition-probability --partition-time
		--max-latency --min-latency --lab -d --dir -j --jobs --ttl --batch --affinity
		--max-attempts --seed --stats-every --drain --keep" ;;
	fs) opts="--racers --rounds" ;;
	*) opts="" ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts $common" -- "$cur"))
	elif [ "$verb" = fs ]; then
		COMPREPLY=($(compgen -d -- "$cur"))
	fi
}
complete -F _sw_sim sw-sim
