"""Pods as Seldon Core makes them for a SeldonDeployment, with the statuses a kubelet writes for them (the
storage initializer failing, or everything running), and Nodes that nothing runs, to bind them to: kwok's
fake Node makes every pod bound to it Running, and a failing pod is what some tests need.

`ContainerLogs` plays the one part of a kubelet the apiserver proxies to for such a pod: its container-log
endpoint (`/containerLogs/<namespace>/<pod>/<container>`, what `pods/log` reaches), on loopback, serving
the output a test gives it. Without a kubelet address on the Node, a `pods/log` request fails in the
apiserver itself, as it does for a node whose kubelet is gone.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from support.localcluster import LocalCluster
from support.objects import STORAGE_INITIALIZER_IMAGE

# support.objects.zmd's model, and the names Seldon Core v1.19 gives its containers.
MODEL = "iris"
INITIALIZER = "iris-model-initializer"  # the storage initializer: `<model container>-model-initializer`
EXECUTOR = "seldon-container-engine"
SERVER_IMAGE = "seldonio/sklearnserver:1.19.0"
EXECUTOR_IMAGE = "seldonio/seldon-core-executor:1.19.0"

# Taints the node lifecycle controller puts on a Node no kubelet reports for: tolerated, so the pods stay.
NOT_READY_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
]


def seldon_pod(namespace: str, name: str, parent: str, node: str | None = None) -> dict[str, Any]:
    """A pod as Seldon Core makes it for SeldonDeployment `parent` (its labels, storage initializer, model
    server and executor), bound to `node` if given."""
    spec: dict[str, Any] = {
        "tolerations": NOT_READY_TOLERATIONS,
        "automountServiceAccountToken": False,
        "initContainers": [
            {
                "name": INITIALIZER,
                "image": STORAGE_INITIALIZER_IMAGE,
                "args": ["s3://models/iris/v3", "/mnt/models"],
                "terminationMessagePolicy": "File",
            }
        ],
        "containers": [{"name": MODEL, "image": SERVER_IMAGE}, {"name": EXECUTOR, "image": EXECUTOR_IMAGE}],
    }
    if node is not None:
        spec["nodeName"] = node
    labels = {
        "seldon-deployment-id": parent,
        "seldon-app": f"{parent}-default",
        "app": f"{parent}-default-0-iris",
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
    }


def container_status(name: str, image: str, state: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "imageID": "",
        "ready": False,
        "restartCount": 0,
        "state": state,
    } | extra


def initializer_crash_looping(run: int) -> list[dict[str, Any]]:
    """The storage initializer's status after its `run`-th run exited 1, as the kubelet writes it."""
    exited = {"exitCode": 1, "reason": "Error", "containerID": f"containerd://run-{run}"}
    waiting = {
        "reason": "CrashLoopBackOff",
        "message": f"back-off {10 * 2**run}s restarting failed container",
    }
    return [
        container_status(
            INITIALIZER,
            STORAGE_INITIALIZER_IMAGE,
            {"waiting": waiting},
            lastState={"terminated": exited},
            restartCount=run,
            containerID=f"containerd://run-{run}",
        )
    ]


def containers(state: dict[str, Any], ready: bool = False) -> list[dict[str, Any]]:
    """The model server's and the executor's statuses, both in `state`."""
    return [
        container_status(MODEL, SERVER_IMAGE, state, ready=ready),
        container_status(EXECUTOR, EXECUTOR_IMAGE, state, ready=ready),
    ]


INITIALIZING = containers({"waiting": {"reason": "PodInitializing"}})


def failing_status(run: int = 1) -> dict[str, Any]:
    """The status of a pod whose storage initializer cannot fetch the model."""
    return {"initContainerStatuses": initializer_crash_looping(run), "containerStatuses": INITIALIZING}


def running_status(runs: int = 0) -> dict[str, Any]:
    """The status of a pod whose model was fetched (after `runs` failed runs) and whose containers run."""
    fetched = {"exitCode": 0, "reason": "Completed", "containerID": f"containerd://run-{runs + 1}"}
    initializer = container_status(
        INITIALIZER, STORAGE_INITIALIZER_IMAGE, {"terminated": fetched}, ready=True, restartCount=runs
    )
    running = containers({"running": {"startedAt": "2026-05-01T10:05:00Z"}}, ready=True)
    return {"initContainerStatuses": [initializer], "containerStatuses": running}


class ContainerLogs:
    """A kubelet's container-log endpoint on 127.0.0.1 (TLS: the apiserver speaks only HTTPS to kubelets).
    `outputs[(namespace, pod, container)]` is what it answers; anything else is answered 404, as the kubelet
    answers for a container it does not have. `requests` records each request's path and query."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.outputs: dict[tuple[str, str, str], bytes] = {}
        self.requests: list[tuple[tuple[str, ...], dict[str, str]]] = []
        cert, key = cluster.issue_server_certificate("container-logs")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                parts = tuple(url.path.strip("/").split("/"))
                endpoint.requests.append((parts, dict(parse_qsl(url.query))))
                body = None
                if len(parts) == 4 and parts[0] == "containerLogs":
                    body = endpoint.outputs.get((parts[1], parts[2], parts[3]))
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "text/plain")
                answer = body if body is not None else b"container not found"
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: the test reads `requests`

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ContainerLogs:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def asked(self, namespace: str, pod: str, container: str) -> list[dict[str, str]]:
        """The queries of the requests for one container's output, in order."""
        return [
            query for parts, query in self.requests if parts == ("containerLogs", namespace, pod, container)
        ]


@contextmanager
def node_nothing_runs(cluster: LocalCluster, name: str, logs: ContainerLogs | None = None) -> Iterator[str]:
    """A Node that no kubelet (nor kwok) manages; with `logs`, its kubelet endpoint is that one. Deleted
    afterwards, with any pod still bound to it (deleted at once: no kubelet would confirm it)."""
    node: dict[str, Any] = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}
    if logs is not None:
        node["status"] = {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": logs.port}},
        }
    cluster.kubectl("create", "-f", "-", input=json.dumps(node))
    try:
        yield name
    finally:
        cluster.kubectl(
            "delete", "pods", "-A", "--field-selector", f"spec.nodeName={name}", "--force", "--grace-period=0",
            check=False,
        )  # fmt: skip
        cluster.kubectl("delete", "node", name, "--ignore-not-found", check=False)
