"""The spec's own rules, checked by pydantic exactly as the CRD's CEL rules state them."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from zenmodel_operator.api.spec import (
    NAME_RULE,
    PROTOCOLS_BY_IMPLEMENTATION,
    Implementation,
    Protocol,
    ZenModelDeploymentSpec,
)


def spec(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "model": {"name": "iris", "uri": "s3://models/iris/v3", "implementation": "SKLEARN_SERVER"},
    }
    base.update(overrides)
    return base


def test_minimal_spec_gets_defaults() -> None:
    parsed = ZenModelDeploymentSpec.model_validate(spec())
    assert parsed.replicas is None
    assert parsed.desired_replicas == 1
    assert parsed.model.protocol is Protocol.SELDON
    assert parsed.model.parameters == []


@pytest.mark.parametrize(
    ("implementation", "protocol"), [(impl, proto) for impl in Implementation for proto in Protocol]
)
def test_protocol_must_fit_implementation(implementation: Implementation, protocol: Protocol) -> None:
    model = {
        "name": "m",
        "uri": "gs://models/m",
        "implementation": implementation.value,
        "protocol": protocol.value,
    }
    custom = {"custom": {"image": "r/i:1"}} if implementation is Implementation.CUSTOM else {}
    document = spec(model=model, **custom)
    if protocol in PROTOCOLS_BY_IMPLEMENTATION[implementation]:
        assert ZenModelDeploymentSpec.model_validate(document).model.protocol is protocol
    else:
        with pytest.raises(ValidationError, match=re.escape("spec.model.protocol: the protocol must fit")):
            ZenModelDeploymentSpec.model_validate(document)


def test_custom_needs_image_and_only_with_custom() -> None:
    with pytest.raises(ValidationError, match=re.escape("implementation CUSTOM needs custom.image")):
        ZenModelDeploymentSpec.model_validate(
            spec(model={"name": "m", "uri": "s3://models/m", "implementation": "CUSTOM"})
        )
    with pytest.raises(ValidationError, match="custom is only allowed with implementation CUSTOM"):
        ZenModelDeploymentSpec.model_validate(spec(custom={"image": "r/i:1"}))


@pytest.mark.parametrize(
    "uri",
    [
        "s3://bucket",
        "s3://bucket/a/b",
        "gs://models/m",
        "az://container/model",
        "https://acct01.blob.core.windows.net/container/model",
        "pvc://claim/models/iris",
    ],
)
def test_accepts_every_store(uri: str) -> None:
    assert ZenModelDeploymentSpec.model_validate(
        spec(model={"name": "m", "uri": uri, "implementation": "SKLEARN_SERVER"})
    )


@pytest.mark.parametrize(
    "uri",
    [
        "http://example.com/model",
        "s3:/bucket",
        "ftp://x/y",
        "s3://",
        "https://example.com/c/p",
        "pvc://Claim/x",
    ],
)
def test_refuses_unknown_uris(uri: str) -> None:
    with pytest.raises(ValidationError, match=r"model\.uri"):
        ZenModelDeploymentSpec.model_validate(
            spec(model={"name": "m", "uri": uri, "implementation": "SKLEARN_SERVER"})
        )


def test_store_options_must_match_the_uri() -> None:
    with pytest.raises(ValidationError, match=re.escape("credentials.s3 applies only to s3://")):
        ZenModelDeploymentSpec.model_validate(
            spec(
                model={"name": "m", "uri": "gs://models/m", "implementation": "SKLEARN_SERVER"},
                credentials={"s3": {"region": "eu-west-1"}},
            )
        )
    with pytest.raises(ValidationError, match=re.escape("pvc:// models need no credentials")):
        ZenModelDeploymentSpec.model_validate(
            spec(
                model={"name": "m", "uri": "pvc://c/m", "implementation": "SKLEARN_SERVER"},
                credentials={"secretRef": {"name": "s"}},
            )
        )


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ZenModelDeploymentSpec.model_validate(spec(replica=2))


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("iris", True),
        ("a" * 55, True),
        ("a" * 56, False),
        ("1iris", False),
        ("Iris", False),
        ("iris-", False),
    ],
)
def test_name_rule(name: str, valid: bool) -> None:
    assert NAME_RULE.holds(name) is valid


@pytest.mark.parametrize(
    ("options", "accepted_uris", "refused_uri", "message"),
    [
        (
            {"gcs": {"projectNumber": "123456789012"}},
            ["gs://models/m"],
            "s3://models/m",
            "credentials.gcs applies only",
        ),
        (
            {"azure": {"account": "acct1"}},
            ["az://models/m", "https://acct1.blob.core.windows.net/models/m"],
            "gs://models/m",
            "credentials.azure applies only",
        ),
    ],
)
def test_gcs_and_azure_options_apply_only_to_their_uris(
    options: dict[str, object], accepted_uris: list[str], refused_uri: str, message: str
) -> None:
    for uri in accepted_uris:
        ZenModelDeploymentSpec.model_validate(
            spec(model={"name": "m", "uri": uri, "implementation": "SKLEARN_SERVER"}, credentials=options)
        )
    with pytest.raises(ValidationError, match=re.escape(message)):
        ZenModelDeploymentSpec.model_validate(
            spec(
                model={"name": "m", "uri": refused_uri, "implementation": "SKLEARN_SERVER"},
                credentials=options,
            )
        )
