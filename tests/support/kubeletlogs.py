"""Nodes that nothing runs, for pods whose status a test writes as a kubelet would: kwok's fake Node makes
every pod bound to it Running, and a failing pod is what some tests need.

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

# Taints the node lifecycle controller puts on a Node no kubelet reports for: tolerated, so the pods stay.
NOT_READY_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
]


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
