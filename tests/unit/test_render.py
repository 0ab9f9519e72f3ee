"""What the operator would create, checked against reviewed golden files, plus properties for any input."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from unit.golden import check_golden
from zenmodel_operator.api.spec import ZenModelDeploymentSpec
from zenmodel_operator.cli import REDACTED, RenderError, render_documents
from zenmodel_operator.core.labels import is_valid_label_value
from zenmodel_operator.core.render import ParentRef, is_subset, render_seldon_deployment
from zenmodel_operator.core.storage import parse_model_uri

GOLDEN = Path(__file__).parent.parent / "golden" / "render"
CASES = sorted(p.name.removesuffix(".input.yaml") for p in GOLDEN.glob("*.input.yaml"))


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    docs = list(yaml.safe_load_all((GOLDEN / f"{case}.input.yaml").read_text()))
    rendered = render_documents(docs, show_secrets=True, require_credentials_label=True)
    check_golden(
        GOLDEN / f"{case}.expected.yaml", yaml.safe_dump_all(rendered, sort_keys=False, explicit_start=True)
    )


def test_there_are_golden_cases() -> None:
    assert len(CASES) >= 4


def test_secrets_are_redacted_unless_asked() -> None:
    docs = list(yaml.safe_load_all((GOLDEN / "s3-minio.input.yaml").read_text()))
    rendered = render_documents(docs, show_secrets=False, require_credentials_label=True)
    secret = next(d for d in rendered if d["kind"] == "Secret")
    assert set(secret["data"].values()) == {REDACTED}
    text = yaml.safe_dump_all(rendered)
    assert "minio-secret-key" not in text and "bWluaW8tc2VjcmV0LWtleQ" not in text


def test_render_names_the_bad_field() -> None:
    doc = {
        "apiVersion": "zenml.io/v1alpha1",
        "kind": "ZenModelDeployment",
        "metadata": {"name": "iris"},
        "spec": {"model": {"name": "iris", "uri": "s3://models/m", "implementation": "TRITON_SERVER"}},
    }
    with pytest.raises(RenderError, match=re.escape("spec.model.protocol")):
        render_documents([doc], show_secrets=False, require_credentials_label=True)


names = st.from_regex(r"[a-z]([-a-z0-9]{0,40}[a-z0-9])?", fullmatch=True)
free_text = st.text(min_size=1, max_size=200)


@given(
    name=names,
    namespace=names,
    model_name=names,
    uri=st.sampled_from(
        [
            "s3://models/m",
            "gs://models/m",
            "az://models/m",
            "https://acct1.blob.core.windows.net/models/m",
            "pvc://c/m",
        ]
    ),
    pipeline=free_text,
    run=free_text,
    step=free_text,
    replicas=st.integers(min_value=0, max_value=1000),
)
def test_rendered_seldon_deployment_is_always_valid(
    name: str, namespace: str, model_name: str, uri: str, pipeline: str, run: str, step: str, replicas: int
) -> None:
    spec = ZenModelDeploymentSpec.model_validate(
        {
            "model": {"name": model_name, "uri": uri, "implementation": "SKLEARN_SERVER"},
            "replicas": replicas,
            "provenance": {"pipelineName": pipeline, "runId": run, "stepName": step},
        }
    )
    location = parse_model_uri(uri)
    sdp = render_seldon_deployment(
        ParentRef(name, namespace, "uid-1"),
        spec,
        location,
        secret_name=f"{name}-rclone",
        credentials_hash="abc",
    )
    assert sdp["metadata"]["name"] == name  # the URL stays stable: same name, always
    assert all(is_valid_label_value(v) for v in sdp["metadata"]["labels"].values())
    graph = sdp["spec"]["predictors"][0]["graph"]
    assert graph["modelUri"].split("://")[0] == (location.remote or "pvc")
    assert sdp["spec"]["predictors"][0]["replicas"] == replicas
    assert sdp["metadata"]["ownerReferences"][0]["controller"] is True


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda children: (
            st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
        ),
        max_leaves=10,
    )
)
def test_a_document_is_a_subset_of_itself_plus_more(doc: Any) -> None:
    assert is_subset(doc, doc)
    if isinstance(doc, dict):
        assert is_subset(doc, {**doc, "defaulted-by-the-apiserver": 1})
        if doc:
            key = next(iter(doc))
            assert not is_subset({**doc, key: ["changed", doc[key]]}, doc)
