"""Kubernetes expands `$(VAR)` in container args and env values: no spec string may reach a secret that way.

Seldon puts the model URI into the storage initializer's args, beside the rclone Secret (envFrom), and
the parameters into the model container's env. The kubelet's rules (support.kubelet) run over what Seldon
would derive from every SeldonDeployment we render: whatever the spec says, each container sees exactly
the text the user wrote, and never a variable's value.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from support.kubelet import expand, seldon_container_strings
from zenmodel_operator.api.spec import ZenModelDeploymentSpec
from zenmodel_operator.core.render import ParentRef, render_seldon_deployment
from zenmodel_operator.core.storage import parse_model_uri

SECRET = "s3cr3t-value"
# Every variable a container could hold: the rclone Secret's keys, and the names an attacker would guess.
ENV = dict.fromkeys(
    (
        "RCLONE_CONFIG_S3_SECRET_ACCESS_KEY",
        "RCLONE_CONFIG_S3_ACCESS_KEY_ID",
        "RCLONE_CONFIG_GS_SERVICE_ACCOUNT_CREDENTIALS",
        "RCLONE_CONFIG_AZ_KEY",
        "X",
        "A",
        "",
    ),
    SECRET,
)


def spec(uri: str, parameters: list[dict[str, str]] | None = None) -> dict[str, object]:
    return {
        "model": {
            "name": "iris",
            "uri": uri,
            "implementation": "SKLEARN_SERVER",
            "parameters": parameters or [],
        }
    }


def container_strings(document: dict[str, object]) -> dict[str, list[str]]:
    parsed = ZenModelDeploymentSpec.model_validate(document)
    location = parse_model_uri(parsed.model.uri)
    rendered = render_seldon_deployment(
        ParentRef("iris", "models", "uid"), parsed, location, secret_name="iris-rclone", credentials_hash="h"
    )
    return seldon_container_strings(rendered)


def test_a_variable_reference_in_the_model_uri_is_refused() -> None:
    for uri in ("s3://models/$(RCLONE_CONFIG_S3_SECRET_ACCESS_KEY)", "s3://models/a$$(X)"):
        with pytest.raises(ValidationError, match=re.escape("which Kubernetes expands as a variable")):
            ZenModelDeploymentSpec.model_validate(spec(uri))


uri_paths = st.text(alphabet=st.sampled_from("$()/AXR_a-.x"), max_size=30)
stores = st.sampled_from(["s3://models/", "gs://models/", "az://models/", "pvc://claim/"])


@given(prefix=stores, path=uri_paths)
def test_an_accepted_model_uri_reaches_the_storage_initializer_literally(prefix: str, path: str) -> None:
    document = spec(prefix + path)
    try:
        strings = container_strings(document)
    except ValidationError:
        strings = None
    assume(strings is not None)
    assert strings is not None
    for value in strings["storage-initializer"]:
        assert expand(value, ENV) == value
        assert SECRET not in expand(value, ENV)


@given(value=st.text(alphabet=st.sampled_from("$()AXR_ {}\\\"'x"), max_size=30))
def test_a_string_parameter_reaches_the_model_server_as_written(value: str) -> None:
    strings = container_strings(spec("s3://models/iris", [{"name": "p", "type": "STRING", "value": value}]))
    (parameters,) = strings["iris"]
    expanded = expand(parameters, ENV)
    assert SECRET not in expanded
    assert json.loads(expanded)[0]["value"] == value
