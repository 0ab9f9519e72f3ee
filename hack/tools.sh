#!/usr/bin/env bash
# Builds the real Kubernetes parts the tests and the demo run against, from their Go modules, with the
# machine's own Go toolchain, and caches them outside the repository keyed by version, so a second run
# is a no-op. Prints the directory that holds the binaries.
#
#   hack/tools.sh            build what is missing, print the tools directory
#   hack/tools.sh glua       build only gopher-lua's glua if missing (the Argo CD health-check test needs
#                            nothing else), print the tools directory
#   hack/tools.sh seldon-config
#                            only Seldon's ConfigMap and manager manifest, from its module (seconds; what
#                            hack/seldon-images.sh reads), print the tools directory
#   hack/tools.sh argocd     build only Argo CD (its application controller and repo server) if missing,
#                            print the tools directory
#   hack/tools.sh --print    print the tools directory only
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
HELM_VERSION="${HELM_VERSION:-v3.19.0}"
SELDON_VERSION="${SELDON_VERSION:-v1.19.0}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
# The Lua interpreter Argo CD embeds (the version in Argo CD's go.mod); keyed by its binary's name below, so
# adding it did not move the directory the other tools are cached in.
GLUA_VERSION="${GLUA_VERSION:-v1.1.1}"
# The newest Argo CD that builds from the module proxy with this Go (v3.2.12 does not compile; v3.3 and later
# need a gitops-engine module the proxy does not serve). In its own directory argocd-<version>.
ARGOCD_VERSION="${ARGOCD_VERSION:-v3.2.11}"
# The real node's sandbox image: a name no registry serves, so nothing ever tries to pull it.
PAUSE_IMAGE="localhost/zenmodel-pause:$K8S_VERSION"
PAUSE_ARCHIVE="pause-$K8S_VERSION.oci.tar"
CACHE="${ZENMODEL_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zenmodel-operator/tools}"
BIN="$CACHE/bin-k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}-helm-${HELM_VERSION}-seldon-${SELDON_VERSION}-kwok-${KWOK_VERSION}"

export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
# The checksum database has no record of Seldon's operator module; everything else is verified.
export GONOSUMDB=github.com/seldonio

if [[ "${1:-}" == "--print" ]]; then echo "$BIN"; exit 0; fi
mkdir -p "$BIN"

log() { echo "tools: $*" >&2; }

# Builds PACKAGES from MODULE@VERSION inside a throwaway module, so the module's own replace
# directives (which `go install` refuses) are ours to set. Extra go.mod lines come on stdin.
build_from_module() {
  local module="$1" version="$2" ldflags="$3"; shift 3
  local work; work="$(mktemp -d)"
  {
    echo "module zenmodel.local/tools-build"
    echo "go 1.24"
    echo "require $module $version"
    cat
  } >"$work/go.mod"
  (cd "$work" && go build -trimpath -ldflags "-s -w $ldflags" -o "$BIN/" "$@")
  rm -rf "$work"
}

# Builds the Kubernetes commands PACKAGES at K8S_VERSION, stamped with that version.
build_kubernetes() {
  # k8s.io/kubernetes points its staging modules at ./staging; point each at its published twin
  # (v1.X.Y -> v0.X.Y). The list comes from the module's own go.mod, not from us.
  local gomod staging="v0.${K8S_VERSION#v1.}"
  gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
  local pkg=k8s.io/component-base/version minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local ldflags="-X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  sed -nE 's#^[[:space:]]*(replace[[:space:]]+)?(k8s\.io/[^[:space:]]+)[[:space:]]+=>[[:space:]]+\./staging/.*#replace \2 => \2 '"$staging"'#p' "$gomod" |
    build_from_module k8s.io/kubernetes "$K8S_VERSION" "$ldflags" "$@"
}

kubernetes() {
  build_kubernetes k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
}

# The real node's parts (tests/support/realnode.py), built apart so that adding them rebuilt nothing else.
kubernetes_node() {
  build_kubernetes k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
}

pause_image() {
  # The pod sandbox's image as Kubernetes builds it (build/pause): its pause.c, static, alone in an image
  # FROM scratch, run as 65535. Written as an OCI archive that containerd imports: no registry serves one.
  local dir work; dir="$(module_dir "k8s.io/kubernetes@$K8S_VERSION")"
  work="$(mktemp -d)"
  cc -Os -Wall -Werror -static -DVERSION="$K8S_VERSION" -o "$work/pause" "$dir/build/pause/linux/pause.c"
  strip "$work/pause"
  python3 - "$work/pause" "$BIN/$PAUSE_ARCHIVE.partial" "$PAUSE_IMAGE" <<'PY'
import hashlib, io, json, sys, tarfile

binary, archive, name = sys.argv[1:]


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type, data, **extra):
    return {"mediaType": media_type, "digest": digest(data), "size": len(data), **extra}


layer_buffer = io.BytesIO()
with tarfile.open(fileobj=layer_buffer, mode="w") as tar, open(binary, "rb") as f:
    info = tar.gettarinfo(binary, arcname="pause")
    info.uid = info.gid = info.mtime = 0
    info.uname = info.gname = ""
    tar.addfile(info, f)
layer = layer_buffer.getvalue()
config = json.dumps({
    "architecture": "amd64",
    "os": "linux",
    "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
    "rootfs": {"type": "layers", "diff_ids": [digest(layer)]},
}).encode()
manifest = json.dumps({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": descriptor("application/vnd.oci.image.config.v1+json", config),
    "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", layer)],
}).encode()
annotations = {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}
index = json.dumps({
    "schemaVersion": 2,
    "manifests": [descriptor("application/vnd.oci.image.manifest.v1+json", manifest, annotations=annotations)],
}).encode()
with tarfile.open(archive, "w") as out:
    entries = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}', "index.json": index}
    entries.update({"blobs/sha256/" + digest(data)[7:]: data for data in (layer, config, manifest)})
    for path, data in entries.items():
        info = tarfile.TarInfo(path)
        info.size = len(data)
        out.addfile(info, io.BytesIO(data))
PY
  mv "$BIN/$PAUSE_ARCHIVE.partial" "$BIN/$PAUSE_ARCHIVE"
  rm -rf "$work"
}

etcd() {
  # go.etcd.io/etcd/server/v3 is the etcd server's main package; go names the binary "server".
  build_from_module go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "" go.etcd.io/etcd/server/v3 </dev/null
  mv "$BIN/server" "$BIN/etcd"
}

helm() {
  build_from_module helm.sh/helm/v3 "$HELM_VERSION" "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    helm.sh/helm/v3/cmd/helm </dev/null
}

seldon_crd() {
  # Seldon's own SeldonDeployment CRD, the v1 "small" variant, as Seldon builds it: its kustomization
  # under config/crd_v1_small (base + its JSON patches that unroll graph.children), run by kubectl's
  # kustomize. Left out: the cert-manager CA-injection patch (it needs config/default's vars) and
  # status.json, a fix for an old controller-tools bug whose target (a top-level status) this base lacks.
  local dir work
  dir="$(go mod download -json "github.com/seldonio/seldon-core/operator@$SELDON_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  work="$(mktemp -d)"
  cp -r "$dir/config/crd_v1_small/bases" "$dir/config/crd_v1_small/patches" "$work/"
  chmod -R u+w "$work"
  python3 - "$dir/config/crd_v1_small/kustomization.yaml" >"$work/kustomization.yaml" <<'PY'
import sys, yaml
kustomization = yaml.safe_load(open(sys.argv[1]))
patches = [p for p in kustomization["patchesJson6902"] if p["path"] != "patches/status.json"]
print(yaml.safe_dump({"resources": kustomization["resources"], "patches": patches}))
PY
  "$BIN/kubectl" kustomize "$work" >"$work/seldon-crd.yaml"
  mv "$work/seldon-crd.yaml" "$BIN/seldon-crd.yaml"
  rm -rf "$work"
}

module_dir() {
  go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'
}

# The replace and exclude directives of the go.mod file $1, one per line, as a throwaway module repeats them.
replace_and_exclude_lines() {
  python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
for kind, body in re.findall(r"^(replace|exclude) \((.*?)^\)", text, re.S | re.M):
    for line in body.splitlines():
        line = line.split("//")[0].strip()
        if line:
            print(kind, line)
for kind, line in re.findall(r"^(replace|exclude) ([^(\n][^\n]*)$", text, re.M):
    print(kind, line.split("//")[0].strip())
PY
}

seldon_manager() {
  # Seldon Core v1's controller (its main package is the module root), with the module's own replace and
  # exclude lines: they pin the Kubernetes libraries it was released against.
  local gomod
  gomod="$(go mod download -json "github.com/seldonio/seldon-core/operator@$SELDON_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
  replace_and_exclude_lines "$gomod" |
    build_from_module github.com/seldonio/seldon-core/operator "$SELDON_VERSION" "" github.com/seldonio/seldon-core/operator
  mv "$BIN/operator" "$BIN/seldon-manager"
}

seldon_config() {
  # What Seldon's manager needs at run time, from the same version: its ConfigMap (which also names the
  # images of the pods it makes) and its environment. Moved into place whole: `make -j` may run this
  # step from two scripts at once.
  local dir file; dir="$(module_dir "github.com/seldonio/seldon-core/operator@$SELDON_VERSION")"
  for file in configmap manager; do
    cp "$dir/config/manager/$file.yaml" "$BIN/seldon-$file.yaml.$$"
    chmod u+w "$BIN/seldon-$file.yaml.$$"
    mv "$BIN/seldon-$file.yaml.$$" "$BIN/seldon-$file.yaml"
  done
}

kwok() {
  GOBIN="$BIN" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
}

kwok_stages() {
  # The stages kwokctl configures by default (pkg/kwokctl/runtime/cluster.go embeds pod/fast): without
  # stages kwok exits with "no stages found". pod/general's pod-ready waits for an Initialized condition
  # that only its pod-create and init-container stages set. Stamped with the version, so a changed set
  # replaces an older copy.
  local dir; dir="$(module_dir "sigs.k8s.io/kwok@$KWOK_VERSION")"
  rm -rf "$BIN/kwok-stages"
  mkdir -p "$BIN/kwok-stages"
  local stage
  for stage in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
    pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    cp "$dir/kustomize/stage/$stage.yaml" "$BIN/kwok-stages/"
  done
  chmod -R u+w "$BIN/kwok-stages"
  touch "$BIN/kwok-stages/kwokctl-default-$KWOK_VERSION"
}

glua() {
  # Built as glua-<version>, with glua a link to it: a version bump builds anew.
  rm -f "$BIN/glua"
  build_from_module github.com/yuin/gopher-lua "$GLUA_VERSION" "" github.com/yuin/gopher-lua/cmd/glua </dev/null
  mv "$BIN/glua" "$BIN/glua-$GLUA_VERSION"
  ln -s "glua-$GLUA_VERSION" "$BIN/glua"
}

argocd() {
  # Argo CD's own cmd/main.go links every component (API server, Dex, notifications, CLI, ...); this main links
  # only the two the tests run and, like Argo CD's, picks the component by the name it is called by. The
  # module's replace lines pin the Kubernetes libraries it was released against. Built into a scratch
  # directory that is renamed into place last, so a half-done build is never taken for a finished one.
  local gomod dir work out="$BIN/argocd-$ARGOCD_VERSION"
  gomod="$(go mod download -json "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
  dir="$(module_dir "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION")"
  work="$(mktemp -d)"
  {
    echo "module zenmodel.local/argocd-build"
    echo "go 1.25.5"
    echo "require github.com/argoproj/argo-cd/v3 $ARGOCD_VERSION"
    replace_and_exclude_lines "$gomod"
  } >"$work/go.mod"
  cat >"$work/main.go" <<'GO'
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	controller "github.com/argoproj/argo-cd/v3/cmd/argocd-application-controller/commands"
	reposerver "github.com/argoproj/argo-cd/v3/cmd/argocd-repo-server/commands"
)

func main() {
	var command *cobra.Command
	switch name := filepath.Base(os.Args[0]); name {
	case "argocd-application-controller":
		command = controller.NewCommand()
	case "argocd-repo-server":
		command = reposerver.NewCommand()
	default:
		fmt.Fprintf(os.Stderr, "%s: call me argocd-application-controller or argocd-repo-server\n", name)
		os.Exit(2)
	}
	if err := command.Execute(); err != nil {
		os.Exit(1)
	}
}
GO
  rm -rf "$out.partial"
  mkdir -p "$out.partial/crds"
  (cd "$work" && go build -trimpath -ldflags "-s -w -X github.com/argoproj/argo-cd/v3/common.version=${ARGOCD_VERSION#v}" -o "$out.partial/argocd" .)
  ln -s argocd "$out.partial/argocd-application-controller"
  ln -s argocd "$out.partial/argocd-repo-server"
  # The Application and AppProject CRDs of the same version (normally installed with Argo CD's manifests).
  cp "$dir/manifests/crds/application-crd.yaml" "$dir/manifests/crds/appproject-crd.yaml" "$out.partial/crds/"
  chmod -R u+w "$out.partial"
  mv "$out.partial" "$out"
  rm -rf "$work"
}

timed() {
  local name="$1" marker="$2"; shift 2
  [[ -e "$BIN/$marker" ]] && return 0
  local start=$SECONDS
  log "building $name"
  "$@"
  log "built $name in $((SECONDS - start))s"
}

if [[ "${1:-}" == "argocd" ]]; then
  timed argocd "argocd-$ARGOCD_VERSION" argocd
  echo "$BIN"
  exit 0
fi

if [[ "${1:-}" == "seldon-config" ]]; then
  timed seldon-config seldon-manager.yaml seldon_config
  echo "$BIN"
  exit 0
fi

if [[ "${1:-}" == "glua" ]]; then
  timed glua "glua-$GLUA_VERSION" glua
  echo "$BIN"
  exit 0
fi

timed etcd etcd etcd
timed kubernetes kube-scheduler kubernetes
timed kubelet kubelet kubernetes_node
timed pause-image "$PAUSE_ARCHIVE" pause_image
timed seldon-crd seldon-crd.yaml seldon_crd
timed helm helm helm
timed seldon-manager seldon-manager seldon_manager
timed seldon-config seldon-manager.yaml seldon_config
timed kwok kwok kwok
timed kwok-stages "kwok-stages/kwokctl-default-$KWOK_VERSION" kwok_stages
timed glua "glua-$GLUA_VERSION" glua
timed argocd "argocd-$ARGOCD_VERSION" argocd
echo "$BIN"
