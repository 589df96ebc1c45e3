# bash completion for sw-limit(1); what every sw program's completion
# shares is in sw-common, beside this file
. "$(dirname "${BASH_SOURCE[0]}")/sw-common" 2>/dev/null ||
	. "$(dirname "${BASH_SOURCE[0]}")/sw-common.bash"

_sw_limit()
{
	local cur prev verb
	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	_sw_verb "take run acquire renew release show list reset" && return
	verb=${COMP_WORDS[1]}
	case $prev in
	-d|--dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
	--rate) COMPREPLY=($(compgen -W "10/s 100/s 60/m 1000/h 5000/h 10000/d" -- "$cur")); return ;;
	--window|--ttl|--wait|-g|--grace) COMPREPLY=($(compgen -W "1s 10s 30s 1m 5m 1h" -- "$cur")); return ;;
	-E|--conflict-exit-code) COMPREPLY=($(compgen -W "0 1 75" -- "$cur")); return ;;
	--burst|--max|-n|--count|--concurrency|--slot|--token|--owner) return ;;
	esac
	[ "$verb" = run ] && _sw_command 1 "-d --dir --rate --burst --window --max -n --count
		--concurrency --ttl --owner -E --conflict-exit-code -g --grace" && return
	local opts
	case $verb in
	take) opts="--rate --burst --window --max -n --count --wait" ;;
	run) opts="--rate --burst --window --max -n --count --wait --concurrency --ttl --owner -E --conflict-exit-code -g --grace --" ;;
	acquire) opts="--concurrency --ttl --owner --wait" ;;
	renew) opts="--slot --token --ttl" ;;
	release) opts="--slot --token" ;;
	*) opts="" ;;
	esac
	_sw_options "$opts" && return
	[ "$verb" != list ] && _sw_names limits
}
complete -F _sw_limit sw-limit
