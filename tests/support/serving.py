"""Models that answer, on the real node: what the serving tests and `make demo` share.

A ZenModelDeployment whose pods run on the real node (tolerating its taint), fetch the model from an
object store on the host's node address with the operator's rclone Secret, and serve it with MLServer; and
a V2 inference request sent to Seldon's own address for it, the predictor Service's ClusterIP, which
kube-proxy on this host rewrites to a pod's address.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Sequence
from typing import Any

from support.localcluster import LocalCluster
from support.objects import must_get
from support.realnode import REAL_NODE, REAL_NODE_TAINT

MODEL_NAME = "classifier"
# Seldon's executor cannot be built here (no version of its Go module is served), so the model server
# answers on the predictor's Service itself: `executor: Disabled` (Seldon's seldon.io/no-engine).
EXECUTOR = "Disabled"
REQUEST_TIMEOUT = 5.0


def serving_zmd(
    name: str, namespace: str, uri: str, endpoint: str, secret: str = "s3-creds"
) -> dict[str, Any]:
    """A ZenModelDeployment of an sklearn model over the V2 protocol, fetched from the S3-compatible store
    at ``endpoint`` with the credentials in ``secret``, its pods on the real node."""
    return {
        "apiVersion": "zenml.io/v1alpha1",
        "kind": "ZenModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": {"name": MODEL_NAME, "uri": uri, "implementation": "SKLEARN_SERVER", "protocol": "v2"},
            "executor": EXECUTOR,
            "credentials": {
                "secretRef": {"name": secret},
                "s3": {"endpoint": endpoint, "region": "us-east-1", "provider": "Other"},
            },
            "scheduling": {
                "nodeSelector": {"kubernetes.io/hostname": REAL_NODE},
                "tolerations": [{**REAL_NODE_TAINT, "operator": "Equal"}],
            },
        },
    }


def predictor_address(cluster: LocalCluster, namespace: str, name: str) -> tuple[str, int]:
    """Seldon's own address for the model: its predictor Service's ClusterIP and HTTP port."""
    service = must_get(cluster, "service", namespace, f"{name}-default")
    (port,) = [int(p["port"]) for p in service["spec"]["ports"] if p["name"] == "http"]
    return str(service["spec"]["clusterIP"]), port


def inference_request(rows: Sequence[Sequence[float]]) -> dict[str, Any]:
    """A V2 (Open Inference Protocol) request for ``rows`` of features."""
    return {
        "inputs": [{"name": "predict", "shape": [len(rows), len(rows[0])], "datatype": "FP64", "data": rows}]
    }


def infer(address: tuple[str, int], rows: Sequence[Sequence[float]]) -> dict[str, Any]:
    """POSTs a V2 inference request for ``rows`` to the model at ``address``; the response's JSON. Any
    answer but 200 raises ``http.client.HTTPException``."""
    connection = http.client.HTTPConnection(*address, timeout=REQUEST_TIMEOUT)
    try:
        body = json.dumps(inference_request(rows))
        connection.request(
            "POST", f"/v2/models/{MODEL_NAME}/infer", body, {"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        text = response.read().decode()
        if response.status != 200:
            raise http.client.HTTPException(f"{response.status} {response.reason}: {text[:500]}")
        answer: dict[str, Any] = json.loads(text)
        return answer
    finally:
        connection.close()


def predicted_classes(answer: dict[str, Any]) -> list[int]:
    (output,) = answer["outputs"]
    return [int(value) for value in output["data"]]


def wait_for_classes(
    cluster: LocalCluster,
    namespace: str,
    name: str,
    rows: Sequence[Sequence[float]],
    expected: list[int],
    timeout: float,
) -> dict[str, Any]:
    """Asks the model for ``rows`` until it answers ``expected``; its last answer. Fails with what it
    answered last (or why it did not) when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    last: object = "no request sent"
    while True:
        try:
            answer = infer(predictor_address(cluster, namespace, name), rows)
            if predicted_classes(answer) == expected:
                return answer
            last = answer
        except (OSError, http.client.HTTPException, AssertionError, ValueError, KeyError) as error:
            last = error
        if time.monotonic() > deadline:
            raise AssertionError(f"the model never answered {expected} in {timeout:.0f}s; last: {last!r}")
        time.sleep(0.25)
