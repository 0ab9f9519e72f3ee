#!/usr/bin/env bash
# Builds, with podman, stand-ins for the images Seldon Core's own pods run for a SKLEARN_SERVER model
# under protocol v2, under the exact references Seldon's controller asks for, so that they can be put
# into a node's containerd without a registry. Which images, and their references, come from Seldon's
# seldon-config ConfigMap as hack/tools.sh caches it (hack/seldon_pod_images.py reads it); each is built
# from images/<directory>/ (its Dockerfile says what it stands in for).
#
# An image is rebuilt exactly when a file of its directory changed (its label holds their digest), so a
# run with nothing changed takes seconds. Bases are made as hack/image.sh makes its own (hack/base-image.sh).
# Prints "<directory> <reference>" per image, e.g.
#   mlserver-sklearn docker.io/seldonio/mlserver:1.7.1-sklearn
#
#   hack/seldon-images.sh           build what is missing or stale, print the references
#   hack/seldon-images.sh --print   print the references only
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib/podman.sh

CONFIGMAP="$(bash hack/tools.sh seldon-config)/seldon-configmap.yaml"
[[ -f "$CONFIGMAP" ]] || { log "no $CONFIGMAP: run hack/tools.sh seldon-config"; exit 1; }
# The repository's environment has PyYAML; the machine's Python need not.
PYTHON=.venv/bin/python
[[ -x "$PYTHON" ]] || PYTHON=python3
listed="$("$PYTHON" hack/seldon_pod_images.py "$CONFIGMAP")"
mapfile -t IMAGES <<<"$listed"
if [[ "${1:-}" == "--print" ]]; then printf '%s\n' "${IMAGES[@]}"; exit 0; fi

for line in "${IMAGES[@]}"; do
  read -r directory reference <<<"$line"
  context="images/$directory"
  bash hack/base-image.sh "$(awk 'toupper($1) == "FROM" { print $2; exit }' "$context/Dockerfile")"
  build_when_stale "$reference" "$(files_digest "$context")" "$context"
done
printf '%s\n' "${IMAGES[@]}"
