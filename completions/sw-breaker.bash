# bash completion for sw-breaker(1)
_sw_breaker_names()
{
	local ws=${SW_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/sw} i
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-d|--dir) ws=${COMP_WORDS[i + 1]} ;;
		--dir=*) ws=${COMP_WORDS[i]#--dir=} ;;
		esac
	done
	[ -d "$ws/breakers" ] || return
	local n names=()
	for n in "$ws"/breakers/*/; do
		n=${n%/}; n=${n##*/}
		[ "$n" = '*' ] || names+=("$n")
	done
	COMPREPLY+=($(compgen -W "${names[*]}" -- "$cur"))
}

_sw_breaker()
{
	local cur prev verb i
	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	local verbs="run check record show list reset trip"
	local common="-d --dir --spans --quiet -h --help -V --version"
	local policy="--failures --window --ratio --min-calls --cooldown --max-cooldown --probes --ttl"
	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W "$verbs -h --help -V --version" -- "$cur"))
		return
	fi
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
	# run: once NAME is given, a word that is no option (or anything
	# after --) starts the command line
	if [ "$verb" = run ]; then
		local have_name=0 dashdash=0
		for ((i = 2; i < COMP_CWORD; i++)); do
			case ${COMP_WORDS[i]} in
			--) dashdash=1; break ;;
			-d|--dir|--failures|--window|--ratio|--min-calls|--cooldown|--max-cooldown|--probes|--ttl|--timeout|--fail-on|-E|--conflict-exit-code|-g|--grace) i=$((i + 1)) ;;
			-*) ;;
			*) [ "$have_name" -eq 1 ] && { dashdash=1; break; }; have_name=1 ;;
			esac
		done
		if [ "$dashdash" -eq 1 ] || { [ "$have_name" -eq 1 ] && [[ $cur != -* ]]; }; then
			COMPREPLY=($(compgen -c -- "$cur"))
			return
		fi
	fi
	local opts
	case $verb in
	run) opts="$policy --timeout --fail-on -E --conflict-exit-code -g --grace --" ;;
	check) opts="$policy" ;;
	record) opts="--ok --fail --token $policy" ;;
	trip|reset) opts="$policy" ;;
	*) opts="" ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts $common" -- "$cur"))
	elif [ "$verb" != list ]; then
		_sw_breaker_names
	fi
}
complete -F _sw_breaker sw-breaker
