#!/usr/bin/env bash
# Installs what tests/integration runs against: the real rclone (Debian's package) and local stand-ins
# for the object stores (Azurite from npm, fake-gcs-server built from its Go module); and Debian's
# redis-server, which tests/e2e/test_argocd.py runs for Argo CD. Everything but the Debian packages lives in
# a cache outside the repository, keyed by version, so a second run is a no-op.
# (moto, the S3 server, is a Python package in the `dev` extra.)
#
#   hack/test-deps.sh            install what is missing, then print where each tool is (name=path)
#   hack/test-deps.sh --print    print where each tool is, installing nothing
set -euo pipefail

AZURITE_VERSION="${AZURITE_VERSION:-3.35.0}"
FAKE_GCS_SERVER_VERSION="${FAKE_GCS_SERVER_VERSION:-v1.56.1}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/zenmodel-operator"
NODE_PREFIX="$CACHE/node"
AZURITE="$NODE_PREFIX/node_modules/.bin/azurite-blob"
FAKE_GCS_SERVER="$CACHE/tools-extra/fake-gcs-server-$FAKE_GCS_SERVER_VERSION"

print_paths() {
  echo "rclone=$(command -v rclone || echo /usr/bin/rclone)"
  echo "redis-server=$(command -v redis-server || echo /usr/bin/redis-server)"
  echo "azurite-blob=$AZURITE"
  echo "fake-gcs-server=$FAKE_GCS_SERVER"
}
if [[ "${1:-}" == "--print" ]]; then print_paths; exit 0; fi

log() { echo "test-deps: $*" >&2; }

azurite() {
  local installed
  installed="$(node -p 'require(process.argv[1]).version' "$NODE_PREFIX/node_modules/azurite/package.json" 2>/dev/null || true)"
  [[ "$installed" == "$AZURITE_VERSION" && -x "$AZURITE" ]] && return 0
  log "installing azurite@$AZURITE_VERSION (npm) into $NODE_PREFIX"
  mkdir -p "$NODE_PREFIX"
  npm install --prefix "$NODE_PREFIX" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >/dev/null
}

fake_gcs_server() {
  [[ -x "$FAKE_GCS_SERVER" ]] && return 0
  log "building fake-gcs-server $FAKE_GCS_SERVER_VERSION (go)"
  # A throwaway module, as hack/tools.sh does: the build uses the module's own pinned dependencies.
  local work; work="$(mktemp -d)"
  printf 'module zenmodel.local/test-deps\ngo 1.24\nrequire github.com/fsouza/fake-gcs-server %s\n' \
    "$FAKE_GCS_SERVER_VERSION" >"$work/go.mod"
  mkdir -p "$(dirname "$FAKE_GCS_SERVER")"
  (cd "$work" && GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0 \
    go build -trimpath -ldflags "-s -w" -o "$FAKE_GCS_SERVER" github.com/fsouza/fake-gcs-server)
  rm -rf "$work"
}

# rclone; and redis, the cache Argo CD's controller and repo server share (tests/support/argocd.py starts
# one on loopback).
bash "$(dirname "$0")/apt-install.sh" rclone redis-server
azurite
fake_gcs_server
print_paths
