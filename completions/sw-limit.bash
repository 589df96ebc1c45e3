# bash completion for sw-limit(1)
_sw_limit_names()
{
	local ws=${SW_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/sw} i
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-d|--dir) ws=${COMP_WORDS[i + 1]} ;;
		--dir=*) ws=${COMP_WORDS[i]#--dir=} ;;
		esac
	done
	[ -d "$ws/limits" ] || return
	local n names=()
	for n in "$ws"/limits/*/; do
		n=${n%/}; n=${n##*/}
		[ "$n" = '*' ] || names+=("$n")
	done
	COMPREPLY+=($(compgen -W "${names[*]}" -- "$cur"))
}

_sw_limit()
{
	local cur prev verb i
	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	local verbs="take run acquire renew release show list reset"
	local common="-d --dir --spans --quiet -h --help -V --version"
	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W "$verbs -h --help -V --version" -- "$cur"))
		return
	fi
	verb=${COMP_WORDS[1]}
	case $prev in
	-d|--dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
	--rate) COMPREPLY=($(compgen -W "10/s 100/s 60/m 1000/h 5000/h 10000/d" -- "$cur")); return ;;
	--window|--ttl|--wait|-g|--grace) COMPREPLY=($(compgen -W "1s 10s 30s 1m 5m 1h" -- "$cur")); return ;;
	-E|--conflict-exit-code) COMPREPLY=($(compgen -W "0 1 75" -- "$cur")); return ;;
	--burst|--max|-n|--count|--concurrency|--slot|--token|--owner) return ;;
	esac
	# run: once NAME is given, a word that is no option (or anything
	# after --) starts the command line
	if [ "$verb" = run ]; then
		local have_name=0 dashdash=0
		for ((i = 2; i < COMP_CWORD; i++)); do
			case ${COMP_WORDS[i]} in
			--) dashdash=1; break ;;
			-d|--dir|--rate|--burst|--window|--max|-n|--count|--concurrency|--ttl|--owner|-E|--conflict-exit-code|-g|--grace) i=$((i + 1)) ;;
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
	take) opts="--rate --burst --window --max -n --count --wait" ;;
	run) opts="--rate --burst --window --max -n --count --wait --concurrency --ttl --owner -E --conflict-exit-code -g --grace --" ;;
	acquire) opts="--concurrency --ttl --owner --wait" ;;
	renew) opts="--slot --token --ttl" ;;
	release) opts="--slot --token" ;;
	*) opts="" ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts $common" -- "$cur"))
	elif [ "$verb" != list ]; then
		_sw_limit_names
	fi
}
complete -F _sw_limit sw-limit
