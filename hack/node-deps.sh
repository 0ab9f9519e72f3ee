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

bash "$(dirname "$0")/apt-install.sh" "${PACKAGES[@]}"
