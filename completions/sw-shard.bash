# bash completion for sw-shard(1); what every sw program's completion
# shares is in sw-common, beside this file
. "$(dirname "${BASH_SOURCE[0]}")/sw-common" 2>/dev/null ||
	. "$(dirname "${BASH_SOURCE[0]}")/sw-common.bash"

_sw_shard()
{
	local cur prev verb opts
	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD-1]}
	verb=${COMP_WORDS[1]}
	local place="--algo --vnodes --max-load --seed"

	_sw_verb "split assign plan balance ring" && return
	case $prev in
	--algo|-a)
		COMPREPLY=($(compgen -W "ring rendezvous jump mod" -- "$cur")); return ;;
	--nodes|-n|--from|--to)
		local ws r rings= f files=()
		ws=$(_sw_ws)
		for r in "$ws"/rings/*.json; do [ -f "$r" ] && r=${r##*/} && rings+=" @ring:${r%.json}"; done
		# a file is a node file only as ./PATH, /PATH or @file:PATH
		case $cur in
		/*|./*|../*) files=($(compgen -f -- "$cur")) ;;
		@file:*) files=($(compgen -P @file: -f -- "${cur#@file:}")) ;;
		@*) ;;
		*) for f in $(compgen -f -- "$cur"); do files+=("./$f"); done ;;
		esac
		COMPREPLY=("${files[@]}" $(compgen -W "@agents @list: @file:$rings" -- "$cur")); return ;;
	-d|--dir)
		COMPREPLY=($(compgen -d -- "$cur")); return ;;
	-q|--queue)
		_sw_names queues; return ;;
	--priority)
		COMPREPLY=($(compgen -W "0 1 2 3 4 5 6 7 8 9" -- "$cur")); return ;;
	--vnodes|--max-load|--seed|--keys|--items-per-shard|--min-items|--max-shards|--id|--role|--max-attempts)
		return ;;
	--timeout)
		COMPREPLY=($(compgen -W "30s 5m 30m 1h" -- "$cur")); return ;;
	esac
	case $verb in
	split) opts="--items-per-shard --min-items --max-shards --id --lines --priority --role --max-attempts --timeout -q --queue --enqueue" ;;
	assign) opts="--nodes $place --tsv" ;;
	plan) opts="--from --to $place --keys --summary" ;;
	balance) opts="--nodes $place --keys --summary" ;;
	ring) opts="--nodes --algo --vnodes --seed --delete" ;;
	esac
	COMPREPLY=($(compgen -W "$opts $_sw_common_opts" -- "$cur"))
}
complete -F _sw_shard sw-shard
