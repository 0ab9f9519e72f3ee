"""The CustomResourceDefinition, generated from the pydantic models: the schema has one source of truth.

`crds/`, `deploy/` and the Helm chart carry copies of `render_crd_yaml()`; a test keeps them identical.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from .spec import (
    CEL_RULES,
    GROUP,
    KIND,
    NAME_RULE,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    VERSION,
    ZenModelDeploymentSpec,
)
from .status import ZenModelDeploymentStatus

# JSON-schema keywords that OpenAPI v3 structural schemas accept and we use.
_KEPT = frozenset(
    {
        "type",
        "description",
        "properties",
        "required",
        "items",
        "additionalProperties",
        "enum",
        "default",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "maxItems",
        "maxProperties",
        "minItems",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-validations",
    }
)


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    """pydantic's JSON schema -> a structural OpenAPI v3 schema: refs inlined, Optional unwrapped."""
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = dict(defs[node["$ref"].rsplit("/", 1)[1]])
        if "description" in node:
            target["description"] = node["description"]  # the field's words beat the class docstring
        extra = {k: v for k, v in node.items() if k not in ("$ref", "description")}
        return _structural({**target, **extra}, defs)
    if "anyOf" in node:  # `X | None`: optional, which is already "not required"
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        assert len(branches) == 1, node
        merged = {**branches[0], **{k: v for k, v in node.items() if k != "anyOf"}}
        if merged.get("default", ...) is None:
            del merged["default"]
        return _structural(merged, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key not in _KEPT:
            continue
        if key == "properties":
            out[key] = {name: _structural(prop, defs) for name, prop in value.items()}
        elif key in ("items", "additionalProperties"):
            if value is False:
                continue  # extra="forbid": the apiserver's pruning and kubectl's strict validation do this
            out[key] = _structural(value, defs)
        else:
            out[key] = value
    if out.get("type") == "object" and "additionalProperties" in out and "properties" not in out:
        out.pop("required", None)
    return out


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(mode="validation")
    return dict(_structural(schema, schema.get("$defs", {})))


def openapi_schema() -> dict[str, Any]:
    spec = model_schema(ZenModelDeploymentSpec)
    spec["x-kubernetes-validations"] = [
        {"rule": rule.cel, "message": f"{rule.field}: {rule.message}"} for rule in CEL_RULES
    ]
    return {
        "type": "object",
        "description": "A model served by Seldon Core, declared once: the operator owns the SeldonDeployment "
        "and the rclone credentials Secret it needs.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of this object: zenml.io/v1alpha1."},
            "kind": {"type": "string", "description": "Kind of this object: ZenModelDeployment."},
            # Declared so that the name rule below can point at it (fieldPath).
            "metadata": {"type": "object", "properties": {"name": {"type": "string"}}},
            "spec": spec,
            "status": model_schema(ZenModelDeploymentStatus),
        },
        "x-kubernetes-validations": [
            {"rule": NAME_RULE.cel, "message": NAME_RULE.message, "fieldPath": ".metadata.name"}
        ],
    }


def render_crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "categories": ["zenml", "seldon"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "State", "type": "string", "jsonPath": ".status.state"},
                        {
                            "name": "Ready",
                            "type": "string",
                            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
                        },
                        {"name": "Model", "type": "string", "jsonPath": ".spec.model.uri"},
                        {"name": "URL", "type": "string", "jsonPath": ".status.predictionURL"},
                        {"name": "Canary", "type": "string", "jsonPath": ".status.canary.traffic"},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                        {
                            "name": "Implementation",
                            "type": "string",
                            "jsonPath": ".spec.model.implementation",
                            "priority": 1,
                        },
                        {
                            "name": "Replicas",
                            "type": "integer",
                            "jsonPath": ".status.availableReplicas",
                            "priority": 1,
                        },
                    ],
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }


def render_crd_yaml() -> str:
    return "---\n" + yaml.safe_dump(render_crd(), sort_keys=False, width=120)
