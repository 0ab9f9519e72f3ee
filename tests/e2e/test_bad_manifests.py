"""A corpus of bad ZenModelDeployments, each refused where it can be, and the operator unharmed after all.

Every manifest is either refused by the apiserver at create time, with a cause that names the field and
says what is wrong (and `render` refuses it naming the same field), or it passes the schema and gets a
Ready=False condition naming the problem within 2 s. Then the operator is still up, and a good object
applied after them converges.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from support.apiclient import ApiClient
from support.localcluster import LocalCluster
from support.objects import OPT_IN, apply, condition, must_get, s3_secret, secret, wait_state, zmd
from support.operator_process import OperatorProcess
from support.waiting import wait_for
from zenmodel_operator.cli import RenderError, render_documents

pytestmark = pytest.mark.e2e

CONDITION_DEADLINE = 2.0

Spec = dict[str, Any]


def base() -> Spec:
    return {
        "model": {"name": "iris", "uri": "s3://models/iris/v3", "implementation": "SKLEARN_SERVER"},
        "credentials": {"secretRef": {"name": "s3-creds"}},
    }


def with_model(**model: Any) -> Callable[[Spec], None]:
    return lambda spec: spec["model"].update(model)


def uri(value: str) -> Callable[[Spec], None]:
    def change(spec: Spec) -> None:
        spec["model"]["uri"] = value
        if not value.startswith("s3://"):
            spec.pop("credentials")

    return change


def parameter(type_: str, value: str, name: str = "p") -> Callable[[Spec], None]:
    return with_model(parameters=[{"name": name, "type": type_, "value": value}])


def custom(**server: Any) -> Callable[[Spec], None]:
    def change(spec: Spec) -> None:
        spec["model"]["implementation"] = "CUSTOM"
        spec["custom"] = {"image": "registry.example.com/iris:1.2", **server}

    return change


def both(*changes: Callable[[Spec], None]) -> Callable[[Spec], None]:
    def change(spec: Spec) -> None:
        for one in changes:
            one(spec)

    return change


def top(**fields: Any) -> Callable[[Spec], None]:
    return lambda spec: spec.update(fields)


def s3(**options: Any) -> Callable[[Spec], None]:
    return lambda spec: spec["credentials"].update(s3=options)


@dataclass(frozen=True)
class Refused:
    """Refused at create time: a cause on `field` whose message contains `says`."""

    field: str
    says: str


@dataclass(frozen=True)
class Reported:
    """Accepted, then reported: Ready=False with `reason`, and a message containing `says`."""

    reason: str
    says: str
    objects: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Bad:
    id: str
    change: Callable[[Spec], None]
    expect: Refused | Reported
    name: str = "bad"
    extra: dict[str, Any] = field(default_factory=dict)


URI = "spec.model.uri"
CORPUS: tuple[Bad, ...] = (
    # model URIs
    Bad(
        "http-scheme", uri("http://models.example.com/iris"), Refused(URI, "unsupported model URI: use s3://")
    ),
    Bad("ftp-scheme", uri("ftp://models/iris"), Refused(URI, "unsupported model URI")),
    Bad("upper-case-scheme", uri("S3://models/iris"), Refused(URI, "unsupported model URI")),
    Bad("one-slash", uri("s3:/models/iris"), Refused(URI, "unsupported model URI")),
    Bad("no-bucket", uri("s3:///iris"), Refused(URI, "S3 bucket name '' must be 3 to 63 characters long")),
    Bad("short-bucket", uri("s3://ab/iris"), Refused(URI, "S3 bucket name 'ab' must be 3 to 63")),
    Bad("long-bucket", uri(f"s3://{'b' * 64}/iris"), Refused(URI, "must be 3 to 63 characters long")),
    Bad("upper-case-bucket", uri("s3://Models/iris"), Refused(URI, "'Models' may hold only lower-case")),
    Bad("underscore-bucket", uri("s3://my_models/iris"), Refused(URI, "may hold only lower-case letters")),
    Bad("hyphen-ends-bucket", uri("s3://models-/iris"), Refused(URI, "must begin and end with")),
    Bad("dot-begins-bucket", uri("s3://.models/iris"), Refused(URI, "must begin and end with")),
    Bad("two-dots-bucket", uri("s3://my..models/iris"), Refused(URI, "must not hold two dots in a row")),
    Bad("ip-bucket", uri("s3://192.168.1.10/iris"), Refused(URI, "must not be formatted as an IP address")),
    Bad("gcs-goog-prefix", uri("gs://google-models/iris"), Refused(URI, "must not begin with 'goog'")),
    Bad("gcs-contains-google", uri("gs://my-google-models/iris"), Refused(URI, "contain 'google'")),
    Bad("gcs-long-part", uri(f"gs://{'g' * 64}.models/iris"), Refused(URI, "at most 63 between two dots")),
    Bad("gcs-upper-case", uri("gs://Models/iris"), Refused(URI, "GCS bucket name 'Models' may hold only")),
    Bad(
        "azure-double-hyphen", uri("az://my--models/iris"), Refused(URI, "must not hold two hyphens in a row")
    ),
    Bad("azure-underscore", uri("az://my_models/iris"), Refused(URI, "Azure container name 'my_models'")),
    Bad(
        "azure-https-short-container",
        uri("https://zenml01.blob.core.windows.net/ab/iris"),
        Refused(URI, "Azure container name 'ab' must be 3 to 63"),
    ),
    Bad(
        "azure-https-other-host",
        uri("https://zenml01.blob.example.com/models/iris"),
        Refused(URI, "unsupported"),
    ),
    Bad("pvc-upper-case", uri("pvc://Models/iris"), Refused(URI, "claim name 'Models' must be a DNS-1123")),
    Bad(
        "query-string",
        uri("s3://models/iris?versionId=3"),
        Refused(URI, "has a query string or fragment ('?')"),
    ),
    Bad("fragment", uri("s3://models/iris#v3"), Refused(URI, "query string or fragment ('#')")),
    Bad(
        "no-break-space",
        uri("s3://models/ir\u00a0is"),
        Refused(URI, "invisible character U+00A0 at position 15"),
    ),
    Bad(
        "zero-width-space",
        uri("s3://models/\u200biris"),
        Refused(URI, "invisible character U+200B at position 13"),
    ),
    Bad(
        "byte-order-mark",
        uri("\ufeffs3://models/iris"),
        Refused(URI, "invisible character U+FEFF at position 1"),
    ),
    Bad("vertical-tab", uri("s3://models/iris\x0b"), Refused(URI, "control character U+000B at position 17")),
    Bad("tab", uri("s3://models/\tiris"), Refused(URI, "control character U+0009")),
    Bad("trailing-space", uri("s3://models/iris "), Refused(URI, "space U+0020 at position 17")),
    Bad("accented-letter", uri("s3://models/modèle"), Refused(URI, "non-ASCII character U+00E8")),
    Bad(
        "secret-in-uri",
        uri("s3://models/$(RCLONE_CONFIG_S3_SECRET_ACCESS_KEY)"),
        Refused(URI, "contains '$(', which Kubernetes expands as a variable reference"),
    ),
    Bad("escaped-dollar-in-uri", uri("s3://models/a$$b"), Refused(URI, "contains '$$'")),
    # parameters
    Bad(
        "int-with-fraction",
        parameter("INT", "1.5"),
        Refused("spec.model.parameters[0].value", "is not an INT"),
    ),
    Bad("int-empty", parameter("INT", ""), Refused("spec.model.parameters[0].value", "is not an INT")),
    Bad(
        "float-word", parameter("FLOAT", "fast"), Refused("spec.model.parameters[0].value", "is not a FLOAT")
    ),
    Bad(
        "double-comma",
        parameter("DOUBLE", "1,5"),
        Refused("spec.model.parameters[0].value", "is not a DOUBLE"),
    ),
    Bad("bool-maybe", parameter("BOOL", "maybe"), Refused("spec.model.parameters[0].value", "is not a BOOL")),
    Bad(
        "unknown-type", parameter("LONG", "1"), Refused("spec.model.parameters[0].type", "Unsupported value")
    ),
    Bad(
        "parameter-name-reference",
        parameter("STRING", "x", name="$(RCLONE_CONFIG_S3_KEY)"),
        Refused("spec.model.parameters[0].name", "must be a Python identifier"),
    ),
    Bad(
        "parameter-name-hyphen",
        parameter("STRING", "x", name="max-depth"),
        Refused("spec.model.parameters[0].name", "must be a Python identifier"),
    ),
    # custom image and function
    Bad(
        "image-upper-case",
        custom(image="registry.example.com/Iris:1"),
        Refused("spec.custom.image", "not a valid image reference"),
    ),
    Bad("image-space", custom(image="iris :1"), Refused("spec.custom.image", "space U+0020 at position 5")),
    Bad(
        "image-empty-tag", custom(image="iris:"), Refused("spec.custom.image", "not a valid image reference")
    ),
    Bad(
        "image-reference-in-tag",
        custom(image="iris:$(TAG)"),
        Refused("spec.custom.image", "not a valid image reference"),
    ),
    Bad(
        "image-short-digest",
        custom(image="iris@sha256:abc"),
        Refused("spec.custom.image", "not a valid image reference"),
    ),
    Bad(
        "image-double-slash",
        custom(image="registry.example.com//iris"),
        Refused("spec.custom.image", "not a valid image"),
    ),
    Bad(
        "image-long-tag",
        custom(image="iris:" + "t" * 129),
        Refused("spec.custom.image", "not a valid image reference"),
    ),
    Bad(
        "predict-function-no-module",
        custom(predictFunction="predict"),
        Refused("spec.custom.predictFunction", "dotted Python import path"),
    ),
    Bad(
        "predict-function-call",
        custom(predictFunction="iris.predict()"),
        Refused("spec.custom.predictFunction", "dotted Python"),
    ),
    # store options
    Bad(
        "endpoint-quoted",
        s3(endpoint='"http://minio:9000"'),
        Refused("spec.credentials.s3.endpoint", "must begin with http://"),
    ),
    Bad(
        "endpoint-space",
        s3(endpoint="http://minio :9000"),
        Refused("spec.credentials.s3.endpoint", "space U+0020"),
    ),
    Bad(
        "endpoint-shell-variable",
        s3(endpoint="http://${MINIO_HOST}:9000"),
        Refused("spec.credentials.s3.endpoint", "must be a plain URL"),
    ),
    Bad(
        "endpoint-no-scheme",
        s3(endpoint="minio.minio:9000"),
        Refused("spec.credentials.s3.endpoint", "must begin with http://"),
    ),
    Bad(
        "endpoint-user-info",
        s3(endpoint="http://admin:pw@minio:9000"),
        Refused("spec.credentials.s3.endpoint", "no user"),
    ),
    Bad(
        "endpoint-query",
        s3(endpoint="http://minio:9000/?x=1"),
        Refused("spec.credentials.s3.endpoint", "must be a plain URL"),
    ),
    Bad(
        "region-upper-case",
        s3(region="EU-WEST-1"),
        Refused("spec.credentials.s3.region", "lower-case letters, digits"),
    ),
    Bad(
        "provider-unknown",
        s3(provider="Backblaze"),
        Refused("spec.credentials.s3.provider", "Unsupported value"),
    ),
    Bad(
        "azure-account-upper-case",
        both(uri("az://models/iris"), top(credentials={"azure": {"account": "ZenML01"}})),
        Refused("spec.credentials.azure.account", "must be a storage account name"),
    ),
    Bad(
        "azure-client-id",
        both(
            uri("az://models/iris"),
            top(credentials={"azure": {"useManagedIdentity": True, "managedIdentityClientId": "not-a-guid"}}),
        ),
        Refused("spec.credentials.azure.managedIdentityClientId", "must be a client ID"),
    ),
    Bad(
        "secret-ref-underscore",
        lambda spec: spec["credentials"].update(secretRef={"name": "s3_creds"}),
        Refused("spec.credentials.secretRef.name", "DNS-1123 subdomain"),
    ),
    # other fields
    Bad(
        "model-name-upper-case",
        with_model(name="Iris"),
        Refused("spec.model.name", "must be a DNS-1123 label"),
    ),
    Bad(
        "service-account-upper-case",
        top(serviceAccountName="Model-Reader"),
        Refused("spec.serviceAccountName", "DNS-1123 subdomain"),
    ),
    Bad(
        "quantity-with-space",
        top(resources={"requests": {"memory": "1 Gi"}}),
        Refused("spec.resources.requests[memory]", "must be a quantity"),
    ),
    Bad(
        "base-url-fragment",
        top(ingress={"baseURL": "http://ingress.example.com/#x"}),
        Refused("spec.ingress.baseURL", "must be a plain URL"),
    ),
    Bad("replicas-negative", top(replicas=-1), Refused("spec.replicas", "greater than or equal to 0")),
    Bad("unknown-field", top(replica=2), Refused("spec", 'unknown field "spec.replica"')),
    # cross-field rules
    Bad(
        "custom-without-image",
        with_model(implementation="CUSTOM"),
        Refused("spec", "implementation CUSTOM needs custom.image"),
    ),
    Bad(
        "custom-with-sklearn",
        top(custom={"image": "r/i:1"}),
        Refused("spec", "custom is only allowed with implementation CUSTOM"),
    ),
    Bad(
        "triton-with-seldon-protocol",
        with_model(implementation="TRITON_SERVER"),
        Refused("spec", "the protocol must fit"),
    ),
    Bad(
        "pvc-with-credentials",
        with_model(uri="pvc://claim/iris"),
        Refused("spec", "pvc:// models need no credentials"),
    ),
    Bad(
        "s3-options-for-gcs",
        both(with_model(uri="gs://models/iris"), s3(region="eu-west-1")),
        Refused("spec", "credentials.s3 applies only"),
    ),
    Bad(
        "gcs-options-for-s3",
        lambda spec: spec["credentials"].update(gcs={"projectNumber": "123456789012"}),
        Refused("spec", "credentials.gcs applies only to gs:// model URIs"),
    ),
    Bad(
        "azure-options-for-s3",
        lambda spec: spec["credentials"].update(azure={"account": "acct1"}),
        Refused("spec", "credentials.azure applies only to az:// and Azure Blob https:// model URIs"),
    ),
    Bad("name-too-long", lambda spec: None, Refused("metadata.name", "DNS-1035 label"), name="n" * 56),
    # accepted by the schema, reported by the operator
    Bad("secret-missing", lambda spec: None, Reported("SecretNotFound", "does not exist")),
    # An unlabelled Secret is never read (only labelled ones are watched), so the operator cannot tell it
    # from a missing one: one reason, and a message naming both.
    Bad(
        "secret-not-opted-in",
        lambda spec: None,
        Reported(
            "SecretNotFound",
            "lacks the label",
            ({"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}, {}),
        ),
    ),
    Bad(
        "secret-for-another-store",
        lambda spec: None,
        Reported("ProviderMismatch", "Azure Blob Storage keys", ({"AZURE_STORAGE_KEY": "k"}, OPT_IN)),
    ),
    Bad(
        "secret-missing-a-key",
        lambda spec: None,
        Reported("MissingKeys", "lacks AWS_SECRET_ACCESS_KEY", ({"AWS_ACCESS_KEY_ID": "a"}, OPT_IN)),
    ),
    Bad(
        "gcs-key-not-json",
        lambda spec: spec.update(
            model={**spec["model"], "uri": "gs://models/iris"},
            credentials={"secretRef": {"name": "s3-creds"}},
        ),
        Reported(
            "InvalidCredentials",
            "is not valid JSON",
            ({"gcloud-application-credentials.json": "{nope"}, OPT_IN),
        ),
    ),
    Bad(
        "rclone-remote-of-wrong-type",
        lambda spec: None,
        Reported("ProviderMismatch", "cannot read", ({"RCLONE_CONFIG_S3_TYPE": "azureblob"}, OPT_IN)),
    ),
)


def manifest(case: Bad, namespace: str) -> dict[str, Any]:
    spec = copy.deepcopy(base())
    case.change(spec)
    name = case.name if case.name != "bad" else case.id
    return {
        "apiVersion": "zenml.io/v1alpha1",
        "kind": "ZenModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def test_the_corpus_is_large_and_distinct() -> None:
    assert len(CORPUS) >= 60
    assert len({case.id for case in CORPUS}) == len(CORPUS)


def test_every_bad_manifest_is_refused_or_reported(
    cluster: LocalCluster, namespace: str, operator: OperatorProcess
) -> None:
    api = ApiClient(cluster)
    slow: dict[str, float] = {}
    try:
        for case in CORPUS:
            doc = manifest(case, namespace)
            if isinstance(case.expect, Refused):
                verdict = api.create(doc, dry_run=False)
                assert not verdict.accepted, case.id
                # A decoding error (an unknown field) has no causes: its message names the field.
                messages = verdict.causes.get(case.expect.field, []) if verdict.causes else [verdict.message]
                assert any(case.expect.says in m for m in messages), (
                    case.id,
                    verdict.causes,
                    verdict.message,
                )
                if case.expect.field.startswith("spec."):  # the schema's own checks, which render shares
                    with pytest.raises(RenderError) as refused:
                        render_documents([doc], show_secrets=False, require_credentials_label=True)
                    assert case.expect.field.split("[")[0] in str(refused.value), (case.id, refused.value)
                continue
            name = doc["metadata"]["name"]
            secret_name = doc["spec"]["credentials"]["secretRef"]["name"]
            for data, labels in zip(case.expect.objects[::2], case.expect.objects[1::2], strict=True):
                key = f"{name}-{secret_name}"
                doc["spec"]["credentials"]["secretRef"]["name"] = key
                assert api.create(secret(namespace, key, data, labels), dry_run=False).accepted
            start = time.monotonic()
            assert api.create(doc, dry_run=False).accepted, case.id

            def reported(name: str = name, expect: Reported = case.expect) -> bool:
                ready = condition(api.get_zmd(namespace, name), "Ready")
                return ready.get("reason") == expect.reason and expect.says in str(ready.get("message"))

            wait_for(reported, 30.0, f"{case.id}: never reported {case.expect.reason}")
            elapsed = time.monotonic() - start
            if elapsed > CONDITION_DEADLINE:
                slow[case.id] = elapsed
    finally:
        api.close()
    assert not slow, f"conditions later than {CONDITION_DEADLINE} s: {slow}"

    assert operator.healthy()
    apply(cluster, s3_secret(namespace), zmd("good", namespace))
    good = wait_state(cluster, namespace, "good", "Creating")
    assert condition(good, "CredentialsReady")["status"] == "True"
    assert must_get(cluster, "seldondeployment", namespace, "good")["metadata"]["ownerReferences"]
