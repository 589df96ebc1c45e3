# bash completion for sw-lease(1); what every sw program's completion
# shares is in sw-common, beside this file
. "$(dirname "${BASH_SOURCE[0]}")/sw-common" 2>/dev/null ||
	. "$(dirname "${BASH_SOURCE[0]}")/sw-common.bash"

_sw_lease()
{
	local cur prev verb
	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	_sw_verb "acquire renew release check show list run" && return
	verb=${COMP_WORDS[1]}
	case $prev in
	-d|--dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
	--ttl|--wait|-g|--grace) COMPREPLY=($(compgen -W "10s 30s 1m 5m 1h" -- "$cur")); return ;;
	-E|--conflict-exit-code) COMPREPLY=($(compgen -W "0 1 75" -- "$cur")); return ;;
	--token|--owner) return ;;
	esac
	[ "$verb" = run ] && _sw_command 1 "-d --dir --ttl --owner -E --conflict-exit-code -g --grace" && return
	local opts
	case $verb in
	acquire) opts="--ttl --owner --wait" ;;
	renew) opts="--token --ttl" ;;
	release|check) opts="--token" ;;
	run) opts="--ttl --owner --wait -E --conflict-exit-code -g --grace --takeover --until-success --keep-running --" ;;
	*) opts="" ;;
	esac
	_sw_options "$opts" && return
	[ "$verb" != list ] && _sw_names leases
}
complete -F _sw_lease sw-lease
