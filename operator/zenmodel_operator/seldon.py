"""Everything the operator knows about Seldon Core v1: its API identity, what its executor serves where,
and how it reports progress. Pure constants and functions; no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .spec import Protocol

GROUP = "machinelearning.seldon.io"
VERSION = "v1"
PLURAL = "seldondeployments"
KIND = "SeldonDeployment"
API_VERSION = f"{GROUP}/{VERSION}"

PREDICTOR_NAME = "default"
HTTP_PORT = 8000  # the executor's REST port, on the predictor's Service

# Values of SeldonDeployment.status.state that the mirror tells apart.
CREATING = "Creating"
AVAILABLE = "Available"
FAILED = "Failed"


def prediction_path(protocol: Protocol, model_name: str) -> str:
    """The path Seldon's executor serves for the protocol (the same behind the ingress and in-cluster)."""
    match protocol:
        case Protocol.SELDON:
            return "/api/v1.0/predictions"
        case Protocol.V2:
            return f"/v2/models/{model_name}/infer"
        case Protocol.TENSORFLOW:
            return f"/v1/models/{model_name}:predict"


def ingress_url(base_url: str, namespace: str, name: str, path: str) -> str:
    """Seldon's ingress layout: one prefix per SeldonDeployment."""
    return f"{base_url.rstrip('/')}/seldon/{namespace}/{name}{path}"


def internal_url(namespace: str, name: str, path: str) -> str:
    """The predictor's in-cluster Service, as Seldon names it."""
    return f"http://{name}-{PREDICTOR_NAME}.{namespace}.svc.cluster.local:{HTTP_PORT}{path}"


def available_replicas(seldon_status: Mapping[str, Any]) -> int:
    deployments = seldon_status.get("deploymentStatus") or {}
    return sum(int(d.get("availableReplicas") or 0) for d in deployments.values() if isinstance(d, Mapping))
