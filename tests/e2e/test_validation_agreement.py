"""The apiserver (the CRD's CEL rules) and the operator (pydantic) agree on every string, message included.

Hypothesis draws strings around each field's edge cases: near-valid names, the characters a person can
paste by mistake (a no-break space, a zero-width space, a vertical tab), `$(`, `?`, `#`, quotes. Each
spec is judged by pydantic and by the real apiserver (a server-side dry-run create over one HTTPS
connection): both accept it, or both refuse it, and then the apiserver names the field with the very
message the operator and `render` give.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from support.apiclient import ApiClient
from support.localcluster import LocalCluster
from zenmodel_operator.api.spec import Executor, Implementation, Protocol, ZenModelDeploymentSpec
from zenmodel_operator.api.validation import field_path

pytestmark = pytest.mark.e2e

EXAMPLES = 150
PASTED = "\u00a0\u200b\u200d\u2003\ufeff\x0b\t\x7f\x85\u00e9\U0001f600 "
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def api(cluster: LocalCluster) -> Iterator[ApiClient]:
    client = ApiClient(cluster)
    yield client
    client.close()


def document(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "zenml.io/v1alpha1",
        "kind": "ZenModelDeployment",
        "metadata": {"name": "agreement", "namespace": "default"},
        "spec": spec,
    }


def base_spec(uri: str = "s3://models/iris", **extra: Any) -> dict[str, Any]:
    return {"model": {"name": "iris", "uri": uri, "implementation": "SKLEARN_SERVER"}, **extra}


def operator_verdict(spec: dict[str, Any]) -> dict[str, list[str]] | None:
    """None if pydantic accepts the spec; else the messages of our own rules, by field path."""
    try:
        ZenModelDeploymentSpec.model_validate(spec)
    except ValidationError as error:
        causes: dict[str, list[str]] = {}
        for item in error.errors(include_input=False, include_url=False):
            if item["type"] == "invalid_value":
                causes.setdefault(field_path(item["loc"]), []).append(item["msg"])
            else:
                causes.setdefault(field_path(item["loc"]), [])
        return causes
    return None


def map_keys_as_fields(path: str) -> str:
    """The apiserver writes a map's key as `requests[cpu]`; pydantic's location reads `requests.cpu`."""
    return re.sub(r"\[([^\]0-9][^\]]*)\]", r".\1", path)


def assert_agreement(api: ApiClient, spec: dict[str, Any]) -> None:
    ours = operator_verdict(spec)
    theirs = api.create(document(spec), dry_run=True)
    assert theirs.accepted == (ours is None), (spec, ours, theirs)
    causes = {map_keys_as_fields(field): messages for field, messages in theirs.causes.items()}
    for field, messages in (ours or {}).items():
        for message in messages:
            assert any(m.endswith(f": {message}") for m in causes.get(field, [])), (field, message, causes)


def text(alphabet: str, max_size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=st.sampled_from(alphabet), max_size=max_size)


name_chars = "abcz019.-_A" + PASTED[:3]
uris = st.one_of(
    st.builds(
        lambda scheme, name, path: scheme + name + path,
        st.sampled_from(
            [
                "s3://",
                "gs://",
                "az://",
                "pvc://",
                "https://acct01.blob.core.windows.net/",
                "https://Acct.blob.core.windows.net/",
                "http://",
                "S3://",
                "s3:/",
                "",
            ]
        ),
        st.one_of(text(name_chars, 8), text("ab0.-", 70), text("ab.", 240)),
        st.one_of(st.just("/iris/v3"), text("/ab._-$()?#%{}'\"" + PASTED, 12)),
    ),
    st.text(max_size=40),
)


@SETTINGS
@given(uri=uris)
# Every branch of the character description, whatever the draw: control, space, invisible, and
# non-ASCII of two, three and four UTF-8 bytes.
@example(uri="s3://models/\x00")
@example(uri="s3://models/a b")
@example(uri="s3://models/\u200b")
@example(uri="s3://models/\u00e9")
@example(uri="s3://models/\u4e2d")
@example(uri="s3://models/\U0001f600")
@example(uri="s3://models/\U000e0001")
def test_model_uri(api: ApiClient, uri: str) -> None:
    assert_agreement(api, base_spec(uri))


images = st.one_of(
    st.builds(
        lambda registry, repo, tag, digest: registry + repo + tag + digest,
        st.sampled_from(["", "registry.example.com/", "localhost:5000/", "[::1]:5000/", "Reg.io/", "-x/"]),
        text("abz09._-/A", 20),
        st.sampled_from(["", ":1.2", ":latest", ":-bad", ":" + "t" * 129, ":a$(X)"]),
        st.sampled_from(["", "@sha256:" + "a" * 64, "@sha256:abc", "@SHA256:" + "0" * 32]),
    ),
    text("abz09._-/:@A" + PASTED[:4], 30),
)


@SETTINGS
@given(image=images)
def test_custom_image(api: ApiClient, image: str) -> None:
    spec = base_spec(custom={"image": image})
    spec["model"]["implementation"] = "CUSTOM"
    assert_agreement(api, spec)


endpoints = st.one_of(
    st.builds(
        lambda scheme, host, port, path: scheme + host + port + path,
        st.sampled_from(["http://", "https://", "ftp://", "", "HTTP://"]),
        text("abz09.-_[]:@", 16),
        st.sampled_from(["", ":9000", ":", ":123456"]),
        text("/abz09._~%-?#'\"${} " + PASTED[:3], 12),
    ),
    st.text(max_size=30),
)


@SETTINGS
@given(endpoint=endpoints)
def test_store_endpoint(api: ApiClient, endpoint: str) -> None:
    assert_agreement(api, base_spec(credentials={"s3": {"endpoint": endpoint}}))


@SETTINGS
@given(
    type_=st.sampled_from(["STRING", "INT", "FLOAT", "DOUBLE", "BOOL"]),
    value=text("0123456789+-.eEinfatrulosyINF_ x", 8),
    name=st.one_of(st.just("method"), text("ab_9$(-.A", 6)),
)
def test_parameter(api: ApiClient, type_: str, value: str, name: str) -> None:
    spec = base_spec()
    spec["model"]["parameters"] = [{"name": name, "type": type_, "value": value}]
    assert_agreement(api, spec)


SMALL_FIELDS: dict[str, Callable[[str], dict[str, Any]]] = {
    "region": lambda v: base_spec(credentials={"s3": {"region": v}}),
    "account": lambda v: base_spec("az://models/iris", credentials={"azure": {"account": v}}),
    "serviceAccountName": lambda v: base_spec(serviceAccountName=v),
    "secretRef": lambda v: base_spec(credentials={"secretRef": {"name": v}}),
    "predictFunction": lambda v: {
        **base_spec(custom={"image": "r/i:1", "predictFunction": v}),
        "model": {"name": "iris", "uri": "s3://models/iris", "implementation": "CUSTOM"},
    },
    "quantity": lambda v: base_spec(resources={"requests": {"cpu": v}}),
    "modelName": lambda v: {
        "model": {"name": v, "uri": "s3://models/iris", "implementation": "SKLEARN_SERVER"}
    },
}


@SETTINGS
@given(field=st.sampled_from(sorted(SMALL_FIELDS)), value=text("abz09-._A$( " + PASTED[:2], 12))
def test_other_string_fields(api: ApiClient, field: str, value: str) -> None:
    assert_agreement(api, SMALL_FIELDS[field](value))


def test_executor_with_every_implementation_and_protocol(api: ApiClient) -> None:
    """A cross-field rule over two enums: every combination, the field left out and a wrong spelling too."""
    for executor, implementation, protocol in itertools.product(
        (None, *Executor, "disabled"), Implementation, Protocol
    ):
        spec = base_spec()
        spec["model"].update({"implementation": implementation.value, "protocol": protocol.value})
        if implementation is Implementation.CUSTOM:
            spec["custom"] = {"image": "r/i:1"}
        if executor is not None:
            spec["executor"] = str(executor)
        assert_agreement(api, spec)
