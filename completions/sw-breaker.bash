# bash completion for sw-breaker(1); what every sw program's completion
# shares is in sw-common, beside this file
. "$(dirname "${BASH_SOURCE[0]}")/sw-common" 2>/dev/null ||
	. "$(dirname "${BASH_SOURCE[0]}")/sw-common.bash"

_sw_breaker()
{
	local cur prev verb
	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	local policy="--failures --window --ratio --min-calls --cooldown --max-cooldown --probes --ttl"
	_sw_verb "run check record show list reset trip" && return
	verb=${COMP_WORDS[1]}
	case $prev in
	-d|--dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
	--window|--cooldown|--max-cooldown|--ttl|--timeout|-g|--grace)
		COMPREPLY=($(compgen -W "1s 10s 30s 1m 5m 1h" -- "$cur")); return ;;
	--ratio) COMPREPLY=($(compgen -W "0.25 0.5 0.75" -- "$cur")); return ;;
	--fail-on) COMPREPLY=($(compgen -W "1 22,28 1-125" -- "$cur")); return ;;
	-E|--conflict-exit-code) COMPREPLY=($(compgen -W "0 1 75" -- "$cur")); return ;;
	--failures|--min-calls|--probes|--token) return ;;
	esac
	[ "$verb" = run ] && _sw_command 1 "-d --dir $policy --timeout --fail-on
		-E --conflict-exit-code -g --grace" && return
	local opts
	case $verb in
	run) opts="$policy --timeout --fail-on -E --conflict-exit-code -g --grace --" ;;
	check) opts="$policy" ;;
	record) opts="--ok --fail --token $policy" ;;
	trip|reset) opts="$policy" ;;
	*) opts="" ;;
	esac
	_sw_options "$opts" && return
	[ "$verb" != list ] && _sw_names breakers
}
complete -F _sw_breaker sw-breaker
