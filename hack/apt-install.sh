#!/usr/bin/env bash
# Installs the Debian packages named as arguments that are not installed yet, with one `apt-get update`.
# The hack/ scripts that need packages all come through here, under one lock, so that `make -j` may run
# them side by side (apt-get refuses to run while another holds its lists' lock, and only dpkg's own lock
# has a timeout option).
#
#   hack/apt-install.sh PACKAGE...
set -euo pipefail

missing() {
  local package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q '^install ok installed$' || echo "$package"
  done
}

[[ -z "$(missing "$@")" ]] && exit 0
sudo=""; [[ "$(id -u)" == 0 ]] || sudo="sudo"
exec 9>/run/lock/zenmodel-apt.lock
flock 9
# Another of our scripts may have installed them while this one waited for the lock.
mapfile -t wanted < <(missing "$@")
[[ ${#wanted[@]} -eq 0 ]] && exit 0
start=$SECONDS
echo "apt: installing ${wanted[*]}" >&2
# Other jobs on the machine may hold dpkg's lock for a while: wait for it rather than fail.
$sudo apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -q \
  --no-install-recommends "${wanted[@]}" >/dev/null
echo "apt: installed ${wanted[*]} in $((SECONDS - start))s" >&2
