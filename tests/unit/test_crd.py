"""The CRD is generated from the pydantic models; every shipped copy is that output, byte for byte."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from zenmodel_operator.api.crd import render_crd, render_crd_yaml

ROOT = Path(__file__).parent.parent.parent
CRD_FILE = "zenml.io_zenmodeldeployments.yaml"


def schema() -> dict[str, Any]:
    return dict(render_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


def walk(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in (node.get("properties") or {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


def test_every_copy_is_the_generated_crd() -> None:
    copies = [p for p in ROOT.glob(f"**/{CRD_FILE}") if ".venv" not in p.parts]
    assert ROOT / "crds" / CRD_FILE in copies
    generated = render_crd_yaml()
    stale = [str(p.relative_to(ROOT)) for p in copies if p.read_text() != generated]
    assert not stale, f"stale CRD copies {stale}: run `make crds`"


def test_every_field_is_described_for_kubectl_explain() -> None:
    undescribed = [
        path
        for path, node in walk(schema()["properties"]["spec"], "spec")
        if not node.get("description") and not path.endswith("{}")
    ]
    assert not undescribed


def test_schema_is_structural() -> None:
    for path, node in walk(schema(), ""):
        assert "type" in node, f"{path} has no type"
        assert not {"$ref", "anyOf", "allOf", "oneOf", "$defs", "title"} & node.keys(), path
        if node["type"] == "object" and "properties" in node:
            assert "additionalProperties" not in node, path


def test_cel_rules_and_columns() -> None:
    rules = [r["rule"] for r in schema()["properties"]["spec"]["x-kubernetes-validations"]]
    assert any("CUSTOM" in r and "has(self.custom)" in r for r in rules)
    assert any("TRITON_SERVER" in r and "protocol" in r for r in rules)
    version = render_crd()["spec"]["versions"][0]
    columns = {c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")}
    assert columns == {"State", "Ready", "Model", "URL", "Canary", "Age"}
    assert version["subresources"] == {"status": {}}
    assert render_crd()["spec"]["names"]["shortNames"] == ["zmd"]


def test_crd_is_valid_yaml_with_one_document() -> None:
    assert len(list(yaml.safe_load_all(render_crd_yaml()))) == 1


def test_every_cel_message_names_a_field_of_the_schema() -> None:
    """A refusal at apply time says which field is wrong: its message starts with that field's path."""
    paths = {path for path, _ in walk(schema(), "")}
    validations = [
        *schema()["x-kubernetes-validations"],
        *schema()["properties"]["spec"]["x-kubernetes-validations"],
    ]
    for validation in validations:
        # The name rule points at its field with fieldPath; the spec's rules name theirs in the message.
        field = validation.get("fieldPath", "").lstrip(".") or validation["message"].split(":", 1)[0]
        assert field.startswith(("spec", "metadata")), validation
        assert field == "metadata.name" or f".{field}" in paths, validation
