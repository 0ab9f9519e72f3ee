#!/usr/bin/env bash
# Builds the operator's image from the Dockerfile with podman, as it is (no registry needed), and prints
# its reference, localhost/zenmodel-operator:<version>, as the last line.
#
# The Dockerfile's base (python:<version>-slim-bookworm) is made here when podman's storage lacks it
# (hack/base-image.sh). The image is labelled with a digest of what it is built from, so a run with
# unchanged sources takes seconds.
#
#   hack/image.sh           build (what is missing), print the image reference
#   hack/image.sh --print   print the image reference only
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib/podman.sh

VERSION="$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"
IMAGE="localhost/zenmodel-operator:$VERSION"
if [[ "${1:-}" == "--print" ]]; then echo "$IMAGE"; exit 0; fi

# Every FROM of the Dockerfile names the same base (tests/unit/test_dockerfile.py holds it to that).
bash hack/base-image.sh "$(awk 'toupper($1) == "FROM" { print $2; exit }' Dockerfile)"
# What the build reads (.dockerignore lets in pyproject.toml, README.md and operator/) and the Dockerfile:
# the image is rebuilt exactly when one of them changed.
build_when_stale "$IMAGE" "$(files_digest Dockerfile pyproject.toml README.md operator)" .
echo "$IMAGE"
