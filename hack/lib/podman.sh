# Sourced by the scripts that build images with podman (hack/image.sh, hack/seldon-images.sh,
# hack/base-image.sh): how a build is logged, timed, and skipped when nothing it reads has changed.
# Builds are serialized machine-wide (2 cores; and one build's clean-up of nameless images must not see
# another build's intermediate ones).

# Where this build's host trusts TLS (an intercepting proxy's CA included), lent to the build's RUN steps.
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
PODMAN_BUILD_LOCK=/run/lock/zenmodel-podman-build.lock

log() { echo "${0##*/}: $*" >&2; }

timed() {
  local name="$1" start=$SECONDS; shift
  "$@"
  log "$name took $((SECONDS - start))s"
}

# The digest of the files (and the directories' files) named, in a stable order: a build input's identity.
files_digest() {
  find "$@" -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 |
    sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}

built_digest() {
  podman image inspect --format '{{index .Labels "zenmodel.local/source-digest"}}' "$1" 2>/dev/null || true
}

# build_when_stale IMAGE DIGEST PODMAN-BUILD-ARGUMENTS...: builds IMAGE unless it exists labelled with
# DIGEST (the digest of what it is built from), so a run with unchanged sources takes seconds.
build_when_stale() {
  local image="$1" digest="$2"; shift 2
  [[ "$(built_digest "$image")" == "$digest" ]] && return 0
  local lock
  exec {lock}>"$PODMAN_BUILD_LOCK"
  flock "$lock"
  # Another process may have built it while this one waited.
  if [[ "$(built_digest "$image")" != "$digest" ]]; then
    local nameless_before
    nameless_before="$(podman images --quiet --no-trunc --filter dangling=true | sort)"
    # chroot isolation: no nested user namespaces or cgroups needed. --pull=never: the base is local.
    # --no-cache: buildah's layer cache keys a RUN --mount=from=builder step by its text alone, so a
    # cached final stage would keep the previous wheels; the digest label is the cache instead.
    timed "podman build of $image" podman build --pull=never --isolation=chroot --no-cache \
      --volume "$HOST_CA_BUNDLE:$HOST_CA_BUNDLE:ro" \
      --label "zenmodel.local/source-digest=$digest" \
      --tag "$image" "$@" >&2
    # What this build left nameless (a builder stage, the previous image) would pile up in podman's
    # storage; images that were nameless before are not ours to remove.
    comm -13 <(echo "$nameless_before") <(podman images --quiet --no-trunc --filter dangling=true | sort) |
      xargs --no-run-if-empty podman rmi >/dev/null
  fi
  exec {lock}>&-
}
