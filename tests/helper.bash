# Shared by every bats suite: the programs under test come from $SW_BIN
# (bin/ by default, build/san/bin under ASan), each test gets its own
# workspace, and nothing is fsynced.
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
load /usr/lib/bats/bats-support/load.bash
load /usr/lib/bats/bats-assert/load.bash
export PATH="${SW_BIN:-$top/bin}:$PATH"
export SW_DIR="$BATS_TEST_TMPDIR/ws"
export SW_SYNC=off
# nothing falls back to the runner's own state directory
export XDG_STATE_HOME="$BATS_TEST_TMPDIR/state"
unset SW_SPANS TRACEPARENT SW_CLOCK_OFFSET SW_CLOCK_SKEW

bats_require_minimum_version 1.5.0   # run --separate-stderr

# ---- what a program's --help shows, and which options each verb takes ----

# help_options PROG: the long options its --help shows, one a line.
help_options() {
	"$1" --help | grep -o -- '--[a-z][a-z-]*' | sort -u
}

# help_verbs PROG: the verbs its --help shows (a line "  VERB ..."), one a line.
help_verbs() {
	"$1" --help | awk '/^  [a-z]+( |$)/ { print $1 }' | sort -u
}

# option_refusal PROG VERB ARG...: what PROG says on stderr to `VERB
# ARG...`.  An unknown option after them makes sure the verb never runs
# (when it takes them all, that is what it refuses).
option_refusal() {
	local prog=$1 verb=$2
	shift 2
	timeout 10 "$prog" "$verb" "$@" --no-such-option </dev/null 2>&1 >/dev/null
}

# takes_option PROG VERB ARG: whether VERB takes the option ARG ("--ttl=0",
# "--table"): PROG does not refuse it as "does not go with VERB".
takes_option() {
	[[ $(option_refusal "$@") != *"does not go with"* ]]
}

# is_flag PROG VERB OPT: whether the long option OPT takes no value: PROG
# refuses "OPT=0" as written (getopt knows no such option with a value).
is_flag() {
	[[ $(option_refusal "$1" "$2" "$3=0") == *"'$3=0'"* ]]
}

# ---- refusals ----------------------------------------------------------

# refused STATUS COMMAND...: COMMAND (a program, after env and its
# VAR=VALUE words if any) exits STATUS with exactly one line on stderr,
# from the program, and nothing on stdout.
refused() {
	local want=$1 prog= a
	shift
	for a; do
		[[ $a == env || $a == *=* ]] || { prog=${a##*/}; break; }
	done
	run --separate-stderr "$@"
	[ "$status" -eq "$want" ] || { echo "status $status, want $want: $stderr"; return 1; }
	[ "${#stderr_lines[@]}" -eq 1 ] || { echo "stderr: $stderr"; return 1; }
	[[ $stderr == "$prog:"* ]] || { echo "stderr: $stderr"; return 1; }
	[ -z "$output" ] || { echo "stdout: $output"; return 1; }
}

# ---- the documentation's crontab lines, run as cron runs them ----------

# crontab_lines: the crontab lines (five time fields, then the command) of
# the man page or markdown text on stdin, as crontab has them: mandoc's
# \e as \, a markdown block's indent dropped.
crontab_lines() {
	sed 's/\\e/\\/g; s/^ *//' | grep -E '^[0-9*/,-]+ [0-9*/,-]+ [0-9*/,-]+ [0-9*/,-]+ [0-9*/,-]+ ' || true
}

# cron_command LINE WS PREFIX: the command of a crontab line as a test
# runs it, on stdout: SW_DIR= on the line set to the workspace WS, the
# programs under /usr/local/bin (where the pages say make install puts
# them) taken from PREFIX/bin, cron's \% as %.  Fails, saying why, on a
# line cron would run otherwise than it reads: an unescaped % (cron ends
# the command there), or no SW_DIR on it (cron's environment has none).
cron_command() {
	local line=$1 ws=$2 prefix=$3 cmd
	[[ $line =~ ^([^ ]+ ){5}(.*)$ ]] || { echo "not a crontab line: $line" >&2; return 1; }
	cmd=${BASH_REMATCH[2]}
	[[ ${cmd//\\%/} != *%* ]] || { echo "unescaped % in: $line" >&2; return 1; }
	cmd=${cmd//\\%/%}
	[[ $cmd == SW_DIR=* || $cmd == *" SW_DIR="* ]] || { echo "no SW_DIR on: $line" >&2; return 1; }
	sed -E "s|SW_DIR=[^ ]*|SW_DIR=$ws|g; s|/usr/local/bin/|$prefix/bin/|g" <<<"$cmd"
}

# cron_run CMD HOME: runs CMD as cron runs it (env -i with PATH=/usr/bin:/bin
# and HOME only, /bin/sh -c, no stdin); fails, saying why, unless it exits
# 0 and says nothing on stderr (cron would mail that).
cron_run() {
	run --separate-stderr env -i PATH=/usr/bin:/bin HOME="$2" /bin/sh -c "$1" </dev/null
	[ "$status" -eq 0 ] || { echo "status $status: $1: $stderr"; return 1; }
	[ -z "$stderr" ] || { echo "cron would mail: $stderr ($1)"; return 1; }
}
