#!/usr/bin/env bash
# Installs, from Debian's packages, what building the operator's image and running a real node need:
# podman and buildah (the image), debootstrap (its base, when no registry serves one), containerd, runc
# and the CNI plugins (the node's runtime and pod network), iptables and conntrack (kube-proxy), nftables
# (the node's teardown deletes the nf_tables tables iptables-nft made), and a C compiler with a static libc
# (hack/tools.sh builds the pause binary).
# Idempotent: a second run only checks that every package is installed.
#
#   hack/node-deps.sh    install what is missing
set -euo pipefail

PACKAGES=(buildah podman containerd runc containernetworking-plugins debootstrap iptables nftables conntrack
  gcc libc6-dev)

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=""; [[ "$(id -u)" == 0 ]] || sudo="sudo"
start=$SECONDS
echo "node-deps: installing ${missing[*]} (apt)" >&2
# Other jobs on the machine may hold dpkg's lock for a while: wait for it rather than fail.
$sudo apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -q \
  --no-install-recommends "${missing[@]}" >/dev/null
echo "node-deps: installed in $((SECONDS - start))s" >&2
