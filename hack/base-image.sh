#!/usr/bin/env bash
# Makes the Python base image the Dockerfiles here name (python:<version>-slim-bookworm) in podman's
# storage, unless it is there already. It is made here rather than pulled: the only network this project
# may use is the package registries, so a Debian bookworm rootfs (debootstrap --variant=minbase, from the
# mirror the machine's own apt sources name) with Python 3.11 and pip, as the official image has them, is
# imported under the base's name and labelled as made here. The rootfs is cached outside the repository,
# so a wiped podman storage costs an import, not a debootstrap.
#
#   hack/base-image.sh BASE    e.g. python:3.11.14-slim-bookworm (the FROM of a Dockerfile)
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib/podman.sh

BASE="$1"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/zenmodel-operator/image"
SUITE=bookworm
ROOTFS="$CACHE/rootfs-$SUITE-$(echo "$BASE" | tr ':/' '--').tar"

bash hack/node-deps.sh
podman image exists "$BASE" && exit 0
# One maker at a time: two would write the same rootfs and import the same name.
exec {lock}>/run/lock/zenmodel-base-image.lock
flock "$lock"
podman image exists "$BASE" && exit 0

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

[[ -f "$ROOTFS" ]] || timed "debootstrap" make_rootfs
timed "import of the base" podman import \
  --change 'ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV=LANG=C.UTF-8' \
  --change 'LABEL=zenmodel.local/base=debootstrap' \
  --change 'CMD=["python3"]' \
  "$ROOTFS" "$BASE" >/dev/null

