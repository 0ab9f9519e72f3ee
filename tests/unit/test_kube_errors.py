"""Which failed writes are the object's fault (a condition), not the server's (a retry); what an error
may say."""

from __future__ import annotations

import pytest

from zenmodel_operator.runtime.transport import TYPED_PATCH_FAILURE, error_message, rejects_the_object

# The apiserver's words when Seldon's CRD lacks a field of the applied SeldonDeployment.
UNKNOWN_FIELD = (
    f"{TYPED_PATCH_FAILURE} (machinelearning.seldon.io/v1, Kind=SeldonDeployment): "
    ".spec.predictors[0].componentSpecs[0].spec.containers[0].newField: field not declared in schema"
)


@pytest.mark.parametrize(
    ("status", "method", "message", "rejected"),
    [
        (422, "PATCH", "SeldonDeployment.machinelearning.seldon.io is invalid", True),
        (400, "PATCH", "bad request", True),
        (500, "PATCH", UNKNOWN_FIELD, True),
        (500, "PATCH", "etcdserver: request timed out", False),
        (503, "PATCH", "service unavailable", False),
        (400, "POST", 'strict decoding error: unknown field "spec.newField"', True),
        (422, "POST", "Secret is invalid", True),
        (409, "POST", "already exists", False),
        (500, "POST", UNKNOWN_FIELD, False),
        (422, "GET", "", False),
        (409, "PATCH", "conflict", False),
    ],
)
def test_only_the_objects_own_faults_are_rejections(
    status: int, method: str, message: str, rejected: bool
) -> None:
    assert rejects_the_object(status, method, message) is rejected


SECRET = "/api/v1/namespaces/models/secrets/s3-creds"
# An apiserver's Status may quote the object it refused: for a Secret, its values.
QUOTING = (
    b'{"kind":"Status","status":"Failure","reason":"Invalid",'
    b'"message":"Secret \\"s3-creds\\" is invalid: data[AWS_SECRET_ACCESS_KEY]: hunter2"}'
)


def test_a_secrets_error_says_only_its_reason() -> None:
    assert error_message(422, SECRET, QUOTING) == "Invalid"
    assert "hunter2" in error_message(422, "/apis/machinelearning.seldon.io/v1/x", QUOTING)


def test_an_answer_that_is_no_kubernetes_status_is_named_not_quoted() -> None:
    page = b"<html>502 Bad Gateway: upstream sent hunter2</html>"
    assert error_message(502, SECRET, page) == "HTTP 502 without a Kubernetes Status"
    assert error_message(502, "/api/v1/namespaces/models/events", page) == (
        "HTTP 502 without a Kubernetes Status"
    )
    assert error_message(500, SECRET, b"") == ""
