#!/bin/sh
# make deps: install with apt-get only the Debian packages that are missing.
set -e
pkgs="build-essential libsqlite3-dev libjansson-dev libbsd-dev jq bats bats-assert
bats-support mandoc prometheus moosefs-master moosefs-chunkserver moosefs-client
fuse3 iproute2 parallel hyperfine strace procps libxxhash-dev clang zsh
libclang-rt-dev"
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && { echo "deps: all installed"; exit 0; }
echo "deps: installing$missing"
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
