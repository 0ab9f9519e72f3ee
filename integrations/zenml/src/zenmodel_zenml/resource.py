"""The ZenModelDeployment a served model becomes, and what its status means to ZenML: pure functions.

The operator owns everything past the resource (the SeldonDeployment, the rclone Secret, the status), so
this side only renders the spec, names it so the same pipeline step and model always land on the same
object (a new model version is a rolling update, the URL stays), and reads the status back.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

GROUP = "zenml.io"
VERSION = "v1alpha1"
PLURAL = "zenmodeldeployments"
KIND = "ZenModelDeployment"
FIELD_MANAGER = "zenml"

MANAGED_BY = "app.kubernetes.io/managed-by"
SERVICE_UUID_LABEL = "zenml.io/service-uuid"
PIPELINE_LABEL = "zenml.io/pipeline-name"
STEP_LABEL = "zenml.io/step-name"
MODEL_LABEL = "zenml.io/model-name"
# The operator reads only Secrets that carry this label.
CREDENTIALS_OPT_IN = {"zenml.io/model-credentials": "true"}

# The operator's limit: Seldon derives `<name>-<predictor>` Service names from it.
MAX_NAME_LENGTH = 55
_DIGEST_LENGTH = 8
_MAX_LABEL_VALUE = 63

# The operator's states (its CRD's status.state).
AVAILABLE = "Available"
FAILED = "Failed"
STOPPED = "Stopped"


def resource_name(pipeline_name: str, step_name: str, model_name: str) -> str:
    """One name per (pipeline, step, model): readable from the model name, unique by a digest of all
    three (so two pipelines serving a model of the same name never share an object)."""
    digest = hashlib.sha256(f"{pipeline_name}\0{step_name}\0{model_name}".encode()).hexdigest()
    readable = re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-")
    readable = re.sub(r"^[^a-z]+", "", readable)[: MAX_NAME_LENGTH - _DIGEST_LENGTH - 1].rstrip("-")
    return f"{readable}-{digest[:_DIGEST_LENGTH]}" if readable else f"model-{digest[:_DIGEST_LENGTH]}"


def label_value(text: str) -> str:
    """`text` as a label value (at most 63 of [-A-Za-z0-9_.], alphanumeric at both ends); lossy, so labels
    are for people and `kubectl -l`, while matching uses ZenML's own records."""
    cleaned = re.sub(r"[^-A-Za-z0-9_.]+", "-", text)[:_MAX_LABEL_VALUE]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)


def secret_name(artifact_store_id: str) -> str:
    """The opted-in Secret holding one artifact store's credentials, shared by every model read from it."""
    return f"zenml-artifact-store-{artifact_store_id}"


@dataclass(frozen=True)
class Deployment:
    """Everything the ZenModelDeployment's spec is made of."""

    namespace: str
    pipeline_name: str
    step_name: str
    model_name: str
    model_uri: str
    implementation: str
    protocol: str
    replicas: int
    parameters: tuple[Mapping[str, str], ...] = ()
    resources: Mapping[str, Mapping[str, str]] | None = None
    env: Mapping[str, str] | None = None
    credentials: Mapping[str, Any] | None = None
    ingress_base_url: str | None = None

    @property
    def name(self) -> str:
        return resource_name(self.pipeline_name, self.step_name, self.model_name)


def manifest(deployment: Deployment, service_uuid: str, replicas: int | None = None) -> dict[str, Any]:
    """The whole object as field manager `zenml` owns it (server-side apply: a field left out is given up).
    `replicas` overrides the configured count (0 stops the model)."""
    spec: dict[str, Any] = {
        "model": {
            "name": deployment.model_name,
            "uri": deployment.model_uri,
            "implementation": deployment.implementation,
            "protocol": deployment.protocol,
        },
        "replicas": deployment.replicas if replicas is None else replicas,
        "provenance": {"pipelineName": deployment.pipeline_name, "stepName": deployment.step_name},
    }
    if deployment.parameters:
        spec["model"]["parameters"] = [dict(parameter) for parameter in deployment.parameters]
    if deployment.resources:
        spec["resources"] = {kind: dict(values) for kind, values in deployment.resources.items()}
    if deployment.env:
        spec["env"] = [{"name": name, "value": value} for name, value in sorted(deployment.env.items())]
    if deployment.credentials:
        spec["credentials"] = dict(deployment.credentials)
    if deployment.ingress_base_url:
        spec["ingress"] = {"baseURL": deployment.ingress_base_url}
    labels = {
        MANAGED_BY: FIELD_MANAGER,
        SERVICE_UUID_LABEL: service_uuid,
        PIPELINE_LABEL: label_value(deployment.pipeline_name),
        STEP_LABEL: label_value(deployment.step_name),
        MODEL_LABEL: label_value(deployment.model_name),
    }
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": deployment.name, "namespace": deployment.namespace, "labels": labels},
        "spec": spec,
    }


def secret_manifest(namespace: str, name: str, data: Mapping[str, str]) -> dict[str, Any]:
    """The opted-in credentials Secret, as `stringData` (the apiserver stores it base64-encoded)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {MANAGED_BY: FIELD_MANAGER, **CREDENTIALS_OPT_IN},
        },
        "type": "Opaque",
        "stringData": dict(data),
    }


@dataclass(frozen=True)
class Observed:
    """A ZenModelDeployment's status as ZenML needs it."""

    state: str | None
    message: str
    current: bool  # the operator has reconciled the newest generation
    prediction_url: str | None
    internal_url: str | None
    replicas: int | None = None
    available_replicas: int | None = None

    def reached(self, wanted: str) -> bool:
        """`wanted` for the newest generation; Available also with every desired replica available, since
        for a moment after a spec change the operator still mirrors Seldon's Available of the old one."""
        if not (self.current and self.state == wanted):
            return False
        return wanted != AVAILABLE or self.available_replicas == self.replicas

    @property
    def failed(self) -> bool:
        return self.current and self.state == FAILED


def observe(obj: Mapping[str, Any]) -> Observed:
    status = obj.get("status") or {}
    ready: Mapping[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {}
    )
    generation = (obj.get("metadata") or {}).get("generation")
    current = generation is not None and status.get("observedGeneration") == generation
    state = status.get("state")
    message = str(ready.get("message") or "")
    if not current:
        message = f"waiting for the operator to observe generation {generation}"
    elif not message:
        message = f"state {state}"
    return Observed(
        state,
        message,
        current,
        status.get("predictionURL"),
        status.get("internalURL"),
        status.get("replicas"),
        status.get("availableReplicas"),
    )
