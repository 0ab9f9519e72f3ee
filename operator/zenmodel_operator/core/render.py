"""Pure renderers of the two children: the SeldonDeployment and the rclone credentials Secret."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..api.spec import API_VERSION, KIND, CanaryMode, Executor, Implementation, ZenModelDeploymentSpec
from ..api.validation import kubelet_literal
from . import labels, seldon
from .storage import ModelLocation, parse_model_uri

# On the pod template, so a credentials rotation rolls the model pods (which read rclone's env once).
CREDENTIALS_HASH_ANNOTATION = "zenml.io/credentials-hash"
# On each child: a digest of everything the operator renders, so a change in what we would write is
# seen even where the live object still holds every field we now want (e.g. a removed parameter).
RENDERED_HASH_ANNOTATION = "zenml.io/rendered-hash"
RCLONE_SECRET_SUFFIX = "-rclone"  # noqa: S105 (a name suffix, not a password)


@dataclass(frozen=True)
class ParentRef:
    name: str
    namespace: str
    uid: str

    @classmethod
    def of(cls, parent: Mapping[str, Any]) -> ParentRef:
        meta = parent["metadata"]
        return cls(name=meta["name"], namespace=meta["namespace"], uid=meta.get("uid", ""))


def owner_reference(parent: ParentRef) -> dict[str, Any]:
    reference: dict[str, Any] = {"apiVersion": API_VERSION, "kind": KIND, "name": parent.name}
    if parent.uid:  # offline `render` has no uid: the apiserver assigns it
        reference["uid"] = parent.uid
    return {**reference, "controller": True, "blockOwnerDeletion": True}


def is_controlled_by(child: Mapping[str, Any], parent: ParentRef) -> bool:
    return any(
        ref.get("controller") and ref.get("uid") == parent.uid
        for ref in child.get("metadata", {}).get("ownerReferences", [])
    )


def earlier_parent_uid(child: Mapping[str, Any], parent: ParentRef) -> str | None:
    """The uid of the earlier ZenModelDeployment of `parent`'s name that `child` was made for: a child of
    ours (by its label) whose controller is a parent of that name since deleted, which the garbage
    collector missed (it can after an apiserver restart, kubernetes/kubernetes#109748). None for any
    other object."""
    meta = child.get("metadata") or {}
    if (meta.get("labels") or {}).get(labels.MANAGED_BY_KEY) != labels.MANAGED_BY:
        return None
    for ref in meta.get("ownerReferences") or []:
        if (
            ref.get("controller")
            and (ref.get("apiVersion"), ref.get("kind"), ref.get("name")) == (API_VERSION, KIND, parent.name)
            and ref.get("uid") != parent.uid
        ):
            return str(ref.get("uid"))
    return None


def rclone_secret_name(parent_name: str) -> str:
    return parent_name + RCLONE_SECRET_SUFFIX


def _child_metadata(name: str, parent: ParentRef, extra_labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": parent.namespace,
        "labels": {
            labels.MANAGED_BY_KEY: labels.MANAGED_BY,
            labels.PART_OF_KEY: parent.name,
            **extra_labels,
        },
        "ownerReferences": [owner_reference(parent)],
    }


def _with_rendered_hash(obj: dict[str, Any]) -> dict[str, Any]:
    digest = hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]
    obj["metadata"].setdefault("annotations", {})[RENDERED_HASH_ANNOTATION] = digest
    return obj


def provenance_labels(spec: ZenModelDeploymentSpec) -> dict[str, str]:
    if spec.provenance is None:
        return {}
    values = spec.provenance.model_dump()
    return {
        key: labels.sanitize_label_value(values[field])
        for field, key in labels.PROVENANCE_KEYS.items()
        if values.get(field)
    }


def _hpa_spec(spec: ZenModelDeploymentSpec) -> dict[str, Any] | None:
    """Seldon v1.19's hpaSpec: `metricsv2` carries autoscaling/v2 MetricSpecs as the HPA takes them."""
    autoscaling = spec.autoscaling
    if autoscaling is None:
        return None
    targets = {
        "cpu": autoscaling.targetCPUUtilizationPercentage,
        "memory": autoscaling.targetMemoryUtilizationPercentage,
    }
    return {
        "minReplicas": autoscaling.minReplicas,
        "maxReplicas": autoscaling.maxReplicas,
        "metricsv2": [
            {
                "type": "Resource",
                "resource": {
                    "name": resource,
                    "target": {"type": "Utilization", "averageUtilization": target},
                },
            }
            for resource, target in targets.items()
            if target is not None
        ],
    }


def _predictor(
    name: str,
    spec: ZenModelDeploymentSpec,
    location: ModelLocation,
    *,
    replicas: int,
    secret_name: str | None,
    credentials_hash: str | None,
    hpa_spec: dict[str, Any] | None,
) -> dict[str, Any]:
    """One predictor serving the model at `location`; the main one and the canary differ only there."""
    model = spec.model
    # Seldon hands parameters to the model server only inside an env value, which the kubelet expands:
    # doubled, every `$` reaches the server as written (names are identifiers and hold none).
    parameters = [{**p.model_dump(mode="json"), "value": kubelet_literal(p.value)} for p in model.parameters]
    if spec.custom is not None and spec.custom.predictFunction:
        parameters.append({"name": "predict_func", "type": "STRING", "value": spec.custom.predictFunction})

    graph: dict[str, Any] = {"name": model.name, "type": "MODEL", "modelUri": location.seldon_uri}
    if model.implementation is not Implementation.CUSTOM:
        graph["implementation"] = model.implementation.value
    if secret_name:
        graph["envSecretRefName"] = secret_name
    if parameters:
        graph["parameters"] = parameters

    # Seldon merges a container named like the graph node into the prepackaged server's container,
    # so resources and env land on the model container, not on Seldon's engine.
    container: dict[str, Any] = {"name": model.name}
    if spec.custom is not None:
        container["image"] = spec.custom.image
    if spec.resources is not None and (spec.resources.requests or spec.resources.limits):
        container["resources"] = spec.resources.model_dump(exclude_defaults=True)
    if spec.env:
        # An empty value is left out, as Kubernetes' Go types (and so Seldon's webhook) serialise it.
        container["env"] = [variable.model_dump(exclude_defaults=True) for variable in spec.env]
    pod_spec: dict[str, Any] = {"containers": [container]}
    if spec.serviceAccountName:
        pod_spec["serviceAccountName"] = spec.serviceAccountName
    if spec.custom is not None and spec.custom.imagePullSecrets:
        pod_spec["imagePullSecrets"] = [ref.model_dump() for ref in spec.custom.imagePullSecrets]
    if spec.scheduling is not None:
        pod_spec.update(spec.scheduling.model_dump(mode="json", exclude_none=True, exclude_defaults=True))
    component: dict[str, Any] = {}
    if credentials_hash:
        component["metadata"] = {"annotations": {CREDENTIALS_HASH_ANNOTATION: credentials_hash}}
    component["spec"] = pod_spec
    if hpa_spec is not None:
        component["hpaSpec"] = hpa_spec
    predictor: dict[str, Any] = {"name": name}
    if spec.executor is Executor.DISABLED:
        # Absent (not "false") when enabled, so an existing object renders as it did and costs no write.
        predictor["annotations"] = {seldon.NO_ENGINE_ANNOTATION: "true"}
    return {**predictor, "replicas": replicas, "graph": graph, "componentSpecs": [component]}


def render_seldon_deployment(
    parent: ParentRef,
    spec: ZenModelDeploymentSpec,
    location: ModelLocation,
    *,
    secret_name: str | None,
    credentials_hash: str | None,
) -> dict[str, Any]:
    shared = {"secret_name": secret_name, "credentials_hash": credentials_hash}
    main = _predictor(
        seldon.PREDICTOR_NAME,
        spec,
        location,
        replicas=spec.desired_replicas,
        hpa_spec=_hpa_spec(spec),
        **shared,
    )
    predictors = [main]
    canary = spec.canary
    if canary is not None:
        predictor = _predictor(
            seldon.CANARY_PREDICTOR_NAME,
            spec,
            parse_model_uri(canary.uri),
            replicas=canary.replicas,
            hpa_spec=None,
            **shared,
        )
        # Seldon's traffic rules: the non-shadow predictors' traffic sums to 100.
        if canary.mode is CanaryMode.SHADOW:
            main["traffic"], predictor["shadow"] = 100, True
        else:
            assert canary.trafficPercent is not None  # the spec's rules require it for a split
            main["traffic"], predictor["traffic"] = 100 - canary.trafficPercent, canary.trafficPercent
        predictors.append(predictor)

    return _with_rendered_hash(
        {
            "apiVersion": seldon.API_VERSION,
            "kind": seldon.KIND,
            "metadata": _child_metadata(parent.name, parent, provenance_labels(spec)),
            "spec": {"protocol": spec.model.protocol.value, "predictors": predictors},
        }
    )


def render_rclone_secret(parent: ParentRef, config: Mapping[str, str]) -> dict[str, Any]:
    return _with_rendered_hash(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": _child_metadata(
                rclone_secret_name(parent.name),
                parent,
                {labels.CREDENTIALS_KEY: labels.CREDENTIALS_GENERATED},
            ),
            "type": "Opaque",
            "data": {key: base64.b64encode(value.encode()).decode() for key, value in sorted(config.items())},
        }
    )


def is_subset(desired: Any, live: Any) -> bool:
    """Whether `live` already holds every field of `desired` with the same value.

    Server-side apply would then change nothing we own, so the write is skipped: this is what makes a
    restart over converged objects cost zero writes. Lists must match item by item.
    """
    if isinstance(desired, Mapping):
        return isinstance(live, Mapping) and all(
            key in live and is_subset(value, live[key]) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(desired) == len(live)
            and all(is_subset(d, item) for d, item in zip(desired, live, strict=True))
        )
    return bool(desired == live)
