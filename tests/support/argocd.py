"""Argo CD's application controller and repo server, with their redis, against the local control plane.

What an Argo CD installation needs around those two parts, made by hand here: the Application and AppProject
CRDs of the same version (``hack/tools.sh`` builds both parts into ``argocd-<version>/``), the ``argocd``
namespace with the ConfigMaps and Secret its settings manager reads, and the ``default`` AppProject (its
API server, which we do not run, normally makes that one). ``argocd-cm`` is the chart's documented snippet
(``charts/zenmodel-operator/argocd/argocd-cm-snippet.yaml``), so the health check Argo CD runs is our Lua as
users install it. The destination ``https://kubernetes.default.svc`` is this control plane, through
``ARGOCD_FAKE_IN_CLUSTER`` and the admin kubeconfig; sources are ``file://`` Git repositories (``GitRepository``).

Listeners: redis and the repo server on 127.0.0.1; the controller's metrics listener binds 0.0.0.0 on a
free port (Argo CD hard-codes that address), and nothing calls it.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from support.localcluster import REPO, TOOLS_SCRIPT, LocalCluster, _die_with_parent, _Process, _tail
from support.measures import rss_kib
from support.operator_process import free_port
from support.waiting import wait_for

NAMESPACE = "argocd"
ARGOCD_CM_SNIPPET = REPO / "charts" / "zenmodel-operator" / "argocd" / "argocd-cm-snippet.yaml"
PART_OF_ARGOCD = {"app.kubernetes.io/part-of": "argocd"}
# How long Argo CD may take to pick up a commit, sync it and judge the result: a few reconciles of its own.
SYNC_TIMEOUT = 60.0
# What a person does in the UI with "Refresh": the controller reads the repository now, not at its next poll.
REFRESH_ANNOTATION = "argocd.argoproj.io/refresh"


def argocd_version() -> str:
    """The version hack/tools.sh builds (its ARGOCD_VERSION, which the environment may override)."""
    pinned = re.search(r'ARGOCD_VERSION="\$\{ARGOCD_VERSION:-([^}]+)\}"', TOOLS_SCRIPT.read_text())
    if pinned is None:
        raise ValueError(f"{TOOLS_SCRIPT} pins no ARGOCD_VERSION")
    return os.environ.get("ARGOCD_VERSION") or pinned.group(1)


def redis_server() -> Path:
    """Debian's redis-server (``hack/test-deps.sh`` installs it)."""
    found = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(found).is_file():
        raise FileNotFoundError("redis-server is not installed; run hack/test-deps.sh")
    return Path(found)


class GitRepository:
    """A local Git repository Argo CD reads through ``file://``; ``commit`` replaces files and commits them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.mkdir(parents=True, exist_ok=True)
        self._git("init", "--quiet", "--initial-branch=main")

    @property
    def url(self) -> str:
        return f"file://{self.path}"

    def commit(self, message: str, files: Mapping[str, str | None]) -> None:
        """Writes each file (its path relative to the repository), deletes those given as None, commits."""
        for relative, text in files.items():
            target = self.path / relative
            if text is None:
                target.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
        self._git("add", "--all")
        self._git("commit", "--quiet", "--allow-empty", "-m", message)

    def _git(self, *args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=e2e", "-c", "user.email=e2e@example.com", *args],
            cwd=self.path,
            check=True,
            capture_output=True,
        )


class ArgoCD:
    """Starts redis, the repo server and the application controller (in that order) as child processes."""

    def __init__(self, cluster: LocalCluster, workdir: Path) -> None:
        self.cluster = cluster
        self.workdir = workdir
        self.home = cluster.tools_dir / f"argocd-{argocd_version()}"
        if not (self.home / "argocd").is_file():
            raise FileNotFoundError(f"{self.home} has no Argo CD build; run hack/tools.sh")
        self.logs = workdir / "logs"
        self._processes: list[_Process] = []

    def start(self, timeout: float = 60.0) -> ArgoCD:
        deadline = time.monotonic() + timeout
        self.logs.mkdir(parents=True, exist_ok=True)
        try:
            self.cluster.apply_crds(sorted((self.home / "crds").glob("*.yaml")))
            self.cluster.kubectl(
                "apply",
                "--server-side",
                "--field-manager=e2e",
                "-f",
                "-",
                input=yaml.safe_dump_all(_settings()),
            )
            redis_port, repo_port, repo_metrics_port, controller_metrics_port = (
                free_port() for _ in range(4)
            )
            redis = self._spawn(
                "redis",
                [
                    str(redis_server()),
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(redis_port),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
            )
            self._wait(
                redis,
                deadline,
                lambda: "Ready to accept connections" in redis.log.read_text(errors="replace"),
            )
            common = {
                # The cluster's tools first: the repo server renders Helm charts with that helm.
                "PATH": os.pathsep.join([str(self.cluster.tools_dir), os.environ.get("PATH", os.defpath)]),
                "HOME": str(self.workdir),
                "TMPDIR": str(self.workdir),
                "ARGOCD_GPG_ENABLED": "false",
            }
            repo_server = self._spawn(
                "argocd-repo-server",
                [
                    str(self.home / "argocd-repo-server"),
                    "--address=127.0.0.1",
                    f"--port={repo_port}",
                    "--metrics-address=127.0.0.1",
                    f"--metrics-port={repo_metrics_port}",
                    "--disable-tls",
                    f"--redis=127.0.0.1:{redis_port}",
                    "--logformat=text",
                ],
                # Its Git credential helper listens on a Unix socket, /tmp/reposerver-ask-pass.sock unless told.
                {**common, "ARGOCD_ASK_PASS_SOCK": str(self.workdir / "askpass.sock")},
            )
            self._wait(repo_server, deadline, lambda: _healthz_ok(repo_metrics_port))
            controller = self._spawn(
                "argocd-application-controller",
                [
                    str(self.home / "argocd-application-controller"),
                    f"--kubeconfig={self.cluster.kubeconfig}",
                    f"--namespace={NAMESPACE}",
                    f"--repo-server=127.0.0.1:{repo_port}",
                    "--repo-server-plaintext",
                    f"--redis=127.0.0.1:{redis_port}",
                    f"--metrics-port={controller_metrics_port}",
                    # Per-resource health in the Application's status, where the tests read it.
                    "--persist-resource-health",
                    "--logformat=text",
                ],
                {
                    **common,
                    "KUBECONFIG": str(self.cluster.kubeconfig),
                    "ARGOCD_FAKE_IN_CLUSTER": "true",
                },
            )
            self._wait(controller, deadline, lambda: _healthz_ok(controller_metrics_port))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, grace: float = 10.0) -> None:
        while self._processes:
            self._processes.pop().stop(grace)

    def running(self, name: str) -> bool:
        return any(p.name == name and p.alive() for p in self._processes)

    def rss_kib(self, name: str) -> int:
        """Resident memory of the running part ``name`` (``argocd-application-controller``, ...), in KiB."""
        (process,) = (p for p in self._processes if p.name == name and p.alive())
        return rss_kib(process.popen.pid)

    def _spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> _Process:
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent
                if threading.current_thread() is threading.main_thread()
                else None,
            )
        process = _Process(name, popen, log)
        self._processes.append(process)
        return process

    def _wait(self, process: _Process, deadline: float, ready: Callable[[], bool]) -> None:
        def up() -> bool:
            if not process.alive():
                raise AssertionError(f"{process.name} exited during startup:\n{_tail(process.log)}")
            return bool(ready())

        wait_for(
            up,
            max(deadline - time.monotonic(), 0.0),
            f"{process.name} never became ready:\n{_tail(process.log)}",
        )

    # ----------------------------------------------------------------- Applications

    def application(self, name: str) -> dict[str, Any]:
        result = self.cluster.kubectl("get", "application", name, "-n", NAMESPACE, "-o", "json")
        return dict(json.loads(result.stdout))

    def refresh(self, name: str) -> None:
        """Has the controller compare with the repository's newest commit now, not at its next poll."""
        self.cluster.kubectl(
            "annotate", "application", name, "-n", NAMESPACE, f"{REFRESH_ANNOTATION}=normal", "--overwrite"
        )

    def delete_application(self, name: str, timeout: float = 120.0) -> None:
        """Deletes the Application and waits until Argo CD has deleted what it synced (its resources
        finalizer). A sync still retrying is terminated first, as ``argocd app terminate-op`` does: the
        controller finalizes no Application with an operation running."""
        application = self.cluster.kubectl(
            "get", "application", name, "-n", NAMESPACE, "-o", "json", "--ignore-not-found"
        ).stdout
        if not application.strip():
            return
        operation = (json.loads(application).get("status") or {}).get("operationState") or {}
        if operation.get("phase") == "Running":
            self.cluster.kubectl(
                "patch", "application", name, "-n", NAMESPACE, "--type=merge",
                "-p", json.dumps({"status": {"operationState": {"phase": "Terminating"}}}),
            )  # fmt: skip
        self.cluster.kubectl(
            "delete", "application", name, "-n", NAMESPACE, "--ignore-not-found", f"--timeout={timeout:.0f}s"
        )

    @contextlib.contextmanager
    def watch(self, name: str) -> Iterator[ApplicationHistory]:
        """Every version of the Application the API server hands a watch, in order, while the block runs."""
        history = ApplicationHistory()
        process = subprocess.Popen(
            [
                str(self.cluster.tools_dir / "kubectl"),
                f"--kubeconfig={self.cluster.kubeconfig}",
                "get",
                "applications",
                "-n",
                NAMESPACE,
                # A selector, not a name: the Application may not exist yet when the watch starts.
                f"--field-selector=metadata.name={name}",
                "--watch",
                "--output=json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert process.stdout is not None
        reader = threading.Thread(target=history.read, args=(process.stdout,), daemon=True)
        reader.start()
        try:
            yield history
        finally:
            process.terminate()
            process.wait()
            reader.join()


class ApplicationHistory:
    """The versions of one Application a watch delivered (kubectl prints one JSON object after another)."""

    def __init__(self) -> None:
        self._versions: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self.versions: list[dict[str, Any]] = []

    def read(self, stream: Iterator[str]) -> None:
        decoder = json.JSONDecoder()
        buffer = ""
        for line in stream:
            buffer += line
            try:
                obj, _ = decoder.raw_decode(buffer.strip())
            except json.JSONDecodeError:
                continue
            self._versions.put(obj)
            buffer = ""

    def seen(self) -> list[dict[str, Any]]:
        """Every version so far."""
        while not self._versions.empty():
            self.versions.append(self._versions.get())
        return self.versions


def _settings() -> list[dict[str, Any]]:
    """The argocd namespace's settings objects, and the ``default`` AppProject: open to any repository,
    destination and kind, as Argo CD's API server creates it."""
    labels = {**PART_OF_ARGOCD}
    argocd_cm = yaml.safe_load(ARGOCD_CM_SNIPPET.read_text())
    empty = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
        }
        for name in ("argocd-rbac-cm", "argocd-cmd-params-cm")
    ]
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "argocd-secret", "namespace": NAMESPACE, "labels": labels},
    }
    project = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": "default", "namespace": NAMESPACE},
        "spec": {
            "sourceRepos": ["*"],
            "destinations": [{"server": "*", "namespace": "*"}],
            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
        },
    }
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    return [namespace, argocd_cm, *empty, secret, project]


def _healthz_ok(port: int) -> bool:
    """A loopback /healthz answers 200: both Argo CD parts serve one beside their metrics."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait_for_application(
    argocd: ArgoCD,
    name: str,
    check: Callable[[dict[str, Any]], bool],
    what: str,
    timeout: float = SYNC_TIMEOUT,
) -> dict[str, Any]:
    """Polls the Application until ``check(app)`` holds; returns it as read then."""
    seen: dict[str, Any] = {}

    def reached() -> bool:
        seen.clear()
        seen.update(argocd.application(name))
        return bool(check(seen))

    try:
        wait_for(reached, timeout, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nlast status: {json.dumps(seen.get('status'))}") from None
    return seen
