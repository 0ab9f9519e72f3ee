#!/usr/bin/env bash
# Builds the operator's image from the Dockerfile with podman, as it is (no registry needed), and prints
# its reference, localhost/zenmodel-operator:<version>, as the last line.
#
# The Dockerfile's base (python:<version>-slim-bookworm) is used from podman's storage when it is there.
# Otherwise it is made here rather than pulled: the only network this project may use is the package
# registries, so a Debian bookworm rootfs (debootstrap --variant=minbase, from the mirror the machine's
# own apt sources name) with Python 3.11 and pip, as the official image has them, is imported under the
# base's name and labelled as made here. The rootfs is cached outside the repository, so a wiped podman
# storage costs an import, not a debootstrap; the image is labelled with a digest of what it is built
# from, so a run with unchanged sources takes seconds.
#
#   hack/image.sh           build (what is missing), print the image reference
#   hack/image.sh --print   print the image reference only
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"
IMAGE="localhost/zenmodel-operator:$VERSION"
if [[ "${1:-}" == "--print" ]]; then echo "$IMAGE"; exit 0; fi

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/zenmodel-operator/image"
SUITE=bookworm
# Every FROM of the Dockerfile names the same base (tests/unit/test_dockerfile.py holds it to that).
BASE="$(awk 'toupper($1) == "FROM" { print $2; exit }' Dockerfile)"
ROOTFS="$CACHE/rootfs-$SUITE-$(echo "$BASE" | tr ':/' '--').tar"
# Where this build's host trusts TLS (an intercepting proxy's CA included), lent to the build's RUN steps.
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

log() { echo "image: $*" >&2; }

bash hack/node-deps.sh

# The Debian mirror the machine's apt sources use for SUITE (one-line or deb822 format).
debian_mirror() {
  python3 - "$SUITE" <<'PY'
import glob, sys

suite = sys.argv[1]
for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*"))]:
    try:
        text = open(path).read()
    except OSError:
        continue
    if path.endswith(".sources"):
        for stanza in text.split("\n\n"):
            fields = {}
            for line in stanza.splitlines():
                if ":" in line and not line.lstrip().startswith("#"):
                    key, _, value = line.partition(":")
                    fields[key.strip()] = value.split()
            if "deb" in fields.get("Types", []) and suite in fields.get("Suites", []) and "main" in fields.get("Components", []):
                print(fields["URIs"][0])
                sys.exit(0)
    elif path.endswith(".list"):
        for line in text.splitlines():
            words = [w for w in line.split("#")[0].split() if not w.startswith("[")]
            if len(words) >= 4 and words[0] == "deb" and words[2] == suite and "main" in words[3:]:
                print(words[1])
                sys.exit(0)
sys.exit(f"no apt source for {suite} main")
PY
}

make_rootfs() {
  local mirror dir; mirror="$(debian_mirror)"
  # In the new root, nothing of this shell's environment (pip settings, for one) applies.
  in_root() { env -i PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 chroot "$dir" "$@"; }
  dir="$(mktemp -d)"
  trap 'rm -rf "$dir"; trap - RETURN' RETURN
  log "debootstrap --variant=minbase $SUITE (python3)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates "$SUITE" "$dir" "$mirror" >&2
  # pip and setuptools where the official image has them (outside dpkg's files, so `pip uninstall` may
  # remove them), then nothing of Debian's venv wheels or apt lists is left.
  # (Debian disables ensurepip for the system Python; pip installs itself from its own wheel instead.)
  rm -f "$dir"/usr/lib/python3*/EXTERNALLY-MANAGED
  in_root sh -c 'set -- /usr/share/python-wheels/pip-*.whl /usr/share/python-wheels/setuptools-*.whl
    python3 "$1/pip" install --no-index --no-cache-dir "$@"' >&2
  in_root ln -s python3 /usr/local/bin/python
  in_root dpkg --purge python3-venv python3.11-venv python3-pip-whl python3-setuptools-whl >&2
  # pip reads the system's CA bundle, so that a build whose host lends its own (see podman build) works.
  printf '[global]\ncert = %s\n' "$HOST_CA_BUNDLE" >"$dir/etc/pip.conf"
  in_root apt-get clean
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/debconf/*-old "$dir"/var/log/*
  mkdir -p "$CACHE"
  tar --numeric-owner -C "$dir" -cf "$ROOTFS.partial" .
  mv "$ROOTFS.partial" "$ROOTFS"
}

timed() {
  local name="$1" start=$SECONDS; shift
  "$@"
  log "$name took $((SECONDS - start))s"
}

if ! podman image exists "$BASE"; then
  [[ -f "$ROOTFS" ]] || timed "debootstrap" make_rootfs
  timed "import of the base" podman import \
    --change 'ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV=LANG=C.UTF-8' \
    --change 'LABEL=zenmodel.local/base=debootstrap' \
    --change 'CMD=["python3"]' \
    "$ROOTFS" "$BASE" >/dev/null
fi

# What the build reads (.dockerignore lets in pyproject.toml, README.md and operator/) and the Dockerfile:
# the image is rebuilt exactly when one of them changed.
source_digest() {
  find Dockerfile pyproject.toml README.md operator -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 |
    sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}

build() {
  # chroot isolation: no nested user namespaces or cgroups needed. --pull=never: the base is local.
  # --no-cache: buildah's layer cache keys a RUN --mount=from=builder step by its text alone, so a
  # cached final stage would keep the previous wheels; the digest label above is the cache instead.
  podman build --pull=never --isolation=chroot --no-cache \
    --volume "$HOST_CA_BUNDLE:$HOST_CA_BUNDLE:ro" \
    --label "zenmodel.local/source-digest=$1" \
    --tag "$IMAGE" . >&2
}

digest="$(source_digest)"
built="$(podman image inspect --format '{{index .Labels "zenmodel.local/source-digest"}}' "$IMAGE" 2>/dev/null || true)"
if [[ "$built" != "$digest" ]]; then
  nameless_before="$(podman images --quiet --no-trunc --filter dangling=true | sort)"
  timed "podman build" build "$digest"
  # What this build left nameless (its builder stage, the previous image) would pile up in podman's
  # storage; images that were nameless before are not ours to remove.
  comm -13 <(echo "$nameless_before") <(podman images --quiet --no-trunc --filter dangling=true | sort) |
    xargs --no-run-if-empty podman rmi >/dev/null
fi
echo "$IMAGE"
