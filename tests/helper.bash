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
