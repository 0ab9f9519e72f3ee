"""A real node beside kwok's fake ones: containerd (overlayfs, runc with cgroupfs), a bridge + host-local
CNI, the kubelet and kube-proxy (iptables mode), all on this machine, all started and undone by the tests.

`LocalCluster.start(real_node=True)` uses it: the API server then listens on an address of a veth
pair made here (pods reach it through the `kubernetes` Service, which kube-proxy programs), and the
node registers as ``REAL_NODE``, tainted so that only pods that tolerate ``REAL_NODE_TAINT`` land on it
(Seldon's model pods, whose images cannot be pulled here, stay on kwok's nodes).

A node changes its host: sysctls, iptables chains, a bridge and veths, network namespaces, mounts,
cgroups, a few well-known directories. ``HostState`` records what those look like before it starts, and
``RealNode.restore_host`` puts back each one and then reports what still reads differently.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import fcntl
import http.client
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import yaml

# The addresses a real node uses, none of them shared with each other or with kwok's pod CIDR (10.244.0.0/16).
API_ADDRESS = "10.246.0.1"
POD_CIDR = "10.245.0.0/24"
SERVICE_CIDR = "10.0.0.0/24"
# The API server's address lives on one end of a veth pair made for it (this kernel has no dummy
# interfaces); deleting that end deletes both.
API_INTERFACE = "zenmodel0"
API_INTERFACE_PEER = "zenmodel1"
BRIDGE = "cni0"
REAL_NODE = "real-node-0"
REAL_NODE_TAINT = {"key": "zenmodel.io/real-node", "value": "true", "effect": "NoSchedule"}
# The kubelet's pods live under this cgroup (cgroupfs driver) in every hierarchy, so they go with it.
CGROUP_ROOT = "zenmodel-real-node"
CNI_BIN_DIR = Path("/usr/lib/cni")
NETNS_DIR = Path("/var/run/netns")
# One real node per machine: they share the bridge, the API address and the host's iptables.
LOCK_FILE = Path("/run/zenmodel-real-node.lock")
LOCK_WAIT = 900.0
# What the kubelet (kernel/, vm/), the bridge plugin (ip_forward) and kube-proxy may set.
SYSCTLS = (
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/route_localnet",
    "net/bridge/bridge-nf-call-iptables",
    "net/netfilter/nf_conntrack_max",
)
# Directories the kubelet, containerd or the CNI plugins make outside the places we point them to.
HOST_PATHS = (
    "/var/lib/cni",
    "/var/log/pods",
    "/var/log/containers",
    "/var/lib/kubelet",
    "/var/lib/containerd",
    "/run/containerd",
    "/opt/containerd",
    "/etc/cni/net.d",
    str(NETNS_DIR),
)
IPTABLES = ("iptables", "ip6tables")
PACKAGES_HINT = "run hack/node-deps.sh"
REQUIRED_HOST_BINARIES = ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "iptables", "ip", "podman")
STOP_GRACE = 30.0
# Where the node's containerd would pull from: a loopback port nothing listens on (port 9, discard).
CLOSED_REGISTRY = "http://127.0.0.1:9"
# What the real-node suite measured on the way (name -> value, the unit in the name); the e2e session
# prints them at its end.
FIGURES: dict[str, float] = {}


class RealNodeError(RuntimeError):
    """The real node could not be started or undone."""


class Spawner(Protocol):
    """What RealNode needs from LocalCluster: start a logged child process and wait for it."""

    def spawn(
        self, binary: str, *args: str, env: dict[str, str] | None = None, executable: Path | None = None
    ) -> Any: ...

    def wait_ready(self, process: Any, deadline: float, ready: Callable[[], bool]) -> None: ...

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]: ...


def unavailable_reason() -> str | None:
    """Why this machine cannot run a real node at all, or None. Missing packages are not such a reason
    (hack/node-deps.sh installs them); what is: not being root, no overlayfs, no network namespaces."""
    if os.geteuid() != 0:
        return "a real node needs root (containerd, the kubelet, iptables and network interfaces)"
    if "overlay" not in Path("/proc/filesystems").read_text():
        return "the kernel has no overlayfs, which containerd's snapshotter needs"
    if not Path("/proc/self/ns/net").exists():
        return "the kernel has no network namespaces, which pods need"
    return None


def missing_binaries(tools_dir: Path) -> list[str]:
    """What the node lacks to start: host packages (hack/node-deps.sh) or built parts (hack/tools.sh)."""
    missing = [name for name in REQUIRED_HOST_BINARIES if shutil.which(name) is None]
    missing += [
        str(CNI_BIN_DIR / p) for p in ("bridge", "host-local", "loopback") if not (CNI_BIN_DIR / p).exists()
    ]
    built = ("kubelet", "kube-proxy", _pause_archive(tools_dir))
    missing += [str(tools_dir / b) for b in built if not (tools_dir / b).is_file()]
    return missing


# --------------------------------------------------------------------------------- the host's state


def _run(*args: str, check: bool = True, input: str | None = None) -> str:
    result = subprocess.run(args, capture_output=True, text=True, input=input, check=False, timeout=120)
    if check and result.returncode != 0:
        raise RealNodeError(f"{' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name


def _read_sysctls() -> dict[str, str]:
    values = {}
    for name in SYSCTLS:
        with contextlib.suppress(OSError):
            values[name] = _sysctl_path(name).read_text().strip()
    return values


def _iptables_rules(command: str) -> str:
    """``<command>-save`` without its comments and counters: the rules and chains, comparable over time."""
    if shutil.which(f"{command}-save") is None:
        return ""
    out = _run(f"{command}-save")
    return "\n".join(line for line in out.splitlines() if not line.startswith("#"))


def _nft_tables() -> list[str]:
    """The nf_tables tables (``<family> <name>``): iptables-nft makes them on first use, and emptying
    their chains does not delete them."""
    if shutil.which("nft") is None:
        return []
    return sorted(line.removeprefix("table ") for line in _run("nft", "list", "tables").splitlines() if line)


def _mount_points(roots: Sequence[Path]) -> list[str]:
    """The mount points at or under ``roots`` (field 5 of mountinfo, octal escapes undone): only where a
    node mounts, as others on a shared machine may mount elsewhere meanwhile."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
        if any(Path(point).is_relative_to(root) for root in roots):
            points.append(point)
    return points


def _cgroup_mounts() -> list[Path]:
    """Where each cgroup hierarchy (v1 controllers, or the v2 unified one) is mounted."""
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        before, _, after = line.partition(" - ")
        if after.split()[0] in ("cgroup", "cgroup2"):
            mounts.append(Path(before.split()[4]))
    return mounts


def _links() -> list[str]:
    return sorted(link["ifname"] for link in json.loads(_run("ip", "-j", "link", "show")))


def _addresses() -> list[str]:
    return sorted(
        f"{link['ifname']} {address['local']}/{address['prefixlen']}"
        for link in json.loads(_run("ip", "-j", "address", "show"))
        for address in link.get("addr_info", [])
    )


@dataclass(frozen=True)
class HostState:
    """What a real node may change on its host, as it reads at one moment."""

    sysctls: dict[str, str]
    iptables: dict[str, str]
    nft_tables: list[str]
    links: list[str]
    addresses: list[str]
    mounts: list[str]
    cgroups: list[str]
    paths: dict[str, bool]
    netns: list[str]

    @classmethod
    def read(cls, mount_roots: Sequence[Path]) -> HostState:
        return cls(
            sysctls=_read_sysctls(),
            iptables={command: _iptables_rules(command) for command in IPTABLES},
            nft_tables=_nft_tables(),
            links=_links(),
            addresses=_addresses(),
            mounts=sorted(_mount_points(mount_roots)),
            cgroups=sorted(str(m / CGROUP_ROOT) for m in _cgroup_mounts() if (m / CGROUP_ROOT).exists()),
            paths={path: Path(path).exists() for path in HOST_PATHS},
            netns=sorted(p.name for p in NETNS_DIR.iterdir()) if NETNS_DIR.is_dir() else [],
        )

    def differences(self, other: HostState) -> list[str]:
        """What ``other`` has that this state has not, or the other way round, field by field."""
        diffs = []
        for name in self.__dataclass_fields__:
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                diffs.append(f"{name}: before {_short(mine)}, after {_short(theirs)}")
        return diffs


def _short(value: object) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) < 2000 else text[:2000] + "..."


# --------------------------------------------------------------------------------- the node


@dataclass
class RealNode:
    """The node's processes and files; the host's network for the API server is set up by ``prepare_host``
    before the API server starts, the rest by ``start`` once the control plane runs."""

    workdir: Path
    tools_dir: Path
    runtime_dir: Path = field(init=False)
    before: HostState | None = field(default=None, init=False)
    # Images (podman references) to put into containerd as soon as it runs, beside the rest of the start.
    images: Sequence[str] = ()
    _lock: IO[str] | None = field(default=None, init=False)
    _processes: list[Any] = field(default_factory=list, init=False)
    _imports: concurrent.futures.Future[None] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.workdir = self.workdir / "real-node"
        # Short: a unix socket's path is at most 107 bytes, and pytest's tmp paths are long.
        self.runtime_dir = Path("/run") / f"zenmodel-node-{os.getpid()}"

    @property
    def mount_roots(self) -> tuple[Path, ...]:
        """Where the node's parts mount: its own directories, pods' network namespaces, and the places the
        kubelet or containerd would use by default."""
        return (
            self.workdir,
            self.runtime_dir,
            Path("/run/netns"),
            Path("/var/lib/kubelet"),
            Path("/run/containerd"),
        )

    @property
    def containerd_socket(self) -> Path:
        return self.runtime_dir / "containerd.sock"

    @property
    def kubelet_root(self) -> Path:
        return self.workdir / "kubelet"

    # ------------------------------------------------------------------ host network, before the API server

    def prepare_host(self) -> None:
        """Takes the machine's real-node lock, records the host's state, and gives it the API server's
        address on a veth pair of its own."""
        missing = missing_binaries(self.tools_dir)
        if missing:
            raise RealNodeError(f"missing {', '.join(missing)}: {PACKAGES_HINT} and hack/tools.sh")
        LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
        lock = LOCK_FILE.open("w")
        # Another suite's node on the same machine: wait for it to go rather than fail.
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    lock.close()
                    raise RealNodeError(f"another real node held {LOCK_FILE} for {LOCK_WAIT:.0f}s") from None
                time.sleep(1.0)
        self._lock = lock
        self.before = HostState.read(self.mount_roots)
        if API_INTERFACE in self.before.links or BRIDGE in self.before.links:
            raise RealNodeError(f"{API_INTERFACE} or {BRIDGE} already exists: a previous run was not undone")
        _run("ip", "link", "add", API_INTERFACE, "type", "veth", "peer", "name", API_INTERFACE_PEER)
        _run("ip", "address", "add", f"{API_ADDRESS}/32", "dev", API_INTERFACE)
        for link in (API_INTERFACE_PEER, API_INTERFACE):
            _run("ip", "link", "set", link, "up")
        # A Service's address is only real once kube-proxy rewrites it to a pod's; until then (or for an
        # address no Service has) the host's default route would carry it off the machine. Routed into
        # the veth, whose other end goes nowhere, it stays here. The route goes with the link.
        _run("ip", "route", "add", SERVICE_CIDR, "dev", API_INTERFACE)

    # ------------------------------------------------------------------ the node, once the control plane runs

    def start(self, cluster: Spawner, pki: Path, server: str, deadline: float) -> None:
        for sub in ("containerd", "cni/net.d", "cni/ipam", "kubelet", "pod-logs"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        for mount in _cgroup_mounts():
            (mount / CGROUP_ROOT).mkdir(exist_ok=True)
        self._write_cni_config()
        # Pods reach this host (the API server, the tests' object stores) and each other, and nothing else:
        # the bridge plugin makes the host their gateway, and the host would forward the rest to its own.
        _run("iptables", "-I", "FORWARD", "-s", POD_CIDR, "!", "-o", BRIDGE, "-j", "REJECT")
        containerd = cluster.spawn(
            "containerd",
            "--config",
            str(self._write_containerd_config()),
            executable=_host_binary("containerd"),
        )
        self._processes.append(containerd)
        cluster.wait_ready(containerd, deadline, self.containerd_socket.exists)
        self.import_image(self.tools_dir / _pause_archive(self.tools_dir))
        if self.images:
            # A gigabyte of images takes longer to import than the rest of the node takes to start.
            pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
            self._imports = pool.submit(self._import_from_podman_all, tuple(self.images))
            pool.shutdown(wait=False)  # the import goes on; the pool takes nothing more

        kubelet = cluster.spawn(
            "kubelet",
            f"--config={self._write_kubelet_config(pki)}",
            f"--kubeconfig={self._kubeconfig(pki, server, 'kubelet')}",
            f"--hostname-override={REAL_NODE}",
            f"--node-ip={API_ADDRESS}",
            f"--root-dir={self.kubelet_root}",
            f"--register-with-taints={REAL_NODE_TAINT['key']}={REAL_NODE_TAINT['value']}:{REAL_NODE_TAINT['effect']}",
            "--v=1",
        )
        self._processes.append(kubelet)
        proxy_health_port, proxy_metrics_port = _free_port(), _free_port()
        proxy = cluster.spawn(
            "kube-proxy",
            f"--kubeconfig={self._kubeconfig(pki, server, 'kube-proxy')}",
            "--proxy-mode=iptables",
            f"--hostname-override={REAL_NODE}",
            f"--cluster-cidr={POD_CIDR}",
            # Node ports only on the node's own address: with the default (all addresses, loopback too)
            # kube-proxy would set route_localnet for the whole host.
            f"--nodeport-addresses={API_ADDRESS}/32",
            # Leave the host's conntrack table sizes and timeouts as they are.
            "--conntrack-max-per-core=0",
            "--conntrack-tcp-timeout-established=0",
            "--conntrack-tcp-timeout-close-wait=0",
            f"--metrics-bind-address=127.0.0.1:{proxy_metrics_port}",
            f"--healthz-bind-address=127.0.0.1:{proxy_health_port}",
        )
        self._processes.append(proxy)
        # kube-proxy's /healthz answers 200 once it has written the Services' rules.
        cluster.wait_ready(proxy, deadline, lambda: _http_ok(proxy_health_port, "/healthz"))

        def node_ready() -> bool:
            out = cluster.kubectl(
                "get",
                "node",
                REAL_NODE,
                "-o",
                "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                check=False,
            )
            return out.stdout.strip() == "True"

        cluster.wait_ready(kubelet, deadline, node_ready)

    def import_image(self, archive: Path) -> None:
        """Imports an image archive (OCI or docker format) where the kubelet finds it: containerd's k8s.io
        namespace. Images are never pulled on this node."""
        self._ctr("images", "import", str(archive))

    def _import_from_podman_all(self, references: Sequence[str]) -> None:
        started = time.monotonic()
        for reference in references:
            self.import_from_podman(reference)
        FIGURES["images: import into containerd, beside the node's start (s)"] = time.monotonic() - started

    def wait_for_images(self, timeout: float = 600.0) -> None:
        """Returns once the images given at construction are in containerd (raises what their import
        raised)."""
        if self._imports is not None:
            self._imports.result(timeout)

    def import_from_podman(self, reference: str, tag: str | None = None) -> str:
        """Copies ``reference`` from podman's storage into containerd, as ``tag`` if given; the name the
        kubelet then runs it under."""
        name = tag or reference
        if tag:
            _run("podman", "tag", reference, tag)
        archive = self.workdir / "image.tar"
        archive.unlink(missing_ok=True)
        try:
            _run("podman", "save", "--format", "docker-archive", "--output", str(archive), name)
            self.import_image(archive)
        finally:
            archive.unlink(missing_ok=True)
            if tag:
                # `podman untag IMAGE` alone would remove every name of the image, `reference` too.
                _run("podman", "untag", tag, tag, check=False)
        return name

    def _ctr(self, *args: str, check: bool = True) -> str:
        return _run("ctr", f"--address={self.containerd_socket}", "--namespace=k8s.io", *args, check=check)

    def pids(self) -> dict[str, int]:
        """The node's processes by name (containerd, kubelet, kube-proxy)."""
        return {process.name: process.popen.pid for process in self._processes if process.alive()}

    # ------------------------------------------------------------------ teardown

    def stop_node(self, cluster: Spawner) -> None:
        """While the API server still runs: the pods on the node go (so the kubelet stops their sandboxes
        and CNI releases their network), then kube-proxy, the kubelet and containerd stop."""
        if self._imports is not None:
            concurrent.futures.wait([self._imports], timeout=600)  # not into a containerd that is stopping
        if self._processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                cluster.kubectl("cordon", REAL_NODE, check=False)
                cluster.kubectl(
                    "delete",
                    "pods",
                    "--all-namespaces",
                    f"--field-selector=spec.nodeName={REAL_NODE}",
                    "--grace-period=1",
                    "--wait=false",
                    check=False,
                )
            deadline = time.monotonic() + STOP_GRACE
            while time.monotonic() < deadline and self._running_sandboxes():
                time.sleep(0.5)
        self._stop_processes()

    def _running_sandboxes(self) -> list[str]:
        if not self.containerd_socket.exists():
            return []
        out = self._ctr("tasks", "list", "--quiet", check=False)
        return out.split()

    def _stop_processes(self) -> None:
        kubelet_and_proxy = [p for p in self._processes if p.name != "containerd"]
        for process in reversed(kubelet_and_proxy):
            process.stop(10.0)
        # What the kubelet left running: its containers' tasks, killed through containerd itself.
        if any(p.name == "containerd" and p.alive() for p in self._processes):
            for task in self._running_sandboxes():
                self._ctr("tasks", "kill", "--signal=SIGKILL", task, check=False)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self._running_sandboxes():
                time.sleep(0.2)
        for process in reversed(self._processes):
            process.stop(10.0)
        self._processes.clear()
        # Shims outlive containerd; ours are told apart by our containerd's socket on their command line.
        for pid in _pids_with_argument(str(self.containerd_socket)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)

    def restore_host(self) -> list[str]:
        """After the API server stopped: undoes every change to the host and returns what still differs
        from before the node started (empty when the host is as it was)."""
        if self.before is None:
            return []
        before = self.before
        try:
            self._unmount_ours(before)
            # containerd names the pods' network namespaces cni-<uuid>.
            for name in set(os.listdir(NETNS_DIR)) - set(before.netns) if NETNS_DIR.is_dir() else ():
                if name.startswith("cni-"):
                    with contextlib.suppress(OSError):
                        (NETNS_DIR / name).unlink()
            for link in (BRIDGE, API_INTERFACE):
                _run("ip", "link", "delete", link, check=False)
            # veths of pods whose network namespace went without a CNI DEL go with their namespace.
            for link in set(_links()) - set(before.links):
                if link.startswith("veth"):
                    _run("ip", "link", "delete", link, check=False)
            for command in IPTABLES:
                self._restore_iptables(command, before.iptables[command])
            for table in set(_nft_tables()) - set(before.nft_tables):
                _run("nft", "delete", "table", *table.split(), check=False)
            for name, value in before.sysctls.items():
                if _read_sysctls().get(name) != value:
                    with contextlib.suppress(OSError):
                        _sysctl_path(name).write_text(value)
            for mount in _cgroup_mounts():
                _remove_cgroup_tree(mount / CGROUP_ROOT)
            for path, existed in before.paths.items():
                if not existed and Path(path).exists():
                    shutil.rmtree(path, ignore_errors=True)
            shutil.rmtree(self.runtime_dir, ignore_errors=True)
            return before.differences(HostState.read(self.mount_roots))
        finally:
            if self._lock is not None:
                self._lock.close()
                self._lock = None
            self.before = None

    def _unmount_ours(self, before: HostState) -> None:
        """Unmounts, deepest first, every mount point that appeared while the node ran."""
        kept = set(before.mounts)
        for _ in range(5):
            new = [point for point in _mount_points(self.mount_roots) if point not in kept]
            if not new:
                return
            for point in sorted(set(new), key=len, reverse=True):
                subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)

    @staticmethod
    def _restore_iptables(command: str, before: str) -> None:
        if shutil.which(f"{command}-restore") is None:
            return
        now = _iptables_rules(command)
        if now == before:
            return
        # Tables the node created (absent before) are emptied; the others get their old contents back.
        tables_before = set(re.findall(r"^\*(\w+)$", before, re.M))
        for table in set(re.findall(r"^\*(\w+)$", now, re.M)) - tables_before:
            _run(command, "-t", table, "-F", check=False)
            _run(command, "-t", table, "-X", check=False)
        if before:
            _run(f"{command}-restore", input=before + "\n")

    # ------------------------------------------------------------------ configuration files

    def _write_cni_config(self) -> None:
        config = {
            "cniVersion": "1.0.0",
            "name": "zenmodel-real-node",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    # Pods talk to the API server and to each other only: no masquerading to the world.
                    "ipMasq": False,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": POD_CIDR}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(self.workdir / "cni" / "ipam"),
                    },
                },
                {"type": "loopback"},
            ],
        }
        (self.workdir / "cni" / "net.d" / "10-zenmodel.conflist").write_text(json.dumps(config, indent=2))

    def _write_containerd_config(self) -> Path:
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        base_spec = self.workdir / "containerd" / "base-spec.json"
        base_spec.write_text(self._base_runtime_spec())
        config = f"""\
version = 2
root = "{self.workdir / "containerd" / "root"}"
state = "{self.runtime_dir / "state"}"
# Plugins that would write outside root and state, or that this machine cannot use.
disabled_plugins = [
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = "{self.containerd_socket}"

[ttrpc]
  address = "{self.containerd_socket}.ttrpc"

[metrics]
  address = ""

[{cri}]
  sandbox_image = "localhost/zenmodel-pause:{_k8s_version(self.tools_dir)}"
  # Root here lacks CAP_SYS_RESOURCE: containers may only raise their oom_score_adj, never lower it.
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  base_runtime_spec = "{base_spec}"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false

[{cri}.registry]
  # Images are imported, never pulled: every registry is a closed port here, so a missing image fails at
  # once (ErrImagePull) instead of reaching for the network.
  config_path = "{self._write_registry_hosts()}"

[{cri}.cni]
  bin_dir = "{CNI_BIN_DIR}"
  conf_dir = "{self.workdir / "cni" / "net.d"}"
  max_conf_num = 1
"""
        path = self.workdir / "containerd" / "config.toml"
        path.write_text(config)
        return path

    def _write_registry_hosts(self) -> Path:
        """containerd's per-registry hosts.toml files: docker.io (the default registry) and every other
        (``_default``) point at a port where nothing listens."""
        hosts = self.workdir / "containerd" / "certs.d"
        for registry in ("_default", "docker.io"):
            (hosts / registry).mkdir(parents=True, exist_ok=True)
            (hosts / registry / "hosts.toml").write_text(f'server = "{CLOSED_REGISTRY}"\n')
        return hosts

    def _base_runtime_spec(self) -> str:
        """containerd's default container spec, with the open-files and process limits set to what this
        process has: without CAP_SYS_RESOURCE, runc cannot raise a limit above the host's hard limit."""
        spec = json.loads(_run("ctr", "oci", "spec"))
        limits = []
        for name, which in (
            ("RLIMIT_NOFILE", resource.RLIMIT_NOFILE),
            ("RLIMIT_NPROC", resource.RLIMIT_NPROC),
        ):
            soft, hard = resource.getrlimit(which)
            hard = hard if hard != resource.RLIM_INFINITY else 1 << 20
            soft = soft if soft != resource.RLIM_INFINITY else hard
            limits.append({"type": name, "hard": hard, "soft": min(soft, hard)})
        spec["process"]["rlimits"] = limits
        return json.dumps(spec, indent=2)

    def _write_kubelet_config(self, pki: Path) -> Path:
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(pki / "ca.crt")},
            },
            "authorization": {"mode": "Webhook"},
            "address": API_ADDRESS,
            "port": _free_port(),
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": _free_port(),
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": f"/{CGROUP_ROOT}",
            "podLogsDir": str(self.workdir / "pod-logs"),
            "failSwapOn": False,
            "failCgroupV1": False,
            # The host is shared: no evictions, no image garbage collection (it would delete the images
            # we imported, which no registry can give back).
            "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "maxPods": 30,
            "serializeImagePulls": False,
            "resolvConf": "/etc/resolv.conf",
            "rotateCertificates": False,
            "serverTLSBootstrap": False,
            "registerNode": True,
        }
        path = self.workdir / "kubelet-config.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def _kubeconfig(self, pki: Path, server: str, name: str) -> Path:
        """A kubeconfig for the node part ``name`` (``pki/<name>.crt``, issued by LocalCluster)."""

        def b64(path: Path) -> str:
            return base64.b64encode(path.read_bytes()).decode()

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {"server": server, "certificate-authority-data": b64(pki / "ca.crt")},
                }
            ],
            "users": [
                {
                    "name": name,
                    "user": {
                        "client-certificate-data": b64(pki / f"{name}.crt"),
                        "client-key-data": b64(pki / f"{name}.key"),
                    },
                }
            ],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": name}}],
            "current-context": "local",
        }
        path = self.workdir / f"{name}.kubeconfig"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(yaml.safe_dump(config))
        return path


def _host_binary(name: str) -> Path:
    path = shutil.which(name)
    if path is None:
        raise RealNodeError(f"{name} is not installed: {PACKAGES_HINT}")
    return Path(path)


def _k8s_version(tools_dir: Path) -> str:
    """K8S_VERSION, as the tools directory's name (bin-k8s-<version>-...) carries it."""
    match = re.search(r"bin-k8s-(v[0-9.]+)-", tools_dir.name)
    if not match:
        raise RealNodeError(f"{tools_dir}: cannot tell the Kubernetes version")
    return match.group(1)


def _pause_archive(tools_dir: Path) -> str:
    """The pause image hack/tools.sh writes (PAUSE_ARCHIVE there)."""
    return f"pause-{_k8s_version(tools_dir)}.oci.tar"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _http_ok(port: int, path: str) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    finally:
        connection.close()


def _pids_with_argument(argument: str) -> Iterator[int]:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if argument.encode() in (entry / "cmdline").read_bytes().split(b"\0"):
                yield int(entry.name)


def _remove_cgroup_tree(root: Path) -> None:
    """rmdir, deepest first (a cgroup directory can only be removed once it has no children or tasks)."""
    if not root.is_dir():
        return
    for directory in sorted(
        (p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
    ):
        with contextlib.suppress(OSError):
            directory.rmdir()
    with contextlib.suppress(OSError):
        root.rmdir()
