"""The string rules' Python side: readable messages, RE2-compatible anchoring, Seldon's own parsing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zenmodel_operator.api.crd import render_crd
from zenmodel_operator.api.spec import PARAMETER_VALUE_CHECKS, ParameterType
from zenmodel_operator.api.uris import MODEL_URI_CHECKS
from zenmodel_operator.api.validation import (
    any_of,
    at_most,
    cross_field,
    field,
    first_failure,
    has,
    not_,
    python_pattern,
)

SELDON_BOOLS = {"y", "yes", "t", "true", "on", "1", "n", "no", "f", "false", "off", "0"}  # strtobool's


def uri_problem(uri: str) -> str | None:
    return first_failure(MODEL_URI_CHECKS, uri)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (
            "s3://models\u00a0/iris",
            "invisible character U+00A0 at position 12: a model URI takes visible ASCII",
        ),
        ("s3://models/iris\x0b", "control character U+000B at position 17"),
        ("s3://models/\U0001f600", "non-ASCII character U+1F600 at position 13"),
        ("s3://models/$(KEY)", "contains '$(', which Kubernetes expands as a variable reference"),
        ("ftp://models/iris", "unsupported model URI: use s3://<bucket>/<path>"),
        ("s3://models/iris?x=1", "has a query string or fragment ('?')"),
        ("s3://My_Models/iris", "S3 bucket name 'My_Models' may hold only lower-case letters"),
        ("gs://a.b..c/iris", "GCS bucket name 'a.b..c' must not hold two dots in a row"),
        ("az://models--x/iris", "Azure container name 'models--x' must not hold two hyphens in a row"),
    ],
)
def test_a_bad_uri_gets_one_message_naming_the_problem(uri: str, message: str) -> None:
    problem = uri_problem(uri)
    assert problem is not None and problem.startswith(message), problem


@pytest.mark.parametrize(
    "uri",
    [
        "s3://models/iris/v3",
        "s3://my.models-2024/a/b",
        f"gs://{'a' * 63}.{'b' * 63}/x",
        "gs://my_models/x",
        "az://models/iris",
        "https://zenml01.blob.core.windows.net/models/iris",
        "pvc://model-store/iris",
        "s3://models/a$b/c%20d",
    ],
)
def test_good_uris_pass(uri: str) -> None:
    assert uri_problem(uri) is None


def test_python_end_anchor_is_the_end_of_text_as_in_re2() -> None:
    assert python_pattern("^[a-z]+$").search("abc\n") is None
    assert python_pattern("[$][($]").search("a$(b") is not None


@given(st.text(alphabet=st.sampled_from("0123456789+-.eE_ x"), max_size=8))
def test_an_accepted_int_is_one_seldon_parses(value: str) -> None:
    if PARAMETER_VALUE_CHECKS[ParameterType.INT].holds.python(value):
        int(value)


@given(st.text(alphabet=st.sampled_from("0123456789+-.eEinfatyINF_ x"), max_size=8))
def test_an_accepted_float_is_one_seldon_parses(value: str) -> None:
    for type_ in (ParameterType.FLOAT, ParameterType.DOUBLE):
        if PARAMETER_VALUE_CHECKS[type_].holds.python(value):
            float(value)


@given(st.text(alphabet=st.sampled_from("yesnotruefalsYESON01"), max_size=5))
def test_an_accepted_bool_is_one_seldon_parses(value: str) -> None:
    assert PARAMETER_VALUE_CHECKS[ParameterType.BOOL].holds.python(value) == (value.lower() in SELDON_BOOLS)


def walk(node: Any) -> list[dict[str, Any]]:
    found = [node] if isinstance(node, dict) else []
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    return found + [n for child in children for n in walk(child)]


def test_every_string_rule_has_a_readable_message_and_a_bounded_input() -> None:
    schema = render_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    nodes = walk(schema["properties"]["spec"])
    assert not [n for n in nodes if "pattern" in n], "a bare pattern answers with a regular expression"
    for node in nodes:
        for rule in node.get("x-kubernetes-validations", []):
            assert rule.get("message") or rule.get("messageExpression"), rule
        if node.get("type") == "string" and "x-kubernetes-validations" in node:
            assert "maxLength" in node, node  # the apiserver's CEL cost estimate needs it


def test_a_cross_field_rule_is_one_check_giving_both_languages() -> None:
    @dataclass
    class Inner:
        size: int | None = None

    @dataclass
    class Outer:
        inner: Inner | None = None
        limit: int = 3

    guarded = any_of(
        not_(has("inner")), not_(has("inner.size")), at_most(field("inner.size"), field("limit"))
    )
    rule = cross_field("spec.inner.size", guarded, "must be at most limit")
    assert rule.cel == "!has(self.inner) || !has(self.inner.size) || self.inner.size <= self.limit"
    assert rule.message == "must be at most limit"
    # As in CEL, each `has` guards what follows it: an unset field is never compared.
    assert rule.holds(Outer()) and rule.holds(Outer(Inner())) and rule.holds(Outer(Inner(3)))
    assert not rule.holds(Outer(Inner(4)))
