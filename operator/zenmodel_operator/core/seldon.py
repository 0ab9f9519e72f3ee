"""Everything the operator knows about Seldon Core v1: its API identity, what its executor serves where,
and how it reports progress. Pure constants and functions; no I/O."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from ..api.spec import Executor, Protocol

GROUP = "machinelearning.seldon.io"
VERSION = "v1"
PLURAL = "seldondeployments"
KIND = "SeldonDeployment"
API_VERSION = f"{GROUP}/{VERSION}"

PREDICTOR_NAME = "default"
CANARY_PREDICTOR_NAME = "canary"  # the second predictor, when the spec has a canary
NO_ENGINE_ANNOTATION = "seldon.io/no-engine"  # on a predictor: Seldon leaves its executor out
# The predictor Service's HTTP port as Seldon v1.19 sets it by default: the executor's REST port, or without
# the executor the model container's own (Seldon numbers its model containers' ports from 9000, and ours is
# the first). A Seldon installed with other ports reports them in status.address, which the status prefers.
EXECUTOR_HTTP_PORT = 8000
MODEL_HTTP_PORT = 9000
# On every pod Seldon Core v1.19 makes for a SeldonDeployment, with the SeldonDeployment's name as its value
# (its GetSeldonDeploymentName: the name itself up to 63 characters; ours is the parent's, at most 55).
DEPLOYMENT_ID_LABEL = "seldon-deployment-id"
# Seldon names the init container that fetches the model after the model's container (its
# InjectModelInitializer): `<container>-model-initializer`, cut to 63 characters.
_STORAGE_INITIALIZER_SUFFIX = "-model-initializer"

# Values of SeldonDeployment.status.state that the mirror tells apart.
CREATING = "Creating"
AVAILABLE = "Available"
FAILED = "Failed"


def prediction_path(protocol: Protocol, model_name: str) -> str:
    """The path Seldon serves for the protocol (the same behind the ingress and in-cluster, and with or
    without the executor where the spec may leave it out)."""
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


def predictor_http_port(executor: Executor) -> int:
    return EXECUTOR_HTTP_PORT if executor is Executor.ENABLED else MODEL_HTTP_PORT


def internal_url(namespace: str, name: str, port: int, path: str) -> str:
    """The predictor's in-cluster Service, as Seldon names it."""
    return f"http://{name}-{PREDICTOR_NAME}.{namespace}.svc.cluster.local:{port}{path}"


def storage_initializer_name(model_name: str) -> str:
    """The storage initializer's container name in the pods of the model container `model_name`: cut as
    Seldon v1.19 cuts it (to 63 characters, then one trailing `-` removed)."""
    return (model_name + _STORAGE_INITIALIZER_SUFFIX)[:63].removesuffix("-")


def predictor_deployment_names(name: str, predictor: str, model_name: str) -> frozenset[str]:
    """The names Seldon Core v1.19 may give a predictor's Deployment (its GetDeploymentName): the keys of
    its status.deploymentStatus. Our one component (index 0) has one container, named like the model."""
    full = f"{name}-{predictor}-0-{model_name}"
    if len(full) <= 63:
        return frozenset({full})
    digest = hashlib.md5(full.encode(), usedforsecurity=False).hexdigest()
    # `seldon-<md5>` by default, `<name>-<md5>` where Seldon runs with DEPLOYMENT_NAME_AS_PREFIX=true.
    return frozenset({f"seldon-{digest}", f"{name}-{digest}"})


def predictor_replicas(
    seldon_status: Mapping[str, Any], deployment_names: frozenset[str], field: str
) -> int | None:
    """`replicas` or `availableReplicas` of one predictor, from Seldon's per-Deployment status; None when
    Seldon reports none of its Deployments."""
    deployments = seldon_status.get("deploymentStatus") or {}
    reported = [d for key, d in deployments.items() if key in deployment_names and isinstance(d, Mapping)]
    return sum(int(d.get(field) or 0) for d in reported) if reported else None
