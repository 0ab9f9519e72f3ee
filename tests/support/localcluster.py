#!/usr/bin/env python3
"""A real Kubernetes control plane on loopback: etcd, kube-apiserver and kube-controller-manager.

No kubelet and no containers: the API server with real authentication, RBAC, admission and CRDs, plus
the controller manager's real controllers (garbage collector, namespace, service account, Deployment,
ReplicaSet, endpoints, ...). On request also kube-scheduler, kwok with a fake Node (it plays the
kubelet: bound pods turn Running and Ready; tests add more with ``add_fake_node``) and Seldon Core's own
controller manager. The binaries come from ``hack/tools.sh``; certificates are made with the ``openssl`` CLI.

As a library::

    with LocalCluster(Path("/tmp/cluster")) as cluster:
        cluster.start(crds=[Path("crds/zenml.io_zenmodeldeployments.yaml")])
        cluster.kubectl("get", "namespaces")

As a command::

    python -m support.localcluster up  # from tests/ --dir /tmp/cluster --crd crds/zenml.io_zenmodeldeployments.yaml
    # --seldon adds kube-scheduler, kwok's fake Node and Seldon Core's controller (give it Seldon's CRD too)
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import ctypes
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import yaml

from support.measures import rss_kib
from support.realnode import API_ADDRESS, SERVICE_CIDR, RealNode

REPO = Path(__file__).resolve().parents[2]
TOOLS_SCRIPT = REPO / "hack" / "tools.sh"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")
SERVICE_CLUSTER_IP_RANGE = SERVICE_CIDR
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
LOG_TAIL_LINES = 40
# The workload parts started on request.
POD_CIDR = "10.244.0.0/16"
FAKE_NODE = "kwok-node-0"
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node=fake"
# What kwok's node-initialize stage gives a Node without a capacity of its own.
KWOK_NODE_CAPACITY = {"cpu": "1k", "memory": "1Ti", "pods": "1M"}
SELDON_NAMESPACE = "seldon-system"
SELDON_CONFIGMAP = "seldon-config"
SELDON_EXECUTOR_IMAGE = "seldonio/seldon-core-executor:1.19.0"


class ClusterError(RuntimeError):
    """The control plane could not be started or a step against it failed."""


class KubectlError(subprocess.CalledProcessError):
    """A kubectl call failed; unlike its base class, the message carries kubectl's stderr."""

    def __str__(self) -> str:
        stderr = self.stderr if len(self.stderr) <= 4000 else f"...{self.stderr[-4000:]}"
        return f"{super().__str__()}\nstderr:\n{stderr}"


def resolve_tools_dir(build: bool = True) -> Path:
    """The directory ``hack/tools.sh`` builds into; builds whatever is missing unless ``build`` is false."""
    args = ["bash", str(TOOLS_SCRIPT)] + ([] if build else ["--print"])
    out = subprocess.run(args, check=True, stdout=subprocess.PIPE, text=True).stdout
    lines = out.strip().splitlines()
    if not lines:
        raise ClusterError(f"{TOOLS_SCRIPT} printed no tools directory")
    return Path(lines[-1])


def _free_ports(count: int) -> list[int]:
    """Distinct loopback ports the kernel says are free right now."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


# Loaded before any fork: the child should not have to dlopen anything between fork and exec.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _die_with_parent() -> None:
    """Runs in the child before exec: ask Linux to SIGKILL it when the parent thread exits."""
    if _LIBC is not None:
        pr_set_pdeathsig = 1
        _LIBC.prctl(pr_set_pdeathsig, signal.SIGKILL)


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float) -> None:
        if self.popen.poll() is not None:
            return
        # The child leads its own session, so its process group id is its pid.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()


_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
[dn]
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[client_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
[apiserver_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1,IP:10.0.0.1,IP:{api_address},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,\
DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
[loopback_server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1,DNS:localhost
"""


_EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
_CERT_DAYS = "3650"


class LocalCluster:
    """etcd + kube-apiserver + kube-controller-manager as child processes, listening on 127.0.0.1 only."""

    def __init__(self, workdir: Path, tools_dir: Path | None = None) -> None:
        self.workdir = Path(workdir).resolve()
        self.tools_dir = Path(tools_dir).resolve() if tools_dir is not None else resolve_tools_dir()
        missing = [b for b in BINARIES if not (self.tools_dir / b).is_file()]
        if missing:
            raise ClusterError(f"{self.tools_dir} lacks {', '.join(missing)}; run {TOOLS_SCRIPT}")
        self.pki = self.workdir / "pki"
        self.logs = self.workdir / "logs"
        self.kubeconfig = self.workdir / "kubeconfig"
        self.controller_manager_kubeconfig = self.workdir / "controller-manager.kubeconfig"
        self.kube_cache_dir = self.workdir / "kube-cache"
        self.timings: dict[str, float] = {}
        self._processes: list[_Process] = []
        self._server: str | None = None
        self._controller_manager_port = 0
        self._lock = threading.Lock()
        self.real_node: RealNode | None = None
        # What the real node's teardown found changed on the host (empty: the host is as before).
        self.host_differences: list[str] = []

    # ----------------------------------------------------------------- public API

    @property
    def server(self) -> str:
        if self._server is None:
            raise ClusterError("the cluster has not been started")
        return self._server

    @property
    def crds(self) -> list[Path]:
        """What the operator needs installed: the repository's CRDs and Seldon Core's own SeldonDeployment CRD."""
        return [*sorted((REPO / "crds").glob("*.yaml")), self.tools_dir / "seldon-crd.yaml"]

    @property
    def running(self) -> bool:
        return bool(self._processes) and all(p.alive() for p in self._processes)

    def start(
        self,
        crds: Sequence[Path] = (),
        timeout: float = 120.0,
        *,
        scheduler: bool = False,
        fake_node: bool = False,
        seldon: bool = False,
        real_node: bool = False,
        real_node_images: Sequence[str] = (),
    ) -> None:
        """Starts etcd, then the API server, installs ``crds``, then the controller manager, and returns
        once its controllers run (not just once its /healthz is ok).

        The controller manager comes last on purpose: its garbage collector discovers resource types
        when it starts, so CRDs installed before it are collected from the start, not after the ~30 s
        rediscovery.

        On request, then: kube-scheduler (``scheduler``), kwok with one fake Node that makes scheduled
        pods Running and Ready (``fake_node``), and Seldon Core's controller manager (``seldon``; the
        SeldonDeployment CRD must be among ``crds``). With all three, a SeldonDeployment becomes
        Available: Seldon's Deployments get pods, and the Deployments report them available.

        ``real_node`` adds a real node (``support.realnode``: containerd, the kubelet, kube-proxy, a
        bridge CNI); the API server then listens on that node's network, not on loopback. Its containerd
        imports ``real_node_images`` from podman while the node starts: ``real_node.wait_for_images()``
        before a pod needs them.
        """
        with self._lock:
            if self._processes:
                raise ClusterError("the cluster is already started")
            atexit.register(self.stop)
            deadline = time.monotonic() + timeout
            try:
                if real_node:
                    self.real_node = RealNode(self.workdir, self.tools_dir, real_node_images)
                    self.real_node.prepare_host()
                self._start(list(crds), deadline)
                self._start_workload_parts(deadline, scheduler=scheduler, fake_node=fake_node, seldon=seldon)
                if self.real_node is not None:
                    t0 = time.monotonic()
                    self.real_node.start(self, self.pki, self.server, deadline)
                    self.timings["real-node"] = time.monotonic() - t0
            except BaseException:
                self._stop_processes()
                raise

    def stop(self, grace: float = 10.0) -> None:
        """Stops the processes newest first (SIGTERM, then SIGKILL after ``grace`` seconds), the real node
        first, and undoes what it changed on the host. Idempotent."""
        with self._lock:
            self._stop_processes(grace)
            atexit.unregister(self.stop)

    def __enter__(self) -> LocalCluster:
        """Does not start anything (call ``start``); leaving the block stops whatever was started."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """os.environ for a child that should talk to this cluster with the real tools first on PATH."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["KUBECACHEDIR"] = str(self.kube_cache_dir)
        env["PATH"] = os.pathsep.join([str(self.tools_dir), env.get("PATH", os.defpath)])
        return env

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        kubeconfig: Path | None = None,
        timeout: float | None = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Runs the real kubectl as cluster-admin (or as whoever ``kubeconfig`` names)."""
        cmd = [
            str(self.tools_dir / "kubectl"),
            f"--kubeconfig={kubeconfig or self.kubeconfig}",
            f"--cache-dir={self.kube_cache_dir}",
            *args,
        ]
        result = subprocess.run(
            cmd, input=input, capture_output=True, text=True, env=self.env(), timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, cmd, result.stdout, result.stderr)
        return result

    def metrics(self) -> str:
        """The API server's Prometheus metrics, read as cluster-admin."""
        return self.kubectl("get", "--raw", "/metrics").stdout

    def apply_crds(self, crds: Sequence[Path], timeout: float = 60.0) -> list[str]:
        """Server-side applies the CRD files and waits until each CRD is Established; returns their names."""
        names: list[str] = []
        for path in crds:
            if not _has_objects(path):
                continue
            out = self.kubectl(
                "apply", "--server-side", "--field-manager=localcluster", "-o", "name", "-f", str(path)
            ).stdout
            names += [n.split("/", 1)[1] for n in out.split() if n.startswith("customresourcedefinition.")]
        # Polled here rather than with `kubectl wait --for=condition=Established` (or a jsonpath filter):
        # both fail outright ("<nil> is of the type <nil>") on a CRD whose status has no conditions yet.
        # Read straight from the API: a CRD like Seldon's is ~1 MB of JSON, slow to print via kubectl.
        deadline = time.monotonic() + timeout
        pending = list(names)
        while pending:
            pending = [name for name in pending if not self._crd_established(name)]
            if pending and time.monotonic() > deadline:
                raise ClusterError(f"CRDs not Established after {timeout:.0f}s: {', '.join(pending)}")
            if pending:
                time.sleep(0.1)
        return names

    def _crd_established(self, name: str) -> bool:
        crd = self._api_get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        conditions = (crd.get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)

    def _api_get(self, path: str) -> dict[str, Any]:
        """GET ``path`` from the API server as cluster-admin; the decoded JSON body."""
        status, body = self._api_request(path)
        if status != 200:
            raise ClusterError(f"GET {path}: HTTP {status}: {body[:500]!r}")
        result: dict[str, Any] = json.loads(body)
        return result

    def _api_request(self, path: str) -> tuple[int, bytes]:
        host, port = self.server.removeprefix("https://").rsplit(":", 1)
        ctx = self._client_tls_context("admin")
        conn = http.client.HTTPSConnection(host, int(port), timeout=10, context=ctx)
        try:
            conn.request("GET", path, headers={"Accept": "application/json"})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def api_connection(self, timeout: float = 10.0) -> http.client.HTTPSConnection:
        """A persistent HTTPS connection to the API server as cluster-admin, for many quick requests."""
        host, port = self.server.removeprefix("https://").rsplit(":", 1)
        return http.client.HTTPSConnection(
            host, int(port), timeout=timeout, context=self._client_tls_context("admin")
        )

    def create_service_account_kubeconfig(
        self, namespace: str, name: str, path: Path, duration: str = "24h"
    ) -> Path:
        """Mints a token for ServiceAccount ``namespace/name`` and writes a kubeconfig that uses it."""
        token = self.kubectl(
            "create", "token", name, "-n", namespace, f"--duration={duration}"
        ).stdout.strip()
        user = f"system:serviceaccount:{namespace}:{name}"
        config = _kubeconfig(self.server, self.pki / "ca.crt", user, {"token": token}, namespace)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_private(path, yaml.safe_dump(config, sort_keys=False))
        return path

    @property
    def audit_log(self) -> Path:
        return self.workdir / "logs" / "audit.log"

    def audit_events(self) -> list[dict[str, Any]]:
        """The apiserver's audit events, at Metadata level: every request that touched a Secret, and every
        write of any resource; Lease writes also carry their request and response bodies."""
        if not self.audit_log.exists():
            return []
        return [json.loads(line) for line in self.audit_log.read_text().splitlines() if line.strip()]

    def _write_audit_policy(self) -> Path:
        # Secrets: who listed or watched them, and with which label selector. GETs of what the operator
        # reads (its read budget), a container's output included. Who listed or watched pods, and how. Writes: who wrote what (the write budget, told apart by user agent from
        # Seldon's controller, the scheduler and the controller manager; a standby that must write
        # nothing). Lease bodies: who held a Lease when.
        path = self.pki / "audit-policy.yaml"
        writes = ["create", "update", "patch", "delete", "deletecollection"]
        policy = {
            "apiVersion": "audit.k8s.io/v1",
            "kind": "Policy",
            "omitStages": ["RequestReceived"],
            "rules": [
                {"level": "Metadata", "resources": [{"group": "", "resources": ["secrets"]}]},
                {
                    "level": "Metadata",
                    "verbs": ["get"],
                    "resources": [
                        {"group": "machinelearning.seldon.io", "resources": ["seldondeployments"]},
                        {"group": "zenml.io", "resources": ["zenmodeldeployments"]},
                        {"group": "", "resources": ["pods/log"]},
                    ],
                },
                {
                    "level": "Metadata",
                    "verbs": ["list", "watch"],
                    "resources": [{"group": "", "resources": ["pods"]}],
                },
                {
                    "level": "RequestResponse",
                    "verbs": writes,
                    "resources": [{"group": "coordination.k8s.io", "resources": ["leases"]}],
                },
                {"level": "None", "nonResourceURLs": ["*"]},
                {"level": "Metadata", "verbs": writes},
                {"level": "None"},
            ],
        }
        path.write_text(yaml.safe_dump(policy))
        return path

    # ----------------------------------------------------------------- faults

    def stop_apiserver(self, grace: float = 10.0) -> None:
        """Stops the API server for real (SIGTERM; its connections close); etcd and the rest stay up."""
        self._apiserver().stop(grace)

    def start_apiserver(self, timeout: float = 60.0) -> float:
        """Starts the stopped API server again, same binary, port and flags; returns the monotonic time at
        which its /readyz first answered ok."""
        new = self._respawn("kube-apiserver")
        host, port = self.server.removeprefix("https://").rsplit(":", 1)
        ctx = self._client_tls_context("admin")
        self._wait(new, time.monotonic() + timeout, lambda: _https_ok(int(port), "/readyz", ctx, host))
        return time.monotonic()

    def stop_controller_manager(self, grace: float = 10.0) -> None:
        """Stops kube-controller-manager, and with it the garbage collector: what a test builds meanwhile
        stays as the collector would have missed it. The API server and the rest stay up."""
        self._part("kube-controller-manager").stop(grace)

    def start_controller_manager(self, timeout: float = 60.0) -> None:
        """Starts the stopped controller manager again, same flags; returns once its /healthz is ok."""
        new = self._respawn("kube-controller-manager")
        port = self._controller_manager_port
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        self._wait(new, time.monotonic() + timeout, lambda: _https_ok(port, "/healthz", ctx))

    def _respawn(self, name: str) -> _Process:
        """Starts the stopped part `name` again, same binary and flags, in its place in the start order (so
        `stop` still stops it after its clients)."""
        with self._lock:
            old = self._part(name)
            if old.alive():
                raise ClusterError(f"{name} is already running")
            binary, *args = old.popen.args  # type: ignore[misc]
            new = self._spawn(Path(str(binary)).name, *(str(arg) for arg in args))
            self._processes.remove(new)
            self._processes[self._processes.index(old)] = new
        return new

    def restart_apiserver(self, down_for: float = 0.0) -> float:
        """Stops the API server, keeps it down ``down_for`` seconds (the outage being simulated), starts
        it again; returns the monotonic time it answered."""
        self.stop_apiserver()
        time.sleep(down_for)
        return self.start_apiserver()

    def freeze_apiserver(self) -> None:
        """SIGSTOP: the API server keeps its port and connections but answers nothing until thawed."""
        os.kill(self._apiserver().popen.pid, signal.SIGSTOP)

    def thaw_apiserver(self) -> None:
        os.kill(self._apiserver().popen.pid, signal.SIGCONT)

    def get_json(self, path: str) -> dict[str, Any] | None:
        """GET ``path`` as cluster-admin straight from the API server (no kubectl process: fast enough
        to time sub-second reactions); None for 404."""
        status, body = self._json_request("GET", path)
        if status == 404:
            return None
        if status != 200:
            raise ClusterError(f"GET {path}: HTTP {status}: {body[:500]!r}")
        result: dict[str, Any] = json.loads(body)
        return result

    def merge_patch(self, path: str, patch: dict[str, Any]) -> None:
        """A JSON merge patch of ``path`` as cluster-admin, straight to the API server (as `get_json`)."""
        status, body = self._json_request("PATCH", path, patch, "application/merge-patch+json")
        if status != 200:
            raise ClusterError(f"PATCH {path}: HTTP {status}: {body[:500]!r}")

    def _json_request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, bytes]:
        host, port = self.server.removeprefix("https://").rsplit(":", 1)
        conn = http.client.HTTPSConnection(
            host, int(port), timeout=10, context=self._client_tls_context("admin")
        )
        try:
            payload = json.dumps(body) if body is not None else None
            conn.request(
                method, path, payload, headers={"Accept": "application/json", "Content-Type": content_type}
            )
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def _apiserver(self) -> _Process:
        return self._part("kube-apiserver")

    def _part(self, name: str) -> _Process:
        for process in self._processes:
            if process.name == name:
                return process
        raise ClusterError(f"the cluster has no {name}; start it first")

    # ----------------------------------------------------------------- startup

    def _start(self, crds: list[Path], deadline: float) -> None:
        t0 = time.monotonic()
        for sub in ("etcd", "pki", "kube-cache", "controller-manager-certs"):
            shutil.rmtree(self.workdir / sub, ignore_errors=True)
        for sub in ("pki", "logs", "kube-cache"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        etcd_port, peer_port, api_port, kcm_port = _free_ports(4)
        self._controller_manager_port = kcm_port
        # With a real node, pods reach the API server through the `kubernetes` Service, whose endpoint
        # must be an address a pod can route to: the node's, not loopback.
        api_host = API_ADDRESS if self.real_node is not None else "127.0.0.1"
        self._server = f"https://{api_host}:{api_port}"

        self._make_pki()
        self._write_kubeconfigs()
        self.timings["pki"] = time.monotonic() - t0

        etcd = self._spawn(
            "etcd",
            "--name=local",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
            f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=local=http://127.0.0.1:{peer_port}",
            "--unsafe-no-fsync",
            "--log-level=warn",
        )
        self._wait(etcd, deadline, lambda: _etcd_healthy(etcd_port))
        self.timings["etcd"] = time.monotonic() - t0

        pki = self.pki
        apiserver = self._spawn(
            "kube-apiserver",
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            f"--bind-address={api_host}",
            f"--advertise-address={api_host}",
            f"--secure-port={api_port}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            *self._node_facing_apiserver_flags(),
            "--allow-privileged=true",
            "--profiling=false",
            # As OpenShift does: setting blockOwnerDeletion then needs update on the owner's finalizers,
            # so the chart's RBAC is proven against the strictest common setting.
            "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
            f"--audit-policy-file={self._write_audit_policy()}",
            f"--audit-log-path={self.audit_log}",
            "--audit-log-format=json",
            "--audit-log-mode=blocking",
        )
        ctx = self._client_tls_context("admin")
        self._wait(apiserver, deadline, lambda: _https_ok(api_port, "/readyz", ctx, api_host))
        self.timings["kube-apiserver"] = time.monotonic() - t0

        try:
            self.apply_crds(crds, timeout=max(1.0, deadline - time.monotonic()))
        except (KubectlError, ClusterError, OSError, http.client.HTTPException) as exc:
            raise ClusterError(
                f"installing CRDs failed: {exc}\n--- tail of {apiserver.log} ---\n{_tail(apiserver.log)}"
            ) from exc
        self.timings["crds"] = time.monotonic() - t0

        kcm = self._spawn(
            "kube-controller-manager",
            f"--kubeconfig={self.controller_manager_kubeconfig}",
            f"--authentication-kubeconfig={self.controller_manager_kubeconfig}",
            f"--authorization-kubeconfig={self.controller_manager_kubeconfig}",
            # Trust our CA for client certs directly instead of looking it up in kube-system's
            # extension-apiserver-authentication ConfigMap, whose request-header CA (front proxy) this
            # API server does not have: the lookup would log "missing content for CA bundle" forever.
            f"--client-ca-file={pki / 'ca.crt'}",
            "--authentication-skip-lookup=true",
            "--bind-address=127.0.0.1",
            f"--secure-port={kcm_port}",
            f"--tls-cert-file={pki / 'controller-manager.crt'}",
            f"--tls-private-key-file={pki / 'controller-manager.key'}",
            "--leader-elect=false",
            "--controllers=*",
            "--use-service-account-credentials=true",
            # Each controller's own client is set up with a few requests through the root client; at the
            # default 20 QPS that alone throttles the start of ~40 controllers to ~5 s.
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--profiling=false",
        )
        server_ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self._wait(kcm, deadline, lambda: _https_ok(kcm_port, "/healthz", server_ctx))
        self.timings["kube-controller-manager"] = time.monotonic() - t0
        # /healthz is ok once the controllers are constructed; their informers start only after all
        # ~40 are, seconds later. The "default" ServiceAccount, made by the serviceaccount controller,
        # shows they run (the garbage collector's monitors sync at about the same time).
        default_sa = "/api/v1/namespaces/default/serviceaccounts/default"
        self._wait(kcm, deadline, lambda: self._api_request(default_sa)[0] == 200)
        self.timings["controllers"] = time.monotonic() - t0

    def _node_facing_apiserver_flags(self) -> list[str]:
        if self.real_node is None:
            # 127.0.0.1 is not a valid Endpoints address; with the default ("lease") reconciler the
            # API server would log a validation error for the "kubernetes" Service every 10 s.
            return ["--endpoint-reconciler-type=none"]
        # The kubelet's own API (logs, exec) is reached at the node's InternalIP, as an admin.
        return [
            f"--kubelet-client-certificate={self.pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={self.pki / 'apiserver-kubelet-client.key'}",
            "--kubelet-preferred-address-types=InternalIP",
        ]

    def spawn(
        self, binary: str, *args: str, env: dict[str, str] | None = None, executable: Path | None = None
    ) -> _Process:
        """Starts a part as a logged child process, stopped with the cluster; from the tools directory
        unless ``executable`` says where it is."""
        return self._spawn(binary, *args, env=env, executable=executable)

    def wait_ready(self, process: _Process, deadline: float, ready: Callable[[], bool]) -> None:
        """Polls ``ready`` until ``deadline``; fails at once, with its log's tail, if ``process`` exits."""
        self._wait(process, deadline, ready)

    def _spawn(
        self, binary: str, *args: str, env: dict[str, str] | None = None, executable: Path | None = None
    ) -> _Process:
        log = self.logs / f"{binary}.log"
        main_thread = threading.current_thread() is threading.main_thread()
        with log.open("ab") as out:
            out.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} {binary} {' '.join(args)}\n".encode())
            out.flush()
            popen = subprocess.Popen(
                [str(executable or self.tools_dir / binary), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=env,
                start_new_session=True,
                # PR_SET_PDEATHSIG fires when the *thread* that forked exits, so only ask for it
                # from the main thread; atexit covers the rest.
                preexec_fn=_die_with_parent if main_thread and _LIBC is not None else None,
            )
        proc = _Process(binary, popen, log)
        self._processes.append(proc)
        return proc

    def _wait(self, proc: _Process, deadline: float, ready: Callable[[], bool]) -> None:
        last_error = "not ready"
        while True:
            if not proc.alive():
                raise ClusterError(
                    f"{proc.name} exited with code {proc.popen.returncode} during startup\n"
                    f"--- tail of {proc.log} ---\n{_tail(proc.log)}"
                )
            try:
                if ready():
                    return
            except (OSError, http.client.HTTPException, ValueError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"{proc.name} was not ready in time (last check: {last_error})\n"
                    f"--- tail of {proc.log} ---\n{_tail(proc.log)}"
                )
            time.sleep(0.1)

    def _stop_processes(self, grace: float = 10.0) -> None:
        node, self.real_node = self.real_node, None
        if node is not None:
            node.stop_node(self)
        while self._processes:
            self._processes.pop().stop(grace)
        if node is not None:
            self.host_differences = node.restore_host()

    # ----------------------------------------------------------------- workload parts (on request)

    def _start_workload_parts(
        self, deadline: float, *, scheduler: bool, fake_node: bool, seldon: bool
    ) -> None:
        t0 = time.monotonic()
        if scheduler:
            self._start_scheduler(deadline)
            self.timings["kube-scheduler"] = time.monotonic() - t0
        if fake_node:
            self._start_kwok(deadline)
            self.timings["kwok"] = time.monotonic() - t0
        if seldon:
            self._start_seldon_manager(deadline)
            self.timings["seldon-manager"] = time.monotonic() - t0

    def _start_scheduler(self, deadline: float) -> None:
        self._issue_certificate("scheduler", "/CN=kube-scheduler", "loopback_server_ext")
        self._issue_certificate("scheduler-client", "/CN=system:kube-scheduler", "client_ext")
        kubeconfig = self.workdir / "scheduler.kubeconfig"
        config = _kubeconfig(
            self.server,
            self.pki / "ca.crt",
            "system:kube-scheduler",
            self._client_cert_user("scheduler-client"),
        )
        _write_private(kubeconfig, yaml.safe_dump(config, sort_keys=False))
        (port,) = _free_ports(1)
        scheduler = self._spawn(
            "kube-scheduler",
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            # As for the controller manager: no lookup of the front-proxy CA this API server lacks.
            f"--client-ca-file={self.pki / 'ca.crt'}",
            "--authentication-skip-lookup=true",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--tls-cert-file={self.pki / 'scheduler.crt'}",
            f"--tls-private-key-file={self.pki / 'scheduler.key'}",
            "--leader-elect=false",
            "--profiling=false",
        )
        server_ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        self._wait(scheduler, deadline, lambda: _https_ok(port, "/healthz", server_ctx))

    def _start_kwok(self, deadline: float) -> None:
        """kwok plays the kubelet for one fake Node, as kwokctl sets it up: the Node object is ours, kwok
        keeps it Ready (with a Lease) and makes the pods bound to it Running and Ready with an IP."""
        node = json.dumps(_fake_node(FAKE_NODE))
        self.kubectl("apply", "--server-side", "--field-manager=localcluster", "-f", "-", input=node)
        stages = sorted((self.tools_dir / "kwok-stages").glob("*.yaml"))
        if not stages:
            raise ClusterError(f"{self.tools_dir / 'kwok-stages'} holds no stage files; run {TOOLS_SCRIPT}")
        (port,) = _free_ports(1)
        kwok = self._spawn(
            "kwok",
            f"--kubeconfig={self.kubeconfig}",
            *(f"--config={stage}" for stage in stages),
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}",
            # Pod IPs must not overlap the Service range.
            f"--cidr={POD_CIDR}",
            f"--server-address=127.0.0.1:{port}",
            # As kwokctl runs it: the node-heartbeat-with-lease stage renews a Lease of this duration.
            # Without one the node lifecycle controller sees no heartbeat and marks the Node NotReady
            # 50 s after it starts (and its pods with it).
            "--node-lease-duration-seconds=40",
        )
        self._wait(kwok, deadline, lambda: self._fake_node_ready(FAKE_NODE))

    def _fake_node_ready(self, name: str, taints: Sequence[dict[str, str]] | None = None) -> bool:
        """Ready; with ``taints``, also carrying exactly those: no longer the node.kubernetes.io/not-ready
        taint that admission puts on a new Node and the node lifecycle controller lifts once it is Ready."""
        node = self._api_get(f"/api/v1/nodes/{name}")
        conditions = (node.get("status") or {}).get("conditions") or []
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        return ready and (taints is None or (node.get("spec") or {}).get("taints", []) == list(taints))

    def add_fake_node(
        self,
        name: str,
        labels: dict[str, str] | None = None,
        taints: Sequence[dict[str, str]] = (),
        capacity: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        """One more Node that kwok (started with ``fake_node``) keeps Ready, with ``labels``, ``taints`` and
        ``capacity`` (extended resources such as ``nvidia.com/gpu`` beside kwok's defaults, also as
        allocatable); returns once kube-scheduler may bind pods to it. Remove it with ``delete_node``."""
        node = _fake_node(name, labels, taints)
        # A Node's status may be written on create; kwok's node-initialize stage keeps a capacity it finds.
        resources = {**KWOK_NODE_CAPACITY, **(capacity or {})}
        node["status"] = {"capacity": resources, "allocatable": resources}
        self.kubectl("create", "-f", "-", input=json.dumps(node))
        self._wait(self._kwok(), time.monotonic() + timeout, lambda: self._fake_node_ready(name, taints))

    def delete_node(self, name: str) -> None:
        """Deletes a Node ``add_fake_node`` made and waits until it is gone (the pod garbage collector then
        deletes the pods bound to it)."""
        self.kubectl("delete", "node", name, "--ignore-not-found", "--wait=true")

    def _kwok(self) -> _Process:
        for process in self._processes:
            if process.name == "kwok" and process.alive():
                return process
        raise ClusterError("kwok is not running; start the cluster with fake_node=True")

    def _start_seldon_manager(self, deadline: float) -> None:
        """Seldon Core's controller manager as its Deployment (config/manager/manager.yaml) runs it, minus
        what needs a cluster around it: no ingress (Ambassador, Istio), no leader election, no metrics
        listener, and no webhook configurations (``--create-resources=false``: nothing registers or calls
        its webhook server, which starts anyway and so gets a self-signed certificate and a free port)."""
        self.kubectl(
            "apply", "--server-side", "--field-manager=localcluster", "-f", "-", input=self._seldon_config()
        )
        tmpdir = self.workdir / "seldon-manager-tmp"
        certs = tmpdir / "k8s-webhook-server" / "serving-certs"
        certs.mkdir(parents=True, exist_ok=True)
        self._issue_certificate("seldon-webhook", "/CN=seldon-webhook-service", "loopback_server_ext")
        shutil.copyfile(self.pki / "seldon-webhook.crt", certs / "tls.crt")
        shutil.copyfile(self.pki / "seldon-webhook.key", certs / "tls.key")
        (webhook_port,) = _free_ports(1)
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": str(tmpdir),
            "TMPDIR": str(tmpdir),
            **_seldon_manager_env(self.tools_dir / "seldon-manager.yaml"),
        }
        manager = self._spawn(
            "seldon-manager",
            # Cluster-admin: Seldon's own RBAC (config/rbac) is not what these tests are about.
            f"--kubeconfig={self.kubeconfig}",
            f"--webhook-port={webhook_port}",
            "--metrics-addr=0",
            "--create-resources=false",
            f"--operator-namespace={SELDON_NAMESPACE}",
            env=env,
        )
        # controller-runtime logs this once the SeldonDeployment controller's caches are synced.
        self._wait(manager, deadline, lambda: "Starting workers" in manager.log.read_text(errors="replace"))

    def _seldon_config(self) -> str:
        """The ``seldon-system`` namespace and the ``seldon-config`` ConfigMap from Seldon's own manifest
        (kustomize names it ``seldon-`` + ``config``); Seldon reads it for every SeldonDeployment."""
        configmap = yaml.safe_load((self.tools_dir / "seldon-configmap.yaml").read_text())
        configmap["metadata"]["name"] = SELDON_CONFIGMAP
        configmap["metadata"]["namespace"] = SELDON_NAMESPACE
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SELDON_NAMESPACE}}
        return yaml.safe_dump_all([namespace, configmap])

    def pid(self, name: str) -> int:
        """The process id of the running part ``name`` (the binary's name, e.g. ``kwok``)."""
        for proc in self._processes:
            if proc.name == name and proc.alive():
                return proc.popen.pid
        raise ClusterError(f"{name} is not running")

    def rss_kib(self, name: str) -> int:
        """Resident memory of the running part ``name``, in KiB."""
        return rss_kib(self.pid(name))

    # ----------------------------------------------------------------- certificates and kubeconfigs

    def _openssl(self, *args: str) -> None:
        result = subprocess.run(["openssl", *args], cwd=self.pki, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ClusterError(f"openssl {' '.join(args)} failed:\n{result.stderr}")

    def _make_pki(self) -> None:
        (self.pki / "openssl.cnf").write_text(_OPENSSL_CONFIG.format(api_address=API_ADDRESS))
        self._openssl(
            "req", "-x509", "-new", "-config", "openssl.cnf", "-extensions", "ca_ext", *_EC_KEY,
            "-keyout", "ca.key", "-out", "ca.crt", "-days", _CERT_DAYS, "-subj", "/CN=zenmodel-local-ca",
        )  # fmt: skip
        leaves = {
            "apiserver": ("/CN=kube-apiserver", "apiserver_ext"),
            "controller-manager": ("/CN=kube-controller-manager", "loopback_server_ext"),
            "admin": ("/O=system:masters/CN=kubernetes-admin", "client_ext"),
            "controller-manager-client": ("/CN=system:kube-controller-manager", "client_ext"),
            # The real node's parts, and the API server's client identity towards its kubelet.
            "kubelet": ("/O=system:nodes/CN=system:node:real-node-0", "client_ext"),
            "kube-proxy": ("/CN=system:kube-proxy", "client_ext"),
            "apiserver-kubelet-client": ("/O=system:masters/CN=kube-apiserver-kubelet-client", "client_ext"),
        }
        for name, (subject, extensions) in leaves.items():
            self._issue_certificate(name, subject, extensions)
        # Service-account tokens are signed with RSA (RS256).
        self._openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa.key")
        self._openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub")
        for key in self.pki.glob("*.key"):
            key.chmod(0o600)

    def _issue_certificate(self, name: str, subject: str, extensions: str) -> None:
        """``pki/<name>.key`` and ``pki/<name>.crt``, signed by the cluster CA, with an ``openssl.cnf`` section."""
        self._openssl(
            "req", "-new", "-config", "openssl.cnf", *_EC_KEY,
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject,
        )  # fmt: skip
        self._openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-set_serial", f"0x{secrets.token_hex(16)}", "-days", _CERT_DAYS,
            "-extfile", "openssl.cnf", "-extensions", extensions, "-out", f"{name}.crt",
        )  # fmt: skip
        (self.pki / f"{name}.key").chmod(0o600)

    def issue_server_certificate(self, name: str) -> tuple[Path, Path]:
        """A loopback server certificate (127.0.0.1, localhost) from the cluster's CA, for a test's own TLS
        server that clients of this cluster trust, e.g. a proxy in front of the API server: its cert and key."""
        self._issue_certificate(name, f"/CN={name}", "loopback_server_ext")
        return self.pki / f"{name}.crt", self.pki / f"{name}.key"

    def _client_tls_context(self, name: str) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        ctx.load_cert_chain(str(self.pki / f"{name}.crt"), str(self.pki / f"{name}.key"))
        return ctx

    def _client_cert_user(self, name: str) -> dict[str, str]:
        return {
            "client-certificate-data": _b64(self.pki / f"{name}.crt"),
            "client-key-data": _b64(self.pki / f"{name}.key"),
        }

    def _write_kubeconfigs(self) -> None:
        ca = self.pki / "ca.crt"
        admin = _kubeconfig(self.server, ca, "kubernetes-admin", self._client_cert_user("admin"))
        _write_private(self.kubeconfig, yaml.safe_dump(admin, sort_keys=False))
        kcm = _kubeconfig(
            self.server,
            ca,
            "system:kube-controller-manager",
            self._client_cert_user("controller-manager-client"),
        )
        _write_private(self.controller_manager_kubeconfig, yaml.safe_dump(kcm, sort_keys=False))


# --------------------------------------------------------------------- helpers


def _seldon_manager_env(manifest: Path) -> dict[str, str]:
    """The manager container's environment from Seldon's Deployment manifest, as a kubelet would set it
    in ``seldon-system``, with ingress integrations off (no Ambassador or Istio runs here)."""
    deployment = next(
        doc for doc in yaml.safe_load_all(manifest.read_text()) if doc and doc.get("kind") == "Deployment"
    )
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    for var in container.get("env") or []:
        field = ((var.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        if field == "metadata.namespace":
            env[var["name"]] = SELDON_NAMESPACE
        elif field is None:
            env[var["name"]] = str(var.get("value", ""))
        else:
            raise ClusterError(f"{manifest}: cannot resolve {var['name']} from {field}")
    return {
        **env,
        "AMBASSADOR_ENABLED": "false",
        "ISTIO_ENABLED": "false",
        "EXECUTOR_CONTAINER_IMAGE_AND_VERSION": SELDON_EXECUTOR_IMAGE,
    }


def _fake_node(
    name: str, labels: dict[str, str] | None = None, taints: Sequence[dict[str, str]] = ()
) -> dict[str, Any]:
    """A Node kwok manages (it carries FAKE_NODE_ANNOTATION), labelled as kwokctl labels its nodes."""
    key, value = FAKE_NODE_ANNOTATION.split("=", 1)
    node: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {key: value, "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/os": "linux",
                "kubernetes.io/hostname": name,
                "kubernetes.io/role": "agent",
                "type": "kwok",
                **(labels or {}),
            },
        },
    }
    if taints:
        node["spec"] = {"taints": list(taints)}
    return node


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _kubeconfig(
    server: str, ca: Path, user: str, credentials: dict[str, str], namespace: str | None = None
) -> dict[str, Any]:
    context: dict[str, str] = {"cluster": "local", "user": user}
    if namespace:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "local", "cluster": {"server": server, "certificate-authority-data": _b64(ca)}},
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": "local", "context": context}],
        "current-context": "local",
    }


def _has_objects(path: Path) -> bool:
    """False for a manifest file with no YAML documents in it (kubectl apply refuses those)."""
    with path.open() as f:
        return any(line.strip() and not line.lstrip().startswith(("#", "---")) for line in f)


def _etcd_healthy(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/health")
        resp = conn.getresponse()
        body = resp.read()
        return resp.status == 200 and json.loads(body).get("health") == "true"
    finally:
        conn.close()


def _https_ok(port: int, path: str, ctx: ssl.SSLContext, host: str = "127.0.0.1") -> bool:
    conn = http.client.HTTPSConnection(host, port, timeout=2, context=ctx)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status == 200 and resp.read().strip() == b"ok"
    finally:
        conn.close()


# --------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run a control plane in the foreground until SIGINT/SIGTERM")
    up.add_argument("--dir", type=Path, required=True, help="working directory (certs, etcd data, logs)")
    up.add_argument("--crd", type=Path, action="append", default=[], help="CRD manifest to install")
    up.add_argument("--tools-dir", type=Path, default=None, help="default: built by hack/tools.sh")
    up.add_argument(
        "--seldon",
        action="store_true",
        help="also run kube-scheduler, kwok with a fake Node and Seldon Core's controller (needs its CRD)",
    )
    args = parser.parse_args(argv)

    stop_requested = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop_requested.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)

    cluster = LocalCluster(args.dir, args.tools_dir)
    started = time.monotonic()
    cluster.start(args.crd, scheduler=args.seldon, fake_node=args.seldon, seldon=args.seldon)
    _eprint(f"control plane ready in {time.monotonic() - started:.1f}s at {cluster.server}")
    _eprint(f"logs: {cluster.logs}")
    print(f"export KUBECONFIG={cluster.kubeconfig}", flush=True)
    print(f"export PATH={cluster.tools_dir}:$PATH", flush=True)
    try:
        while not stop_requested.wait(1.0):
            dead = [p.name for p in cluster._processes if not p.alive()]
            if dead:
                _eprint(f"{', '.join(dead)} exited; stopping (see {cluster.logs})")
                return 1
    finally:
        cluster.stop()
        _eprint("stopped")
    return 0


def _eprint(message: str, stream: IO[str] | None = None) -> None:
    print(message, file=stream or sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
